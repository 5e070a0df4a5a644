//! The NATS transport: [`Transport`] over a nats-server with JetStream, through async-nats.
//! Streams and durable consumers are JetStream's own, buckets are JetStream key-value
//! stores, objects are JetStream object stores (`objects`), and requests are core NATS
//! request-reply with queue groups.

mod objects;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::kv::{self, CreateErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self, AckKind, ErrorCode};
use async_nats::{
    ConnectOptions, Event, HeaderMap, HeaderName, HeaderValue, RequestErrorKind, ServerAddr,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tracing::{debug, info, warn};

use crate::{
    Acker, BusError, ConsumerLag, Delivery, Headers, MaxBytes, Message, ObjectInfo, Outgoing,
    PubAck, Replier, Request, Result, StreamSpec, Transport, valid_key,
};

/// Publishes in flight at once in `publish_all`: enough to hide the round trip, few enough
/// that a large batch does not hold every ack future in memory.
const PUBLISH_WINDOW: usize = 512;

/// Messages a durable consumer pulls per request. Each pulled message's ack timer starts
/// when it reaches the client, so a large batch behind a slow handler would be redelivered.
const CONSUME_BATCH: usize = 64;

/// Longest wait between reconnect attempts (async-nats backs off up to this; its default is
/// 4 s). A cluster node that restarts is found again within this.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// The bus over a NATS connection (one connection, shared by every call).
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    urls: String,
    connected: Arc<AtomicBool>,
    buckets: RwLock<HashMap<String, kv::Store>>,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("urls", &self.urls)
            .field("connected", &self.connected.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects to the first reachable server of `urls` (comma-separated), as client `name`.
    /// Fails at once if none is reachable; once connected, reconnects on its own.
    pub async fn connect(urls: &str, name: &str) -> Result<NatsBus> {
        let addrs: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        // Passwords in the URLs stay out of logs and errors.
        let shown = addrs
            .iter()
            .map(|u| redact(u))
            .collect::<Vec<_>>()
            .join(",");
        let urls = shown.as_str();
        let connect_error = |reason: String| BusError::Connect {
            url: urls.to_string(),
            reason,
        };
        if addrs.is_empty() {
            return Err(connect_error("no server URL given".into()));
        }
        let (addrs, credentials) = parse_servers(&addrs).map_err(connect_error)?;
        let connected = Arc::new(AtomicBool::new(false));
        // The event callback needs the client (to say which server it reached, and to move off
        // a server in lame-duck mode), which exists only once connect returns.
        let handle: Arc<OnceLock<async_nats::Client>> = Arc::new(OnceLock::new());
        let (flag, events_handle) = (connected.clone(), handle.clone());
        let mut options = ConnectOptions::new();
        if let Some((user, password)) = credentials {
            options = options.user_and_password(user, password);
        }
        let client = options
            .name(name)
            // Keep trying for ever: a cluster that loses every node for a while comes back.
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                let ms = 100u64.saturating_mul(1 << attempts.min(5) as u64);
                Duration::from_millis(ms).min(MAX_RECONNECT_DELAY)
            })
            .event_callback(move |event| {
                let (flag, handle) = (flag.clone(), events_handle.clone());
                async move { on_event(&flag, handle.get(), event) }
            })
            .connect(addrs)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let _ = handle.set(client.clone());
        connected.store(true, Ordering::SeqCst);
        let server = client.server_info();
        info!(urls, name, server = %server.server_name, port = server.port, "connected to nats");
        let js = jetstream::new(client.clone());
        Ok(NatsBus {
            client,
            js,
            urls: urls.to_string(),
            connected,
            buckets: RwLock::new(HashMap::new()),
        })
    }

    async fn stream(&self, name: &str) -> Result<jetstream::stream::Stream> {
        self.js.get_stream(name).await.map_err(|e| {
            if stream_not_found(&e) {
                BusError::NoStream(name.to_string())
            } else {
                BusError::nats("stream lookup", e)
            }
        })
    }

    /// A stream's handle without its info (a request the server answers by summing the
    /// stream's state): a missing stream fails the call made with it.
    async fn stream_handle(&self, name: &str) -> Result<jetstream::stream::Stream<()>> {
        self.js
            .get_stream_no_info(name)
            .await
            .map_err(|e| BusError::nats("stream lookup", e))
    }

    /// The bucket's handle, opened on first use if another process created it.
    async fn store(&self, bucket: &str) -> Result<kv::Store> {
        if let Some(store) = self.cached_store(bucket) {
            return Ok(store);
        }
        let store = self.js.get_key_value(bucket).await.map_err(|e| {
            let not_found = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<GetStreamError>())
                .is_some_and(stream_not_found);
            if not_found || e.kind() == jetstream::context::KeyValueErrorKind::InvalidStoreName {
                BusError::NoBucket(bucket.to_string())
            } else {
                BusError::nats("bucket lookup", e)
            }
        })?;
        self.cache_store(bucket, store.clone());
        Ok(store)
    }

    fn cached_store(&self, bucket: &str) -> Option<kv::Store> {
        let buckets = self.buckets.read().unwrap_or_else(|e| e.into_inner());
        buckets.get(bucket).cloned()
    }

    fn cache_store(&self, bucket: &str, store: kv::Store) {
        let mut buckets = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        buckets.insert(bucket.to_string(), store);
    }

    /// Gives a bucket `replicas` copies (a deployment that grew from one node to a cluster,
    /// or the other way: JetStream scales the bucket's stream in place) and turns direct gets
    /// off. async-nats creates buckets with direct gets, which any replica may answer, a
    /// follower possibly before it has a write the leader acknowledged; a replica checking
    /// whether the other parts of its release are recorded (or a notify copy checking for a
    /// delivery record) must see every acknowledged write, so reads go to the leader.
    async fn tune_bucket(&self, bucket: &str, replicas: usize) -> Result<()> {
        let mut stream = self
            .js
            .get_stream(format!("KV_{bucket}"))
            .await
            .map_err(|e| BusError::nats("bucket lookup", e))?;
        let mut config = stream
            .info()
            .await
            .map_err(|e| BusError::nats("bucket info", e))?
            .config
            .clone();
        if config.num_replicas != replicas || config.allow_direct {
            info!(
                bucket,
                replicas_before = config.num_replicas,
                replicas,
                "setting bucket replicas and leader reads"
            );
            config.num_replicas = replicas;
            config.allow_direct = false;
            self.js
                .update_stream(config)
                .await
                .map_err(|e| BusError::nats("ensure_bucket", e))?;
        }
        Ok(())
    }

    async fn send_publish(&self, msg: Outgoing) -> Result<jetstream::context::PublishAckFuture> {
        let subject = msg.subject.clone();
        let publish = publish_message(msg)?;
        self.js
            .send_publish(subject.clone(), publish)
            .await
            .map_err(|e| publish_error(&subject, e))
    }
}

/// The server addresses, the user and password given in them (async-nats does not take
/// them from the URL by itself; every URL that names a user must name the same one).
#[allow(clippy::type_complexity)]
fn parse_servers(
    urls: &[&str],
) -> std::result::Result<(Vec<ServerAddr>, Option<(String, String)>), String> {
    let mut addrs = Vec::with_capacity(urls.len());
    let mut credentials: Option<(String, String)> = None;
    for url in urls {
        let addr: ServerAddr = url
            .parse()
            .map_err(|e| format!("`{}` is not a server URL: {e}", redact(url)))?;
        if let Some(user) = addr.username() {
            let pair = (user.to_string(), addr.password().unwrap_or("").to_string());
            match &credentials {
                Some(known) if *known != pair => {
                    return Err(
                        "the server URLs name different users; give one user and password for all"
                            .into(),
                    );
                }
                _ => credentials = Some(pair),
            }
        }
        addrs.push(addr);
    }
    Ok((addrs, credentials))
}

/// `nats://user:secret@host` → `nats://user:***@host`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn on_event(connected: &AtomicBool, client: Option<&async_nats::Client>, event: Event) {
    // Which server the client talks to now (the one it just reached, on `Connected`).
    let server = client
        .map(|c| {
            let info = c.server_info();
            format!("{} ({}:{})", info.server_name, info.host, info.port)
        })
        .unwrap_or_default();
    match event {
        Event::Connected => {
            connected.store(true, Ordering::SeqCst);
            // The client reports the connection before it stores the new server's INFO: wait
            // a moment for the INFO to change, so the log names the server now in use (the
            // same one again if it does not change).
            match client.cloned() {
                Some(client) => {
                    tokio::spawn(async move {
                        let describe = |c: &async_nats::Client| {
                            let info = c.server_info();
                            format!("{} ({}:{})", info.server_name, info.host, info.port)
                        };
                        for _ in 0..25 {
                            if describe(&client) != server {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        info!(
                            server = describe(&client),
                            "nats connection (re)established"
                        );
                    });
                }
                None => info!(server, "nats connection (re)established"),
            }
        }
        Event::Disconnected => {
            connected.store(false, Ordering::SeqCst);
            warn!(
                server,
                "nats connection lost, reconnecting to any server of the list"
            );
        }
        Event::Closed => {
            connected.store(false, Ordering::SeqCst);
            warn!(server, "nats connection closed");
        }
        Event::LameDuckMode => {
            // The server is about to shut down (an upgrade or a drain): move to another one
            // now rather than when it closes the connection. Lame-duck mode stops the server
            // accepting clients, so the reconnect lands elsewhere. A little jitter keeps every
            // client of the node from reconnecting in the same instant.
            warn!(
                server,
                "nats server entered lame duck mode; moving to another server"
            );
            if let Some(client) = client.cloned() {
                let jitter = Duration::from_millis(u64::from(std::process::id() % 500));
                tokio::spawn(async move {
                    tokio::time::sleep(jitter).await;
                    if let Err(e) = client.force_reconnect().await {
                        warn!(error = %e, "could not leave the lame-duck server");
                    }
                });
            }
        }
        Event::SlowConsumer(sid) => warn!(sid, server, "nats slow consumer: messages dropped"),
        Event::ServerError(e) => warn!(error = %e, server, "nats server error"),
        Event::ClientError(e) => warn!(error = %e, server, "nats client error"),
        Event::Draining => debug!("nats connection draining"),
    }
}

fn stream_not_found(e: &GetStreamError) -> bool {
    matches!(e.kind(), GetStreamErrorKind::JetStream(js) if js.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

impl NatsBus {
    /// `e` as [`BusError::StreamFull`] when the server refused the message because its
    /// stream holds its `max_bytes` (discard-new), naming the limit; else `e` as it is.
    async fn explain_full(&self, subject: &str, e: BusError) -> BusError {
        let BusError::Nats { reason, .. } = &e else {
            return e;
        };
        if !reason.contains("maximum bytes exceeded") {
            return e;
        }
        let Ok(name) = self.js.stream_by_subject(subject).await else {
            return e;
        };
        let limit = match self.js.get_stream(&name).await {
            Ok(mut stream) => match stream.info().await {
                Ok(info) => crate::describe_bytes(info.config.max_bytes),
                Err(_) => "its byte limit".into(),
            },
            Err(_) => "its byte limit".into(),
        };
        let (what, setting) = crate::names::stream_limit_setting(&name);
        BusError::StreamFull {
            stream: name,
            what,
            limit,
            setting,
        }
    }
}

fn publish_error(subject: &str, e: jetstream::context::PublishError) -> BusError {
    if e.kind() == PublishErrorKind::StreamNotFound {
        BusError::NoStream(subject.to_string())
    } else {
        BusError::nats("publish", e)
    }
}

fn header_map(headers: Headers) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name: HeaderName = name
            .parse()
            .map_err(|e| BusError::nats("header name", format!("`{name}`: {e}")))?;
        let value: HeaderValue = value
            .parse()
            .map_err(|e| BusError::nats("header value", format!("`{value}`: {e}")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// NATS keeps headers in a hash map, so the order they were sent in is lost; sorting by
/// name (values of one name keep their order) at least makes it deterministic.
fn headers_of(map: Option<&HeaderMap>) -> Headers {
    let mut headers: Headers = map
        .into_iter()
        .flat_map(|map| map.iter())
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |value| (name.to_string(), value.as_str().to_string()))
        })
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers
}

fn publish_message(msg: Outgoing) -> Result<PublishMessage> {
    let mut publish = PublishMessage::build().payload(msg.payload);
    if !msg.headers.is_empty() {
        publish = publish.headers(header_map(msg.headers)?);
    }
    if let Some(id) = msg.msg_id {
        publish = publish.message_id(id);
    }
    Ok(publish)
}

fn message_of(msg: async_nats::Message, seq: u64) -> Message {
    Message {
        subject: msg.subject.to_string(),
        headers: headers_of(msg.headers.as_ref()),
        payload: msg.payload,
        seq,
    }
}

/// An ordered consumer of `stream` over `filters` (one filter subject, or several), for a
/// read that `op` names in its errors.
async fn ordered_consumer(
    stream: &stream::Stream,
    filters: &[&str],
    deliver_policy: DeliverPolicy,
    op: &'static str,
) -> Result<jetstream::consumer::Consumer<pull::OrderedConfig>> {
    let (filter_subject, filter_subjects) = match filters {
        [one] => (one.to_string(), Vec::new()),
        many => (String::new(), many.iter().map(|f| f.to_string()).collect()),
    };
    stream
        .create_consumer(pull::OrderedConfig {
            filter_subject,
            filter_subjects,
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| BusError::nats(op, e))
}

/// Deletes an ordered consumer when the read that made it is dropped. The server would
/// remove it after its inactivity threshold (30 s for async-nats's ordered consumers), but
/// reads made faster than that pile up: analytics reading a large release's series one
/// consumer each reached the server's consumer limit before this.
struct DeleteOnDrop {
    stream: stream::Stream,
    name: String,
}

impl DeleteOnDrop {
    fn new(stream: &stream::Stream, name: &str) -> DeleteOnDrop {
        DeleteOnDrop {
            stream: stream.clone(),
            name: name.to_string(),
        }
    }
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (stream, name) = (self.stream.clone(), std::mem::take(&mut self.name));
        runtime.spawn(async move {
            if let Err(e) = stream.delete_consumer(&name).await {
                debug!(error = %e, consumer = %name, "could not delete a finished read's consumer");
            }
        });
    }
}

fn stored_message(msg: jetstream::Message) -> Result<Message> {
    let seq = msg
        .info()
        .map_err(|e| BusError::nats("message info", e))?
        .stream_sequence;
    Ok(message_of(msg.split().0, seq))
}

fn delivery(msg: jetstream::Message) -> Result<Delivery> {
    let info = msg.info().map_err(|e| BusError::nats("message info", e))?;
    let (seq, delivered) = (info.stream_sequence, info.delivered.max(1) as u64);
    let (msg, acker) = msg.split();
    Ok(Delivery {
        message: message_of(msg, seq),
        delivered,
        acker: Box::new(NatsAcker(acker)),
    })
}

fn check_key(key: &str) -> Result<()> {
    if valid_key(key) {
        Ok(())
    } else {
        Err(BusError::BadKey(key.to_string()))
    }
}

/// Settles a JetStream delivery.
struct NatsAcker(jetstream::message::Acker);

impl fmt::Debug for NatsAcker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsAcker").finish_non_exhaustive()
    }
}

#[async_trait]
impl Acker for NatsAcker {
    /// Waits for the server to confirm the ack, so that an acked message is never redelivered.
    async fn ack(&self) -> Result<()> {
        self.0
            .double_ack()
            .await
            .map_err(|e| BusError::nats("ack", e))
    }

    async fn nak(&self, delay: Option<Duration>) -> Result<()> {
        self.0
            .ack_with(AckKind::Nak(delay))
            .await
            .map_err(|e| BusError::nats("nak", e))
    }

    async fn in_progress(&self) -> Result<()> {
        self.0
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| BusError::nats("in progress", e))
    }
}

/// Answers a core NATS request on its reply subject.
#[derive(Debug)]
struct NatsReplier {
    client: async_nats::Client,
    reply: async_nats::Subject,
}

#[async_trait]
impl Replier for NatsReplier {
    async fn respond(&self, headers: Headers, payload: Bytes) -> Result<()> {
        let reply = self.reply.clone();
        let sent = if headers.is_empty() {
            self.client.publish(reply, payload).await
        } else {
            let headers = header_map(headers)?;
            self.client
                .publish_with_headers(reply, headers, payload)
                .await
        };
        sent.map_err(|e| BusError::nats("respond", e))?;
        self.client
            .flush()
            .await
            .map_err(|e| BusError::nats("respond", e))
    }
}

/// A stored message a message get answered with, `None` for "no message found", the
/// stream's absence as [`BusError::NoStream`].
fn stored_or_none(
    got: std::result::Result<
        async_nats::jetstream::message::StreamMessage,
        stream::RawMessageError,
    >,
    stream: &str,
    op: &'static str,
) -> Result<Option<Message>> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    match got {
        Ok(m) => Ok(Some(Message {
            subject: m.subject.to_string(),
            headers: headers_of(Some(&m.headers)),
            payload: m.payload,
            seq: m.sequence,
        })),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => {
            if let LastRawMessageErrorKind::JetStream(js) = e.kind()
                && js.error_code() == ErrorCode::STREAM_NOT_FOUND
            {
                return Err(BusError::NoStream(stream.to_string()));
            }
            Err(BusError::nats(op, e))
        }
    }
}

#[async_trait]
impl Transport for NatsBus {
    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<()> {
        // A limit left to its default keeps what the stream has (another role may have set
        // it), so the stream's current settings are read first.
        let current = match self.js.get_stream(&spec.name).await {
            Ok(mut existing) => existing.info().await.ok().map(|i| i.config.max_bytes),
            Err(_) => None,
        };
        // A stream's max_bytes is reserved from the server's JetStream storage at once, so
        // a default limit bigger than a small server's store would keep the stream from
        // being created: over NATS a limit applies only where one was set, and otherwise
        // the server's own `max_file_store` bounds the stream.
        let max_bytes = match spec.max_bytes {
            MaxBytes::Default(_) => current.unwrap_or(-1),
            set => set.resolve(current),
        };
        let config = stream::Config {
            name: spec.name.clone(),
            subjects: spec.subjects.clone(),
            max_messages_per_subject: spec.max_msgs_per_subject,
            duplicate_window: spec.duplicate_window,
            num_replicas: spec.replicas.max(1),
            storage: StorageType::File,
            max_bytes,
            // Full means refused, never old figures dropped to make room.
            discard: stream::DiscardPolicy::New,
            // Compaction no longer sends rollups (it purges a source's series at once,
            // `obs::compact_source`), but the versions that did turned this on, and an update
            // keeps the stream as they left it.
            allow_rollup: true,
            ..Default::default()
        };
        self.js
            .create_or_update_stream(config)
            .await
            .map_err(|e| BusError::nats("ensure_stream", e))?;
        Ok(())
    }

    /// Every call applies `replicas` (roles call it once, at start).
    async fn ensure_bucket(&self, bucket: &str, replicas: usize) -> Result<()> {
        if self.js.get_key_value(bucket).await.is_err() {
            let created = self
                .js
                .create_key_value(kv::Config {
                    bucket: bucket.to_string(),
                    history: 1,
                    storage: StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await;
            // Another process may have created (and tuned) it meanwhile.
            if let Err(e) = created
                && self.js.get_key_value(bucket).await.is_err()
            {
                return Err(BusError::nats("ensure_bucket", e));
            }
        }
        self.tune_bucket(bucket, replicas.max(1)).await?;
        // Opened after tuning: the handle reads the stream's settings once, and they decide
        // how it reads.
        let store = self
            .js
            .get_key_value(bucket)
            .await
            .map_err(|e| BusError::nats("ensure_bucket", e))?;
        self.cache_store(bucket, store);
        Ok(())
    }

    async fn publish(&self, msg: Outgoing) -> Result<PubAck> {
        let subject = msg.subject.clone();
        let ack = self
            .send_publish(msg)
            .await?
            .await
            .map_err(|e| publish_error(&subject, e));
        let ack = match ack {
            Ok(ack) => ack,
            Err(e) => return Err(self.explain_full(&subject, e).await),
        };
        Ok(PubAck {
            seq: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    async fn publish_all(&self, msgs: Vec<Outgoing>) -> Result<Vec<PubAck>> {
        let mut acks = Vec::with_capacity(msgs.len());
        let mut msgs = msgs.into_iter().peekable();
        while msgs.peek().is_some() {
            let mut pending = Vec::with_capacity(PUBLISH_WINDOW);
            for msg in msgs.by_ref().take(PUBLISH_WINDOW) {
                let subject = msg.subject.clone();
                pending.push((subject, self.send_publish(msg).await?));
            }
            for (subject, ack) in pending {
                let ack = match ack.await {
                    Ok(ack) => ack,
                    Err(e) => {
                        let e = publish_error(&subject, e);
                        return Err(self.explain_full(&subject, e).await);
                    }
                };
                acks.push(PubAck {
                    seq: ack.sequence,
                    duplicate: ack.duplicate,
                });
            }
        }
        Ok(acks)
    }

    async fn last_seq(&self, stream: &str) -> Result<u64> {
        let mut stream = self.stream(stream).await?;
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::nats("stream info", e))?;
        Ok(info.state.last_sequence)
    }

    async fn message_at(&self, stream: &str, seq: u64) -> Result<Option<Message>> {
        if seq == 0 {
            // Sequences start at 1; the server calls 0 a bad request.
            return Ok(None);
        }
        let handle = self.stream_handle(stream).await?;
        stored_or_none(
            handle.get_raw_message(seq).await,
            stream,
            "message by sequence",
        )
    }

    async fn next_on_subject(
        &self,
        stream: &str,
        subject: &str,
        from: u64,
    ) -> Result<Option<Message>> {
        let handle = self.stream_handle(stream).await?;
        // A message get from the stream's leader (never a direct get, which a follower
        // behind it may answer): what was acknowledged is there.
        stored_or_none(
            handle
                .get_first_raw_message_by_subject(subject, from.max(1))
                .await,
            stream,
            "next message on a subject",
        )
    }

    async fn last_per_subject(&self, stream: &str, filters: &[&str]) -> Result<Vec<Message>> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let stream = self.stream(stream).await?;
        let consumer = ordered_consumer(
            &stream,
            filters,
            DeliverPolicy::LastPerSubject,
            "last_per_subject",
        )
        .await?;
        let name = consumer.cached_info().name.clone();
        let mut found = Vec::new();
        if consumer.cached_info().num_pending > 0 {
            let mut messages = consumer
                .messages()
                .await
                .map_err(|e| BusError::nats("last_per_subject", e))?;
            while let Some(msg) = messages.next().await {
                let msg = msg.map_err(|e| BusError::nats("last_per_subject", e))?;
                let pending = msg
                    .info()
                    .map_err(|e| BusError::nats("message info", e))?
                    .pending;
                found.push(stored_message(msg)?);
                if pending == 0 {
                    break;
                }
            }
        }
        // The consumer would expire on its own; deleting it now spares the server.
        if let Err(e) = stream.delete_consumer(&name).await {
            debug!(error = %e, "could not delete last_per_subject consumer");
        }
        // A message published while reading can be a newer version of a subject already
        // read: keep only the latest of each.
        let mut latest: HashMap<String, Message> = HashMap::new();
        for msg in found {
            latest.insert(msg.subject.clone(), msg);
        }
        let mut latest: Vec<Message> = latest.into_values().collect();
        latest.sort_by_key(|msg| msg.seq);
        Ok(latest)
    }

    async fn purge_subject_below(&self, stream: &str, subject: &str, seq: u64) -> Result<u64> {
        if seq <= 1 {
            return Ok(0);
        }
        let stream = self.stream_handle(stream).await?;
        let purged = stream
            .purge()
            .filter(subject)
            .sequence(seq)
            .await
            .map_err(|e| BusError::nats("purge", e))?;
        Ok(purged.purged)
    }

    async fn replay(
        &self,
        stream: &str,
        filter: &str,
        from_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>> {
        let stream = self.stream(stream).await?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter.to_string(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from_seq.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::nats("replay", e))?;
        let guard = DeleteOnDrop::new(&stream, &consumer.cached_info().name);
        let messages = consumer
            .messages()
            .await
            .map_err(|e| BusError::nats("replay", e))?;
        Ok(messages
            .map(move |msg| {
                let _held = &guard;
                msg.map_err(|e| BusError::nats("replay", e))
                    .and_then(stored_message)
            })
            .boxed())
    }

    async fn read_subjects(
        &self,
        stream: &str,
        subjects: &[&str],
        to_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>> {
        if subjects.is_empty() || to_seq == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        let stream = self.stream(stream).await?;
        let consumer =
            ordered_consumer(&stream, subjects, DeliverPolicy::All, "read_subjects").await?;
        let guard = DeleteOnDrop::new(&stream, &consumer.cached_info().name);
        if consumer.cached_info().num_pending == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        let messages = consumer
            .messages()
            .await
            .map_err(|e| BusError::nats("read_subjects", e))?;
        // Ends after `to_seq`, or when the server has nothing more stored for the subjects;
        // the consumer goes with the state, so as soon as the read ends.
        Ok(
            futures::stream::unfold(Some((messages, guard)), move |state| async move {
                let (mut messages, guard) = state?;
                let msg = match messages.next().await? {
                    Ok(msg) => msg,
                    Err(e) => return Some((Err(BusError::nats("read_subjects", e)), None)),
                };
                let pending = match msg.info() {
                    Ok(info) => info.pending,
                    Err(e) => return Some((Err(BusError::nats("message info", e)), None)),
                };
                match stored_message(msg) {
                    Ok(m) if m.seq > to_seq => None,
                    Ok(m) => {
                        let more = m.seq < to_seq && pending > 0;
                        Some((Ok(m), more.then_some((messages, guard))))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            })
            .boxed(),
        )
    }

    async fn consume(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        ack_wait: Duration,
    ) -> Result<BoxStream<'static, Result<Delivery>>> {
        self.consume_prefetch(stream, durable, filter, ack_wait, CONSUME_BATCH)
            .await
    }

    async fn consume_prefetch(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        ack_wait: Duration,
        prefetch: usize,
    ) -> Result<BoxStream<'static, Result<Delivery>>> {
        let stream = self.stream(stream).await?;
        // Create-or-update: every member of the durable sends the same settings, and a
        // changed ack wait or filter takes effect.
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(durable.to_string()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ack_wait,
                max_deliver: -1,
                filter_subject: filter.to_string(),
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::nats("consume", e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(prefetch.max(1))
            .messages()
            .await
            .map_err(|e| BusError::nats("consume", e))?;
        Ok(messages
            .map(|msg| {
                msg.map_err(|e| BusError::nats("consume", e))
                    .and_then(delivery)
            })
            .boxed())
    }

    async fn consumer_lag(&self, stream: &str, durable: &str) -> Result<Option<ConsumerLag>> {
        use async_nats::jetstream::context::ConsumerInfoErrorKind;
        let stream = self.stream(stream).await?;
        match stream.consumer_info(durable).await {
            Ok(info) => Ok(Some(ConsumerLag {
                pending: info.num_pending,
                ack_pending: info.num_ack_pending as u64,
            })),
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(BusError::nats("consumer info", e)),
        }
    }

    async fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>> {
        check_key(key)?;
        let store = self.store(bucket).await?;
        store
            .get(key)
            .await
            .map_err(|e| BusError::nats("kv_get", e))
    }

    async fn kv_put(&self, bucket: &str, key: &str, value: Bytes) -> Result<()> {
        check_key(key)?;
        let store = self.store(bucket).await?;
        store
            .put(key, value)
            .await
            .map_err(|e| BusError::nats("kv_put", e))?;
        Ok(())
    }

    async fn kv_create(&self, bucket: &str, key: &str, value: Bytes) -> Result<bool> {
        check_key(key)?;
        let store = self.store(bucket).await?;
        match store.create(key, value).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(BusError::nats("kv_create", e)),
        }
    }

    async fn kv_delete(&self, bucket: &str, key: &str) -> Result<()> {
        check_key(key)?;
        let store = self.store(bucket).await?;
        store
            .delete(key)
            .await
            .map_err(|e| BusError::nats("kv_delete", e))
    }

    async fn kv_keys(&self, bucket: &str) -> Result<Vec<String>> {
        let store = self.store(bucket).await?;
        let mut keys: Vec<String> = store
            .keys()
            .await
            .map_err(|e| BusError::nats("kv_keys", e))?
            .try_collect()
            .await
            .map_err(|e| BusError::nats("kv_keys", e))?;
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message> {
        let mut request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(timeout));
        if !headers.is_empty() {
            request = request.headers(header_map(headers)?);
        }
        match self.client.send_request(subject.to_string(), request).await {
            Ok(msg) => Ok(message_of(msg, 0)),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => BusError::NoResponder {
                    subject: subject.to_string(),
                    reason: "no service is subscribed".into(),
                },
                RequestErrorKind::TimedOut => BusError::Timeout {
                    subject: subject.to_string(),
                    timeout,
                },
                _ => BusError::nats("request", e),
            }),
        }
    }

    async fn serve(&self, subject: &str, queue: &str) -> Result<BoxStream<'static, Request>> {
        let subscriber = self
            .client
            .queue_subscribe(subject.to_string(), queue.to_string())
            .await
            .map_err(|e| BusError::nats("serve", e))?;
        let client = self.client.clone();
        Ok(subscriber
            .filter_map(move |mut msg| {
                // A message without a reply subject was published, not requested: nobody
                // waits for an answer.
                let request = msg.reply.take().map(|reply| Request {
                    message: message_of(msg, 0),
                    replier: Box::new(NatsReplier {
                        client: client.clone(),
                        reply,
                    }),
                });
                futures::future::ready(request)
            })
            .boxed())
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    async fn ensure_object_store(&self, bucket: &str, replicas: usize) -> Result<()> {
        objects::ensure(&self.js, bucket, replicas).await
    }

    async fn object_put(&self, bucket: &str, name: &str, data: Bytes) -> Result<ObjectInfo> {
        objects::put(&self.js, bucket, name, data).await
    }

    async fn object_get(&self, bucket: &str, name: &str) -> Result<Option<Bytes>> {
        objects::get(&self.js, bucket, name).await
    }

    async fn object_put_reader(
        &self,
        bucket: &str,
        name: &str,
        data: crate::ObjectReader,
    ) -> Result<ObjectInfo> {
        objects::put_reader(&self.js, bucket, name, data).await
    }

    async fn object_reader(&self, bucket: &str, name: &str) -> Result<Option<crate::ObjectReader>> {
        objects::reader(&self.js, bucket, name).await
    }

    async fn object_sweep(
        &self,
        bucket: &str,
        stale_prefixes: &[&str],
        max_age: Duration,
    ) -> Result<crate::Swept> {
        objects::sweep(&self.js, bucket, stale_prefixes, max_age).await
    }

    async fn object_info(&self, bucket: &str, name: &str) -> Result<Option<ObjectInfo>> {
        objects::info(&self.js, bucket, name).await
    }

    async fn object_delete(&self, bucket: &str, name: &str) -> Result<()> {
        objects::delete(&self.js, bucket, name).await
    }

    async fn object_list(&self, bucket: &str) -> Result<Vec<ObjectInfo>> {
        objects::list(&self.js, bucket).await
    }

    fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    fn kind(&self) -> &'static str {
        "nats"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_server_urls_are_hidden() {
        assert_eq!(
            redact("nats://analytics:s3cr:et@nats-1:4222"),
            "nats://analytics:***@nats-1:4222"
        );
        assert_eq!(redact("nats://nats-1:4222"), "nats://nats-1:4222");
        assert_eq!(
            redact("nats://token@nats-1:4222"),
            "nats://token@nats-1:4222"
        );
    }

    #[test]
    fn the_user_and_password_of_the_urls_are_used_and_must_agree() {
        let (addrs, creds) =
            parse_servers(&["nats://bw:pw@nats-1:4222", "nats://bw:pw@nats-2:4222"]).unwrap();
        assert_eq!(addrs.len(), 2);
        assert_eq!(creds, Some(("bw".to_string(), "pw".to_string())));
        let (_, none) = parse_servers(&["nats://nats-1:4222"]).unwrap();
        assert_eq!(none, None);
        let err = parse_servers(&["nats://a:1@n1:4222", "nats://b:2@n2:4222"]).unwrap_err();
        assert!(err.contains("different users"), "{err}");
    }
}
