//! What every event consumer shares (surges in `service`, revisions and missing categories
//! in `kinds`): keeping an event in hand ours while it is handled ([`kept_alive`], which
//! marks it in progress and refreshes its delivery claims), and sending one notice under a
//! claim and recording it ([`deliver`]). Imports `send` and `record`, none of the consumers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use borderwatch_bus::{BusError, Delivery};
use borderwatch_model::Subscription;
use futures::StreamExt;
use tracing::warn;

use crate::ctx::Ctx;
use crate::notice::Notice;
use crate::record::Claim;
use crate::send::{Keepalive, send};

/// The delivery claims one event's task holds, refreshed by its ticker.
#[derive(Debug, Default)]
pub(crate) struct Claims(Mutex<Vec<Arc<Claim>>>);

impl Claims {
    pub(crate) fn add(&self, c: Arc<Claim>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }

    pub(crate) fn remove(&self, c: &Arc<Claim>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| !Arc::ptr_eq(x, c));
    }

    fn all(&self) -> Vec<Arc<Claim>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Runs `work` while, every `period`, marking `delivery` in progress and refreshing the
/// event's claims: the one place that keeps an event in hand ours.
pub(crate) async fn kept_alive<F: Future>(
    ctx: &Ctx,
    delivery: &Delivery,
    claims: &Claims,
    period: Duration,
    work: F,
) -> F::Output {
    tokio::pin!(work);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticker.tick() => {
                if let Err(e) = delivery.in_progress().await {
                    warn!(error = %e, seq = delivery.message.seq, "cannot mark an event in progress");
                }
                futures::stream::iter(claims.all())
                    .for_each_concurrent(32, |c| async move { c.refresh(&ctx.bus).await })
                    .await;
            }
        }
    }
}

/// Sends `notice` to `sub` under `claim`, and replaces the claim with the record. None when
/// recorded; Some(delay) when interrupted (the event comes back after it).
pub(crate) async fn deliver(
    ctx: &Ctx,
    sub: &Subscription,
    notice: &Notice,
    claim: &Claim,
) -> Result<Option<Duration>, BusError> {
    let sent = send(ctx, sub, notice, Keepalive::Event, &claim.lost).await;
    let Some((rec, slot)) = sent.into_record(ctx, sub, notice, notice.id()).await? else {
        // Shutdown: give the claim back so the next copy need not wait out its lease.
        // Taken over: it is no longer ours to release; the new holder settles it.
        claim.release(&ctx.bus).await;
        return Ok(Some(Duration::from_secs(1)));
    };
    claim.finish(&ctx.bus, &rec).await?;
    drop(slot);
    Ok(None)
}
