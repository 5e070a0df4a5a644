//! The surge path: the durable consumer `notify` on `BW_SURGES`, the subscriptions and
//! silences buckets, and a delivery record per (subscription, event) in `bw_deliveries`.
//!
//! An event is acknowledged only after every matching subscription has settled it
//! (delivered, given up to the dead-letter stream, silenced, or recorded for a digest), so
//! a killed process resumes with it. The record is written after the receiver answered
//! 2xx: a receiver that took the POST but whose answer was lost gets it again, with the
//! same `X-Borderwatch-Event-Id`, which it can use to drop the repeat.

use std::time::Duration;

use borderwatch_bus::{Bus, BusError, Delivery, names};
use borderwatch_model::{Silence, Subscription, SurgeEvent};
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::notice::Notice;
use crate::record::{DeliveryAttempt, DeliveryRecord, Outcome, log_attempt, read_record};
use crate::send::{Ctx, Keepalive, Sent, send};
use crate::{deadletter, digest, silence};

/// Settings of the notify service.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub backoff: Backoff,
    /// Timeout of one webhook POST.
    pub request_timeout: Duration,
    /// Events delivered at once.
    pub concurrency: usize,
    /// The gateway's public base URL, for links in Slack and Teams messages.
    pub public_url: Option<String>,
    /// How often the digest sender looks for due digests.
    pub digest_tick: Duration,
    /// A digest claim not refreshed for this long belongs to a dead sender.
    pub digest_claim_lease: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(10),
            concurrency: 64,
            public_url: None,
            digest_tick: digest::default_tick(),
            digest_claim_lease: Duration::from_secs(60),
        }
    }
}

pub(crate) const ACK_WAIT: Duration = Duration::from_secs(30);

/// Delivers events (and sends digests) until `cancel` fires, then finishes the attempts in
/// flight.
pub async fn run(bus: Bus, cfg: NotifyConfig, cancel: CancellationToken) -> Result<(), BusError> {
    let ctx = Ctx::new(bus, cfg)?;
    let mut deliveries = ctx
        .bus
        .consume(
            names::SURGE_STREAM,
            names::NOTIFY_CONSUMER,
            "bw.surge.>",
            ACK_WAIT,
        )
        .await?;
    info!("notify consuming surges");
    let digests = tokio::spawn(digest::run_sender(ctx.clone(), cancel.clone()));
    let slots = Arc::new(Semaphore::new(ctx.cfg.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let delivery = tokio::select! {
            _ = cancel.cancelled() => break,
            d = deliveries.next() => match d {
                Some(Ok(d)) => d,
                Some(Err(e)) => { warn!(error = %e, "surge consumer failed"); tokio::time::sleep(Duration::from_secs(1)).await; continue }
                None => break,
            },
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (ctx, cancel) = (ctx.clone(), cancel.clone());
        tasks.spawn(async move {
            handle(&ctx, delivery, &cancel).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    // Drain: attempts in flight finish or give their event back unacknowledged.
    while tasks.join_next().await.is_some() {}
    let _ = digests.await;
    info!("notify stopped");
    Ok(())
}

async fn handle(ctx: &Ctx, delivery: Delivery, cancel: &CancellationToken) {
    let event: SurgeEvent = match serde_json::from_slice(&delivery.message.payload) {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, seq = delivery.message.seq, "dropping a surge event that does not parse");
            let _ = delivery.ack().await;
            return;
        }
    };
    let (subscriptions, silences) =
        match tokio::try_join!(load_subscriptions(&ctx.bus), load_silences(&ctx.bus)) {
            Ok(both) => both,
            Err(e) => {
                warn!(error = %e, "cannot read subscriptions or silences; will retry the event");
                let _ = delivery.nak(Some(Duration::from_secs(2))).await;
                return;
            }
        };
    let silenced_by =
        silence::silenced_by(&silences, &event, time::OffsetDateTime::now_utc()).cloned();
    let settled = futures::future::join_all(
        subscriptions
            .iter()
            .filter(|s| s.filter.matches(&event))
            .map(|sub| settle(ctx, &delivery, sub, &event, silenced_by.as_ref(), cancel)),
    )
    .await;
    let mut all_settled = true;
    for result in settled {
        match result {
            Ok(true) => {}
            Ok(false) => all_settled = false,
            Err(e) => {
                warn!(error = %e, event = %event.id, "delivery state failed");
                all_settled = false;
            }
        }
    }
    let settle = if all_settled {
        delivery.ack().await
    } else {
        delivery.nak(Some(Duration::from_secs(1))).await
    };
    if let Err(e) = settle {
        warn!(error = %e, event = %event.id, "could not settle a surge delivery");
    }
}

/// Every stored subscription.
pub async fn load_subscriptions(bus: &Bus) -> Result<Vec<Subscription>, BusError> {
    let mut out = Vec::new();
    for key in bus.kv_keys(names::SUBSCRIPTIONS_BUCKET).await? {
        if let Some(v) = bus.kv_get(names::SUBSCRIPTIONS_BUCKET, &key).await?
            && let Ok(s) = serde_json::from_slice::<Subscription>(&v)
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// Every stored silence, expired ones included.
pub async fn load_silences(bus: &Bus) -> Result<Vec<Silence>, BusError> {
    let mut out = Vec::new();
    for key in bus.kv_keys(names::SILENCES_BUCKET).await? {
        if let Some(v) = bus.kv_get(names::SILENCES_BUCKET, &key).await?
            && let Ok(s) = serde_json::from_slice::<Silence>(&v)
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// Settles `event` for `sub` unless that was done before. Returns false when it was
/// interrupted by shutdown (the event stays unacknowledged and comes back).
async fn settle(
    ctx: &Ctx,
    delivery: &Delivery,
    sub: &Subscription,
    event: &SurgeEvent,
    silenced_by: Option<&Silence>,
    cancel: &CancellationToken,
) -> Result<bool, BusError> {
    if read_record(&ctx.bus, &sub.id, &event.id).await?.is_some() {
        return Ok(true);
    }
    if let Some(silence) = silenced_by {
        info!(subscription = %sub.id, event = %event.id, silence = %silence.id, "silenced");
        log_attempt(
            &ctx.bus,
            &DeliveryAttempt {
                subscription: sub.id.clone(),
                event_id: event.id.clone(),
                attempt: 0,
                at: borderwatch_model::now_rfc3339(),
                outcome: Outcome::Silenced,
                status: None,
                latency_ms: None,
                error: None,
            },
        )
        .await;
        let mut rec = DeliveryRecord::new(&sub.id, &event.id, Outcome::Silenced);
        rec.silence = Some(silence.id.clone());
        crate::record::write_record(&ctx.bus, &rec).await?;
        return Ok(true);
    }
    if sub.digest.is_some() {
        digest::add(&ctx.bus, sub, event).await?;
        return Ok(true);
    }
    let notice = Notice::Surge(event.clone());
    let mut rec = DeliveryRecord::new(&sub.id, &event.id, Outcome::Delivered);
    match send(ctx, sub, &notice, Keepalive::Consumer(delivery), cancel).await {
        Sent::Delivered { attempts, status } => {
            rec.attempts = attempts;
            rec.status = Some(status);
        }
        Sent::GaveUp(failure) => {
            // The dead letter first: a crash between the two resends, never loses.
            deadletter::publish(ctx, sub, &notice, &failure).await?;
            rec.outcome = Outcome::Failed;
            rec.attempts = failure.attempts;
            rec.status = failure.status;
            rec.error = Some(failure.error);
        }
        Sent::Interrupted => return Ok(false),
    }
    crate::record::write_record(&ctx.bus, &rec).await?;
    Ok(true)
}
