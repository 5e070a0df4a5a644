//! borderwatch on a three-node NATS JetStream cluster, every role its own `borderwatch`
//! process on loopback (ingest, two analytics replicas, notify, gateway), streams and buckets
//! with three copies. Faults: a NATS node and an analytics replica SIGKILLed while a large
//! release is being ingested and analysed; an analytics replica stopped with SIGTERM mid-part.
//! What must hold: every surge reaches the webhook exactly once, the surges are the ones a
//! single `borderwatch up` (embedded) finds in the same file, and restarted processes replay
//! nothing.
//!
//! Process logs (JSON) are kept in a temp directory that is left on disk, and named, when a
//! test fails. The release size is `BW_CLUSTER_SERIES` series × 32 quarters (default 2,000:
//! six parts, and a 1.5 MB file, bigger than a NATS message, so the upload is staged in the
//! object store and ingest reads it back a piece at a time while a node is killed).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use borderwatch::roles::{self, Role, UpOptions};
use borderwatch_bus::{Bus, NatsBus, Transport, names};
use borderwatch_e2e::{Behaviour, RoleProcess, ScriptedReceiver};
use borderwatch_ingest_client::{Submission, submit};
use borderwatch_model::{Release, SurgeEvent};
use borderwatch_test_support::{NatsServer, nats_server};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::{Mutex, OnceCell};

const SOURCES: [&str; 3] = ["ca", "cb", "cc"];
const QUARTERS: usize = 32;
const SECRET: &str = "cluster-secret";
/// How long a process may take to connect and subscribe (a debug build on a busy machine).
const START: Duration = Duration::from_secs(60);
/// How long the whole release may take to analyse and deliver, faults included (the ack
/// wait of a killed replica's part is 30 s of it).
const FINISH: Duration = Duration::from_secs(240);

/// The tests share the machine's cores (and start NATS clusters that must elect leaders in
/// time): one at a time, or each would time the other out.
static SERIAL: Mutex<()> = Mutex::const_new(());
/// The surge ids one embedded `borderwatch up` finds in the release (computed once).
static EXPECTED: OnceCell<HashSet<String>> = OnceCell::const_new();

fn series_count() -> usize {
    std::env::var("BW_CLUSTER_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// A seeded, seasonal, mildly noisy count; every 40th series jumps five-fold in its last
/// quarter (a surge every detector agrees on).
fn count(series: usize, q: usize, quarters: usize) -> u64 {
    let mut x = (series as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (q as u64 + 1);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let level = 200.0 + (series % 50) as f64 * 40.0;
    let season = [0.9, 1.05, 1.15, 0.9][q % 4];
    let noise = 0.95 + (x % 100) as f64 / 1000.0;
    let jump = if series.is_multiple_of(40) && q == quarters - 1 {
        5.0
    } else {
        1.0
    };
    (level * season * noise * jump) as u64
}

/// The release as a generic CSV: `series` series spread over three sources (one release
/// part per source and 500 series), 8 countries × categories `k<n>`, 32 quarters each
/// (about 24 bytes a row: 2,000 series are 1.5 MB).
fn release_csv(series: usize) -> String {
    const COUNTRIES: [&str; 8] = ["PRK", "CHN", "VNM", "IND", "KAZ", "UZB", "TJK", "KGZ"];
    let mut csv = String::from("source,period,country,category,count\n");
    for s in 0..series {
        let source = SOURCES[s % SOURCES.len()];
        let (country, category) = (COUNTRIES[s % 8], format!("k{}", s / 24));
        for q in 0..QUARTERS {
            let (year, quarter) = (2017 + q / 4, q % 4 + 1);
            let n = count(s, q, QUARTERS);
            csv.push_str(&format!(
                "{source},{year}-Q{quarter},{country},{category},{n}\n"
            ));
        }
    }
    csv
}

/// Every surge id in `BW_SURGES`, in stream order (repeats kept, so a test can count them).
async fn surge_ids(bus: &dyn Transport) -> Vec<String> {
    let last = bus
        .last_seq(names::SURGE_STREAM)
        .await
        .expect("surge stream");
    if last == 0 {
        return Vec::new();
    }
    let mut stream = bus
        .replay(names::SURGE_STREAM, "bw.surge.>", 1)
        .await
        .expect("replay surges");
    let mut ids = Vec::new();
    while let Some(msg) = stream.next().await {
        let msg = msg.expect("surge message");
        let event: SurgeEvent = serde_json::from_slice(&msg.payload).expect("a surge event");
        ids.push(event.id);
        if msg.seq >= last {
            break;
        }
    }
    ids
}

/// What one process finds: `borderwatch up` on the in-process bus (ingest and analytics
/// roles), the same file, the same default configuration.
async fn expected_surges() -> &'static HashSet<String> {
    EXPECTED
        .get_or_init(|| async {
            let dir = tempfile::tempdir().unwrap();
            let mut opts = UpOptions::embedded(dir.path().to_path_buf());
            opts.roles = vec![Role::Ingest, Role::Analytics];
            let running = roles::start(opts).await.expect("embedded borderwatch up");
            let release = submit(
                running.bus.as_ref(),
                Submission {
                    bytes: release_csv(series_count()).into_bytes().into(),
                    format: Some("generic".into()),
                    source: None,
                },
            )
            .await
            .expect("embedded ingest");
            roles::wait_analyzed(&running.bus, &release, FINISH)
                .await
                .expect("embedded analytics finishes");
            let ids = surge_ids(running.bus.as_ref()).await;
            running.shutdown().await;
            let set: HashSet<String> = ids.iter().cloned().collect();
            assert_eq!(
                set.len(),
                ids.len(),
                "the embedded run announced a surge twice"
            );
            // Every planted jump is among them (and the set is not empty).
            assert!(
                set.len() >= series_count() / 40,
                "the embedded run found {} surges, fewer than the {} planted",
                set.len(),
                series_count() / 40
            );
            set
        })
        .await
}

/// Roles as processes against one set of NATS URLs, with a log directory kept on failure.
struct Deployment {
    urls: String,
    replicas: String,
    bus: Bus,
    dir: Option<tempfile::TempDir>,
}

impl Deployment {
    async fn new(name: &str, urls: String, replicas: usize) -> Deployment {
        let bus: Bus = Arc::new(NatsBus::connect(&urls, "test").await.expect("connect"));
        // A fresh cluster can take a moment to place replicated assets.
        let deadline = tokio::time::Instant::now() + START;
        while let Err(e) = names::ensure_all(bus.as_ref(), replicas).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "streams and buckets: {e}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("bw-{name}-"))
            .tempdir()
            .unwrap();
        Deployment {
            urls,
            replicas: replicas.to_string(),
            bus,
            dir: Some(dir),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// `borderwatch <role> --nats <every url> --stream-replicas N [extra…]`, logging to
    /// `<name>.log`; returns once it logged its readiness line.
    async fn role(&self, role: &str, name: &str, extra: &[&str]) -> RoleProcess {
        let mut args = vec![
            role,
            "--nats",
            &self.urls,
            "--stream-replicas",
            &self.replicas,
        ];
        args.extend(extra);
        let p = RoleProcess::start(&args, self.dir(), name);
        p.wait_ready(role, 1, START).await;
        p
    }

    async fn analytics(&self, name: &str) -> RoleProcess {
        self.role("analytics", name, &[]).await
    }

    /// The gateway, and its base URL (from its readiness line).
    async fn gateway(&self) -> (RoleProcess, String) {
        let p = RoleProcess::start(
            &[
                "gateway",
                "--nats",
                &self.urls,
                "--stream-replicas",
                &self.replicas,
                "--http",
                "127.0.0.1:0",
            ],
            self.dir(),
            "gateway",
        );
        let ready = p.wait_ready("gateway", 1, START).await;
        let addr = ready["http"].as_str().expect("the gateway's address");
        let url = format!("http://{addr}");
        (p, url)
    }

    /// Messages of `consumer` on `stream` not yet delivered, and delivered but not acked.
    async fn consumer_backlog(&self, stream: &str, consumer: &str) -> (u64, usize) {
        let client = async_nats::connect(self.urls.split(',').collect::<Vec<_>>())
            .await
            .expect("raw client");
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(stream).await.expect("stream");
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(consumer).await.expect("consumer");
        let info = consumer.info().await.expect("consumer info");
        (info.num_pending, info.num_ack_pending)
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("process logs kept in {}", dir.keep().display());
        }
    }
}

/// Lines of `p`'s log with this message.
fn logged(p: &RoleProcess, message: &str) -> Vec<serde_json::Value> {
    p.log_lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

async fn wait_logged(p: &RoleProcess, message: &str, times: usize) {
    let deadline = tokio::time::Instant::now() + START;
    while logged(p, message).len() < times {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} did not log `{message}` {times} times within {START:?}; log {}:\n{}",
            p.name,
            p.log.display(),
            std::fs::read_to_string(&p.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A part's name in the logs: `<source>/<part>`.
fn part_of(line: &serde_json::Value) -> String {
    format!(
        "{}/{}",
        line["fields"]["source"].as_str().unwrap_or("?"),
        line["fields"]["part"].as_u64().unwrap_or(u64::MAX)
    )
}

/// The parts a replica is working on now (started, not finished).
fn parts_in_hand(p: &RoleProcess) -> Vec<String> {
    let mut open: HashMap<String, i64> = HashMap::new();
    for l in &logged(p, "analysing release part") {
        *open.entry(part_of(l)).or_default() += 1;
    }
    for l in &logged(p, "release analysed") {
        *open.entry(part_of(l)).or_default() -= 1;
    }
    open.into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(part, _)| part)
        .collect()
}

/// Waits until replica `p` is in the middle of a part and returns that part.
async fn wait_mid_part(p: &RoleProcess) -> String {
    let deadline = tokio::time::Instant::now() + FINISH;
    loop {
        if let Some(part) = parts_in_hand(p).into_iter().next() {
            return part;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} was never caught mid-part; log {}",
            p.name,
            p.log.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(part, delivered)` of every part `p` finished.
fn finished_parts(p: &RoleProcess) -> Vec<(String, u64)> {
    logged(p, "release analysed")
        .iter()
        .map(|l| (part_of(l), l["fields"]["delivered"].as_u64().unwrap_or(0)))
        .collect()
}

/// Uploads the release through the gateway, retrying what failed (a NATS node dying under
/// the upload fails it: nothing was acknowledged, so the client sends it again).
async fn upload(gateway: &str, csv: String) -> Release {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + FINISH;
    loop {
        let sent = client
            .post(format!("{gateway}/v1/ingest?format=generic"))
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                return resp.json().await.expect("the release");
            }
            Ok(resp) => eprintln!(
                "upload answered {}: {} (retrying)",
                resp.status(),
                resp.text().await.unwrap_or_default()
            ),
            Err(e) => eprintln!("upload failed: {e} (retrying)"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upload never succeeded"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn subscribe_everything(gateway: &str, receiver: &ScriptedReceiver) {
    let resp = reqwest::Client::new()
        .post(format!("{gateway}/v1/subscriptions"))
        .json(&json!({
            "filter": {"countries": [], "categories": [], "sources": [], "min_severity": "low"},
            "webhook": {"url": receiver.url("hook"), "secret": SECRET},
            // Every surge on its own, history included: delivery is what is tested.
            "history": "each",
        }))
        .send()
        .await
        .expect("subscription request");
    assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
}

/// Waits until the receiver accepted every expected surge, then long enough for a repeat to
/// arrive, and checks each came exactly once and nothing else came.
async fn check_delivered_once(receiver: &ScriptedReceiver, expected: &HashSet<String>) {
    receiver
        .wait_accepted(FINISH, "every surge delivered", |a| {
            a.iter().map(|a| &a.event_id).collect::<HashSet<_>>().len() >= expected.len()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let per_event = receiver.accepted_per_event();
    let twice: Vec<_> = per_event.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let got: HashSet<String> = per_event.into_keys().collect();
    assert_eq!(
        got.difference(expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "delivered but not found by one process"
    );
    assert_eq!(
        expected.difference(&got).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "found by one process but never delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_loses_a_node_and_a_replica_mid_release_and_delivers_every_surge_once() {
    let _serial = SERIAL.lock().await;
    let started = std::time::Instant::now();
    let expected = expected_surges().await;
    eprintln!(
        "{} surges expected ({:?})",
        expected.len(),
        started.elapsed()
    );
    let mut servers = nats_server::cluster(3);
    let d = Deployment::new("cluster", nats_server::urls(&servers), 3).await;
    let receiver = ScriptedReceiver::start(Behaviour::default()).await;
    let _ingest = d.role("ingest", "ingest", &[]).await;
    let mut a = d.analytics("analytics-a").await;
    let b = d.analytics("analytics-b").await;
    let _notify = d.role("notify", "notify", &[]).await;
    let (_gateway, gateway) = d.gateway().await;
    subscribe_everything(&gateway, &receiver).await;

    // Ingestion starts; a NATS node dies under it (SIGKILL, its store kept).
    let csv = release_csv(series_count());
    let uploading = {
        let (gateway, csv) = (gateway.clone(), csv.clone());
        tokio::spawn(async move { upload(&gateway, csv).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    servers[2].stop();
    let release = uploading.await.expect("upload task");
    eprintln!(
        "uploaded in {} parts ({:?})",
        release.analyses.len(),
        started.elapsed()
    );
    assert!(
        release.analyses.len() >= 2,
        "the release spans several parts"
    );

    // An analytics replica dies in the middle of a part.
    let lost_part = wait_mid_part(&a).await;
    a.kill();

    roles::wait_analyzed(&d.bus, &release, FINISH)
        .await
        .expect("the surviving replica finishes the release");
    eprintln!("analysed ({:?})", started.elapsed());
    check_delivered_once(&receiver, expected).await;
    eprintln!("delivered ({:?})", started.elapsed());
    let announced = surge_ids(d.bus.as_ref()).await;
    assert_eq!(
        announced.len(),
        expected.len(),
        "BW_SURGES holds each surge once"
    );
    // The killed replica's part was redelivered to the other one.
    assert!(
        finished_parts(&b)
            .iter()
            .any(|(part, delivered)| *part == lost_part && *delivered >= 2),
        "part {lost_part}, in hand when its replica died, was redelivered to the other replica: {:?}",
        finished_parts(&b)
    );

    // The dead come back: nothing is replayed, analysed or delivered again.
    let delivered_before = receiver.accepted_count();
    servers[2].restart();
    let a = d.analytics("analytics-a").await;
    a.wait_ready("analytics", 2, START).await;
    let again = upload(&gateway, csv).await;
    assert_eq!(again.id, release.id, "the same bytes are the same release");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        receiver.accepted_count(),
        delivered_before,
        "nothing delivered twice"
    );
    assert_eq!(
        surge_ids(d.bus.as_ref()).await.len(),
        expected.len(),
        "nothing announced twice"
    );
    let restarted_analysed = finished_parts(&a).len() + finished_parts(&b).len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        finished_parts(&a).len() + finished_parts(&b).len(),
        restarted_analysed,
        "no part is analysed again"
    );
    for (stream, consumer) in [
        (names::RELEASE_STREAM, names::ANALYTICS_CONSUMER),
        (names::SURGE_STREAM, names::NOTIFY_CONSUMER),
    ] {
        assert_eq!(
            d.consumer_backlog(stream, consumer).await,
            (0, 0),
            "{consumer}: nothing pending or unacknowledged"
        );
    }
}

/// How many surges the delivery test sends: as many as the live run that saw ten repeats
/// (`BW_CLUSTER_SURGES` to change it).
fn surge_count() -> usize {
    std::env::var("BW_CLUSTER_SURGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7108)
}

impl Deployment {
    /// The name of the server leading `stream`'s replicas (`bw-<index>`).
    async fn stream_leader(&self, stream: &str) -> String {
        let client = async_nats::connect(self.urls.split(',').collect::<Vec<_>>())
            .await
            .expect("raw client");
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(stream).await.expect("stream");
        let info = stream.info().await.expect("stream info");
        info.cluster
            .as_ref()
            .and_then(|c| c.leader.clone())
            .expect("a replicated stream has a leader")
    }

    /// Waits until `consumer` on `stream` has nothing pending or unacknowledged.
    async fn wait_settled(&self, stream: &str, consumer: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let backlog = self.consumer_backlog(stream, consumer).await;
            if backlog == (0, 0) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{consumer} still has {backlog:?} (pending, unacknowledged) after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The edge the live run found: a NATS node dies while notify is delivering thousands of
/// surges. The node killed is the one leading `bw_deliveries`, so the records of POSTs the
/// receiver already took fail to be written (or are written while their reply is lost) until
/// a new leader is elected. Left failed, such a record let the claim go stale and the next
/// copy of the event POST it again, under the same `X-Borderwatch-Event-Id`. What must
/// hold: once notify has settled every event, each was accepted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_while_notify_delivers_thousands_of_surges_repeats_none() {
    let _serial = SERIAL.lock().await;
    let started = std::time::Instant::now();
    let mut servers = nats_server::cluster(3);
    let d = Deployment::new("deliveries", nats_server::urls(&servers), 3).await;
    // A receiver that takes its time, so that many POSTs are in flight when the node dies.
    let receiver = ScriptedReceiver::start(Behaviour {
        latency: Duration::from_millis(100),
        ..Behaviour::default()
    })
    .await;
    borderwatch_e2e::surges::put_subscription(d.bus.as_ref(), "all", &receiver.url("hook"), SECRET)
        .await;
    // Notify talks to the node leading the delivery records (it learns the others from it,
    // and reconnects to one of them): killing that node loses both the connection that
    // writes the records and the leader that stores them.
    let leader = d.stream_leader("KV_bw_deliveries").await;
    let index: usize = leader
        .strip_prefix("bw-")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("unexpected server name {leader}"));
    let notify = RoleProcess::start(
        &[
            "notify",
            "--nats",
            &servers[index].url(),
            "--stream-replicas",
            "3",
        ],
        d.dir(),
        "notify",
    );
    notify.wait_ready("notify", 1, START).await;

    let n = surge_count();
    let events = borderwatch_e2e::surges::surge_events("burst", n);
    borderwatch_e2e::surges::publish_surges(d.bus.as_ref(), &events).await;
    eprintln!("{n} surges published ({:?})", started.elapsed());

    // Mid-delivery, the node leading the delivery records dies (SIGKILL).
    receiver
        .wait_accepted(FINISH, "deliveries under way", |a| a.len() >= n / 10)
        .await;
    let now = d.stream_leader("KV_bw_deliveries").await;
    servers[index].stop();
    eprintln!(
        "killed {leader}, notify's node (leader of bw_deliveries now: {now}), after {} accepted ({:?})",
        receiver.accepted_count(),
        started.elapsed()
    );

    // Every event settled: delivered, or left for a takeover that would send it again.
    receiver
        .wait_accepted(FINISH, "every surge delivered", |a| {
            a.iter().map(|a| &a.event_id).collect::<HashSet<_>>().len() >= n
        })
        .await;
    d.wait_settled(names::SURGE_STREAM, names::NOTIFY_CONSUMER, FINISH)
        .await;
    let per_event = receiver.accepted_per_event();
    let mut twice: Vec<(&String, &usize)> = per_event.iter().filter(|(_, k)| **k > 1).collect();
    twice.sort();
    assert!(
        twice.is_empty(),
        "{} of {n} surges delivered more than once: {twice:?}",
        twice.len()
    );
    let expected: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    let got: HashSet<String> = per_event.into_keys().collect();
    assert_eq!(got, expected, "every surge delivered, nothing else");
    eprintln!(
        "{n} delivered once each, {} record writes retried ({:?})",
        logged(&notify, "cannot record a delivered notice yet; retrying").len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_replica_stopped_with_sigterm_finishes_its_part_and_the_other_takes_the_rest() {
    let _serial = SERIAL.lock().await;
    let expected = expected_surges().await;
    let server = NatsServer::start();
    let d = Deployment::new("sigterm", server.url(), 1).await;
    let receiver = ScriptedReceiver::start(Behaviour::default()).await;
    let _ingest = d.role("ingest", "ingest", &[]).await;
    let mut a = d.analytics("analytics-a").await;
    let b = d.analytics("analytics-b").await;
    let _notify = d.role("notify", "notify", &[]).await;
    let (_gateway, gateway) = d.gateway().await;
    subscribe_everything(&gateway, &receiver).await;

    let release = upload(&gateway, release_csv(series_count())).await;
    let part = wait_mid_part(&a).await;
    let status = a
        .terminate(FINISH)
        .await
        .expect("the replica exits by itself after SIGTERM");
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(
        finished_parts(&a).iter().any(|(p, _)| *p == part),
        "the part in hand at SIGTERM ({part}) was finished before exit: {:?}",
        finished_parts(&a)
    );
    assert_eq!(logged(&a, "analytics stopped").len(), 1);

    roles::wait_analyzed(&d.bus, &release, FINISH)
        .await
        .expect("the other replica finishes the release");
    check_delivered_once(&receiver, expected).await;
    assert_eq!(surge_ids(d.bus.as_ref()).await.len(), expected.len());
    // The drained part was acknowledged: the other replica never got it.
    assert!(
        !finished_parts(&b).iter().any(|(p, _)| *p == part),
        "part {part} was analysed by both replicas: {:?}",
        finished_parts(&b)
    );
    assert_eq!(
        d.consumer_backlog(names::RELEASE_STREAM, names::ANALYTICS_CONSUMER)
            .await,
        (0, 0)
    );
}

/// GET `url` with a plain HTTP client; the status code.
async fn status_of(url: &str) -> u16 {
    match reqwest::get(url).await {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    }
}

async fn wait_status(url: &str, want: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + START;
    loop {
        let got = status_of(url).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {url} answered {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `borderwatch probe URL` (the containers' health check): whether it exits 0.
fn probe(url: &str) -> bool {
    std::process::Command::new(borderwatch_e2e::built_borderwatch_bin())
        .args(["probe", url])
        .output()
        .expect("borderwatch probe runs")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_of_a_worker_role_follows_its_nats_connection() {
    let _serial = SERIAL.lock().await;
    let mut server = NatsServer::start();
    let d = Deployment::new("readyz", server.url(), 1).await;
    let a = d
        .role("analytics", "analytics", &["--health", "127.0.0.1:0"])
        .await;
    let addr = logged(&a, "health probes served")[0]["fields"]["addr"]
        .as_str()
        .expect("the probe address is logged")
        .to_string();
    let (healthz, readyz) = (
        format!("http://{addr}/healthz"),
        format!("http://{addr}/readyz"),
    );
    assert_eq!(status_of(&healthz).await, 200);
    assert_eq!(status_of(&readyz).await, 200);

    assert!(probe(&readyz), "`borderwatch probe` passes on a ready role");

    server.stop();
    wait_status(&readyz, 503, "NATS is down").await;
    assert_eq!(status_of(&healthz).await, 200, "alive all the same");
    assert!(
        !probe(&readyz),
        "`borderwatch probe` fails on a role that is not ready"
    );
    server.restart();
    wait_status(&readyz, 200, "NATS is back").await;
    wait_logged(&a, "nats connection (re)established", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_leaves_a_nats_node_in_lame_duck_mode_for_another_one() {
    let _serial = SERIAL.lock().await;
    let servers = nats_server::cluster(3);
    let d = Deployment::new("lameduck", nats_server::urls(&servers), 3).await;
    let a = d
        .role("analytics", "analytics", &["--health", "127.0.0.1:0"])
        .await;
    let first = logged(&a, "connected to nats")[0]["fields"]["server"]
        .as_str()
        .expect("the server is logged")
        .to_string();
    let node: usize = first
        .strip_prefix("bw-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected server name {first}"));
    // SIGUSR2: nats-server's lame-duck mode (stop taking clients, then close them over the
    // lame-duck duration, two minutes by default, and exit).
    let pid = servers[node].pid().expect("the node runs").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-USR2", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    wait_logged(
        &a,
        "nats server entered lame duck mode; moving to another server",
        1,
    )
    .await;
    // The role moved at once, long before the node would have closed its connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let moved = logged(&a, "nats connection (re)established")
            .iter()
            .filter_map(|l| l["fields"]["server"].as_str().map(str::to_string))
            .any(|s| !s.is_empty() && !s.starts_with(&first));
        if moved {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the role did not move off {first}; log {}",
            a.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addr = logged(&a, "health probes served")[0]["fields"]["addr"]
        .as_str()
        .expect("the probe address is logged")
        .to_string();
    wait_status(
        &format!("http://{addr}/readyz"),
        200,
        "ready on the new node",
    )
    .await;
}

/// How long roles started with a cluster that is still forming may take to be ready (they
/// retry JetStream meanwhile; their own limit is `--startup-timeout`, 180 s by default).
const TOGETHER: Duration = Duration::from_secs(180);

/// The private webhook target of these tests (the receiver on loopback) is allowed.
const ALLOW_PRIVATE: (&str, &str) = ("BORDERWATCH_WEBHOOK_ALLOW_PRIVATE", "1");

/// The address a role's health probes are served on (from its log).
async fn health_addr(p: &RoleProcess) -> String {
    wait_logged(p, "health probes served", 1).await;
    logged(p, "health probes served")[0]["fields"]["addr"]
        .as_str()
        .expect("the probe address is logged")
        .to_string()
}

/// The log lines of failed start-up attempts (each has an `attempt` number).
fn startup_attempts(p: &RoleProcess) -> Vec<serde_json::Value> {
    p.log_lines()
        .into_iter()
        .filter(|l| l["fields"]["attempt"].is_u64() && l["level"] == "WARN")
        .collect()
}

/// As Compose starts them: three NATS nodes and every role (ingest, two analytics, notify,
/// gateway) at once, streams with three replicas, nobody waiting for anybody. The roles
/// retry JetStream until the cluster has formed (instead of exiting with `jetstream request
/// timed out`), then a release goes through and its surges reach the webhook, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_cluster_and_every_role_started_together_deliver_a_release() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::Builder::new()
        .prefix("bw-together-")
        .tempdir()
        .unwrap();
    let receiver = ScriptedReceiver::start(Behaviour::default()).await;
    let servers = nats_server::cluster_starting(3);
    let urls = nats_server::urls(&servers);
    let start = |role: &str, name: &str, extra: &[&str]| {
        let mut args = vec![role, "--nats", &urls, "--stream-replicas", "3"];
        args.extend(extra);
        RoleProcess::start_with_env(&args, &[ALLOW_PRIVATE], dir.path(), name)
    };
    let health = ["--health", "127.0.0.1:0"];
    let roles = vec![
        ("ingest", start("ingest", "ingest", &health)),
        ("analytics", start("analytics", "analytics-a", &health)),
        ("analytics", start("analytics", "analytics-b", &health)),
        ("notify", start("notify", "notify", &health)),
        (
            "gateway",
            start("gateway", "gateway", &["--http", "127.0.0.1:0"]),
        ),
    ];
    let mut gateway = String::new();
    for (role, p) in &roles {
        let ready = p.wait_ready(role, 1, TOGETHER).await;
        if *role == "gateway" {
            gateway = format!("http://{}", ready["http"].as_str().expect("its address"));
        }
    }
    for (_, p) in roles.iter().filter(|(role, _)| *role != "gateway") {
        let addr = health_addr(p).await;
        wait_status(&format!("http://{addr}/readyz"), 200, &p.name).await;
    }
    let retried: usize = roles.iter().map(|(_, p)| startup_attempts(p).len()).sum();
    eprintln!("{retried} start-up attempts failed and were retried");
    // Keep the logs if anything below fails.
    let bus: Bus = Arc::new(NatsBus::connect(&urls, "test").await.expect("connect"));
    let d = Deployment {
        urls: urls.clone(),
        replicas: "3".into(),
        bus,
        dir: Some(dir),
    };

    subscribe_everything(&gateway, &receiver).await;
    let series = 200;
    let release = upload(&gateway, release_csv(series)).await;
    roles::wait_analyzed(&d.bus, &release, FINISH)
        .await
        .expect("analytics finishes the release");
    let announced = surge_ids(d.bus.as_ref()).await;
    let expected: HashSet<String> = announced.iter().cloned().collect();
    assert_eq!(expected.len(), announced.len(), "each surge announced once");
    assert!(
        expected.len() >= series / 40,
        "{} surges announced, fewer than the {} planted",
        expected.len(),
        series / 40
    );
    check_delivered_once(&receiver, &expected).await;
    for (_, p) in &roles {
        assert!(
            !std::fs::read_to_string(&p.log)
                .unwrap_or_default()
                .contains("gave up after"),
            "{} gave up at start",
            p.name
        );
    }
}

/// A role started before NATS listens is alive but not ready, logs each failed attempt with
/// its number, and becomes ready once NATS is there; one whose `--startup-timeout` runs out
/// exits non-zero and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_retries_nats_at_start_not_ready_meanwhile_and_gives_up_after_its_timeout() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::Builder::new()
        .prefix("bw-startup-")
        .tempdir()
        .unwrap();
    let mut server = NatsServer::start();
    server.stop();
    let a = RoleProcess::start(
        &[
            "analytics",
            "--nats",
            &server.url(),
            "--health",
            "127.0.0.1:0",
        ],
        dir.path(),
        "analytics",
    );
    let addr = health_addr(&a).await;
    let (healthz, readyz) = (
        format!("http://{addr}/healthz"),
        format!("http://{addr}/readyz"),
    );
    let deadline = tokio::time::Instant::now() + START;
    while startup_attempts(&a).len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retries logged; log:\n{}",
            std::fs::read_to_string(&a.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts: Vec<u64> = startup_attempts(&a)
        .iter()
        .filter_map(|l| l["fields"]["attempt"].as_u64())
        .collect();
    assert_eq!(&attempts[..2], &[1, 2], "attempts are numbered");
    assert!(startup_attempts(&a)[0]["fields"]["error"].is_string());
    assert_eq!(status_of(&healthz).await, 200, "alive while waiting");
    let body: serde_json::Value = reqwest::get(&readyz).await.unwrap().json().await.unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["starting"], true);
    assert_eq!(status_of(&readyz).await, 503);

    server.restart();
    a.wait_ready("analytics", 1, START).await;
    wait_status(&readyz, 200, "NATS is there").await;

    let mut gone = NatsServer::start();
    gone.stop();
    let mut g = RoleProcess::start(
        &["ingest", "--nats", &gone.url(), "--startup-timeout", "2"],
        dir.path(),
        "gives-up",
    );
    let status = g
        .wait_exit(START)
        .await
        .expect("the role exits once its start-up timeout ran out");
    assert!(!status.success());
    let log = std::fs::read_to_string(&g.log).unwrap_or_default();
    assert!(
        log.contains("gave up after") && log.contains("--startup-timeout"),
        "the error says it gave up and which setting bounds it:\n{log}"
    );
}
