//! The object store over NATS: JetStream's object store (`OBJ_<bucket>` streams, objects cut
//! into chunks), so that blobs of any size, larger than a message, are kept durably.

use async_nats::jetstream::context::{GetStreamError, ObjectStoreErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_nats::jetstream::object_store::{
    self, GetErrorKind, InfoErrorKind, ObjectStore, PutErrorKind,
};
use async_nats::jetstream::stream::StorageType;
use async_nats::jetstream::{self};
use bytes::Bytes;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::{BusError, ObjectInfo, ObjectReader, Result, valid_object_name};

fn check_name(name: &str) -> Result<()> {
    if valid_object_name(name) {
        Ok(())
    } else {
        Err(BusError::BadObjectName(name.to_string()))
    }
}

pub(super) async fn ensure(js: &jetstream::Context, bucket: &str, replicas: usize) -> Result<()> {
    if js.get_object_store(bucket).await.is_ok() {
        return Ok(());
    }
    // Creating a store that exists with the same settings succeeds: a race with another
    // process creating it is harmless.
    js.create_object_store(object_store::Config {
        bucket: bucket.to_string(),
        storage: StorageType::File,
        num_replicas: replicas.max(1),
        ..Default::default()
    })
    .await
    .map_err(|e| BusError::nats("ensure_object_store", e))?;
    Ok(())
}

async fn store(js: &jetstream::Context, bucket: &str) -> Result<ObjectStore> {
    js.get_object_store(bucket).await.map_err(|e| {
        let not_found = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<GetStreamError>())
            .is_some_and(super::stream_not_found);
        if not_found || e.kind() == ObjectStoreErrorKind::InvalidBucketName {
            BusError::NoObjectStore(bucket.to_string())
        } else {
            BusError::nats("object store lookup", e)
        }
    })
}

pub(super) async fn put(
    js: &jetstream::Context,
    bucket: &str,
    name: &str,
    data: Bytes,
) -> Result<ObjectInfo> {
    check_name(name)?;
    let store = store(js, bucket).await?;
    let mut reader: &[u8] = &data;
    let info = store
        .put(name, &mut reader)
        .await
        .map_err(|e| BusError::nats("object_put", e))?;
    Ok(ObjectInfo {
        name: info.name,
        size: info.size as u64,
    })
}

/// Stores what `data` reads, a chunk at a time. A failed read stores no object (the chunks
/// already sent stay in the stream, unreferenced, until the store is purged: async-nats does
/// not name them to its caller).
pub(super) async fn put_reader(
    js: &jetstream::Context,
    bucket: &str,
    name: &str,
    data: ObjectReader,
) -> Result<ObjectInfo> {
    check_name(name)?;
    let store = store(js, bucket).await?;
    let mut reader = FullChunks::new(data, CHUNK_BYTES);
    let info = store.put(name, &mut reader).await.map_err(|e| {
        if e.kind() == PutErrorKind::ReadChunks {
            BusError::ObjectSource {
                name: name.to_string(),
                reason: std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.to_string()),
            }
        } else {
            BusError::nats("object_put", e)
        }
    })?;
    Ok(ObjectInfo {
        name: info.name,
        size: info.size as u64,
    })
}

/// async-nats's chunk size: the object store stores one message per read of the data.
const CHUNK_BYTES: usize = 128 * 1024;

/// Reads whole chunks from a reader that hands out little at a time (an HTTP body comes in
/// frames of a few KiB), so that the object store stores one message per 128 KiB, not per
/// frame, and waits for one acknowledgement per chunk.
struct FullChunks {
    inner: ObjectReader,
    pending: Vec<u8>,
    taken: usize,
    chunk: usize,
    eof: bool,
}

impl FullChunks {
    fn new(inner: ObjectReader, chunk: usize) -> FullChunks {
        FullChunks {
            inner,
            pending: Vec::with_capacity(chunk),
            taken: 0,
            chunk,
            eof: false,
        }
    }
}

impl AsyncRead for FullChunks {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.taken == this.pending.len() {
            this.pending.clear();
            this.taken = 0;
        }
        while !this.eof && this.pending.len() < this.chunk {
            let start = this.pending.len();
            this.pending.resize(this.chunk, 0);
            let mut read = ReadBuf::new(&mut this.pending[start..]);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut read);
            let n = read.filled().len();
            this.pending.truncate(start + n);
            match polled {
                Poll::Ready(Ok(())) if n == 0 => this.eof = true,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let available = &this.pending[this.taken..];
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        this.taken += n;
        Poll::Ready(Ok(()))
    }
}

/// The object as a reader of its chunks; the digest is checked when the last one is read.
pub(super) async fn reader(
    js: &jetstream::Context,
    bucket: &str,
    name: &str,
) -> Result<Option<ObjectReader>> {
    check_name(name)?;
    let store = store(js, bucket).await?;
    match store.get(name).await {
        Ok(object) => Ok(Some(Box::new(object))),
        Err(e) if e.kind() == GetErrorKind::NotFound => Ok(None),
        Err(e) => Err(BusError::nats("object_get", e)),
    }
}

/// Whether `t` is more than `max_age` ago (a time in the future is not).
fn older_than(t: impl Into<std::time::SystemTime>, max_age: std::time::Duration) -> bool {
    std::time::SystemTime::now()
        .duration_since(t.into())
        .is_ok_and(|age| age > max_age)
}

/// Deletes stale objects, then purges chunk subjects that no object refers to and whose last
/// chunk is older than `max_age` (a write that failed half-way: async-nats does not name its
/// chunks to the caller, so they can only be found this way).
pub(super) async fn sweep(
    js: &jetstream::Context,
    bucket: &str,
    stale_prefixes: &[&str],
    max_age: std::time::Duration,
) -> Result<crate::Swept> {
    let store = store(js, bucket).await?;
    let infos: Vec<object_store::ObjectInfo> = store
        .list()
        .await
        .map_err(|e| BusError::nats("object_sweep", e))?
        .try_collect()
        .await
        .map_err(|e| BusError::nats("object_sweep", e))?;
    let mut swept = crate::Swept::default();
    let mut referenced = std::collections::HashSet::new();
    for info in &infos {
        let stale = stale_prefixes.iter().any(|p| info.name.starts_with(p))
            && info.modified.is_some_and(|m| older_than(m, max_age));
        if stale && !info.deleted {
            store
                .delete(&info.name)
                .await
                .map_err(|e| BusError::nats("object_sweep", e))?;
            swept.objects.push(info.name.clone());
        } else {
            referenced.insert(info.nuid.clone());
        }
    }
    let stream = js
        .get_stream(format!("OBJ_{bucket}"))
        .await
        .map_err(|e| BusError::nats("object_sweep", e))?;
    let prefix = format!("$O.{bucket}.C.");
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(format!("{prefix}>"))
        .await
        .map_err(|e| BusError::nats("object_sweep", e))?
        .try_collect()
        .await
        .map_err(|e| BusError::nats("object_sweep", e))?;
    for (subject, _) in subjects {
        let nuid = subject.strip_prefix(&prefix).unwrap_or_default();
        if referenced.contains(nuid) {
            continue;
        }
        let last = stream
            .get_last_raw_message_by_subject(&subject)
            .await
            .map_err(|e| BusError::nats("object_sweep", e))?;
        if older_than(last.time, max_age) {
            stream
                .purge()
                .filter(&subject)
                .await
                .map_err(|e| BusError::nats("object_sweep", e))?;
            swept.partial += 1;
        }
    }
    swept.objects.sort();
    Ok(swept)
}

pub(super) async fn get(
    js: &jetstream::Context,
    bucket: &str,
    name: &str,
) -> Result<Option<Bytes>> {
    check_name(name)?;
    let store = store(js, bucket).await?;
    let mut object = match store.get(name).await {
        Ok(object) => object,
        Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BusError::nats("object_get", e)),
    };
    let mut data = Vec::with_capacity(object.info().size);
    // The reader checks the object's SHA-256 digest at the end: a torn object is an error.
    object
        .read_to_end(&mut data)
        .await
        .map_err(|e| BusError::nats("object_get", e))?;
    Ok(Some(Bytes::from(data)))
}

pub(super) async fn info(
    js: &jetstream::Context,
    bucket: &str,
    name: &str,
) -> Result<Option<ObjectInfo>> {
    check_name(name)?;
    let store = store(js, bucket).await?;
    match store.info(name).await {
        Ok(info) if !info.deleted => Ok(Some(ObjectInfo {
            name: info.name,
            size: info.size as u64,
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(None),
        Err(e) => Err(BusError::nats("object_info", e)),
    }
}

pub(super) async fn delete(js: &jetstream::Context, bucket: &str, name: &str) -> Result<()> {
    if info(js, bucket, name).await?.is_none() {
        return Ok(());
    }
    let store = store(js, bucket).await?;
    store
        .delete(name)
        .await
        .map_err(|e| BusError::nats("object_delete", e))
}

pub(super) async fn list(js: &jetstream::Context, bucket: &str) -> Result<Vec<ObjectInfo>> {
    let store = store(js, bucket).await?;
    let mut out: Vec<ObjectInfo> = store
        .list()
        .await
        .map_err(|e| BusError::nats("object_list", e))?
        .map_ok(|info| ObjectInfo {
            name: info.name,
            size: info.size as u64,
        })
        .try_collect()
        .await
        .map_err(|e| BusError::nats("object_list", e))?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    // The listing has one entry per version written; keep the last of each name.
    out.dedup_by(|later, earlier| later.name == earlier.name);
    Ok(out)
}
