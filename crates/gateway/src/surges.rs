//! The gateway's view of `BW_SURGES`, in bounded memory, for `GET /v1/surges`, one surge,
//! the dashboard and the live stream.
//!
//! Every surge is indexed as a `Slim`: its stream sequence and the fields the filters and
//! orders read (source, country, category, period, severity, direction, release, detection
//! time), about 40 bytes, the strings interned; and its id, to find it by id. The events
//! themselves are kept whole only for the newest [`DEFAULT_SURGE_CACHE`] (`--surge-cache`)
//! and for as many older ones read lately; any other is read again from the stream by its
//! sequence ([`borderwatch_bus::Transport::message_at`]) when an answer needs it. So a
//! list filters and pages over the slim index, then reads at most a page of events. See
//! ARCHITECTURE.md ("The gateway's memory") and BENCHMARKS.md ("Gateway memory").

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;

use borderwatch_bus::{Bus, BusError, names};
use borderwatch_model::{Country, Direction, IncidentUpdate, Period, Severity, SurgeEvent};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Whole events kept in memory by default: the newest this many, and as many older ones
/// read lately (about 2 KiB each).
pub const DEFAULT_SURGE_CACHE: usize = 10_000;

/// Events read from the stream at once when an answer needs ones not in memory.
const READS_AT_ONCE: usize = 16;

/// One event and its stream sequence (the SSE event id).
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub event: Arc<SurgeEvent>,
}

/// What the index keeps of one surge: what filters and orders read.
#[derive(Debug, Clone, Copy)]
struct Slim {
    seq: u64,
    source: u32,
    category: u32,
    release: u32,
    detected: u32,
    period: Period,
    country: Country,
    severity: Severity,
    direction: Direction,
}

/// The fields of one surge that filters and orders read, borrowed from the index (or from
/// an event: [`Fields::of`]).
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub seq: u64,
    pub source: &'a str,
    pub country: Country,
    pub category: &'a str,
    pub period: Period,
    pub severity: Severity,
    pub direction: Direction,
    pub release_id: &'a str,
    pub detected_at: &'a str,
}

impl<'a> Fields<'a> {
    pub fn of(seq: u64, e: &'a SurgeEvent) -> Fields<'a> {
        Fields {
            seq,
            source: &e.source,
            country: e.country,
            category: &e.category,
            period: e.period,
            severity: e.severity,
            direction: e.direction,
            release_id: &e.release_id,
            detected_at: &e.detected_at,
        }
    }
}

/// Strings stored once however many surges name them (sources, categories, releases,
/// detection times: a release's surges share one time).
#[derive(Debug, Default)]
struct Interner {
    strings: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn get(&self, id: u32) -> &str {
        &self.strings[id as usize]
    }
}

/// Every indexed surge, in stream order.
#[derive(Debug, Default)]
struct Slims {
    rows: Vec<Slim>,
    /// Surge id → the sequence of its newest event.
    by_id: HashMap<Box<str>, u64>,
    strings: Interner,
}

/// Read access to the index: every surge's [`Fields`], oldest first.
#[derive(Debug)]
pub struct Rows<'a> {
    slims: &'a Slims,
}

impl<'a> Rows<'a> {
    fn fields(&self, s: &Slim) -> Fields<'a> {
        let strings = &self.slims.strings;
        Fields {
            seq: s.seq,
            source: strings.get(s.source),
            country: s.country,
            category: strings.get(s.category),
            period: s.period,
            severity: s.severity,
            direction: s.direction,
            release_id: strings.get(s.release),
            detected_at: strings.get(s.detected),
        }
    }

    /// Every surge, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Fields<'a>> + '_ {
        self.slims.rows.iter().map(|s| self.fields(s))
    }

    /// Every surge after sequence `seq`, oldest first.
    pub fn after(&self, seq: u64) -> impl DoubleEndedIterator<Item = Fields<'a>> + '_ {
        let start = self.slims.rows.partition_point(|s| s.seq <= seq);
        self.slims.rows[start..].iter().map(|s| self.fields(s))
    }

    pub fn len(&self) -> usize {
        self.slims.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slims.rows.is_empty()
    }
}

/// Whole events in memory: the newest `capacity` in stream order, and up to `capacity`
/// older ones read from the stream, the first read first forgotten.
#[derive(Debug, Default)]
struct Events {
    capacity: usize,
    recent: VecDeque<Entry>,
    older: HashMap<u64, Arc<SurgeEvent>>,
    older_order: VecDeque<u64>,
}

impl Events {
    fn push(&mut self, entry: Entry) {
        self.recent.push_back(entry);
        while self.recent.len() > self.capacity {
            self.recent.pop_front();
        }
    }

    fn get(&self, seq: u64) -> Option<Arc<SurgeEvent>> {
        if let Some(first) = self.recent.front()
            && seq >= first.seq
        {
            let at = self.recent.partition_point(|e| e.seq < seq);
            return self
                .recent
                .get(at)
                .filter(|e| e.seq == seq)
                .map(|e| e.event.clone());
        }
        self.older.get(&seq).cloned()
    }

    fn remember(&mut self, seq: u64, event: Arc<SurgeEvent>) {
        if self.capacity == 0 || self.older.insert(seq, event).is_some() {
            return;
        }
        self.older_order.push_back(seq);
        while self.older_order.len() > self.capacity {
            if let Some(old) = self.older_order.pop_front() {
                self.older.remove(&old);
            }
        }
    }

    fn held(&self) -> usize {
        self.recent.len() + self.older.len()
    }
}

/// The index, the events in memory and a channel of new ones.
#[derive(Debug, Clone)]
pub struct SurgeIndex {
    slims: Arc<RwLock<Slims>>,
    events: Arc<Mutex<Events>>,
    /// Where events not in memory are read from (none in unit tests: all in memory).
    bus: Option<Bus>,
    live: broadcast::Sender<Entry>,
    caught_up: Arc<std::sync::atomic::AtomicBool>,
    /// The sequence of the newest indexed surge: the index's generation, bumped by every
    /// surge and incident update indexed. Cached answers are valid for one generation; it
    /// is read without the index's lock, so a cache hit takes no lock the follower holds.
    generation: Arc<AtomicU64>,
    bodies: Arc<Mutex<BodyCache>>,
    /// The public base URL each event's `url` (its evidence) is made under, if known.
    public_url: Option<Arc<str>>,
}

/// Rendered answers (surge list pages, charts, dashboard pages) by request, valid while no
/// surge is added: a repeated request between two announcements costs a lookup instead of
/// filtering and serialising up to 10,000 events. See BENCHMARKS.md, "Gateway under load".
#[derive(Debug, Default)]
struct BodyCache {
    /// The index's generation (last sequence) when these answers were rendered.
    seq: u64,
    /// Key → the answer, served only with the validator it was made with.
    bodies: HashMap<String, Cached>,
    /// Bytes held by `bodies`, as their `put` calls counted them.
    held: usize,
}

/// One cached answer: a body ([`Bytes`]) or whatever a handler keeps of a rendered answer
/// (a body and its headers, say), with what it was made from and what it costs.
#[derive(Debug, Clone)]
struct Cached {
    validator: Bytes,
    value: Arc<dyn Any + Send + Sync>,
    size: usize,
}

/// At most this many cached answers and bytes (requests with made-up query strings must not
/// grow the gateway without bound); beyond either the cache starts over. An answer over a
/// quarter of the bytes is not cached.
pub const CACHED_BODIES: usize = 1024;
pub const CACHED_BYTES: usize = 64 * 1024 * 1024;

impl SurgeIndex {
    /// An empty index keeping `cache` whole events (see [`DEFAULT_SURGE_CACHE`]), reading
    /// the others from `bus`.
    pub fn new(bus: Option<Bus>, public_url: Option<&str>, cache: usize) -> SurgeIndex {
        SurgeIndex {
            slims: Arc::default(),
            events: Arc::new(Mutex::new(Events {
                capacity: cache,
                ..Events::default()
            })),
            bus,
            live: broadcast::channel(1024).0,
            caught_up: Arc::default(),
            generation: Arc::default(),
            bodies: Arc::default(),
            public_url: public_url.map(Arc::from),
        }
    }

    /// Starts following the stream from its first message. With `public_url`, each event
    /// is given its `url` as it is indexed, so the list, one surge and the live stream all
    /// carry it.
    pub fn follow(
        bus: Bus,
        public_url: Option<&str>,
        cache: usize,
        cancel: CancellationToken,
    ) -> SurgeIndex {
        let index = SurgeIndex::new(Some(bus.clone()), public_url, cache);
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
            // Read up to here; closing notices are not indexed, so this may be past the
            // index's last sequence.
            let mut read = 0;
            loop {
                match bus
                    .replay(names::SURGE_STREAM, names::ALL_SURGES, read + 1)
                    .await
                {
                    Ok(mut stream) => loop {
                        let next = tokio::select! {
                            _ = cancel.cancelled() => return,
                            n = stream.next() => n,
                        };
                        match next {
                            Some(Ok(msg)) => {
                                me.push(msg.seq, &msg.payload);
                                read = read.max(msg.seq);
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
                    },
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

    /// The event as the index serves it, or `None` for one it does not list (a closing
    /// notice, or bytes that do not parse).
    fn parse(&self, seq: u64, payload: &[u8]) -> Option<SurgeEvent> {
        let Ok(mut event) = serde_json::from_slice::<SurgeEvent>(payload) else {
            warn!(seq, "skipping a surge event that does not parse");
            return None;
        };
        if event.incident_update == IncidentUpdate::Closed {
            // An incident's closing notice, for notify: not a surge to list.
            return None;
        }
        event.link_evidence(self.public_url.as_deref());
        Some(event)
    }

    /// Indexes the event at `seq` (the follower calls this; so do unit tests), bumping the
    /// generation.
    pub(crate) fn push(&self, seq: u64, payload: &[u8]) {
        let Some(event) = self.parse(seq, payload) else {
            return;
        };
        let entry = Entry {
            seq,
            event: Arc::new(event),
        };
        {
            let mut slims = self.slims.write().unwrap_or_else(|e| e.into_inner());
            if slims.rows.last().is_some_and(|last| last.seq >= seq) {
                return;
            }
            let e = &entry.event;
            let slim = Slim {
                seq,
                source: slims.strings.intern(&e.source),
                category: slims.strings.intern(&e.category),
                release: slims.strings.intern(&e.release_id),
                detected: slims.strings.intern(&e.detected_at),
                period: e.period,
                country: e.country,
                severity: e.severity,
                direction: e.direction,
            };
            slims.rows.push(slim);
            slims.by_id.insert(e.id.as_str().into(), seq);
            // After the row, under the lock: whoever reads this generation finds the row.
            self.generation.store(seq, Ordering::Release);
            // Under the index's lock, so the events stay in stream order.
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry.clone());
        }
        // Nobody listening is fine.
        let _ = self.live.send(entry);
    }

    /// The sequence of the newest indexed surge (0: none): the index's generation, which
    /// cached answers are checked against.
    pub fn last_seq(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
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

    /// Runs `f` over the index (under its read lock: `f` must not wait on anything).
    pub fn with_rows<R>(&self, f: impl FnOnce(&Rows<'_>) -> R) -> R {
        let slims = self.slims.read().unwrap_or_else(|e| e.into_inner());
        f(&Rows { slims: &slims })
    }

    /// The events at `seqs`, in that order, read from the stream where they are not in
    /// memory; a sequence the index does not list is left out.
    pub async fn entries(&self, seqs: &[u64]) -> Result<Vec<Entry>, BusError> {
        let mut found: Vec<Option<Arc<SurgeEvent>>> = {
            let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            seqs.iter().map(|&seq| events.get(seq)).collect()
        };
        let missing: Vec<(usize, u64)> = found
            .iter()
            .zip(seqs)
            .enumerate()
            .filter(|(_, (e, _))| e.is_none())
            .map(|(i, (_, &seq))| (i, seq))
            .collect();
        if let (false, Some(bus)) = (missing.is_empty(), &self.bus) {
            let read: Vec<(usize, u64, Result<Option<SurgeEvent>, BusError>)> =
                futures::stream::iter(missing)
                    .map(|(i, seq)| async move {
                        let msg = bus.message_at(names::SURGE_STREAM, seq).await;
                        let event = msg.map(|m| m.and_then(|m| self.parse(seq, &m.payload)));
                        (i, seq, event)
                    })
                    .buffered(READS_AT_ONCE)
                    .collect()
                    .await;
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            for (i, seq, event) in read {
                let Some(event) = event? else {
                    warn!(seq, "an indexed surge is no longer in the stream");
                    continue;
                };
                let event = Arc::new(event);
                events.remember(seq, event.clone());
                found[i] = Some(event);
            }
        }
        Ok(seqs
            .iter()
            .zip(found)
            .filter_map(|(&seq, event)| event.map(|event| Entry { seq, event }))
            .collect())
    }

    /// The newest event with this id.
    pub async fn get(&self, id: &str) -> Result<Option<Arc<SurgeEvent>>, BusError> {
        Ok(self
            .get_many(std::slice::from_ref(&id))
            .await?
            .into_iter()
            .next())
    }

    /// The events with these ids, in that order; an id the index does not know is left out.
    pub async fn get_many(
        &self,
        ids: &[impl AsRef<str>],
    ) -> Result<Vec<Arc<SurgeEvent>>, BusError> {
        let seqs: Vec<u64> = {
            let slims = self.slims.read().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .filter_map(|id| slims.by_id.get(id.as_ref()).copied())
                .collect()
        };
        Ok(self
            .entries(&seqs)
            .await?
            .into_iter()
            .map(|e| e.event)
            .collect())
    }

    /// The body cached for `key`, if one was rendered from the index as it is now with the
    /// same `validator` (e.g. the stored bytes the body was made from; empty when the index
    /// is all it depends on).
    pub fn cache_get(&self, key: &str, validator: &[u8]) -> Option<Bytes> {
        self.cache_get_as::<Bytes>(key, validator)
            .map(|b| Bytes::clone(&b))
    }

    /// Caches `body` for `key`, rendered from the index as it was at `seq` (read before
    /// rendering: a body may be newer than its sequence, never older).
    pub fn cache_put(&self, key: &str, validator: &[u8], seq: u64, body: Bytes) {
        let size = body.len();
        self.cache_put_as(key, validator, seq, Arc::new(body), size);
    }

    /// [`Self::cache_get`] for an answer kept as a `T` (a body with its headers, say): `None`
    /// also when what is cached under `key` is not a `T`.
    pub fn cache_get_as<T: Any + Send + Sync>(
        &self,
        key: &str,
        validator: &[u8],
    ) -> Option<Arc<T>> {
        let seq = self.last_seq();
        let cache = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        let cached = cache.bodies.get(key)?;
        if cache.seq != seq || cached.validator.as_ref() != validator {
            return None;
        }
        cached.value.clone().downcast::<T>().ok()
    }

    /// [`Self::cache_put`] for an answer kept as a `T`, `size` bytes of it counted against
    /// [`CACHED_BYTES`] (with its key and validator).
    pub fn cache_put_as<T: Any + Send + Sync>(
        &self,
        key: &str,
        validator: &[u8],
        seq: u64,
        value: Arc<T>,
        size: usize,
    ) {
        let size = key.len() + validator.len() + size;
        if size > CACHED_BYTES / 4 {
            return;
        }
        let mut cache = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if seq < cache.seq {
            return;
        }
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
            Cached {
                validator: Bytes::copy_from_slice(validator),
                value,
                size,
            },
        );
        cache.held += size;
        if let Some(old) = old {
            cache.held = cache.held.saturating_sub(old.size);
        }
    }

    /// The body `render` makes for `key`, rendered once per index state: reused until a
    /// surge is added, and only while `validator` is the same (see [`Self::cache_get`]).
    pub fn cached(&self, key: &str, validator: &[u8], render: impl FnOnce() -> Bytes) -> Bytes {
        let seq = self.last_seq();
        if let Some(body) = self.cache_get(key, validator) {
            return body;
        }
        let body = render();
        self.cache_put(key, validator, seq, body.clone());
        body
    }

    /// [`Self::cached`] for a `render` that waits (reads events, say) and may fail.
    pub async fn cached_async<E, Fut>(
        &self,
        key: &str,
        validator: &[u8],
        render: impl FnOnce() -> Fut,
    ) -> Result<Bytes, E>
    where
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let seq = self.last_seq();
        if let Some(body) = self.cache_get(key, validator) {
            return Ok(body);
        }
        let body = render().await?;
        self.cache_put(key, validator, seq, body.clone());
        Ok(body)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.live.subscribe()
    }

    /// Whole events held in memory now (for tests and the memory benchmark).
    pub fn events_held(&self) -> usize {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).held()
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

    fn count(index: &SurgeIndex) -> usize {
        index.with_rows(|rows| rows.len())
    }

    #[tokio::test]
    async fn a_cached_body_is_reused_until_a_surge_arrives_or_its_validator_changes() {
        let index = SurgeIndex::new(None, None, 16);
        let renders = std::cell::Cell::new(0);
        let render = |index: &SurgeIndex, validator: &'static [u8]| {
            let index = index.clone();
            let renders = &renders;
            async move {
                index
                    .cached_async::<(), _>("k", validator, || async {
                        renders.set(renders.get() + 1);
                        Ok(Bytes::from(format!("{} surges", count(&index))))
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(render(&index, b"").await, "0 surges");
        assert_eq!(render(&index, b"").await, "0 surges");
        assert_eq!(renders.get(), 1);
        index.push(1, &event_json("sg-1"));
        assert_eq!(render(&index, b"").await, "1 surges");
        assert_eq!(renders.get(), 2);
        // Same index, other stored bytes behind the page: rendered again.
        assert_eq!(render(&index, b"view v2").await, "1 surges");
        assert_eq!(render(&index, b"view v2").await, "1 surges");
        assert_eq!(renders.get(), 3);
    }

    #[tokio::test]
    async fn indexed_surges_link_their_evidence_under_the_public_url() {
        let index = SurgeIndex::new(None, Some("https://bw.example.org/"), 16);
        index.push(1, &event_json("sg-1"));
        let e = index.get("sg-1").await.unwrap().expect("indexed");
        assert_eq!(
            e.url.as_deref(),
            Some("https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart")
        );
    }

    #[test]
    fn a_cached_answer_is_found_as_the_type_it_was_put_as_for_its_generation_only() {
        let index = SurgeIndex::new(None, None, 16);
        let page = Arc::new((Bytes::from_static(b"body"), "link"));
        index.cache_put_as("k", b"", 0, page.clone(), 4);
        let got = index
            .cache_get_as::<(Bytes, &str)>("k", b"")
            .expect("cached");
        assert!(Arc::ptr_eq(&got, &page));
        assert!(index.cache_get_as::<Bytes>("k", b"").is_none());
        assert!(index.cache_get("k", b"").is_none());
        index.push(7, &event_json("sg-7"));
        assert_eq!(index.last_seq(), 7);
        assert!(index.cache_get_as::<(Bytes, &str)>("k", b"").is_none());
        // An answer rendered before the surge is not kept for the new generation.
        index.cache_put_as("k", b"", 0, page, 4);
        assert!(index.cache_get_as::<(Bytes, &str)>("k", b"").is_none());
    }

    #[test]
    fn the_cache_holds_a_bounded_number_of_bytes() {
        let index = SurgeIndex::new(None, None, 16);
        let big = Bytes::from(vec![b'x'; 1024 * 1024]);
        for i in 0..200 {
            index.cache_put(&format!("/v1/surges?x={i}"), b"", 0, big.clone());
        }
        let cache = index.bodies.lock().unwrap();
        assert!(cache.held <= CACHED_BYTES, "{} bytes held", cache.held);
        assert!(cache.bodies.len() < 64);
    }

    #[test]
    fn only_the_newest_events_are_held_whole_and_every_one_is_indexed() {
        let index = SurgeIndex::new(None, None, 10);
        for seq in 1..=100 {
            index.push(seq, &event_json(&format!("sg-{seq}")));
        }
        assert_eq!(count(&index), 100);
        assert_eq!(index.events_held(), 10);
        let kept = index.events.lock().unwrap();
        assert!(kept.get(91).is_some() && kept.get(100).is_some());
        assert!(kept.get(90).is_none());
    }

    #[test]
    fn strings_are_kept_once_however_many_surges_name_them() {
        let index = SurgeIndex::new(None, None, 0);
        for seq in 1..=1000 {
            index.push(seq, &event_json(&format!("sg-{seq}")));
        }
        let slims = index.slims.read().unwrap();
        // fsb, study, rel-1 and one detection time.
        assert_eq!(slims.strings.strings.len(), 4);
        assert!(
            std::mem::size_of::<Slim>() <= 48,
            "{}",
            std::mem::size_of::<Slim>()
        );
    }
}
