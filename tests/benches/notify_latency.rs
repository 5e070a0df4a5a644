//! Alert latency: from a release's ingest acknowledgement to each webhook POST received,
//! for 1, 100 and 10,000 matching subscriptions, with every role in one process over a
//! real nats-server on loopback; and deliveries per second to a local receiver.
//!
//! Run: `cargo bench -p borderwatch-e2e --bench notify_latency` (needs `nats-server` on
//! PATH or in NATS_SERVER_BIN). `BENCH_SUBS` (comma-separated, default `1,100,10000`) picks
//! the cases, `BENCH_RELEASES` the measured releases per case (default: 30, 20, 2).
//! Results are kept in BENCHMARKS.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borderwatch::roles::{UpOptions, start, wait_analyzed};
use borderwatch_bus::{Bus, names};
use borderwatch_e2e::surges::put_subscription;
use borderwatch_e2e::{Behaviour, ScriptedReceiver};
use borderwatch_ingest_client::{Submission, submit};
use borderwatch_test_support::NatsServer;
use futures::StreamExt;

/// A generic CSV of two series over 11 years of quarters for `source`: flat, except that
/// PRK/study jumps five-fold in the last quarter, so a release makes one surge.
fn release_csv(source: &str) -> String {
    let mut out = String::from("source,period,country,category,count\n");
    for year in 2014..2025 {
        for q in 1..=4 {
            let study = if (year, q) == (2024, 4) {
                5000
            } else {
                1000 + (year * 7 + q * 13) % 40
            };
            let work = 2000 + (year * 11 + q * 5) % 50;
            out.push_str(&format!("{source},{year}-Q{q},PRK,study,{study}\n"));
            out.push_str(&format!("{source},{year}-Q{q},PRK,work,{work}\n"));
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// When each surge reached `BW_SURGES` (seen by a plain subscriber of the stream).
#[derive(Debug, Default)]
struct Published(Mutex<HashMap<String, Instant>>);

async fn watch_surges(bus: Bus, published: Arc<Published>) {
    let mut stream = bus
        .replay(names::SURGE_STREAM, "bw.surge.>", 1)
        .await
        .expect("replay surges");
    while let Some(Ok(msg)) = stream.next().await {
        let at = Instant::now();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&msg.payload)
            && let Some(id) = v["id"].as_str()
        {
            published.0.lock().unwrap().insert(id.to_string(), at);
        }
    }
}

/// Reading every subscription one request at a time (`kv_keys`, then one `kv_get` after
/// another): what notify did for every event before its subscription cache.
async fn load_subscriptions_serially(bus: &Bus) -> Duration {
    let t = Instant::now();
    for key in bus.kv_keys(names::SUBSCRIPTIONS_BUCKET).await.unwrap() {
        bus.kv_get(names::SUBSCRIPTIONS_BUCKET, &key).await.unwrap();
    }
    t.elapsed()
}

/// What a reload of notify's subscription cache costs (`kv_keys`, then 64 `kv_get`s in
/// flight), done at most once a second when an event finds the copy stale.
async fn load_subscriptions_concurrently(bus: &Bus) -> Duration {
    let t = Instant::now();
    let keys = bus.kv_keys(names::SUBSCRIPTIONS_BUCKET).await.unwrap();
    let n = futures::stream::iter(keys)
        .map(|key| async move { bus.kv_get(names::SUBSCRIPTIONS_BUCKET, &key).await })
        .buffered(64)
        .filter(|v| futures::future::ready(matches!(v, Ok(Some(_)))))
        .count()
        .await;
    assert!(n > 0);
    t.elapsed()
}

struct Release {
    posts: usize,
    /// Ack → each POST.
    latencies: Vec<Duration>,
    /// Ack → the surge on BW_SURGES (analytics' share).
    to_surge: Duration,
    /// Ack → the last POST.
    to_last: Duration,
}

async fn one_release(
    bus: &Bus,
    receiver: &ScriptedReceiver,
    published: &Published,
    source: &str,
    subs: usize,
) -> Release {
    let seen_before = receiver.attempts().len();
    let release = submit(
        bus.as_ref(),
        Submission {
            format: Some("generic".into()),
            source: None,
            bytes: release_csv(source).into_bytes().into(),
        },
    )
    .await
    .expect("release ingested");
    let acked = Instant::now();
    let analyzed = wait_analyzed(bus, &release, Duration::from_secs(120))
        .await
        .expect("release analysed");
    let surges: Vec<String> = analyzed
        .iter()
        .flat_map(|a| a.surges.iter().map(|s| s.id.clone()))
        .collect();
    assert_eq!(surges.len(), 1, "the bench release makes one surge");
    let expected = surges.len() * subs;
    let got = receiver
        .wait_until(Duration::from_secs(600), "every subscription's POST", |r| {
            r.len() - seen_before >= expected
        })
        .await;
    let posts = &got[seen_before..];
    assert!(
        posts
            .iter()
            .all(|p| p.accepted() && surges.contains(&p.event_id))
    );
    let mut latencies: Vec<Duration> = posts.iter().map(|p| p.at - acked).collect();
    latencies.sort();
    let to_surge = published.0.lock().unwrap()[&surges[0]] - acked;
    Release {
        posts: posts.len(),
        to_last: *latencies.last().unwrap(),
        latencies,
        to_surge,
    }
}

async fn case(subs: usize, releases: usize) {
    let server = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut opts = UpOptions::embedded(data.path().to_path_buf());
    opts.nats = Some(server.url());
    // The receiver is on loopback.
    opts.allow_private_webhooks();
    let running = start(opts).await.expect("roles start");
    let bus = running.bus.clone();
    let published = Arc::new(Published::default());
    tokio::spawn(watch_surges(bus.clone(), published.clone()));
    let receiver = ScriptedReceiver::start(Behaviour::default()).await;

    let t = Instant::now();
    let mut puts = tokio::task::JoinSet::new();
    for chunk in (0..subs).collect::<Vec<_>>().chunks(subs.div_ceil(32)) {
        let (bus, receiver, chunk) = (bus.clone(), receiver.clone(), chunk.to_vec());
        puts.spawn(async move {
            for i in chunk {
                let id = format!("bench-{i:05}");
                put_subscription(bus.as_ref(), &id, &receiver.url(&id), "bench-secret").await;
            }
        });
    }
    puts.join_all().await;
    eprintln!("{subs} subscriptions stored in {:?}", t.elapsed());

    let run = std::process::id();
    // One release first, not measured: connections, caches, the first analysis.
    one_release(
        &bus,
        &receiver,
        &published,
        &format!("warm{run}x{subs}"),
        subs,
    )
    .await;
    let mut all = Vec::new();
    let mut to_surge = Vec::new();
    let mut to_last = Vec::new();
    let mut posts = 0;
    let mut busy = Duration::ZERO;
    for r in 0..releases {
        let source = format!("b{run}x{subs}r{r}");
        let rel = one_release(&bus, &receiver, &published, &source, subs).await;
        posts += rel.posts;
        busy += rel.to_last - rel.to_surge;
        all.extend(rel.latencies);
        to_surge.push(rel.to_surge);
        to_last.push(rel.to_last);
    }
    all.sort();
    to_surge.sort();
    to_last.sort();
    let median = |v: &[Duration]| v[v.len() / 2];
    println!("### {subs} subscription(s): {releases} releases, {posts} POSTs");
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| ack → POST received, p50 | {} |",
        ms(percentile(&all, 50.0))
    );
    println!(
        "| ack → POST received, p99 | {} |",
        ms(percentile(&all, 99.0))
    );
    println!(
        "| ack → POST received, max | {} |",
        ms(*all.last().unwrap())
    );
    println!(
        "| ack → surge on BW_SURGES (analytics), median | {} |",
        ms(median(&to_surge))
    );
    println!(
        "| ack → last POST of the release, median | {} |",
        ms(median(&to_last))
    );
    println!(
        "| deliveries per second (POSTs ÷ time from surge published to last POST) | {:.0} |",
        posts as f64 / busy.as_secs_f64()
    );
    println!(
        "| reading every subscription one kv_get at a time (notify's old per-event read) | {} |",
        ms(load_subscriptions_serially(&bus).await)
    );
    println!(
        "| reloading notify's subscription cache (64 kv_gets in flight; at most once a second) | {} |",
        ms(load_subscriptions_concurrently(&bus).await)
    );
    println!();
    running.shutdown().await;
}

#[tokio::main]
async fn main() {
    let subs: Vec<usize> = std::env::var("BENCH_SUBS")
        .unwrap_or_else(|_| "1,100,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let releases: Option<usize> = std::env::var("BENCH_RELEASES")
        .ok()
        .and_then(|v| v.parse().ok());
    for n in subs {
        let r = releases.unwrap_or(match n {
            0..=1 => 30,
            2..=1000 => 20,
            _ => 2,
        });
        case(n, r).await;
    }
}
