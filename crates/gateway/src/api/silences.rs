//! Silences: `POST /v1/silences`, `GET /v1/silences`, `DELETE /v1/silences/{id}`, kept in
//! the `bw_silences` bucket. Notify records a silenced event instead of delivering it; a
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

use super::{KeyPageParams, key_page, schema};
use crate::error::ApiError;
use crate::page::{self, ApiQuery};
use crate::state::AppState;

/// The silences' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(create_silence, list_silences, delete_silence),
    components(schemas(
        doc::SilenceRequest,
        doc::SilenceMatchers,
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

/// Checks a request and returns `until` as RFC 3339 UTC.
fn validate(req: &SilenceRequest, now: OffsetDateTime) -> Result<String, ApiError> {
    let m = &req.matchers;
    if m.source.is_none() && m.country.is_none() && m.category.is_none() {
        return Err(ApiError::bad_request(
            "matchers needs at least one of source, country, category",
        ));
    }
    for (field, value) in [
        ("matchers.source", &m.source),
        ("matchers.category", &m.category),
    ] {
        if let Some(v) = value
            && !borderwatch_model::is_token(v)
        {
            return Err(ApiError::bad_request(format!(
                "{field}: `{v}` is not a name (lowercase letters, digits, - and _)"
            )));
        }
    }
    let until = OffsetDateTime::parse(&req.until, &Rfc3339).map_err(|_| {
        ApiError::bad_request(format!(
            "until `{}` is not an RFC 3339 time such as 2025-01-31T18:00:00Z",
            req.until
        ))
    })?;
    if until <= now {
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
    let until = validate(&req, OffsetDateTime::now_utc())?;
    let silence = Silence {
        id: format!("sil-{}", uuid::Uuid::new_v4().simple()),
        matchers: req.matchers,
        until,
        comment: req.comment.filter(|c| !c.trim().is_empty()),
        created_at: now_rfc3339(),
    };
    state
        .bus
        .kv_put(
            names::SILENCES_BUCKET,
            &silence.id,
            serde_json::to_vec(&silence).unwrap_or_default().into(),
        )
        .await?;
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
    let mut out = Vec::new();
    for (_, raw) in raw {
        if let Ok(s) = serde_json::from_slice::<Silence>(&raw) {
            let active = OffsetDateTime::parse(&s.until, &Rfc3339).is_ok_and(|u| u > now);
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["active"] = json!(active);
            out.push(v);
        }
    }
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

    /// Every given field must match; at least one is given.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SilenceMatchers {
        #[schema(required = false, value_type = Option<Token>)]
        source: Option<String>,
        /// ISO alpha-2, alpha-3 or a name.
        #[schema(required = false)]
        country: Option<String>,
        #[schema(required = false, value_type = Option<Token>)]
        category: Option<String>,
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
        assert_eq!(validate(&r, NOW).unwrap(), "2025-01-02T00:00:00Z");
    }

    #[test]
    fn bad_silences_are_refused() {
        for bad in [
            json!({"matchers": {}, "until": "2025-01-02T00:00:00Z"}),
            json!({"matchers": {"category": "Study"}, "until": "2025-01-02T00:00:00Z"}),
            json!({"matchers": {"country": "PRK"}, "until": "tomorrow"}),
            json!({"matchers": {"country": "PRK"}, "until": "2024-12-31T00:00:00Z"}),
        ] {
            assert!(validate(&req(bad.clone()), NOW).is_err(), "{bad}");
        }
        assert!(
            serde_json::from_value::<SilenceRequest>(
                json!({"matchers": {"country": "XXX"}, "until": "2025-01-02T00:00:00Z"})
            )
            .is_err()
        );
    }
}
