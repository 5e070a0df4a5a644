//! Release records: the key and id of a release, its record in `bw_releases` (written last,
//! once everything it published is stored), and reading the records back.

use borderwatch_bus::{BusError, Transport, names};
use borderwatch_model::{RejectedRow, Release, StoredObject, now_rfc3339, sha256_hex, tokenize};
use tracing::info;

use super::publish::{Applied, Shape, Shapes};
use crate::error::IngestError;

/// A release recorded before, answered again: nothing new.
pub(super) fn duplicate(mut release: Release) -> Release {
    release.duplicate = true;
    release.new_observations = 0;
    info!(release = %release.id, "same bytes as an earlier release: nothing to add");
    release
}

/// What a new release is made of.
pub(super) struct NewRelease<'a> {
    pub(super) key: String,
    pub(super) id: String,
    pub(super) format: String,
    pub(super) sha: String,
    pub(super) bytes: u64,
    pub(super) shapes: &'a Shapes,
    /// The first rejected rows (a parse keeps at most `rows::MAX_REJECTED_KEPT`).
    pub(super) rejected: Vec<RejectedRow>,
    /// Every rejected row, counted.
    pub(super) rejected_total: u64,
    pub(super) applied: Applied,
    pub(super) raw: StoredObject,
    pub(super) submitted_source: Option<String>,
}

/// Writes the release record, once everything the release published is stored.
pub(super) async fn record_release(
    bus: &dyn Transport,
    new: NewRelease<'_>,
) -> Result<Release, IngestError> {
    let shapes = new.shapes;
    // Figures refused against the stream were counted as accepted when the file was read.
    let mut rejected = new.rejected;
    let refused = new.applied.rejected_total;
    rejected.extend(new.applied.rejected);
    rejected.truncate(REJECTED_KEPT_IN_RECORD);
    let accepted = shapes
        .values()
        .map(|s| s.accepted)
        .sum::<u64>()
        .saturating_sub(refused);
    if accepted == 0 {
        // Every figure was refused against the stream: no release of nothing (its bytes
        // stay in `bw_raw`, unreferenced, as after any failure half-way).
        let rejected_total = new.rejected_total + refused;
        return Err(IngestError::NothingAccepted {
            rows: rejected_total,
            rejected_total,
            rejected,
        });
    }
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
        accepted,
        rejected_total: (new.rejected_total + refused).max(rejected.len() as u64),
        rejected,
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
        rejected = release.rejected_total,
        new = release.new_observations,
        revisions = release.revisions,
        missing = release.missing.len(),
        "release ingested"
    );
    metrics::counter!("borderwatch_rows_ingested_total").increment(release.accepted);
    metrics::counter!("borderwatch_releases_total").increment(1);
    Ok(release)
}

/// Rejected rows kept in a stored release record (each row is at most a few hundred bytes):
/// as many as a parse keeps, so the answer to the same bytes again lists the same rows.
const REJECTED_KEPT_IN_RECORD: usize = crate::rows::MAX_REJECTED_KEPT;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A release is its bytes and the source named with them: the same file sent for two
/// sources (a file without a source column) is two releases. Key: the content hash, then
/// `.source` when one was named.
pub(super) fn release_key(sha: &str, source: Option<&str>) -> String {
    match source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(source) => format!(
            "{sha}.{}",
            tokenize(source).unwrap_or_else(|| sha256_hex(source.as_bytes()))
        ),
        None => sha.to_string(),
    }
}

/// `rel-` and 16 hex digits: of the content hash alone, or of the key when a source was named.
pub(super) fn release_id_of(key: &str) -> String {
    if key.len() == 64 {
        format!("rel-{}", &key[..16])
    } else {
        format!("rel-{}", &sha256_hex(key.as_bytes())[..16])
    }
}

pub(super) async fn recorded_release(
    bus: &dyn Transport,
    sha: &str,
) -> Result<Option<Release>, BusError> {
    Ok(bus
        .kv_get(names::RELEASES_BUCKET, sha)
        .await?
        .and_then(|stored| serde_json::from_slice::<Release>(&stored).ok()))
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
