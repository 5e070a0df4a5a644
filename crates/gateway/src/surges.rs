//! The gateway's view of `BW_SURGES`: every event, read from the stream at start and kept
//! current, for `GET /v1/surges` and the live stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;

use borderwatch_bus::{Bus, names};
use borderwatch_model::SurgeEvent;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// One stored event and its stream sequence (the SSE event id).
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub event: Arc<SurgeEvent>,
}

/// All surges seen, in stream order, and a channel of new ones.
#[derive(Debug, Clone)]
pub struct SurgeIndex {
    entries: Arc<RwLock<Vec<Entry>>>,
    live: broadcast::Sender<Entry>,
    caught_up: Arc<std::sync::atomic::AtomicBool>,
    bodies: Arc<Mutex<BodyCache>>,
    /// The public base URL each event's `url` (its evidence) is made under, if known.
    public_url: Option<Arc<str>>,
}

/// Rendered answers (JSON lists, dashboard pages) by request, valid while no surge is added:
/// a repeated request between two announcements costs a lookup instead of filtering and
/// serialising up to 10,000 events. See BENCHMARKS.md, "Gateway under load".
#[derive(Debug, Default)]
struct BodyCache {
    /// The index's last sequence when these bodies were rendered.
    seq: u64,
    /// Key → (validator, body): a body is served only with the validator it was made with.
    bodies: HashMap<String, (Bytes, Bytes)>,
    /// Bytes held by `bodies`.
    held: usize,
}

/// At most this many cached bodies and bytes (requests with made-up query strings must not
/// grow the gateway without bound); beyond either the cache starts over.
const CACHED_BODIES: usize = 1024;
const CACHED_BYTES: usize = 64 * 1024 * 1024;

impl SurgeIndex {
    /// Starts following the stream from its first message. With `public_url`, each event
    /// is given its `url` as it is indexed, so the list, one surge and the live stream all
    /// carry it.
    pub fn follow(bus: Bus, public_url: Option<&str>, cancel: CancellationToken) -> SurgeIndex {
        let (live, _) = broadcast::channel(1024);
        let index = SurgeIndex {
            entries: Arc::new(RwLock::new(Vec::new())),
            live,
            caught_up: Arc::default(),
            bodies: Arc::default(),
            public_url: public_url.map(Arc::from),
        };
        let me = index.clone();
        tokio::spawn(async move {
            // Where the stream stood at start: reaching it means caught up.
            let target = loop {
                match bus.last_seq(names::SURGE_STREAM).await {
                    Ok(seq) => break seq,
                    Err(e) => {
                        warn!(error = %e, "cannot read the surge stream's position; retrying")
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            };
            if target == 0 {
                me.caught_up
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            loop {
                let from = me.last_seq() + 1;
                match bus
                    .replay(names::SURGE_STREAM, names::ALL_SURGES, from)
                    .await
                {
                    Ok(mut stream) => {
                        me.caught_up
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                        loop {
                            let next = tokio::select! {
                                _ = cancel.cancelled() => return,
                                n = stream.next() => n,
                            };
                            match next {
                                Some(Ok(msg)) => {
                                    me.push(msg.seq, &msg.payload);
                                    if msg.seq >= target {
                                        me.caught_up
                                            .store(true, std::sync::atomic::Ordering::Relaxed);
                                    }
                                }
                                Some(Err(e)) => {
                                    warn!(error = %e, "surge stream failed; resuming");
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot read surges; retrying"),
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        });
        index
    }

    fn push(&self, seq: u64, payload: &[u8]) {
        let Ok(mut event) = serde_json::from_slice::<SurgeEvent>(payload) else {
            warn!(seq, "skipping a surge event that does not parse");
            return;
        };
        if event.incident_update == borderwatch_model::IncidentUpdate::Closed {
            // An incident's closing notice, for notify: not a surge to list.
            return;
        }
        event.link_evidence(self.public_url.as_deref());
        let entry = Entry {
            seq,
            event: Arc::new(event),
        };
        {
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            if entries.last().is_some_and(|last| last.seq >= seq) {
                return;
            }
            entries.push(entry.clone());
        }
        // Nobody listening is fine.
        let _ = self.live.send(entry);
    }

    pub fn last_seq(&self) -> u64 {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .map_or(0, |e| e.seq)
    }

    /// Whether the index has read what the stream held when the gateway started (for
    /// `/readyz`).
    pub fn is_following(&self) -> bool {
        self.caught_up.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until the index holds what the stream held when following began, at most
    /// `timeout`; returns whether it got there.
    pub async fn wait_caught_up(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_following() {
            if tokio::time::Instant::now() > deadline {
                warn!(indexed = self.last_seq(), "surge index still catching up");
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Every entry after `seq`, oldest first.
    pub fn after(&self, seq: u64) -> Vec<Entry> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let start = entries.partition_point(|e| e.seq <= seq);
        entries[start..].to_vec()
    }

    pub fn get(&self, id: &str) -> Option<Arc<SurgeEvent>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .rev()
            .find(|e| e.event.id == id)
            .map(|e| e.event.clone())
    }

    /// The body `render` makes for `key`, rendered once per index state: reused until a
    /// surge is added, and only while `validator` (e.g. the stored bytes the body was made
    /// from; empty when the index is all it depends on) is the same.
    pub fn cached(&self, key: &str, validator: &[u8], render: impl FnOnce() -> Bytes) -> Bytes {
        // Read before rendering: a body may be newer than its sequence, never older.
        let seq = self.last_seq();
        {
            let cache = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
            if cache.seq == seq
                && let Some((v, body)) = cache.bodies.get(key)
                && v.as_ref() == validator
            {
                return body.clone();
            }
        }
        let body = render();
        let size = key.len() + validator.len() + body.len();
        if size > CACHED_BYTES / 4 {
            return body;
        }
        let mut cache = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if cache.seq != seq
            || cache.bodies.len() >= CACHED_BODIES
            || cache.held + size > CACHED_BYTES
        {
            cache.bodies.clear();
            cache.held = 0;
            cache.seq = seq;
        }
        let old = cache.bodies.insert(
            key.to_string(),
            (Bytes::copy_from_slice(validator), body.clone()),
        );
        cache.held += size;
        if let Some((v, b)) = old {
            cache.held = cache.held.saturating_sub(key.len() + v.len() + b.len());
        }
        body
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_json(id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": id, "source": "fsb", "country": "PRK", "category": "study",
            "period": "2024-Q3", "value": 3765, "severity": "critical", "explanation": "x",
            "findings": [], "release_id": "rel-1", "detected_at": "2025-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn a_cached_body_is_reused_until_a_surge_arrives_or_its_validator_changes() {
        let index = SurgeIndex {
            entries: Arc::default(),
            live: broadcast::channel(4).0,
            caught_up: Arc::default(),
            bodies: Arc::default(),
            public_url: None,
        };
        let renders = std::cell::Cell::new(0);
        let render = |index: &SurgeIndex, validator: &[u8]| {
            index.cached("k", validator, || {
                renders.set(renders.get() + 1);
                Bytes::from(format!("{} surges", index.after(0).len()))
            })
        };
        assert_eq!(render(&index, b""), "0 surges");
        assert_eq!(render(&index, b""), "0 surges");
        assert_eq!(renders.get(), 1);
        index.push(1, &event_json("sg-1"));
        assert_eq!(render(&index, b""), "1 surges");
        assert_eq!(renders.get(), 2);
        // Same index, other stored bytes behind the page: rendered again.
        assert_eq!(render(&index, b"view v2"), "1 surges");
        assert_eq!(render(&index, b"view v2"), "1 surges");
        assert_eq!(renders.get(), 3);
    }

    #[test]
    fn indexed_surges_link_their_evidence_under_the_public_url() {
        let index = SurgeIndex {
            entries: Arc::default(),
            live: broadcast::channel(4).0,
            caught_up: Arc::default(),
            bodies: Arc::default(),
            public_url: Some("https://bw.example.org/".into()),
        };
        index.push(1, &event_json("sg-1"));
        let e = index.get("sg-1").expect("indexed");
        assert_eq!(
            e.url.as_deref(),
            Some("https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart")
        );
    }

    #[test]
    fn the_cache_holds_a_bounded_number_of_bytes() {
        let index = SurgeIndex {
            entries: Arc::default(),
            live: broadcast::channel(4).0,
            caught_up: Arc::default(),
            bodies: Arc::default(),
            public_url: None,
        };
        let big = Bytes::from(vec![b'x'; 1024 * 1024]);
        for i in 0..200 {
            index.cached(&format!("/v1/surges?x={i}"), b"", || big.clone());
        }
        let cache = index.bodies.lock().unwrap();
        assert!(cache.held <= CACHED_BYTES, "{} bytes held", cache.held);
        assert!(cache.bodies.len() < 64);
    }
}
