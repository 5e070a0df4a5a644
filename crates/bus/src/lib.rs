//! The bus: every subject, stream and bucket name of borderwatch, and the transport that
//! carries them.
//!
//! Services talk only through [`Transport`]. Two implementations serve it with the same
//! semantics, checked by one contract test suite (`tests/contract.rs`):
//! [`nats::NatsBus`] over a real nats-server with JetStream, and [`memory::MemoryBus`], the
//! in-process transport of `borderwatch up`, which keeps its streams and buckets in a data
//! directory so that a restart loses nothing.

pub mod memory;
pub mod names;
pub mod nats;
pub mod obs;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use memory::MemoryBus;
pub use nats::NatsBus;

/// A shared handle to whichever transport this process runs on.
pub type Bus = Arc<dyn Transport>;

/// Errors of the bus, named for what a caller can do about them.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("no stream `{0}`: it must be created with ensure_stream first")]
    NoStream(String),
    #[error("no bucket `{0}`: it must be created with ensure_bucket first")]
    NoBucket(String),
    #[error("`{0}` is not a valid key: use letters, digits, `-`, `_`, `=`, `.` and `/`")]
    BadKey(String),
    #[error("no object store `{0}`: it must be created with ensure_object_store first")]
    NoObjectStore(String),
    #[error(
        "`{0}` is not a valid object name: use up to 255 letters, digits, `-`, `_`, `=` and `.`, not starting with `.`"
    )]
    BadObjectName(String),
    #[error("no service answered on `{subject}`: {reason}")]
    NoResponder { subject: String, reason: String },
    #[error("request on `{subject}` timed out after {timeout:?}")]
    Timeout { subject: String, timeout: Duration },
    #[error("the data directory failed: {0}")]
    Storage(#[from] std::io::Error),
    /// Reading the data handed to [`Transport::object_put_reader`] failed: nothing was stored.
    #[error("reading the data to store as `{name}` failed: {reason}")]
    ObjectSource { name: String, reason: String },
    /// The stream holds as many bytes as it may (its `max_bytes`, with discard-new): the
    /// message was refused, not stored, and nothing older was dropped to make room.
    #[error(
        "the {what} is full: stream `{stream}` holds its limit of {limit}; raise {setting} (or remove old data) and send it again"
    )]
    StreamFull {
        stream: String,
        /// What the stream is to a reader, e.g. "figure store".
        what: &'static str,
        /// The limit, as a reader wants it: `68719476736 bytes (64 GiB)`.
        limit: String,
        /// The setting that raises it, e.g. `--obs-max-bytes (BORDERWATCH_OBS_MAX_BYTES)`.
        setting: &'static str,
    },
    #[error("{op} failed: {reason}")]
    Nats { op: &'static str, reason: String },
    #[error("the bus is shut down")]
    Closed,
}

impl BusError {
    pub(crate) fn nats(op: &'static str, e: impl std::fmt::Display) -> BusError {
        BusError::Nats {
            op,
            reason: e.to_string(),
        }
    }
}

pub type Result<T, E = BusError> = std::result::Result<T, E>;

/// Message headers, in order.
pub type Headers = Vec<(String, String)>;

/// A stream to create (or check) before use.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub name: String,
    pub subjects: Vec<String>,
    /// Versions kept per subject (`-1`: unlimited).
    pub max_msgs_per_subject: i64,
    /// How long a `Nats-Msg-Id` is remembered for deduplication.
    pub duplicate_window: Duration,
    /// Replicas in a cluster (1 on a single node).
    pub replicas: usize,
    /// How many bytes the stream may hold; a publish beyond it is refused
    /// ([`BusError::StreamFull`]), never made room for by dropping old messages.
    pub max_bytes: MaxBytes,
}

/// A stream's byte limit, as [`StreamSpec::max_bytes`] asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxBytes {
    /// No limit.
    Unlimited,
    /// This limit, applied whether the stream exists or not (an operator set it).
    Set(u64),
    /// The limit the stream already has; this one for a stream created now. Every role
    /// ensures every stream at start, so a role that was not told a limit must not undo
    /// the one another role was told.
    Default(u64),
}

impl MaxBytes {
    /// The limit a stream gets, given the one it has now (`None`: it is new; `-1`:
    /// unlimited), as NATS writes it (`-1`: none).
    pub fn resolve(self, current: Option<i64>) -> i64 {
        match (self, current) {
            (MaxBytes::Unlimited, _) => -1,
            (MaxBytes::Set(n), _) => i64::try_from(n).unwrap_or(i64::MAX),
            (MaxBytes::Default(_), Some(current)) => current,
            (MaxBytes::Default(n), None) => i64::try_from(n).unwrap_or(i64::MAX),
        }
    }
}

/// `68719476736 bytes (64 GiB)`: a byte count as an error message gives it.
pub fn describe_bytes(n: i64) -> String {
    if n < 0 {
        return "no limit".into();
    }
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = "";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if unit.is_empty() {
        format!("{n} bytes")
    } else if value.fract() == 0.0 {
        format!("{n} bytes ({value} {unit})")
    } else {
        format!("{n} bytes ({value:.1} {unit})")
    }
}

/// A message stored in a stream (or received from a request).
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
    /// The stream sequence; 0 where the message was not stored.
    pub seq: u64,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A message to publish durably.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    /// Deduplication id (`Nats-Msg-Id`): a second message with the same id within the
    /// stream's window is dropped and acknowledged as a duplicate.
    pub msg_id: Option<String>,
    pub headers: Headers,
    pub payload: Bytes,
}

impl Outgoing {
    pub fn new(subject: impl Into<String>, payload: impl Into<Bytes>) -> Outgoing {
        Outgoing {
            subject: subject.into(),
            msg_id: None,
            headers: Vec::new(),
            payload: payload.into(),
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Outgoing {
        self.msg_id = Some(id.into());
        self
    }
}

/// The stream's acknowledgement of a durable publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PubAck {
    pub seq: u64,
    pub duplicate: bool,
}

/// How far a durable consumer is behind: what an operator watches to see a role fall behind
/// or stall (`borderwatch_consumer_pending_messages`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerLag {
    /// Messages matching its filter not yet delivered to any member.
    pub pending: u64,
    /// Delivered and not yet acknowledged: being worked on, or waiting to be redelivered.
    pub ack_pending: u64,
}

/// What the object store knows of one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// Bytes read as they are needed: an object being stored, or a stored one being read.
pub type ObjectReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// What [`Transport::object_sweep`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Writes that failed or were abandoned half-way (NATS: chunks no object refers to;
    /// embedded: temporary files).
    pub partial: u64,
    /// Objects with a stale prefix, older than the age given, by name.
    pub objects: Vec<String>,
}

/// Settles one delivery of a durable consumer.
#[async_trait]
pub trait Acker: Send + Sync + Debug {
    async fn ack(&self) -> Result<()>;
    /// Redeliver, after `delay` if given.
    async fn nak(&self, delay: Option<Duration>) -> Result<()>;
    /// Still working on it: restart the ack timer.
    async fn in_progress(&self) -> Result<()>;
}

/// One delivery from a durable consumer. Unacknowledged deliveries are redelivered after
/// the consumer's ack wait, to this or another member of the consumer.
#[derive(Debug)]
pub struct Delivery {
    pub message: Message,
    /// 1 on first delivery.
    pub delivered: u64,
    pub acker: Box<dyn Acker>,
}

impl Delivery {
    pub async fn ack(&self) -> Result<()> {
        self.acker.ack().await
    }
    pub async fn nak(&self, delay: Option<Duration>) -> Result<()> {
        self.acker.nak(delay).await
    }
    pub async fn in_progress(&self) -> Result<()> {
        self.acker.in_progress().await
    }
}

/// Answers one request.
#[async_trait]
pub trait Replier: Send + Sync + Debug {
    async fn respond(&self, headers: Headers, payload: Bytes) -> Result<()>;
}

/// A request received by a service.
#[derive(Debug)]
pub struct Request {
    pub message: Message,
    pub replier: Box<dyn Replier>,
}

impl Request {
    pub async fn respond(&self, headers: Headers, payload: impl Into<Bytes>) -> Result<()> {
        self.replier.respond(headers, payload.into()).await
    }
}

/// Everything services need from NATS, and nothing more.
#[async_trait]
pub trait Transport: Send + Sync + Debug {
    /// Creates the stream, or updates it to `spec` if it exists.
    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<()>;
    /// Creates the key-value bucket if it does not exist.
    async fn ensure_bucket(&self, bucket: &str, replicas: usize) -> Result<()>;

    /// Publishes durably: returns once the stream has stored the message (or recognised it
    /// as a duplicate). Publishing to a subject no stream captures is an error.
    async fn publish(&self, msg: Outgoing) -> Result<PubAck>;
    /// Publishes many messages durably, pipelined, in order; returns their acks in order.
    async fn publish_all(&self, msgs: Vec<Outgoing>) -> Result<Vec<PubAck>>;

    /// The latest stored message of every subject matching any of `filters`, in stream
    /// order (empty when `filters` is).
    async fn last_per_subject(&self, stream: &str, filters: &[&str]) -> Result<Vec<Message>>;
    /// The sequence of the last message the stream stored (0 when it never stored one).
    async fn last_seq(&self, stream: &str) -> Result<u64>;
    /// Every stored message matching `filter` from stream sequence `from_seq` on (1 = the
    /// start), then live ones as they arrive. Not durable: a new call starts over.
    async fn replay(
        &self,
        stream: &str,
        filter: &str,
        from_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>>;
    /// The stored messages of the subjects named, in stream order, up to and including
    /// sequence `to_seq`; then the stream ends. One read on the server for all of them: a
    /// source's series as one filter with wildcards (ingest's and compaction's reads,
    /// `obs::source_figures`, `obs::compact_source`) ends with the last message it matches.
    /// On NATS one consumer, which, naming many subjects, matches every subject of every
    /// block it passes against each of them: for a few series whose messages lie far apart
    /// in a large stream, [`Transport::next_on_subject`] per series costs far less
    /// (analytics' read, `obs::series_as_of`).
    ///
    /// A message stored while the read goes on is read too, up to `to_seq`, unless the read
    /// had already come to its end when it was stored: the read ends where the stream holds
    /// nothing more for the subjects once it gets there (a NATS consumer ends at the message
    /// it was given with nothing pending). So a message removed before the read reached it
    /// and replaced by a later one (compaction's snapshot) is always answered by the later
    /// one, as with [`Transport::next_on_subject`] followed to the last message.
    ///
    /// The default reads each subject on its own (their last messages first, to know where
    /// each ends) and merges them; both transports override it with one read.
    async fn read_subjects(
        &self,
        stream: &str,
        subjects: &[&str],
        to_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>> {
        use futures::StreamExt;
        let mut out = Vec::new();
        for last in self.last_per_subject(stream, subjects).await? {
            let end = last.seq.min(to_seq);
            let mut from = self.replay(stream, &last.subject, 1).await?;
            while let Some(msg) = from.next().await {
                let msg = msg?;
                if msg.seq > end {
                    break;
                }
                let done = msg.seq == end;
                out.push(msg);
                if done {
                    break;
                }
            }
        }
        out.sort_by_key(|m| m.seq);
        Ok(futures::stream::iter(out.into_iter().map(Ok)).boxed())
    }
    /// Removes the stored messages of `subject` whose sequences are below `seq`, and returns
    /// how many went; the message at `seq`, later ones and other subjects stay. `subject`
    /// may be a filter with wildcards: compaction (`obs::compact_source`) stores a source's
    /// snapshots first, then removes every message of the source's series before them with
    /// one purge of the source's filter, so a reader never finds a series with neither.
    /// NATS: a JetStream purge with a subject filter and sequence; in process, the removal is
    /// written to the stream's log, so a restart does not bring the messages back.
    async fn purge_subject_below(&self, stream: &str, subject: &str, seq: u64) -> Result<u64>;
    /// The message the stream holds at sequence `seq`, or `None` when it holds none there
    /// (never stored, or removed by a limit). Lets a reader keep sequences instead of
    /// messages and fetch a message again when it is needed (the gateway's surge index).
    ///
    /// The default replays from `seq` and waits a moment for the first message; both
    /// transports override it with a direct read.
    async fn message_at(&self, stream: &str, seq: u64) -> Result<Option<Message>> {
        use futures::StreamExt;
        let mut from = self.replay(stream, ">", seq).await?;
        match tokio::time::timeout(Duration::from_secs(2), from.next()).await {
            Ok(Some(Ok(msg))) if msg.seq == seq => Ok(Some(msg)),
            Ok(Some(Err(e))) => Err(e),
            _ => Ok(None),
        }
    }
    /// The first message stored on `subject` (one subject, no wildcards) at sequence `from`
    /// or later, or `None` when there is none. A reader that follows one subject from
    /// message to message (`obs::series_as_of`) is never slowed by other subjects' messages
    /// between them: NATS finds the next one through its per-subject index and each
    /// block's subject table (a consumer naming many subjects instead matches every subject
    /// of every block it passes against all of them, which made reading a series whose
    /// messages lie far apart cost in proportion to the whole stream); in process, the
    /// per-subject index.
    async fn next_on_subject(
        &self,
        stream: &str,
        subject: &str,
        from: u64,
    ) -> Result<Option<Message>>;
    /// A durable, explicitly acknowledged consumer. Every caller with the same `durable`
    /// name shares its work: each message goes to one of them, and comes back if it is not
    /// acknowledged within `ack_wait`.
    async fn consume(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        ack_wait: Duration,
    ) -> Result<BoxStream<'static, Result<Delivery>>>;
    /// As [`Transport::consume`], but this member holds at most `prefetch` messages it has
    /// not finished: for slow work shared by replicas (analytics), where a member that pulled
    /// a large batch would keep it from the others. The in-process bus hands a message out
    /// only when the stream is polled, so it never holds more than the caller asked for.
    async fn consume_prefetch(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        ack_wait: Duration,
        prefetch: usize,
    ) -> Result<BoxStream<'static, Result<Delivery>>> {
        let _ = prefetch;
        self.consume(stream, durable, filter, ack_wait).await
    }

    /// How far the durable consumer `durable` of `stream` is behind; `None` while no member
    /// has created it yet (in this process, for the in-process bus).
    async fn consumer_lag(&self, stream: &str, durable: &str) -> Result<Option<ConsumerLag>>;

    async fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>>;
    async fn kv_put(&self, bucket: &str, key: &str, value: Bytes) -> Result<()>;
    /// Stores `value` only if `key` has no value; returns false if it had one.
    async fn kv_create(&self, bucket: &str, key: &str, value: Bytes) -> Result<bool>;
    async fn kv_delete(&self, bucket: &str, key: &str) -> Result<()>;
    /// Every key with a value, sorted.
    async fn kv_keys(&self, bucket: &str) -> Result<Vec<String>>;

    /// Sends a request to one member of the queue group serving `subject`.
    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message>;
    /// Serves requests on `subject` as a member of `queue`.
    async fn serve(&self, subject: &str, queue: &str) -> Result<BoxStream<'static, Request>>;

    /// Creates the object store bucket (named blobs of any size) if it does not exist.
    async fn ensure_object_store(&self, bucket: &str, replicas: usize) -> Result<()>;
    /// Stores `data` under `name`, replacing an object of that name. Readers see the old
    /// object or the new one whole, never a part.
    async fn object_put(&self, bucket: &str, name: &str, data: Bytes) -> Result<ObjectInfo>;
    /// The object's bytes, or `None` if there is no object of that name.
    async fn object_get(&self, bucket: &str, name: &str) -> Result<Option<Bytes>>;
    /// Stores what `data` reads under `name`, as it is read: the object is never held in
    /// memory whole. Readers see the old object or the new one whole, never a part; if
    /// `data` fails ([`BusError::ObjectSource`]), the old object stays.
    ///
    /// The default reads `data` whole and calls [`Transport::object_put`]; both transports
    /// override it.
    async fn object_put_reader(
        &self,
        bucket: &str,
        name: &str,
        mut data: ObjectReader,
    ) -> Result<ObjectInfo> {
        use tokio::io::AsyncReadExt;
        let mut whole = Vec::new();
        data.read_to_end(&mut whole)
            .await
            .map_err(|e| BusError::ObjectSource {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
        self.object_put(bucket, name, whole.into()).await
    }
    /// The object's bytes as a reader that fetches them as they are read, or `None` if there
    /// is no object of that name. A read error means the object could not be read whole
    /// (over NATS: a chunk is missing, or the bytes do not match the stored digest).
    ///
    /// The default reads the object whole with [`Transport::object_get`]; both transports
    /// override it.
    async fn object_reader(&self, bucket: &str, name: &str) -> Result<Option<ObjectReader>> {
        Ok(self
            .object_get(bucket, name)
            .await?
            .map(|b| Box::new(std::io::Cursor::new(b)) as ObjectReader))
    }
    /// The object's size without its bytes, or `None` if there is no object of that name.
    async fn object_info(&self, bucket: &str, name: &str) -> Result<Option<ObjectInfo>>;
    /// Removes the object; removing one that does not exist is not an error.
    async fn object_delete(&self, bucket: &str, name: &str) -> Result<()>;
    /// Every stored object, sorted by name.
    async fn object_list(&self, bucket: &str) -> Result<Vec<ObjectInfo>>;

    /// Removes what failed or abandoned writes left in the store, and objects named
    /// `<one of stale_prefixes>…` (uploads whose client went away) last written more than
    /// `max_age` ago. A write still in progress is younger than any sensible `max_age`, so
    /// it is left alone. The default removes nothing.
    async fn object_sweep(
        &self,
        bucket: &str,
        stale_prefixes: &[&str],
        max_age: Duration,
    ) -> Result<Swept> {
        let _ = (bucket, stale_prefixes, max_age);
        Ok(Swept::default())
    }

    /// The largest request or message payload this transport carries (NATS: the server's
    /// `max_payload`, 1 MiB by default); bigger data goes through the object store.
    fn max_payload(&self) -> usize;

    /// Whether the transport can reach its server now (always true in process).
    fn is_connected(&self) -> bool;
    /// A short name for logs and `/readyz`: `memory` or `nats`.
    fn kind(&self) -> &'static str;
}

/// Checks a key-value key as NATS does.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.' | b'/'))
}

/// Checks an object name: a conservative set that is a safe file name on every platform
/// (the embedded transport keeps one file per object) and a valid NATS object name.
pub fn valid_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.'))
}

/// Whether NATS subject `subject` matches `filter` (`*` one token, `>` the rest).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_limits_read_as_a_person_writes_them() {
        assert_eq!(describe_bytes(512), "512 bytes");
        assert_eq!(describe_bytes(64 << 30), "68719476736 bytes (64 GiB)");
        assert_eq!(describe_bytes(1536), "1536 bytes (1.5 KiB)");
        assert_eq!(describe_bytes(-1), "no limit");
    }

    #[test]
    fn a_default_limit_keeps_what_the_stream_has() {
        assert_eq!(MaxBytes::Default(10).resolve(None), 10);
        assert_eq!(MaxBytes::Default(10).resolve(Some(-1)), -1);
        assert_eq!(MaxBytes::Default(10).resolve(Some(99)), 99);
        assert_eq!(MaxBytes::Set(10).resolve(Some(99)), 10);
        assert_eq!(MaxBytes::Unlimited.resolve(Some(99)), -1);
    }

    #[test]
    fn subjects_match_like_nats() {
        assert!(subject_matches("bw.obs.>", "bw.obs.fsb.PRK.study.2024-Q3"));
        assert!(subject_matches("bw.surge.*.study", "bw.surge.PRK.study"));
        assert!(!subject_matches("bw.surge.*.study", "bw.surge.PRK.work"));
        assert!(!subject_matches("bw.obs.>", "bw.obs"));
        assert!(!subject_matches("bw.obs.fsb", "bw.obs.fsb.PRK"));
    }
}
