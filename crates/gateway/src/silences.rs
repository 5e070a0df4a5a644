//! Silences: `POST /v1/silences`, `GET /v1/silences`, `DELETE /v1/silences/{id}`, kept in
//! the `bw_silences` bucket. Notify records a silenced event instead of delivering it; a
//! silence that ends later does not resend what it muted.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use borderwatch_bus::names;
use borderwatch_model::{Silence, SilenceMatchers, now_rfc3339};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::info;

use crate::{ApiError, AppState};

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

/// Every silence, with `active` saying whether it is in force now.
pub(crate) async fn list_silences(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for key in state.bus.kv_keys(names::SILENCES_BUCKET).await? {
        if let Some(raw) = state.bus.kv_get(names::SILENCES_BUCKET, &key).await?
            && let Ok(s) = serde_json::from_slice::<Silence>(&raw)
        {
            let active = OffsetDateTime::parse(&s.until, &Rfc3339).is_ok_and(|u| u > now);
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["active"] = json!(active);
            out.push(v);
        }
    }
    Ok(Json(json!({ "silences": out })))
}

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

#[cfg(test)]
mod tests {
    use super::*;
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
