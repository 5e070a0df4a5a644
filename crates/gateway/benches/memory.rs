//! The gateway's resident memory against the number of surges in `BW_SURGES`.
//!
//! `cargo bench -p borderwatch-gateway --bench memory` (`BENCH_SURGES`, default
//! `10000,100000`; `BENCH_CACHES`, default `all,10000,1000`). One real nats-server holds the
//! stream (so the bus's memory is not the gateway's); for each count the surges are published
//! once, then for each cache size a fresh process (this binary again) starts the gateway with
//! `surge_cache` at that size, waits until it has indexed the stream, asks for every page of
//! `GET /v1/surges?limit=1000`, one old surge and the dashboard, and reports its VmRSS from
//! `/proc/self/status` before the gateway started, once it has indexed the stream, and after
//! serving those requests (which fill the rendered-body cache, up to its 64 MiB), with the
//! peak (VmHWM). `all` keeps every event whole, as the gateway did before its index was made
//! slim.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use borderwatch_bus::{Bus, NatsBus, Outgoing, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_test_support::NatsServer;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn surge(i: usize) -> Value {
    let country = ["PRK", "CHN", "SYR", "VNM", "IND", "TJK"][i % 6];
    let category = ["study", "work", "tourism", "private"][i % 4];
    let year = 1990 + (i / 4000) as i32;
    let value = 1000 + (i % 997) as u64 * 7;
    let severity = ["low", "medium", "high", "critical"][i % 4];
    json!({
        "id": format!("sg-mem-{i:07}"),
        "source": if i.is_multiple_of(3) { "fsb" } else { "synthetic" },
        "country": country,
        "category": category,
        "period": format!("{year}-Q{}", i % 4 + 1),
        "value": value,
        "severity": severity,
        "explanation": format!(
            "{value} entries of citizens for {category} in {year}-Q{}: more than in the whole of {} ({}); far above the expected {} (upper bound {}, p < 0.001)",
            i % 4 + 1, year - 1, value * 9 / 10, value / 3, value / 2
        ),
        "findings": [
            {"detector": "exceeds_prior_year", "expected": null, "upper_bound": (value * 9 / 10) as f64,
             "p_value": null, "message": format!("more than in the whole of {}", year - 1),
             "baseline": {"period": format!("{}", year - 1), "value": (value * 9 / 10) as f64}},
            {"detector": "farrington", "expected": value as f64 / 3.0, "upper_bound": value as f64 / 2.0,
             "p_value": 1e-6, "message": "far above the expected"},
            {"detector": "year_over_year", "expected": null, "upper_bound": null, "p_value": null,
             "message": "three times the same quarter a year earlier"},
        ],
        "release_id": format!("rel-{:016x}", i / 500),
        "detected_at": format!("2026-11-{:02}T10:00:00Z", 1 + i / 10_000),
        "score": 40.0 + (i % 60) as f64,
        "incident_id": format!("inc-{:016x}", i / 3),
    })
}

fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    if let Ok(spec) = std::env::var("BW_GW_MEM_CHILD") {
        child(&spec);
        return;
    }
    let counts: Vec<usize> = std::env::var("BENCH_SURGES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_SURGES: numbers"))
        .collect();
    let caches = std::env::var("BENCH_CACHES").unwrap_or_else(|_| "all,10000,1000".into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "| surges in the stream | surge_cache | indexed in | VmRSS before | indexed: VmRSS | growth per surge | after serving: VmRSS | peak (VmHWM) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &count in &counts {
        let server = NatsServer::start();
        rt.block_on(async {
            let bus: Bus = Arc::new(NatsBus::connect(&server.url(), "bench").await.unwrap());
            names::ensure_all(bus.as_ref(), 1).await.unwrap();
            let mut batch = Vec::with_capacity(1000);
            for i in 0..count {
                let e = surge(i);
                batch.push(
                    Outgoing::new(
                        names::surge_subject(
                            e["country"].as_str().unwrap(),
                            e["category"].as_str().unwrap(),
                        ),
                        serde_json::to_vec(&e).unwrap(),
                    )
                    .with_id(e["id"].as_str().unwrap().to_string()),
                );
                if batch.len() == 1000 {
                    bus.publish_all(std::mem::take(&mut batch)).await.unwrap();
                }
            }
            bus.publish_all(batch).await.unwrap();
        });
        for cache in caches.split(',') {
            let out = Command::new(std::env::current_exe().unwrap())
                .env(
                    "BW_GW_MEM_CHILD",
                    format!("{}|{count}|{}", server.url(), cache.trim()),
                )
                .output()
                .expect("the child runs");
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

/// One gateway over the stream: its memory before and after it indexed and served it.
fn child(spec: &str) {
    let mut parts = spec.split('|');
    let (url, count, cache) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().parse::<usize>().unwrap(),
        parts.next().unwrap().to_string(),
    );
    let surge_cache = if cache == "all" {
        usize::MAX
    } else {
        cache.parse().unwrap()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let bus: Bus = Arc::new(NatsBus::connect(&url, "bench-gateway").await.unwrap());
        let http = reqwest::Client::new();
        let (before, _) = rss();
        let started = Instant::now();
        let cancel = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cfg = GatewayConfig {
            rate_limit: None,
            surge_cache,
            ..GatewayConfig::default()
        };
        tokio::spawn(borderwatch_gateway::serve(bus, listener, cfg, cancel.clone()));
        // Answered once the index caught up (serve waits for it before accepting).
        let mut ready = false;
        for _ in 0..6000 {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(ready, "the gateway became ready");
        let indexed = started.elapsed();
        let (at_ready, _) = rss();
        let mut cursor = String::new();
        loop {
            let body: Value = http
                .get(format!("{base}/v1/surges?limit=1000{cursor}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match body["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let oldest = http
            .get(format!("{base}/v1/surges/sg-mem-0000000"))
            .send()
            .await
            .unwrap();
        assert_eq!(oldest.status(), 200);
        let home = http.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(home.status(), 200);
        let (after, peak) = rss();
        println!(
            "| {count} | {cache} | {:.1} s | {before:.1} MiB | {at_ready:.1} MiB | {:.0} bytes | {after:.1} MiB | {peak:.1} MiB |",
            indexed.as_secs_f64(),
            (at_ready - before) * 1024.0 * 1024.0 / count as f64,
        );
        cancel.cancel();
    });
}
