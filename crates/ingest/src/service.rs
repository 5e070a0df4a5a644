//! The ingest service: file bytes in, durable observations and a release marker out.
//!
//! It serves `bw.ingest.submit` (queue group `ingest`) so that any gateway replica can hand
//! it an upload. Only figures that are new or changed against the stream's current values
//! are published, each with a `Nats-Msg-Id`, so the same file twice adds nothing.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use borderwatch_bus::{BusError, Headers, Outgoing, Transport, names};
use borderwatch_model::{
    ErrorBody, ErrorDetail, Observation, Period, Release, ReleaseMarker, SeriesChange, now_rfc3339,
    sha256_hex,
};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::IngestError;

/// Request header naming the input format.
pub const FORMAT_HEADER: &str = "Bw-Format";
/// Request header naming the source when the file does not.
pub const SOURCE_HEADER: &str = "Bw-Source";

/// How long a gateway waits for the ingest service to answer.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(120);

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
    Ok(Release),
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
}

/// Sends an upload to whichever ingest service is serving, and waits for its release.
pub async fn submit(bus: &dyn Transport, sub: Submission) -> Result<Release, SubmitError> {
    let mut headers: Headers = Vec::new();
    if let Some(f) = sub.format {
        headers.push((FORMAT_HEADER.into(), f));
    }
    if let Some(s) = sub.source {
        headers.push((SOURCE_HEADER.into(), s));
    }
    // An ingest service that is (re)starting has no subscription for a moment: try again
    // briefly before telling the caller nobody serves uploads.
    let give_up = tokio::time::Instant::now() + NO_RESPONDER_GRACE;
    let reply = loop {
        match bus
            .request(
                names::INGEST_SUBJECT,
                headers.clone(),
                sub.bytes.clone(),
                SUBMIT_TIMEOUT,
            )
            .await
        {
            Err(BusError::NoResponder { .. }) if tokio::time::Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other?,
        }
    };
    match serde_json::from_slice::<Reply>(&reply.payload) {
        Ok(Reply::Ok(release)) => Ok(release),
        Ok(Reply::Error(body)) => Err(SubmitError::Rejected(body)),
        Err(e) => Err(SubmitError::BadReply(e.to_string())),
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
        let sub = Submission {
            format: msg.header(FORMAT_HEADER).map(str::to_string),
            source: msg.header(SOURCE_HEADER).map(str::to_string),
            bytes: msg.payload.clone(),
        };
        let reply = match ingest(bus.as_ref(), sub).await {
            Ok(release) => Reply::Ok(release),
            Err(e) => {
                warn!(error = %e, "upload refused");
                Reply::Error(e.to_body())
            }
        };
        let body = serde_json::to_vec(&reply).unwrap_or_default();
        if let Err(e) = request.respond(Vec::new(), body).await {
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

/// Ingests one file: parses it, publishes what is new, and records the release.
pub async fn ingest(bus: &dyn Transport, sub: Submission) -> Result<Release, IngestError> {
    let sha = sha256_hex(&sub.bytes);
    if let Some(stored) = bus.kv_get(names::RELEASES_BUCKET, &sha).await?
        && let Ok(mut release) = serde_json::from_slice::<Release>(&stored)
    {
        release.duplicate = true;
        release.new_observations = 0;
        info!(release = %release.id, "same bytes as an earlier release: nothing to add");
        return Ok(release);
    }
    let format = sub.format.clone().unwrap_or_else(|| "generic".to_string());
    let bytes = sub.bytes.clone();
    let default_source = sub.source.clone();
    let parse_format = format.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        crate::parse(&parse_format, &bytes, default_source.as_deref())
    })
    .await
    .map_err(|e| IngestError::Internal(e.to_string()))??;

    let release_id = format!("rel-{}", &sha[..16]);
    let mut by_source: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
    for mut obs in parsed.observations {
        obs.release_id = release_id.clone();
        by_source.entry(obs.source.clone()).or_default().push(obs);
    }
    let mut new_observations = 0u64;
    let mut analyses = Vec::new();
    for (source, observations) in &by_source {
        let current = current_values(bus, source).await?;
        let changed: Vec<&Observation> = observations
            .iter()
            .filter(|o| {
                let subject = subject_of(o);
                current.get(&subject) != Some(&o.count)
            })
            .collect();
        if changed.is_empty() {
            continue;
        }
        let msgs = changed
            .iter()
            .map(|o| {
                let payload = serde_json::to_vec(o).unwrap_or_default();
                Outgoing::new(subject_of(o), payload).with_id(format!(
                    "{}:{}",
                    subject_of(o),
                    o.count
                ))
            })
            .collect();
        bus.publish_all(msgs).await?;
        new_observations += changed.len() as u64;
        // Markers in parts of bounded size: each stays far below NATS's 1 MiB message limit
        // and is a unit of work another analytics replica can take.
        let chunks = chunk_changes(changes_of(&changed));
        let parts = chunks.len() as u32;
        for (part, changes) in chunks.into_iter().enumerate() {
            let part = part as u32;
            let marker = ReleaseMarker {
                release_id: release_id.clone(),
                source: source.clone(),
                part,
                parts,
                changes,
            };
            bus.publish(
                Outgoing::new(
                    names::release_subject(source),
                    serde_json::to_vec(&marker).unwrap_or_default(),
                )
                .with_id(format!("{release_id}:{source}:{part}")),
            )
            .await?;
            analyses.push(names::analyzed_key(&release_id, source, part));
        }
    }
    let periods = by_source.values().flatten().map(|o| o.period);
    let release = Release {
        id: release_id,
        source: match by_source.len() {
            1 => by_source.keys().next().cloned().unwrap_or_default(),
            0 => sub.source.unwrap_or_default(),
            _ => "mixed".into(),
        },
        format,
        content_sha256: sha.clone(),
        bytes: sub.bytes.len() as u64,
        accepted: by_source.values().map(|v| v.len() as u64).sum(),
        rejected: parsed.rejected,
        new_observations,
        first_period: periods.clone().min(),
        last_period: periods.max(),
        duplicate: false,
        analyses,
        received_at: now_rfc3339(),
    };
    bus.kv_put(
        names::RELEASES_BUCKET,
        &sha,
        serde_json::to_vec(&release).unwrap_or_default().into(),
    )
    .await?;
    info!(
        release = %release.id,
        source = %release.source,
        accepted = release.accepted,
        rejected = release.rejected.len(),
        new = release.new_observations,
        "release ingested"
    );
    metrics::counter!("borderwatch_rows_ingested_total").increment(release.accepted);
    metrics::counter!("borderwatch_releases_total").increment(1);
    Ok(release)
}

fn subject_of(o: &Observation) -> String {
    names::obs_subject(
        &o.source,
        o.country.code(),
        &o.category,
        &o.period.to_string(),
    )
}

/// The current figure of every period the stream holds for `source`, by subject.
async fn current_values(
    bus: &dyn Transport,
    source: &str,
) -> Result<HashMap<String, u64>, BusError> {
    let msgs = bus
        .last_per_subject(names::OBS_STREAM, &[&names::obs_filter_for_source(source)])
        .await?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| {
            let o: Observation = serde_json::from_slice(&m.payload).ok()?;
            Some((m.subject, o.count))
        })
        .collect())
}

/// Series per release marker part.
const SERIES_PER_PART: usize = 500;

fn chunk_changes(changes: Vec<SeriesChange>) -> Vec<Vec<SeriesChange>> {
    let mut parts = Vec::new();
    let mut changes = changes.into_iter().peekable();
    while changes.peek().is_some() {
        parts.push(changes.by_ref().take(SERIES_PER_PART).collect());
    }
    parts
}

fn changes_of(changed: &[&Observation]) -> Vec<SeriesChange> {
    let mut by_series: BTreeMap<(String, String), (borderwatch_model::Country, Vec<Period>)> =
        BTreeMap::new();
    for o in changed {
        by_series
            .entry((o.country.code().to_string(), o.category.clone()))
            .or_insert_with(|| (o.country, Vec::new()))
            .1
            .push(o.period);
    }
    by_series
        .into_iter()
        .map(|((_, category), (country, mut periods))| {
            periods.sort();
            SeriesChange {
                country,
                category,
                periods,
            }
        })
        .collect()
}

impl From<BusError> for IngestError {
    fn from(e: BusError) -> IngestError {
        IngestError::Unavailable(e.to_string())
    }
}
