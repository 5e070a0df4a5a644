//! Silences: `POST /v1/silences`, `GET /v1/silences`, `GET`, `PATCH` (a JSON merge patch)
//! and `DELETE /v1/silences/{id}`, kept in the `bw_silences` bucket. Matchers are the older
//! object (`{"country": "PRK"}`, equalities) or Alertmanager's list (`=`, `!=`, `=~`, `!~`),
//! checked and compiled in `borderwatch-model`. Notify records a silenced event instead of delivering it; a
//! silence that ends later does not resend what it muted.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use borderwatch_bus::names;
use borderwatch_model::{Silence, SilenceMatchers, now_rfc3339};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::info;
use utoipa::OpenApi;

use super::{KeyPageParams, key_page, merge_patch, read_patch, schema};
use crate::error::ApiError;
use crate::page::{self, ApiQuery};
use crate::state::AppState;

/// The silences' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        create_silence,
        list_silences,
        get_silence,
        patch_silence,
        delete_silence
    ),
    components(schemas(
        doc::SilenceRequest,
        doc::SilencePatch,
        doc::SilenceMatchers,
        doc::SilenceFields,
        doc::Matcher,
        doc::MatcherName,
        doc::MatcherOrText,
        doc::Silence,
        doc::ListedSilence,
        doc::SilenceList,
        schema::Token,
    ))
)]
pub(crate) struct SilencesApi;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    matchers: SilenceMatchers,
    until: String,
    #[serde(default)]
    comment: Option<String>,
}

/// Checks a request and returns `until` as RFC 3339 UTC. `until` must be in the future
/// when it is set (`until_changed`): an edit of another member of an expired silence is
/// not refused for its past end.
fn validate(
    req: &SilenceRequest,
    now: OffsetDateTime,
    until_changed: bool,
) -> Result<String, ApiError> {
    // Each matcher was checked when it was read (names, countries, regexes).
    if req.matchers.is_empty() {
        return Err(ApiError::bad_request(
            "matchers needs at least one of source, country, category (or a non-empty list of matchers)",
        ));
    }
    let until = OffsetDateTime::parse(&req.until, &Rfc3339).map_err(|_| {
        ApiError::bad_request(format!(
            "until `{}` is not an RFC 3339 time such as 2025-01-31T18:00:00Z",
            req.until
        ))
    })?;
    if until_changed && until <= now {
        return Err(ApiError::bad_request(format!(
            "until `{}` is in the past",
            req.until
        )));
    }
    until
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| ApiError::bad_request(format!("until: {e}")))
}

/// A silence as reads show it: with `active`, whether it is in force at `now`.
fn listed(s: &Silence, now: OffsetDateTime) -> serde_json::Value {
    let active = OffsetDateTime::parse(&s.until, &Rfc3339).is_ok_and(|u| u > now);
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["active"] = json!(active);
    v
}

/// The stored silence `id`.
async fn load(state: &AppState, id: &str) -> Result<Silence, ApiError> {
    let missing = || ApiError::not_found(format!("no silence {id}"));
    if !borderwatch_bus::valid_key(id) {
        return Err(missing());
    }
    let raw = state
        .bus
        .kv_get(names::SILENCES_BUCKET, id)
        .await?
        .ok_or_else(missing)?;
    serde_json::from_slice(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("silence {id} is stored in a form this gateway cannot read: {e}"),
        )
    })
}

async fn store(state: &AppState, silence: &Silence) -> Result<(), ApiError> {
    state
        .bus
        .kv_put(
            names::SILENCES_BUCKET,
            &silence.id,
            serde_json::to_vec(silence).unwrap_or_default().into(),
        )
        .await?;
    Ok(())
}

/// One silence, with whether it is in force now.
#[utoipa::path(get, path = "/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "the silence id (`sil-…`)")),
    responses(
        (status = 200, description = "the silence", body = doc::ListedSilence),
        (status = 404, description = "no such silence", body = schema::ErrorBody),
    ))]
pub(crate) async fn get_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let s = load(&state, &id).await?;
    Ok(Json(listed(&s, OffsetDateTime::now_utc())))
}

/// Edit a silence with a JSON merge patch (RFC 7396): it keeps its id; the result is
/// checked as a new silence is (a new `until` must be in the future). `matchers` given as a
/// list replaces the stored ones; as an object it merges field by field (`null` removes
/// one). Notify sees the edit within a second or two; what was muted stays muted.
#[utoipa::path(patch, path = "/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "the silence id (`sil-…`)")),
    request_body(content = doc::SilencePatch, description = "a JSON merge patch (RFC 7396) of the silence; `application/json` is taken too", content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "the edited silence", body = doc::ListedSilence),
        (status = 400, description = "the patch, or the silence it makes, is wrong (an invalid regex too): the message names the field", body = schema::ErrorBody),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such silence", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn patch_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stored = load(&state, &id).await?;
    let mut current = serde_json::to_value(&stored).unwrap_or_default();
    let patch = read_patch(&body, "silence", &current, &["id", "created_at"])?;
    if let Some(o) = current.as_object_mut() {
        o.remove("id");
        o.remove("created_at");
    }
    merge_patch(&mut current, &serde_json::Value::Object(patch));
    let req: SilenceRequest = serde_json::from_value(current)
        .map_err(|e| ApiError::bad_request(format!("invalid silence: {e}")))?;
    let now = OffsetDateTime::now_utc();
    let until = validate(&req, now, req.until != stored.until)?;
    let silence = Silence {
        id: stored.id,
        matchers: req.matchers,
        until,
        comment: req.comment.filter(|c| !c.trim().is_empty()),
        created_at: stored.created_at,
    };
    store(&state, &silence).await?;
    info!(silence = %silence.id, until = %silence.until, "silence edited");
    Ok(Json(listed(&silence, now)))
}

/// Mute matching surges until a time: they are recorded as `silenced`, not sent (not later
/// either).
#[utoipa::path(post, path = "/v1/silences", tag = "silences",
    request_body(content = doc::SilenceRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "the stored silence", body = doc::Silence),
        (status = 400, description = "the body is wrong: the message names the field", body = schema::ErrorBody),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn create_silence(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let req: SilenceRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid silence: {e}")))?;
    let until = validate(&req, OffsetDateTime::now_utc(), true)?;
    let silence = Silence {
        id: format!("sil-{}", uuid::Uuid::new_v4().simple()),
        matchers: req.matchers,
        until,
        comment: req.comment.filter(|c| !c.trim().is_empty()),
        created_at: now_rfc3339(),
    };
    store(&state, &silence).await?;
    info!(silence = %silence.id, until = %silence.until, "silence created");
    Ok((StatusCode::CREATED, Json(silence)))
}

/// Silences in id order, with `active` saying whether each is in force now.
#[utoipa::path(get, path = "/v1/silences", tag = "silences", params(KeyPageParams),
    responses(
        (status = 200, description = "a page of silences", body = doc::SilenceList),
        (status = 400, description = "a parameter is wrong", body = schema::ErrorBody),
    ))]
pub(crate) async fn list_silences(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(params): ApiQuery<KeyPageParams>,
) -> Result<Response, ApiError> {
    let now = OffsetDateTime::now_utc();
    let (raw, next_cursor) = key_page(&state.bus, names::SILENCES_BUCKET, &params).await?;
    let out: Vec<serde_json::Value> = raw
        .iter()
        .filter_map(|(_, raw)| serde_json::from_slice::<Silence>(raw).ok())
        .map(|s| listed(&s, now))
        .collect();
    let next = next_cursor.as_deref().map(|c| page::next_link(&uri, c));
    let resp =
        Json(json!({ "silences": out, "next_cursor": next_cursor, "next": next })).into_response();
    Ok(page::with_next(resp, next.as_deref()))
}

/// Delete a silence: later surges are delivered again (what it muted is not resent).
#[utoipa::path(delete, path = "/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "the silence id (`sil-…`)")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such silence", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !borderwatch_bus::valid_key(&id)
        || state
            .bus
            .kv_get(names::SILENCES_BUCKET, &id)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found(format!("no silence {id}")));
    }
    state.bus.kv_delete(names::SILENCES_BUCKET, &id).await?;
    info!(silence = %id, "silence deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// This resource's bodies as schema-only mirrors of `borderwatch-model`'s JSON, for the
/// document only.
mod doc {
    use utoipa::ToSchema;

    use crate::api::schema::Token;

    /// Every given field must equal the surge's; at least one is given.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SilenceFields {
        #[schema(required = false, value_type = Option<Token>)]
        source: Option<String>,
        /// ISO alpha-2, alpha-3 or a name.
        #[schema(required = false)]
        country: Option<String>,
        #[schema(required = false, value_type = Option<Token>)]
        category: Option<String>,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub(crate) enum MatcherName {
        Source,
        /// Matched against the ISO alpha-3 code (`PRK`); `=` and `!=` also take alpha-2 codes
        /// and names.
        Country,
        Category,
        Severity,
    }

    /// A matcher as Alertmanager's API writes it: `isEqual` false negates, `isRegex` true
    /// makes `value` a regex anchored at both ends (`^(?:value)$`, RE2 syntax, at most 1024
    /// bytes and a bounded compiled size).
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Matcher {
        name: MatcherName,
        #[schema(max_length = 1024)]
        value: String,
        /// Default false.
        #[serde(rename = "isRegex")]
        #[schema(required = false)]
        is_regex: bool,
        /// Default true.
        #[serde(rename = "isEqual")]
        #[schema(required = false)]
        is_equal: bool,
    }

    /// Which surges a silence mutes: the older object of equalities, or a list of
    /// matchers (Alertmanager's objects, or its text form such as `country!="PRK"`), every
    /// one of which must match; at least one.
    #[derive(ToSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub(crate) enum SilenceMatchers {
        Fields(SilenceFields),
        /// 1 to 32 matchers.
        List(Vec<MatcherOrText>),
    }

    /// A matcher: Alertmanager's object, or its text form (`category=~"study|work"`).
    #[derive(ToSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub(crate) enum MatcherOrText {
        Object(Matcher),
        Text(String),
    }

    /// A JSON merge patch (RFC 7396) of a silence: the members to change. `id` and
    /// `created_at` cannot change.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SilencePatch {
        #[schema(required = false)]
        matchers: SilenceMatchers,
        /// RFC 3339, in the future.
        #[schema(required = false, format = DateTime)]
        until: String,
        #[schema(required = false)]
        comment: Option<String>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SilenceRequest {
        matchers: SilenceMatchers,
        /// RFC 3339, in the future.
        #[schema(format = DateTime)]
        until: String,
        #[schema(required = false)]
        comment: Option<String>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Silence {
        id: String,
        matchers: SilenceMatchers,
        /// RFC 3339, UTC.
        until: String,
        #[schema(required = false)]
        comment: Option<String>,
        created_at: String,
    }

    /// A silence in the list, with whether it is in force now.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct ListedSilence {
        id: String,
        matchers: SilenceMatchers,
        until: String,
        #[schema(required = false)]
        comment: Option<String>,
        created_at: String,
        active: bool,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SilenceList {
        silences: Vec<ListedSilence>,
        next_cursor: Option<String>,
        next: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use time::macros::datetime;

    fn req(v: Value) -> SilenceRequest {
        serde_json::from_value(v).unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

    #[test]
    fn until_is_stored_in_utc() {
        let r = req(json!({"matchers": {"country": "PRK"}, "until": "2025-01-02T03:00:00+03:00"}));
        assert_eq!(validate(&r, NOW, true).unwrap(), "2025-01-02T00:00:00Z");
    }

    #[test]
    fn bad_silences_are_refused() {
        for bad in [
            json!({"matchers": {}, "until": "2025-01-02T00:00:00Z"}),
            json!({"matchers": {"category": "Study"}, "until": "2025-01-02T00:00:00Z"}),
            json!({"matchers": {"country": "PRK"}, "until": "tomorrow"}),
            json!({"matchers": {"country": "PRK"}, "until": "2024-12-31T00:00:00Z"}),
        ] {
            let r = serde_json::from_value::<SilenceRequest>(bad.clone());
            assert!(
                r.is_err() || validate(&r.unwrap(), NOW, true).is_err(),
                "{bad}"
            );
        }
        // An edit that keeps a past `until` is not refused for it.
        let past = req(json!({"matchers": {"country": "PRK"}, "until": "2024-12-31T00:00:00Z"}));
        assert!(validate(&past, NOW, false).is_ok());
        assert!(
            serde_json::from_value::<SilenceRequest>(
                json!({"matchers": {"country": "XXX"}, "until": "2025-01-02T00:00:00Z"})
            )
            .is_err()
        );
    }
}
