//! Key-value buckets: the current value of each key, and with a data directory the
//! `kv/<bucket>.log` of puts and deletes that rebuilds them.
//!
//! Buckets keep one revision per key (NATS `history: 1`), so the log is compacted to one
//! `put` per live key: deleted keys and overwritten values leave the disk (a deleted
//! subscription's secret with them). Compaction runs when a bucket is opened with garbage in
//! its log, when the log holds more dead records than live ones (and at least
//! [`COMPACT_MIN_DEAD`]), and after a delete while the live data is small (a cheap rewrite that
//! removes the deleted value at once).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use bytes::Bytes;

use super::log::{RecordHeader, now_ms, open_log, write_record};
use super::{MemoryBus, files};
use crate::{BusError, Result, valid_key};

/// Dead records a log may hold before it is compacted regardless of the live data's size.
pub(super) const COMPACT_MIN_DEAD: usize = 1024;
/// Live data small enough to rewrite after every delete (so a deleted value leaves the disk
/// at once).
const REWRITE_ON_DELETE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Default)]
pub(super) struct BucketState {
    values: BTreeMap<String, Bytes>,
    /// Payload bytes of `values`.
    live_bytes: usize,
    log: Option<BucketLog>,
}

#[derive(Debug)]
struct BucketLog {
    path: PathBuf,
    writer: BufWriter<File>,
    /// Records in the file: one per live key after a compaction, more with every write.
    records: usize,
}

pub(super) fn ensure(bus: &MemoryBus, bucket: &str) -> Result<()> {
    let mut state = bus.inner.lock();
    if state.buckets.contains_key(bucket) {
        return Ok(());
    }
    let mut b = BucketState::default();
    if let Some(path) = bus.inner.path(&["kv", &format!("{bucket}.log")]) {
        let (records, writer) = open_log(&path)?;
        let count = records.len();
        for (h, value) in records {
            if h.op == "del" {
                b.set(&h.key, None);
            } else {
                b.set(&h.key, Some(value));
            }
        }
        b.log = Some(BucketLog {
            path,
            writer,
            records: count,
        });
        if count > b.values.len() {
            b.compact()?;
        }
    }
    state.buckets.insert(bucket.to_string(), b);
    Ok(())
}

impl BucketState {
    fn set(&mut self, key: &str, value: Option<Bytes>) {
        let old = match value {
            Some(v) => {
                self.live_bytes += v.len();
                self.values.insert(key.to_string(), v)
            }
            None => self.values.remove(key),
        };
        self.live_bytes -= old.map_or(0, |o| o.len());
    }

    /// Rewrites the log as one `put` per live key (a temporary file renamed over it), so
    /// deleted and overwritten values are gone from the disk.
    pub(super) fn compact(&mut self) -> Result<()> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        log.writer.flush()?;
        let at_ms = now_ms();
        files::replace(&log.path, |file| {
            let mut w = BufWriter::new(file);
            for (key, value) in &self.values {
                write_record(&mut w, &put_header(key, value.len(), at_ms), value)
                    .map_err(std::io::Error::other)?;
            }
            w.flush()
        })?;
        log.writer = BufWriter::new(files::open_append(&log.path)?);
        log.records = self.values.len();
        Ok(())
    }

    /// Whether the log has grown enough (or a delete happened on data small enough) to
    /// compact it now.
    fn wants_compaction(&self, deleted: bool) -> bool {
        let Some(log) = &self.log else {
            return false;
        };
        let dead = log.records.saturating_sub(self.values.len());
        dead > 0
            && ((dead >= self.values.len() && dead >= COMPACT_MIN_DEAD)
                || (deleted && self.live_bytes <= REWRITE_ON_DELETE_BYTES))
    }
}

fn put_header(key: &str, len: usize, at_ms: u64) -> RecordHeader {
    RecordHeader {
        seq: 0,
        subject: String::new(),
        headers: Vec::new(),
        msg_id: None,
        at_ms,
        op: "put".into(),
        key: key.to_string(),
        len,
    }
}

pub(super) fn get(bus: &MemoryBus, bucket: &str, key: &str) -> Result<Option<Bytes>> {
    if !valid_key(key) {
        return Err(BusError::BadKey(key.to_string()));
    }
    let state = bus.inner.lock();
    let b = state
        .buckets
        .get(bucket)
        .ok_or_else(|| BusError::NoBucket(bucket.to_string()))?;
    Ok(b.values.get(key).cloned())
}

pub(super) fn keys(bus: &MemoryBus, bucket: &str) -> Result<Vec<String>> {
    let state = bus.inner.lock();
    let b = state
        .buckets
        .get(bucket)
        .ok_or_else(|| BusError::NoBucket(bucket.to_string()))?;
    Ok(b.values.keys().cloned().collect())
}

impl MemoryBus {
    pub(super) fn kv_write(
        &self,
        bucket: &str,
        key: &str,
        value: Option<Bytes>,
        only_new: bool,
    ) -> Result<bool> {
        if !valid_key(key) {
            return Err(BusError::BadKey(key.to_string()));
        }
        let mut state = self.inner.lock();
        let b = state
            .buckets
            .get_mut(bucket)
            .ok_or_else(|| BusError::NoBucket(bucket.to_string()))?;
        if only_new && b.values.contains_key(key) {
            return Ok(false);
        }
        let deleted = value.is_none();
        if let Some(log) = b.log.as_mut() {
            let payload = value.as_deref().unwrap_or_default();
            let mut header = put_header(key, payload.len(), now_ms());
            if deleted {
                header.op = "del".into();
            }
            write_record(&mut log.writer, &header, payload)?;
            log.writer.flush()?;
            log.records += 1;
        }
        b.set(key, value);
        if b.wants_compaction(deleted) {
            b.compact()?;
        }
        Ok(true)
    }
}
