//! One attempt at a webhook: a single signed POST and its line in the delivery log
//! (`BW_ATTEMPTS`). Retrying is the caller's business (`send`, the dead-letter replay).

use std::time::{Duration, Instant};

use borderwatch_model::{EVENT_ID_HEADER, SIGNATURE_HEADER, Subscription, now_rfc3339, sign_body};

use crate::backoff::parse_retry_after;
use crate::ctx::Ctx;
use crate::record::{DeliveryAttempt, Outcome, log_attempt};

/// The result of one POST.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) status: Option<u16>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) error: Option<String>,
    pub(crate) latency_ms: u64,
}

impl Attempt {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_some_and(|c| (200..300).contains(&c))
    }
}

/// POSTs `body` once, signed with the subscription's secret.
pub(crate) async fn post(ctx: &Ctx, sub: &Subscription, id: &str, body: &[u8]) -> Attempt {
    let secret = sub.webhook.secret.as_deref().unwrap_or_default();
    let sent = Instant::now();
    let result = ctx
        .client
        .post(&sub.webhook.url)
        .header("content-type", "application/json")
        .header(EVENT_ID_HEADER, id)
        .header(SIGNATURE_HEADER, sign_body(secret.as_bytes(), body))
        .body(body.to_vec())
        .send()
        .await;
    let latency_ms = sent.elapsed().as_millis() as u64;
    match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let error = if resp.status().is_success() {
                None
            } else {
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.chars().take(200).collect();
                Some(format!("HTTP {status}: {}", text.trim()))
            };
            Attempt {
                status: Some(status),
                retry_after,
                error,
                latency_ms,
            }
        }
        Err(e) => Attempt {
            status: None,
            retry_after: None,
            error: Some(e.to_string()),
            latency_ms,
        },
    }
}

/// Logs one attempt.
pub(crate) async fn log(ctx: &Ctx, sub: &str, id: &str, n: u32, a: &Attempt, outcome: Outcome) {
    log_attempt(
        &ctx.bus,
        &DeliveryAttempt {
            subscription: sub.into(),
            event_id: id.into(),
            attempt: n,
            at: now_rfc3339(),
            outcome,
            status: a.status,
            latency_ms: Some(a.latency_ms),
            error: a.error.clone(),
        },
    )
    .await;
}
