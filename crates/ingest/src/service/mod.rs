//! The ingest service: file bytes in, durable observations and a release marker out.
//!
//! It serves `bw.ingest.submit` (queue group `ingest`) so that any gateway replica can hand
//! it an upload; an upload too big for one request travels through the object store and the
//! request carries its name. Every accepted file's exact bytes are kept in the object store
//! `bw_raw` before anything is published, so `borderwatch replay` can ingest them again.
//! Only figures that are new or changed against the stream's current values are published,
//! each with a `Nats-Msg-Id`, so the same file twice adds nothing. A changed figure is a
//! revision (announced on `bw.revision.…`, never tested for a surge); a category that earlier
//! releases had and this one leaves out is announced missing (`bw.missing.…`).

mod publish;
mod staged;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use borderwatch_bus::{BusError, Headers, ObjectReader, Transport, names};
use borderwatch_model::{
    ErrorBody, ErrorDetail, RejectedRow, Release, StoredObject, now_rfc3339, sha256_hex, tokenize,
};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::publish::{Applied, Publisher, ReplayOrder, Shape, Shapes, add_to_shapes};
use crate::error::IngestError;
use crate::generic::ReadOptions;

/// Request header naming the input format.
pub const FORMAT_HEADER: &str = "Bw-Format";
/// Request header naming the source when the file does not.
pub const SOURCE_HEADER: &str = "Bw-Source";
/// Request header naming the object (in `bw_raw`) that holds an upload too big for the
/// request itself; the request's payload is then empty.
pub const OBJECT_HEADER: &str = "Bw-Object";

/// Room left in a request for its headers and framing: an upload bigger than the bus's
/// payload limit less this goes through the object store.
const REQUEST_HEADROOM: usize = 64 * 1024;

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

/// The headers and payload of an answer: the body itself, or, when it is bigger than one
/// message carries, the name of an object (`reply-…`) holding it, which `submit` removes.
async fn big_reply(
    bus: &dyn Transport,
    body: Vec<u8>,
) -> Result<(Headers, bytes::Bytes), BusError> {
    if body.len() <= bus.max_payload().saturating_sub(REQUEST_HEADROOM) {
        return Ok((Vec::new(), body.into()));
    }
    let name = format!("reply-{}", &upload_object_name()["upload-".len()..]);
    bus.object_put(names::RAW_OBJECT_STORE, &name, body.into())
        .await?;
    Ok((vec![(OBJECT_HEADER.into(), name)], bytes::Bytes::new()))
}

/// A name no other upload has: the time, the process and a count within it.
fn upload_object_name() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "upload-{nanos}-{}-{}",
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

/// How often ingest sweeps the object store.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// How old a staged upload or answer must be to be swept: far beyond the longest wait for
/// one (two minutes and a second per MiB).
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// Sweeps `bw_raw` at start and then every hour until `cancel` fires: uploads (`upload-…`)
/// and answers (`reply-…`) whose client went away before removing them, and the chunks of
/// writes that failed half-way. Every ingest replica runs it; a second sweep finds nothing.
pub async fn sweep_loop(bus: borderwatch_bus::Bus, cancel: CancellationToken) {
    loop {
        match bus
            .object_sweep(names::RAW_OBJECT_STORE, &["upload-", "reply-"], STALE_AFTER)
            .await
        {
            Ok(swept) if swept.partial > 0 || !swept.objects.is_empty() => info!(
                partial_writes = swept.partial,
                abandoned = swept.objects.len(),
                "swept the object store"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "could not sweep the object store"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}

/// Serves submissions until `cancel` fires.
pub async fn run(bus: borderwatch_bus::Bus, cancel: CancellationToken) -> Result<(), BusError> {
    Server::bind(bus).await?.run(cancel).await
}

/// The ingest service, subscribed and ready to take uploads.
pub struct Server {
    bus: borderwatch_bus::Bus,
    requests: futures::stream::BoxStream<'static, borderwatch_bus::Request>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("bus", &self.bus)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Subscribes to `bw.ingest.submit`; uploads sent after this returns are served.
    pub async fn bind(bus: borderwatch_bus::Bus) -> Result<Server, BusError> {
        let requests = bus
            .serve(names::INGEST_SUBJECT, names::INGEST_QUEUE)
            .await?;
        info!(subject = names::INGEST_SUBJECT, "ingest serving");
        Ok(Server { bus, requests })
    }

    /// Serves submissions until `cancel` fires; the one in progress is finished first.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), BusError> {
        let Server { bus, mut requests } = self;
        serve_loop(bus, &mut requests, cancel).await
    }
}

async fn serve_loop(
    bus: borderwatch_bus::Bus,
    requests: &mut futures::stream::BoxStream<'static, borderwatch_bus::Request>,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    loop {
        let request = tokio::select! {
            _ = cancel.cancelled() => break,
            r = requests.next() => match r { Some(r) => r, None => break },
        };
        // Requests are handled one at a time: the order of releases is the order of files.
        let msg = &request.message;
        let format = msg.header(FORMAT_HEADER).map(str::to_string);
        let source = msg.header(SOURCE_HEADER).map(str::to_string);
        let result = match msg.header(OBJECT_HEADER) {
            None => {
                let bytes = msg.payload.clone();
                ingest(
                    bus.as_ref(),
                    Submission {
                        format,
                        source,
                        bytes,
                    },
                )
                .await
            }
            Some(name) if !name.starts_with("upload-") => Err(IngestError::Internal(format!(
                "the request names object `{name}`, which is not an upload"
            ))),
            Some(name) => {
                let sub = StagedUpload {
                    object: name.to_string(),
                    format,
                    source,
                };
                ingest_object(bus.as_ref(), sub, ReadOptions::default()).await
            }
        };
        let reply = match result {
            Ok(release) => Reply::Ok(Box::new(release)),
            Err(e) => {
                warn!(error = %e, "upload refused");
                Reply::Error(e.to_body())
            }
        };
        let body = serde_json::to_vec(&reply).unwrap_or_default();
        let answer = match big_reply(bus.as_ref(), body).await {
            Ok((headers, body)) => request.respond(headers, body).await,
            Err(e) => Err(e),
        };
        if let Err(e) = answer {
            warn!(error = %e, "could not answer an upload");
        }
    }
    info!("ingest stopped");
    Ok(())
}

impl IngestError {
    /// The JSON error body of DESIGN.md.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.to_string(),
                details: Vec::new(),
            },
        }
    }
}

/// Ingests one file held in memory: parses it, keeps its bytes, publishes what is new, and
/// records the release.
///
/// What a refused file leaves: nothing (it is parsed before anything is stored). What a
/// failure half-way leaves: the bytes in the object store and perhaps some of the
/// observations, but no release record, so the release is not listed and the same file sent
/// again completes it (figures already stored by this release count as its own).
pub async fn ingest(bus: &dyn Transport, sub: Submission) -> Result<Release, IngestError> {
    let sha = sha256_hex(&sub.bytes);
    let key = release_key(&sha, sub.source.as_deref());
    if let Some(mut release) = recorded_release(bus, &key).await? {
        if (release.rejected.len() as u64) < release.rejected_total {
            // The record keeps the first rejected rows only: read the bytes again for all.
            let parsed = parse_blocking(
                &release.format,
                &sub.bytes,
                release.submitted_source.clone(),
            )
            .await?;
            release.rejected = parsed.rejected;
        }
        return Ok(duplicate(release));
    }
    // The format by name, or detected from the content; the record keeps the one used, so
    // that a replay reads the bytes the same way.
    let format = match crate::formats::by_name(sub.format.as_deref().unwrap_or(""))? {
        Some(f) => f.name,
        None => crate::formats::detect(&sub.bytes, None)?.name,
    }
    .to_string();
    let parsed = parse_blocking(&format, &sub.bytes, sub.source.clone()).await?;
    let raw = keep_bytes(bus, &sha, &sub.bytes).await?;

    let release_id = release_id_of(&key);
    let mut shapes = Shapes::new();
    add_to_shapes(&mut shapes, &parsed.observations);
    let mut publisher = Publisher::new(bus, &release_id, None, &shapes);
    publisher.publish(parsed.observations).await?;
    let applied = publisher.finish().await?;
    record_release(
        bus,
        NewRelease {
            key,
            id: release_id,
            format,
            sha,
            bytes: sub.bytes.len() as u64,
            shapes: &shapes,
            rejected: parsed.rejected,
            applied,
            raw,
            submitted_source: sub.source,
        },
    )
    .await
}

/// An upload waiting in the object store (`upload-…` in `bw_raw`), as a request names it.
#[derive(Debug, Clone)]
pub struct StagedUpload {
    pub object: String,
    pub format: Option<String>,
    pub source: Option<String>,
}

/// Ingests an upload staged in the object store.
///
/// A file in the generic format (named, or detected from its first 64 KiB) is read from the
/// store a piece at a time and published a batch at a time, so that neither the file nor
/// its figures are ever held whole: a first pass hashes it and checks every row (a refused
/// file stores nothing, as [`ingest`] promises), its bytes are copied under their hash, and a
/// second pass over the kept copy publishes. Other formats are read whole, as [`ingest`]
/// reads them: spreadsheets and XML need the whole file, and agencies publish them small.
pub async fn ingest_object(
    bus: &dyn Transport,
    sub: StagedUpload,
    read: ReadOptions,
) -> Result<Release, IngestError> {
    let gone = || {
        IngestError::Unavailable(format!(
            "the upload's bytes (object `{}` in `{}`) are gone; send the file again",
            sub.object,
            names::RAW_OBJECT_STORE
        ))
    };
    let streamed = match crate::formats::by_name(sub.format.as_deref().unwrap_or(""))? {
        Some(f) => staged::streams(f.name),
        None => staged::looks_generic(bus, &sub.object).await?,
    };
    if !streamed {
        let bytes = bus
            .object_get(names::RAW_OBJECT_STORE, &sub.object)
            .await?
            .ok_or_else(gone)?;
        return ingest(
            bus,
            Submission {
                format: sub.format,
                source: sub.source,
                bytes,
            },
        )
        .await;
    }
    let staged::Scan {
        sha,
        size,
        parsed,
        shapes,
    } = staged::scan(bus, &sub.object, sub.source.clone(), read)
        .await?
        .ok_or_else(gone)?;
    let parsed = parsed?;
    let key = release_key(&sha, sub.source.as_deref());
    if let Some(mut release) = recorded_release(bus, &key).await? {
        release.rejected = parsed.rejected;
        return Ok(duplicate(release));
    }
    let raw = staged::keep(bus, &sha, &sub.object, size).await?;
    let release_id = release_id_of(&key);
    let mut publisher = Publisher::new(bus, &release_id, None, &shapes);
    let read_again = staged::publish(bus, &raw.name, sub.source.clone(), read, &mut publisher)
        .await?
        .ok_or_else(gone)?;
    if read_again != sha {
        return Err(IngestError::Internal(format!(
            "the bytes kept as `{}` changed while they were read (content hash {read_again}, \
             expected {}); the release is not recorded: send the file again",
            raw.name, sha
        )));
    }
    let applied = publisher.finish().await?;
    record_release(
        bus,
        NewRelease {
            key,
            id: release_id,
            format: crate::generic::FORMAT.name.to_string(),
            sha,
            bytes: size,
            shapes: &shapes,
            rejected: parsed.rejected,
            applied,
            raw,
            submitted_source: sub.source,
        },
    )
    .await
}

/// A release recorded before, answered again: nothing new.
fn duplicate(mut release: Release) -> Release {
    release.duplicate = true;
    release.new_observations = 0;
    info!(release = %release.id, "same bytes as an earlier release: nothing to add");
    release
}

/// What a new release is made of.
struct NewRelease<'a> {
    key: String,
    id: String,
    format: String,
    sha: String,
    bytes: u64,
    shapes: &'a Shapes,
    rejected: Vec<RejectedRow>,
    applied: Applied,
    raw: StoredObject,
    submitted_source: Option<String>,
}

/// Writes the release record, once everything the release published is stored.
async fn record_release(bus: &dyn Transport, new: NewRelease<'_>) -> Result<Release, IngestError> {
    let shapes = new.shapes;
    let release = Release {
        id: new.id,
        source: match shapes.len() {
            1 => shapes.keys().next().cloned().unwrap_or_default(),
            0 => new.submitted_source.clone().unwrap_or_default(),
            _ => "mixed".into(),
        },
        format: new.format,
        content_sha256: new.sha,
        bytes: new.bytes,
        accepted: shapes.values().map(|s| s.accepted).sum(),
        rejected_total: new.rejected.len() as u64,
        rejected: new.rejected,
        new_observations: new.applied.published,
        first_period: shapes.values().filter_map(Shape::first_period).min(),
        last_period: shapes.values().filter_map(Shape::last_period).max(),
        duplicate: false,
        analyses: new.applied.analyses,
        received_at: now_rfc3339(),
        received_at_ms: unix_ms(),
        raw: Some(new.raw),
        submitted_source: new.submitted_source,
        revisions: new.applied.revisions,
        missing: new.applied.missing,
    };
    // Written last: a release is listed only once everything it published is stored. The
    // record stays far below a message's size: a long list of rejected rows is cut short.
    let mut record = release.clone();
    record.rejected.truncate(REJECTED_KEPT_IN_RECORD);
    bus.kv_put(
        names::RELEASES_BUCKET,
        &new.key,
        serde_json::to_vec(&record).unwrap_or_default().into(),
    )
    .await?;
    info!(
        release = %release.id,
        source = %release.source,
        accepted = release.accepted,
        rejected = release.rejected.len(),
        new = release.new_observations,
        revisions = release.revisions,
        missing = release.missing.len(),
        "release ingested"
    );
    metrics::counter!("borderwatch_rows_ingested_total").increment(release.accepted);
    metrics::counter!("borderwatch_releases_total").increment(1);
    Ok(release)
}

/// Rejected rows kept in a stored release record (each row is at most a few hundred bytes).
const REJECTED_KEPT_IN_RECORD: usize = 1_000;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A release is its bytes and the source named with them: the same file sent for two
/// sources (a file without a source column) is two releases. Key: the content hash, then
/// `.source` when one was named.
fn release_key(sha: &str, source: Option<&str>) -> String {
    match source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(source) => format!(
            "{sha}.{}",
            tokenize(source).unwrap_or_else(|| sha256_hex(source.as_bytes()))
        ),
        None => sha.to_string(),
    }
}

/// `rel-` and 16 hex digits: of the content hash alone, or of the key when a source was named.
fn release_id_of(key: &str) -> String {
    if key.len() == 64 {
        format!("rel-{}", &key[..16])
    } else {
        format!("rel-{}", &sha256_hex(key.as_bytes())[..16])
    }
}

async fn recorded_release(bus: &dyn Transport, sha: &str) -> Result<Option<Release>, BusError> {
    Ok(bus
        .kv_get(names::RELEASES_BUCKET, sha)
        .await?
        .and_then(|stored| serde_json::from_slice::<Release>(&stored).ok()))
}

async fn parse_blocking(
    format: &str,
    bytes: &bytes::Bytes,
    default_source: Option<String>,
) -> Result<crate::Parsed, IngestError> {
    let (format, bytes) = (format.to_string(), bytes.clone());
    tokio::task::spawn_blocking(move || crate::parse(&format, &bytes, default_source.as_deref()))
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))?
}

/// Keeps the exact bytes under their hash (once: the same bytes are not written again).
async fn keep_bytes(
    bus: &dyn Transport,
    sha: &str,
    bytes: &bytes::Bytes,
) -> Result<StoredObject, BusError> {
    let name = names::raw_object_name(sha);
    let kept = bus.object_info(names::RAW_OBJECT_STORE, &name).await?;
    if kept.is_none_or(|info| info.size != bytes.len() as u64) {
        bus.object_put(names::RAW_OBJECT_STORE, &name, bytes.clone())
            .await?;
    }
    Ok(StoredObject {
        store: names::RAW_OBJECT_STORE.to_string(),
        name,
    })
}

/// Why `borderwatch replay` could not replay a release.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no release `{0}`: `GET /v1/…` answers and `import` print release ids (rel-…)")]
    NotFound(String),
    #[error(
        "release `{0}` was ingested before releases kept their bytes: there is nothing to replay"
    )]
    NoBytes(String),
    #[error("the bytes of release `{release}` (object `{object}` in `{store}`) are missing")]
    BytesMissing {
        release: String,
        store: String,
        object: String,
    },
    #[error(
        "the bytes kept for release `{release}` do not match its content hash (expected {expected}, found {found}): they were changed; nothing was replayed"
    )]
    BytesChanged {
        release: String,
        expected: String,
        found: String,
    },
    #[error("release `{release}` no longer parses: {source}")]
    Ingest {
        release: String,
        source: IngestError,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    pub release_id: String,
    /// Figures of the release the stream had lost, published again.
    pub restored: u64,
    /// Figures a later release has changed since: left as they are.
    pub superseded: u64,
    /// Figures of the release in all.
    pub accepted: u64,
}

/// Every release record, oldest first.
pub async fn releases(bus: &dyn Transport) -> Result<Vec<Release>, BusError> {
    let mut out = Vec::new();
    for key in bus.kv_keys(names::RELEASES_BUCKET).await? {
        if let Some(raw) = bus.kv_get(names::RELEASES_BUCKET, &key).await?
            && let Ok(release) = serde_json::from_slice::<Release>(&raw)
        {
            out.push(release);
        }
    }
    out.sort_by(|a, b| {
        (&a.received_at, a.received_at_ms, &a.id).cmp(&(&b.received_at, b.received_at_ms, &b.id))
    });
    Ok(out)
}

/// Ingests a release's kept bytes again, with its recorded format and source.
///
/// On an intact system it adds nothing. Figures the stream lost (a recreated `BW_OBS`) are
/// published again; figures a later release revised are left as they are. A replay only
/// restores: it announces no revision, missing category or marker again, and the release
/// record stays as it was. Generic files are read a piece at a time, as [`ingest_object`]
/// reads them: first checked whole against their content hash, then published.
pub async fn replay(bus: &dyn Transport, release_id: &str) -> Result<ReplayReport, ReplayError> {
    let all = releases(bus).await?;
    let release = all
        .iter()
        .find(|r| r.id == release_id)
        .cloned()
        .ok_or_else(|| ReplayError::NotFound(release_id.to_string()))?;
    let raw = release
        .raw
        .clone()
        .ok_or_else(|| ReplayError::NoBytes(release.id.clone()))?;
    let missing = || ReplayError::BytesMissing {
        release: release.id.clone(),
        store: raw.store.clone(),
        object: raw.name.clone(),
    };
    let changed = |found: String| ReplayError::BytesChanged {
        release: release.id.clone(),
        expected: release.content_sha256.clone(),
        found,
    };
    let unreadable = |source: IngestError| ReplayError::Ingest {
        release: release.id.clone(),
        source,
    };
    let default_source = release.submitted_source.clone().or_else(|| {
        (release.source != "mixed" && !release.source.is_empty()).then(|| release.source.clone())
    });
    let order = ReplayOrder {
        received_at: all
            .iter()
            .map(|r| (r.id.clone(), (r.received_at.clone(), r.received_at_ms)))
            .collect(),
    };
    let no_shapes = Shapes::new();
    let mut publisher = Publisher::new(bus, &release.id, Some(&order), &no_shapes);
    let accepted = if raw.store == names::RAW_OBJECT_STORE && staged::streams(&release.format) {
        let read = ReadOptions::default();
        let scan = staged::scan(bus, &raw.name, default_source.clone(), read)
            .await
            .map_err(unreadable)?
            .ok_or_else(missing)?;
        if scan.sha != release.content_sha256 {
            return Err(changed(scan.sha));
        }
        scan.parsed.map_err(unreadable)?;
        let again = staged::publish(bus, &raw.name, default_source, read, &mut publisher)
            .await
            .map_err(unreadable)?
            .ok_or_else(missing)?;
        if again != release.content_sha256 {
            return Err(changed(again));
        }
        scan.shapes.values().map(|s| s.accepted).sum()
    } else {
        let bytes = bus
            .object_get(&raw.store, &raw.name)
            .await?
            .ok_or_else(missing)?;
        let found = sha256_hex(&bytes);
        if found != release.content_sha256 {
            return Err(changed(found));
        }
        let parsed = parse_blocking(&release.format, &bytes, default_source)
            .await
            .map_err(unreadable)?;
        let accepted = parsed.observations.len() as u64;
        publisher.publish(parsed.observations).await?;
        accepted
    };
    let applied = publisher.finish().await?;
    let report = ReplayReport {
        release_id: release.id.clone(),
        restored: applied.published,
        superseded: applied.superseded,
        accepted,
    };
    info!(release = %report.release_id, restored = report.restored, superseded = report.superseded, "release replayed");
    Ok(report)
}

impl From<BusError> for IngestError {
    fn from(e: BusError) -> IngestError {
        IngestError::Unavailable(e.to_string())
    }
}
