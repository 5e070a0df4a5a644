//! The embedded bus's data directory as an attacker with a shell on the machine sees it:
//! owner-only modes (files 0600, directories 0700), and no trace of a deleted key-value
//! entry (a subscription's secret) once the log is compacted.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use borderwatch_bus::{MemoryBus, Outgoing, Transport, names};
use bytes::Bytes;
use futures::StreamExt;

/// Every path under `dir` (itself included), with its permission bits.
fn modes(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), meta.permissions().mode() & 0o777, meta.is_dir()));
        if meta.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out
}

fn assert_owner_only(dir: &Path) {
    let all = modes(dir);
    assert!(all.iter().any(|(_, _, d)| !d), "no files were written");
    for (path, mode, is_dir) in all {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(
            mode,
            want,
            "{} has mode {mode:o}, want {want:o}",
            path.display()
        );
    }
}

/// Whether `needle` occurs in any file under `dir`.
fn occurs_under(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    modes(dir)
        .into_iter()
        .filter(|(_, _, d)| !d)
        .filter(|(p, _, _)| {
            fs::read(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        })
        .map(|(p, _, _)| p)
        .collect()
}

/// Writes to every kind of file the bus keeps: streams, buckets, consumer acks, objects.
async fn fill(bus: &MemoryBus) {
    names::ensure_all(bus, 1).await.unwrap();
    bus.publish(Outgoing::new("bw.surge.PRK.study", "a").with_id("x"))
        .await
        .unwrap();
    bus.kv_put(names::SUBSCRIPTIONS_BUCKET, "s1", Bytes::from_static(b"v"))
        .await
        .unwrap();
    bus.object_put(names::RAW_OBJECT_STORE, "o1", Bytes::from_static(b"raw"))
        .await
        .unwrap();
    let mut deliveries = bus
        .consume(
            names::SURGE_STREAM,
            "d",
            "bw.surge.>",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    deliveries
        .next()
        .await
        .unwrap()
        .unwrap()
        .ack()
        .await
        .unwrap();
}

#[tokio::test]
async fn files_are_0600_and_directories_0700() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let bus = MemoryBus::open(&dir).await.unwrap();
    fill(&bus).await;
    assert_owner_only(&dir);
}

#[tokio::test]
async fn opening_a_data_directory_tightens_what_an_older_version_left_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    {
        let bus = MemoryBus::open(&dir).await.unwrap();
        fill(&bus).await;
    }
    for (path, _, is_dir) in modes(&dir) {
        let mode = if is_dir { 0o755 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    let _bus = MemoryBus::open(&dir).await.unwrap();
    assert_owner_only(&dir);
}

#[tokio::test]
async fn a_deleted_secret_is_gone_from_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let bus = MemoryBus::open(&dir).await.unwrap();
    names::ensure_all(&bus, 1).await.unwrap();
    let secret = b"whsec-do-not-keep-me-4f1a";
    let record = [
        &b"{\"url\":\"http://127.0.0.1/h\",\"secret\":\""[..],
        secret,
        b"\"}",
    ]
    .concat();
    bus.kv_put(names::SUBSCRIPTIONS_BUCKET, "s1", record.into())
        .await
        .unwrap();
    bus.kv_put(
        names::SUBSCRIPTIONS_BUCKET,
        "s2",
        Bytes::from_static(b"kept"),
    )
    .await
    .unwrap();
    assert_eq!(
        occurs_under(&dir, secret).len(),
        1,
        "the secret is written to the bucket's log"
    );
    bus.kv_delete(names::SUBSCRIPTIONS_BUCKET, "s1")
        .await
        .unwrap();
    assert_eq!(occurs_under(&dir, secret), Vec::<PathBuf>::new());
    // The live entry survives the compaction, and a restart.
    drop(bus);
    let bus = MemoryBus::open(&dir).await.unwrap();
    names::ensure_all(&bus, 1).await.unwrap();
    assert_eq!(
        bus.kv_keys(names::SUBSCRIPTIONS_BUCKET).await.unwrap(),
        vec!["s2".to_string()]
    );
}

#[tokio::test]
async fn an_overwritten_value_is_gone_after_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let old = b"old-secret-77c2";
    {
        let bus = MemoryBus::open(&dir).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        bus.kv_put(names::SUBSCRIPTIONS_BUCKET, "s1", Bytes::from_static(old))
            .await
            .unwrap();
        bus.kv_put(
            names::SUBSCRIPTIONS_BUCKET,
            "s1",
            Bytes::from_static(b"new"),
        )
        .await
        .unwrap();
        assert_eq!(
            occurs_under(&dir, old).len(),
            1,
            "a put alone does not compact"
        );
    }
    let bus = MemoryBus::open(&dir).await.unwrap();
    names::ensure_all(&bus, 1).await.unwrap();
    assert_eq!(occurs_under(&dir, old), Vec::<PathBuf>::new());
    assert_eq!(
        bus.kv_get(names::SUBSCRIPTIONS_BUCKET, "s1")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"new"[..])
    );
}

#[tokio::test]
async fn a_log_of_overwrites_stays_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let bus = MemoryBus::open(&dir).await.unwrap();
    names::ensure_all(&bus, 1).await.unwrap();
    let value = Bytes::from(vec![b'v'; 100]);
    for i in 0..10_000 {
        bus.kv_put(names::SERIES_BUCKET, &format!("k{}", i % 10), value.clone())
            .await
            .unwrap();
    }
    let log = dir.join("kv").join(format!("{}.log", names::SERIES_BUCKET));
    let size = fs::metadata(&log).unwrap().len();
    // 10,000 records are about 1.5 MB; compaction keeps at most ~1,000 dead ones.
    assert!(size < 300_000, "the log grew to {size} bytes");
    assert_eq!(bus.kv_keys(names::SERIES_BUCKET).await.unwrap().len(), 10);
}
