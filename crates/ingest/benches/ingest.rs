//! Ingest throughput, in two parts of one run:
//!
//! 1. parsing: a generated generic CSV of `BENCH_PARSE_ROWS` rows (default 5,000,000) from
//!    its bytes to checked observations (decode, parse, normalize, dedup), on one core;
//! 2. end to end: rows per second from a file's bytes to durable acknowledgement, beside a
//!    raw async-nats JetStream publish of the same messages, for `BENCH_ROWS` rows (default
//!    5,000,000): ingest handed the bytes in memory, over NATS and embedded, and a streamed
//!    upload over NATS, as `borderwatch import` makes one: the file read from disk, staged in
//!    the object store as it is read, then read back a piece at a time, hashed and checked,
//!    copied under its hash, and published batch by batch. The streamed case runs in a
//!    process of its own (this binary again), so that its peak memory is its own and can be
//!    set beside the file's size.
//!
//! Peak memory (VmHWM) is printed after each part.
//!
//! Run: `cargo bench -p borderwatch-ingest --bench ingest` (needs `nats-server` on PATH or
//! in NATS_SERVER_BIN). `BENCH_REPEAT` sets the repetitions per case (default 3; the median
//! is reported); `BENCH_E2E=0` skips part 2. Results are kept in BENCHMARKS.md.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use borderwatch_bus::{MemoryBus, NatsBus, names};
use borderwatch_ingest::service::{Server, Submission, ingest};
use borderwatch_ingest_client::submit_reader;
use borderwatch_model::{Country, Period};
use borderwatch_test_support::NatsServer;

mod support;
use support::raw_publish::{raw_messages, raw_publish};

const COUNTRIES: &[&str] = &[
    "AFG", "ARM", "AZE", "BLR", "BRA", "CHN", "COL", "CUB", "DEU", "ECU", "EST", "FIN", "FRA",
    "GBR", "GEO", "GTM", "HND", "HTI", "IND", "IRN", "ISR", "ITA", "JPN", "KAZ", "KGZ", "KOR",
    "LTU", "LVA", "MDA", "MEX", "MNG", "NIC", "POL", "PRK", "RUS", "SLV", "SYR", "TJK", "TKM",
    "TUR", "UKR", "USA", "UZB", "VEN", "VNM", "EGY", "ETH", "NGA", "PAK", "BGD",
];

/// A generic CSV of `rows` figures for `source`: countries × categories × quarters.
fn release_csv(source: &str, rows: usize) -> String {
    use std::fmt::Write;
    let quarters = 40;
    let per_country = rows.div_ceil(COUNTRIES.len() * quarters);
    let mut out = String::with_capacity(rows * 32 + 64);
    out.push_str("source,period,country,category,count\n");
    let periods: Vec<String> = (0..quarters)
        .map(|q| Period::Quarter(2015, 1).offset(q as i64).to_string())
        .collect();
    let mut n = 0;
    'outer: for country in COUNTRIES {
        for c in 0..per_country {
            for period in &periods {
                if n == rows {
                    break 'outer;
                }
                let count = 100 + (n * 7919) % 5000;
                let _ = writeln!(out, "{source},{period},{country},cat{c},{count}");
                n += 1;
            }
        }
    }
    out
}

/// The process's peak resident memory so far (VmHWM), in MiB; 0 where /proc is missing.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time this thread has used (user + system), from /proc; zero where it is missing.
/// On a shared machine the wall time of a one-thread task includes waiting for a core; its
/// CPU time is what one core of its own would take.
fn thread_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            // Fields 14 and 15 of stat (utime, stime), counted after the command name.
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Part 1: decode + parse + normalize of a big file on one core.
fn parse_part(rows: usize, repeat: usize) {
    let t = Instant::now();
    let csv = release_csv("bench", rows);
    let generated = t.elapsed();
    // Piecewise first, so the peak memory printed after it is its own (the generated file
    // itself, 145 MiB for 5 million rows, is in memory in both cases).
    let (mut stream_times, mut stream_cpu) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (t, cpu) = (Instant::now(), thread_cpu());
        let mut accepted = 0usize;
        let parsed = borderwatch_ingest::parse_generic_reader(
            csv.as_bytes(),
            None,
            borderwatch_ingest::ParseLimits::default(),
            borderwatch_ingest::ReadOptions::default(),
            |batch| {
                accepted += batch.len();
                Ok(())
            },
        )
        .expect("piecewise parse");
        stream_times.push(t.elapsed());
        stream_cpu.push(thread_cpu().saturating_sub(cpu));
        assert_eq!((accepted, parsed.rejected.len()), (rows, 0));
    }
    let stream_peak = peak_mib();
    let (mut times, mut cpu_times) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (t, cpu) = (Instant::now(), thread_cpu());
        let parsed = borderwatch_ingest::parse("generic", csv.as_bytes(), None).expect("parse");
        times.push(t.elapsed());
        cpu_times.push(thread_cpu().saturating_sub(cpu));
        assert_eq!(parsed.observations.len(), rows);
        assert!(parsed.rejected.is_empty());
    }
    let (m, cpu) = (median(times), median(cpu_times));
    println!(
        "## parse: {rows} rows, {:.0} MiB of CSV (generated in {:.1} s), {repeat} repetitions, median",
        csv.len() as f64 / 1048576.0,
        generated.as_secs_f64()
    );
    println!();
    println!("| case | wall time | rows/s (wall) | CPU time | rows/s per core (CPU) |");
    println!("|---|---|---|---|---|");
    println!(
        "| decode + parse + normalize + dedup (`borderwatch_ingest::parse`, one thread) | {:.3} s | {:.0} | {:.3} s | {:.0} |",
        m.as_secs_f64(),
        rate(rows, m),
        cpu.as_secs_f64(),
        if cpu.is_zero() { 0.0 } else { rate(rows, cpu) }
    );
    let (sm, scpu) = (median(stream_times), median(stream_cpu));
    println!(
        "| the same from a `Read`, piecewise (`parse_generic_reader`, 1 MiB pieces, batches of 50,000 dropped) | {:.3} s | {:.0} | {:.3} s | {:.0} |",
        sm.as_secs_f64(),
        rate(rows, sm),
        scpu.as_secs_f64(),
        if scpu.is_zero() {
            0.0
        } else {
            rate(rows, scpu)
        }
    );
    println!();
    println!("peak memory after the piecewise parse (VmHWM): {stream_peak:.0} MiB");
    println!(
        "peak memory after parsing whole (VmHWM): {:.0} MiB",
        peak_mib()
    );
    println!();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
}

/// The streamed case, in its own process: `BENCH_STREAM_FILE` to the ingest service of this
/// process over `BENCH_NATS_URL`. Prints `seconds peak_mib accepted`.
async fn streamed_child(file: &str, url: &str) {
    let bus = NatsBus::connect(url, "bench-streamed")
        .await
        .expect("connect");
    let bus: borderwatch_bus::Bus = std::sync::Arc::new(bus);
    let server = Server::bind(bus.clone()).await.expect("ingest serves");
    let cancel = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(server.run(cancel.clone()));
    let t = Instant::now();
    let upload = tokio::fs::File::open(file)
        .await
        .expect("the generated file");
    let release = submit_reader(bus.as_ref(), Some("generic".into()), None, upload, None)
        .await
        .expect("streamed ingest");
    let elapsed = t.elapsed();
    println!(
        "{} {} {}",
        elapsed.as_secs_f64(),
        peak_mib(),
        release.new_observations
    );
    cancel.cancel();
    let _ = serving.await;
}

/// Runs [`streamed_child`] in a new process; its time and peak memory.
fn streamed(file: &std::path::Path, url: &str, rows: usize) -> (Duration, f64) {
    let out = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .env("BENCH_STREAM_FILE", file)
        .env("BENCH_NATS_URL", url)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the streamed case runs");
    assert!(out.status.success(), "the streamed case failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("a number"))
        .collect();
    assert_eq!(fields.get(2).copied(), Some(rows as f64), "{text}");
    (Duration::from_secs_f64(fields[0]), fields[1])
}

/// Empties a stream between cases (untimed). nats-server keeps every subject's state in
/// memory (about 270 bytes each: `cargo bench -p borderwatch-bus --bench subjects`), and
/// every case publishes subjects of its own: three repetitions of 5 million new subjects in
/// each of three cases, kept, got it killed for memory on a 24 GiB machine.
async fn purge(js: &jetstream::Context, stream: &str) {
    js.get_stream(stream)
        .await
        .expect("stream")
        .purge()
        .await
        .expect("purged");
}

#[tokio::main]
async fn main() {
    if let (Ok(file), Ok(url)) = (
        std::env::var("BENCH_STREAM_FILE"),
        std::env::var("BENCH_NATS_URL"),
    ) {
        return streamed_child(&file, &url).await;
    }
    let repeat = env_usize("BENCH_REPEAT", 3).max(1);
    let _ = Country::parse("PRK");
    parse_part(env_usize("BENCH_PARSE_ROWS", 5_000_000), repeat);
    if env_usize("BENCH_E2E", 1) == 0 {
        return;
    }
    let rows = env_usize("BENCH_ROWS", 5_000_000);
    let server = NatsServer::start();
    let bus = NatsBus::connect(&server.url(), "bench")
        .await
        .expect("connect");
    names::ensure_all(&bus, 1).await.expect("streams");
    let client = async_nats::connect(server.url())
        .await
        .expect("raw connect");
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "RAW".into(),
        subjects: vec!["raw.>".into()],
        max_messages_per_subject: -1,
        duplicate_window: Duration::from_secs(3600),
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("raw stream");

    let (mut parse_t, mut raw_t, mut nats_t, mut mem_t) = (vec![], vec![], vec![], vec![]);
    let (mut stream_t, mut stream_peak) = (vec![], 0.0f64);
    let mut file_mib = 0.0;
    for i in 0..repeat {
        // Each repetition uses new sources, so nothing is a duplicate of an earlier one.
        let csv = release_csv(&format!("bench{i}"), rows);
        let bytes = bytes::Bytes::from(csv.clone().into_bytes());

        let t = Instant::now();
        let parsed = borderwatch_ingest::parse("generic", &bytes, None).expect("parse");
        parse_t.push(t.elapsed());
        assert_eq!(parsed.observations.len(), rows);

        let msgs = raw_messages(&csv);
        let t = Instant::now();
        raw_publish(&js, &msgs).await;
        raw_t.push(t.elapsed());
        drop(msgs);
        purge(&js, "RAW").await;

        let t = Instant::now();
        let release = ingest(
            &bus,
            Submission {
                format: None,
                source: None,
                bytes: bytes.clone(),
            },
        )
        .await
        .expect("ingest over NATS");
        nats_t.push(t.elapsed());
        purge(&js, names::OBS_STREAM).await;
        assert_eq!(release.new_observations as usize, rows);

        let dir = tempfile::tempdir().expect("tempdir");
        let mem = MemoryBus::open(dir.path()).await.expect("memory bus");
        names::ensure_all(&mem, 1).await.expect("streams");
        let t = Instant::now();
        let release = ingest(
            &mem,
            Submission {
                format: None,
                source: None,
                bytes,
            },
        )
        .await
        .expect("ingest embedded");
        mem_t.push(t.elapsed());
        assert_eq!(release.new_observations as usize, rows);
        drop(mem);

        // Another source, so that its figures are new to the stream too.
        let file = dir.path().join("streamed.csv");
        std::fs::write(&file, release_csv(&format!("bench{i}s"), rows)).expect("file written");
        file_mib = std::fs::metadata(&file).map_or(0.0, |m| m.len() as f64 / 1048576.0);
        let (t, peak) = streamed(&file, &server.url(), rows);
        stream_t.push(t);
        stream_peak = stream_peak.max(peak);
        purge(&js, names::OBS_STREAM).await;
        eprintln!(
            "repetition {} of {repeat}: raw {:.3} s, over NATS {:.3} s, embedded {:.3} s, streamed {:.3} s (peak {peak:.0} MiB)",
            i + 1,
            raw_t[i].as_secs_f64(),
            nats_t[i].as_secs_f64(),
            mem_t[i].as_secs_f64(),
            t.as_secs_f64()
        );
    }
    let (parse_m, raw_m, nats_m, mem_m, stream_m) = (
        median(parse_t),
        median(raw_t),
        median(nats_t),
        median(mem_t),
        median(stream_t),
    );
    println!("## end to end: {rows} rows per release; repetitions: {repeat} (median shown)");
    println!();
    println!("| case | time | rows/s | vs raw JetStream publish |");
    println!("|---|---|---|---|");
    for (name, d) in [
        (
            "raw async-nats JetStream publish (same subjects, payloads, msg ids; 512 in flight)",
            raw_m,
        ),
        (
            "borderwatch ingest over NATS (decode, parse, diff, publish, marker, release record)",
            nats_m,
        ),
        ("borderwatch ingest embedded (data directory)", mem_m),
        (
            "borderwatch streamed upload over NATS (file → object store → hash and check → copy → publish by batch; own process)",
            stream_m,
        ),
        ("decode + parse only (no bus)", parse_m),
    ] {
        println!(
            "| {name} | {:.3} s | {:.0} | {:.2}× |",
            d.as_secs_f64(),
            rate(rows, d),
            rate(rows, d) / rate(rows, raw_m)
        );
    }
    println!();
    println!("peak memory at the end (VmHWM): {:.0} MiB", peak_mib());
    println!(
        "peak memory of the streamed upload's process (VmHWM, the largest of {repeat}): {stream_peak:.0} MiB, for a {file_mib:.0} MiB file"
    );
    drop(server);
}
