//! Exposure behind a reverse proxy (issue 13, item 5): a proxy that rewrites `Host` to the
//! gateway's loopback address still lets the dashboard's own writes through when the public
//! name is in `allowed_hosts`, and no other site's.

use std::sync::Arc;

use borderwatch_bus::{Bus, MemoryBus, names};
use borderwatch_gateway::GatewayConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn behind_a_proxy_the_public_origin_writes_once_its_name_is_allowed() {
    let bus: Bus = Arc::new(MemoryBus::ephemeral());
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let cancel = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cfg = GatewayConfig {
        allowed_hosts: vec!["bw.example.org".into()],
        rate_limit: None,
        ..GatewayConfig::default()
    };
    let c = cancel.clone();
    tokio::spawn(async move { borderwatch_gateway::serve(bus, listener, cfg, c).await });
    let http = reqwest::Client::new();
    let post = |origin: &'static str| {
        http.post(format!("{base}/v1/silences"))
            .header("origin", origin)
            .json(&json!({"matchers": {"country": "PRK"}, "until": "2999-01-01T00:00:00Z"}))
            .send()
    };
    // The request reaches the gateway with the proxy's upstream Host (127.0.0.1:PORT).
    let r = post("https://bw.example.org").await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = post("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 403);
    cancel.cancel();
}
