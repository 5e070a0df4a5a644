//! What an operator alerts on, scraped from each role's own `/metrics` (`--metrics-addr`) as
//! Prometheus would: roles as OS processes over a real nats-server, state driven as in
//! production (a scheduled source on a loopback HTTP server, a release analysed, a surge
//! delivered, a receiver that is down, a silence).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use borderwatch_bus::{NatsBus, Transport, names};
use borderwatch_e2e::surges::{publish_surges, put_subscription, surge_event};
use borderwatch_e2e::{Behaviour, RoleProcess, ScriptedReceiver, headline_csv_until};
use borderwatch_model::{SeriesIncidents, now_rfc3339};
use borderwatch_test_support::NatsServer;

/// Long enough for a fresh process to connect and for a sample (every 2 s) to land.
const WAIT: Duration = Duration::from_secs(60);

/// A nats-server, the test's own bus handle and a directory for logs and files.
struct Fixture {
    nats: NatsServer,
    bus: Arc<NatsBus>,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(name: &str) -> Fixture {
        let nats = NatsServer::start();
        let bus = Arc::new(
            NatsBus::connect(&nats.url(), "test")
                .await
                .expect("connect"),
        );
        names::ensure_all(bus.as_ref(), 1)
            .await
            .expect("streams and buckets");
        let dir = tempfile::Builder::new()
            .prefix(&format!("bw-{name}-"))
            .tempdir()
            .unwrap();
        Fixture { nats, bus, dir }
    }

    /// Starts `borderwatch <role> --nats URL --metrics-addr 127.0.0.1:0 <extra…>`, waits
    /// until it is ready, and returns it with the URL of its `/metrics`.
    async fn role(&self, role: &str, extra: &[&str]) -> (RoleProcess, String) {
        let url = self.nats.url();
        let mut args = vec![role, "--nats", &url, "--metrics-addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let p = RoleProcess::start(&args, self.dir.path(), role);
        p.wait_ready(role, 1, WAIT).await;
        let metrics = wait_for(WAIT, "the metrics address", || {
            let log = std::fs::read_to_string(&p.log).unwrap_or_default();
            log.lines()
                .find_map(|l| l.strip_prefix("metrics on "))
                .map(str::to_string)
        })
        .await;
        (p, metrics)
    }
}

async fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sample's name and labels.
type Series = (String, BTreeMap<String, String>);

/// One scrape: every sample as (name, labels) → value.
type Samples = BTreeMap<Series, f64>;

async fn scrape(url: &str) -> Samples {
    let resp = reqwest::get(url).await.expect("/metrics answers");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let text = resp.text().await.expect("a body");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| parse_sample(l).unwrap_or_else(|| panic!("not a sample: {l}")))
        .collect()
}

/// `name{a="x",b="y"} 1.5` → ((name, {a: x, b: y}), 1.5). Label values here hold no
/// quotes or commas.
fn parse_sample(line: &str) -> Option<(Series, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let labels = labels
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.trim_matches('"').to_string()))
        })
        .collect::<Option<_>>()?;
    Some(((name.to_string(), labels), value.parse().ok()?))
}

fn get(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples.get(&(name.to_string(), labels)).copied()
}

/// Scrapes `url` until the sample `name{labels}` satisfies `ok`; returns it.
async fn wait_sample(
    url: &str,
    name: &str,
    labels: &[(&str, &str)],
    ok: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let samples = scrape(url).await;
        let value = get(&samples, name, labels);
        if let Some(v) = value.filter(|v| ok(*v)) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{labels:?} is {value:?} at {url}; every sample:\n{samples:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Open incidents in `bw_incidents`, read directly: (rises, falls).
async fn open_incidents(bus: &NatsBus) -> (f64, f64) {
    let (mut rises, mut falls) = (0.0, 0.0);
    for key in bus.kv_keys(names::INCIDENTS_BUCKET).await.unwrap() {
        let raw = bus.kv_get(names::INCIDENTS_BUCKET, &key).await.unwrap();
        let Some(series) = raw.and_then(|r| serde_json::from_slice::<SeriesIncidents>(&r).ok())
        else {
            continue;
        };
        for i in series.incidents.iter().filter(|i| i.is_open()) {
            if i.direction.is_rise() {
                rises += 1.0;
            } else {
                falls += 1.0;
            }
        }
    }
    (rises, falls)
}

/// Ingest polls a source on a loopback server and one on a closed port: the first gets its
/// last-success time, the second none. Analytics analyses what came in: its consumer's lag
/// drains to zero and the open incidents it reports are those in `bw_incidents`.
#[tokio::test]
async fn ingest_and_analytics_report_sources_consumer_lag_and_open_incidents() {
    let f = Fixture::start("metrics-ingest").await;
    let feed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed_addr = feed.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/fsb.csv",
        axum::routing::get(|| async { headline_csv_until("2024-Q3") }),
    );
    tokio::spawn(async move { axum::serve(feed, app).await });
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sources = f.dir.path().join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            "[[source]]\nname = \"fsb\"\nurl = \"http://{feed_addr}/fsb.csv\"\nformat = \"generic\"\nevery = \"1h\"\n\n\
             [[source]]\nname = \"gone\"\nurl = \"http://{closed}/gone.csv\"\nevery = \"1h\"\n"
        ),
    )
    .unwrap();
    let before = unix_now();
    let (_analytics, analytics) = f.role("analytics", &[]).await;
    let (_ingest, ingest) = f
        .role("ingest", &["--sources", sources.to_str().unwrap()])
        .await;

    let fetched = wait_sample(
        &ingest,
        "borderwatch_source_last_success_timestamp_seconds",
        &[("source", "fsb")],
        |_| true,
    )
    .await;
    assert!(
        (before - 1.0..=unix_now() + 1.0).contains(&fetched),
        "fetched at {fetched}, the test ran from {before}"
    );
    let samples = scrape(&ingest).await;
    assert_eq!(
        get(
            &samples,
            "borderwatch_source_interval_seconds",
            &[("source", "fsb")]
        ),
        Some(3600.0)
    );
    assert_eq!(
        get(
            &samples,
            "borderwatch_source_last_success_timestamp_seconds",
            &[("source", "gone")]
        ),
        None,
        "a source never fetched has no last success"
    );

    // The figures end with the headline surge (2024-Q3): once analytics is through the
    // release, its incident is open.
    let deadline = tokio::time::Instant::now() + WAIT;
    while open_incidents(&f.bus).await.0 < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no incident opened within {WAIT:?}; bw_incidents holds {:?}",
            f.bus.kv_keys(names::INCIDENTS_BUCKET).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let releases = [("stream", "BW_RELEASES"), ("consumer", "analytics")];
    wait_sample(
        &analytics,
        "borderwatch_consumer_pending_messages",
        &releases,
        |v| v == 0.0,
    )
    .await;
    wait_sample(
        &analytics,
        "borderwatch_consumer_ack_pending_messages",
        &releases,
        |v| v == 0.0,
    )
    .await;
    // Nothing is left to analyse: what bw_incidents holds now is final, and the gauges
    // come to say the same.
    let (rises, falls) = open_incidents(&f.bus).await;
    wait_sample(
        &analytics,
        "borderwatch_incidents_open",
        &[("direction", "rise")],
        |v| v == rises,
    )
    .await;
    wait_sample(
        &analytics,
        "borderwatch_incidents_open",
        &[("direction", "fall")],
        |v| v == falls,
    )
    .await;
}

/// Notify delivers a surge to one receiver (one latency sample, labelled by format and
/// notice kind), gives up on another that is down (one dead letter), drains its consumer,
/// and counts a silence once one is stored.
#[tokio::test]
async fn notify_reports_latency_dead_letters_consumer_lag_and_silences() {
    let f = Fixture::start("metrics-notify").await;
    let config = f.dir.path().join("borderwatch.toml");
    std::fs::write(
        &config,
        "[notify.retry]\ninitial_ms = 10\nmax_secs = 1\nmax_attempts = 2\n",
    )
    .unwrap();
    let (_notify, notify) = f
        .role("notify", &["--config", config.to_str().unwrap()])
        .await;
    let up = ScriptedReceiver::start(&[]).await;
    let down = ScriptedReceiver::start(Behaviour {
        fail_for: Some(Duration::from_secs(3600)),
        ..Behaviour::default()
    })
    .await;
    put_subscription(f.bus.as_ref(), "sub-up", &up.url("hook"), "s").await;
    put_subscription(f.bus.as_ref(), "sub-down", &down.url("hook"), "s").await;
    wait_sample(&notify, "borderwatch_dead_letters", &[], |v| v == 0.0).await;
    wait_sample(&notify, "borderwatch_silences_active", &[], |v| v == 0.0).await;
    // A subscription takes effect within the cache age (a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    publish_surges(f.bus.as_ref(), &[surge_event("sg-metrics", 0)]).await;
    up.wait_for(1, "the surge").await;
    let surge = [("format", "json"), ("notice", "surge")];
    wait_sample(
        &notify,
        "borderwatch_notification_latency_seconds_count",
        &surge,
        |v| v == 1.0,
    )
    .await;
    let samples = scrape(&notify).await;
    let sum = get(
        &samples,
        "borderwatch_notification_latency_seconds_sum",
        &surge,
    )
    .unwrap();
    assert!((0.0..30.0).contains(&sum), "announced just before: {sum} s");
    assert_eq!(
        get(
            &samples,
            "borderwatch_notification_latency_seconds_bucket",
            &[("format", "json"), ("notice", "surge"), ("le", "86400")]
        ),
        Some(1.0),
        "the histogram has the documented buckets"
    );

    wait_sample(&notify, "borderwatch_dead_letters", &[], |v| v == 1.0).await;
    assert_eq!(down.attempts().len(), 2, "given up after max_attempts");
    let surges = [("stream", "BW_SURGES"), ("consumer", "notify")];
    wait_sample(
        &notify,
        "borderwatch_consumer_pending_messages",
        &surges,
        |v| v == 0.0,
    )
    .await;
    wait_sample(
        &notify,
        "borderwatch_consumer_ack_pending_messages",
        &surges,
        |v| v == 0.0,
    )
    .await;

    let silence = serde_json::json!({
        "id": "sil-metrics",
        "matchers": {"country": "AFG"},
        "until": "2999-01-01T00:00:00Z",
        "created_at": now_rfc3339(),
    });
    f.bus
        .kv_put(
            names::SILENCES_BUCKET,
            "sil-metrics",
            serde_json::to_vec(&silence).unwrap().into(),
        )
        .await
        .unwrap();
    wait_sample(&notify, "borderwatch_silences_active", &[], |v| v == 1.0).await;
}
