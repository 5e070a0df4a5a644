//! Memory of the embedded bus's bookkeeping under a long run: `N` messages published with
//! message ids (a short duplicate window, one kept version per subject, so the messages
//! themselves stay few) and consumed and acknowledged by a durable consumer. What grows is
//! what the bus remembers about them: ids for deduplication and acknowledged sequences.
//!
//! `cargo bench -p borderwatch-bus --bench memory` (`BW_BENCH_MESSAGES`, default 500,000).
//! Prints the process's resident set (VmRSS) and peak (VmHWM) after each phase, Linux only.
//! Then 100,000 payloads of 1 KiB kept in a stream that keeps everything.
//! Results: BENCHMARKS.md, "Embedded bus memory".

use std::time::{Duration, Instant};

use borderwatch_bus::{MemoryBus, Outgoing, StreamSpec, Transport};
use futures::StreamExt;

const BATCH: usize = 10_000;

fn kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(phase: &str, started: Instant) {
    println!(
        "{phase:<28} rss {:>7} KiB  peak {:>7} KiB  ({:.1?})",
        kib("VmRSS:"),
        kib("VmHWM:"),
        started.elapsed()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("BW_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let window = Duration::from_millis(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let bus = MemoryBus::open(dir.path()).await.expect("open");
    bus.ensure_stream(&StreamSpec {
        name: "M".into(),
        subjects: vec!["m.>".into()],
        max_msgs_per_subject: 1,
        duplicate_window: window,
        replicas: 1,
        max_bytes: borderwatch_bus::MaxBytes::Unlimited,
    })
    .await
    .expect("stream");
    let started = Instant::now();
    report("opened", started);
    let payload = bytes::Bytes::from(vec![b'x'; 200]);
    for batch in 0..n.div_ceil(BATCH) {
        let msgs = (batch * BATCH..((batch + 1) * BATCH).min(n))
            .map(|i| {
                Outgoing::new(format!("m.{}", i % 1000), payload.clone())
                    .with_id(format!("release-0123456789abcdef-{i}"))
            })
            .collect();
        bus.publish_all(msgs).await.expect("publish");
        // Spread the publishes over several windows, as a long-running service sees them.
        tokio::time::sleep(window + Duration::from_millis(20)).await;
    }
    report(&format!("published {n}"), started);
    let mut deliveries = bus
        .consume("M", "c", "m.>", Duration::from_secs(60))
        .await
        .expect("consume");
    let mut acked = 0;
    while acked < n.min(1000) {
        // One version per subject is kept: the last 1,000 messages are what is delivered.
        let d = deliveries.next().await.expect("delivery").expect("ok");
        d.ack().await.expect("ack");
        acked += 1;
    }
    report(&format!("consumed and acked {acked}"), started);
    // Acks of a consumer that keeps up with a stream of new messages.
    for round in 0..n.div_ceil(1000) {
        let msgs = (0..1000)
            .map(|i| Outgoing::new(format!("m.{i}"), payload.clone()))
            .collect();
        bus.publish_all(msgs).await.expect("publish");
        for _ in 0..1000 {
            let d = deliveries.next().await.expect("delivery").expect("ok");
            d.ack().await.expect("ack");
        }
        if round == 0 {
            report("first acked batch", started);
        }
    }
    report(&format!("published and acked {n} more"), started);
    keep_everything(&bus, started).await;
}

/// A stream that keeps every message (as `BW_SURGES` does): 100,000 payloads of 1 KiB.
async fn keep_everything(bus: &MemoryBus, started: Instant) {
    bus.ensure_stream(&StreamSpec {
        name: "K".into(),
        subjects: vec!["k.>".into()],
        max_msgs_per_subject: -1,
        duplicate_window: Duration::from_secs(60),
        replicas: 1,
        max_bytes: borderwatch_bus::MaxBytes::Unlimited,
    })
    .await
    .expect("stream");
    for batch in 0..10 {
        // A buffer each, as publishes from the network bring them (clones would share one).
        let msgs = (0..BATCH)
            .map(|i| Outgoing::new(format!("k.{batch}.{i}"), vec![b'k'; 1024]))
            .collect();
        bus.publish_all(msgs).await.expect("publish");
    }
    report("kept 100,000 x 1 KiB", started);
}
