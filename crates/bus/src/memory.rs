//! The in-process transport of `borderwatch up`: streams, durable consumers, key-value
//! buckets and request/reply with the semantics of NATS JetStream, kept in one process.
//!
//! With a data directory every stream, bucket and consumer position is an append-only log
//! (`streams/`, `kv/`, `consumers/`), and every object a file (`objects/<bucket>/<name>`,
//! written to a temporary file and renamed into place), written before a publish or ack returns, so a
//! restarted process resumes where the last one stopped. A torn last record (the process
//! died mid-write) is cut off when the log is opened.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use crate::{
    Acker, BusError, Delivery, Headers, Message, ObjectInfo, Outgoing, PubAck, Replier, Request,
    Result, StreamSpec, Transport, subject_matches, valid_key, valid_object_name,
};

/// The in-process bus. Cloning shares it.
#[derive(Debug, Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: Option<PathBuf>,
    state: Mutex<State>,
    /// Woken on every change a waiting reader or consumer may care about.
    changed: Notify,
    services: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Request>>>>,
    round_robin: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    streams: HashMap<String, StreamState>,
    buckets: HashMap<String, BucketState>,
    /// Object stores: without a data directory the objects themselves; with one, an empty
    /// map per store (the files are the objects).
    object_stores: HashMap<String, BTreeMap<String, Bytes>>,
}

#[derive(Debug)]
struct StreamState {
    spec: StreamSpec,
    msgs: BTreeMap<u64, Stored>,
    by_subject: HashMap<String, VecDeque<u64>>,
    last_seq: u64,
    /// Message id → (sequence, unix ms when stored).
    dedup: HashMap<String, (u64, u64)>,
    consumers: HashMap<String, ConsumerState>,
    log: Option<BufWriter<File>>,
}

#[derive(Debug, Clone)]
struct Stored {
    subject: String,
    headers: Headers,
    payload: Bytes,
}

#[derive(Debug)]
struct ConsumerState {
    filter: String,
    ack_wait: Duration,
    /// The next stream sequence never delivered yet.
    next_seq: u64,
    /// Delivered, not yet acknowledged: sequence → (redeliver at, deliveries so far).
    pending: BTreeMap<u64, (Instant, u64)>,
    acked: BTreeSet<u64>,
    log: Option<BufWriter<File>>,
}

#[derive(Debug, Default)]
struct BucketState {
    values: BTreeMap<String, Bytes>,
    log: Option<BufWriter<File>>,
}

/// The header of one log record; `len` payload bytes and a newline follow it.
#[derive(Debug, Serialize, Deserialize)]
struct RecordHeader {
    #[serde(default)]
    seq: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    subject: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Headers,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    msg_id: Option<String>,
    #[serde(default)]
    at_ms: u64,
    /// Key-value records: `put` or `del`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    op: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    key: String,
    len: usize,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn write_record(w: &mut BufWriter<File>, header: &RecordHeader, payload: &[u8]) -> Result<()> {
    serde_json::to_writer(&mut *w, header).map_err(std::io::Error::other)?;
    w.write_all(b"\n")?;
    w.write_all(payload)?;
    w.write_all(b"\n")?;
    Ok(())
}

/// The whole records of a log, and the log opened for appending.
type OpenedLog = (Vec<(RecordHeader, Bytes)>, BufWriter<File>);

/// Reads every whole record of a log, truncating a torn tail, and opens it for appending.
fn open_log(path: &Path) -> Result<OpenedLog> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut records = Vec::new();
    let mut good_len = 0u64;
    if path.exists() {
        let mut reader = BufReader::new(File::open(path)?);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            let Ok(header) = serde_json::from_str::<RecordHeader>(line.trim_end()) else {
                break;
            };
            let mut payload = vec![0u8; header.len + 1];
            if reader.read_exact(&mut payload).is_err() || payload[header.len] != b'\n' {
                break;
            }
            payload.truncate(header.len);
            good_len += (line.len() + header.len + 1) as u64;
            records.push((header, Bytes::from(payload)));
        }
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    if file.metadata()?.len() != good_len {
        tracing::warn!(path = %path.display(), kept = good_len, "cut a torn record off a log");
        file.set_len(good_len)?;
    }
    Ok((records, BufWriter::new(file)))
}

impl MemoryBus {
    /// A bus that keeps nothing on disk (tests, `analyze`).
    pub fn ephemeral() -> MemoryBus {
        MemoryBus::with_dir(None)
    }

    /// A bus whose state lives in `dir`, picking up what an earlier process left there.
    pub async fn open(dir: &Path) -> Result<MemoryBus> {
        fs::create_dir_all(dir)?;
        Ok(MemoryBus::with_dir(Some(dir.to_path_buf())))
    }

    fn with_dir(dir: Option<PathBuf>) -> MemoryBus {
        MemoryBus {
            inner: Arc::new(Inner {
                dir,
                state: Mutex::new(State::default()),
                changed: Notify::new(),
                services: Mutex::new(HashMap::new()),
                round_robin: AtomicUsize::new(0),
            }),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, parts: &[&str]) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| {
            let mut p = d.clone();
            for part in parts {
                p.push(part);
            }
            p
        })
    }
}

impl StreamState {
    fn store(&mut self, seq: u64, stored: Stored) {
        let versions = self.by_subject.entry(stored.subject.clone()).or_default();
        versions.push_back(seq);
        if self.spec.max_msgs_per_subject > 0 {
            while versions.len() > self.spec.max_msgs_per_subject as usize {
                if let Some(old) = versions.pop_front() {
                    self.msgs.remove(&old);
                }
            }
        }
        self.msgs.insert(seq, stored);
        self.last_seq = self.last_seq.max(seq);
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
        let seq = self.last_seq + 1;
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
            write_record(log, &header, &msg.payload)?;
        }
        if let Some(id) = msg.msg_id {
            self.dedup.insert(id, (seq, now));
        }
        self.store(
            seq,
            Stored {
                subject: msg.subject,
                headers: msg.headers,
                payload: msg.payload,
            },
        );
        Ok(PubAck {
            seq,
            duplicate: false,
        })
    }

    fn message(&self, seq: u64) -> Option<Message> {
        self.msgs.get(&seq).map(|s| Message {
            subject: s.subject.clone(),
            headers: s.headers.clone(),
            payload: s.payload.clone(),
            seq,
        })
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(log) = self.log.as_mut() {
            log.flush()?;
        }
        Ok(())
    }
}

impl ConsumerState {
    fn settle(&mut self, seq: u64) -> Result<()> {
        if self.pending.remove(&seq).is_some()
            && self.acked.insert(seq)
            && let Some(log) = self.log.as_mut()
        {
            writeln!(log, "{seq}")?;
            log.flush()?;
        }
        Ok(())
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
        None
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

#[derive(Debug)]
struct MemoryReplier(Mutex<Option<oneshot::Sender<Message>>>);

#[async_trait]
impl Replier for MemoryReplier {
    async fn respond(&self, headers: Headers, payload: Bytes) -> Result<()> {
        let sender = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tx) = sender {
            // The requester may have given up; that is not the responder's error.
            let _ = tx.send(Message {
                subject: String::new(),
                headers,
                payload,
                seq: 0,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Transport for MemoryBus {
    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<()> {
        let mut state = self.inner.lock();
        if let Some(existing) = state.streams.get_mut(&spec.name) {
            existing.spec = spec.clone();
            return Ok(());
        }
        let mut stream = StreamState {
            spec: spec.clone(),
            msgs: BTreeMap::new(),
            by_subject: HashMap::new(),
            last_seq: 0,
            dedup: HashMap::new(),
            consumers: HashMap::new(),
            log: None,
        };
        if let Some(path) = self.inner.path(&["streams", &format!("{}.log", spec.name)]) {
            let (records, log) = open_log(&path)?;
            for (h, payload) in records {
                if let Some(id) = h.msg_id {
                    stream.dedup.insert(id, (h.seq, h.at_ms));
                }
                stream.store(
                    h.seq,
                    Stored {
                        subject: h.subject,
                        headers: h.headers,
                        payload,
                    },
                );
            }
            stream.log = Some(log);
        }
        state.streams.insert(spec.name.clone(), stream);
        Ok(())
    }

    async fn ensure_bucket(&self, bucket: &str, _replicas: usize) -> Result<()> {
        let mut state = self.inner.lock();
        if state.buckets.contains_key(bucket) {
            return Ok(());
        }
        let mut b = BucketState::default();
        if let Some(path) = self.inner.path(&["kv", &format!("{bucket}.log")]) {
            let (records, log) = open_log(&path)?;
            for (h, value) in records {
                if h.op == "del" {
                    b.values.remove(&h.key);
                } else {
                    b.values.insert(h.key, value);
                }
            }
            b.log = Some(log);
        }
        state.buckets.insert(bucket.to_string(), b);
        Ok(())
    }

    async fn publish(&self, msg: Outgoing) -> Result<PubAck> {
        let mut acks = self.publish_all(vec![msg]).await?;
        acks.pop().ok_or(BusError::Closed)
    }

    async fn publish_all(&self, msgs: Vec<Outgoing>) -> Result<Vec<PubAck>> {
        let mut acks = Vec::with_capacity(msgs.len());
        {
            let mut state = self.inner.lock();
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
        self.inner.changed.notify_waiters();
        Ok(acks)
    }

    async fn last_seq(&self, stream: &str) -> Result<u64> {
        let state = self.inner.lock();
        let s = state
            .streams
            .get(stream)
            .ok_or_else(|| BusError::NoStream(stream.to_string()))?;
        Ok(s.last_seq)
    }

    async fn last_per_subject(&self, stream: &str, filters: &[&str]) -> Result<Vec<Message>> {
        let state = self.inner.lock();
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
        Ok(seqs.into_iter().filter_map(|seq| s.message(seq)).collect())
    }

    async fn replay(
        &self,
        stream: &str,
        filter: &str,
        from_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>> {
        if !self.inner.lock().streams.contains_key(stream) {
            return Err(BusError::NoStream(stream.to_string()));
        }
        let inner = self.inner.clone();
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
                                return Some((Ok(msg), cursor));
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

    async fn consume(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        ack_wait: Duration,
    ) -> Result<BoxStream<'static, Result<Delivery>>> {
        {
            let mut state = self.inner.lock();
            let consumer_path = self
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
                        acked: BTreeSet::new(),
                        log: None,
                    };
                    if let Some(path) = consumer_path {
                        fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
                        if path.exists() {
                            let text = fs::read_to_string(&path)?;
                            c.acked = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
                        }
                        let file = OpenOptions::new().create(true).append(true).open(&path)?;
                        c.log = Some(BufWriter::new(file));
                    }
                    s.consumers.insert(durable.to_string(), c);
                }
            }
        }
        let inner = self.inner.clone();
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
                                let message = s.message(seq)?;
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

    async fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>> {
        if !valid_key(key) {
            return Err(BusError::BadKey(key.to_string()));
        }
        let state = self.inner.lock();
        let b = state
            .buckets
            .get(bucket)
            .ok_or_else(|| BusError::NoBucket(bucket.to_string()))?;
        Ok(b.values.get(key).cloned())
    }

    async fn kv_put(&self, bucket: &str, key: &str, value: Bytes) -> Result<()> {
        self.kv_write(bucket, key, Some(value), false).map(|_| ())
    }

    async fn kv_create(&self, bucket: &str, key: &str, value: Bytes) -> Result<bool> {
        self.kv_write(bucket, key, Some(value), true)
    }

    async fn kv_delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.kv_write(bucket, key, None, false).map(|_| ())
    }

    async fn kv_keys(&self, bucket: &str) -> Result<Vec<String>> {
        let state = self.inner.lock();
        let b = state
            .buckets
            .get(bucket)
            .ok_or_else(|| BusError::NoBucket(bucket.to_string()))?;
        Ok(b.values.keys().cloned().collect())
    }

    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message> {
        let no_responder = || BusError::NoResponder {
            subject: subject.to_string(),
            reason: "no service is serving it in this process".into(),
        };
        let (tx, rx) = oneshot::channel();
        let mut request = Request {
            message: Message {
                subject: subject.to_string(),
                headers,
                payload,
                seq: 0,
            },
            replier: Box::new(MemoryReplier(Mutex::new(Some(tx)))),
        };
        {
            let mut services = self
                .inner
                .services
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let members = services.get_mut(subject).ok_or_else(no_responder)?;
            members.retain(|m| !m.is_closed());
            loop {
                if members.is_empty() {
                    return Err(no_responder());
                }
                let i = self.inner.round_robin.fetch_add(1, Ordering::Relaxed) % members.len();
                match members[i].send(request) {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(back)) => {
                        request = back;
                        members.remove(i);
                    }
                }
            }
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(BusError::NoResponder {
                subject: subject.to_string(),
                reason: "the service dropped the request without answering".into(),
            }),
            Err(_) => Err(BusError::Timeout {
                subject: subject.to_string(),
                timeout,
            }),
        }
    }

    async fn serve(&self, subject: &str, _queue: &str) -> Result<BoxStream<'static, Request>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(subject.to_string())
            .or_default()
            .push(tx);
        Ok(tokio_stream_from(rx))
    }

    fn is_connected(&self) -> bool {
        true
    }

    async fn ensure_object_store(&self, bucket: &str, _replicas: usize) -> Result<()> {
        if let Some(dir) = self.inner.path(&["objects", bucket]) {
            fs::create_dir_all(dir)?;
        }
        self.inner
            .lock()
            .object_stores
            .entry(bucket.to_string())
            .or_default();
        Ok(())
    }

    async fn object_put(&self, bucket: &str, name: &str, data: Bytes) -> Result<ObjectInfo> {
        let info = ObjectInfo {
            name: name.to_string(),
            size: data.len() as u64,
        };
        match self.object_path(bucket, name)? {
            Some(path) => {
                let tmp = path.with_file_name(format!(
                    ".tmp-{name}-{}-{}",
                    std::process::id(),
                    TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
                ));
                tokio::task::spawn_blocking(move || write_atomically(&tmp, &path, &data))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))??;
            }
            None => {
                let mut state = self.inner.lock();
                let store = state
                    .object_stores
                    .get_mut(bucket)
                    .ok_or_else(|| BusError::NoObjectStore(bucket.to_string()))?;
                store.insert(name.to_string(), data);
            }
        }
        Ok(info)
    }

    async fn object_get(&self, bucket: &str, name: &str) -> Result<Option<Bytes>> {
        match self.object_path(bucket, name)? {
            Some(path) => {
                let read = tokio::task::spawn_blocking(move || fs::read(path))
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                match read {
                    Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            None => Ok(self
                .inner
                .lock()
                .object_stores
                .get(bucket)
                .and_then(|store| store.get(name).cloned())),
        }
    }

    async fn object_put_reader(
        &self,
        bucket: &str,
        name: &str,
        mut data: crate::ObjectReader,
    ) -> Result<ObjectInfo> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let source_failed = |e: std::io::Error| BusError::ObjectSource {
            name: name.to_string(),
            reason: e.to_string(),
        };
        let Some(path) = self.object_path(bucket, name)? else {
            // No data directory: the objects live in memory anyway.
            let mut whole = Vec::new();
            data.read_to_end(&mut whole).await.map_err(source_failed)?;
            return self.object_put(bucket, name, whole.into()).await;
        };
        let tmp = path.with_file_name(format!(
            ".tmp-{name}-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut chunk = vec![0u8; 256 * 1024];
            let mut size = 0u64;
            loop {
                let n = data.read(&mut chunk).await.map_err(source_failed)?;
                if n == 0 {
                    break;
                }
                file.write_all(&chunk[..n]).await?;
                size += n as u64;
            }
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await?;
            Ok::<u64, BusError>(size)
        }
        .await;
        let size = match written {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        if let Some(dir) = path.parent()
            && let Ok(dir) = tokio::fs::File::open(dir).await
        {
            // Makes the rename itself durable where the platform allows it.
            let _ = dir.sync_all().await;
        }
        Ok(ObjectInfo {
            name: name.to_string(),
            size,
        })
    }

    async fn object_reader(&self, bucket: &str, name: &str) -> Result<Option<crate::ObjectReader>> {
        match self.object_path(bucket, name)? {
            // An open file keeps its bytes even if the object is replaced or removed meanwhile.
            Some(path) => match tokio::fs::File::open(path).await {
                Ok(file) => Ok(Some(Box::new(file))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
            None => Ok(self
                .object_get(bucket, name)
                .await?
                .map(|b| Box::new(std::io::Cursor::new(b)) as crate::ObjectReader)),
        }
    }

    async fn object_sweep(
        &self,
        bucket: &str,
        stale_prefixes: &[&str],
        max_age: Duration,
    ) -> Result<crate::Swept> {
        if !self.inner.lock().object_stores.contains_key(bucket) {
            return Err(BusError::NoObjectStore(bucket.to_string()));
        }
        // Without a data directory nothing is written half-way, and objects keep no time.
        let Some(dir) = self.inner.path(&["objects", bucket]) else {
            return Ok(crate::Swept::default());
        };
        let mut swept = crate::Swept::default();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let partial = name.starts_with(".tmp-");
            let stale = stale_prefixes.iter().any(|p| name.starts_with(p));
            if !(partial || stale) {
                continue;
            }
            let old = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age > max_age);
            if !old {
                continue;
            }
            match fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            if partial {
                swept.partial += 1;
            } else {
                swept.objects.push(name);
            }
        }
        swept.objects.sort();
        Ok(swept)
    }

    async fn object_info(&self, bucket: &str, name: &str) -> Result<Option<ObjectInfo>> {
        let size = match self.object_path(bucket, name)? {
            Some(path) => match fs::metadata(path) {
                Ok(meta) => Some(meta.len()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e.into()),
            },
            None => self
                .inner
                .lock()
                .object_stores
                .get(bucket)
                .and_then(|store| store.get(name).map(|b| b.len() as u64)),
        };
        Ok(size.map(|size| ObjectInfo {
            name: name.to_string(),
            size,
        }))
    }

    async fn object_delete(&self, bucket: &str, name: &str) -> Result<()> {
        match self.object_path(bucket, name)? {
            Some(path) => match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            },
            None => {
                if let Some(store) = self.inner.lock().object_stores.get_mut(bucket) {
                    store.remove(name);
                }
                Ok(())
            }
        }
    }

    async fn object_list(&self, bucket: &str) -> Result<Vec<ObjectInfo>> {
        let known = self.inner.lock().object_stores.get(bucket).cloned();
        let Some(in_memory) = known else {
            return Err(BusError::NoObjectStore(bucket.to_string()));
        };
        let mut out: Vec<ObjectInfo> = match self.inner.path(&["objects", bucket]) {
            Some(dir) => {
                let mut out = Vec::new();
                for entry in fs::read_dir(dir)? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    // Temporary files of writes in progress (or of a crash) are not objects.
                    if valid_object_name(&name) && entry.file_type()?.is_file() {
                        out.push(ObjectInfo {
                            name,
                            size: entry.metadata()?.len(),
                        });
                    }
                }
                out
            }
            None => in_memory
                .iter()
                .map(|(name, data)| ObjectInfo {
                    name: name.clone(),
                    size: data.len() as u64,
                })
                .collect(),
        };
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn max_payload(&self) -> usize {
        usize::MAX
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// Distinguishes temporary files of concurrent writes of the same object.
static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Writes `data` to `tmp`, makes it durable, and renames it to `path`: a reader (or a
/// process started after a crash) sees the old file or the new one whole.
fn write_atomically(tmp: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    let written = (|| {
        let mut file = File::create(tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(tmp);
    }
    written?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        // Makes the rename itself durable where the platform allows it.
        let _ = dir.sync_all();
    }
    Ok(())
}

fn tokio_stream_from(rx: mpsc::UnboundedReceiver<Request>) -> BoxStream<'static, Request> {
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) }).boxed()
}

impl MemoryBus {
    /// The object's file (`None` without a data directory), after checking the name and
    /// that the store exists.
    fn object_path(&self, bucket: &str, name: &str) -> Result<Option<PathBuf>> {
        if !valid_object_name(name) {
            return Err(BusError::BadObjectName(name.to_string()));
        }
        if !self.inner.lock().object_stores.contains_key(bucket) {
            return Err(BusError::NoObjectStore(bucket.to_string()));
        }
        Ok(self.inner.path(&["objects", bucket, name]))
    }

    fn kv_write(
        &self,
        bucket: &str,
        key: &str,
        value: Option<Bytes>,
        only_new: bool,
    ) -> Result<bool> {
        if !valid_key(key) {
            return Err(BusError::BadKey(key.to_string()));
        }
        let mut state = self.inner.lock();
        let b = state
            .buckets
            .get_mut(bucket)
            .ok_or_else(|| BusError::NoBucket(bucket.to_string()))?;
        if only_new && b.values.contains_key(key) {
            return Ok(false);
        }
        if let Some(log) = b.log.as_mut() {
            let payload = value.as_deref().unwrap_or_default();
            let header = RecordHeader {
                seq: 0,
                subject: String::new(),
                headers: Vec::new(),
                msg_id: None,
                at_ms: now_ms(),
                op: if value.is_some() { "put" } else { "del" }.into(),
                key: key.to_string(),
                len: payload.len(),
            };
            write_record(log, &header, payload)?;
            log.flush()?;
        }
        match value {
            Some(v) => b.values.insert(key.to_string(), v),
            None => b.values.remove(key),
        };
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names;

    #[tokio::test]
    async fn state_survives_reopening_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = MemoryBus::open(dir.path()).await.unwrap();
            names::ensure_all(&bus, 1).await.unwrap();
            bus.publish(Outgoing::new("bw.surge.PRK.study", "a").with_id("x"))
                .await
                .unwrap();
            bus.kv_put(names::SERIES_BUCKET, "k", Bytes::from_static(b"v"))
                .await
                .unwrap();
        }
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let again = bus
            .publish(Outgoing::new("bw.surge.PRK.study", "a").with_id("x"))
            .await
            .unwrap();
        assert!(again.duplicate, "the dedup window survives a restart");
        assert_eq!(
            bus.kv_get(names::SERIES_BUCKET, "k")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"v"[..])
        );
    }

    #[tokio::test]
    async fn object_sweep_removes_old_temporary_files_of_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let objects = dir.path().join("objects").join(names::RAW_OBJECT_STORE);
        fs::write(objects.join(".tmp-upload-x-1-2"), b"half").unwrap();
        bus.object_put(
            names::RAW_OBJECT_STORE,
            "sha256-a",
            Bytes::from_static(b"a"),
        )
        .await
        .unwrap();
        let young = bus
            .object_sweep(
                names::RAW_OBJECT_STORE,
                &["upload-"],
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(young.partial, 0, "a write may still be in progress");
        tokio::time::sleep(Duration::from_millis(30)).await;
        let swept = bus
            .object_sweep(
                names::RAW_OBJECT_STORE,
                &["upload-"],
                Duration::from_millis(10),
            )
            .await
            .unwrap();
        assert_eq!(swept.partial, 1);
        assert!(!objects.join(".tmp-upload-x-1-2").exists());
        assert!(objects.join("sha256-a").exists());
    }

    #[tokio::test]
    async fn objects_survive_reopening_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let blob = Bytes::from(vec![7u8; 3 << 20]);
        {
            let bus = MemoryBus::open(dir.path()).await.unwrap();
            names::ensure_all(&bus, 1).await.unwrap();
            bus.object_put(names::RAW_OBJECT_STORE, "a", Bytes::from_static(b"old"))
                .await
                .unwrap();
            bus.object_put(names::RAW_OBJECT_STORE, "a", blob.clone())
                .await
                .unwrap();
        }
        let files: Vec<String> = fs::read_dir(dir.path().join("objects").join("bw_raw"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            files,
            vec!["a".to_string()],
            "only the object, no temp file"
        );
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let got = bus
            .object_get(names::RAW_OBJECT_STORE, "a")
            .await
            .unwrap()
            .expect("kept across a restart");
        assert_eq!(got, blob);
    }

    #[tokio::test]
    async fn a_torn_log_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = MemoryBus::open(dir.path()).await.unwrap();
            names::ensure_all(&bus, 1).await.unwrap();
            bus.publish(Outgoing::new("bw.surge.PRK.study", "first"))
                .await
                .unwrap();
        }
        let log = dir.path().join("streams").join("BW_SURGES.log");
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"{\"seq\":2,\"subject\":\"bw.surge.PRK.study\",\"len\":50}\npartial")
            .unwrap();
        drop(f);
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let ack = bus
            .publish(Outgoing::new("bw.surge.PRK.study", "second"))
            .await
            .unwrap();
        assert_eq!(ack.seq, 2);
        let all = bus
            .last_per_subject(names::SURGE_STREAM, &["bw.surge.>"])
            .await
            .unwrap();
        assert_eq!(all[0].payload, Bytes::from_static(b"second"));
    }
}
