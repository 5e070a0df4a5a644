//! Analytics scaling: series-periods per second for one large release, analysed by 1, 2, …
//! `borderwatch analytics` processes (replicas sharing the durable consumer) against one
//! nats-server, in one run.
//!
//! Run: `cargo bench -p borderwatch-e2e --bench analytics_scaling`
//! (`BENCH_SERIES`, default 25,000 series × 40 quarters; `BENCH_REPLICAS`, default `1,2`;
//! `BENCH_THREADS`, threads per replica (`RAYON_NUM_THREADS`, `POLARS_MAX_THREADS`), default
//! all cores; needs
//! `nats-server` on PATH or in NATS_SERVER_BIN). `cargo bench --profile dev` measures the
//! debug build without building a release one. `BENCH_BORDERWATCH_BIN` runs that
//! `borderwatch` binary instead of building this tree's (two builds compared run after
//! run). Results are kept in BENCHMARKS.md;
//! tests/benches/scaling-16core.sh runs it on a machine without cargo (1, 2, 4, 8 replicas).
//!
//! Each case: a fresh nats-server, the release ingested in-process (not timed; its parts
//! wait in `BW_RELEASES`), then N analytics processes started at once. Timed: from the
//! first part a replica starts to the last part finished (from the replicas' own log
//! timestamps, so process start-up is not counted); every period of every series is
//! evaluated, as in a source's first release.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use borderwatch_bus::{NatsBus, Transport, names};
use borderwatch_e2e::RoleProcess;
use borderwatch_ingest::service::{Submission, ingest};
use borderwatch_model::Period;
use borderwatch_test_support::{NatsServer, measure};

const QUARTERS: usize = 40;

/// The analytics bench's seeded, seasonal, noisy counts (crates/analytics/benches).
fn count(series: usize, q: usize) -> u64 {
    let mut x = (series as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (q as u64 + 1);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let level = 50 + (series % 200) as u64 * 25;
    let season = [0.8, 1.1, 1.3, 0.9][q % 4];
    let noise = 0.85 + (x % 300) as f64 / 1000.0;
    (level as f64 * season * noise) as u64
}

fn release_csv(series: usize) -> String {
    const COUNTRIES: [&str; 8] = ["PRK", "CHN", "VNM", "IND", "KAZ", "UZB", "TJK", "KGZ"];
    let mut csv = String::from("source,period,country,category,count\n");
    for s in 0..series {
        for q in 0..QUARTERS {
            let period = Period::Quarter(2015, 1).offset(q as i64);
            csv.push_str(&format!(
                "scaling,{period},{},c{},{}\n",
                COUNTRIES[s % 8],
                s / 8,
                count(s, q)
            ));
        }
    }
    csv
}

/// Seconds since midnight of a tracing JSON timestamp (`2026-11-28T05:17:08.123456Z`).
fn seconds_of_day(line: &serde_json::Value) -> Option<f64> {
    let ts = line["timestamp"].as_str()?;
    let time = ts.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn messages<'a>(
    lines: &'a [serde_json::Value],
    message: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    lines
        .iter()
        .filter(move |l| l["fields"]["message"] == message)
}

struct Case {
    replicas: usize,
    seconds: f64,
    wall: Duration,
    parts_per_replica: Vec<usize>,
    /// CPU seconds nats-server used from the replicas' start to the last part recorded.
    server_cpu: f64,
    /// CPU seconds each replica used, start-up included.
    replica_cpu: Vec<f64>,
    /// Mean milliseconds per part reading its series, evaluating them, storing their views
    /// and recording the part (the replicas' `part timings` lines).
    part_ms: [f64; 4],
    /// The release-wide work of the last part (BH, incidents, announcing), milliseconds,
    /// and the surges it announced.
    release_wide_ms: f64,
    surges: u64,
}

async fn run_case(csv: &str, series: usize, replicas: usize, threads: Option<&str>) -> Case {
    let server = NatsServer::start();
    let bus = Arc::new(
        NatsBus::connect(&server.url(), "bench")
            .await
            .expect("connect"),
    );
    names::ensure_all(bus.as_ref(), 1).await.expect("streams");
    let release = ingest(
        bus.as_ref(),
        Submission {
            bytes: csv.as_bytes().to_vec().into(),
            format: Some("generic".into()),
            source: None,
        },
    )
    .await
    .expect("ingest");
    assert_eq!(release.new_observations as usize, series * QUARTERS);
    let dir = tempfile::tempdir().expect("log dir");
    let url = server.url();
    let server_pid = server.pid().expect("nats-server runs");
    let server_cpu_before = measure::cpu_seconds(server_pid);
    let started = Instant::now();
    let mut procs: Vec<RoleProcess> = (0..replicas)
        .map(|i| {
            // The sizes of rayon's and polars's thread pools, read at start.
            let mut env: Vec<(&str, &str)> = threads
                .map(|t| vec![("RAYON_NUM_THREADS", t), ("POLARS_MAX_THREADS", t)])
                .unwrap_or_default();
            // Each part's read, evaluation and store times (a debug line).
            env.push((
                "BORDERWATCH_LOG",
                "info,borderwatch_analytics::service=debug",
            ));
            RoleProcess::start_with_env(
                &["analytics", "--nats", url.as_str()],
                &env,
                dir.path(),
                &format!("analytics-{i}"),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(3600);
    // Polls only the parts not yet recorded: a recorded part's record (its candidates, up
    // to hundreds of KiB) read again every 100 ms was, until 2026-12, a good part of what
    // nats-server did in this bench.
    let mut waiting: Vec<&String> = release.analyses.iter().collect();
    loop {
        let mut still = Vec::new();
        for key in waiting {
            if bus
                .kv_get(names::ANALYZED_BUCKET, key)
                .await
                .expect("kv")
                .is_none()
            {
                still.push(key);
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "analytics did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed();
    let server_cpu = measure::cpu_seconds(server_pid) - server_cpu_before;
    // Let the last "release analysed" line reach the log (it follows the record).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut first_start = f64::MAX;
    let mut last_end = f64::MIN;
    let mut parts_per_replica = Vec::new();
    let mut parts_seen: HashMap<String, usize> = HashMap::new();
    let replica_cpu: Vec<f64> = procs
        .iter()
        .map(|p| p.pid().map_or(0.0, measure::cpu_seconds))
        .collect();
    let mut timings: Vec<[f64; 4]> = Vec::new();
    let (mut release_wide_ms, mut surges) = (0.0, 0);
    for p in &procs {
        let lines = p.log_lines();
        for l in messages(&lines, "part timings") {
            let ms = |f: &str| l["fields"][f].as_f64().unwrap_or(0.0);
            let (read, evaluated) = (ms("read_ms"), ms("evaluated_ms"));
            // `recorded_ms` is new (2026-12): 0 for a binary from before.
            let stored = ms("stored_ms");
            let recorded = ms("recorded_ms").max(stored);
            timings.push([
                read,
                evaluated - read,
                stored - evaluated,
                recorded - stored,
            ]);
        }
        for l in messages(&lines, "release-wide timings") {
            release_wide_ms += l["fields"]["announced_ms"].as_f64().unwrap_or(0.0);
            surges += l["fields"]["surges"].as_u64().unwrap_or(0);
        }
        for l in messages(&lines, "analysing release part") {
            first_start = first_start.min(seconds_of_day(l).unwrap_or(f64::MAX));
        }
        let finished: Vec<_> = messages(&lines, "release analysed").collect();
        for l in &finished {
            last_end = last_end.max(seconds_of_day(l).unwrap_or(f64::MIN));
            let part = format!("{}", l["fields"]["part"]);
            *parts_seen.entry(part).or_default() += 1;
        }
        parts_per_replica.push(finished.len());
    }
    for p in &mut procs {
        p.kill();
    }
    assert_eq!(
        parts_seen.len(),
        release.analyses.len(),
        "every part analysed"
    );
    let n = timings.len().max(1) as f64;
    let part_ms = [0, 1, 2, 3].map(|i| timings.iter().map(|t| t[i]).sum::<f64>() / n);
    Case {
        replicas,
        seconds: last_end - first_start,
        wall,
        parts_per_replica,
        server_cpu,
        replica_cpu,
        part_ms,
        release_wide_ms,
        surges,
    }
}

fn main() {
    let series: usize = std::env::var("BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000);
    let replicas: Vec<usize> = std::env::var("BENCH_REPLICAS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let threads = std::env::var("BENCH_THREADS").ok();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let csv = release_csv(series);
    let points = (series * QUARTERS) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "analytics scaling: {series} series × {QUARTERS} quarters = {points} series-periods, {cores} cores, threads per replica: {}",
        threads.as_deref().unwrap_or("all cores")
    );
    println!(
        "| replicas | time (first part started → last finished) | series-periods/s | vs 1 replica | parts per replica | wall incl. start-up | nats-server CPU | replicas' CPU | per part: read / evaluate / store / record | release-wide (surges) | load average before |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut base = None;
    for n in replicas {
        let load = load_average();
        let case = runtime.block_on(run_case(&csv, series, n, threads.as_deref()));
        let rate = points / case.seconds;
        let ratio = rate / *base.get_or_insert(rate);
        println!(
            "| {} | {:.2} s | {:.0} | {:.2}× | {:?} | {:.2} s | {:.1} s | {} | {:.0} / {:.0} / {:.0} / {:.0} ms | {:.0} ms ({}) | {load} |",
            case.replicas,
            case.seconds,
            rate,
            ratio,
            case.parts_per_replica,
            case.wall.as_secs_f64(),
            case.server_cpu,
            case.replica_cpu
                .iter()
                .map(|c| format!("{c:.1} s"))
                .collect::<Vec<_>>()
                .join(", "),
            case.part_ms[0],
            case.part_ms[1],
            case.part_ms[2],
            case.part_ms[3],
            case.release_wide_ms,
            case.surges,
        );
    }
}

/// The 1, 5 and 15-minute load averages (Linux), or "?": a shared machine's figures only
/// mean something next to them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}
