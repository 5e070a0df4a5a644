//! The surge path: the durable consumer `notify` on `BW_SURGES`, the subscriptions and
//! silences buckets (read through a shared cache), and a delivery record per
//! (subscription, event) in `bw_deliveries`.
//!
//! An event is acknowledged only after every matching subscription has settled it
//! (delivered, given up to the dead-letter stream, silenced, or recorded for a digest), so
//! a killed process resumes with it. From the moment an event is received until it is
//! acknowledged or refused, one ticker keeps it ours (`in_progress`) and refreshes its
//! delivery claims, so NATS does not hand a second copy to anyone while the first is
//! handled, however long it waits or retries. A surge is sent only under a claim created
//! atomically at its record key; the record replaces the claim after the receiver answered
//! 2xx. A receiver that took the POST but whose answer was lost gets it again, with the
//! same `X-Borderwatch-Event-Id`, which it can use to drop the repeat.
//!
//! Bounds: `concurrency` POSTs at once (a permit per attempt, not held while waiting to
//! retry), `max_events` events handled at once, and `max_deliveries` (subscription, event)
//! deliveries under way at once, which bounds memory whatever the number of subscriptions.

use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, BusError, Delivery, names};
use borderwatch_model::{HistoryDelivery, IncidentUpdate, Silence, Subscription, SurgeEvent};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cache::load_bucket;
use crate::config::NotifyConfig;
use crate::ctx::Ctx;
use crate::digest::Bundle;
use crate::notice::Notice;
use crate::record::{Claim, Claimed, DeliveryAttempt, DeliveryRecord, Outcome, Slot, log_attempt};
use crate::settle::{self, Claims, kept_alive};
use crate::{alertmanager, digest, kinds, record, silence};

impl NotifyConfig {
    /// How often an event in hand is marked in progress and its claims refreshed.
    pub(crate) fn tick(&self) -> Duration {
        (self.ack_wait / 3).max(Duration::from_millis(10))
    }

    /// A delivery claim not refreshed for this long belongs to a sender that died. Its
    /// holder refreshes it every tick; NATS redelivers a dead holder's event after the ack
    /// wait, so by then its claims are stale too.
    pub(crate) fn claim_lease(&self) -> Duration {
        self.ack_wait
    }
}

/// Delivers events (and sends digests) until `cancel` fires, then finishes the attempts in
/// flight.
pub async fn run(bus: Bus, cfg: NotifyConfig, cancel: CancellationToken) -> Result<(), BusError> {
    let ctx = Ctx::new(bus, cfg)?;
    let mut deliveries = ctx
        .bus
        .consume(
            names::SURGE_STREAM,
            names::NOTIFY_CONSUMER,
            names::ALL_SURGES,
            ctx.cfg.ack_wait,
        )
        .await?;
    let kinds = kinds::start(&ctx, cancel.clone()).await?;
    info!(ready = "notify", "notify consuming surges");
    let digests = tokio::spawn(digest::run_sender(ctx.clone(), cancel.clone()));
    let sampler = tokio::spawn(crate::telemetry::run_sampler(ctx.clone(), cancel.clone()));
    let events = Arc::new(Semaphore::new(ctx.cfg.max_events.max(1)));
    let pairs = Arc::new(Semaphore::new(ctx.cfg.max_deliveries.max(1)));
    let mut tasks = JoinSet::new();
    loop {
        // A slot first, then the event: an event taken is in a kept-alive task at once.
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = events.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let delivery = tokio::select! {
            _ = cancel.cancelled() => break,
            d = deliveries.next() => match d {
                Some(Ok(d)) => d,
                Some(Err(e)) => { warn!(error = %e, "surge consumer failed"); tokio::time::sleep(Duration::from_secs(1)).await; continue }
                None => break,
            },
        };
        let (ctx, pairs, cancel) = (ctx.clone(), pairs.clone(), cancel.clone());
        tasks.spawn(async move {
            handle(&ctx, delivery, &pairs, &cancel).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    // Drain: attempts in flight finish or give their event back unacknowledged.
    while tasks.join_next().await.is_some() {}
    let _ = digests.await;
    let _ = sampler.await;
    let _ = kinds.await;
    info!("notify stopped");
    Ok(())
}

async fn handle(ctx: &Ctx, delivery: Delivery, pairs: &Arc<Semaphore>, cancel: &CancellationToken) {
    let claims = Arc::new(Claims::default());
    let outcome = kept_alive(
        ctx,
        &delivery,
        &claims,
        ctx.cfg.tick(),
        process(ctx, &delivery, &claims, pairs, cancel),
    )
    .await;
    let settle = match outcome {
        None => delivery.ack().await,
        Some(delay) => delivery.nak(Some(delay)).await,
    };
    if let Err(e) = settle {
        warn!(error = %e, seq = delivery.message.seq, "could not settle a surge delivery");
    }
}

/// Settles one event for every matching subscription. None: acknowledge it; Some(delay):
/// give it back to come again after `delay`.
async fn process(
    ctx: &Ctx,
    delivery: &Delivery,
    claims: &Arc<Claims>,
    pairs: &Arc<Semaphore>,
    cancel: &CancellationToken,
) -> Option<Duration> {
    let event: SurgeEvent = match serde_json::from_slice(&delivery.message.payload) {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, seq = delivery.message.seq, "dropping a surge event that does not parse");
            return None;
        }
    };
    let (subscriptions, silences) =
        match tokio::try_join!(ctx.subscriptions.get(&ctx.bus), ctx.silences.get(&ctx.bus)) {
            Ok(both) => both,
            Err(e) => {
                warn!(error = %e, "cannot read subscriptions or silences; will retry the event");
                return Some(Duration::from_secs(2));
            }
        };
    let event = Arc::new(event);
    let silenced_by =
        silence::silenced_by(&silences, &event, time::OffsetDateTime::now_utc()).cloned();
    let mut settling = JoinSet::new();
    if ctx.cfg.alertmanager_url.is_some() {
        // Alertmanager is told of the event alongside the subscriptions, and the event is
        // acknowledged only once it took the alert (or the push was given up).
        let (ctx, event, cancel) = (ctx.clone(), event.clone(), cancel.clone());
        settling.spawn(async move { Ok(alertmanager::push(&ctx, &event, &cancel).await) });
    }
    let mut retry: Option<Duration> = None;
    let later = |retry: &mut Option<Duration>, d: Duration| {
        *retry = Some(retry.map_or(d, |r| r.max(d)));
    };
    for (i, sub) in subscriptions.iter().enumerate() {
        if !sub.wants(&event) {
            continue;
        }
        // One permit per delivery under way, taken before its task exists: the bound on
        // memory. Deliveries that finish meanwhile are collected so their permits return.
        let permit = loop {
            tokio::select! {
                _ = cancel.cancelled() => break None,
                p = pairs.clone().acquire_owned() => break p.ok(),
                Some(done) = settling.join_next(), if !settling.is_empty() => {
                    if let Some(d) = settled(done, &event.id) {
                        later(&mut retry, d);
                    }
                }
            }
        };
        let Some(permit) = permit else {
            later(&mut retry, Duration::from_secs(1));
            break;
        };
        let (ctx, subs, event, claims, silenced_by, cancel) = (
            ctx.clone(),
            subscriptions.clone(),
            event.clone(),
            claims.clone(),
            silenced_by.clone(),
            cancel.clone(),
        );
        settling.spawn(async move {
            let out = settle(
                &ctx,
                &subs[i],
                &event,
                silenced_by.as_ref(),
                &claims,
                &cancel,
            )
            .await;
            drop(permit);
            out
        });
    }
    while let Some(done) = settling.join_next().await {
        if let Some(d) = settled(done, &event.id) {
            later(&mut retry, d);
        }
    }
    retry
}

/// What one subscription's settling asks of its event: None when done.
fn settled(
    done: Result<Result<Option<Duration>, BusError>, tokio::task::JoinError>,
    event: &str,
) -> Option<Duration> {
    match done {
        Ok(Ok(retry)) => retry,
        Ok(Err(e)) => {
            warn!(error = %e, event, "delivery state failed");
            Some(Duration::from_secs(1))
        }
        Err(e) => {
            warn!(error = %e, event, "a delivery task failed");
            Some(Duration::from_secs(1))
        }
    }
}

/// Every stored subscription (read now, not from the cache).
pub async fn load_subscriptions(bus: &Bus) -> Result<Vec<Subscription>, BusError> {
    load_bucket(bus, names::SUBSCRIPTIONS_BUCKET).await
}

/// Every stored silence, expired ones included (read now, not from the cache).
pub async fn load_silences(bus: &Bus) -> Result<Vec<Silence>, BusError> {
    load_bucket(bus, names::SILENCES_BUCKET).await
}

/// Settles `event` for `sub` unless that was done before. Returns None when settled, or
/// how long until the event should come back: interrupted by shutdown, or another live
/// sender holds the claim.
async fn settle(
    ctx: &Ctx,
    sub: &Subscription,
    event: &SurgeEvent,
    silenced_by: Option<&Silence>,
    claims: &Claims,
    cancel: &CancellationToken,
) -> Result<Option<Duration>, BusError> {
    let summarised = event.historical && sub.history == HistoryDelivery::Summary;
    let closing = event.incident_update == IncidentUpdate::Closed;
    if closing && !sub.resolved {
        // An incident's closing notice, for subscriptions that asked for it.
        return Ok(None);
    }
    if !closing && !event.historical && !event.incident_update.is_news() {
        // Another period of an incident the subscriber was told of, no louder: the incident
        // is updated (`GET /v1/incidents`), not announced again.
        return Ok(None);
    }
    // Which message the event goes out in, when not on its own.
    let bundle = if closing {
        None
    } else if summarised {
        Some(Bundle::History)
    } else if sub.digest.is_some() {
        Some(Bundle::Release)
    } else if sub.max_per_release.is_some() {
        Some(Bundle::Top)
    } else if event.story.is_some() {
        Some(Bundle::Story)
    } else {
        None
    };
    let bundled = bundle.is_some();
    if silenced_by.is_some() || bundled {
        let key = record::record_key(&sub.id, &event.id);
        match record::read_slot(&ctx.bus, &key).await? {
            Slot::Final => return Ok(None),
            // Being sent by a copy that found no silence: that copy settles it.
            Slot::Claimed(_) if !bundled => {
                return Ok(Some(ctx.cfg.tick()));
            }
            Slot::Claimed(_) | Slot::Free => {}
        }
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
        record::write_record(&ctx.bus, &rec).await?;
        return Ok(None);
    }
    if let Some(bundle) = bundle {
        digest::add(&ctx.bus, sub, event, bundle).await?;
        return Ok(None);
    }
    let claim = match record::claim(
        &ctx.bus,
        &sub.id,
        &event.id,
        &ctx.owner,
        ctx.cfg.claim_lease(),
        cancel,
    )
    .await?
    {
        Claimed::Held(c) => Arc::new(c),
        Claimed::Settled => return Ok(None),
        Claimed::Busy => return Ok(Some(ctx.cfg.tick())),
    };
    claims.add(claim.clone());
    let result = deliver(ctx, sub, event, &claim).await;
    claims.remove(&claim);
    result
}

/// Sends `event` to `sub` under `claim`, and replaces the claim with the record.
async fn deliver(
    ctx: &Ctx,
    sub: &Subscription,
    event: &SurgeEvent,
    claim: &Claim,
) -> Result<Option<Duration>, BusError> {
    settle::deliver(ctx, sub, &Notice::Surge(event.clone()), claim).await
}
