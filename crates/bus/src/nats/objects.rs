//! The object store over NATS: JetStream's object store (`OBJ_<bucket>` streams, objects cut
//! into chunks), so that blobs of any size, larger than a message, are kept durably.

use async_nats::jetstream::context::{GetStreamError, ObjectStoreErrorKind};
use async_nats::jetstream::object_store::{self, GetErrorKind, InfoErrorKind, ObjectStore};
use async_nats::jetstream::stream::StorageType;
use async_nats::jetstream::{self};
use bytes::Bytes;
use futures::TryStreamExt;
use tokio::io::AsyncReadExt;

use crate::{BusError, ObjectInfo, Result, valid_object_name};

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
