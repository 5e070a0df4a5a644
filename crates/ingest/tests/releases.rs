//! Releases: exact bytes kept, same bytes twice, refused files and failures that change
//! nothing, replay, revisions and dropped categories, on the in-process bus (and, for
//! uploads bigger than a NATS message, on a real nats-server).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use borderwatch_bus::{
    Bus, BusError, Delivery, Headers, MemoryBus, Message, NatsBus, ObjectInfo, ObjectReader,
    Outgoing, PubAck, Request, StreamSpec, Transport, names, obs,
};
use borderwatch_ingest::service::{self, ReplayError, StagedUpload, Submission};
use borderwatch_ingest::{IngestError, ReadOptions};
use borderwatch_ingest_client as client;
use borderwatch_model::{MissingCategory, Period, Release, ReleaseMarker, Revision};
use borderwatch_test_support::NatsServer;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

fn csv(rows: &[(&str, &str, &str, u64)]) -> Bytes {
    let mut out = String::from("source,period,country,category,count\n");
    for (country, category, period, count) in rows {
        out.push_str(&format!("fsb,{period},{country},{category},{count}\n"));
    }
    Bytes::from(out)
}

fn generic(bytes: Bytes) -> Submission {
    Submission {
        format: Some("generic".into()),
        source: None,
        bytes,
    }
}

async fn memory_bus(dir: &std::path::Path) -> Bus {
    let bus = MemoryBus::open(dir).await.expect("bus opens");
    names::ensure_all(&bus, 1).await.expect("streams");
    Arc::new(bus)
}

/// Every stored message of a stream matching `filter` (the stream is not followed live).
async fn stored(bus: &dyn Transport, stream: &str, filter: &str) -> Vec<Message> {
    let last = bus.last_seq(stream).await.expect("last seq");
    let mut out = Vec::new();
    if last == 0 {
        return out;
    }
    let mut all = bus.replay(stream, ">", 1).await.expect("replay");
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), all.next())
            .await
            .expect("stored messages come at once")
            .expect("stream open")
            .expect("message");
        let seq = msg.seq;
        if borderwatch_bus::subject_matches(filter, &msg.subject) {
            out.push(msg);
        }
        if seq >= last {
            return out;
        }
    }
}

/// Every current figure, as `bw.obs.<source>.<country>.<category>.<period>` and its count:
/// the series folded (`borderwatch_bus::obs`).
async fn figures(bus: &dyn Transport) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = current(bus)
        .await
        .into_iter()
        .map(|(key, f)| (key, f.count))
        .collect();
    out.sort();
    out
}

/// Every current figure by `bw.obs.<source>.<country>.<category>.<period>`.
async fn current(bus: &dyn Transport) -> BTreeMap<String, obs::Figure> {
    let mut out = BTreeMap::new();
    for (series, figures) in obs::figures_of(bus, names::ALL_OBS_SERIES)
        .await
        .expect("figures")
    {
        for (period, figure) in figures {
            out.insert(format!("{}.{period}", series.subject()), figure);
        }
    }
    out
}

/// Every stored version of one figure, oldest first: the series' messages that hold it.
async fn versions(
    bus: &dyn Transport,
    source: &str,
    country: &str,
    category: &str,
    period: &str,
) -> Vec<u64> {
    let subject = names::obs_series_subject(source, country, category);
    stored(bus, names::OBS_STREAM, &subject)
        .await
        .iter()
        .filter_map(|m| {
            let batch: obs::SeriesFigures =
                serde_json::from_slice(&m.payload).expect("series figures");
            batch
                .figures
                .iter()
                .find(|(p, _)| p == period)
                .map(|(_, c)| *c)
        })
        .collect()
}

/// Everything a release can change: the figures, the streams' last sequences, the release
/// records and the objects.
#[derive(Debug, PartialEq)]
struct Snapshot {
    figures: Vec<(String, u64)>,
    seqs: Vec<u64>,
    releases: Vec<String>,
    objects: Vec<(String, u64)>,
}

async fn snapshot(bus: &dyn Transport) -> Snapshot {
    let mut seqs = Vec::new();
    for stream in [
        names::OBS_STREAM,
        names::RELEASE_STREAM,
        names::REVISION_STREAM,
        names::MISSING_STREAM,
    ] {
        seqs.push(bus.last_seq(stream).await.expect("last seq"));
    }
    Snapshot {
        figures: figures(bus).await,
        seqs,
        releases: bus.kv_keys(names::RELEASES_BUCKET).await.expect("keys"),
        objects: bus
            .object_list(names::RAW_OBJECT_STORE)
            .await
            .expect("objects")
            .into_iter()
            .map(|o| (o.name, o.size))
            .collect(),
    }
}

fn markers(msgs: &[Message]) -> Vec<ReleaseMarker> {
    msgs.iter()
        .map(|m| serde_json::from_slice(&m.payload).expect("marker"))
        .collect()
}

fn period(s: &str) -> Period {
    s.parse().expect("period")
}

const GOOD: &[(&str, &str, &str, u64)] = &[
    ("PRK", "study", "2024-Q2", 900),
    ("PRK", "study", "2024-Q3", 3765),
    ("PRK", "work", "2024-Q3", 2000),
];

#[tokio::test]
async fn a_release_keeps_its_exact_bytes_named_in_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    // Windows line endings and a BOM: the bytes kept are the bytes sent, not a re-encoding.
    let text = String::from_utf8(csv(GOOD).to_vec())
        .unwrap()
        .replace('\n', "\r\n");
    let bytes = Bytes::from([&b"\xef\xbb\xbf"[..], text.as_bytes()].concat());
    let release = service::ingest(bus.as_ref(), generic(bytes.clone()))
        .await
        .expect("ingested");
    let raw = release
        .raw
        .clone()
        .expect("the record says where the bytes are");
    assert_eq!(raw.store, names::RAW_OBJECT_STORE);
    assert_eq!(raw.name, names::raw_object_name(&release.content_sha256));
    let kept = bus
        .object_get(&raw.store, &raw.name)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(kept, bytes);
    // The record is in the releases bucket under the content hash, with the same pointer.
    let record: Release = serde_json::from_slice(
        &bus.kv_get(names::RELEASES_BUCKET, &release.content_sha256)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record.raw, Some(raw));
}

#[tokio::test]
async fn the_same_bytes_twice_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let first = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .expect("first");
    assert_eq!(first.new_observations, 3);
    let before = snapshot(bus.as_ref()).await;
    let again = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .expect("again");
    assert!(again.duplicate);
    assert_eq!(again.new_observations, 0);
    assert_eq!(again.id, first.id);
    assert_eq!(snapshot(bus.as_ref()).await, before);
}

#[tokio::test]
async fn the_same_bytes_for_another_source_are_another_release() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let bytes = Bytes::from_static(b"period,country,category,count\n2024-Q3,PRK,study,3765\n");
    let sub = |source: &str| Submission {
        format: None,
        source: Some(source.into()),
        bytes: bytes.clone(),
    };
    let a = service::ingest(bus.as_ref(), sub("fsb"))
        .await
        .expect("fsb");
    let b = service::ingest(bus.as_ref(), sub("mvd"))
        .await
        .expect("mvd");
    assert!(!b.duplicate, "a second source is not a repeat of the first");
    assert_ne!(a.id, b.id);
    assert_eq!((a.new_observations, b.new_observations), (1, 1));
    let again = service::ingest(bus.as_ref(), sub("mvd"))
        .await
        .expect("mvd again");
    assert!(again.duplicate);
    assert_eq!(again.id, b.id);
    let subjects: Vec<String> = figures(bus.as_ref())
        .await
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
}

#[tokio::test]
async fn a_native_file_without_a_format_is_detected_and_recorded_as_read() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let fsb = b"ENG,Trans,Type,Value,ISO_A2,ISO_A3,M49,Date\n\
North Korea,Air,In,\"1,234\",KP,PRK,408,9/30/2019\n";
    let release = service::ingest(
        bus.as_ref(),
        Submission {
            format: None,
            source: None,
            bytes: Bytes::from_static(fsb),
        },
    )
    .await
    .expect("detected and read");
    assert_eq!(release.format, "fsb_csv");
    assert_eq!(release.source, "fsb");
    assert_eq!(release.accepted, 1, "{release:?}");
}

#[tokio::test]
async fn a_refused_file_after_a_good_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .expect("good file");
    let before = snapshot(bus.as_ref()).await;
    assert_eq!(before.objects.len(), 1);
    let bad = [
        Bytes::from_static(b"source,period,country,category\nfsb,2025-Q1,PRK,study\n"),
        Bytes::from_static(b""),
        Bytes::from_static(b"\x00\x01\x02PK\x03\x04 not text"),
    ];
    for bytes in bad {
        let err = service::ingest(bus.as_ref(), generic(bytes.clone()))
            .await
            .expect_err("refused");
        assert!(err.is_input_error(), "{err}");
        assert_eq!(
            snapshot(bus.as_ref()).await,
            before,
            "refusing {bytes:?} changed the stored state"
        );
    }
}

/// The in-process bus, failing every publish on subjects starting with `fail_on`, and
/// logging the order of writes.
#[derive(Debug)]
struct Flaky {
    inner: MemoryBus,
    fail_on: Mutex<Option<&'static str>>,
    writes: Mutex<Vec<String>>,
    /// Objects read whole (`object_get`), by name.
    whole_reads: Mutex<Vec<String>>,
}

impl Flaky {
    async fn new(fail_on: Option<&'static str>) -> Flaky {
        let inner = MemoryBus::ephemeral();
        names::ensure_all(&inner, 1).await.unwrap();
        Flaky {
            inner,
            fail_on: Mutex::new(fail_on),
            writes: Mutex::new(Vec::new()),
            whole_reads: Mutex::new(Vec::new()),
        }
    }
}

impl Flaky {
    fn check(&self, subject: &str) -> borderwatch_bus::Result<()> {
        self.writes
            .lock()
            .unwrap()
            .push(format!("publish {subject}"));
        match *self.fail_on.lock().unwrap() {
            Some(prefix) if subject.starts_with(prefix) => Err(BusError::Nats {
                op: "publish",
                reason: "injected failure".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Transport for Flaky {
    async fn ensure_stream(&self, spec: &StreamSpec) -> borderwatch_bus::Result<()> {
        self.inner.ensure_stream(spec).await
    }
    async fn ensure_bucket(&self, bucket: &str, replicas: usize) -> borderwatch_bus::Result<()> {
        self.inner.ensure_bucket(bucket, replicas).await
    }
    async fn publish(&self, msg: Outgoing) -> borderwatch_bus::Result<PubAck> {
        self.check(&msg.subject)?;
        self.inner.publish(msg).await
    }
    async fn publish_all(&self, msgs: Vec<Outgoing>) -> borderwatch_bus::Result<Vec<PubAck>> {
        for m in &msgs {
            self.check(&m.subject)?;
        }
        self.inner.publish_all(msgs).await
    }
    async fn last_per_subject(
        &self,
        stream: &str,
        filters: &[&str],
    ) -> borderwatch_bus::Result<Vec<Message>> {
        self.inner.last_per_subject(stream, filters).await
    }
    async fn last_seq(&self, stream: &str) -> borderwatch_bus::Result<u64> {
        self.inner.last_seq(stream).await
    }
    async fn next_on_subject(
        &self,
        stream: &str,
        subject: &str,
        from: u64,
    ) -> borderwatch_bus::Result<Option<Message>> {
        self.inner.next_on_subject(stream, subject, from).await
    }
    async fn replay(
        &self,
        stream: &str,
        filter: &str,
        from_seq: u64,
    ) -> borderwatch_bus::Result<BoxStream<'static, borderwatch_bus::Result<Message>>> {
        self.inner.replay(stream, filter, from_seq).await
    }
    async fn purge_subject_below(
        &self,
        stream: &str,
        subject: &str,
        seq: u64,
    ) -> borderwatch_bus::Result<u64> {
        self.inner.purge_subject_below(stream, subject, seq).await
    }
    async fn consume(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        ack_wait: Duration,
    ) -> borderwatch_bus::Result<BoxStream<'static, borderwatch_bus::Result<Delivery>>> {
        self.inner.consume(stream, durable, filter, ack_wait).await
    }
    async fn consumer_lag(
        &self,
        stream: &str,
        durable: &str,
    ) -> borderwatch_bus::Result<Option<borderwatch_bus::ConsumerLag>> {
        self.inner.consumer_lag(stream, durable).await
    }
    async fn kv_get(&self, bucket: &str, key: &str) -> borderwatch_bus::Result<Option<Bytes>> {
        self.inner.kv_get(bucket, key).await
    }
    async fn kv_put(&self, bucket: &str, key: &str, value: Bytes) -> borderwatch_bus::Result<()> {
        self.writes.lock().unwrap().push(format!("kv_put {bucket}"));
        self.inner.kv_put(bucket, key, value).await
    }
    async fn kv_create(
        &self,
        bucket: &str,
        key: &str,
        value: Bytes,
    ) -> borderwatch_bus::Result<bool> {
        self.inner.kv_create(bucket, key, value).await
    }
    async fn kv_delete(&self, bucket: &str, key: &str) -> borderwatch_bus::Result<()> {
        self.inner.kv_delete(bucket, key).await
    }
    async fn kv_keys(&self, bucket: &str) -> borderwatch_bus::Result<Vec<String>> {
        self.inner.kv_keys(bucket).await
    }
    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> borderwatch_bus::Result<Message> {
        self.inner.request(subject, headers, payload, timeout).await
    }
    async fn serve(
        &self,
        subject: &str,
        queue: &str,
    ) -> borderwatch_bus::Result<BoxStream<'static, Request>> {
        self.inner.serve(subject, queue).await
    }
    async fn ensure_object_store(
        &self,
        bucket: &str,
        replicas: usize,
    ) -> borderwatch_bus::Result<()> {
        self.inner.ensure_object_store(bucket, replicas).await
    }
    async fn object_put(
        &self,
        bucket: &str,
        name: &str,
        data: Bytes,
    ) -> borderwatch_bus::Result<ObjectInfo> {
        self.writes
            .lock()
            .unwrap()
            .push(format!("object_put {name}"));
        self.inner.object_put(bucket, name, data).await
    }
    async fn object_get(&self, bucket: &str, name: &str) -> borderwatch_bus::Result<Option<Bytes>> {
        self.whole_reads.lock().unwrap().push(name.to_string());
        self.inner.object_get(bucket, name).await
    }
    async fn object_put_reader(
        &self,
        bucket: &str,
        name: &str,
        data: ObjectReader,
    ) -> borderwatch_bus::Result<ObjectInfo> {
        self.writes
            .lock()
            .unwrap()
            .push(format!("object_put {name}"));
        self.inner.object_put_reader(bucket, name, data).await
    }
    async fn object_reader(
        &self,
        bucket: &str,
        name: &str,
    ) -> borderwatch_bus::Result<Option<ObjectReader>> {
        self.inner.object_reader(bucket, name).await
    }
    async fn object_info(
        &self,
        bucket: &str,
        name: &str,
    ) -> borderwatch_bus::Result<Option<ObjectInfo>> {
        self.inner.object_info(bucket, name).await
    }
    async fn object_delete(&self, bucket: &str, name: &str) -> borderwatch_bus::Result<()> {
        self.inner.object_delete(bucket, name).await
    }
    async fn object_list(&self, bucket: &str) -> borderwatch_bus::Result<Vec<ObjectInfo>> {
        self.inner.object_list(bucket).await
    }
    fn max_payload(&self) -> usize {
        self.inner.max_payload()
    }
    fn is_connected(&self) -> bool {
        true
    }
    fn kind(&self) -> &'static str {
        "flaky"
    }
}

#[tokio::test]
async fn the_bytes_are_kept_before_anything_is_published() {
    let bus = Flaky::new(None).await;
    service::ingest(&bus, generic(csv(GOOD)))
        .await
        .expect("ingested");
    let writes = bus.writes.lock().unwrap().clone();
    assert!(writes[0].starts_with("object_put sha256-"), "{writes:?}");
    assert!(writes[1].starts_with("publish bw.obs."), "{writes:?}");
    assert_eq!(
        writes.last().map(String::as_str),
        Some("kv_put bw_releases"),
        "the record is written last: {writes:?}"
    );
}

#[tokio::test]
async fn a_failure_half_way_lists_no_release_and_sending_again_completes_it() {
    let bus = Flaky::new(Some("bw.release.")).await;
    let err = service::ingest(&bus, generic(csv(GOOD)))
        .await
        .expect_err("the marker publish fails");
    assert!(matches!(err, IngestError::Unavailable(_)), "{err}");
    assert!(!err.is_input_error());
    assert!(
        bus.kv_keys(names::RELEASES_BUCKET)
            .await
            .unwrap()
            .is_empty(),
        "a release that failed half-way is not listed"
    );
    assert_eq!(bus.last_seq(names::RELEASE_STREAM).await.unwrap(), 0);
    // The observations of the failed attempt are stored: they count as this release's own
    // when the same file comes again, so its marker still names every one of them.
    assert_eq!(figures(&bus).await.len(), 3);

    *bus.fail_on.lock().unwrap() = None;
    let release = service::ingest(&bus, generic(csv(GOOD)))
        .await
        .expect("sent again");
    assert!(!release.duplicate);
    assert_eq!(release.new_observations, 3);
    let sent = markers(&stored(&bus, names::RELEASE_STREAM, "bw.release.>").await);
    assert_eq!(sent.len(), 1);
    let mut periods: Vec<(String, Vec<Period>)> = sent[0]
        .changes
        .iter()
        .map(|c| (c.category.clone(), c.periods.clone()))
        .collect();
    periods.sort();
    assert_eq!(
        periods,
        vec![
            ("study".into(), vec![period("2024-Q2"), period("2024-Q3")]),
            ("work".into(), vec![period("2024-Q3")]),
        ]
    );
    assert_eq!(bus.kv_keys(names::RELEASES_BUCKET).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_after_a_failure_half_way_still_announces_revisions_and_missing_categories() {
    let bus = Flaky::new(None).await;
    service::ingest(&bus, generic(rows_csv(&history())))
        .await
        .unwrap();
    // 2025 without study and work, and a revised 2024-Q4 total for PRK.
    let mut rows = vec![("PRK", "total", "2024-Q4".to_string(), 5_000)];
    for country in ["PRK", "CHN"] {
        for category in ["total", "tourism"] {
            rows.push((country, category, "2025-Q1".to_string(), 150));
        }
    }
    let file = rows_csv(&rows);
    *bus.fail_on.lock().unwrap() = Some("bw.release.");
    service::ingest(&bus, generic(file.clone()))
        .await
        .expect_err("fails after the observations");
    *bus.fail_on.lock().unwrap() = None;
    let release = service::ingest(&bus, generic(file)).await.expect("retried");
    assert_eq!(release.revisions, 1);
    assert_eq!(release.missing.len(), 2, "{:?}", release.missing);
    assert_eq!(release.new_observations, 5);
    // Announced once each, though published by both attempts (same message ids).
    assert_eq!(bus.last_seq(names::REVISION_STREAM).await.unwrap(), 1);
    assert_eq!(bus.last_seq(names::MISSING_STREAM).await.unwrap(), 2);
    let marker = markers(&stored(&bus, names::RELEASE_STREAM, "bw.release.>").await)
        .pop()
        .unwrap();
    let prk_total = marker
        .changes
        .iter()
        .find(|c| c.country.code() == "PRK" && c.category == "total")
        .unwrap();
    assert_eq!(prk_total.periods, vec![period("2025-Q1")]);
    assert_eq!(prk_total.revised, vec![period("2024-Q4")]);
}

#[tokio::test]
async fn replay_on_an_intact_system_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let release = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .expect("ingested");
    let before = snapshot(bus.as_ref()).await;
    let report = service::replay(bus.as_ref(), &release.id)
        .await
        .expect("replayed");
    assert_eq!(report.restored, 0);
    assert_eq!(report.accepted, 3);
    assert_eq!(snapshot(bus.as_ref()).await, before);
}

#[tokio::test]
async fn replay_restores_lost_observations_and_keeps_later_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = {
        let bus = memory_bus(dir.path()).await;
        let first = service::ingest(bus.as_ref(), generic(csv(GOOD)))
            .await
            .expect("first");
        let second = service::ingest(
            bus.as_ref(),
            generic(csv(&[
                ("PRK", "study", "2024-Q3", 3800),
                ("PRK", "study", "2024-Q4", 3752),
            ])),
        )
        .await
        .expect("second");
        (first, second)
    };
    let expected = vec![
        ("bw.obs.fsb.PRK.study.2024-Q2".to_string(), 900),
        ("bw.obs.fsb.PRK.study.2024-Q3".to_string(), 3800),
        ("bw.obs.fsb.PRK.study.2024-Q4".to_string(), 3752),
        ("bw.obs.fsb.PRK.work.2024-Q3".to_string(), 2000),
    ];
    // The observations are lost: a new, empty BW_OBS.
    std::fs::remove_file(dir.path().join("streams").join("BW_OBS.log")).unwrap();
    let bus = memory_bus(dir.path()).await;
    assert!(figures(bus.as_ref()).await.is_empty());

    // Replayed newest first: the older release must not undo the revision.
    let report = service::replay(bus.as_ref(), &second.id)
        .await
        .expect("replay");
    assert_eq!(report.restored, 2);
    let report = service::replay(bus.as_ref(), &first.id)
        .await
        .expect("replay");
    assert_eq!(
        report.restored, 2,
        "2024-Q2 and work; not the revised 2024-Q3"
    );
    assert_eq!(report.superseded, 1);
    assert_eq!(figures(bus.as_ref()).await, expected);
    // Each restored figure names its own release.
    let q2 = current(bus.as_ref()).await["bw.obs.fsb.PRK.study.2024-Q2"].clone();
    assert_eq!(q2.release_id, first.id);
    // A replay restores; it announces nothing again.
    assert_eq!(bus.last_seq(names::REVISION_STREAM).await.unwrap(), 1);

    // And again: nothing more.
    let before = snapshot(bus.as_ref()).await;
    for id in [&first.id, &second.id] {
        let report = service::replay(bus.as_ref(), id).await.expect("replay");
        assert_eq!(report.restored, 0);
    }
    assert_eq!(snapshot(bus.as_ref()).await, before);
}

#[tokio::test]
async fn replay_restores_a_deleted_obs_stream_on_nats() {
    let server = NatsServer::start();
    let bus: Bus = Arc::new(
        NatsBus::connect(&server.url(), "releases-test")
            .await
            .expect("connects"),
    );
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let release = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    let before = figures(bus.as_ref()).await;
    assert_eq!(before.len(), 3);
    let report = service::replay(bus.as_ref(), &release.id).await.unwrap();
    assert_eq!(report.restored, 0, "intact: nothing to add");

    // The observations are lost: BW_OBS deleted, then created again, empty.
    let client = async_nats::connect(server.url()).await.unwrap();
    async_nats::jetstream::new(client)
        .delete_stream(names::OBS_STREAM)
        .await
        .unwrap();
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    assert!(figures(bus.as_ref()).await.is_empty());

    let report = service::replay(bus.as_ref(), &release.id).await.unwrap();
    assert_eq!(report.restored, 3);
    assert_eq!(figures(bus.as_ref()).await, before);

    // Lost again, by a purge this time, within the duplicate window: restored again.
    let client = async_nats::connect(server.url()).await.unwrap();
    async_nats::jetstream::new(client)
        .get_stream(names::OBS_STREAM)
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    assert!(figures(bus.as_ref()).await.is_empty());
    let report = service::replay(bus.as_ref(), &release.id).await.unwrap();
    assert_eq!(report.restored, 3);
    assert_eq!(figures(bus.as_ref()).await, before);
}

#[tokio::test]
async fn replay_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let err = service::replay(bus.as_ref(), "rel-0000000000000000")
        .await
        .expect_err("unknown");
    assert!(matches!(err, ReplayError::NotFound(_)), "{err}");
    let release = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    let raw = release.raw.clone().unwrap();
    bus.object_put(&raw.store, &raw.name, Bytes::from_static(b"tampered"))
        .await
        .unwrap();
    let err = service::replay(bus.as_ref(), &release.id)
        .await
        .expect_err("changed bytes");
    assert!(matches!(err, ReplayError::BytesChanged { .. }), "{err}");
    assert!(err.to_string().contains(&release.content_sha256), "{err}");
    bus.object_delete(&raw.store, &raw.name).await.unwrap();
    let err = service::replay(bus.as_ref(), &release.id)
        .await
        .expect_err("missing bytes");
    assert!(matches!(err, ReplayError::BytesMissing { .. }), "{err}");
}

#[tokio::test]
async fn a_changed_figure_is_a_new_version_announced_as_a_revision() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let first = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    let second = service::ingest(
        bus.as_ref(),
        generic(csv(&[
            ("PRK", "study", "2024-Q2", 90_000),
            ("PRK", "study", "2024-Q3", 3765),
            ("PRK", "study", "2024-Q4", 3752),
        ])),
    )
    .await
    .unwrap();
    assert_eq!(second.new_observations, 2);
    assert_eq!(second.revisions, 1);

    let revisions = stored(bus.as_ref(), names::REVISION_STREAM, "bw.revision.>").await;
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].subject, "bw.revision.fsb.PRK.study");
    let r: Revision = serde_json::from_slice(&revisions[0].payload).unwrap();
    assert_eq!(
        (r.period, r.old_count, r.new_count),
        (period("2024-Q2"), 900, 90_000)
    );
    assert_eq!(
        (r.old_release_id, r.release_id),
        (first.id, second.id.clone())
    );

    // Both versions are kept; the latest is the current figure.
    let counts = versions(bus.as_ref(), "fsb", "PRK", "study", "2024-Q2").await;
    assert_eq!(counts, vec![900, 90_000]);
    assert!(
        figures(bus.as_ref())
            .await
            .contains(&("bw.obs.fsb.PRK.study.2024-Q2".to_string(), 90_000))
    );

    // The marker tells the new period from the revised one: analytics tests only the new.
    let sent = markers(&stored(bus.as_ref(), names::RELEASE_STREAM, "bw.release.>").await);
    let last = sent.last().unwrap();
    assert_eq!(last.release_id, second.id);
    assert_eq!(last.changes.len(), 1);
    assert_eq!(last.changes[0].periods, vec![period("2024-Q4")]);
    assert_eq!(last.changes[0].revised, vec![period("2024-Q2")]);
}

#[tokio::test]
async fn two_sources_revising_the_same_country_category_and_period_are_two_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let file = |fsb: u64, other: u64| {
        Bytes::from(format!(
            "source,period,country,category,count\n\
             fsb,2024-Q2,PRK,study,{fsb}\nfsb,2024-Q3,PRK,study,50\n\
             ohss,2024-Q2,PRK,study,{other}\nohss,2024-Q3,PRK,study,60\n"
        ))
    };
    service::ingest(bus.as_ref(), generic(file(900, 400)))
        .await
        .unwrap();
    let second = service::ingest(bus.as_ref(), generic(file(901, 401)))
        .await
        .unwrap();
    assert_eq!(second.revisions, 2);
    // Each is its own message: under one message id the stream would have kept one.
    let revisions = stored(bus.as_ref(), names::REVISION_STREAM, "bw.revision.>").await;
    let mut subjects: Vec<&str> = revisions.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["bw.revision.fsb.PRK.study", "bw.revision.ohss.PRK.study"]
    );
}

/// FSB-like history: two countries, four purposes, 2019-Q1..2024-Q4.
fn history() -> Vec<(&'static str, &'static str, String, u64)> {
    let mut rows = Vec::new();
    for country in ["PRK", "CHN"] {
        for (c, category) in ["total", "study", "work", "tourism"]
            .into_iter()
            .enumerate()
        {
            for year in 2019..=2024 {
                for q in 1..=4 {
                    rows.push((
                        country,
                        category,
                        format!("{year}-Q{q}"),
                        100 + 10 * c as u64 + q,
                    ));
                }
            }
        }
    }
    rows
}

fn rows_csv(rows: &[(&str, &str, String, u64)]) -> Bytes {
    let borrowed: Vec<(&str, &str, &str, u64)> = rows
        .iter()
        .map(|(a, b, p, n)| (*a, *b, p.as_str(), *n))
        .collect();
    csv(&borrowed)
}

/// 2025 without study and work, as the FSB published it.
fn release_2025(quarters: std::ops::RangeInclusive<u64>) -> Bytes {
    let mut rows = Vec::new();
    for country in ["PRK", "CHN"] {
        for category in ["total", "tourism"] {
            for q in quarters.clone() {
                rows.push((country, category, format!("2025-Q{q}"), 150 + q));
            }
        }
    }
    rows_csv(&rows)
}

#[tokio::test]
async fn a_dropped_category_is_announced_missing_not_read_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let first = service::ingest(bus.as_ref(), generic(rows_csv(&history())))
        .await
        .unwrap();
    assert!(first.missing.is_empty());

    let release = service::ingest(bus.as_ref(), generic(release_2025(1..=4)))
        .await
        .unwrap();
    let missing: Vec<(String, Vec<String>, Period)> = release
        .missing
        .iter()
        .map(|m| {
            (
                m.category.clone(),
                m.countries.iter().map(|c| c.code().to_string()).collect(),
                m.last_period,
            )
        })
        .collect();
    let both = vec!["CHN".to_string(), "PRK".to_string()];
    assert_eq!(
        missing,
        vec![
            ("study".into(), both.clone(), period("2024-Q4")),
            ("work".into(), both, period("2024-Q4")),
        ]
    );
    let events = stored(bus.as_ref(), names::MISSING_STREAM, "bw.missing.>").await;
    let subjects: Vec<&str> = events.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        vec!["bw.missing.fsb.study", "bw.missing.fsb.work"]
    );
    let event: MissingCategory = serde_json::from_slice(&events[0].payload).unwrap();
    assert_eq!(event, release.missing[0]);
    assert_eq!(event.release_id, release.id);

    // Nothing is stored for study in 2025: no zero, no figure at all.
    let study_2025: Vec<String> = current(bus.as_ref())
        .await
        .into_keys()
        .filter(|k| k.contains(".study.2025-"))
        .collect();
    assert!(study_2025.is_empty(), "{study_2025:?}");
    // The marker names only the series the release carried.
    let sent = markers(&stored(bus.as_ref(), names::RELEASE_STREAM, "bw.release.>").await);
    let last = sent.last().unwrap();
    assert!(
        last.changes
            .iter()
            .all(|c| c.category != "study" && c.category != "work")
    );

    // A later release of the same year (revised tourism) brings no new period: the
    // absence was announced already.
    let mut rows = Vec::new();
    for country in ["PRK", "CHN"] {
        rows.push((country, "tourism", "2025-Q1".to_string(), 999));
    }
    let again = service::ingest(bus.as_ref(), generic(rows_csv(&rows)))
        .await
        .unwrap();
    assert!(again.missing.is_empty(), "{:?}", again.missing);
    assert_eq!(bus.last_seq(names::MISSING_STREAM).await.unwrap(), 2);
}

#[tokio::test]
async fn a_category_published_in_the_release_is_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    service::ingest(bus.as_ref(), generic(rows_csv(&history())))
        .await
        .unwrap();
    // Only PRK is in this release: CHN's categories are not its business; PRK has all four.
    let mut rows = Vec::new();
    for category in ["total", "study", "work", "tourism"] {
        rows.push(("PRK", category, "2025-Q1".to_string(), 150));
    }
    let release = service::ingest(bus.as_ref(), generic(rows_csv(&rows)))
        .await
        .unwrap();
    assert!(release.missing.is_empty(), "{:?}", release.missing);
    assert_eq!(bus.last_seq(names::MISSING_STREAM).await.unwrap(), 0);
}

/// A long source name makes wide rows: several MiB with fewer rows to publish.
const BIG_SOURCE: &str = "a-source-with-a-long-name-that-makes-every-row-of-the-file-wide";

/// A generic CSV of about `mib` MiB.
fn big_csv(mib: usize) -> (Bytes, u64) {
    let mut out = String::from("source,period,country,category,count\n");
    let mut rows = 0u64;
    let countries = [
        "PRK", "CHN", "VNM", "KAZ", "UZB", "TJK", "KGZ", "IND", "TUR", "IRN", "MNG", "ARM",
    ];
    'fill: for year in 1900..2100 {
        for month in 1..=12 {
            for country in countries {
                for category in ["study", "work", "tourism", "private", "business", "transit"] {
                    out.push_str(&format!(
                        "{BIG_SOURCE},{year}-{month:02},{country},{category},{}\n",
                        rows % 9973
                    ));
                    rows += 1;
                    if out.len() >= mib << 20 {
                        break 'fill;
                    }
                }
            }
        }
    }
    (Bytes::from(out), rows)
}

#[tokio::test]
async fn an_upload_larger_than_a_nats_message_goes_through_the_object_store() {
    let server = NatsServer::start();
    let bus: Bus = Arc::new(
        NatsBus::connect(&server.url(), "releases-test")
            .await
            .expect("connects"),
    );
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let (bytes, rows) = big_csv(5);
    assert!(bytes.len() > 4 * bus.max_payload(), "{} bytes", bytes.len());
    let server_task = service::Server::bind(bus.clone()).await.unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(server_task.run(cancel.clone()));

    let release = client::submit(bus.as_ref(), generic(bytes.clone()))
        .await
        .expect("a 5 MiB upload is ingested");
    assert_eq!(release.accepted, rows);
    assert_eq!(release.bytes, bytes.len() as u64);
    assert!(release.rejected.is_empty());
    let raw = release.raw.clone().unwrap();
    let kept = bus
        .object_get(&raw.store, &raw.name)
        .await
        .unwrap()
        .unwrap();
    assert!(kept == bytes, "the exact bytes are kept");
    // The staged upload is gone; only the release's bytes remain.
    let objects: Vec<String> = bus
        .object_list(names::RAW_OBJECT_STORE)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(objects, vec![raw.name.clone()]);

    // The same big file again: a duplicate, through the same path.
    let again = client::submit(bus.as_ref(), generic(bytes)).await.unwrap();
    assert!(again.duplicate);

    // A big file of bad rows only (staged: bigger than a message): refused, nothing kept,
    // and the answer lists the first 1,000 rows only (a 25 MB file of bad rows made a 141 MB
    // answer).
    let mut text = String::from("source,period,country,category,count\n");
    for i in 0..40_000 {
        text.push_str(&format!(
            "{BIG_SOURCE},2024-Q{},PRK,study,not-a-number-{i}\n",
            i % 4 + 1
        ));
    }
    assert!(text.len() > bus.max_payload());
    let kept_before = bus.object_list(names::RAW_OBJECT_STORE).await.unwrap();
    let refused = client::submit(bus.as_ref(), generic(Bytes::from(text.clone())))
        .await
        .unwrap_err();
    let client::SubmitError::Rejected(body) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(body.error.code, "nothing_accepted", "{body:?}");
    assert!(
        body.error.message.contains("all 40000 data rows"),
        "{body:?}"
    );
    assert_eq!(body.error.details.len(), 1_000);
    assert_eq!(
        bus.object_list(names::RAW_OBJECT_STORE).await.unwrap(),
        kept_before,
        "a file of bad rows leaves no bytes"
    );
    // The same rows with one good row: a release, its answer small, its rejected rows cut
    // at 1,000 and counted in full.
    text.push_str(&format!("{BIG_SOURCE},2024-Q1,PRK,visa,7\n"));
    let release = client::submit(bus.as_ref(), generic(Bytes::from(text.clone())))
        .await
        .expect("a release with one good row");
    assert_eq!(release.accepted, 1);
    assert_eq!(release.rejected.len(), 1_000);
    assert_eq!(release.rejected_total, 40_000);
    assert!(release.rejected[0].value.starts_with("not-a-number"));
    assert!(serde_json::to_vec(&release).unwrap().len() < bus.max_payload());
    // Sent again: the duplicate answer lists the same rows (the record keeps as many).
    let again = client::submit(bus.as_ref(), generic(Bytes::from(text.clone())))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.rejected, release.rejected);
    assert_eq!(again.rejected_total, 40_000);
    let objects = bus.object_list(names::RAW_OBJECT_STORE).await.unwrap();
    assert!(
        objects.iter().all(|o| o.name.starts_with("sha256-")),
        "staged uploads and replies are removed: {objects:?}"
    );
    cancel.cancel();
    serving.await.unwrap().unwrap();
}

/// Puts `bytes` in the object store as an upload waiting for ingest, as `submit` does.
async fn stage(bus: &dyn Transport, name: &str, bytes: Bytes) -> StagedUpload {
    bus.object_put(names::RAW_OBJECT_STORE, name, bytes)
        .await
        .unwrap();
    StagedUpload {
        object: name.to_string(),
        format: None,
        source: None,
    }
}

/// Reads of a few dozen bytes and batches of three figures: every piece and batch boundary
/// a small file can have.
fn tiny_reads() -> ReadOptions {
    ReadOptions {
        chunk_bytes: 97,
        batch_rows: 3,
    }
}

/// The 2025 release with a revised 2024-Q4 figure, a rejected row and an exact repeat.
fn release_2025_with_everything() -> Bytes {
    let mut file = String::from_utf8(release_2025(1..=3).to_vec()).unwrap();
    file.push_str("fsb,2024-Q4,PRK,total,5000\n");
    file.push_str("fsb,2025-Q1,Atlantis,total,1\n");
    file.push_str("fsb,2025-Q1,PRK,total,151\n");
    Bytes::from(file)
}

/// What a release announced and published, in stream order, for comparing two ways of
/// ingesting it.
async fn published(bus: &dyn Transport) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (stream, filter) in [
        (names::REVISION_STREAM, "bw.revision.>"),
        (names::MISSING_STREAM, "bw.missing.>"),
        (names::RELEASE_STREAM, "bw.release.>"),
    ] {
        for m in stored(bus, stream, filter).await {
            let mut payload = String::from_utf8(m.payload.to_vec()).unwrap();
            // A marker's obs_seq is where its release's figures end in BW_OBS: a read a piece
            // at a time stores a series its pieces split in one message per piece, so the
            // sequence differs from a whole read's (the figures are compared on their own).
            if stream == names::RELEASE_STREAM {
                let mut marker: ReleaseMarker = serde_json::from_str(&payload).unwrap();
                assert!(marker.obs_seq.is_some());
                marker.obs_seq = Some(0);
                payload = serde_json::to_string(&marker).unwrap();
            }
            out.push((m.subject, payload));
        }
    }
    out
}

#[tokio::test]
async fn a_staged_generic_upload_is_read_a_piece_at_a_time_and_gives_what_a_whole_read_gives() {
    let file = release_2025_with_everything();

    let whole_bus = Flaky::new(None).await;
    service::ingest(&whole_bus, generic(rows_csv(&history())))
        .await
        .unwrap();
    let mut whole = service::ingest(&whole_bus, generic(file.clone()))
        .await
        .unwrap();

    let bus = Flaky::new(None).await;
    service::ingest(&bus, generic(rows_csv(&history())))
        .await
        .unwrap();
    let upload = stage(&bus, "upload-test-1", file.clone()).await;
    let mut streamed = service::ingest_object(&bus, upload, tiny_reads())
        .await
        .expect("streamed");
    assert!(
        bus.whole_reads.lock().unwrap().is_empty(),
        "no object is read whole: {:?}",
        bus.whole_reads.lock().unwrap()
    );

    // The figures checked by hand: 12 rows of 2025, one revision, one bad row, one repeat.
    assert_eq!(streamed.format, "generic");
    assert_eq!(streamed.accepted, 13);
    assert_eq!(streamed.new_observations, 13);
    assert_eq!(streamed.revisions, 1);
    assert_eq!(streamed.rejected.len(), 1);
    assert_eq!(streamed.rejected[0].value, "Atlantis");
    assert_eq!(streamed.rejected[0].row, 15);
    let missing: Vec<&str> = streamed
        .missing
        .iter()
        .map(|m| m.category.as_str())
        .collect();
    assert_eq!(missing, vec!["study", "work"]);
    // The kept bytes are the upload's, under their hash.
    let raw = streamed.raw.clone().unwrap();
    assert_eq!(raw.name, format!("sha256-{}", streamed.content_sha256));
    assert_eq!(
        bus.inner
            .object_get(&raw.store, &raw.name)
            .await
            .unwrap()
            .as_ref(),
        Some(&file)
    );

    // The same release, the same figures and the same announcements and markers as a whole
    // read, but for when it was received.
    for r in [&mut whole, &mut streamed] {
        r.received_at = String::new();
        r.received_at_ms = 0;
    }
    assert_eq!(streamed, whole);
    assert_eq!(figures(&bus).await, figures(&whole_bus).await);
    assert_eq!(published(&bus).await, published(&whole_bus).await);
}

#[tokio::test]
async fn a_staged_upload_that_is_bad_at_its_end_changes_nothing() {
    let bus = Flaky::new(None).await;
    service::ingest(&bus, generic(csv(GOOD))).await.unwrap();
    let before = snapshot(&bus).await;
    // Good rows for many batches, then binary data: the file is refused as a whole, after
    // batches of good figures were read.
    let mut file = String::from_utf8(rows_csv(&history()).to_vec()).unwrap();
    file.push_str("fsb,2025-Q1,PRK,total,1\0\0\n");
    let upload = stage(&bus, "upload-test-2", Bytes::from(file)).await;
    let err = service::ingest_object(&bus, upload, tiny_reads())
        .await
        .expect_err("a truncated file is refused");
    assert!(err.is_input_error(), "{err}");
    bus.object_delete(names::RAW_OBJECT_STORE, "upload-test-2")
        .await
        .unwrap();
    assert_eq!(snapshot(&bus).await, before, "nothing was stored");
}

#[tokio::test]
async fn a_staged_upload_that_failed_half_way_completes_when_sent_again_then_is_a_duplicate() {
    let bus = Flaky::new(None).await;
    service::ingest(&bus, generic(rows_csv(&history())))
        .await
        .unwrap();
    let file = release_2025_with_everything();
    *bus.fail_on.lock().unwrap() = Some("bw.release.");
    let upload = stage(&bus, "upload-test-3", file.clone()).await;
    service::ingest_object(&bus, upload.clone(), tiny_reads())
        .await
        .expect_err("fails at the markers, after every figure");
    assert!(bus.kv_keys(names::RELEASES_BUCKET).await.unwrap().len() == 1);
    *bus.fail_on.lock().unwrap() = None;
    let release = service::ingest_object(&bus, upload.clone(), tiny_reads())
        .await
        .expect("sent again");
    assert!(!release.duplicate);
    assert_eq!(release.new_observations, 13);
    assert_eq!(release.revisions, 1);
    assert_eq!(release.missing.len(), 2);
    // Announced once each, though both attempts published them (same message ids).
    assert_eq!(bus.last_seq(names::REVISION_STREAM).await.unwrap(), 1);
    assert_eq!(bus.last_seq(names::MISSING_STREAM).await.unwrap(), 2);

    let again = service::ingest_object(&bus, upload, tiny_reads())
        .await
        .expect("a third time");
    assert!(again.duplicate);
    assert_eq!(again.new_observations, 0);
    assert_eq!(
        again.rejected, release.rejected,
        "the rejected rows are listed again"
    );
}

#[tokio::test]
async fn a_staged_native_file_is_detected_whole_and_read_whole() {
    let bus = Flaky::new(None).await;
    let fsb =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../../testdata/borders/fsb_russia_entries_by_country_transport_2010q1-2020q1.csv",
        ))
        .expect("testdata/ is part of the repository");
    let upload = stage(&bus, "upload-test-4", Bytes::from(fsb)).await;
    let release = service::ingest_object(&bus, upload, ReadOptions::default())
        .await
        .expect("ingested");
    assert_eq!(release.format, "fsb_csv");
    assert!(release.rejected.is_empty());
    assert_eq!(
        bus.whole_reads.lock().unwrap().clone(),
        vec!["upload-test-4".to_string()],
        "a native format is read whole"
    );
}

// ---- issue 13: nothing accepted, one frequency per series, marking figures again ------

#[tokio::test]
async fn a_file_with_no_accepted_row_is_refused_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    let before = snapshot(bus.as_ref()).await;
    // A header and no data rows was a 201 and a release of nothing.
    let header_only = Bytes::from("source,period,country,category,count\n");
    let e = service::ingest(bus.as_ref(), generic(header_only))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "nothing_accepted", "{e}");
    assert!(e.to_string().contains("no data rows"), "{e}");
    assert_eq!(snapshot(bus.as_ref()).await, before);
}

#[tokio::test]
async fn a_monthly_figure_for_a_stored_quarterly_series_is_a_rejected_row() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    let before = markers(&stored(bus.as_ref(), names::RELEASE_STREAM, "bw.release.>").await);
    // study is quarterly in the stream: its monthly row would switch it (and drop the
    // quarters from detection); its year total and work's later quarter are taken.
    let release = service::ingest(
        bus.as_ref(),
        generic(csv(&[
            ("PRK", "study", "2024-10", 40),
            ("PRK", "study", "2024", 95_000),
            ("PRK", "work", "2024-Q4", 90_000),
        ])),
    )
    .await
    .unwrap();
    assert_eq!((release.accepted, release.rejected_total), (2, 1));
    let r = &release.rejected[0];
    assert_eq!(
        (r.row, r.column.as_str(), r.value.as_str()),
        (0, "period", "2024-10")
    );
    assert!(
        r.reason
            .contains("fsb/PRK/study is stored as a quarterly series"),
        "{}",
        r.reason
    );
    assert!(
        !figures(bus.as_ref())
            .await
            .iter()
            .any(|(subject, _)| subject.ends_with("2024-10")),
        "the monthly figure is not stored"
    );
    let sent = markers(&stored(bus.as_ref(), names::RELEASE_STREAM, "bw.release.>").await);
    assert_eq!(sent.len(), before.len() + 1);
    let periods: Vec<(String, Vec<Period>)> = sent
        .last()
        .unwrap()
        .changes
        .iter()
        .map(|c| (c.category.clone(), c.periods.clone()))
        .collect();
    assert_eq!(
        periods,
        vec![
            ("study".into(), vec![period("2024")]),
            ("work".into(), vec![period("2024-Q4")]),
        ]
    );
    // A file whose every figure is refused against the stream is no release.
    let e = service::ingest(bus.as_ref(), generic(csv(&[("PRK", "work", "2024-11", 1)])))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "nothing_accepted", "{e}");
}

#[tokio::test]
async fn a_corrected_file_after_a_failure_half_way_marks_what_the_failure_stored() {
    // The first attempt stored its figures and failed before its marker; the corrected file
    // (other bytes, another release) brought the same figures, so nothing was new and no
    // marker named them: they were never analysed.
    let bus = Flaky::new(Some("bw.release.")).await;
    service::ingest(&bus, generic(csv(GOOD)))
        .await
        .expect_err("the marker publish fails");
    *bus.fail_on.lock().unwrap() = None;
    let mut corrected = GOOD.to_vec();
    corrected.push(("PRK", "work", "2024-Q4", 2100));
    let release = service::ingest(&bus, generic(csv(&corrected)))
        .await
        .expect("the corrected file");
    assert_eq!(
        release.new_observations, 1,
        "stored figures are not stored again"
    );
    let sent = markers(&stored(&bus, names::RELEASE_STREAM, "bw.release.>").await);
    assert_eq!(sent.len(), 1);
    let mut periods: Vec<(String, Vec<Period>)> = sent[0]
        .changes
        .iter()
        .map(|c| (c.category.clone(), c.periods.clone()))
        .collect();
    periods.sort();
    assert_eq!(
        periods,
        vec![
            ("study".into(), vec![period("2024-Q2"), period("2024-Q3")]),
            ("work".into(), vec![period("2024-Q3"), period("2024-Q4")]),
        ]
    );
    // A recorded release's figures are not marked again by the next file.
    let next = service::ingest(&bus, generic(csv(&[("PRK", "work", "2025-Q1", 5)])))
        .await
        .unwrap();
    assert_eq!(next.new_observations, 1);
    let sent = markers(&stored(&bus, names::RELEASE_STREAM, "bw.release.>").await);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].changes.len(), 1);
    assert_eq!(sent[1].changes[0].periods, vec![period("2025-Q1")]);
}

#[tokio::test]
async fn the_same_file_after_an_unreadable_marker_marks_the_release_again_on_nats() {
    let server = NatsServer::start();
    let bus: Bus = Arc::new(
        NatsBus::connect(&server.url(), "remark-test")
            .await
            .expect("connects"),
    );
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let markers_now =
        || async { markers(&stored(bus.as_ref(), names::RELEASE_STREAM, "bw.release.>").await) };
    let first = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    assert_eq!(first.analyses.len(), 1);
    // Not analysed yet, but nothing says it failed: its marker is pending, nothing to add.
    let again = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(markers_now().await.len(), 1);
    // Analytics could not read the marker (it notes it, see analytics' unreadable.rs): the
    // same file again marks the release's figures anew, under a message id the stream's
    // duplicate window has not seen, and stores nothing new.
    let figures_before = figures(bus.as_ref()).await;
    bus.kv_put(
        names::ANALYZED_BUCKET,
        &names::unreadable_marker_key(&first.analyses[0]),
        Bytes::from_static(b"{}"),
    )
    .await
    .unwrap();
    let remarked = service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    assert!(remarked.duplicate);
    assert_eq!(remarked.id, first.id);
    assert_eq!(figures(bus.as_ref()).await, figures_before);
    let sent = markers_now().await;
    assert_eq!(sent.len(), 2, "the release is marked again");
    assert_eq!(sent[1], sent[0], "with the same content");
    // Once analytics recorded the part, the same file adds nothing again.
    bus.kv_put(
        names::ANALYZED_BUCKET,
        &first.analyses[0],
        Bytes::from_static(b"{}"),
    )
    .await
    .unwrap();
    service::ingest(bus.as_ref(), generic(csv(GOOD)))
        .await
        .unwrap();
    assert_eq!(markers_now().await.len(), 2);
}

/// An ingest server on `bus`, served until the token is cancelled.
async fn serve(
    bus: &Bus,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<(), BusError>>,
) {
    let server = service::Server::bind(bus.clone()).await.unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    (cancel.clone(), tokio::spawn(server.run(cancel)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_does_not_hold_up_a_small_one_of_another_source() {
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let (cancel, serving) = serve(&bus).await;
    // Seconds of reading and publishing: 5 MiB of valid rows of one source.
    let (big, rows) = big_csv(5);
    let started = std::time::Instant::now();
    let slow = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let release = client::submit(bus.as_ref(), generic(big)).await;
            (release, started.elapsed())
        })
    };
    // The big one is being read when the small one, of another source, comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let small = client::submit(bus.as_ref(), generic(csv(GOOD)))
        .await
        .expect("the small file is ingested");
    let small_done = started.elapsed();
    assert_eq!((small.source.as_str(), small.accepted), ("fsb", 3));
    let (slow, slow_done) = slow.await.unwrap();
    let slow = slow.expect("the big file is ingested");
    assert_eq!(slow.accepted, rows);
    assert!(
        small_done < slow_done,
        "the small file's answer came after {small_done:?}, the big one's after {slow_done:?}: \
         the small one waited"
    );
    cancel.cancel();
    serving.await.unwrap().unwrap();
}

/// `count` figures of fsb (PRK and CHN, monthly from 2000) with `value(i)` as the i-th count.
fn fsb_rows(count: u64, value: impl Fn(u64) -> u64) -> Bytes {
    let mut out = String::from("source,period,country,category,count\n");
    for i in 0..count {
        let country = if i % 2 == 0 { "PRK" } else { "CHN" };
        let month = i / 2;
        out.push_str(&format!(
            "fsb,{}-{:02},{country},work,{}\n",
            2000 + month / 12,
            month % 12 + 1,
            value(i)
        ));
    }
    Bytes::from(out)
}

/// What the releases of a bus are, without when they came: id, source, figures accepted
/// and published, revisions, missing categories.
async fn release_list(bus: &dyn Transport) -> Vec<(String, String, u64, u64, u64, usize)> {
    let mut out: Vec<_> = service::releases(bus)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.id,
                r.source,
                r.accepted,
                r.new_observations,
                r.revisions,
                r.missing.len(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_files_of_one_source_at_once_give_what_one_after_the_other_gives() {
    // A first release, then two files revising every one of its figures (and adding
    // periods), sent at once.
    let base = fsb_rows(2_000, |i| i + 1);
    let one = fsb_rows(2_400, |i| i + 1_000_000);
    let two = fsb_rows(2_200, |i| i + 2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let bus = memory_bus(dir.path()).await;
    let (cancel, serving) = serve(&bus).await;
    let first = client::submit(bus.as_ref(), generic(base.clone()))
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        client::submit(bus.as_ref(), generic(one.clone())),
        client::submit(bus.as_ref(), generic(two.clone())),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    cancel.cancel();
    serving.await.unwrap().unwrap();
    assert!(!a.duplicate && !b.duplicate);

    // One went first, against the first release; the other against it, not against the
    // first release as well (which is what two files built side by side would say).
    let revisions: Vec<Revision> = stored(bus.as_ref(), names::REVISION_STREAM, "bw.revision.>")
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    let against = |id: &str| {
        revisions
            .iter()
            .filter(|r| r.release_id == id)
            .map(|r| r.old_release_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (earlier, later, files) = if against(&a.id) == [first.id.clone()].into() {
        (&a, &b, [one, two])
    } else {
        (&b, &a, [two, one])
    };
    assert_eq!(against(&earlier.id), [first.id.clone()].into());
    assert_eq!(
        against(&later.id),
        [earlier.id.clone()].into(),
        "the later file was built against the earlier one"
    );
    assert_eq!(earlier.revisions, 2_000);
    // Every figure of the shorter file (2,200 rows) is in the longer one.
    assert_eq!(later.revisions, 2_200);

    // The same files one after another, on a bus of their own: the same releases,
    // announcements, markers and figures.
    let dir = tempfile::tempdir().unwrap();
    let alone = memory_bus(dir.path()).await;
    for file in [base].into_iter().chain(files) {
        service::ingest(alone.as_ref(), generic(file))
            .await
            .unwrap();
    }
    assert_eq!(
        release_list(bus.as_ref()).await,
        release_list(alone.as_ref()).await
    );
    assert_eq!(
        published(bus.as_ref()).await,
        published(alone.as_ref()).await
    );
    assert_eq!(figures(bus.as_ref()).await, figures(alone.as_ref()).await);
}
