//! `borderwatch replay`: a release's kept bytes ingested again, restoring figures the
//! stream lost and leaving those a later release revised.

use borderwatch_bus::{BusError, Transport, names};
use borderwatch_model::sha256_hex;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::budget::parse_timeout;
use super::ingest::parse_blocking;
use super::publish::{Publisher, ReplayOrder, Shapes};
use super::release::releases;
use super::staged;
use crate::error::IngestError;
use crate::generic::ReadOptions;

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

/// Ingests a release's kept bytes again, with its recorded format and source.
///
/// On an intact system it adds nothing. Figures the stream lost (a recreated `BW_OBS`) are
/// published again; figures a later release revised are left as they are. A replay only
/// restores: it announces no revision, missing category or marker again, and the release
/// record stays as it was. Generic files are read a piece at a time, as
/// [`ingest_object`](crate::service::ingest_object) reads them: first checked whole against
/// their content hash, then published.
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
        let scan = staged::scan(
            bus,
            &raw.name,
            default_source.clone(),
            read,
            parse_timeout(),
        )
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
