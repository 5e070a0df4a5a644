//! Key-value buckets: the current value of each key, and with a data directory the
//! `kv/<bucket>.log` of puts and deletes that rebuilds them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};

use bytes::Bytes;

use super::MemoryBus;
use super::log::{RecordHeader, now_ms, open_log, write_record};
use crate::{BusError, Result, valid_key};

#[derive(Debug, Default)]
pub(super) struct BucketState {
    values: BTreeMap<String, Bytes>,
    log: Option<BufWriter<File>>,
}

pub(super) fn ensure(bus: &MemoryBus, bucket: &str) -> Result<()> {
    let mut state = bus.inner.lock();
    if state.buckets.contains_key(bucket) {
        return Ok(());
    }
    let mut b = BucketState::default();
    if let Some(path) = bus.inner.path(&["kv", &format!("{bucket}.log")]) {
        let (records, log) = open_log(&path)?;
        for (h, value) in records {
            if h.op == "del" {
                b.values.remove(&h.key);
            } else {
                b.values.insert(h.key, value);
            }
        }
        b.log = Some(log);
    }
    state.buckets.insert(bucket.to_string(), b);
    Ok(())
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
        if let Some(log) = b.log.as_mut() {
            let payload = value.as_deref().unwrap_or_default();
            let header = RecordHeader {
                seq: 0,
                subject: String::new(),
                headers: Vec::new(),
                msg_id: None,
                at_ms: now_ms(),
                op: if value.is_some() { "put" } else { "del" }.into(),
                key: key.to_string(),
                len: payload.len(),
            };
            write_record(log, &header, payload)?;
            log.flush()?;
        }
        match value {
            Some(v) => b.values.insert(key.to_string(), v),
            None => b.values.remove(key),
        };
        Ok(true)
    }
}
