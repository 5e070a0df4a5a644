//! Streams and durable consumers: messages by sequence and by subject (versions per subject,
//! duplicate window), and each consumer's position, pending deliveries and acks (the
//! `consumers/<stream>.<durable>.acks` log).
//!
//! Memory stays bounded the way JetStream bounds it: a consumer keeps an ack floor (every
//! sequence at or below it is settled) and only the acks above it, and the duplicate window
//! forgets message ids older than the stream's window (and beyond [`MAX_DEDUP_IDS`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::time::Instant;

use super::log::{RecordHeader, now_ms, read_log, write_record};
use super::{Inner, MemoryBus, files};
use crate::{
    Acker, BusError, ConsumerLag, Delivery, Headers, Message, Outgoing, PubAck, Result, StreamSpec,
    subject_matches,
};

/// Message ids a stream remembers at most, however short its window: a bound on memory that
/// a burst of publishes within one window cannot push past.
pub(super) const MAX_DEDUP_IDS: usize = 1_000_000;
/// The `op` of a stream log record that removes a subject's messages below its `seq`
/// ([`crate::Transport::purge_subject_below`]); message records have none.
const PURGE_OP: &str = "purge";
/// Lines an acks log may hold beyond twice its live acks before it is rewritten.
const ACKS_LOG_SLACK: usize = 4096;

#[derive(Debug)]
pub(super) struct StreamState {
    spec: StreamSpec,
    msgs: BTreeMap<u64, Stored>,
    by_subject: HashMap<String, VecDeque<u64>>,
    last_seq: u64,
    /// Message id → (sequence, unix ms when stored).
    dedup: HashMap<String, (u64, u64)>,
    /// The ids of `dedup` in the order stored (unix ms, id), to forget the oldest.
    dedup_order: VecDeque<(u64, String)>,
    consumers: HashMap<String, ConsumerState>,
    log: Option<StreamLog>,
    /// What the stored messages take (subjects, headers, payloads), as NATS counts a
    /// stream's bytes.
    bytes: u64,
    /// The byte limit in force (`-1`: none): a publish beyond it is refused.
    max_bytes: i64,
}

/// A stream's `streams/<name>.log`: appended to on publish, read back at the offsets of the
/// payloads it holds (so payloads are not kept in memory).
#[derive(Debug)]
struct StreamLog {
    writer: BufWriter<File>,
    reader: File,
    /// The file's length once `writer` is flushed.
    len: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    subject: String,
    headers: Headers,
    body: Body,
}

/// A stored message's payload: in memory (no data directory), or where it lies in the log.
#[derive(Debug, Clone)]
enum Body {
    Memory(Bytes),
    #[cfg_attr(not(unix), allow(dead_code))]
    Log {
        offset: u64,
        len: usize,
    },
}

impl Body {
    /// The payload at `offset` of the log where positioned reads exist (Unix), else the
    /// bytes themselves.
    fn logged(payload: Bytes, offset: u64) -> Body {
        if cfg!(unix) {
            Body::Log {
                offset,
                len: payload.len(),
            }
        } else {
            Body::Memory(payload)
        }
    }
}

#[derive(Debug)]
struct ConsumerState {
    filter: String,
    ack_wait: Duration,
    /// The next stream sequence never delivered yet.
    next_seq: u64,
    /// Delivered, not yet acknowledged: sequence → (redeliver at, deliveries so far).
    pending: BTreeMap<u64, (Instant, u64)>,
    /// Every sequence at or below it is settled: acknowledged, not matching the filter, or
    /// gone from the stream.
    ack_floor: u64,
    /// Acknowledged sequences above the ack floor (acked out of order).
    acked: BTreeSet<u64>,
    log: Option<AcksLog>,
}

/// The `consumers/<stream>.<durable>.acks` file: one acknowledged sequence a line, and after
/// a rewrite a first line `floor N`.
#[derive(Debug)]
struct AcksLog {
    path: PathBuf,
    writer: BufWriter<File>,
    lines: usize,
}

impl Stored {
    /// The bytes this message counts against its stream's limit.
    fn size(&self) -> u64 {
        let payload = match &self.body {
            Body::Memory(bytes) => bytes.len(),
            Body::Log { len, .. } => *len,
        };
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.subject.len() + headers + payload) as u64
    }
}

/// What `msg` will count against its stream's limit once stored.
fn outgoing_size(msg: &Outgoing) -> u64 {
    let headers: usize = msg.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    (msg.subject.len() + headers + msg.payload.len()) as u64
}

impl StreamState {
    fn store(&mut self, seq: u64, stored: Stored) {
        let versions = self.by_subject.entry(stored.subject.clone()).or_default();
        versions.push_back(seq);
        if self.spec.max_msgs_per_subject > 0 {
            while versions.len() > self.spec.max_msgs_per_subject as usize {
                if let Some(old) = versions.pop_front()
                    && let Some(gone) = self.msgs.remove(&old)
                {
                    self.bytes = self.bytes.saturating_sub(gone.size());
                }
            }
        }
        self.bytes += stored.size();
        self.msgs.insert(seq, stored);
        self.last_seq = self.last_seq.max(seq);
    }

    /// The stored subjects `subject` names, with their sequences: itself, or, for a filter
    /// with wildcards, every stored subject it matches.
    fn matching<'a>(
        &'a self,
        subject: &'a str,
    ) -> Box<dyn Iterator<Item = (&'a String, &'a VecDeque<u64>)> + 'a> {
        if subject.contains(['*', '>']) {
            Box::new(
                self.by_subject
                    .iter()
                    .filter(move |(stored, _)| subject_matches(subject, stored)),
            )
        } else {
            Box::new(self.by_subject.get_key_value(subject).into_iter())
        }
    }

    /// Removes the messages of `subject` (a subject or a filter) below `seq` (see
    /// [`crate::Transport::purge_subject_below`]); returns how many went.
    fn purge_below(&mut self, subject: &str, seq: u64) -> u64 {
        let subjects: Vec<String> = self.matching(subject).map(|(s, _)| s.clone()).collect();
        subjects.iter().map(|s| self.purge_one(s, seq)).sum()
    }

    /// [`StreamState::purge_below`] for one stored subject.
    fn purge_one(&mut self, subject: &str, seq: u64) -> u64 {
        let Some(versions) = self.by_subject.get_mut(subject) else {
            return 0;
        };
        let mut purged = 0;
        while let Some(&old) = versions.front() {
            if old >= seq {
                break;
            }
            versions.pop_front();
            if let Some(gone) = self.msgs.remove(&old) {
                self.bytes = self.bytes.saturating_sub(gone.size());
                purged += 1;
            }
        }
        if versions.is_empty() {
            self.by_subject.remove(subject);
        }
        purged
    }

    /// [`StreamState::purge_below`], written to the log first (a `purge` record: subject
    /// and sequence, no payload) so that reading the log back removes them again.
    fn purge_logged(&mut self, subject: &str, seq: u64) -> Result<u64> {
        if let Some(log) = self.log.as_mut() {
            let header = RecordHeader {
                seq,
                subject: subject.to_string(),
                headers: Vec::new(),
                msg_id: None,
                at_ms: now_ms(),
                op: PURGE_OP.into(),
                key: String::new(),
                len: 0,
            };
            let (_, written) = write_record(&mut log.writer, &header, &[])?;
            log.len += written;
            log.writer.flush()?;
        }
        Ok(self.purge_below(subject, seq))
    }

    fn append(&mut self, msg: Outgoing) -> Result<PubAck> {
        let now = now_ms();
        let window = self.spec.duplicate_window.as_millis() as u64;
        if let Some(id) = &msg.msg_id
            && let Some(&(seq, at)) = self.dedup.get(id)
            && now.saturating_sub(at) <= window
        {
            return Ok(PubAck {
                seq,
                duplicate: true,
            });
        }
        if self.max_bytes >= 0 && self.bytes + outgoing_size(&msg) > self.max_bytes as u64 {
            let (what, setting) = crate::names::stream_limit_setting(&self.spec.name);
            return Err(BusError::StreamFull {
                stream: self.spec.name.clone(),
                what,
                limit: crate::describe_bytes(self.max_bytes),
                setting,
            });
        }
        let seq = self.last_seq + 1;
        let mut body = Body::Memory(msg.payload.clone());
        if let Some(log) = self.log.as_mut() {
            let header = RecordHeader {
                seq,
                subject: msg.subject.clone(),
                headers: msg.headers.clone(),
                msg_id: msg.msg_id.clone(),
                at_ms: now,
                op: String::new(),
                key: String::new(),
                len: msg.payload.len(),
            };
            let (start, written) = write_record(&mut log.writer, &header, &msg.payload)?;
            body = Body::logged(msg.payload, log.len + start);
            log.len += written;
        }
        if let Some(id) = msg.msg_id {
            self.remember_id(id, seq, now);
        }
        self.forget_ids(now);
        self.store(
            seq,
            Stored {
                subject: msg.subject,
                headers: msg.headers,
                body,
            },
        );
        Ok(PubAck {
            seq,
            duplicate: false,
        })
    }

    fn remember_id(&mut self, id: String, seq: u64, at_ms: u64) {
        self.dedup_order.push_back((at_ms, id.clone()));
        self.dedup.insert(id, (seq, at_ms));
    }

    /// Forgets the ids stored longer ago than the duplicate window (and the oldest beyond
    /// [`MAX_DEDUP_IDS`]).
    fn forget_ids(&mut self, now_ms: u64) {
        let window = self.spec.duplicate_window.as_millis() as u64;
        while let Some((at, _)) = self.dedup_order.front() {
            if now_ms.saturating_sub(*at) <= window && self.dedup_order.len() <= MAX_DEDUP_IDS {
                break;
            }
            let Some((at, id)) = self.dedup_order.pop_front() else {
                break;
            };
            // The map may hold a newer entry for the id (stored again after its window).
            if self.dedup.get(&id).is_some_and(|(_, stored)| *stored == at) {
                self.dedup.remove(&id);
            }
        }
    }

    /// What this stream holds in memory now (see [`super::Footprint`]).
    pub(super) fn footprint(&self, f: &mut super::Footprint) {
        f.messages += self.msgs.len();
        for m in self.msgs.values() {
            match &m.body {
                Body::Memory(bytes) => f.payload_bytes += bytes.len(),
                Body::Log { len, .. } => f.payload_bytes_on_disk += len,
            }
        }
        f.remembered_ids += self.dedup.len();
        for c in self.consumers.values() {
            f.acks_above_floor += c.acked.len();
            f.pending += c.pending.len();
        }
    }

    /// The message at `seq`, if the stream holds it; its payload is read from the log when
    /// it is kept there.
    fn message(&self, seq: u64) -> Option<Result<Message>> {
        let s = self.msgs.get(&seq)?;
        let payload = match &s.body {
            Body::Memory(bytes) => Ok(bytes.clone()),
            Body::Log { offset, len } => self.read_payload(*offset, *len),
        };
        Some(payload.map(|payload| Message {
            subject: s.subject.clone(),
            headers: s.headers.clone(),
            payload,
            seq,
        }))
    }

    #[cfg(unix)]
    fn read_payload(&self, offset: u64, len: usize) -> Result<Bytes> {
        let log = self.log.as_ref().ok_or(BusError::Closed)?;
        Ok(super::log::read_at(&log.reader, offset, len)?)
    }

    #[cfg(not(unix))]
    fn read_payload(&self, _offset: u64, _len: usize) -> Result<Bytes> {
        Err(BusError::Closed)
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(log) = self.log.as_mut() {
            log.writer.flush()?;
        }
        Ok(())
    }
}

impl ConsumerState {
    fn settle(&mut self, seq: u64) -> Result<()> {
        if self.pending.remove(&seq).is_some() && seq > self.ack_floor && self.acked.insert(seq) {
            if let Some(log) = self.log.as_mut() {
                writeln!(log.writer, "{seq}")?;
                log.writer.flush()?;
                log.lines += 1;
            }
            self.advance_floor();
            self.compact_log()?;
        }
        Ok(())
    }

    /// Moves the ack floor up to just below the first sequence still owed (the oldest
    /// pending delivery, or the next never delivered) and forgets the acks at or below it.
    fn advance_floor(&mut self) {
        let owed = self
            .pending
            .first_key_value()
            .map_or(self.next_seq, |(seq, _)| (*seq).min(self.next_seq));
        let floor = owed.saturating_sub(1);
        if floor > self.ack_floor {
            self.ack_floor = floor;
            self.acked = self.acked.split_off(&(floor + 1));
        }
    }

    /// Rewrites the acks log as `floor N` and the acks above it once it has grown past
    /// twice that (plus [`ACKS_LOG_SLACK`] lines).
    fn compact_log(&mut self) -> Result<()> {
        let live = self.acked.len() + 1;
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        if log.lines <= 2 * live + ACKS_LOG_SLACK {
            return Ok(());
        }
        log.writer.flush()?;
        let (floor, acked) = (self.ack_floor, &self.acked);
        files::replace(&log.path, |file| {
            let mut w = BufWriter::new(file);
            writeln!(w, "floor {floor}")?;
            for seq in acked {
                writeln!(w, "{seq}")?;
            }
            w.flush()
        })?;
        log.writer = BufWriter::new(files::open_append(&log.path)?);
        log.lines = live;
        Ok(())
    }

    /// Reads an acks log: its floor (0 without one) and the acks above it.
    fn read_acks(text: &str) -> (u64, BTreeSet<u64>) {
        let mut floor = 0;
        let mut acked = BTreeSet::new();
        for line in text.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("floor ") {
                floor = floor.max(n.trim().parse().unwrap_or(0));
            } else if let Ok(seq) = line.parse() {
                acked.insert(seq);
            }
        }
        (floor, acked.split_off(&(floor + 1)))
    }

    /// The next message for this consumer: an expired or refused delivery first, then one
    /// never delivered. Returns the sequence and how often it has now been delivered.
    fn next(&mut self, stream: &StreamState, now: Instant) -> Option<(u64, u64)> {
        let due = self
            .pending
            .iter()
            .find(|(_, (at, _))| *at <= now)
            .map(|(seq, (_, n))| (*seq, *n));
        if let Some((seq, n)) = due {
            if stream.msgs.contains_key(&seq) {
                self.pending.insert(seq, (now + self.ack_wait, n + 1));
                return Some((seq, n + 1));
            }
            // The stream dropped it (a newer version replaced it): nothing to redeliver.
            self.pending.remove(&seq);
            return self.next(stream, now);
        }
        let candidates = stream.msgs.range(self.next_seq..);
        for (seq, stored) in candidates {
            self.next_seq = seq + 1;
            if self.acked.contains(seq) || !subject_matches(&self.filter, &stored.subject) {
                continue;
            }
            self.pending.insert(*seq, (now + self.ack_wait, 1));
            return Some((*seq, 1));
        }
        self.next_seq = stream.last_seq + 1;
        self.advance_floor();
        None
    }

    /// What JetStream's consumer info says: messages matching the filter never delivered,
    /// and deliveries not yet acknowledged.
    fn lag(&self, stream: &StreamState) -> ConsumerLag {
        let pending = stream
            .msgs
            .range(self.next_seq..)
            .filter(|(seq, stored)| {
                !self.acked.contains(seq) && subject_matches(&self.filter, &stored.subject)
            })
            .count() as u64;
        ConsumerLag {
            pending,
            ack_pending: self.pending.len() as u64,
        }
    }

    fn earliest_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|(at, _)| *at).min()
    }
}

#[derive(Debug)]
struct MemoryAcker {
    inner: Arc<Inner>,
    stream: String,
    durable: String,
    seq: u64,
}

impl MemoryAcker {
    fn with_consumer<T>(&self, f: impl FnOnce(&mut ConsumerState) -> Result<T>) -> Result<T> {
        let mut state = self.inner.lock();
        let consumer = state
            .streams
            .get_mut(&self.stream)
            .and_then(|s| s.consumers.get_mut(&self.durable))
            .ok_or(BusError::Closed)?;
        let out = f(consumer);
        drop(state);
        self.inner.changed.notify_waiters();
        out
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<()> {
        self.with_consumer(|c| c.settle(self.seq))
    }

    async fn nak(&self, delay: Option<Duration>) -> Result<()> {
        let at = Instant::now() + delay.unwrap_or_default();
        self.with_consumer(|c| {
            if let Some(entry) = c.pending.get_mut(&self.seq) {
                entry.0 = at;
            }
            Ok(())
        })
    }

    async fn in_progress(&self) -> Result<()> {
        self.with_consumer(|c| {
            let wait = c.ack_wait;
            if let Some(entry) = c.pending.get_mut(&self.seq) {
                entry.0 = Instant::now() + wait;
            }
            Ok(())
        })
    }
}

pub(super) fn ensure(bus: &MemoryBus, spec: &StreamSpec) -> Result<()> {
    let mut state = bus.inner.lock();
    if let Some(existing) = state.streams.get_mut(&spec.name) {
        existing.spec = spec.clone();
        existing.max_bytes = spec.max_bytes.resolve(Some(existing.max_bytes));
        return Ok(());
    }
    let mut stream = StreamState {
        spec: spec.clone(),
        msgs: BTreeMap::new(),
        by_subject: HashMap::new(),
        last_seq: 0,
        dedup: HashMap::new(),
        dedup_order: VecDeque::new(),
        consumers: HashMap::new(),
        log: None,
        bytes: 0,
        max_bytes: spec.max_bytes.resolve(None),
    };
    if let Some(path) = bus.inner.path(&["streams", &format!("{}.log", spec.name)]) {
        let (writer, len) = read_log(&path, |h, payload, offset| {
            if h.op == PURGE_OP {
                stream.purge_below(&h.subject, h.seq);
                return;
            }
            if let Some(id) = h.msg_id {
                stream.remember_id(id, h.seq, h.at_ms);
            }
            stream.store(
                h.seq,
                Stored {
                    subject: h.subject,
                    headers: h.headers,
                    body: Body::logged(payload, offset),
                },
            );
        })?;
        let reader = File::open(&path)?;
        stream.log = Some(StreamLog {
            writer,
            reader,
            len,
        });
        stream.forget_ids(now_ms());
    }
    state.streams.insert(spec.name.clone(), stream);
    Ok(())
}

pub(super) fn publish_all(bus: &MemoryBus, msgs: Vec<Outgoing>) -> Result<Vec<PubAck>> {
    let mut acks = Vec::with_capacity(msgs.len());
    {
        let mut state = bus.inner.lock();
        let mut touched = BTreeSet::new();
        let result = (|| -> Result<()> {
            for msg in msgs {
                let (name, stream) = state
                    .streams
                    .iter_mut()
                    .find(|(_, s)| {
                        s.spec
                            .subjects
                            .iter()
                            .any(|f| subject_matches(f, &msg.subject))
                    })
                    .ok_or_else(|| BusError::NoStream(msg.subject.clone()))?;
                touched.insert(name.clone());
                acks.push(stream.append(msg)?);
            }
            Ok(())
        })();
        for name in touched {
            if let Some(s) = state.streams.get_mut(&name) {
                s.flush()?;
            }
        }
        result?;
    }
    bus.inner.changed.notify_waiters();
    Ok(acks)
}

pub(super) fn last_seq(bus: &MemoryBus, stream: &str) -> Result<u64> {
    let state = bus.inner.lock();
    let s = state
        .streams
        .get(stream)
        .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
    Ok(s.last_seq)
}

pub(super) fn purge_subject_below(
    bus: &MemoryBus,
    stream: &str,
    subject: &str,
    seq: u64,
) -> Result<u64> {
    let mut state = bus.inner.lock();
    let s = state
        .streams
        .get_mut(stream)
        .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
    s.purge_logged(subject, seq)
}

pub(super) fn message_at(bus: &MemoryBus, stream: &str, seq: u64) -> Result<Option<Message>> {
    let state = bus.inner.lock();
    let s = state
        .streams
        .get(stream)
        .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
    s.message(seq).transpose()
}

/// [`crate::Transport::next_on_subject`]: the subject's stored sequences are in order in
/// the per-subject index.
pub(super) fn next_on_subject(
    bus: &MemoryBus,
    stream: &str,
    subject: &str,
    from: u64,
) -> Result<Option<Message>> {
    let state = bus.inner.lock();
    let s = state
        .streams
        .get(stream)
        .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
    let Some(versions) = s.by_subject.get(subject) else {
        return Ok(None);
    };
    let first = versions.partition_point(|&seq| seq < from);
    versions
        .range(first..)
        .find_map(|&seq| s.message(seq))
        .transpose()
}

pub(super) fn last_per_subject(
    bus: &MemoryBus,
    stream: &str,
    filters: &[&str],
) -> Result<Vec<Message>> {
    let state = bus.inner.lock();
    let s = state
        .streams
        .get(stream)
        .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
    let mut seqs: Vec<u64> = s
        .by_subject
        .iter()
        .filter(|(subject, _)| filters.iter().any(|f| subject_matches(f, subject)))
        .filter_map(|(_, versions)| versions.back().copied())
        .collect();
    seqs.sort_unstable();
    seqs.into_iter().filter_map(|seq| s.message(seq)).collect()
}

/// [`crate::Transport::read_subjects`]: the sequences of the subjects named come from the
/// per-subject index (no scan of other subjects' messages); each message is read when the
/// stream gets to it, so a read of many series holds one payload at a time. Like a NATS
/// consumer, it reads on to the last message stored when it gets there: once the sequences
/// taken are read, it takes those stored since (up to `to_seq`), until none are left.
pub(super) fn read_subjects(
    bus: &MemoryBus,
    stream: &str,
    subjects: &[&str],
    to_seq: u64,
) -> Result<BoxStream<'static, Result<Message>>> {
    let first = matching_seqs(bus, stream, subjects, 0, to_seq)?;
    let bus = bus.clone();
    let stream = stream.to_string();
    let subjects: Vec<String> = subjects.iter().map(|s| s.to_string()).collect();
    Ok(stream::unfold(
        (VecDeque::from(first), 0u64),
        move |(mut todo, mut last)| {
            let (bus, stream, subjects) = (bus.clone(), stream.clone(), subjects.clone());
            async move {
                loop {
                    if todo.is_empty() {
                        todo.extend(matching_seqs(&bus, &stream, &subjects, last, to_seq).ok()?);
                    }
                    let seq = todo.pop_front()?;
                    last = seq;
                    // A message removed since (a purge, a limit) is skipped; the stream
                    // itself cannot go.
                    let msg = bus
                        .inner
                        .lock()
                        .streams
                        .get(&stream)
                        .and_then(|s| s.message(seq));
                    if let Some(msg) = msg {
                        return Some((msg, (todo, last)));
                    }
                }
            }
        },
    )
    .boxed())
}

/// The stored sequences of the subjects named (filters allowed) above `after` and at most
/// `to_seq`, in order.
fn matching_seqs(
    bus: &MemoryBus,
    stream: &str,
    subjects: &[impl AsRef<str>],
    after: u64,
    to_seq: u64,
) -> Result<Vec<u64>> {
    let state = bus.inner.lock();
    let s = state
        .streams
        .get(stream)
        .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
    let mut seqs: Vec<u64> = subjects
        .iter()
        .flat_map(|subject| s.matching(subject.as_ref()))
        .flat_map(|(_, versions)| versions.iter().copied())
        .filter(|&seq| seq > after && seq <= to_seq)
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    Ok(seqs)
}

pub(super) fn replay(
    bus: &MemoryBus,
    stream: &str,
    filter: &str,
    from_seq: u64,
) -> Result<BoxStream<'static, Result<Message>>> {
    if !bus.inner.lock().streams.contains_key(stream) {
        return Err(BusError::NoStream(stream.to_string()));
    }
    let inner = bus.inner.clone();
    let stream = stream.to_string();
    let filter = filter.to_string();
    let cursor = from_seq.max(1);
    Ok(stream::unfold(cursor, move |mut cursor| {
        let inner = inner.clone();
        let stream = stream.clone();
        let filter = filter.clone();
        async move {
            loop {
                let notified = inner.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let state = inner.lock();
                    let Some(s) = state.streams.get(&stream) else {
                        return Some((Err(BusError::NoStream(stream.clone())), cursor));
                    };
                    for (seq, stored) in s.msgs.range(cursor..) {
                        cursor = seq + 1;
                        if subject_matches(&filter, &stored.subject) {
                            let msg = s.message(*seq)?;
                            return Some((msg, cursor));
                        }
                    }
                    cursor = cursor.max(s.last_seq + 1);
                }
                notified.await;
            }
        }
    })
    .boxed())
}

pub(super) fn consumer_lag(
    bus: &MemoryBus,
    stream: &str,
    durable: &str,
) -> Result<Option<ConsumerLag>> {
    let state = bus.inner.lock();
    let s = state
        .streams
        .get(stream)
        .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
    Ok(s.consumers.get(durable).map(|c| c.lag(s)))
}

pub(super) fn consume(
    bus: &MemoryBus,
    stream: &str,
    durable: &str,
    filter: &str,
    ack_wait: Duration,
) -> Result<BoxStream<'static, Result<Delivery>>> {
    {
        let mut state = bus.inner.lock();
        let consumer_path = bus
            .inner
            .path(&["consumers", &format!("{stream}.{durable}.acks")]);
        let s = state
            .streams
            .get_mut(stream)
            .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
        match s.consumers.get_mut(durable) {
            Some(c) => {
                c.filter = filter.to_string();
                c.ack_wait = ack_wait;
            }
            None => {
                let mut c = ConsumerState {
                    filter: filter.to_string(),
                    ack_wait,
                    next_seq: 1,
                    pending: BTreeMap::new(),
                    ack_floor: 0,
                    acked: BTreeSet::new(),
                    log: None,
                };
                if let Some(path) = consumer_path {
                    files::private_dir(path.parent().unwrap_or(Path::new(".")))?;
                    let mut lines = 0;
                    if path.exists() {
                        let text = fs::read_to_string(&path)?;
                        lines = text.lines().count();
                        (c.ack_floor, c.acked) = ConsumerState::read_acks(&text);
                        c.next_seq = c.ack_floor + 1;
                    }
                    let writer = BufWriter::new(files::open_append(&path)?);
                    c.log = Some(AcksLog {
                        path,
                        writer,
                        lines,
                    });
                }
                s.consumers.insert(durable.to_string(), c);
            }
        }
    }
    let inner = bus.inner.clone();
    let stream = stream.to_string();
    let durable = durable.to_string();
    Ok(stream::unfold((), move |()| {
        let inner = inner.clone();
        let stream = stream.clone();
        let durable = durable.clone();
        async move {
            loop {
                let notified = inner.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let wake_at = {
                    let mut state = inner.lock();
                    let Some(s) = state.streams.get_mut(&stream) else {
                        return Some((Err(BusError::NoStream(stream.clone())), ()));
                    };
                    let mut consumers = std::mem::take(&mut s.consumers);
                    let found = consumers.get_mut(&durable).map(|c| {
                        let next = c.next(s, Instant::now());
                        (next, c.earliest_deadline())
                    });
                    s.consumers = consumers;
                    match found {
                        None => return Some((Err(BusError::Closed), ())),
                        Some((Some((seq, delivered)), _)) => {
                            let message = match s.message(seq)? {
                                Ok(m) => m,
                                Err(e) => return Some((Err(e), ())),
                            };
                            let acker = MemoryAcker {
                                inner: inner.clone(),
                                stream: stream.clone(),
                                durable: durable.clone(),
                                seq,
                            };
                            let delivery = Delivery {
                                message,
                                delivered,
                                acker: Box::new(acker),
                            };
                            return Some((Ok(delivery), ()));
                        }
                        Some((None, deadline)) => deadline,
                    }
                };
                match wake_at {
                    Some(at) => {
                        tokio::select! {
                            _ = notified => {}
                            _ = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => notified.await,
                }
            }
        }
    })
    .boxed())
}
