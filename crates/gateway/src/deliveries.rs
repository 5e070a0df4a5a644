//! The delivery log: `GET /v1/subscriptions/{id}/deliveries`, every webhook attempt notify
//! made for a subscription (newest first), read from `BW_ATTEMPTS`.

use std::collections::VecDeque;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use borderwatch_bus::names;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Reading stops here even if the stream has not reached its last message (it should).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
pub(crate) struct DeliveriesParams {
    limit: Option<String>,
}

pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<DeliveriesParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`limit={s}` must be a whole number from 1 to {MAX_LIMIT}"
                ))
            })?,
    };
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
    let mut newest: VecDeque<Value> = VecDeque::with_capacity(limit);
    if let Some(last) = last {
        let mut replay = state.bus.replay(names::ATTEMPT_STREAM, &subject, 1).await?;
        let read = async {
            while let Some(msg) = replay.next().await {
                let msg = msg?;
                if let Ok(attempt) = serde_json::from_slice::<Value>(&msg.payload) {
                    if newest.len() == limit {
                        newest.pop_front();
                    }
                    newest.push_back(attempt);
                }
                if msg.seq >= last {
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
    let deliveries: Vec<Value> = newest.into_iter().rev().collect();
    Ok(Json(
        json!({ "subscription": id, "deliveries": deliveries }),
    ))
}
