//! The in-process transport of `borderwatch up`: streams, durable consumers, key-value
//! buckets and request/reply with the semantics of NATS JetStream, kept in one process.
//!
//! With a data directory every stream, bucket and consumer position is an append-only log
//! (`streams/`, `kv/`, `consumers/`), and every object a file (`objects/<bucket>/<name>`,
//! written to a temporary file and renamed into place), written before a publish or ack returns, so a
//! restarted process resumes where the last one stopped. A torn last record (the process
//! died mid-write) is cut off when the log is opened. Stream payloads are not kept in memory
//! but read back from their log when a message is delivered or replayed.
//!
//! One room per concern: `log.rs` (the record format of those append-only logs), `stream.rs`
//! (streams and durable consumers), `kv.rs` (key-value buckets) and `objects.rs` (the object
//! store). This module holds the shared state, request/reply, and the one [`Transport`] impl
//! that hands each call to its room.

mod files;
mod kv;
mod log;
mod objects;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self as futures_stream, BoxStream, StreamExt};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::{
    BusError, ConsumerLag, Delivery, Headers, Message, ObjectInfo, Outgoing, PubAck, Replier,
    Request, Result, StreamSpec, Transport,
};
use kv::BucketState;
use stream::StreamState;

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

impl MemoryBus {
    /// A bus that keeps nothing on disk (tests, `analyze`).
    pub fn ephemeral() -> MemoryBus {
        MemoryBus::with_dir(None)
    }

    /// A bus whose state lives in `dir`, picking up what an earlier process left there.
    /// Everything under `dir` is made owner-only (files 0600, directories 0700): the logs
    /// hold subscription secrets, the object store every uploaded file.
    pub async fn open(dir: &Path) -> Result<MemoryBus> {
        files::private_dir(dir)?;
        files::tighten(dir)?;
        Ok(MemoryBus::with_dir(Some(dir.to_path_buf())))
    }

    /// What the bus holds in memory now, summed over its streams: for tests and the memory
    /// bench (`BENCHMARKS.md`).
    pub fn footprint(&self) -> Footprint {
        let state = self.inner.lock();
        let mut f = Footprint::default();
        for stream in state.streams.values() {
            stream.footprint(&mut f);
        }
        f
    }

    /// Compacts every open key-value log now (one record per live key), so deleted and
    /// overwritten values leave the disk. It also happens on its own (see `kv.rs`); this is
    /// for shutdown and tests.
    pub fn compact(&self) -> Result<()> {
        let mut state = self.inner.lock();
        for bucket in state.buckets.values_mut() {
            bucket.compact()?;
        }
        Ok(())
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

/// Counts of what [`MemoryBus`] keeps in memory (see [`MemoryBus::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Stream messages held.
    pub messages: usize,
    /// Their payload bytes held in memory (without a data directory).
    pub payload_bytes: usize,
    /// Their payload bytes left in the stream logs, read back when a message is.
    pub payload_bytes_on_disk: usize,
    /// Message ids remembered for deduplication.
    pub remembered_ids: usize,
    /// Acknowledged sequences consumers keep above their ack floors.
    pub acks_above_floor: usize,
    /// Deliveries awaiting an ack.
    pub pending: usize,
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
        stream::ensure(self, spec)
    }

    async fn ensure_bucket(&self, bucket: &str, _replicas: usize) -> Result<()> {
        kv::ensure(self, bucket)
    }

    async fn publish(&self, msg: Outgoing) -> Result<PubAck> {
        let mut acks = self.publish_all(vec![msg]).await?;
        acks.pop().ok_or(BusError::Closed)
    }

    async fn publish_all(&self, msgs: Vec<Outgoing>) -> Result<Vec<PubAck>> {
        stream::publish_all(self, msgs)
    }

    async fn last_seq(&self, stream: &str) -> Result<u64> {
        stream::last_seq(self, stream)
    }

    async fn last_per_subject(&self, stream: &str, filters: &[&str]) -> Result<Vec<Message>> {
        stream::last_per_subject(self, stream, filters)
    }

    async fn message_at(&self, stream: &str, seq: u64) -> Result<Option<Message>> {
        stream::message_at(self, stream, seq)
    }

    async fn next_on_subject(
        &self,
        stream: &str,
        subject: &str,
        from: u64,
    ) -> Result<Option<Message>> {
        stream::next_on_subject(self, stream, subject, from)
    }

    async fn read_subjects(
        &self,
        stream: &str,
        subjects: &[&str],
        to_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>> {
        stream::read_subjects(self, stream, subjects, to_seq)
    }

    async fn purge_subject_below(&self, stream: &str, subject: &str, seq: u64) -> Result<u64> {
        let purged = stream::purge_subject_below(self, stream, subject, seq)?;
        self.inner.changed.notify_waiters();
        Ok(purged)
    }

    async fn replay(
        &self,
        stream: &str,
        filter: &str,
        from_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>> {
        stream::replay(self, stream, filter, from_seq)
    }

    async fn consume(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        ack_wait: Duration,
    ) -> Result<BoxStream<'static, Result<Delivery>>> {
        stream::consume(self, stream, durable, filter, ack_wait)
    }

    async fn consumer_lag(&self, stream: &str, durable: &str) -> Result<Option<ConsumerLag>> {
        stream::consumer_lag(self, stream, durable)
    }

    async fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>> {
        kv::get(self, bucket, key)
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
        kv::keys(self, bucket)
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
        objects::ensure(self, bucket)
    }

    async fn object_put(&self, bucket: &str, name: &str, data: Bytes) -> Result<ObjectInfo> {
        objects::put(self, bucket, name, data).await
    }

    async fn object_get(&self, bucket: &str, name: &str) -> Result<Option<Bytes>> {
        objects::get(self, bucket, name).await
    }

    async fn object_put_reader(
        &self,
        bucket: &str,
        name: &str,
        data: crate::ObjectReader,
    ) -> Result<ObjectInfo> {
        objects::put_reader(self, bucket, name, data).await
    }

    async fn object_reader(&self, bucket: &str, name: &str) -> Result<Option<crate::ObjectReader>> {
        objects::reader(self, bucket, name).await
    }

    async fn object_sweep(
        &self,
        bucket: &str,
        stale_prefixes: &[&str],
        max_age: Duration,
    ) -> Result<crate::Swept> {
        objects::sweep(self, bucket, stale_prefixes, max_age)
    }

    async fn object_info(&self, bucket: &str, name: &str) -> Result<Option<ObjectInfo>> {
        objects::info(self, bucket, name)
    }

    async fn object_delete(&self, bucket: &str, name: &str) -> Result<()> {
        objects::delete(self, bucket, name)
    }

    async fn object_list(&self, bucket: &str) -> Result<Vec<ObjectInfo>> {
        objects::list(self, bucket)
    }

    fn max_payload(&self) -> usize {
        usize::MAX
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

fn tokio_stream_from(rx: mpsc::UnboundedReceiver<Request>) -> BoxStream<'static, Request> {
    futures_stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) }).boxed()
}
