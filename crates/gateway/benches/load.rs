//! Load benchmark of the gateway: requests per second and p99 latency under `wrk` on loopback
//! for `GET /v1/surges`, a dashboard series page and the dashboard's home page, with 10,000
//! stored surges on the embedded bus, beside a trivial axum handler (`GET /` answering "ok")
//! served by the same process and runtime in the same run: the ceiling of this machine, this
//! axum and this wrk. The ratio to the ceiling is the number to compare across machines.
//!
//! ```text
//! cargo bench -p borderwatch-gateway --bench load
//! BENCH_SURGES=10000 BENCH_SECONDS=10 BENCH_CONNECTIONS=32 BENCH_THREADS=2 cargo bench -p borderwatch-gateway --bench load
//! ```
//!
//! Needs `wrk` on PATH (Debian: `apt-get install wrk`).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use borderwatch_bus::{Bus, MemoryBus, Outgoing, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_model::{
    Band, Baseline, Country, Finding, Freq, Period, Point, SeriesView, Severity, SurgeEvent,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A surge event shaped like the analytics service's: three findings, one with a baseline.
fn surge(i: usize, country: Country, category: &str, period: Period, value: u64) -> SurgeEvent {
    SurgeEvent {
        id: format!("sg-bench-{i:06}"),
        source: if i.is_multiple_of(3) {
            "fsb"
        } else {
            "synthetic"
        }
        .into(),
        country,
        category: category.into(),
        period,
        value,
        severity: [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ][i % 4],
        explanation: format!(
            "{value} entries of citizens for {category} in {period}: more than in the whole of {} ({}); far above the expected {} (upper bound {}, p < 0.001)",
            period.year() - 1,
            value * 9 / 10,
            value / 3,
            value / 2
        ),
        findings: vec![
            Finding {
                detector: "exceeds_prior_year".into(),
                expected: None,
                upper_bound: Some((value * 9 / 10) as f64),
                p_value: None,
                message: format!("more than in the whole of {}", period.year() - 1),
                baseline: Some(Baseline {
                    period: Period::Year(period.year() - 1),
                    value: (value * 9 / 10) as f64,
                }),
            },
            Finding {
                detector: "farrington".into(),
                expected: Some(value as f64 / 3.0),
                upper_bound: Some(value as f64 / 2.0),
                p_value: Some(1e-6),
                message: "far above the expected".into(),
                baseline: None,
            },
            Finding {
                detector: "ears_c2".into(),
                expected: Some(value as f64 / 3.2),
                upper_bound: Some(value as f64 / 2.1),
                p_value: Some(2e-5),
                message: "far above the average of 7 earlier quarters".into(),
                baseline: None,
            },
        ],
        release_id: format!("rel-{:04}", i / 100),
        detected_at: "2025-05-01T00:00:00Z".into(),
        score: 0.0,
        direction: Default::default(),
        historical: false,
        incident_id: None,
        incident_update: Default::default(),
        story: None,
        url: None,
    }
}

/// Stores `n` surges (the first three in the series the page benchmark opens) and that
/// series' view.
async fn fill(bus: &Bus, n: usize) {
    names::ensure_all(bus.as_ref(), 1).await.expect("streams");
    let prk = Country::parse("PRK").expect("PRK");
    let countries: Vec<Country> = ["CHN", "VNM", "SYR", "IND", "TUR", "UZB", "KGZ", "TJK"]
        .iter()
        .map(|c| Country::parse(c).expect("country"))
        .collect();
    let categories = ["work", "study", "tourism", "private", "business", "transit"];
    let first = Period::Quarter(2019, 1);
    let values: Vec<u64> = vec![
        700, 750, 950, 800, 260, 20, 15, 15, 15, 17, 19, 21, 16, 19, 22, 25, 20, 30, 62, 70, 38,
        332, 3765, 3752, 3,
    ];
    let mut series_surges = Vec::new();
    for i in 0..n {
        let e = if i < 3 {
            let period = first.offset(21 + i as i64);
            let e = surge(i, prk, "study", period, values[21 + i]);
            series_surges.push(e.id.clone());
            SurgeEvent {
                source: "fsb".into(),
                ..e
            }
        } else {
            let period = first.offset((i % 25) as i64);
            surge(
                i,
                countries[i % countries.len()],
                categories[i % categories.len()],
                period,
                1000 + (i as u64 * 37) % 9000,
            )
        };
        let subject = names::surge_subject(e.country.code(), &e.category);
        let payload = serde_json::to_vec(&e).expect("json");
        bus.publish(Outgoing::new(subject, payload).with_id(e.id.clone()))
            .await
            .expect("publish surge");
    }
    let observations: Vec<Point> = values
        .iter()
        .enumerate()
        .map(|(i, &count)| Point {
            period: first.offset(i as i64),
            count,
        })
        .collect();
    let bands = observations[12..]
        .iter()
        .map(|p| Band {
            period: p.period,
            detector: "farrington".into(),
            expected: 40.0,
            upper_bound: 80.0,
        })
        .collect();
    let view = SeriesView {
        source: "fsb".into(),
        country: prk,
        category: "study".into(),
        freq: Freq::Quarter,
        observations,
        yearly: Vec::new(),
        year_over_year: Vec::new(),
        surges: series_surges,
        updated_at: "2025-05-01T00:00:00Z".into(),
        release_id: "rel-0000".into(),
        bands,
    };
    bus.kv_put(
        names::SERIES_BUCKET,
        &names::series_key("fsb", "PRK", "study"),
        view.to_stored().into(),
    )
    .await
    .expect("store the series view");
}

/// One plain HTTP/1.1 GET, to the address as its Host (the gateway on loopback answers
/// only local host names); the status code and the body's length.
async fn get_once(addr: std::net::SocketAddr, path: &str) -> (u16, usize) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.find("\r\n\r\n").map_or(0, |i| buf.len() - i - 4);
    (status, body)
}

#[derive(Debug)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: String,
}

fn latency_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, factor) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (s, 1.0)
    };
    num.trim().parse::<f64>().ok().map(|v| v * factor)
}

/// Runs wrk against `url` and reads its summary.
fn wrk(url: &str, seconds: u64, connections: usize, threads: usize) -> Load {
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            url,
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk ({e}): apt-get install wrk"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed on {url}:\n{text}");
    let mut load = Load {
        rps: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: String::new(),
    };
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            load.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            load.p50_ms = latency_ms(v).unwrap_or(f64::NAN);
        } else if let Some(v) = t.strip_prefix("99%") {
            load.p99_ms = latency_ms(v).unwrap_or(f64::NAN);
        } else if t.starts_with("Non-2xx") || t.starts_with("Socket errors") {
            load.errors.push_str(t);
            load.errors.push(' ');
        }
    }
    load
}

fn main() {
    let n: usize = env_or("BENCH_SURGES", 10_000);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let connections: usize = env_or("BENCH_CONNECTIONS", 32);
    let threads: usize = env_or("BENCH_THREADS", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cancel = CancellationToken::new();
    let (gateway, trivial) = rt.block_on(async {
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        let t = Instant::now();
        fill(&bus, n).await;
        eprintln!("stored {n} surges in {:.1} s", t.elapsed().as_secs_f64());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let gateway = listener.local_addr().expect("addr");
        // The rate limit is per client IP, and wrk is one client: it would measure 429s.
        let cfg = GatewayConfig {
            rate_limit: None,
            ..GatewayConfig::default()
        };
        tokio::spawn(borderwatch_gateway::serve(
            bus,
            listener,
            cfg,
            cancel.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let trivial = listener.local_addr().expect("addr");
        let app = Router::new().route("/", get(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let deadline = Instant::now() + Duration::from_secs(60);
        while get_once(gateway, "/readyz").await.0 != 200 {
            assert!(Instant::now() < deadline, "the gateway never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (gateway, trivial)
    });

    let cases = [
        ("trivial axum handler (ceiling)", trivial, "/"),
        (
            "GET /healthz (the gateway's middleware around a tiny answer)",
            gateway,
            "/healthz",
        ),
        ("GET /v1/surges", gateway, "/v1/surges"),
        ("GET /v1/surges?limit=50", gateway, "/v1/surges?limit=50"),
        (
            "GET /v1/surges?country=PRK",
            gateway,
            "/v1/surges?country=PRK",
        ),
        (
            "series page /series/fsb/PRK/study",
            gateway,
            "/series/fsb/PRK/study",
        ),
        ("dashboard home /", gateway, "/"),
    ];
    println!(
        "gateway load: {n} stored surges, wrk -t{threads} -c{connections} -d{seconds}s, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| case | response bytes | requests/s | p50 ms | p99 ms | vs trivial |\n|---|---|---|---|---|---|"
    );
    let mut ceiling = None;
    for (name, addr, path) in cases {
        let (status, bytes) = rt.block_on(get_once(addr, path));
        assert_eq!(status, 200, "{path} answered {status}");
        let load = wrk(
            &format!("http://{addr}{path}"),
            seconds,
            connections,
            threads,
        );
        // A rate of refusals or errors is no result.
        assert!(
            !load.errors.contains("Non-2xx"),
            "{path}: wrk saw answers other than 2xx/3xx: {}",
            load.errors
        );
        let base = *ceiling.get_or_insert(load.rps);
        println!(
            "| {name} | {bytes} | {:.0} | {:.2} | {:.2} | {:.3}× |{}",
            load.rps,
            load.p50_ms,
            load.p99_ms,
            load.rps / base,
            if load.errors.is_empty() {
                String::new()
            } else {
                format!(" {}", load.errors.trim())
            }
        );
    }
    cancel.cancel();
}
