//! nats-server's memory per stored subject: every figure borderwatch stores is a subject of
//! its own in `BW_OBS` (`bw.obs.<source>.<country>.<category>.<period>`), and nats-server
//! keeps each subject's state in memory. This publishes `BENCH_SUBJECTS` (default
//! 1,000,000, comma-separated for several steps) distinct subjects to one file-storage
//! stream and prints the server's resident memory (VmRSS) at each step, and the growth per
//! subject.
//!
//! Run: `cargo bench -p borderwatch-bus --bench subjects` (needs `nats-server` on PATH or in
//! NATS_SERVER_BIN). Results are kept in BENCHMARKS.md.

use std::time::Instant;

use async_nats::jetstream;
use borderwatch_test_support::NatsServer;

/// The server's resident memory in MiB, from /proc.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let steps: Vec<u64> = std::env::var("BENCH_SUBJECTS")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .filter_map(|v| v.trim().replace('_', "").parse().ok())
        .collect();
    let server = NatsServer::start();
    let pid = server.pid().expect("the server runs");
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "SUBJECTS".into(),
        subjects: vec!["bw.obs.>".into()],
        max_messages_per_subject: 16,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("stream");
    // A payload the size of an observation's JSON.
    let payload = bytes::Bytes::from(vec![b'x'; 160]);
    let start = rss_mib(pid);
    println!("| subjects stored | nats-server VmRSS | growth per subject | publish time |");
    println!("|---|---|---|---|");
    println!("| 0 | {start:.0} MiB | | |");
    let mut stored = 0u64;
    for target in steps {
        let t = Instant::now();
        while stored < target {
            let end = (stored + 512).min(target);
            let mut acks = Vec::with_capacity(512);
            for i in stored..end {
                // Shaped like borderwatch's: source, country, category, period.
                let quarter = i / 200 % 40;
                let subject = format!(
                    "bw.obs.bench.C{:03}.k{}.{}-Q{}",
                    i % 200,
                    i / 8000,
                    1900 + quarter / 4,
                    quarter % 4 + 1
                );
                acks.push(js.publish(subject, payload.clone()).await.expect("sent"));
            }
            for ack in acks {
                ack.await.expect("stored");
            }
            stored = end;
        }
        let rss = rss_mib(pid);
        println!(
            "| {stored} | {rss:.0} MiB | {:.0} bytes | {:.1} s |",
            (rss - start) * 1048576.0 / stored as f64,
            t.elapsed().as_secs_f64()
        );
    }
    let info = js
        .get_stream("SUBJECTS")
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();
    println!();
    println!(
        "stream: {} messages, {} subjects",
        info.state.messages, info.state.subjects_count
    );
}
