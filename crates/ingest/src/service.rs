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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use borderwatch_bus::{BusError, Headers, Outgoing, Transport, names};
use borderwatch_model::{
    Country, ErrorBody, ErrorDetail, Freq, MissingCategory, Observation, Period, Release,
    ReleaseMarker, Revision, SeriesChange, StoredObject, now_rfc3339, sha256_hex, tokenize,
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
/// Request header naming the object (in `bw_raw`) that holds an upload too big for the
/// request itself; the request's payload is then empty.
pub const OBJECT_HEADER: &str = "Bw-Object";

/// Room left in a request for its headers and framing: an upload bigger than the bus's
/// payload limit less this goes through the object store.
const REQUEST_HEADROOM: usize = 64 * 1024;

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
}

/// Sends an upload to whichever ingest service is serving, and waits for its release.
///
/// An upload bigger than the bus carries in one request (NATS: 1 MiB by default) is put in
/// the object store first (`upload-…` in `bw_raw`) and the request names it; the object is
/// removed once ingest has answered (ingest keeps accepted bytes under their hash).
pub async fn submit(bus: &dyn Transport, sub: Submission) -> Result<Release, SubmitError> {
    let mut headers: Headers = Vec::new();
    if let Some(f) = sub.format {
        headers.push((FORMAT_HEADER.into(), f));
    }
    if let Some(s) = sub.source {
        headers.push((SOURCE_HEADER.into(), s));
    }
    let limit = bus.max_payload().saturating_sub(REQUEST_HEADROOM);
    let (payload, staged) = if sub.bytes.len() > limit {
        let name = upload_object_name(&sub.bytes);
        bus.object_put(names::RAW_OBJECT_STORE, &name, sub.bytes.clone())
            .await?;
        headers.push((OBJECT_HEADER.into(), name.clone()));
        (bytes::Bytes::new(), Some(name))
    } else {
        (sub.bytes.clone(), None)
    };
    let reply = request_ingest(bus, headers, payload).await;
    if let Some(name) = staged
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
    let name = format!("reply-{}", &upload_object_name(&body)["upload-".len()..]);
    bus.object_put(names::RAW_OBJECT_STORE, &name, body.into())
        .await?;
    Ok((vec![(OBJECT_HEADER.into(), name)], bytes::Bytes::new()))
}

/// A name no other upload has: the content hash, the time and the process.
fn upload_object_name(bytes: &[u8]) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "upload-{}-{nanos}-{}",
        &sha256_hex(bytes)[..32],
        std::process::id()
    )
}

async fn request_ingest(
    bus: &dyn Transport,
    headers: Headers,
    payload: bytes::Bytes,
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
                SUBMIT_TIMEOUT,
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
        let result = match upload_bytes(bus.as_ref(), msg).await {
            Ok(bytes) => {
                let sub = Submission {
                    format: msg.header(FORMAT_HEADER).map(str::to_string),
                    source: msg.header(SOURCE_HEADER).map(str::to_string),
                    bytes,
                };
                ingest(bus.as_ref(), sub).await
            }
            Err(e) => Err(e),
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

/// The upload's bytes: the request's payload, or the object it names.
async fn upload_bytes(
    bus: &dyn Transport,
    msg: &borderwatch_bus::Message,
) -> Result<bytes::Bytes, IngestError> {
    let Some(name) = msg.header(OBJECT_HEADER) else {
        return Ok(msg.payload.clone());
    };
    if !name.starts_with("upload-") {
        return Err(IngestError::Internal(format!(
            "the request names object `{name}`, which is not an upload"
        )));
    }
    bus.object_get(names::RAW_OBJECT_STORE, name)
        .await?
        .ok_or_else(|| {
            IngestError::Unavailable(format!(
                "the upload's bytes (object `{name}` in `{}`) are gone; send the file again",
                names::RAW_OBJECT_STORE
            ))
        })
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

/// Ingests one file: parses it, keeps its bytes, publishes what is new, and records the
/// release.
///
/// What a refused file leaves: nothing (it is parsed before anything is stored). What a
/// failure half-way leaves: the bytes in the object store and perhaps some of the
/// observations, but no release record, so the release is not listed and the same file sent
/// again completes it (figures already stored by this release count as its own).
pub async fn ingest(bus: &dyn Transport, sub: Submission) -> Result<Release, IngestError> {
    let sha = sha256_hex(&sub.bytes);
    let key = release_key(&sha, sub.source.as_deref());
    if let Some(mut release) = recorded_release(bus, &key).await? {
        release.duplicate = true;
        release.new_observations = 0;
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
        info!(release = %release.id, "same bytes as an earlier release: nothing to add");
        return Ok(release);
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
    let by_source = by_source(parsed.observations, &release_id);
    let mut applied = Applied::default();
    for (source, observations) in &by_source {
        apply_source(bus, &release_id, source, observations, None, &mut applied).await?;
    }
    let periods = by_source.values().flatten().map(|o| o.period);
    let release = Release {
        id: release_id,
        source: match by_source.len() {
            1 => by_source.keys().next().cloned().unwrap_or_default(),
            0 => sub.source.clone().unwrap_or_default(),
            _ => "mixed".into(),
        },
        format,
        content_sha256: sha.clone(),
        bytes: sub.bytes.len() as u64,
        accepted: by_source.values().map(|v| v.len() as u64).sum(),
        rejected_total: parsed.rejected.len() as u64,
        rejected: parsed.rejected,
        new_observations: applied.published,
        first_period: periods.clone().min(),
        last_period: periods.max(),
        duplicate: false,
        analyses: applied.analyses,
        received_at: now_rfc3339(),
        received_at_ms: unix_ms(),
        raw: Some(raw),
        submitted_source: sub.source,
        revisions: applied.revisions,
        missing: applied.missing,
    };
    // Written last: a release is listed only once everything it published is stored. The
    // record stays far below a message's size: a long list of rejected rows is cut short.
    let mut record = release.clone();
    record.rejected.truncate(REJECTED_KEPT_IN_RECORD);
    bus.kv_put(
        names::RELEASES_BUCKET,
        &key,
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

fn by_source(
    observations: Vec<Observation>,
    release_id: &str,
) -> BTreeMap<String, Vec<Observation>> {
    let mut by_source: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
    for mut obs in observations {
        obs.release_id = release_id.to_string();
        by_source.entry(obs.source.clone()).or_default().push(obs);
    }
    by_source
}

/// What publishing a release (or replaying one) did.
#[derive(Debug, Default)]
struct Applied {
    published: u64,
    revisions: u64,
    superseded: u64,
    analyses: Vec<String>,
    missing: Vec<MissingCategory>,
}

/// How a figure of a release relates to what the stream holds.
enum Change {
    /// The period is new to the series.
    New,
    /// The period was known with another figure.
    Revised(Revision),
}

/// Publishes one source's part of a release: the revisions and missing categories, then
/// its new and changed figures, then the markers. With `replay` (the received time of every
/// release, by id), it restores only figures the stream lost, announces nothing and
/// publishes no marker.
async fn apply_source(
    bus: &dyn Transport,
    release_id: &str,
    source: &str,
    observations: &[Observation],
    replay: Option<&ReplayOrder>,
    applied: &mut Applied,
) -> Result<(), BusError> {
    let current = current_values(bus, source).await?;
    // Figures an earlier, interrupted attempt at this same release stored are still its
    // own: new, or the revisions that attempt announced (announcements go first).
    let earlier_attempt = replay.is_none() && current.values().any(|o| o.release_id == release_id);
    let announced = if earlier_attempt {
        announced_revisions(bus, source, release_id).await?
    } else {
        HashMap::new()
    };
    let mut changed: Vec<(&Observation, Change)> = Vec::new();
    for o in observations {
        let change = match current.get(&subject_of(o)) {
            None => Change::New,
            Some(c) if c.release_id == release_id && replay.is_none() => {
                match announced.get(&(o.country, o.category.clone(), o.period)) {
                    Some(r) => Change::Revised(r.clone()),
                    None => Change::New,
                }
            }
            Some(c) if c.count == o.count => continue,
            Some(c) => match replay {
                Some(order) if order.is_later(&c.release_id, release_id) => {
                    applied.superseded += 1;
                    continue;
                }
                _ => Change::Revised(Revision {
                    source: source.to_string(),
                    country: o.country,
                    category: o.category.clone(),
                    period: o.period,
                    old_count: c.count,
                    new_count: o.count,
                    old_release_id: c.release_id.clone(),
                    release_id: release_id.to_string(),
                }),
            },
        };
        changed.push((o, change));
    }
    if replay.is_none() {
        // Announcements first: a failure after them leaves no release record, and the same
        // file sent again finds the same revisions and absences (and publishes them under
        // the same message ids), whereas figures stored first would hide them from a retry.
        let revisions: Vec<Outgoing> = changed
            .iter()
            .filter_map(|(_, change)| match change {
                Change::Revised(r) => Some(
                    Outgoing::new(
                        names::revision_subject(&r.source, r.country.code(), &r.category),
                        serde_json::to_vec(r).unwrap_or_default(),
                    )
                    .with_id(format!(
                        "{}:{}:{}:{}",
                        r.release_id,
                        r.country.code(),
                        r.category,
                        r.period
                    )),
                ),
                Change::New => None,
            })
            .collect();
        applied.revisions += revisions.len() as u64;
        if !revisions.is_empty() {
            bus.publish_all(revisions).await?;
        }
        let missing = missing_categories(release_id, source, observations, &current);
        if !missing.is_empty() {
            let msgs = missing
                .iter()
                .map(|m| {
                    Outgoing::new(
                        names::missing_subject(&m.source, &m.category),
                        serde_json::to_vec(m).unwrap_or_default(),
                    )
                    .with_id(format!(
                        "{}:{}:{}:{}",
                        m.release_id, m.source, m.category, m.last_period
                    ))
                })
                .collect();
            bus.publish_all(msgs).await?;
        }
        applied.missing.extend(missing);
    }
    if !changed.is_empty() {
        let msgs = changed
            .iter()
            .map(|(o, _)| {
                let payload = serde_json::to_vec(o).unwrap_or_default();
                let msg = Outgoing::new(subject_of(o), payload);
                match replay {
                    // A lost figure must be stored again even if the stream still remembers
                    // its message id (a purge keeps the duplicate window).
                    Some(_) => msg,
                    None => msg.with_id(format!("{}:{}", subject_of(o), o.count)),
                }
            })
            .collect();
        bus.publish_all(msgs).await?;
        applied.published += changed.len() as u64;
    }
    if replay.is_some() {
        return Ok(());
    }
    if changed.is_empty() {
        return Ok(());
    }
    // Markers in parts of bounded size: each stays far below NATS's 1 MiB message limit
    // and is a unit of work another analytics replica can take.
    let chunks = chunk_changes(changes_of(&changed));
    let parts = chunks.len() as u32;
    for (part, changes) in chunks.into_iter().enumerate() {
        let part = part as u32;
        let marker = ReleaseMarker {
            release_id: release_id.to_string(),
            source: source.to_string(),
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
        applied
            .analyses
            .push(names::analyzed_key(release_id, source, part));
    }
    Ok(())
}

/// How long a read of stored messages waits for the next one before giving up.
const STORED_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The revisions `release_id` announced for `source`, by (country, category, period): read
/// only when retrying a release whose earlier attempt failed half-way.
async fn announced_revisions(
    bus: &dyn Transport,
    source: &str,
    release_id: &str,
) -> Result<HashMap<(Country, String, Period), Revision>, BusError> {
    let mut out = HashMap::new();
    let last = bus.last_seq(names::REVISION_STREAM).await?;
    if last == 0 {
        return Ok(out);
    }
    // Unfiltered, so that the message at the last sequence comes and ends the read.
    let mut stored = bus
        .replay(names::REVISION_STREAM, "bw.revision.>", 1)
        .await?;
    let prefix = format!("bw.revision.{source}.");
    loop {
        let next = tokio::time::timeout(STORED_READ_TIMEOUT, stored.next()).await;
        let Ok(Some(msg)) = next else {
            return Err(BusError::Timeout {
                subject: names::REVISION_STREAM.to_string(),
                timeout: STORED_READ_TIMEOUT,
            });
        };
        let msg = msg?;
        if msg.subject.starts_with(&prefix)
            && let Ok(r) = serde_json::from_slice::<Revision>(&msg.payload)
            && r.release_id == release_id
        {
            out.insert((r.country, r.category.clone(), r.period), r);
        }
        if msg.seq >= last {
            break;
        }
    }
    Ok(out)
}

/// Categories the stream has for a country of this release, up to the period just before
/// the release's first period of that country or later, that the release leaves out while
/// it brings periods of that country (same frequency) that are later than the category's last
/// and new to the country. A category that stopped before the release's periods, or whose
/// absence an earlier release already showed (its periods are not new), is not announced
/// again.
fn missing_categories(
    release_id: &str,
    source: &str,
    observations: &[Observation],
    current: &HashMap<String, Observation>,
) -> Vec<MissingCategory> {
    // (country, freq) → (first period, last period, categories) in the release.
    let mut covered: HashMap<(Country, Freq), (Period, Period, BTreeSet<&str>)> = HashMap::new();
    for o in observations {
        let entry = covered.entry((o.country, o.period.freq())).or_insert((
            o.period,
            o.period,
            BTreeSet::new(),
        ));
        entry.0 = entry.0.min(o.period);
        entry.1 = entry.1.max(o.period);
        entry.2.insert(o.category.as_str());
    }
    // (country, freq) → periods the stream has for any category of that country.
    // Figures an interrupted attempt at this same release stored are not history.
    let history = || current.values().filter(|o| o.release_id != release_id);
    let mut known: HashMap<(Country, Freq), BTreeSet<Period>> = HashMap::new();
    for o in history() {
        known
            .entry((o.country, o.period.freq()))
            .or_default()
            .insert(o.period);
    }
    // (country, freq) → the latest period of the release new to that country.
    let mut newest: HashMap<(Country, Freq), Period> = HashMap::new();
    for o in observations {
        let key = (o.country, o.period.freq());
        if known.get(&key).is_some_and(|k| k.contains(&o.period)) {
            continue;
        }
        let entry = newest.entry(key).or_insert(o.period);
        *entry = (*entry).max(o.period);
    }
    // (country, freq, category) → last period the stream has.
    let mut last_seen: BTreeMap<(Country, Freq, &str), Period> = BTreeMap::new();
    for o in history() {
        let entry = last_seen
            .entry((o.country, o.period.freq(), o.category.as_str()))
            .or_insert(o.period);
        *entry = (*entry).max(o.period);
    }
    // (category, last period seen) → countries and the release's periods of them.
    let mut grouped: BTreeMap<(String, Period), (Vec<Country>, Period, Period)> = BTreeMap::new();
    for ((country, freq, category), last) in last_seen {
        let Some((first, release_last, categories)) = covered.get(&(country, freq)) else {
            continue;
        };
        let brings_later = newest
            .get(&(country, freq))
            .is_some_and(|&newest| newest > last);
        if categories.contains(category) || !brings_later || last < first.offset(-1) {
            continue;
        }
        let entry = grouped.entry((category.to_string(), last)).or_insert((
            Vec::new(),
            *first,
            *release_last,
        ));
        entry.0.push(country);
        entry.1 = entry.1.min(*first);
        entry.2 = entry.2.max(*release_last);
    }
    grouped
        .into_iter()
        .map(|((category, last), (mut countries, first, release_last))| {
            countries.sort();
            MissingCategory {
                source: source.to_string(),
                category,
                countries,
                last_period: last,
                release_first_period: first,
                release_last_period: release_last,
                release_id: release_id.to_string(),
            }
        })
        .collect()
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
) -> Result<HashMap<String, Observation>, BusError> {
    let msgs = bus
        .last_per_subject(names::OBS_STREAM, &[&names::obs_filter_for_source(source)])
        .await?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| {
            let o: Observation = serde_json::from_slice(&m.payload).ok()?;
            Some((m.subject, o))
        })
        .collect())
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

/// When each release was received, to tell a figure a later release revised (left alone by
/// a replay) from one an earlier release left (replaced).
#[derive(Debug, Default)]
struct ReplayOrder {
    received_at: HashMap<String, (String, u64)>,
}

impl ReplayOrder {
    /// Whether release `a` was received after release `b` (unknown releases are not later).
    fn is_later(&self, a: &str, b: &str) -> bool {
        match (self.received_at.get(a), self.received_at.get(b)) {
            // Milliseconds where both have them (records from before have only seconds).
            (Some((_, a)), Some((_, b))) if *a > 0 && *b > 0 => a > b,
            (Some((a, _)), Some((b, _))) => a > b,
            _ => false,
        }
    }
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
/// record stays as it was.
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
    let bytes = bus
        .object_get(&raw.store, &raw.name)
        .await?
        .ok_or_else(|| ReplayError::BytesMissing {
            release: release.id.clone(),
            store: raw.store.clone(),
            object: raw.name.clone(),
        })?;
    let found = sha256_hex(&bytes);
    if found != release.content_sha256 {
        return Err(ReplayError::BytesChanged {
            release: release.id.clone(),
            expected: release.content_sha256.clone(),
            found,
        });
    }
    let default_source = release.submitted_source.clone().or_else(|| {
        (release.source != "mixed" && !release.source.is_empty()).then(|| release.source.clone())
    });
    let parsed = parse_blocking(&release.format, &bytes, default_source)
        .await
        .map_err(|source| ReplayError::Ingest {
            release: release.id.clone(),
            source,
        })?;
    let order = ReplayOrder {
        received_at: all
            .iter()
            .map(|r| (r.id.clone(), (r.received_at.clone(), r.received_at_ms)))
            .collect(),
    };
    let by_source = by_source(parsed.observations, &release.id);
    let mut applied = Applied::default();
    for (source, observations) in &by_source {
        apply_source(
            bus,
            &release.id,
            source,
            observations,
            Some(&order),
            &mut applied,
        )
        .await?;
    }
    let report = ReplayReport {
        release_id: release.id.clone(),
        restored: applied.published,
        superseded: applied.superseded,
        accepted: by_source.values().map(|v| v.len() as u64).sum(),
    };
    info!(release = %report.release_id, restored = report.restored, superseded = report.superseded, "release replayed");
    Ok(report)
}

/// Series per release marker part.
const SERIES_PER_PART: usize = 500;
/// Periods (new and revised) per release marker part: with the series bound, a part stays
/// far below NATS's 1 MiB however long the series are (a long series is split over parts).
const PERIODS_PER_PART: usize = 20_000;

fn chunk_changes(changes: Vec<SeriesChange>) -> Vec<Vec<SeriesChange>> {
    let mut parts: Vec<Vec<SeriesChange>> = Vec::new();
    let mut part: Vec<SeriesChange> = Vec::new();
    let mut periods = 0usize;
    for change in changes.into_iter().flat_map(split_change) {
        let n = change.periods.len() + change.revised.len();
        if !part.is_empty() && (part.len() == SERIES_PER_PART || periods + n > PERIODS_PER_PART) {
            parts.push(std::mem::take(&mut part));
            periods = 0;
        }
        periods += n;
        part.push(change);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

/// A series change with more periods than a part holds, cut into pieces that fit.
fn split_change(change: SeriesChange) -> Vec<SeriesChange> {
    if change.periods.len() + change.revised.len() <= PERIODS_PER_PART {
        return vec![change];
    }
    let piece = |periods: &[Period], revised: &[Period]| SeriesChange {
        country: change.country,
        category: change.category.clone(),
        periods: periods.to_vec(),
        revised: revised.to_vec(),
    };
    let mut out: Vec<SeriesChange> = change
        .periods
        .chunks(PERIODS_PER_PART)
        .map(|p| piece(p, &[]))
        .collect();
    out.extend(
        change
            .revised
            .chunks(PERIODS_PER_PART)
            .map(|r| piece(&[], r)),
    );
    out
}

/// Per series, the periods new to it and the periods it revised.
type SeriesPeriods = (Country, Vec<Period>, Vec<Period>);

fn changes_of(changed: &[(&Observation, Change)]) -> Vec<SeriesChange> {
    let mut by_series: BTreeMap<(String, String), SeriesPeriods> = BTreeMap::new();
    for (o, change) in changed {
        let entry = by_series
            .entry((o.country.code().to_string(), o.category.clone()))
            .or_insert_with(|| (o.country, Vec::new(), Vec::new()));
        match change {
            Change::New => entry.1.push(o.period),
            Change::Revised(_) => entry.2.push(o.period),
        }
    }
    by_series
        .into_iter()
        .map(|((_, category), (country, mut periods, mut revised))| {
            periods.sort();
            revised.sort();
            SeriesChange {
                country,
                category,
                periods,
                revised,
            }
        })
        .collect()
}

impl From<BusError> for IngestError {
    fn from(e: BusError) -> IngestError {
        IngestError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(country: &str, category: &str, periods: usize, revised: usize) -> SeriesChange {
        let first: Period = "1900-01".parse().unwrap();
        SeriesChange {
            country: Country::parse(country).unwrap(),
            category: category.into(),
            periods: (0..periods as i64).map(|i| first.offset(i)).collect(),
            revised: (0..revised as i64)
                .map(|i| first.offset(periods as i64 + i))
                .collect(),
        }
    }

    #[test]
    fn marker_parts_stay_small_however_long_the_series_and_lose_no_period() {
        let mut changes = vec![change("PRK", "study", 45_000, 3_000)];
        for i in 0..700 {
            changes.push(change("CHN", &format!("c{i}"), 30, 0));
        }
        let total: usize = changes
            .iter()
            .map(|c| c.periods.len() + c.revised.len())
            .sum();
        let parts = chunk_changes(changes);
        let mut seen = 0;
        for part in &parts {
            let periods: usize = part.iter().map(|c| c.periods.len() + c.revised.len()).sum();
            assert!(part.len() <= SERIES_PER_PART);
            assert!(periods <= PERIODS_PER_PART, "{periods}");
            let marker = ReleaseMarker {
                release_id: "rel-0123456789abcdef".into(),
                source: "a".repeat(64),
                part: 0,
                parts: 1,
                changes: part.clone(),
            };
            let size = serde_json::to_vec(&marker).unwrap().len();
            assert!(size < 512 * 1024, "{size} bytes");
            seen += periods;
        }
        assert_eq!(seen, total);
        assert!(parts.len() >= 4, "{}", parts.len());
    }
}
