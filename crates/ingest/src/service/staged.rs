//! Files read from the object store a piece at a time: the generic parser runs on a blocking
//! thread over a reader of the object's chunks, and hands its batches to the async side as
//! they fill, so memory holds a piece of the file and a few batches, never the file.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borderwatch_bus::{BusError, Transport, names};
use borderwatch_model::{Observation, StoredObject};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use super::budget::{parser_slot, timed_out};
use super::publish::{Publisher, Shapes, add_to_shapes};
use crate::error::IngestError;
use crate::generic::ReadOptions;
use crate::rows::{ParseLimits, Parsed};

/// Whether files of `format` are read from the store a piece at a time: the generic format
/// is; the others (spreadsheets, XML, agency CSVs of a few MiB) are read whole.
pub(super) fn streams(format: &str) -> bool {
    format == crate::generic::FORMAT.name
}

/// Whether the object's first 64 KiB are text that no specific format claims: the generic
/// format. A binary head (a spreadsheet, or not a file ingest reads) is not: that file is
/// read whole, where detection sees all of it.
pub(super) async fn looks_generic(bus: &dyn Transport, name: &str) -> Result<bool, IngestError> {
    let Some(reader) = bus.object_reader(names::RAW_OBJECT_STORE, name).await? else {
        return Ok(false);
    };
    let mut head = Vec::new();
    reader
        .take(crate::formats::SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .await
        .map_err(|e| unreadable(name, &e))?;
    if head.contains(&0) || crate::decode::decode_head(&head).is_none() {
        return Ok(false);
    }
    Ok(crate::formats::detect(&head, None).is_ok_and(|f| f.name == crate::generic::FORMAT.name))
}

/// What a first pass over a file found: its hash and size, every count and rejected row (or
/// why the file is refused), and the shape of its figures (the figures are not kept).
pub(super) struct Scan {
    pub(super) sha: String,
    pub(super) size: u64,
    pub(super) parsed: Result<Parsed, IngestError>,
    pub(super) shapes: Shapes,
}

/// Reads object `name` of `bw_raw` whole, checking every row, without keeping the figures;
/// `None` if there is no such object. The hash covers every byte even when the file is
/// refused, so that a replay can tell changed bytes from a parser that changed. Past
/// `deadline` the file is refused (`parse_timeout`), as a file read whole is, and the reader
/// stops at its next piece.
pub(super) async fn scan(
    bus: &dyn Transport,
    name: &str,
    source: Option<String>,
    read: ReadOptions,
    deadline: Duration,
) -> Result<Option<Scan>, IngestError> {
    let shapes = Arc::new(Mutex::new(Shapes::new()));
    let summed = Arc::clone(&shapes);
    let sink = move |batch: Vec<Observation>| {
        let mut shapes = summed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        add_to_shapes(&mut shapes, &batch);
        Ok(())
    };
    let Some(done) = read_object(bus, name, source, read, Some(deadline), sink).await? else {
        return Ok(None);
    };
    let shapes = std::mem::take(&mut *shapes.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Some(Scan {
        sha: done.sha,
        size: done.size,
        parsed: done.parsed,
        shapes,
    }))
}

/// Reads object `name` of `bw_raw` and publishes its figures a batch at a time, parsing the
/// next batches while one is published. Answers the content hash of what was read (`None`
/// if there is no such object).
pub(super) async fn publish(
    bus: &dyn Transport,
    name: &str,
    source: Option<String>,
    read: ReadOptions,
    publisher: &mut Publisher<'_>,
) -> Result<Option<String>, IngestError> {
    let (tx, mut rx) = mpsc::channel::<Vec<Observation>>(2);
    let sink = move |batch: Vec<Observation>| {
        tx.blocking_send(batch)
            .map_err(|_| IngestError::Internal("publishing stopped".into()))
    };
    let reading = read_object(bus, name, source, read, None, sink);
    let publishing = async move {
        while let Some(batch) = rx.recv().await {
            publisher.publish(batch).await?;
        }
        Ok::<(), BusError>(())
    };
    // A failed publish ends the receiver, which stops the parser at its next batch.
    let (read, published) = tokio::join!(reading, publishing);
    published?;
    match read? {
        None => Ok(None),
        Some(done) => done.parsed.map(|_| Some(done.sha)),
    }
}

/// Copies the upload under its content hash (`sha256-…`), as it is read, unless the same
/// bytes are kept already.
pub(super) async fn keep(
    bus: &dyn Transport,
    sha: &str,
    upload: &str,
    size: u64,
) -> Result<StoredObject, IngestError> {
    let name = names::raw_object_name(sha);
    let kept = bus.object_info(names::RAW_OBJECT_STORE, &name).await?;
    if kept.is_none_or(|info| info.size != size) {
        let reader = bus
            .object_reader(names::RAW_OBJECT_STORE, upload)
            .await?
            .ok_or_else(|| {
                IngestError::Unavailable(format!(
                    "the upload (object `{upload}`) went away while it was ingested; send \
                     the file again"
                ))
            })?;
        bus.object_put_reader(names::RAW_OBJECT_STORE, &name, reader)
            .await?;
    }
    Ok(StoredObject {
        store: names::RAW_OBJECT_STORE.to_string(),
        name,
    })
}

/// A whole pass over an object: what the parser gave (or why it refused the file), and the
/// content hash and size of every byte.
struct Done {
    parsed: Result<Parsed, IngestError>,
    sha: String,
    size: u64,
}

/// Runs the generic parser over object `name` on a blocking thread (one of the reader slots
/// a file read whole takes), handing each batch to `sink` there; within `deadline` when
/// there is one.
async fn read_object<S>(
    bus: &dyn Transport,
    name: &str,
    source: Option<String>,
    read: ReadOptions,
    deadline: Option<Duration>,
    mut sink: S,
) -> Result<Option<Done>, IngestError>
where
    S: FnMut(Vec<Observation>) -> Result<(), IngestError> + Send + 'static,
{
    let Some(reader) = bus.object_reader(names::RAW_OBJECT_STORE, name).await? else {
        return Ok(None);
    };
    let name = name.to_string();
    let bridge = SyncIoBridge::new(reader);
    let slot = parser_slot().await?;
    let until = deadline.map(|d| Instant::now() + d);
    let reading = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let mut input = Hashing::new(Until {
            inner: bridge,
            until,
        });
        let parsed = crate::generic::parse_generic_reader(
            &mut input,
            source.as_deref(),
            ParseLimits::default(),
            read,
            &mut sink,
        );
        // Whatever the parser left unread (all the rest, if it refused the file) still
        // belongs to the hash.
        let rest = std::io::copy(&mut input, &mut std::io::sink());
        if until.is_some_and(|u| Instant::now() >= u) {
            return Err(timed_out(deadline.unwrap_or_default()));
        }
        rest.map_err(|e| unreadable(&name, &e))?;
        let (sha, size) = input.finish();
        Ok(Some(Done { parsed, sha, size }))
    });
    let stopped =
        |e: tokio::task::JoinError| IngestError::Internal(format!("the parser stopped: {e}"));
    match deadline {
        // The thread also stops itself at the deadline (its reads fail): this answers on
        // time even while it is inside a piece.
        Some(d) => match tokio::time::timeout(d, reading).await {
            Ok(done) => done.map_err(stopped)?,
            Err(_) => Err(timed_out(d)),
        },
        None => reading.await.map_err(stopped)?,
    }
}

/// A reader that fails once `until` has passed, so that a parser past its deadline stops at
/// its next read instead of reading on for nobody.
struct Until<R> {
    inner: R,
    until: Option<Instant>,
}

impl<R: Read> Read for Until<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.until.is_some_and(|u| Instant::now() >= u) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the file took longer to read than its deadline",
            ));
        }
        self.inner.read(buf)
    }
}

fn unreadable(name: &str, e: &std::io::Error) -> IngestError {
    IngestError::Unavailable(format!(
        "reading object `{name}` of `{}` failed: {e}",
        names::RAW_OBJECT_STORE
    ))
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.size)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf.get(..n).unwrap_or(&[]);
        self.hasher.update(read);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_streamed_file_past_its_deadline_is_refused_as_parse_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let bus = borderwatch_bus::MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let mut text = String::from("source,period,country,category,count\n");
        for i in 0..200_000u32 {
            text.push_str(&format!(
                "fsb,{}-Q{},PRK,study,{i}\n",
                1900 + i % 200,
                1 + i % 4
            ));
        }
        bus.object_put(names::RAW_OBJECT_STORE, "upload-slow", text.into())
            .await
            .unwrap();
        let read = ReadOptions::default();
        let scanned = scan(&bus, "upload-slow", None, read, Duration::from_millis(1)).await;
        let Err(e) = scanned else {
            panic!("read within a millisecond")
        };
        assert_eq!(e.code(), "parse_timeout", "{e}");
        assert!(e.to_string().contains("split it into smaller files"), "{e}");
        // Within its deadline the same file reads.
        let scanned = scan(&bus, "upload-slow", None, read, Duration::from_secs(600)).await;
        let Ok(Some(done)) = scanned else {
            panic!("the file did not read")
        };
        assert_eq!(done.parsed.map(|p| p.rows).ok(), Some(200_000));
    }
}
