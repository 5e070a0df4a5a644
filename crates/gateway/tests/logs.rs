//! The request log: one JSON line per request, in a span with method and route, with status
//! and latency; the Authorization header (a token) never appears in it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use borderwatch_bus::{Bus, MemoryBus, names};
use borderwatch_gateway::GatewayConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn requests_are_logged_as_json_without_their_tokens() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .init();

    let bus: Bus = Arc::new(MemoryBus::ephemeral());
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let cancel = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cfg = GatewayConfig {
        api_token: Some("write-secret-7f3a".into()),
        read_token: Some("read-secret-91c2".into()),
        // The webhook's name is not resolved (no query leaves the machine).
        webhook_allow_private: true,
        ..GatewayConfig::default()
    };
    tracing::info!(config = ?cfg, "starting");
    let c = cancel.clone();
    tokio::spawn(async move { borderwatch_gateway::serve(bus, listener, cfg, c).await });
    let http = reqwest::Client::new();
    let ok = http
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth("write-secret-7f3a")
        .json(&serde_json::json!({"webhook": {"url": "https://example.org/h", "secret": "hook-secret-55"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    let denied = http
        .get(format!("{base}/v1/series/fsb/PRK/study"))
        .bearer_auth("wrong-guess-0000")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    let find = |route: &str, status: u64| {
        requests
            .iter()
            .find(|l| l["span"]["route"] == route && l["fields"]["status"] == status)
            .unwrap_or_else(|| panic!("no request line for {route} {status} in\n{text}"))
    };
    let created = find("/v1/subscriptions", 201);
    assert_eq!(created["span"]["method"], "POST");
    assert!(created["fields"]["latency_ms"].as_f64().unwrap() >= 0.0);
    let refused = find("/v1/series/{source}/{country}/{category}", 401);
    assert_eq!(refused["span"]["path"], "/v1/series/fsb/PRK/study");
    for secret in [
        "write-secret-7f3a",
        "read-secret-91c2",
        "wrong-guess-0000",
        "hook-secret-55",
    ] {
        assert!(!text.contains(secret), "`{secret}` was logged:\n{text}");
    }
    assert!(text.contains("<set>"), "the config was logged, redacted");
}
