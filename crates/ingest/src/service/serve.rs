//! Serving `bw.ingest.submit`: the request loop that hands each upload to a task of its own
//! (ingest it, answer with the release or the error), and the hourly sweep of what clients
//! left in the object store.

use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{BusError, Headers, Transport, names};
use borderwatch_ingest_client::{
    FORMAT_HEADER, OBJECT_HEADER, REPLY_PREFIX, REQUEST_HEADROOM, Reply, SOURCE_HEADER, Submission,
    UPLOAD_PREFIX, reply_object_name,
};
use borderwatch_model::{ErrorBody, ErrorDetail};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ingest::{StagedUpload, ingest, ingest_object};
use crate::error::IngestError;
use crate::generic::ReadOptions;

/// The headers and payload of an answer: the body itself, or, when it is bigger than one
/// message carries, the name of an object (`reply-…`) holding it, which `submit` removes.
async fn big_reply(
    bus: &dyn Transport,
    body: Vec<u8>,
) -> Result<(Headers, bytes::Bytes), BusError> {
    if body.len() <= bus.max_payload().saturating_sub(REQUEST_HEADROOM) {
        return Ok((Vec::new(), body.into()));
    }
    let name = reply_object_name();
    bus.object_put(names::RAW_OBJECT_STORE, &name, body.into())
        .await?;
    Ok((vec![(OBJECT_HEADER.into(), name)], bytes::Bytes::new()))
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
            .object_sweep(
                names::RAW_OBJECT_STORE,
                &[UPLOAD_PREFIX, REPLY_PREFIX],
                STALE_AFTER,
            )
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

    /// Serves submissions until `cancel` fires; those in progress are finished first.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), BusError> {
        let Server { bus, mut requests } = self;
        serve_loop(bus, &mut requests, cancel).await
    }
}

/// Uploads one ingest process handles at once. Each holds its file (a request's payload, or
/// a native file read whole from the store: up to the gateway's upload limit), so this bounds
/// memory; files are read on at most as many threads as the `budget` module allows, and the
/// rest wait their turn there or for their source (`locks.rs`). A request beyond this is
/// left on the bus, for this process once a slot frees or for another replica.
pub const MAX_UPLOADS_IN_FLIGHT: usize = 16;

/// Takes requests while a slot is free and handles each in a task of its own, so that a slow
/// file (up to its parse deadline) does not hold up the uploads behind it.
///
/// What stays ordered: the part of an upload that reads and writes what the stream holds
/// (revisions, missing categories, duplicate detection by content hash, markers, the release
/// record) runs for one source at a time and one content hash at a time (`locks.rs`), so
/// every release is built against the releases stored before it, exactly as if the uploads
/// had come one after another. Which of two uploads of the same source that are in flight at
/// once goes first is the order in which their reading finishes (then the order they asked
/// for their turn); a sender that needs one file applied before the next waits for the first
/// answer, as the source poller does with a directory's files. The turns hold within this
/// process only: ingest replicas serve side by side (docs/releases.md, "Uploads side by
/// side").
async fn serve_loop(
    bus: borderwatch_bus::Bus,
    requests: &mut futures::stream::BoxStream<'static, borderwatch_bus::Request>,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let slots = Arc::new(Semaphore::new(MAX_UPLOADS_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = cancel.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot { Ok(s) => s, Err(_) => break },
        };
        let request = tokio::select! {
            _ = cancel.cancelled() => break,
            r = requests.next() => match r { Some(r) => r, None => break },
        };
        let bus = bus.clone();
        tasks.spawn(async move {
            let _slot = slot;
            handle(bus, request).await;
        });
        while let Some(done) = tasks.try_join_next() {
            reap(done);
        }
    }
    // Uploads in flight are finished and answered before the service stops.
    while let Some(done) = tasks.join_next().await {
        reap(done);
    }
    info!("ingest stopped");
    Ok(())
}

fn reap(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        warn!(error = %e, "an upload's task failed; its sender gets no answer and may send it again");
    }
}

/// Ingests one upload and answers it.
async fn handle(bus: borderwatch_bus::Bus, request: borderwatch_bus::Request) {
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
        Some(name) if !name.starts_with(UPLOAD_PREFIX) => Err(IngestError::Internal(format!(
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

impl IngestError {
    /// The JSON error body every API error has (docs/design.md, "Interfaces").
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.to_string(),
                details: match self {
                    IngestError::NothingAccepted { rejected, .. } => rejected
                        .iter()
                        .filter_map(|r| serde_json::to_value(r).ok())
                        .collect(),
                    _ => Vec::new(),
                },
            },
        }
    }
}
