//! Ingesting one file: from memory ([`ingest`]) or staged in the object store
//! ([`ingest_object`]): parse it, keep its exact bytes under their hash, publish what is
//! new, and record the release.

use std::time::Duration;

use borderwatch_bus::{BusError, Transport, names};
use borderwatch_model::{Release, StoredObject, sha256_hex};

use super::budget::{parse_timeout, parser_slot, timed_out};
use super::publish::{Publisher, Shapes, add_to_shapes};
use super::release::{
    NewRelease, duplicate, record_release, recorded_release, release_id_of, release_key,
};
use super::staged;
use super::{lease, locks};
use crate::error::IngestError;
use crate::generic::ReadOptions;

pub use borderwatch_ingest_client::Submission;

/// Ingests one file held in memory: parses it, keeps its bytes, publishes what is new, and
/// records the release.
///
/// What a refused file leaves: nothing (it is parsed before anything is stored). What a
/// failure half-way leaves: the bytes in the object store and perhaps some of the
/// observations, but no release record, so the release is not listed and the same file sent
/// again completes it (figures already stored by this release count as its own).
///
/// Reading the file runs beside other uploads; storing and publishing it waits its turn
/// behind any other upload of one of its sources, or of the same bytes (`locks.rs`), so that
/// it is built against everything published before it.
pub async fn ingest(bus: &dyn Transport, sub: Submission) -> Result<Release, IngestError> {
    let sha = sha256_hex(&sub.bytes);
    let key = release_key(&sha, sub.source.as_deref());
    // A file recorded before is answered without reading it (and asked again in turn below:
    // the same bytes may be in flight).
    if let Some(release) = settled(bus, &key).await? {
        return Ok(release);
    }
    // The format by name, or detected from the content; the record keeps the one used, so
    // that a replay reads the bytes the same way.
    let format = match crate::formats::by_name(sub.format.as_deref().unwrap_or(""))? {
        Some(f) => f.name,
        None => crate::formats::detect(&sub.bytes, None)?.name,
    }
    .to_string();
    let mut parsed = parse_blocking(&format, &sub.bytes, sub.source.clone()).await?;
    if parsed.observations.is_empty() {
        return Err(nothing_accepted(parsed));
    }
    let mut shapes = Shapes::new();
    add_to_shapes(&mut shapes, &parsed.observations);
    let observations = std::mem::take(&mut parsed.observations);
    let file = ReleaseFile {
        key,
        sha,
        format,
        bytes: sub.bytes.len() as u64,
        shapes: &shapes,
        parsed,
        submitted_source: sub.source,
    };
    let figures = Figures::InMemory {
        bytes: &sub.bytes,
        observations,
    };
    in_turn(bus, file, figures).await
}

/// Where a file's bytes and figures come from in its turn.
enum Figures<'a> {
    /// A file read whole ([`ingest`]): its bytes, and its figures.
    InMemory {
        bytes: &'a bytes::Bytes,
        observations: Vec<borderwatch_model::Observation>,
    },
    /// An upload staged in the object store ([`ingest_object`]), whose rows were all checked
    /// by a first pass: its bytes are copied under their hash and read again from the copy,
    /// a batch at a time, to publish them.
    Staged {
        object: &'a str,
        size: u64,
        source: Option<String>,
        read: ReadOptions,
    },
}

/// A read file on its way to its turn: what its release record keeps besides what
/// publishing it applied.
struct ReleaseFile<'a> {
    /// The release's key in `bw_releases` ([`release_key`]).
    key: String,
    sha: String,
    /// The format the file was read as.
    format: String,
    bytes: u64,
    shapes: &'a Shapes,
    /// The rows refused (its observations are published by the caller's step).
    parsed: crate::Parsed,
    submitted_source: Option<String>,
}

/// The part of an ingest that waits its turn behind any other upload of one of the file's
/// sources or of the same bytes (`locks.rs`, and the lease across processes), so that it is
/// built against everything published before it. Within the turn: a release recorded
/// meanwhile is answered as a duplicate (or marked again where its analysis failed); a file
/// of which no row was accepted is refused; else its bytes are kept, its figures published,
/// the markers sent and the release recorded.
async fn in_turn(
    bus: &dyn Transport,
    file: ReleaseFile<'_>,
    figures: Figures<'_>,
) -> Result<Release, IngestError> {
    let keys = locks::release_keys(&file.sha, file.shapes.keys());
    let _turn = locks::lock(keys.clone()).await;
    lease::hold(bus, &keys, lease::Timing::default(), async move {
        let recorded = recorded_release(bus, &file.key).await?;
        if let Some(release) = recorded.as_ref()
            && !analysis_failed(bus, release).await?
        {
            // The record keeps the first rejected rows, as many as a parse keeps.
            return Ok(duplicate(release.clone()));
        }
        if file.shapes.values().all(|s| s.accepted == 0) {
            return Err(nothing_accepted(file.parsed));
        }
        let raw = match &figures {
            Figures::InMemory { bytes, .. } => keep_bytes(bus, &file.sha, bytes).await?,
            Figures::Staged { object, size, .. } => {
                staged::keep(bus, &file.sha, object, *size).await?
            }
        };
        let release_id = release_id_of(&file.key);
        let mut publisher = Publisher::new(bus, &release_id, None, file.shapes);
        if recorded.is_some() {
            publisher = publisher.remarking(&remark_tag());
        }
        match figures {
            Figures::InMemory { observations, .. } => publisher.publish(observations).await?,
            Figures::Staged {
                object,
                source,
                read,
                ..
            } => {
                // The second pass, within the turn, over the kept copy.
                let read_again = staged::publish(bus, &raw.name, source, read, &mut publisher)
                    .await?
                    .ok_or_else(|| gone(object))?;
                if read_again != file.sha {
                    return Err(IngestError::Internal(format!(
                        "the bytes kept as `{}` changed while they were read (content hash \
                         {read_again}, expected {}); the release is not recorded: send the \
                         file again",
                        raw.name, file.sha
                    )));
                }
            }
        }
        let applied = publisher.finish().await?;
        if let Some(release) = recorded {
            return Ok(remarked(release, applied));
        }
        record_release(
            bus,
            NewRelease {
                key: file.key,
                id: release_id,
                format: file.format,
                sha: file.sha,
                bytes: file.bytes,
                shapes: file.shapes,
                rejected: file.parsed.rejected,
                rejected_total: file.parsed.rejected_total,
                applied,
                raw,
                submitted_source: file.submitted_source,
            },
        )
        .await
    })
    .await
}

/// The answer to a file whose release is recorded and needs nothing more: a duplicate.
async fn settled(bus: &dyn Transport, key: &str) -> Result<Option<Release>, IngestError> {
    match recorded_release(bus, key).await? {
        Some(release) if !analysis_failed(bus, &release).await? => Ok(Some(duplicate(release))),
        _ => Ok(None),
    }
}

/// Whether analytics noted that it could not read a marker of `release` whose part is still
/// not analysed (`names::unreadable_marker_key`): then the same file sent again marks the
/// release's figures again, instead of answering that it adds nothing. A part merely not
/// analysed yet (analytics busy or down) is not marked again: its marker is still pending.
async fn analysis_failed(bus: &dyn Transport, release: &Release) -> Result<bool, BusError> {
    for key in &release.analyses {
        if bus.kv_get(names::ANALYZED_BUCKET, key).await?.is_none()
            && bus
                .kv_get(names::ANALYZED_BUCKET, &names::unreadable_marker_key(key))
                .await?
                .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A tag no earlier marking of a release used: the markers' message ids must be new to the
/// stream's duplicate window.
fn remark_tag() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms}")
}

/// The answer to a recorded release marked again: the same bytes, nothing new stored.
fn remarked(release: Release, applied: super::publish::Applied) -> Release {
    tracing::warn!(
        release = %release.id,
        markers = applied.analyses.len(),
        "a release whose analysis failed was sent again: its figures are marked again"
    );
    duplicate(release)
}

/// The refusal of a file of which no row was accepted: nothing of it is stored.
fn nothing_accepted(parsed: crate::Parsed) -> IngestError {
    IngestError::NothingAccepted {
        rows: parsed.rows,
        rejected_total: parsed.rejected_total,
        rejected: parsed.rejected,
    }
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
/// second pass over the kept copy publishes. The first pass has the deadline a whole file
/// has ([`parse_timeout`]: `parse_timeout` past it, nothing stored); the second, which
/// publishes as it reads rows already checked, has none, so that a slow bus never leaves a
/// release half-published. Other formats are read whole, as [`ingest`]
/// reads them: spreadsheets and XML need the whole file, and agencies publish them small.
pub async fn ingest_object(
    bus: &dyn Transport,
    sub: StagedUpload,
    read: ReadOptions,
) -> Result<Release, IngestError> {
    let streamed = match crate::formats::by_name(sub.format.as_deref().unwrap_or(""))? {
        Some(f) => staged::streams(f.name),
        None => staged::looks_generic(bus, &sub.object).await?,
    };
    if !streamed {
        let bytes = bus
            .object_get(names::RAW_OBJECT_STORE, &sub.object)
            .await?
            .ok_or_else(|| gone(&sub.object))?;
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
    } = staged::scan(bus, &sub.object, sub.source.clone(), read, parse_timeout())
        .await?
        .ok_or_else(|| gone(&sub.object))?;
    let parsed = parsed?;
    let key = release_key(&sha, sub.source.as_deref());
    let file = ReleaseFile {
        key,
        sha: sha.clone(),
        format: crate::generic::FORMAT.name.to_string(),
        bytes: size,
        shapes: &shapes,
        parsed,
        submitted_source: sub.source.clone(),
    };
    let figures = Figures::Staged {
        object: &sub.object,
        size,
        source: sub.source,
        read,
    };
    in_turn(bus, file, figures).await
}

/// The refusal of a staged upload whose bytes are no longer in the object store.
fn gone(object: &str) -> IngestError {
    IngestError::Unavailable(format!(
        "the upload's bytes (object `{object}` in `{}`) are gone; send the file again",
        names::RAW_OBJECT_STORE
    ))
}

/// Reads a file whole on a blocking thread, within [`parse_timeout`]: past it the upload is
/// refused with `parse_timeout` (nothing stored) and the thread's result is dropped.
pub(super) async fn parse_blocking(
    format: &str,
    bytes: &bytes::Bytes,
    default_source: Option<String>,
) -> Result<crate::Parsed, IngestError> {
    parse_within(format, bytes, default_source, parse_timeout()).await
}

pub(super) async fn parse_within(
    format: &str,
    bytes: &bytes::Bytes,
    default_source: Option<String>,
    timeout: Duration,
) -> Result<crate::Parsed, IngestError> {
    let (format, bytes) = (format.to_string(), bytes.clone());
    let slot = parser_slot().await?;
    let read = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        crate::parse(&format, &bytes, default_source.as_deref())
    });
    match tokio::time::timeout(timeout, read).await {
        Ok(done) => done.map_err(|e| IngestError::Internal(e.to_string()))?,
        Err(_) => Err(timed_out(timeout)),
    }
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

#[cfg(test)]
mod tests {
    use super::super::budget::DEFAULT_PARSE_TIMEOUT;
    use super::*;

    #[tokio::test]
    async fn a_file_past_its_deadline_is_refused_as_parse_timeout() {
        let mut text = String::from("source,period,country,category,count\n");
        for i in 0..100_000u32 {
            text.push_str(&format!(
                "fsb,{}-Q{},PRK,study,{i}\n",
                1900 + i % 200,
                1 + i % 4
            ));
        }
        let bytes = bytes::Bytes::from(text);
        let e = parse_within("generic", &bytes, None, Duration::from_millis(1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "parse_timeout", "{e}");
        assert!(e.to_string().contains("split it into smaller files"), "{e}");
        let parsed = parse_within("generic", &bytes, None, Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(parsed.rows, 100_000);
    }

    #[test]
    fn the_default_deadline_is_a_minute() {
        assert_eq!(DEFAULT_PARSE_TIMEOUT, Duration::from_secs(60));
        assert!(parse_timeout() >= Duration::from_secs(1));
    }
}
