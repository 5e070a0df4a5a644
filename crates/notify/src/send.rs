//! Sending one notice to one webhook: render, sign, POST, and retry with backoff until it is
//! taken or the policy gives up. Every attempt goes to the delivery log.

use std::time::{Duration, Instant};

use borderwatch_bus::BusError;
use borderwatch_model::Subscription;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::attempt::log;
use crate::channel;
use crate::config::NotifyConfig;
use crate::ctx::Ctx;
use crate::deadletter::{self, Failure};
use crate::digest_claim::Claim;
use crate::notice::Notice;
use crate::record::{DeliveryRecord, Outcome};
use crate::template;

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

/// Sends `notice` to `sub` until it is taken, given up, or interrupted.
pub(crate) async fn send(
    ctx: &Ctx,
    sub: &Subscription,
    notice: &Notice,
    keepalive: Keepalive<'_>,
    cancel: &CancellationToken,
) -> Sent {
    let id = notice.id();
    let body = template::render(
        sub.format,
        notice,
        ctx.cfg.public_url.as_deref(),
        ctx.cfg.chart_images,
    );
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
        let a = channel::attempt(ctx, sub, notice, &body).await;
        if let Some(status) = a.status.filter(|_| a.ok()) {
            info!(subscription = %sub.id, event = %id, status, attempt, latency_ms = a.latency_ms, "delivered");
            log(ctx, &sub.id, id, attempt, &a, Outcome::Delivered).await;
            crate::telemetry::record_latency(sub.format, notice);
            return Sent::Delivered {
                attempts: attempt,
                status,
                slot,
            };
        }
        drop(slot);
        let error = a.error.clone().unwrap_or_default();
        // A refused target stays refused: give up at once rather than retry for hours.
        if a.refused || backoff.exhausted(attempt, started.elapsed()) {
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
