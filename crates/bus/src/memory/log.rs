//! The append-only log files under a data directory (`streams/`, `kv/`): one JSON header
//! line per record, then its payload and a newline. Reading a log keeps its whole records and
//! cuts off a torn last one, so a process that died mid-write leaves a log that opens.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::files;
use crate::{Headers, Result};

/// The header of one log record; `len` payload bytes and a newline follow it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RecordHeader {
    #[serde(default)]
    pub(super) seq: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) subject: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) headers: Headers,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) msg_id: Option<String>,
    #[serde(default)]
    pub(super) at_ms: u64,
    /// Key-value records: `put` or `del`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) op: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) key: String,
    pub(super) len: usize,
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes one record; returns where its payload starts (from the record's start) and the
/// record's length in bytes.
pub(super) fn write_record(
    w: &mut impl Write,
    header: &RecordHeader,
    payload: &[u8],
) -> Result<(u64, u64)> {
    let line = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    w.write_all(&line)?;
    w.write_all(b"\n")?;
    w.write_all(payload)?;
    w.write_all(b"\n")?;
    let start = line.len() as u64 + 1;
    Ok((start, start + payload.len() as u64 + 1))
}

/// The whole records of a log, and the log opened for appending.
pub(super) type OpenedLog = (Vec<(RecordHeader, Bytes)>, BufWriter<File>);

/// Reads every whole record of a log, truncating a torn tail, and opens it for appending
/// (owner-only, like its directory).
pub(super) fn open_log(path: &Path) -> Result<OpenedLog> {
    let mut records = Vec::new();
    let (writer, _) = read_log(path, |header, payload, _| records.push((header, payload)))?;
    Ok((records, writer))
}

/// Hands every whole record of a log to `each` (its header, payload, and the payload's offset
/// in the file), truncating a torn tail; returns the log opened for appending (owner-only,
/// like its directory) and its length.
pub(super) fn read_log(
    path: &Path,
    mut each: impl FnMut(RecordHeader, Bytes, u64),
) -> Result<(BufWriter<File>, u64)> {
    if let Some(parent) = path.parent() {
        files::private_dir(parent)?;
    }
    let mut good_len = 0u64;
    if path.exists() {
        let mut reader = BufReader::new(File::open(path)?);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            let Ok(header) = serde_json::from_str::<RecordHeader>(line.trim_end()) else {
                break;
            };
            let mut payload = vec![0u8; header.len + 1];
            if reader.read_exact(&mut payload).is_err() || payload[header.len] != b'\n' {
                break;
            }
            payload.truncate(header.len);
            let offset = good_len + line.len() as u64;
            good_len = offset + header.len as u64 + 1;
            each(header, Bytes::from(payload), offset);
        }
    }
    let file = files::open_append(path)?;
    if file.metadata()?.len() != good_len {
        tracing::warn!(path = %path.display(), kept = good_len, "cut a torn record off a log");
        file.set_len(good_len)?;
    }
    Ok((BufWriter::new(file), good_len))
}

/// Reads `len` bytes at `offset` of `file` (a stream log), without moving any cursor.
#[cfg(unix)]
pub(super) fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use bytes::Bytes;

    use crate::{MemoryBus, Outgoing, Transport, names};

    #[tokio::test]
    async fn state_survives_reopening_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = MemoryBus::open(dir.path()).await.unwrap();
            names::ensure_all(&bus, 1).await.unwrap();
            bus.publish(Outgoing::new("bw.surge.PRK.study", "a").with_id("x"))
                .await
                .unwrap();
            bus.kv_put(names::SERIES_BUCKET, "k", Bytes::from_static(b"v"))
                .await
                .unwrap();
        }
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let again = bus
            .publish(Outgoing::new("bw.surge.PRK.study", "a").with_id("x"))
            .await
            .unwrap();
        assert!(again.duplicate, "the dedup window survives a restart");
        assert_eq!(
            bus.kv_get(names::SERIES_BUCKET, "k")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"v"[..])
        );
    }

    #[tokio::test]
    async fn a_torn_log_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = MemoryBus::open(dir.path()).await.unwrap();
            names::ensure_all(&bus, 1).await.unwrap();
            bus.publish(Outgoing::new("bw.surge.PRK.study", "first"))
                .await
                .unwrap();
        }
        let log = dir.path().join("streams").join("BW_SURGES.log");
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"{\"seq\":2,\"subject\":\"bw.surge.PRK.study\",\"len\":50}\npartial")
            .unwrap();
        drop(f);
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let ack = bus
            .publish(Outgoing::new("bw.surge.PRK.study", "second"))
            .await
            .unwrap();
        assert_eq!(ack.seq, 2);
        let all = bus
            .last_per_subject(names::SURGE_STREAM, &["bw.surge.>"])
            .await
            .unwrap();
        assert_eq!(all[0].payload, Bytes::from_static(b"second"));
    }
}
