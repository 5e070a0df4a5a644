//! What happened to each (subscription, notice): the record in `bw_deliveries` that keeps a
//! notice from being delivered twice, and the attempt log on `BW_ATTEMPTS` that
//! `GET /v1/subscriptions/{id}/deliveries` serves.
//!
//! Before a surge is sent, its record key holds a claim (`{"claim": {owner, generation,
//! at_ms}}`), created with `kv_create`, so two copies of one event (a redelivery while the
//! first is still handled) cannot both send it. See `claim`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use borderwatch_bus::{Bus, BusError, Outgoing, names};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The record and log types live in the model, where the gateway reads them too.
pub use borderwatch_model::{DeliveryAttempt, DeliveryRecord, Outcome};

pub fn record_key(subscription: &str, event: &str) -> String {
    format!("{subscription}.{event}")
}

/// The final record of (subscription, notice), if it has one (a claim is not a record).
pub async fn read_record(
    bus: &Bus,
    subscription: &str,
    event: &str,
) -> Result<Option<DeliveryRecord>, BusError> {
    let raw = bus
        .kv_get(names::DELIVERIES_BUCKET, &record_key(subscription, event))
        .await?;
    Ok(raw.and_then(|r| serde_json::from_slice(&r).ok()))
}

pub async fn write_record(bus: &Bus, rec: &DeliveryRecord) -> Result<(), BusError> {
    bus.kv_put(
        names::DELIVERIES_BUCKET,
        &record_key(&rec.subscription, &rec.event),
        serde_json::to_vec(rec).unwrap_or_default().into(),
    )
    .await
}

/// How long a stopping process keeps trying to write the record of a POST its receiver
/// took, before it leaves the event to be sent again by the next copy.
const RECORD_RETRY_ON_SHUTDOWN: Duration = Duration::from_secs(10);

/// Writes the record of a notice the receiver already took, retrying until it is stored.
///
/// Once a receiver answered 2xx, the record is all that keeps the notice from being sent
/// again: a write that failed (a NATS node killed, the bucket's leader being elected again,
/// or its reply lost though the write happened) and was left failed would leave the claim
/// to go stale and the next copy of the event to POST it a second time. The write is
/// idempotent (the same record under the same key), so it is repeated, with backoff, until
/// it succeeds; a stopping process gives up after [`RECORD_RETRY_ON_SHUTDOWN`] and returns
/// the error.
pub(crate) async fn write_record_surely(
    bus: &Bus,
    rec: &DeliveryRecord,
    cancel: &CancellationToken,
) -> Result<(), BusError> {
    let mut wait = Duration::from_millis(200);
    let mut stopping_since: Option<tokio::time::Instant> = None;
    loop {
        let e = match write_record(bus, rec).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if cancel.is_cancelled() {
            let since = *stopping_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= RECORD_RETRY_ON_SHUTDOWN {
                warn!(error = %e, subscription = %rec.subscription, event = %rec.event, "stopping without the record of a delivered notice; it may be sent again");
                return Err(e);
            }
        }
        warn!(error = %e, subscription = %rec.subscription, event = %rec.event, retry_in_ms = wait.as_millis() as u64, "cannot record a delivered notice yet; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Appends `a` to the delivery log. The log is history, not state: a failure to write it is
/// logged and does not hold the delivery back.
pub async fn log_attempt(bus: &Bus, a: &DeliveryAttempt) {
    metrics::counter!("borderwatch_deliveries_total", "outcome" => format!("{:?}", a.outcome).to_lowercase()).increment(1);
    let msg = Outgoing::new(
        names::attempt_subject(&a.subscription),
        serde_json::to_vec(a).unwrap_or_default(),
    );
    if let Err(e) = bus.publish(msg).await {
        warn!(error = %e, subscription = %a.subscription, event = %a.event_id, "could not log a delivery attempt");
    }
}

/// Who is sending a (subscription, surge) now, stored at its record key until the record
/// replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClaimInfo {
    pub(crate) owner: String,
    /// 1 for the first claim; a takeover of a stale claim makes the next.
    pub(crate) generation: u32,
    /// When the owner last refreshed it (ms since the Unix epoch).
    pub(crate) at_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ClaimValue {
    claim: ClaimInfo,
}

/// What a record key holds.
#[derive(Debug)]
pub(crate) enum Slot {
    Free,
    /// A record: settled.
    Final,
    Claimed(ClaimInfo),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) async fn read_slot(bus: &Bus, key: &str) -> Result<Slot, BusError> {
    let Some(raw) = bus.kv_get(names::DELIVERIES_BUCKET, key).await? else {
        return Ok(Slot::Free);
    };
    if serde_json::from_slice::<DeliveryRecord>(&raw).is_ok() {
        return Ok(Slot::Final);
    }
    // Unreadable: a claim of generation 0, long stale, that the next claimer takes over.
    let claim = serde_json::from_slice::<ClaimValue>(&raw)
        .map(|v| v.claim)
        .unwrap_or(ClaimInfo {
            owner: String::new(),
            generation: 0,
            at_ms: 0,
        });
    Ok(Slot::Claimed(claim))
}

fn claim_bytes(info: &ClaimInfo) -> bytes::Bytes {
    serde_json::to_vec(&ClaimValue {
        claim: info.clone(),
    })
    .unwrap_or_default()
    .into()
}

/// The key that a takeover of the stale claim `stale` must create first: two takers of
/// the same stale claim race on it, and one wins. It names the stale claim's refresh time,
/// so a leftover one never blocks the takeover of a later claim.
fn takeover_key(key: &str, stale: &ClaimInfo) -> String {
    format!("{key}.t{}-{}", stale.generation, stale.at_ms)
}

/// A claim this process holds on (subscription, surge).
#[derive(Debug)]
pub(crate) struct Claim {
    pub(crate) key: String,
    info: ClaimInfo,
    /// The takeover key this claim created, deleted with the claim.
    takeover: Option<String>,
    /// Set once the record is being written: refreshing stops, so a refresh that read the
    /// claim before the record landed cannot write the claim back over the record.
    finishing: AtomicBool,
    /// The service's shutdown: a record still unwritten is retried for a while after it.
    shutdown: CancellationToken,
    /// Fires when the claim was found taken over (or on shutdown: a child of the service's
    /// token): stop sending.
    pub(crate) lost: CancellationToken,
}

/// What [`claim`] found.
#[derive(Debug)]
pub(crate) enum Claimed {
    /// Ours: send, then [`Claim::finish`] (or [`Claim::release`] if interrupted).
    Held(Claim),
    /// Settled before: nothing to do.
    Settled,
    /// Another live sender holds it: leave it to them, look again later.
    Busy,
}

/// Claims (subscription, surge) for sending. A claim not refreshed for `lease` belongs to a
/// sender that died, and is taken over by the next generation.
pub(crate) async fn claim(
    bus: &Bus,
    subscription: &str,
    event: &str,
    owner: &str,
    lease: Duration,
    cancel: &CancellationToken,
) -> Result<Claimed, BusError> {
    let key = record_key(subscription, event);
    let mut info = ClaimInfo {
        owner: owner.to_string(),
        generation: 1,
        at_ms: now_ms(),
    };
    let held = |info: ClaimInfo, takeover: Option<String>| {
        Claimed::Held(Claim {
            key: key.clone(),
            info,
            takeover,
            finishing: AtomicBool::new(false),
            shutdown: cancel.clone(),
            lost: cancel.child_token(),
        })
    };
    if bus
        .kv_create(names::DELIVERIES_BUCKET, &key, claim_bytes(&info))
        .await?
    {
        return Ok(held(info, None));
    }
    match read_slot(bus, &key).await? {
        Slot::Final => Ok(Claimed::Settled),
        // Released between the create and the read: the next look claims it.
        Slot::Free => Ok(Claimed::Busy),
        Slot::Claimed(c) if now_ms() < c.at_ms.saturating_add(lease.as_millis() as u64) => {
            Ok(Claimed::Busy)
        }
        Slot::Claimed(stale) => {
            info.generation = stale.generation + 1;
            let takeover = takeover_key(&key, &stale);
            if !bus
                .kv_create(
                    names::DELIVERIES_BUCKET,
                    &takeover,
                    owner.to_string().into_bytes().into(),
                )
                .await?
            {
                return Ok(Claimed::Busy);
            }
            // Written over the stale claim only if no record arrived meanwhile (its holder
            // was slow, not dead).
            if let Slot::Final = read_slot(bus, &key).await? {
                let _ = bus.kv_delete(names::DELIVERIES_BUCKET, &takeover).await;
                return Ok(Claimed::Settled);
            }
            info.at_ms = now_ms();
            bus.kv_put(names::DELIVERIES_BUCKET, &key, claim_bytes(&info))
                .await?;
            warn!(key, generation = info.generation, stale_owner = %stale.owner, "took over a stale delivery claim");
            Ok(held(info, Some(takeover)))
        }
    }
}

impl Claim {
    /// Renews the claim; fires `lost` when the key no longer holds it.
    pub(crate) async fn refresh(&self, bus: &Bus) {
        if self.finishing.load(Ordering::SeqCst) {
            return;
        }
        match read_slot(bus, &self.key).await {
            Ok(Slot::Claimed(c))
                if c.owner == self.info.owner && c.generation == self.info.generation =>
            {
                let info = ClaimInfo {
                    at_ms: now_ms(),
                    ..self.info.clone()
                };
                if let Err(e) = bus
                    .kv_put(names::DELIVERIES_BUCKET, &self.key, claim_bytes(&info))
                    .await
                {
                    warn!(error = %e, key = %self.key, "cannot refresh a delivery claim");
                }
            }
            Ok(_) => {
                warn!(key = %self.key, "a delivery claim was taken over; stopping");
                self.lost.cancel();
            }
            Err(e) => warn!(error = %e, key = %self.key, "cannot check a delivery claim"),
        }
    }

    /// Replaces the claim with the final record, retrying until it is stored
    /// ([`write_record_surely`]).
    ///
    /// Refreshing stops first. The refresh runs on the event's ticker, between the awaits
    /// of this write, as a read of the slot and then a put of the claim: a read made before
    /// the record landed and a put made after it would put the claim back over the record,
    /// and the next copy of the event would take that claim over once stale and send again.
    pub(crate) async fn finish(&self, bus: &Bus, rec: &DeliveryRecord) -> Result<(), BusError> {
        self.finishing.store(true, Ordering::SeqCst);
        write_record_surely(bus, rec, &self.shutdown).await?;
        self.drop_takeover_keys(bus).await;
        Ok(())
    }

    /// Gives the claim up unfinished (shutdown), so that the next copy of the event need not
    /// wait out the lease.
    pub(crate) async fn release(&self, bus: &Bus) {
        if let Ok(Slot::Claimed(c)) = read_slot(bus, &self.key).await
            && c.owner == self.info.owner
            && c.generation == self.info.generation
        {
            let _ = bus.kv_delete(names::DELIVERIES_BUCKET, &self.key).await;
        }
        self.drop_takeover_keys(bus).await;
    }

    async fn drop_takeover_keys(&self, bus: &Bus) {
        if let Some(key) = &self.takeover {
            let _ = bus.kv_delete(names::DELIVERIES_BUCKET, key).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_bus::MemoryBus;
    use std::sync::Arc;

    const LEASE: Duration = Duration::from_millis(300);

    async fn bus() -> Bus {
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        bus
    }

    async fn try_claim(bus: &Bus, owner: &str) -> Claimed {
        claim(bus, "sub", "ev", owner, LEASE, &CancellationToken::new())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_live_claim_keeps_a_second_copy_out_and_the_record_settles_it() {
        let bus = bus().await;
        let Claimed::Held(first) = try_claim(&bus, "a").await else {
            panic!("the first claim is held")
        };
        assert!(matches!(try_claim(&bus, "b").await, Claimed::Busy));
        assert!(
            matches!(try_claim(&bus, "a").await, Claimed::Busy),
            "even by its own process"
        );
        assert!(
            read_record(&bus, "sub", "ev").await.unwrap().is_none(),
            "a claim is not a record"
        );
        first
            .finish(&bus, &DeliveryRecord::new("sub", "ev", Outcome::Delivered))
            .await
            .unwrap();
        assert!(matches!(try_claim(&bus, "b").await, Claimed::Settled));
    }

    #[tokio::test]
    async fn a_refreshed_claim_stays_ours_past_its_lease() {
        let bus = bus().await;
        let Claimed::Held(first) = try_claim(&bus, "a").await else {
            panic!("held")
        };
        for _ in 0..4 {
            tokio::time::sleep(LEASE / 3).await;
            first.refresh(&bus).await;
        }
        assert!(matches!(try_claim(&bus, "b").await, Claimed::Busy));
        assert!(!first.lost.is_cancelled());
    }

    #[tokio::test]
    async fn a_stale_claim_is_taken_over_once_and_its_old_holder_stops() {
        let bus = bus().await;
        let Claimed::Held(dead) = try_claim(&bus, "dead").await else {
            panic!("held")
        };
        tokio::time::sleep(LEASE + Duration::from_millis(50)).await;
        // Two copies find it stale at once: exactly one takes it over.
        let (x, y) = tokio::join!(try_claim(&bus, "x"), try_claim(&bus, "y"));
        let held: Vec<_> = [x, y]
            .into_iter()
            .filter_map(|c| match c {
                Claimed::Held(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(held.len(), 1, "one taker wins");
        // The old holder, slow rather than dead, learns it lost the claim.
        dead.refresh(&bus).await;
        assert!(dead.lost.is_cancelled());
        held[0]
            .finish(&bus, &DeliveryRecord::new("sub", "ev", Outcome::Delivered))
            .await
            .unwrap();
        assert_eq!(
            bus.kv_keys(names::DELIVERIES_BUCKET).await.unwrap(),
            ["sub.ev"],
            "only the record is left"
        );
    }

    #[tokio::test]
    async fn a_released_claim_is_free_at_once() {
        let bus = bus().await;
        let Claimed::Held(first) = try_claim(&bus, "a").await else {
            panic!("held")
        };
        first.release(&bus).await;
        assert!(matches!(try_claim(&bus, "b").await, Claimed::Held(_)));
    }
}
