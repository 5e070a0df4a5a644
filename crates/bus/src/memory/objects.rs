//! The object store: without a data directory the objects live in memory; with one each is a
//! file `objects/<bucket>/<name>`, written to a temporary file and renamed into place.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{MemoryBus, files};
use crate::{BusError, ObjectInfo, Result, Transport, valid_object_name};

pub(super) fn ensure(bus: &MemoryBus, bucket: &str) -> Result<()> {
    if let Some(dir) = bus.inner.path(&["objects", bucket]) {
        if let Some(parent) = dir.parent() {
            files::private_dir(parent)?;
        }
        files::private_dir(&dir)?;
    }
    bus.inner
        .lock()
        .object_stores
        .entry(bucket.to_string())
        .or_default();
    Ok(())
}

pub(super) async fn put(
    bus: &MemoryBus,
    bucket: &str,
    name: &str,
    data: Bytes,
) -> Result<ObjectInfo> {
    let info = ObjectInfo {
        name: name.to_string(),
        size: data.len() as u64,
    };
    match bus.object_path(bucket, name)? {
        Some(path) => {
            let tmp = path.with_file_name(format!(
                ".tmp-{name}-{}-{}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            tokio::task::spawn_blocking(move || write_atomically(&tmp, &path, &data))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))??;
        }
        None => {
            let mut state = bus.inner.lock();
            let store = state
                .object_stores
                .get_mut(bucket)
                .ok_or_else(|| BusError::NoObjectStore(bucket.to_string()))?;
            store.insert(name.to_string(), data);
        }
    }
    Ok(info)
}

pub(super) async fn get(bus: &MemoryBus, bucket: &str, name: &str) -> Result<Option<Bytes>> {
    match bus.object_path(bucket, name)? {
        Some(path) => {
            let read = tokio::task::spawn_blocking(move || fs::read(path))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            match read {
                Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        None => Ok(bus
            .inner
            .lock()
            .object_stores
            .get(bucket)
            .and_then(|store| store.get(name).cloned())),
    }
}

pub(super) async fn put_reader(
    bus: &MemoryBus,
    bucket: &str,
    name: &str,
    mut data: crate::ObjectReader,
) -> Result<ObjectInfo> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let source_failed = |e: std::io::Error| BusError::ObjectSource {
        name: name.to_string(),
        reason: e.to_string(),
    };
    let Some(path) = bus.object_path(bucket, name)? else {
        // No data directory: the objects live in memory anyway.
        let mut whole = Vec::new();
        data.read_to_end(&mut whole).await.map_err(source_failed)?;
        return bus.object_put(bucket, name, whole.into()).await;
    };
    let tmp = path.with_file_name(format!(
        ".tmp-{name}-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = async {
        let mut file = files::create_async(&tmp).await?;
        let mut chunk = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = data.read(&mut chunk).await.map_err(source_failed)?;
            if n == 0 {
                break;
            }
            file.write_all(&chunk[..n]).await?;
            size += n as u64;
        }
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok::<u64, BusError>(size)
    }
    .await;
    let size = match written {
        Ok(size) => size,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    if let Some(dir) = path.parent()
        && let Ok(dir) = tokio::fs::File::open(dir).await
    {
        // Makes the rename itself durable where the platform allows it.
        let _ = dir.sync_all().await;
    }
    Ok(ObjectInfo {
        name: name.to_string(),
        size,
    })
}

pub(super) async fn reader(
    bus: &MemoryBus,
    bucket: &str,
    name: &str,
) -> Result<Option<crate::ObjectReader>> {
    match bus.object_path(bucket, name)? {
        // An open file keeps its bytes even if the object is replaced or removed meanwhile.
        Some(path) => match tokio::fs::File::open(path).await {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        },
        None => Ok(bus
            .object_get(bucket, name)
            .await?
            .map(|b| Box::new(std::io::Cursor::new(b)) as crate::ObjectReader)),
    }
}

pub(super) fn sweep(
    bus: &MemoryBus,
    bucket: &str,
    stale_prefixes: &[&str],
    max_age: Duration,
) -> Result<crate::Swept> {
    if !bus.inner.lock().object_stores.contains_key(bucket) {
        return Err(BusError::NoObjectStore(bucket.to_string()));
    }
    // Without a data directory nothing is written half-way, and objects keep no time.
    let Some(dir) = bus.inner.path(&["objects", bucket]) else {
        return Ok(crate::Swept::default());
    };
    let mut swept = crate::Swept::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let partial = name.starts_with(".tmp-");
        let stale = stale_prefixes.iter().any(|p| name.starts_with(p));
        if !(partial || stale) {
            continue;
        }
        let old = entry
            .metadata()?
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age > max_age);
        if !old {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        if partial {
            swept.partial += 1;
        } else {
            swept.objects.push(name);
        }
    }
    swept.objects.sort();
    Ok(swept)
}

pub(super) fn info(bus: &MemoryBus, bucket: &str, name: &str) -> Result<Option<ObjectInfo>> {
    let size = match bus.object_path(bucket, name)? {
        Some(path) => match fs::metadata(path) {
            Ok(meta) => Some(meta.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        },
        None => bus
            .inner
            .lock()
            .object_stores
            .get(bucket)
            .and_then(|store| store.get(name).map(|b| b.len() as u64)),
    };
    Ok(size.map(|size| ObjectInfo {
        name: name.to_string(),
        size,
    }))
}

pub(super) fn delete(bus: &MemoryBus, bucket: &str, name: &str) -> Result<()> {
    match bus.object_path(bucket, name)? {
        Some(path) => match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        },
        None => {
            if let Some(store) = bus.inner.lock().object_stores.get_mut(bucket) {
                store.remove(name);
            }
            Ok(())
        }
    }
}

pub(super) fn list(bus: &MemoryBus, bucket: &str) -> Result<Vec<ObjectInfo>> {
    let known = bus.inner.lock().object_stores.get(bucket).cloned();
    let Some(in_memory) = known else {
        return Err(BusError::NoObjectStore(bucket.to_string()));
    };
    let mut out: Vec<ObjectInfo> = match bus.inner.path(&["objects", bucket]) {
        Some(dir) => {
            let mut out = Vec::new();
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                // Temporary files of writes in progress (or of a crash) are not objects.
                if valid_object_name(&name) && entry.file_type()?.is_file() {
                    out.push(ObjectInfo {
                        name,
                        size: entry.metadata()?.len(),
                    });
                }
            }
            out
        }
        None => in_memory
            .iter()
            .map(|(name, data)| ObjectInfo {
                name: name.clone(),
                size: data.len() as u64,
            })
            .collect(),
    };
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Distinguishes temporary files of concurrent writes of the same object.
static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Writes `data` to `tmp`, makes it durable, and renames it to `path`: a reader (or a
/// process started after a crash) sees the old file or the new one whole.
fn write_atomically(tmp: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    let written = (|| {
        let mut file = files::create(tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(tmp);
    }
    written?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        // Makes the rename itself durable where the platform allows it.
        let _ = dir.sync_all();
    }
    Ok(())
}

impl MemoryBus {
    /// The object's file (`None` without a data directory), after checking the name and
    /// that the store exists.
    fn object_path(&self, bucket: &str, name: &str) -> Result<Option<PathBuf>> {
        if !valid_object_name(name) {
            return Err(BusError::BadObjectName(name.to_string()));
        }
        if !self.inner.lock().object_stores.contains_key(bucket) {
            return Err(BusError::NoObjectStore(bucket.to_string()));
        }
        Ok(self.inner.path(&["objects", bucket, name]))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::Duration;

    use bytes::Bytes;

    use crate::{MemoryBus, Transport, names};

    #[tokio::test]
    async fn object_sweep_removes_old_temporary_files_of_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let objects = dir.path().join("objects").join(names::RAW_OBJECT_STORE);
        fs::write(objects.join(".tmp-upload-x-1-2"), b"half").unwrap();
        bus.object_put(
            names::RAW_OBJECT_STORE,
            "sha256-a",
            Bytes::from_static(b"a"),
        )
        .await
        .unwrap();
        let young = bus
            .object_sweep(
                names::RAW_OBJECT_STORE,
                &["upload-"],
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(young.partial, 0, "a write may still be in progress");
        tokio::time::sleep(Duration::from_millis(30)).await;
        let swept = bus
            .object_sweep(
                names::RAW_OBJECT_STORE,
                &["upload-"],
                Duration::from_millis(10),
            )
            .await
            .unwrap();
        assert_eq!(swept.partial, 1);
        assert!(!objects.join(".tmp-upload-x-1-2").exists());
        assert!(objects.join("sha256-a").exists());
    }

    #[tokio::test]
    async fn objects_survive_reopening_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let blob = Bytes::from(vec![7u8; 3 << 20]);
        {
            let bus = MemoryBus::open(dir.path()).await.unwrap();
            names::ensure_all(&bus, 1).await.unwrap();
            bus.object_put(names::RAW_OBJECT_STORE, "a", Bytes::from_static(b"old"))
                .await
                .unwrap();
            bus.object_put(names::RAW_OBJECT_STORE, "a", blob.clone())
                .await
                .unwrap();
        }
        let files: Vec<String> = fs::read_dir(dir.path().join("objects").join("bw_raw"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            files,
            vec!["a".to_string()],
            "only the object, no temp file"
        );
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        let got = bus
            .object_get(names::RAW_OBJECT_STORE, "a")
            .await
            .unwrap()
            .expect("kept across a restart");
        assert_eq!(got, blob);
    }
}
