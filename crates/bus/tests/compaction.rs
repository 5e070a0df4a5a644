//! Compaction of a source (`obs::compact_source`) on both transports: reads "as of" every
//! release answer as before it, each series of the source keeps one message and other
//! sources none fewer, a series too large for one snapshot keeps its messages, and a read
//! racing a compaction (messages purged under it) still gets every figure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use borderwatch_bus::obs::{self, Figures, Series};
use borderwatch_bus::{
    Bus, ConsumerLag, Delivery, Headers, MemoryBus, Message, NatsBus, ObjectInfo, ObjectReader,
    Outgoing, PubAck, Request, Result, StreamSpec, Transport, names,
};
use borderwatch_test_support::NatsServer;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

async fn memory() -> (Bus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::open(dir.path()).await.unwrap();
    names::ensure_all(&bus, 1).await.unwrap();
    (Arc::new(bus), dir)
}

async fn nats(server: &NatsServer) -> Bus {
    let bus = NatsBus::connect(&server.url(), "compaction-test")
        .await
        .unwrap();
    names::ensure_all(&bus, 1).await.unwrap();
    Arc::new(bus)
}

fn quarter(i: usize) -> String {
    format!("{}-Q{}", 2000 + i / 4, i % 4 + 1)
}

/// The series grown a quarter per release for releases `releases`, with a revision every
/// third release; returns the last sequence after each release.
async fn grow(
    bus: &dyn Transport,
    series: &[Series],
    releases: std::ops::Range<usize>,
) -> Vec<u64> {
    let mut marks = Vec::new();
    for r in releases {
        let release = format!("rel-{r:016x}");
        let mut msgs = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let mut figures = vec![(quarter(r), (100 * i + r) as u64)];
            if r % 3 == 2 {
                figures.push((quarter(r - 2), 9000 + r as u64));
            }
            msgs.extend(obs::series_messages(s, &release, &figures, true));
        }
        bus.publish_all(msgs).await.unwrap();
        marks.push(bus.last_seq(names::OBS_STREAM).await.unwrap());
    }
    marks
}

async fn messages_of(bus: &dyn Transport, s: &Series) -> usize {
    let subject = s.subject();
    bus.read_subjects(names::OBS_STREAM, &[subject.as_str()], u64::MAX)
        .await
        .unwrap()
        .collect::<Vec<_>>()
        .await
        .len()
}

async fn reads(
    bus: &dyn Transport,
    series: &[Series],
    marks: &[u64],
) -> Vec<HashMap<Series, Figures>> {
    let mut out = Vec::new();
    for as_of in marks.iter().copied().map(Some).chain([None]) {
        out.push(obs::series_as_of(bus, series, as_of).await.unwrap().0);
    }
    out
}

async fn compaction_keeps_every_read(bus: Bus) {
    let series = [
        Series::new("fsb", "PRK", "study"),
        Series::new("fsb", "SYR", "work"),
    ];
    // Another source's series, grown with them: its messages stay.
    let other = [Series::new("cbp", "MEX", "encounters")];
    grow(bus.as_ref(), &other, 0..3).await;
    let marks = grow(bus.as_ref(), &series, 0..12).await;
    let before = reads(bus.as_ref(), &series, &marks).await;
    let current = obs::figures_of(bus.as_ref(), names::ALL_OBS_SERIES)
        .await
        .unwrap();
    let done = obs::compact_source(bus.as_ref(), "fsb").await.unwrap();
    assert_eq!(
        done,
        obs::Compacted {
            series: 2,
            purged: 24
        },
        "12 messages a series, one snapshot each stands for them"
    );
    for s in &series {
        assert_eq!(messages_of(bus.as_ref(), s).await, 1, "{s:?}");
    }
    assert_eq!(messages_of(bus.as_ref(), &other[0]).await, 3);
    assert_eq!(reads(bus.as_ref(), &series, &marks).await, before);
    assert_eq!(
        obs::figures_of(bus.as_ref(), names::ALL_OBS_SERIES)
            .await
            .unwrap(),
        current
    );
    // Compacted again with nothing new: each snapshot is stored again in its own place.
    let again = obs::compact_source(bus.as_ref(), "fsb").await.unwrap();
    assert_eq!(
        again,
        obs::Compacted {
            series: 2,
            purged: 2
        }
    );
    for s in &series {
        assert_eq!(messages_of(bus.as_ref(), s).await, 1, "{s:?}");
    }
    assert_eq!(reads(bus.as_ref(), &series, &marks).await, before);
    // One series grown and compacted again: its new snapshot folds the one before.
    let more = grow(bus.as_ref(), &series[..1], 12..15).await;
    let all: Vec<u64> = marks.iter().chain(&more).copied().collect();
    let before = reads(bus.as_ref(), &series, &all).await;
    obs::compact_source(bus.as_ref(), "fsb").await.unwrap();
    for s in &series {
        assert_eq!(messages_of(bus.as_ref(), s).await, 1, "{s:?}");
    }
    assert_eq!(reads(bus.as_ref(), &series, &all).await, before);
    // A source with nothing stored: nothing to do.
    assert_eq!(
        obs::compact_source(bus.as_ref(), "dhs").await.unwrap(),
        obs::Compacted::default()
    );
}

#[tokio::test]
async fn compaction_keeps_every_read_memory() {
    let (bus, _dir) = memory().await;
    compaction_keeps_every_read(bus).await;
}

#[tokio::test]
async fn compaction_keeps_every_read_nats() {
    let server = NatsServer::start();
    compaction_keeps_every_read(nats(&server).await).await;
}

/// A series whose snapshot would not fit one message keeps its messages; the source's other
/// series are compacted one by one instead of by one purge of the source.
async fn a_series_too_large_for_a_snapshot_keeps_its_messages(bus: Bus) {
    let small = Series::new("fsb", "PRK", "study");
    let large = Series::new("fsb", "CHN", "work");
    let marks = grow(bus.as_ref(), std::slice::from_ref(&small), 0..4).await;
    // 150,000 monthly figures from 1000-01 on, in 8 messages of up to 20,000: a snapshot
    // of them is far above the 512 KiB a snapshot may take.
    let figures: Vec<(String, u64)> = (0..150_000)
        .map(|i| {
            (
                format!("{:04}-{:02}", 1000 + i / 12, i % 12 + 1),
                1_000_000 + i as u64,
            )
        })
        .collect();
    let msgs = obs::series_messages(&large, "rel-large", &figures, true);
    let held = msgs.len();
    assert!(held > 1);
    bus.publish_all(msgs).await.unwrap();
    let series = [small.clone(), large.clone()];
    let before = reads(bus.as_ref(), &series, &marks).await;
    let done = obs::compact_source(bus.as_ref(), "fsb").await.unwrap();
    assert_eq!(
        done,
        obs::Compacted {
            series: 1,
            purged: 4
        }
    );
    assert_eq!(messages_of(bus.as_ref(), &small).await, 1);
    assert_eq!(messages_of(bus.as_ref(), &large).await, held);
    assert_eq!(reads(bus.as_ref(), &series, &marks).await, before);
}

#[tokio::test]
async fn a_series_too_large_for_a_snapshot_keeps_its_messages_memory() {
    let (bus, _dir) = memory().await;
    a_series_too_large_for_a_snapshot_keeps_its_messages(bus).await;
}

#[tokio::test]
async fn a_series_too_large_for_a_snapshot_keeps_its_messages_nats() {
    let server = NatsServer::start();
    a_series_too_large_for_a_snapshot_keeps_its_messages(nats(&server).await).await;
}

/// A transport that compacts the source named right after the next read has begun (a
/// `read_subjects` has its sequences, a `next_on_subject` its first message), as a
/// compaction by ingest landing in the middle of an analytics read would.
#[derive(Debug)]
struct Racing {
    inner: Bus,
    compact_on_read: Mutex<Option<String>>,
    /// Published right after the next `read_subjects` has begun (a message landing while a
    /// compaction reads).
    publish_on_read: Mutex<Option<Outgoing>>,
}

impl Racing {
    /// A transport that races nothing until told to.
    fn new(bus: &Bus) -> Racing {
        Racing {
            inner: bus.clone(),
            compact_on_read: Mutex::new(None),
            publish_on_read: Mutex::new(None),
        }
    }
}

async fn read_racing_a_compaction_gets_every_figure(bus: Bus) {
    let series = [
        Series::new("fsb", "PRK", "study"),
        Series::new("fsb", "SYR", "work"),
        Series::new("fsb", "CHN", "study"),
    ];
    let marks = grow(bus.as_ref(), &series, 0..10).await;
    let expected = reads(bus.as_ref(), &series, &marks).await;
    let racing = Racing::new(&bus);
    for (i, as_of) in marks.iter().copied().map(Some).chain([None]).enumerate() {
        // Each round's compaction stores every series' snapshot again and purges under the
        // read (the in-process bus then skips the purged messages: without reading on to
        // the snapshots stored meanwhile, they would be missing; over NATS the consumer
        // may hold them already).
        *racing.compact_on_read.lock().unwrap() = Some("fsb".to_string());
        let (got, _) = obs::series_as_of(&racing, &series, as_of).await.unwrap();
        assert_eq!(got, expected[i], "as of {as_of:?}");
        assert!(
            racing.compact_on_read.lock().unwrap().is_none(),
            "the compaction ran during the read"
        );
    }
    for s in &series {
        assert_eq!(messages_of(bus.as_ref(), s).await, 1, "{s:?}");
    }
}

#[tokio::test]
async fn read_racing_a_compaction_gets_every_figure_memory() {
    let (bus, _dir) = memory().await;
    read_racing_a_compaction_gets_every_figure(bus).await;
}

#[tokio::test]
async fn read_racing_a_compaction_gets_every_figure_nats() {
    let server = NatsServer::start();
    read_racing_a_compaction_gets_every_figure(nats(&server).await).await;
}

/// A message stored while a compaction reads its source (nothing else writes a source under
/// its turn, but a compaction must not lose one if it comes): whether the read met it or
/// not, it is neither purged unread nor hidden by the snapshots, and every earlier read
/// answers as before.
async fn a_message_stored_during_a_compaction_is_kept(bus: Bus) {
    let series = [
        Series::new("fsb", "PRK", "study"),
        Series::new("fsb", "SYR", "work"),
    ];
    let marks = grow(bus.as_ref(), &series, 0..10).await;
    let before = reads(bus.as_ref(), &series, &marks).await;
    let racing = Racing::new(&bus);
    let late = obs::series_messages(&series[0], "rel-late", &[(quarter(40), 4242)], true);
    *racing.publish_on_read.lock().unwrap() = late.into_iter().next();
    obs::compact_source(&racing, "fsb").await.unwrap();
    assert!(
        racing.publish_on_read.lock().unwrap().is_none(),
        "published during the read"
    );
    let now = obs::figures_of(bus.as_ref(), names::ALL_OBS_SERIES)
        .await
        .unwrap();
    assert_eq!(now[&series[0]][&quarter(40)].count, 4242);
    assert_eq!(now[&series[0]][&quarter(40)].release_id, "rel-late");
    let (got, newer) = obs::series_as_of(bus.as_ref(), &series, marks.last().copied())
        .await
        .unwrap();
    assert_eq!(got, before[marks.len() - 1]);
    assert!(newer.contains(&series[0]) && !newer.contains(&series[1]));
    for (i, as_of) in marks.iter().enumerate() {
        let (got, _) = obs::series_as_of(bus.as_ref(), &series, Some(*as_of))
            .await
            .unwrap();
        assert_eq!(got, before[i], "as of release {i}");
    }
}

#[tokio::test]
async fn a_message_stored_during_a_compaction_is_kept_memory() {
    let (bus, _dir) = memory().await;
    a_message_stored_during_a_compaction_is_kept(bus).await;
}

#[tokio::test]
async fn a_message_stored_during_a_compaction_is_kept_nats() {
    let server = NatsServer::start();
    a_message_stored_during_a_compaction_is_kept(nats(&server).await).await;
}

#[async_trait]
impl Transport for Racing {
    async fn next_on_subject(
        &self,
        stream: &str,
        subject: &str,
        from: u64,
    ) -> Result<Option<Message>> {
        let next = self.inner.next_on_subject(stream, subject, from).await?;
        let due = self.compact_on_read.lock().unwrap().take();
        if let Some(source) = due {
            // The read has its first message; the compaction stores its snapshots and
            // purges under it.
            obs::compact_source(self.inner.as_ref(), &source).await?;
        }
        Ok(next)
    }
    async fn read_subjects(
        &self,
        stream: &str,
        subjects: &[&str],
        to_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>> {
        let mut read = self.inner.read_subjects(stream, subjects, to_seq).await?;
        let late = self.publish_on_read.lock().unwrap().take();
        if let Some(msg) = late {
            let first = read.next().await;
            self.inner.publish(msg).await?;
            return Ok(futures::stream::iter(first).chain(read).boxed());
        }
        let due = self.compact_on_read.lock().unwrap().take();
        let Some(source) = due else {
            return Ok(read);
        };
        // The first message is on its way (NATS: the consumer exists and delivers);
        // then the compaction stores its snapshots and purges under the read.
        let first = read.next().await;
        obs::compact_source(self.inner.as_ref(), &source).await?;
        Ok(futures::stream::iter(first).chain(read).boxed())
    }
    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<()> {
        self.inner.ensure_stream(spec).await
    }
    async fn ensure_bucket(&self, bucket: &str, replicas: usize) -> Result<()> {
        self.inner.ensure_bucket(bucket, replicas).await
    }
    async fn publish(&self, msg: Outgoing) -> Result<PubAck> {
        self.inner.publish(msg).await
    }
    async fn publish_all(&self, msgs: Vec<Outgoing>) -> Result<Vec<PubAck>> {
        self.inner.publish_all(msgs).await
    }
    async fn last_per_subject(&self, stream: &str, filters: &[&str]) -> Result<Vec<Message>> {
        self.inner.last_per_subject(stream, filters).await
    }
    async fn last_seq(&self, stream: &str) -> Result<u64> {
        self.inner.last_seq(stream).await
    }
    async fn replay(
        &self,
        stream: &str,
        filter: &str,
        from_seq: u64,
    ) -> Result<BoxStream<'static, Result<Message>>> {
        self.inner.replay(stream, filter, from_seq).await
    }
    async fn purge_subject_below(&self, stream: &str, subject: &str, seq: u64) -> Result<u64> {
        self.inner.purge_subject_below(stream, subject, seq).await
    }
    async fn consume(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
        ack_wait: Duration,
    ) -> Result<BoxStream<'static, Result<Delivery>>> {
        self.inner.consume(stream, durable, filter, ack_wait).await
    }
    async fn consumer_lag(&self, stream: &str, durable: &str) -> Result<Option<ConsumerLag>> {
        self.inner.consumer_lag(stream, durable).await
    }
    async fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>> {
        self.inner.kv_get(bucket, key).await
    }
    async fn kv_put(&self, bucket: &str, key: &str, value: Bytes) -> Result<()> {
        self.inner.kv_put(bucket, key, value).await
    }
    async fn kv_create(&self, bucket: &str, key: &str, value: Bytes) -> Result<bool> {
        self.inner.kv_create(bucket, key, value).await
    }
    async fn kv_delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.inner.kv_delete(bucket, key).await
    }
    async fn kv_keys(&self, bucket: &str) -> Result<Vec<String>> {
        self.inner.kv_keys(bucket).await
    }
    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message> {
        self.inner.request(subject, headers, payload, timeout).await
    }
    async fn serve(&self, subject: &str, queue: &str) -> Result<BoxStream<'static, Request>> {
        self.inner.serve(subject, queue).await
    }
    async fn ensure_object_store(&self, bucket: &str, replicas: usize) -> Result<()> {
        self.inner.ensure_object_store(bucket, replicas).await
    }
    async fn object_put(&self, bucket: &str, name: &str, data: Bytes) -> Result<ObjectInfo> {
        self.inner.object_put(bucket, name, data).await
    }
    async fn object_get(&self, bucket: &str, name: &str) -> Result<Option<Bytes>> {
        self.inner.object_get(bucket, name).await
    }
    async fn object_put_reader(
        &self,
        bucket: &str,
        name: &str,
        data: ObjectReader,
    ) -> Result<ObjectInfo> {
        self.inner.object_put_reader(bucket, name, data).await
    }
    async fn object_reader(&self, bucket: &str, name: &str) -> Result<Option<ObjectReader>> {
        self.inner.object_reader(bucket, name).await
    }
    async fn object_info(&self, bucket: &str, name: &str) -> Result<Option<ObjectInfo>> {
        self.inner.object_info(bucket, name).await
    }
    async fn object_delete(&self, bucket: &str, name: &str) -> Result<()> {
        self.inner.object_delete(bucket, name).await
    }
    async fn object_list(&self, bucket: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.object_list(bucket).await
    }
    fn max_payload(&self) -> usize {
        self.inner.max_payload()
    }
    fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }
    fn kind(&self) -> &'static str {
        "racing"
    }
}
