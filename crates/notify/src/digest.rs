//! Digests: one POST per (subscription, release) carrying all its matching surges, sent
//! `group_wait_secs` after the first of them arrived.
//!
//! Crash safety lives in `bw_digests`: each waiting surge is its own key
//! (`<digest id>.s.<surge>`), written before the surge is acknowledged, so two replicas
//! adding surges of one release never overwrite each other. Every notify replica runs a
//! sender; the one whose `kv_create` of the claim key (`<digest id>.c.<generation>`)
//! succeeds sends. The owner refreshes its claim while it retries; a claim not refreshed
//! within the lease belongs to a dead sender, and the next generation takes over. A surge
//! that arrives after its release's digest went out goes in a follow-up digest
//! (`<digest id>-2`, …).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use borderwatch_bus::{Bus, BusError, names};
use borderwatch_model::{Subscription, SurgeEvent};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ctx::Ctx;
use crate::digest_claim::{Claim, ClaimValue, claim_key, now_ms};
use crate::notice::{Digest, Notice, digest_id, history_id, story_digest_id, top_id};
use crate::record::{read_record, write_record_surely};
use crate::send::{Keepalive, send};

/// A surge waiting for its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    subscription: String,
    release_id: String,
    event: SurgeEvent,
    arrived_ms: u64,
    /// Part of the release's history summary rather than of its digest.
    #[serde(default)]
    history: bool,
    /// Part of the one message of the event's story.
    #[serde(default)]
    story: bool,
    /// Part of the release's message of the subscription's highest-scoring surges.
    #[serde(default)]
    top: bool,
}

/// Which message a surge waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bundle {
    /// The subscription's digest of the release.
    Release,
    /// The summary of the release's historical surges.
    History,
    /// The one message of the surge's story.
    Story,
    /// The release's message of a subscription's `max_per_release` highest-scoring surges.
    Top,
}

fn surge_key(digest: &str, surge: &str) -> String {
    format!("{digest}.s.{surge}")
}

/// Records `event` for the message of `bundle` it goes out in for `sub`. Idempotent: a
/// redelivered surge keeps its first arrival time.
pub(crate) async fn add(
    bus: &Bus,
    sub: &Subscription,
    event: &SurgeEvent,
    bundle: Bundle,
) -> Result<(), BusError> {
    let digest = match (bundle, &event.story) {
        (Bundle::History, _) => history_id(&sub.id, &event.release_id),
        (Bundle::Story, Some(story)) => story_digest_id(&sub.id, &story.id),
        (Bundle::Top, _) => top_id(&sub.id, &event.release_id),
        _ => digest_id(&sub.id, &event.release_id),
    };
    let pending = Pending {
        subscription: sub.id.clone(),
        release_id: event.release_id.clone(),
        event: event.clone(),
        arrived_ms: now_ms(),
        history: bundle == Bundle::History,
        story: bundle == Bundle::Story && event.story.is_some(),
        top: bundle == Bundle::Top,
    };
    bus.kv_create(
        names::DIGESTS_BUCKET,
        &surge_key(&digest, &event.id),
        serde_json::to_vec(&pending).unwrap_or_default().into(),
    )
    .await?;
    Ok(())
}

/// The keys of one digest in `bw_digests`.
#[derive(Debug, Default)]
struct Group {
    surges: Vec<String>,
    claims: Vec<u32>,
}

/// Sends due digests until `cancel` fires; one runs in every notify replica.
pub(crate) async fn run_sender(ctx: Ctx, cancel: CancellationToken) {
    let owner = format!("{:016x}", rand::random::<u64>());
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(ctx.cfg.digest_tick) => {}
        }
        if let Err(e) = tick(&ctx, &owner, &in_flight, &mut tasks, &cancel).await {
            warn!(error = %e, "digest sender failed; retrying");
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn tick(
    ctx: &Ctx,
    owner: &str,
    in_flight: &Arc<Mutex<HashSet<String>>>,
    tasks: &mut JoinSet<()>,
    cancel: &CancellationToken,
) -> Result<(), BusError> {
    let bus = &ctx.bus;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for key in bus.kv_keys(names::DIGESTS_BUCKET).await? {
        let mut parts = key.splitn(3, '.');
        let (Some(digest), Some(kind), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let group = groups.entry(digest.to_string()).or_default();
        match kind {
            "s" => group.surges.push(key.clone()),
            "c" => group.claims.extend(rest.parse::<u32>().ok()),
            _ => {}
        }
    }
    let lease = ctx.cfg.digest_claim_lease.as_millis() as u64;
    for (digest, group) in groups {
        if in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&digest)
        {
            continue;
        }
        let top = group.claims.iter().copied().max();
        let claim_fresh = match top {
            Some(generation) => bus
                .kv_get(names::DIGESTS_BUCKET, &claim_key(&digest, generation))
                .await?
                .and_then(|raw| serde_json::from_slice::<ClaimValue>(&raw).ok())
                .is_some_and(|c| now_ms() < c.at_ms + lease),
            None => false,
        };
        if claim_fresh {
            continue;
        }
        let mut pending = Vec::new();
        for key in &group.surges {
            if let Some(raw) = bus.kv_get(names::DIGESTS_BUCKET, key).await?
                && let Ok(p) = serde_json::from_slice::<Pending>(&raw)
            {
                pending.push((key.clone(), p));
            }
        }
        let Some((_, first)) = pending.first() else {
            // Claims left behind by a sender that died while cleaning up.
            for generation in group.claims {
                bus.kv_delete(names::DIGESTS_BUCKET, &claim_key(&digest, generation))
                    .await?;
            }
            continue;
        };
        let sub = bus
            .kv_get(names::SUBSCRIPTIONS_BUCKET, &first.subscription)
            .await?
            .and_then(|raw| serde_json::from_slice::<Subscription>(&raw).ok());
        let Some(sub) = sub else {
            info!(digest, subscription = %first.subscription, "dropping the digest of a deleted subscription");
            for (key, _) in &pending {
                bus.kv_delete(names::DIGESTS_BUCKET, key).await?;
            }
            continue;
        };
        let wait_ms = match &sub.digest {
            Some(d) => d.group_wait_secs * 1000,
            None if first.history || first.story || first.top => {
                ctx.cfg.history_wait.as_millis() as u64
            }
            None => 0,
        };
        let first_ms = pending.iter().map(|(_, p)| p.arrived_ms).min().unwrap_or(0);
        if now_ms() < first_ms + wait_ms {
            continue;
        }
        let generation = top.map_or(1, |g| g + 1);
        let value = ClaimValue {
            owner: owner.to_string(),
            at_ms: now_ms(),
        };
        let key = claim_key(&digest, generation);
        let created = bus
            .kv_create(
                names::DIGESTS_BUCKET,
                &key,
                serde_json::to_vec(&value).unwrap_or_default().into(),
            )
            .await?;
        if !created {
            continue;
        }
        let claim = Claim {
            bus: bus.clone(),
            digest: digest.clone(),
            generation,
            owner: owner.to_string(),
        };
        in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.clone());
        let (ctx, cancel, in_flight) = (ctx.clone(), cancel.clone(), in_flight.clone());
        tasks.spawn(async move {
            if let Err(e) = send_digest(&ctx, &sub, &claim, pending, &cancel).await {
                warn!(error = %e, digest = %claim.digest, "digest state failed; will retry");
            }
            in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&claim.digest);
        });
    }
    Ok(())
}

/// The first digest id of this release with no delivery record: the digest's own id, or a
/// follow-up's for surges that arrived after it went out.
async fn free_id(bus: &Bus, sub: &str, digest: &str) -> Result<String, BusError> {
    if read_record(bus, sub, digest).await?.is_none() {
        return Ok(digest.to_string());
    }
    let mut n = 2u32;
    loop {
        let id = format!("{digest}-{n}");
        if read_record(bus, sub, &id).await?.is_none() {
            return Ok(id);
        }
        n += 1;
    }
}

async fn send_digest(
    ctx: &Ctx,
    sub: &Subscription,
    claim: &Claim,
    pending: Vec<(String, Pending)>,
    cancel: &CancellationToken,
) -> Result<(), BusError> {
    let bus = &ctx.bus;
    let release = pending[0].1.release_id.clone();
    let history = pending[0].1.history;
    let pending_top = pending[0].1.top;
    let story = pending[0]
        .1
        .event
        .story
        .clone()
        .filter(|_| pending[0].1.story);
    let mut keys = Vec::new();
    let mut events = Vec::new();
    for (key, p) in pending {
        // Already in a digest that went out before its cleanup finished.
        if read_record(bus, &sub.id, &p.event.id).await?.is_none() {
            events.push(p.event);
        }
        keys.push(key);
    }
    if !events.is_empty() {
        let id = free_id(bus, &sub.id, &claim.digest).await?;
        let surge_ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let top = pending_top.then_some(sub.max_per_release).flatten();
        let digest = match story {
            _ if history => Digest::history(id.clone(), release, events),
            _ if top.is_some() => Digest::top(id.clone(), release, events, top.unwrap_or(1)),
            Some(story) => Digest::story(id.clone(), release, events, story),
            None => Digest::new(id.clone(), release, events),
        };
        let notice = Notice::Digest(digest);
        let sent = send(ctx, sub, &notice, Keepalive::Claim(claim), cancel).await;
        let Some((rec, slot)) = sent.into_record(ctx, sub, &notice, &id).await? else {
            return Ok(());
        };
        // The surges' records first: a digest record without them would let a crash
        // send these surges again in a follow-up.
        // Retried until stored: the receiver took the digest, and a record left unwritten
        // would send it again under the same id once the claim went stale.
        for surge in surge_ids {
            let mut r = rec.clone();
            r.event = surge;
            r.digest = Some(id.clone());
            write_record_surely(bus, &r, cancel).await?;
        }
        write_record_surely(bus, &rec, cancel).await?;
        drop(slot);
    }
    for key in keys {
        bus.kv_delete(names::DIGESTS_BUCKET, &key).await?;
    }
    for generation in 1..=claim.generation {
        bus.kv_delete(names::DIGESTS_BUCKET, &claim_key(&claim.digest, generation))
            .await?;
    }
    Ok(())
}
