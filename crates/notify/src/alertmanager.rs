//! Pushing surges to an existing Alertmanager (`--alertmanager-url`): `POST /api/v2/alerts`
//! with one postable alert per event (`alert.rs`), retried with the webhooks' backoff, so
//! that Alertmanager's routing, grouping, inhibition, silences and receivers apply.
//!
//! Pushing the same alert again is harmless (Alertmanager keeps one alert per label set), so
//! no claim or record is kept: a redelivered event is simply pushed again. An event is
//! acknowledged only after its push succeeded or was given up.

use std::time::{Duration, Instant};

use borderwatch_model::SurgeEvent;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::alert;
use crate::backoff::parse_retry_after;
use crate::ctx::Ctx;

/// Where alerts are posted: the configured URL, with `/api/v2/alerts` added unless it is
/// there already.
pub(crate) fn alerts_endpoint(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with("/api/v2/alerts") {
        base.to_string()
    } else {
        format!("{base}/api/v2/alerts")
    }
}

/// Pushes `event` to the configured Alertmanager when it is an alert (see
/// [`alert::pushed`]), retrying until it is taken or the backoff policy gives up. Returns
/// how long until the event should come back when interrupted by shutdown, else None.
pub(crate) async fn push(
    ctx: &Ctx,
    event: &SurgeEvent,
    cancel: &CancellationToken,
) -> Option<Duration> {
    let base = ctx.cfg.alertmanager_url.as_deref()?;
    if !alert::pushed(event) {
        return None;
    }
    let mut event = event.clone();
    event.link_evidence(ctx.cfg.public_url.as_deref());
    let url = alerts_endpoint(base);
    let body = serde_json::to_vec(&alert::postable(&event)).unwrap_or_default();
    let policy = &ctx.cfg.backoff;
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (outcome, retry_after) = post_once(ctx, &url, &body).await;
        match outcome {
            Ok(()) => {
                metrics::counter!("borderwatch_alertmanager_pushes_total", "outcome" => "delivered")
                    .increment(1);
                info!(event = %event.id, attempt, "pushed to Alertmanager");
                return None;
            }
            Err(error) if policy.exhausted(attempt, started.elapsed()) => {
                metrics::counter!("borderwatch_alertmanager_pushes_total", "outcome" => "failed")
                    .increment(1);
                warn!(event = %event.id, attempt, %error, "gave up pushing to Alertmanager");
                return None;
            }
            Err(error) => {
                let wait = policy.delay(attempt, rand::random::<f64>(), retry_after);
                warn!(event = %event.id, attempt, %error, retry_in_ms = wait.as_millis() as u64,
                    "pushing to Alertmanager failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return Some(Duration::from_secs(1)),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// One POST, within a webhook POST slot: Ok on a 2xx answer, else why not and the answer's
/// `Retry-After`.
async fn post_once(ctx: &Ctx, url: &str, body: &[u8]) -> (Result<(), String>, Option<Duration>) {
    let Ok(_slot) = ctx.posts.acquire().await else {
        return (Err("shutting down".into()), None);
    };
    let result = ctx
        .operator_client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => (Ok(()), None),
        Ok(resp) => {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let status = resp.status();
            // Alertmanager says why it refused an alert in a short JSON body.
            let text = resp.text().await.unwrap_or_default();
            let text: String = text.chars().take(300).collect();
            (Err(format!("HTTP {status}: {text}")), retry_after)
        }
        Err(e) => (
            Err(format!("could not reach Alertmanager: {}", e.without_url())),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_v2_alerts_path_under_the_base() {
        for base in [
            "http://127.0.0.1:9093",
            "http://127.0.0.1:9093/",
            "http://127.0.0.1:9093/api/v2/alerts",
        ] {
            assert_eq!(alerts_endpoint(base), "http://127.0.0.1:9093/api/v2/alerts");
        }
        assert_eq!(
            alerts_endpoint("https://am.example.org/prefix"),
            "https://am.example.org/prefix/api/v2/alerts"
        );
    }
}
