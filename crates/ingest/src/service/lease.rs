//! The turn of `locks.rs` across ingest replicas. The in-process locks order the uploads one
//! process serves; two replicas (the queue group, or two pods) could still build releases of
//! one source at once, each against what the stream held before the other published, and
//! tell revisions and missing categories wrong. So while an upload holds its turn it also
//! holds a lease on each of its keys in the `bw_locks` bucket:
//!
//! - taken with `kv_create` (one creator wins), in the keys' order, as the local locks are;
//! - renewed every [`Timing::renew`] while the work runs; a lease not renewed for
//!   [`Timing::ttl`] is stale (its holder died or hung) and is taken over: the taker first
//!   creates `<key>.t<the stale lease's time>`, so of two takers of one stale lease one wins;
//! - given back (deleted) when the work ends, whatever its outcome.
//!
//! A holder that finds its lease taken over (it stalled past the TTL) stops its work with an
//! error rather than publish beside the new holder; what it published is completed by the
//! next upload of the same file, as after any failure half-way (`ingest.rs`).

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use borderwatch_bus::{BusError, Transport, names, valid_key};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::IngestError;

/// How long a lease lives without renewal, and how often it is renewed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub(super) ttl: Duration,
    pub(super) renew: Duration,
    /// The pause between two tries of a key another holder has.
    pub(super) retry: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            ttl: Duration::from_secs(30),
            renew: Duration::from_secs(5),
            retry: Duration::from_millis(200),
        }
    }
}

/// What a lease's value says: who holds it, and when it was last renewed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Lease {
    holder: String,
    at_ms: u64,
}

/// Runs `work` holding a lease on every key in `keys` (see the module's text), and gives
/// them back when it ends.
pub(super) async fn hold<T>(
    bus: &dyn Transport,
    keys: &BTreeSet<String>,
    timing: Timing,
    work: impl Future<Output = Result<T, IngestError>>,
) -> Result<T, IngestError> {
    let holder = holder_id();
    let keys: Vec<String> = keys.iter().map(|k| bucket_key(k)).collect();
    let mut held = Vec::with_capacity(keys.len());
    for key in &keys {
        if let Err(e) = take(bus, key, &holder, timing).await {
            give_back(bus, &held, &holder).await;
            return Err(e.into());
        }
        held.push(key.clone());
    }
    let outcome = renewing(bus, &held, &holder, timing, work).await;
    give_back(bus, &held, &holder).await;
    outcome
}

/// `work`, renewing the leases meanwhile; stopped if one was taken over.
async fn renewing<T>(
    bus: &dyn Transport,
    held: &[String],
    holder: &str,
    timing: Timing,
    work: impl Future<Output = Result<T, IngestError>>,
) -> Result<T, IngestError> {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(timing.renew);
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                for key in held {
                    match renew(bus, key, holder).await {
                        Ok(true) => {}
                        Ok(false) => {
                            return Err(IngestError::Unavailable(format!(
                                "this upload's turn on `{key}` was taken over by another ingest \
                                 replica (this one went {} s without renewing it); nothing \
                                 more is published: send the file again",
                                timing.ttl.as_secs()
                            )));
                        }
                        // A failed renewal is tried again at the next tick; the lease lives
                        // on until its TTL.
                        Err(e) => warn!(key, error = %e, "cannot renew an upload's lease"),
                    }
                }
            }
        }
    }
}

/// Takes `key`: creates it, or waits while another holder renews it, or takes it over once
/// stale.
async fn take(
    bus: &dyn Transport,
    key: &str,
    holder: &str,
    timing: Timing,
) -> Result<(), BusError> {
    let mut waited = false;
    loop {
        if bus
            .kv_create(names::LOCKS_BUCKET, key, value(holder))
            .await?
        {
            return Ok(());
        }
        match bus.kv_get(names::LOCKS_BUCKET, key).await? {
            // Given back meanwhile: try again at once.
            None => continue,
            Some(bytes) => {
                let lease: Option<Lease> = serde_json::from_slice(&bytes).ok();
                let at_ms = lease.as_ref().map_or(0, |l| l.at_ms);
                if now_ms().saturating_sub(at_ms) > timing.ttl.as_millis() as u64 {
                    take_over(bus, key, at_ms).await?;
                    continue;
                }
                if !waited {
                    info!(
                        key,
                        "waiting for another ingest replica's upload of this source"
                    );
                    waited = true;
                }
            }
        }
        tokio::time::sleep(timing.retry).await;
    }
}

/// Removes the stale lease `key` of time `at_ms`, if this taker wins the right to: the first
/// to create the takeover key does. The takeover keys stay (they are rare: one per holder
/// that died holding a turn), so that a taker with an old read can never remove a newer lease.
async fn take_over(bus: &dyn Transport, key: &str, at_ms: u64) -> Result<(), BusError> {
    let takeover = format!("{key}.t{at_ms}");
    if bus
        .kv_create(names::LOCKS_BUCKET, &takeover, value("takeover"))
        .await?
    {
        warn!(
            key,
            "taking over a stale upload lease (its holder stopped renewing it)"
        );
        bus.kv_delete(names::LOCKS_BUCKET, key).await?;
    }
    Ok(())
}

/// Renews `key` if `holder` still has it; false if another holder has it now.
async fn renew(bus: &dyn Transport, key: &str, holder: &str) -> Result<bool, BusError> {
    if !holds(bus, key, holder).await? {
        return Ok(false);
    }
    bus.kv_put(names::LOCKS_BUCKET, key, value(holder)).await?;
    Ok(true)
}

async fn give_back(bus: &dyn Transport, held: &[String], holder: &str) {
    for key in held {
        let result = match holds(bus, key, holder).await {
            Ok(true) => bus.kv_delete(names::LOCKS_BUCKET, key).await,
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // Not fatal: the lease goes stale after its TTL and the next upload takes it over.
            warn!(key, error = %e, "cannot give back an upload's lease");
        }
    }
}

async fn holds(bus: &dyn Transport, key: &str, holder: &str) -> Result<bool, BusError> {
    Ok(bus
        .kv_get(names::LOCKS_BUCKET, key)
        .await?
        .and_then(|b| serde_json::from_slice::<Lease>(&b).ok())
        .is_some_and(|l| l.holder == holder))
}

/// The bucket key of a lock key (`source:fsb`, `sha:<hex>`): `source.fsb`, or a hash when
/// the name has characters a key cannot.
fn bucket_key(key: &str) -> String {
    let dotted = key.replacen(':', ".", 1);
    if valid_key(&dotted) {
        dotted
    } else {
        format!("h.{}", &borderwatch_model::sha256_hex(key.as_bytes())[..32])
    }
}

fn value(holder: &str) -> bytes::Bytes {
    serde_json::to_vec(&Lease {
        holder: holder.to_string(),
        at_ms: now_ms(),
    })
    .unwrap_or_default()
    .into()
}

/// Unique to this hold: the process, the time and a counter.
fn holder_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}-{n}", std::process::id())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_bus::MemoryBus;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fast() -> Timing {
        Timing {
            ttl: Duration::from_millis(600),
            renew: Duration::from_millis(100),
            retry: Duration::from_millis(20),
        }
    }

    async fn bus() -> Arc<MemoryBus> {
        let bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        bus
    }

    fn keys(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[tokio::test]
    async fn holders_of_one_key_take_turns_and_give_it_back() {
        let bus = bus().await;
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let work = |bus: Arc<MemoryBus>| {
            let (inside, most) = (inside.clone(), most.clone());
            async move {
                hold(bus.as_ref(), &keys(&["source:fsb"]), fast(), async {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Longer than the TTL: renewal keeps the lease.
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
            }
        };
        let (a, b) = tokio::join!(work(bus.clone()), work(bus.clone()));
        a.unwrap();
        b.unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two holders at once");
        assert!(bus.kv_keys(names::LOCKS_BUCKET).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_lease_its_holder_stopped_renewing_is_taken_over() {
        let bus = bus().await;
        let stale = serde_json::to_vec(&Lease {
            holder: "gone".into(),
            at_ms: now_ms() - 10_000,
        })
        .unwrap();
        bus.kv_put(names::LOCKS_BUCKET, "source.fsb", stale.into())
            .await
            .unwrap();
        let done = tokio::time::timeout(
            Duration::from_secs(5),
            hold(bus.as_ref(), &keys(&["source:fsb"]), fast(), async {
                Ok(())
            }),
        )
        .await;
        assert!(matches!(done, Ok(Ok(()))), "{done:?}");
    }

    #[tokio::test]
    async fn a_holder_whose_lease_was_taken_over_stops() {
        let bus = bus().await;
        let taker = {
            let bus = bus.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                // Another replica took the key over (as after a stall past the TTL).
                bus.kv_put(names::LOCKS_BUCKET, "source.fsb", value("other"))
                    .await
                    .unwrap();
            }
        };
        let fsb = keys(&["source:fsb"]);
        let (out, ()) = tokio::join!(
            hold(bus.as_ref(), &fsb, fast(), async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            }),
            taker
        );
        let err = out.expect_err("stopped");
        assert!(err.to_string().contains("taken over"), "{err}");
        // The other holder's lease is left alone.
        assert!(holds(bus.as_ref(), "source.fsb", "other").await.unwrap());
    }

    #[test]
    fn lock_keys_become_bucket_keys() {
        assert_eq!(bucket_key("source:fsb"), "source.fsb");
        assert_eq!(bucket_key("sha:ab12"), "sha.ab12");
        assert!(bucket_key("source:a b").starts_with("h."));
    }
}
