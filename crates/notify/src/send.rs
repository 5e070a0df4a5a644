//! Sending one notice to one webhook: render, sign, POST, and retry with backoff until it is
//! taken or the policy gives up. Every attempt goes to the delivery log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use borderwatch_bus::names;
use borderwatch_bus::{Bus, BusError};
use borderwatch_model::{
    EVENT_ID_HEADER, SIGNATURE_HEADER, Silence, Subscription, now_rfc3339, sign_body,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::NotifyConfig;
use crate::backoff::parse_retry_after;
use crate::cache::Cached;
use crate::deadletter;
use crate::digest::Claim;
use crate::notice::Notice;
use crate::record::{DeliveryAttempt, DeliveryRecord, Outcome, log_attempt};
use crate::template;

/// What every delivery path shares.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) bus: Bus,
    pub(crate) client: reqwest::Client,
    pub(crate) cfg: Arc<NotifyConfig>,
    /// One per webhook POST in flight (`cfg.concurrency`): held around each attempt only,
    /// never while waiting to retry.
    pub(crate) posts: Arc<Semaphore>,
    /// This process, as the owner of delivery claims.
    pub(crate) owner: Arc<str>,
    pub(crate) subscriptions: Arc<Cached<Subscription>>,
    pub(crate) silences: Arc<Cached<Silence>>,
}

impl Ctx {
    pub(crate) fn new(bus: Bus, cfg: NotifyConfig) -> Result<Ctx, BusError> {
        let client = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .user_agent(concat!("borderwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BusError::Nats {
                op: "http client",
                reason: e.to_string(),
            })?;
        Ok(Ctx {
            bus,
            client,
            posts: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            owner: format!("{:016x}", rand::random::<u64>()).into(),
            subscriptions: Arc::new(Cached::new(names::SUBSCRIPTIONS_BUCKET, cfg.cache_max_age)),
            silences: Arc::new(Cached::new(names::SILENCES_BUCKET, cfg.cache_max_age)),
            cfg: Arc::new(cfg),
        })
    }
}

/// How a notice's sending ended.
#[derive(Debug)]
pub(crate) enum Sent {
    Delivered {
        attempts: u32,
        status: u16,
        /// The POST slot of the accepted attempt, to hold until the delivery is recorded:
        /// so a crash can leave at most `concurrency` POSTs taken but unrecorded.
        slot: OwnedSemaphorePermit,
    },
    GaveUp(Failure),
    /// Shutdown, or another sender took the work over: nothing recorded.
    Interrupted,
}

impl Sent {
    /// The delivery record of a finished send of `notice` (id `event`) to `sub`, with the POST
    /// slot to hold until that record is written. A delivery given up on is published as a
    /// dead letter first: a crash between the two resends it, never loses it. `None` when
    /// the send was interrupted and there is nothing to record.
    pub(crate) async fn into_record(
        self,
        ctx: &Ctx,
        sub: &Subscription,
        notice: &Notice,
        event: &str,
    ) -> Result<Option<(DeliveryRecord, Option<OwnedSemaphorePermit>)>, BusError> {
        let mut rec = DeliveryRecord::new(&sub.id, event, Outcome::Delivered);
        match self {
            Sent::Delivered {
                attempts,
                status,
                slot,
            } => {
                rec.attempts = attempts;
                rec.status = Some(status);
                Ok(Some((rec, Some(slot))))
            }
            Sent::GaveUp(failure) => {
                deadletter::publish(ctx, sub, notice, &failure).await?;
                rec.outcome = Outcome::Failed;
                rec.attempts = failure.attempts;
                rec.status = failure.status;
                rec.error = Some(failure.error);
                Ok(Some((rec, None)))
            }
            Sent::Interrupted => Ok(None),
        }
    }
}

/// The last failure of a notice given up on.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) attempts: u32,
    pub(crate) status: Option<u16>,
    pub(crate) error: String,
}

/// What keeps the work ours while waiting between attempts.
#[derive(Debug)]
pub(crate) enum Keepalive<'a> {
    /// A surge: the service's ticker keeps the event (and its claims) alive for as long as
    /// the event is handled, so there is nothing to do here.
    Event,
    /// A digest: refresh its claim; false when another sender took it over.
    Claim(&'a Claim),
}

impl Keepalive<'_> {
    async fn beat(&self) -> bool {
        match self {
            Keepalive::Event => true,
            Keepalive::Claim(c) => c.refresh().await,
        }
    }

    fn period(&self, cfg: &NotifyConfig) -> Duration {
        match self {
            // Only the cancellation is watched; any slice does.
            Keepalive::Event => cfg.ack_wait,
            Keepalive::Claim(_) => cfg.digest_claim_lease / 3,
        }
    }
}

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

/// Sends `notice` to `sub` until it is taken, given up, or interrupted.
pub(crate) async fn send(
    ctx: &Ctx,
    sub: &Subscription,
    notice: &Notice,
    keepalive: Keepalive<'_>,
    cancel: &CancellationToken,
) -> Sent {
    let id = notice.id();
    let body = template::render(sub.format, notice, ctx.cfg.public_url.as_deref());
    let backoff = &ctx.cfg.backoff;
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // A slot around the attempt only: one waiting to retry holds none.
        let slot = tokio::select! {
            _ = cancel.cancelled() => return Sent::Interrupted,
            p = ctx.posts.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Sent::Interrupted,
            },
        };
        let a = post(ctx, sub, id, &body).await;
        if let Some(status) = a.status.filter(|_| a.ok()) {
            info!(subscription = %sub.id, event = %id, status, attempt, latency_ms = a.latency_ms, "delivered");
            log(ctx, &sub.id, id, attempt, &a, Outcome::Delivered).await;
            return Sent::Delivered {
                attempts: attempt,
                status,
                slot,
            };
        }
        drop(slot);
        let error = a.error.clone().unwrap_or_default();
        if backoff.exhausted(attempt, started.elapsed()) {
            warn!(subscription = %sub.id, event = %id, attempt, error, "giving up on a delivery");
            log(ctx, &sub.id, id, attempt, &a, Outcome::Failed).await;
            return Sent::GaveUp(Failure {
                attempts: attempt,
                status: a.status,
                error,
            });
        }
        log(ctx, &sub.id, id, attempt, &a, Outcome::Retrying).await;
        let wait = backoff.delay(attempt, rand::random::<f64>(), a.retry_after);
        warn!(
            subscription = %sub.id, event = %id, attempt, status = ?a.status, error,
            retry_in_ms = wait.as_millis() as u64, "delivery failed; retrying"
        );
        // Keep the work ours while we wait, in slices shorter than its lease.
        let until = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < until {
            let slice = (until - tokio::time::Instant::now()).min(keepalive.period(&ctx.cfg));
            tokio::select! {
                _ = cancel.cancelled() => return Sent::Interrupted,
                _ = tokio::time::sleep(slice) => {}
            }
            if !keepalive.beat().await {
                return Sent::Interrupted;
            }
        }
    }
}
