//! The delivery log: `GET /v1/subscriptions/{id}/deliveries`, every webhook attempt notify
//! made for a subscription (newest first), read from `BW_ATTEMPTS`; and its dead letters
//! (`BW_DEADLETTER`), listed and resent one at a time with notify's own resend (the one
//! `borderwatch notify replay` uses).

use std::collections::VecDeque;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use borderwatch_bus::names;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, OpenApi};

use super::{notify_config, schema, subscriptions};
use crate::error::ApiError;
use crate::page::{self, ApiQuery};
use crate::state::AppState;

/// The delivery log's part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(list_deliveries, list_dead_letters, redeliver),
    components(schemas(
        doc::DeliveryList,
        doc::DeliveryAttempt,
        doc::Outcome,
        doc::DeadLetter,
        doc::DeadLetterList,
        doc::Redelivery,
    ))
)]
pub(crate) struct DeliveriesApi;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Reading stops here even if the stream has not reached its last message (it should).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page: older attempts.
    cursor: Option<String>,
}

/// The delivery log of a subscription: every webhook attempt, newest first, with the
/// receiver's status and a short reason, never what it answered. With an API token, reading
/// it needs it (the read token is not enough).
#[utoipa::path(get, path = "/v1/subscriptions/{id}/deliveries", tag = "subscriptions",
    params(("id" = String, Path, description = "the subscription id (`sub-…`)"), DeliveriesParams),
    responses(
        (status = 200, description = "a page of attempts", body = doc::DeliveryList),
        (status = 400, description = "a parameter is wrong", body = schema::ErrorBody),
        (status = 401, description = "the gateway has an API token and it is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such subscription", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    ApiQuery(params): ApiQuery<DeliveriesParams>,
) -> Result<Response, ApiError> {
    let limit = page::limit(params.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    // Attempts before this stream sequence (older than the previous page).
    let before = page::seq_cursor(params.cursor.as_deref())?.unwrap_or(u64::MAX);
    if !borderwatch_bus::valid_key(&id)
        || state
            .bus
            .kv_get(names::SUBSCRIPTIONS_BUCKET, &id)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found(format!("no subscription {id}")));
    }
    let subject = names::attempt_subject(&id);
    // The replay does not end by itself: stop at the subject's last message now.
    let last = state
        .bus
        .last_per_subject(names::ATTEMPT_STREAM, &[&subject])
        .await?
        .iter()
        .map(|m| m.seq)
        .max();
    // The newest `limit` attempts before the cursor, with their sequences, and how many
    // matched in all (more than `limit`: there is a next page).
    let mut newest: VecDeque<(u64, Value)> = VecDeque::with_capacity(limit);
    let mut matched = 0usize;
    if let Some(last) = last {
        let mut replay = state.bus.replay(names::ATTEMPT_STREAM, &subject, 1).await?;
        let read = async {
            while let Some(msg) = replay.next().await {
                let msg = msg?;
                if msg.seq < before
                    && let Ok(mut attempt) = serde_json::from_slice::<Value>(&msg.payload)
                {
                    drop_answer_text(&mut attempt);
                    matched += 1;
                    if newest.len() == limit {
                        newest.pop_front();
                    }
                    newest.push_back((msg.seq, attempt));
                }
                if msg.seq >= last || msg.seq + 1 >= before {
                    break;
                }
            }
            Ok::<(), borderwatch_bus::BusError>(())
        };
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!(subscription = %id, "delivery log read timed out"),
        }
    }
    let next_cursor = (matched > newest.len())
        .then(|| newest.front().map(|(seq, _)| seq.to_string()))
        .flatten();
    let next = next_cursor.as_deref().map(|c| page::next_link(&uri, c));
    let deliveries: Vec<Value> = newest.into_iter().rev().map(|(_, v)| v).collect();
    let resp = Json(json!({
        "subscription": id,
        "deliveries": deliveries,
        "next_cursor": next_cursor,
        "next": next,
    }))
    .into_response();
    Ok(page::with_next(resp, next.as_deref()))
}

/// Attempts logged before answer bodies were dropped say `HTTP 500: <the first 200
/// characters of the answer>`: show only their status, since that text was the receiver's,
/// whatever it was (a redirect once put an internal page's secrets there).
fn drop_answer_text(attempt: &mut Value) {
    let Some(error) = attempt.get("error").and_then(Value::as_str) else {
        return;
    };
    let old_form = error.len() >= 9
        && error.starts_with("HTTP ")
        && error.as_bytes()[5..8].iter().all(u8::is_ascii_digit)
        && error.as_bytes()[8] == b':';
    if old_form {
        attempt["error"] = Value::String(error[..8].to_string());
    }
}

/// The dead letters of a subscription: notices given up on after every retry, oldest first,
/// each once, with when a resend delivered it. With an API token, reading them needs it.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/dead-letters", tag = "subscriptions",
    params(("id" = String, Path, description = "the subscription id (`sub-…`)")),
    responses(
        (status = 200, description = "the subscription's dead letters", body = doc::DeadLetterList),
        (status = 401, description = "the gateway has an API token and it is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such subscription", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn list_dead_letters(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    subscriptions::load(&state, &id).await?;
    let read = borderwatch_notify::deadletter::list(&state.bus, &id);
    let listed = tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "reading the dead letters took too long: try again",
            )
        })??;
    let dead: Vec<Value> = listed.iter().map(dead_letter_json).collect();
    Ok(Json(json!({ "subscription": id, "dead_letters": dead })))
}

fn dead_letter_json(l: &borderwatch_notify::deadletter::Listed) -> Value {
    let d = &l.dead;
    let kind = match &d.notice {
        borderwatch_notify::notice::Notice::Surge(_) => "surge",
        borderwatch_notify::notice::Notice::Digest(_) => "digest",
        borderwatch_notify::notice::Notice::Revision(_) => "revision",
        borderwatch_notify::notice::Notice::Revisions(_) => "revisions",
        borderwatch_notify::notice::Notice::Missing(_) => "missing",
    };
    json!({
        "event_id": d.event_id,
        "kind": kind,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "failed_at": d.failed_at,
        "redelivered_at": l.redelivered_at,
    })
}

/// Resend one dead letter now, once, as `borderwatch notify replay` does: signed as every
/// delivery is, logged in the delivery log; taken, it is marked done and its delivery
/// record says delivered. A dead letter a resend already delivered is not sent again (409).
#[utoipa::path(post, path = "/v1/subscriptions/{id}/dead-letters/{event}/redeliver", tag = "subscriptions",
    params(
        ("id" = String, Path, description = "the subscription id (`sub-…`)"),
        ("event" = String, Path, description = "the dead letter's event id"),
    ),
    responses(
        (status = 200, description = "sent once: `outcome` delivered (2xx) or failed (still dead; try again later)", body = doc::Redelivery),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such subscription, or no such dead letter of it", body = schema::ErrorBody),
        (status = 409, description = "a resend already delivered it", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    Path((id, event)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    subscriptions::load(&state, &id).await?;
    let listed = borderwatch_notify::deadletter::list(&state.bus, &id).await?;
    let Some(dl) = listed.into_iter().find(|l| l.dead.event_id == event) else {
        return Err(ApiError::not_found(format!(
            "subscription {id} has no dead letter {event}"
        )));
    };
    let cfg = notify_config(&state.cfg);
    let resent = borderwatch_notify::resend_one(state.bus.clone(), cfg, &dl.dead).await?;
    use borderwatch_notify::Resent;
    let (outcome, attempt, status, error) = match resent {
        Resent::Delivered { attempt, status } => ("delivered", attempt, status, None),
        Resent::Failed {
            attempt,
            status,
            error,
        } => ("failed", attempt, status, Some(error)),
        Resent::AlreadyDone(at) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_redelivered",
                format!("dead letter {event} was resent and delivered at {at}"),
            ));
        }
        Resent::Orphaned => return Err(ApiError::not_found(format!("no subscription {id}"))),
    };
    tracing::info!(subscription = %id, event = %event, outcome, "dead letter redelivered over the API");
    Ok(Json(json!({
        "subscription": id,
        "event_id": event,
        "outcome": outcome,
        "attempt": attempt,
        "status": status,
        "error": error,
    })))
}

/// This resource's bodies as schema-only mirrors of `borderwatch-model`'s JSON, for the
/// document only.
pub(crate) mod doc {
    use utoipa::ToSchema;

    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub(crate) enum Outcome {
        Delivered,
        Retrying,
        Failed,
        Silenced,
    }

    /// One webhook attempt.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct DeliveryAttempt {
        subscription: String,
        event_id: String,
        /// 1 for the first attempt; 0 for a silenced notice.
        attempt: u32,
        at: String,
        outcome: Outcome,
        status: Option<u16>,
        latency_ms: Option<u64>,
        /// What went wrong, briefly: `HTTP 503 Service Unavailable`, a network error, or
        /// `refused: …` for a target that is not a public address. Never the answer's body.
        error: Option<String>,
    }

    /// A notice given up on after every retry.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct DeadLetter {
        event_id: String,
        /// `surge` (one surge), `digest` (a digest, summary, story or top-N message),
        /// `revision` or `missing` (a revised figure, a missing category: `kinds`).
        #[schema(pattern = "^(surge|digest|revision|missing)$")]
        kind: String,
        attempts: u32,
        last_status: Option<u16>,
        /// What the last attempt said, briefly (never the receiver's answer).
        last_error: String,
        failed_at: String,
        /// When a resend delivered it; null while it is still dead.
        redelivered_at: Option<String>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct DeadLetterList {
        subscription: String,
        dead_letters: Vec<DeadLetter>,
    }

    /// What one resend of a dead letter did.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Redelivery {
        subscription: String,
        event_id: String,
        /// `delivered` or `failed`.
        #[schema(pattern = "^(delivered|failed)$")]
        outcome: String,
        /// This attempt's number (the dead letter's attempts plus one).
        attempt: u32,
        status: Option<u16>,
        error: Option<String>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct DeliveryList {
        subscription: String,
        deliveries: Vec<DeliveryAttempt>,
        next_cursor: Option<String>,
        next: Option<String>,
    }
}
