//! The client of the ingest service: sends an upload on `bw.ingest.submit` and reads the
//! release, or the error, ingest answers with.
//!
//! Both sides of the request live here, so the two cannot disagree: the request headers
//! ([`FORMAT_HEADER`], [`SOURCE_HEADER`], [`OBJECT_HEADER`]), the answer ([`Reply`]) and the
//! codes of its errors ([`ErrorCode`]). An upload too big for one request is staged in the
//! object store `bw_raw` first and the request names it. The gateway, the source poller and
//! `borderwatch demo` send uploads through it; the ingest service answers them.

mod code;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use borderwatch_bus::{BusError, Headers, ObjectReader, Transport, names};
use borderwatch_model::{ErrorBody, Release};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::warn;

pub use self::code::{ErrorCode, UnknownCode};

/// Request header naming the input format.
pub const FORMAT_HEADER: &str = "Bw-Format";
/// Request header naming the source when the file does not.
pub const SOURCE_HEADER: &str = "Bw-Source";
/// Request header naming the object (in `bw_raw`) that holds an upload too big for the
/// request itself; the request's payload is then empty.
pub const OBJECT_HEADER: &str = "Bw-Object";

/// Room left in a request for its headers and framing: an upload bigger than the bus's
/// payload limit less this goes through the object store (and so does an answer, the other
/// way).
pub const REQUEST_HEADROOM: usize = 64 * 1024;

/// How the name of an object (in `bw_raw`) holding a staged upload starts.
pub const UPLOAD_PREFIX: &str = "upload-";
/// How the name of an object holding an answer too big for one message starts.
pub const REPLY_PREFIX: &str = "reply-";

/// Uploads bigger than this go through the object store even where the bus would carry
/// them in one request (the embedded bus has no limit), so that ingest reads them a piece at
/// a time instead of holding them whole.
const STAGE_ABOVE: usize = 8 * 1024 * 1024;

/// The largest upload sent in the request itself; bigger ones are staged in the object store.
fn inline_limit(bus: &dyn Transport) -> usize {
    bus.max_payload()
        .saturating_sub(REQUEST_HEADROOM)
        .min(STAGE_ABOVE)
}

/// How long a gateway waits for the ingest service to answer an upload sent in the request.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(120);

/// The wait for a staged upload of `size` bytes: [`SUBMIT_TIMEOUT`] and a second per MiB
/// (5 million rows, 145 MiB, take about a minute on a quiet 2-core machine).
fn staged_timeout(size: u64) -> Duration {
    SUBMIT_TIMEOUT + Duration::from_secs(size / (1024 * 1024))
}

/// How long an upload waits for an ingest service to appear before it is refused.
const NO_RESPONDER_GRACE: Duration = Duration::from_secs(5);

/// An upload to ingest.
#[derive(Debug, Clone)]
pub struct Submission {
    pub format: Option<String>,
    pub source: Option<String>,
    pub bytes: Bytes,
}

/// What ingest answers on `bw.ingest.submit`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    // Boxed: a release is much bigger than an error (the JSON is the same).
    Ok(Box<Release>),
    Error(ErrorBody),
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The file itself was refused (bad format, missing columns...): the caller's fault.
    #[error("{}", .0.error.message)]
    Rejected(ErrorBody),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("the ingest service sent an answer that is not a reply: {0}")]
    BadReply(String),
    /// The upload itself could not be read (the client went away): nothing was ingested.
    #[error("reading the upload failed: {0}")]
    Read(String),
    /// The upload passed the most bytes its caller takes: nothing was ingested.
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
}

/// Sends an upload to whichever ingest service is serving, and waits for its release.
///
/// An upload bigger than the bus carries in one request (NATS: 1 MiB by default), or bigger
/// than 8 MiB, is put in the object store first (`upload-…` in `bw_raw`) and the request
/// names it; the object is removed once ingest has answered (ingest keeps accepted bytes
/// under their hash).
pub async fn submit(bus: &dyn Transport, sub: Submission) -> Result<Release, SubmitError> {
    if sub.bytes.len() <= inline_limit(bus) {
        return request_release(bus, sub.format, sub.source, sub.bytes, None).await;
    }
    let name = upload_object_name();
    let info = bus
        .object_put(names::RAW_OBJECT_STORE, &name, sub.bytes)
        .await?;
    let staged = Some((name, info.size));
    request_release(bus, sub.format, sub.source, Bytes::new(), staged).await
}

/// [`submit`] for an upload read as it arrives (an HTTP body): one too big for a request is
/// written to the object store as it is read, so it is never held in memory whole. An upload
/// longer than `max_bytes` is stopped there ([`SubmitError::TooLarge`]).
pub async fn submit_reader(
    bus: &dyn Transport,
    format: Option<String>,
    source: Option<String>,
    upload: impl AsyncRead + Send + Unpin + 'static,
    max_bytes: Option<u64>,
) -> Result<Release, SubmitError> {
    let prepared = prepare(bus, upload, max_bytes).await?;
    send_prepared(bus, format, source, prepared).await
}

/// An upload read and made ready to send: small enough for the request itself, or staged in
/// the object store; with the content hash of every byte read.
#[derive(Debug)]
pub struct Prepared {
    body: PreparedBody,
    /// SHA-256 of the upload, hex.
    pub sha256: String,
    /// Bytes read.
    pub size: u64,
}

#[derive(Debug)]
enum PreparedBody {
    Inline(Bytes),
    Staged(String),
}

/// Reads `upload` to its end: up to the inline limit in memory, beyond it into the object
/// store as it is read, hashing it on the way. An upload longer than `max_bytes` is stopped
/// as soon as it passes it, and nothing of it stays. Either [`send_prepared`] or
/// [`discard`] must follow (a staged upload stays in the store until one does).
pub async fn prepare(
    bus: &dyn Transport,
    upload: impl AsyncRead + Send + Unpin + 'static,
    max_bytes: Option<u64>,
) -> Result<Prepared, SubmitError> {
    let limit = inline_limit(bus);
    let max = max_bytes.unwrap_or(u64::MAX);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut upload = Hashing {
        inner: upload,
        seen: Arc::clone(&seen),
        max,
    };
    // What was read, once the upload is read or has failed.
    let read = || std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    let failed = |reason: String, seen: Seen| {
        if seen.size > max {
            SubmitError::TooLarge { limit: max }
        } else {
            SubmitError::Read(reason)
        }
    };
    let mut head = Vec::new();
    if let Err(e) = (&mut upload)
        .take(limit as u64 + 1)
        .read_to_end(&mut head)
        .await
    {
        return Err(failed(e.to_string(), read()));
    }
    if head.len() <= limit {
        let seen = read();
        return Ok(Prepared {
            body: PreparedBody::Inline(head.into()),
            sha256: hex::encode(seen.hasher.finalize()),
            size: seen.size,
        });
    }
    let name = upload_object_name();
    let reader: ObjectReader = Box::new(std::io::Cursor::new(head).chain(upload));
    match bus
        .object_put_reader(names::RAW_OBJECT_STORE, &name, reader)
        .await
    {
        Ok(_) => {}
        Err(BusError::ObjectSource { reason, .. }) => return Err(failed(reason, read())),
        Err(e) => return Err(e.into()),
    }
    let seen = read();
    Ok(Prepared {
        body: PreparedBody::Staged(name),
        sha256: hex::encode(seen.hasher.finalize()),
        size: seen.size,
    })
}

/// Sends a prepared upload to ingest and waits for its release.
pub async fn send_prepared(
    bus: &dyn Transport,
    format: Option<String>,
    source: Option<String>,
    prepared: Prepared,
) -> Result<Release, SubmitError> {
    match prepared.body {
        PreparedBody::Inline(bytes) => request_release(bus, format, source, bytes, None).await,
        PreparedBody::Staged(name) => {
            let staged = Some((name, prepared.size));
            request_release(bus, format, source, Bytes::new(), staged).await
        }
    }
}

/// Drops a prepared upload that will not be sent.
pub async fn discard(bus: &dyn Transport, prepared: Prepared) {
    if let PreparedBody::Staged(name) = prepared.body
        && let Err(e) = bus.object_delete(names::RAW_OBJECT_STORE, &name).await
    {
        warn!(object = %name, error = %e, "could not remove a staged upload");
    }
}

/// What has passed through a [`Hashing`] reader.
#[derive(Default)]
struct Seen {
    hasher: Sha256,
    size: u64,
}

/// An async reader that hashes and counts what passes through it, and fails once more than
/// `max` bytes have.
struct Hashing<R> {
    inner: R,
    seen: Arc<Mutex<Seen>>,
    max: u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled
            && let Some(read) = buf.filled().get(before..)
        {
            let max = self.max;
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.hasher.update(read);
            seen.size += read.len() as u64;
            if seen.size > max {
                // A read that fails hands out nothing.
                buf.set_filled(before);
                return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                    "the upload passed {max} bytes"
                ))));
            }
        }
        polled
    }
}

/// Asks ingest for the release of `payload`, or of the staged object `staged` (name and
/// size; removed once ingest has answered).
async fn request_release(
    bus: &dyn Transport,
    format: Option<String>,
    source: Option<String>,
    payload: Bytes,
    staged: Option<(String, u64)>,
) -> Result<Release, SubmitError> {
    let mut headers: Headers = Vec::new();
    if let Some(f) = format {
        headers.push((FORMAT_HEADER.into(), f));
    }
    if let Some(s) = source {
        headers.push((SOURCE_HEADER.into(), s));
    }
    let timeout = match &staged {
        Some((name, size)) => {
            headers.push((OBJECT_HEADER.into(), name.clone()));
            staged_timeout(*size)
        }
        None => SUBMIT_TIMEOUT,
    };
    let reply = request_ingest(bus, headers, payload, timeout).await;
    if let Some((name, _)) = staged
        && let Err(e) = bus.object_delete(names::RAW_OBJECT_STORE, &name).await
    {
        warn!(object = %name, error = %e, "could not remove a staged upload");
    }
    let reply = reply?;
    let payload = match reply.header(OBJECT_HEADER) {
        None => reply.payload,
        // A reply too big for one message (a big file's rejected rows) waits in the store.
        Some(name) => {
            let name = name.to_string();
            let body = bus.object_get(names::RAW_OBJECT_STORE, &name).await?;
            if let Err(e) = bus.object_delete(names::RAW_OBJECT_STORE, &name).await {
                warn!(object = %name, error = %e, "could not remove a reply object");
            }
            body.ok_or_else(|| {
                SubmitError::BadReply(format!("the reply object `{name}` is missing"))
            })?
        }
    };
    match serde_json::from_slice::<Reply>(&payload) {
        Ok(Reply::Ok(release)) => Ok(*release),
        Ok(Reply::Error(body)) => Err(SubmitError::Rejected(body)),
        Err(e) => Err(SubmitError::BadReply(e.to_string())),
    }
}

/// A name for an answer too big for one message (`reply-…`), as unique as an upload's.
pub fn reply_object_name() -> String {
    format!(
        "{REPLY_PREFIX}{}",
        &upload_object_name()[UPLOAD_PREFIX.len()..]
    )
}

/// A name no other upload has: the time, the process and a count within it.
fn upload_object_name() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{UPLOAD_PREFIX}{nanos}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn request_ingest(
    bus: &dyn Transport,
    headers: Headers,
    payload: bytes::Bytes,
    timeout: Duration,
) -> Result<borderwatch_bus::Message, BusError> {
    // An ingest service that is (re)starting has no subscription for a moment: try again
    // briefly before telling the caller nobody serves uploads.
    let give_up = tokio::time::Instant::now() + NO_RESPONDER_GRACE;
    loop {
        match bus
            .request(
                names::INGEST_SUBJECT,
                headers.clone(),
                payload.clone(),
                timeout,
            )
            .await
        {
            Err(BusError::NoResponder { .. }) if tokio::time::Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}
