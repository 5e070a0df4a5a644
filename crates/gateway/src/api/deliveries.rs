//! The delivery log: `GET /v1/subscriptions/{id}/deliveries`, every webhook attempt notify
//! made for a subscription (newest first), read from `BW_ATTEMPTS`.

use std::collections::VecDeque;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use borderwatch_bus::names;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, OpenApi};

use super::schema;
use crate::error::ApiError;
use crate::page::{self, ApiQuery};
use crate::state::AppState;

/// The delivery log's part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(list_deliveries),
    components(schemas(doc::DeliveryList, doc::DeliveryAttempt, doc::Outcome))
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

/// This resource's bodies as schema-only mirrors of `borderwatch-model`'s JSON, for the
/// document only.
mod doc {
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

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct DeliveryList {
        subscription: String,
        deliveries: Vec<DeliveryAttempt>,
        next_cursor: Option<String>,
        next: Option<String>,
    }
}
