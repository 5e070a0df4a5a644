//! The gateway in bounded memory: with 20,000 surges in the stream and 1,000 kept whole,
//! every answer (pages across the boundary, filters, CSV, one old surge, the dashboard, a
//! live stream resumed from far back) is byte for byte what a gateway holding every surge
//! gives, on both transports.

use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, MemoryBus, NatsBus, Outgoing, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_test_support::NatsServer;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SURGES: usize = 20_000;
const CACHE: usize = 1_000;

fn surge(i: usize) -> Value {
    let country = ["PRK", "CHN", "SYR"][i % 3];
    let category = ["study", "work"][i % 2];
    let severity = ["low", "medium", "high", "critical"][i % 4];
    json!({
        "id": format!("sg-b{i:05}"),
        "source": if i.is_multiple_of(5) { "synthetic" } else { "fsb" },
        "country": country,
        "category": category,
        "period": format!("{}-Q{}", 1990 + i / 400, i % 4 + 1),
        "value": 100 + i,
        "severity": severity,
        "direction": if i.is_multiple_of(7) { "fall" } else { "rise" },
        "explanation": format!("surge {i}"),
        "findings": [{"detector": "record_high", "expected": null, "upper_bound": null,
                      "p_value": null, "message": "the highest on record"}],
        "release_id": format!("rel-{}", i / 500),
        "detected_at": format!("2025-01-{:02}T00:00:00Z", 1 + i / 1000),
        // Every 1000th is an incident's closing notice: in the stream, never listed.
        "incident_update": if i % 1000 == 999 { "closed" } else { "opened" },
    })
}

fn outgoing(e: &Value) -> Outgoing {
    Outgoing::new(
        names::surge_subject(
            e["country"].as_str().unwrap(),
            e["category"].as_str().unwrap(),
        ),
        serde_json::to_vec(e).unwrap(),
    )
    .with_id(e["id"].as_str().unwrap().to_string())
}

async fn fill(bus: &Bus) {
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let events: Vec<Outgoing> = (0..SURGES).map(|i| outgoing(&surge(i))).collect();
    for batch in events.chunks(1000) {
        bus.publish_all(batch.to_vec()).await.unwrap();
    }
}

struct Gateway {
    base: String,
    cancel: CancellationToken,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn start(bus: Bus, surge_cache: usize) -> Gateway {
    let cfg = GatewayConfig {
        rate_limit: None,
        surge_cache,
        ..GatewayConfig::default()
    };
    let cancel = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let c = cancel.clone();
    tokio::spawn(async move {
        borderwatch_gateway::serve(bus, listener, cfg, c)
            .await
            .unwrap()
    });
    Gateway { base, cancel }
}

async fn get(http: &reqwest::Client, gw: &Gateway, path: &str) -> (u16, String) {
    let r = http.get(format!("{}{path}", gw.base)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The first `n` events of the live stream, resumed after `last_id`: (id, surge id).
async fn resumed(gw: &Gateway, last_id: u64, n: usize) -> Vec<(u64, String)> {
    let r = reqwest::Client::new()
        .get(format!("{}/v1/surges/stream?country=PRK", gw.base))
        .header("Last-Event-ID", last_id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("events within the wait")
            .expect("the stream goes on")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let id = block.lines().find_map(|l| l.strip_prefix("id: "));
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            if let (Some(id), Some(data)) = (id, data) {
                let e: Value = serde_json::from_str(data).unwrap();
                events.push((id.parse().unwrap(), e["id"].as_str().unwrap().to_string()));
            }
        }
    }
    events.truncate(n);
    events
}

/// Every page of `query` (newest first), following `next_cursor`: the surge ids in order.
async fn walk(http: &reqwest::Client, gw: &Gateway, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/surges?{query}&cursor={c}"),
            None => format!("/v1/surges?{query}"),
        };
        let (status, body) = get(http, gw, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        for s in body["surges"].as_array().unwrap() {
            ids.push(s["id"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

fn listed(i: usize) -> bool {
    i % 1000 != 999
}

async fn answers_are_the_same_with_a_small_cache(bus: Bus) {
    fill(&bus).await;
    let small = start(bus.clone(), CACHE).await;
    let whole = start(bus.clone(), usize::MAX).await;
    let http = reqwest::Client::new();

    // Every page, across the boundary of what is kept whole.
    let ids = walk(&http, &small, "limit=1000").await;
    let expected: Vec<String> = (0..SURGES)
        .rev()
        .filter(|&i| listed(i))
        .map(|i| format!("sg-b{i:05}"))
        .collect();
    assert_eq!(ids.len(), expected.len());
    assert!(
        ids == expected,
        "the pages list every surge once, newest first"
    );
    let prk = walk(&http, &small, "country=PRK&min_severity=high&limit=777").await;
    let expected: Vec<String> = (0..SURGES)
        .rev()
        .filter(|&i| listed(i) && i % 3 == 0 && i % 4 >= 2)
        .map(|i| format!("sg-b{i:05}"))
        .collect();
    assert!(prk == expected, "a filter pages over old surges too");

    // The same bytes as a gateway holding every surge.
    for path in [
        "/v1/surges",
        "/v1/surges?limit=10000",
        "/v1/surges?cursor=120&limit=50",
        "/v1/surges?cursor=18990&limit=20",
        "/v1/surges?country=SYR&category=work&since=1995-Q1&limit=300",
        "/v1/surges?since=2025-01-03T00:00:00Z&direction=fall&limit=100",
        "/v1/surges?source=synthetic&format=csv&limit=2000",
        "/v1/surges?cursor=3000&format=csv&limit=10",
        "/v1/surges/sg-b00000",
        "/v1/surges/sg-b10001",
        "/v1/surges/sg-b19998",
        "/v1/surges/sg-b00999",
        "/",
        "/?country=CHN&min_severity=critical",
    ] {
        let (a, body_a) = get(&http, &small, path).await;
        let (b, body_b) = get(&http, &whole, path).await;
        assert_eq!((a, &body_a), (b, &body_b), "{path}");
        // Asked again: served from the rendered-body cache, still the same.
        assert_eq!(get(&http, &small, path).await.1, body_a, "{path}, again");
    }
    let (status, oldest) = get(&http, &small, "/v1/surges/sg-b00000").await;
    assert_eq!(status, 200);
    let oldest: Value = serde_json::from_str(&oldest).unwrap();
    assert_eq!(
        (oldest["value"].as_u64(), oldest["explanation"].as_str()),
        (Some(100), Some("surge 0"))
    );
    // A closing notice is no surge.
    assert_eq!(get(&http, &small, "/v1/surges/sg-b00999").await.0, 404);
    let (_, page) = get(&http, &small, "/").await;
    assert!(
        page.contains("matching surges (of 19980)"),
        "the dashboard counts every surge"
    );

    // A live stream resumed from far back gets what it missed, oldest first, then new ones.
    let from = resumed(&small, 3, 3).await;
    assert_eq!(
        from,
        vec![
            (4, "sg-b00003".to_string()),
            (7, "sg-b00006".to_string()),
            (10, "sg-b00009".to_string())
        ]
    );
    assert_eq!(resumed(&whole, 3, 3).await, from);
    let live = tokio::spawn(async move {
        let gw = small;
        let events = resumed(&gw, SURGES as u64, 1).await;
        (gw, events)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut new = surge(SURGES);
    new["country"] = json!("PRK");
    bus.publish(outgoing(&new)).await.unwrap();
    let (small, events) = live.await.unwrap();
    assert_eq!(
        events,
        vec![(SURGES as u64 + 1, format!("sg-b{SURGES:05}"))]
    );
    let (_, first) = get(&http, &small, "/v1/surges?limit=1").await;
    assert!(first.contains(&format!("sg-b{SURGES:05}")), "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_the_same_with_a_small_cache_memory() {
    let bus: Bus = Arc::new(MemoryBus::ephemeral());
    answers_are_the_same_with_a_small_cache(bus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_the_same_with_a_small_cache_nats() {
    let server = NatsServer::start();
    let bus: Bus = Arc::new(
        NatsBus::connect(&server.url(), "bounded-test")
            .await
            .expect("connects"),
    );
    answers_are_the_same_with_a_small_cache(bus).await;
}
