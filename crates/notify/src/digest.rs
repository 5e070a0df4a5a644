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
//!
//! Revisions go the same way (`rb-…` ids, [`add_revision`]): one message per (subscription,
//! release). A release's revisions arrive as many stream messages, so a batch is sent once
//! they stopped coming, not a fixed time after the first: `history_wait` after the latest
//! arrived, and only when the `notify-revisions` consumer has nothing left to hand out or in
//! hand (so a replica that stalled, or a backlog, does not cut a release in two); at the
//! latest [`REVISIONS_MAX_WAIT`] `history_wait`s after the first, so steady traffic cannot
//! hold a batch back for ever. The release marker and record are not waited for: a replayed
//! or re-marked release has neither anew, and the record is keyed by content, not by the
//! release id revisions carry. Each revision sent gets its own delivery record naming its
//! batch, so a revision redelivered after its batch went out is recognised and dropped; a
//! revision first seen after its batch went out (ingest paused longer than the window
//! between two parts of one release) goes in a follow-up (`rb-…-2`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use borderwatch_bus::{Bus, BusError, names};
use borderwatch_model::{RevisionEvent, Subscription, SurgeEvent};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ctx::Ctx;
use crate::digest_claim::{Claim, ClaimValue, claim_key, now_ms};
use crate::notice::{
    Digest, Notice, RevisionBatch, digest_id, history_id, revisions_id, story_digest_id, top_id,
};
use crate::record::{read_record, write_record_surely};
use crate::send::{Keepalive, send};

/// A surge (or revision) waiting for its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    subscription: String,
    release_id: String,
    /// The surge; `None` for a revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<SurgeEvent>,
    /// The revision, waiting for its release's batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revision: Option<RevisionEvent>,
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

/// How many `history_wait`s a revision batch waits at most after its first revision, when
/// revisions keep coming.
pub(crate) const REVISIONS_MAX_WAIT: u64 = 12;

impl Pending {
    /// The id of the surge or revision waiting.
    fn item_id(&self) -> &str {
        match (&self.event, &self.revision) {
            (Some(e), _) => &e.id,
            (None, Some(r)) => &r.id,
            (None, None) => "",
        }
    }
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
        event: Some(event.clone()),
        revision: None,
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

/// Records `revision` for its release's batch for `sub`. Idempotent, as [`add`].
pub(crate) async fn add_revision(
    bus: &Bus,
    sub: &Subscription,
    revision: &RevisionEvent,
) -> Result<(), BusError> {
    let release = &revision.revision.release_id;
    let pending = Pending {
        subscription: sub.id.clone(),
        release_id: release.clone(),
        event: None,
        revision: Some(revision.clone()),
        arrived_ms: now_ms(),
        history: false,
        story: false,
        top: false,
    };
    bus.kv_create(
        names::DIGESTS_BUCKET,
        &surge_key(&revisions_id(&sub.id, release), &revision.id),
        serde_json::to_vec(&pending).unwrap_or_default().into(),
    )
    .await?;
    Ok(())
}

/// When the message of `pending` (one digest's surges, none empty) is due, in ms since the
/// epoch.
fn due_ms(cfg: &crate::config::NotifyConfig, sub: &Subscription, pending: &[Pending]) -> u64 {
    let first = pending.iter().map(|p| p.arrived_ms).min().unwrap_or(0);
    let wait_ms = match &sub.digest {
        Some(d) => d.group_wait_secs * 1000,
        None if pending[0].history || pending[0].story || pending[0].top => {
            cfg.history_wait.as_millis() as u64
        }
        None => 0,
    };
    first + wait_ms
}

/// When a revision batch may go (`history_wait` after its latest revision arrived) and when
/// it must (at most [`REVISIONS_MAX_WAIT`] `history_wait`s after its first), in ms since the
/// epoch.
fn revisions_due_ms(cfg: &crate::config::NotifyConfig, pending: &[Pending]) -> (u64, u64) {
    let first = pending.iter().map(|p| p.arrived_ms).min().unwrap_or(0);
    let last = pending.iter().map(|p| p.arrived_ms).max().unwrap_or(0);
    let wait = cfg.history_wait.as_millis() as u64;
    (last + wait, first + wait * REVISIONS_MAX_WAIT)
}

/// Whether the revisions consumer has nothing left to hand out or in hand: every revision
/// published so far is waiting in `bw_digests` (a revision is stored there before it is
/// acknowledged). Read before the tick lists the keys, so that the list holds them all. A
/// consumer that cannot be read counts as busy (batches wait for their latest time).
async fn revisions_drained(ctx: &Ctx) -> bool {
    match ctx
        .bus
        .consumer_lag(names::REVISION_STREAM, names::NOTIFY_REVISIONS_CONSUMER)
        .await
    {
        Ok(Some(lag)) => lag.pending == 0 && lag.ack_pending == 0,
        Ok(None) => true,
        Err(e) => {
            warn!(error = %e, "cannot read the revisions consumer; revision batches wait");
            false
        }
    }
}

/// The waiting surges and revisions read so far, by key. A key's value is written once
/// (`kv_create`) and only deleted, so it is read once, not on every tick: a release that
/// revised thousands of figures would otherwise cost thousands of reads a tick.
#[derive(Debug, Default)]
struct Read(std::collections::HashMap<String, Pending>);

impl Read {
    /// Forgets keys no longer listed (sent and deleted).
    fn keep_only(&mut self, listed: &[String]) {
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        self.0.retain(|k, _| listed.contains(k.as_str()));
    }

    /// The value of `key`, read from the bucket the first time; `None` when it is gone or
    /// does not parse.
    async fn get(&mut self, bus: &Bus, key: &str) -> Result<Option<Pending>, BusError> {
        if let Some(p) = self.0.get(key) {
            return Ok(Some(p.clone()));
        }
        let Some(raw) = bus.kv_get(names::DIGESTS_BUCKET, key).await? else {
            return Ok(None);
        };
        let Ok(p) = serde_json::from_slice::<Pending>(&raw) else {
            return Ok(None);
        };
        self.0.insert(key.to_string(), p.clone());
        Ok(Some(p))
    }
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
    let mut read = Read::default();
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(ctx.cfg.digest_tick) => {}
        }
        if let Err(e) = tick(&ctx, &owner, &in_flight, &mut read, &mut tasks, &cancel).await {
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
    read: &mut Read,
    tasks: &mut JoinSet<()>,
    cancel: &CancellationToken,
) -> Result<(), BusError> {
    let bus = &ctx.bus;
    let drained = revisions_drained(ctx).await;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let keys = bus.kv_keys(names::DIGESTS_BUCKET).await?;
    read.keep_only(&keys);
    for key in keys {
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
            if let Some(p) = read.get(bus, key).await? {
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
        let waiting: Vec<Pending> = pending.iter().map(|(_, p)| p.clone()).collect();
        let now = now_ms();
        if waiting[0].revision.is_some() {
            let (quiet, latest) = revisions_due_ms(&ctx.cfg, &waiting);
            if now < quiet || (now < latest && !drained) {
                continue;
            }
        } else if now < due_ms(&ctx.cfg, &sub, &waiting) {
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
    let mut keys = Vec::new();
    let mut items = Vec::new();
    for (key, p) in pending {
        // Already in a digest that went out before its cleanup finished.
        if read_record(bus, &sub.id, p.item_id()).await?.is_none() {
            items.push(p);
        }
        keys.push(key);
    }
    if !items.is_empty() {
        let id = free_id(bus, &sub.id, &claim.digest).await?;
        let item_ids: Vec<String> = items.iter().map(|p| p.item_id().to_string()).collect();
        let notice = notice_of(sub, id.clone(), items);
        let sent = send(ctx, sub, &notice, Keepalive::Claim(claim), cancel).await;
        let Some((rec, slot)) = sent.into_record(ctx, sub, &notice, &id).await? else {
            return Ok(());
        };
        // The members' records first: a digest record without them would let a crash
        // send these surges again in a follow-up.
        // Retried until stored: the receiver took the digest, and a record left unwritten
        // would send it again under the same id once the claim went stale.
        for item in item_ids {
            let mut r = rec.clone();
            r.event = item;
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

/// The one message of `items` (one digest's waiting surges or revisions, none empty) for
/// `sub`, under `id`.
fn notice_of(sub: &Subscription, id: String, items: Vec<Pending>) -> Notice {
    let first = &items[0];
    let release = first.release_id.clone();
    if first.revision.is_some() {
        let revisions = items.into_iter().filter_map(|p| p.revision).collect();
        return Notice::Revisions(RevisionBatch::new(id, release, revisions));
    }
    let (history, pending_top) = (first.history, first.top);
    let story = first
        .event
        .as_ref()
        .and_then(|e| e.story.clone())
        .filter(|_| first.story);
    let events: Vec<SurgeEvent> = items.into_iter().filter_map(|p| p.event).collect();
    let top = pending_top.then_some(sub.max_per_release).flatten();
    let digest = match story {
        _ if history => Digest::history(id, release, events),
        _ if top.is_some() => Digest::top(id, release, events, top.unwrap_or(1)),
        Some(story) => Digest::story(id, release, events, story),
        None => Digest::new(id, release, events),
    };
    Notice::Digest(digest)
}
