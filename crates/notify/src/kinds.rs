//! Revisions and missing categories as events subscriptions take (`kinds`): a durable
//! consumer on each of `BW_REVISIONS` and `BW_MISSING`, shared by notify's replicas. Each
//! event goes to every subscription that takes its kind and whose filter and matchers select
//! it. A release revises figures by the thousand, so revisions are not sent one by one: each
//! is recorded in `bw_digests` for its (subscription, release) batch, and the digest sender
//! sends the batch as one message once the release's revisions stopped coming (see
//! `digest`). A missing category goes on its own, one message per (release, category) with
//! the countries it left out (ingest publishes them so), through the same path as a surge:
//! one claim per (subscription, event) in `bw_deliveries`, signed POSTs with retries, the
//! delivery log, and a dead letter when given up. An event is acknowledged once every such
//! subscription has settled it (sent it, or recorded it for its batch), so a killed process
//! resumes with it. Silences mute surges only.

use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{BusError, Delivery, names};
use borderwatch_model::{
    EventKind, MissingCategory, MissingEvent, Revision, RevisionEvent, Subscription,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ctx::Ctx;
use crate::digest;
use crate::notice::Notice;
use crate::record::{self, Claimed, Slot};
use crate::settle::{self, Claims, kept_alive};

/// How many of one event's deliveries are under way at once.
const PER_EVENT: usize = 64;

/// Opens both consumers and runs them until `cancel` fires: a consumer that cannot be
/// opened is the caller's error, as the surge consumer's is.
pub(crate) async fn start(
    ctx: &Ctx,
    cancel: CancellationToken,
) -> Result<JoinHandle<()>, BusError> {
    let mut runs = Vec::new();
    for kind in [EventKind::Revision, EventKind::Missing] {
        let (stream, durable, filter) = source(kind);
        let deliveries = ctx
            .bus
            .consume(stream, durable, filter, ctx.cfg.ack_wait)
            .await?;
        runs.push(tokio::spawn(run(
            ctx.clone(),
            kind,
            deliveries,
            cancel.clone(),
        )));
    }
    info!(
        ready = "notify-kinds",
        "notify consuming revisions and missing categories"
    );
    Ok(tokio::spawn(async move {
        for r in runs {
            let _ = r.await;
        }
    }))
}

/// The stream, durable consumer and subject filter of `kind`.
fn source(kind: EventKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        EventKind::Missing => (
            names::MISSING_STREAM,
            names::NOTIFY_MISSING_CONSUMER,
            names::ALL_MISSING,
        ),
        EventKind::Revision | EventKind::Surge => (
            names::REVISION_STREAM,
            names::NOTIFY_REVISIONS_CONSUMER,
            names::ALL_REVISIONS,
        ),
    }
}

async fn run(
    ctx: Ctx,
    kind: EventKind,
    mut deliveries: BoxStream<'static, Result<Delivery, BusError>>,
    cancel: CancellationToken,
) {
    let events = Arc::new(Semaphore::new(ctx.cfg.max_events.max(1)));
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = events.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let delivery = tokio::select! {
            _ = cancel.cancelled() => break,
            d = deliveries.next() => match d {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    warn!(error = %e, kind = kind.as_str(), "event consumer failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                None => break,
            },
        };
        let (ctx, cancel) = (ctx.clone(), cancel.clone());
        tasks.spawn(async move {
            handle(&ctx, kind, delivery, &cancel).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn handle(ctx: &Ctx, kind: EventKind, delivery: Delivery, cancel: &CancellationToken) {
    let claims = Arc::new(Claims::default());
    let outcome = kept_alive(
        ctx,
        &delivery,
        &claims,
        ctx.cfg.tick(),
        process(ctx, kind, &delivery, &claims, cancel),
    )
    .await;
    let settle = match outcome {
        None => delivery.ack().await,
        Some(delay) => delivery.nak(Some(delay)).await,
    };
    if let Err(e) = settle {
        warn!(error = %e, seq = delivery.message.seq, kind = kind.as_str(), "could not settle an event");
    }
}

/// What each subscription is sent of one stored event: the notices, by subscription.
/// `None` when the payload does not parse (it is dropped: it never will).
pub(crate) fn notices(
    kind: EventKind,
    payload: &[u8],
    subscriptions: &[Subscription],
) -> Option<Vec<(usize, Notice)>> {
    let picked = match kind {
        EventKind::Missing => {
            let e = MissingEvent::new(serde_json::from_slice::<MissingCategory>(payload).ok()?);
            subscriptions
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.wants_missing(&e).map(|m| (i, Notice::Missing(m))))
                .collect()
        }
        EventKind::Revision | EventKind::Surge => {
            let e = RevisionEvent::new(serde_json::from_slice::<Revision>(payload).ok()?);
            subscriptions
                .iter()
                .enumerate()
                .filter(|(_, s)| s.wants_revision(&e))
                .map(|(i, _)| (i, Notice::Revision(e.clone())))
                .collect()
        }
    };
    Some(picked)
}

/// Settles one event for every subscription that wants it. None: acknowledge it;
/// Some(delay): give it back to come again after `delay`.
async fn process(
    ctx: &Ctx,
    kind: EventKind,
    delivery: &Delivery,
    claims: &Arc<Claims>,
    cancel: &CancellationToken,
) -> Option<Duration> {
    let subscriptions = match ctx.subscriptions.get(&ctx.bus).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot read subscriptions; will retry the event");
            return Some(Duration::from_secs(2));
        }
    };
    let Some(picked) = notices(kind, &delivery.message.payload, &subscriptions) else {
        warn!(
            seq = delivery.message.seq,
            kind = kind.as_str(),
            "dropping an event that does not parse"
        );
        return None;
    };
    let results: Vec<_> = futures::stream::iter(picked)
        .map(|(i, notice)| {
            let sub = &subscriptions[i];
            async move { settle_one(ctx, sub, &notice, claims, cancel).await }
        })
        .buffer_unordered(PER_EVENT)
        .collect()
        .await;
    let mut retry: Option<Duration> = None;
    for r in results {
        let d = match r {
            Ok(None) => continue,
            Ok(Some(d)) => d,
            Err(e) => {
                warn!(error = %e, kind = kind.as_str(), "delivery state failed");
                Duration::from_secs(1)
            }
        };
        retry = Some(retry.map_or(d, |r| r.max(d)));
    }
    retry
}

/// Sends `notice` to `sub` unless that was done before, under a claim; a revision is
/// recorded for its release's batch instead.
async fn settle_one(
    ctx: &Ctx,
    sub: &Subscription,
    notice: &Notice,
    claims: &Claims,
    cancel: &CancellationToken,
) -> Result<Option<Duration>, BusError> {
    if let Notice::Revision(r) = notice {
        return batch_revision(ctx, sub, r).await;
    }
    let claim = match record::claim(
        &ctx.bus,
        &sub.id,
        notice.id(),
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
    let result = settle::deliver(ctx, sub, notice, &claim).await;
    claims.remove(&claim);
    result
}

/// Records revision `r` for `sub`'s batch of its release, unless it was sent already (its
/// record points at the batch it went out in: a redelivery after the batch was sent).
async fn batch_revision(
    ctx: &Ctx,
    sub: &Subscription,
    r: &RevisionEvent,
) -> Result<Option<Duration>, BusError> {
    match record::read_slot(&ctx.bus, &record::record_key(&sub.id, &r.id)).await? {
        Slot::Final => Ok(None),
        Slot::Claimed(_) | Slot::Free => {
            digest::add_revision(&ctx.bus, sub, r).await?;
            Ok(None)
        }
    }
}
