//! The API's observability end to end: in `borderwatch up` every role counts into the
//! gateway's `/metrics`; a role in its own process serves its metrics on `--metrics-addr`.

use std::time::Duration;

use borderwatch::roles::{UpOptions, start};
use borderwatch_e2e::{Behaviour, RoleProcess, ScriptedReceiver, headline_csv};
use borderwatch_test_support::NatsServer;
use serde_json::{Value, json};

/// The value of the sample line that starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn up_counts_rows_releases_surges_and_deliveries_on_the_gateway_metrics() {
    let receiver = ScriptedReceiver::start(Behaviour {
        fail_first: 1,
        ..Behaviour::default()
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let mut opts = UpOptions::embedded(data.path().to_path_buf());
    opts.notify.backoff.initial = Duration::from_millis(100);
    // The webhook receiver is on loopback.
    opts.allow_private_webhooks();
    let running = start(opts).await.unwrap();
    let base = running.gateway_url().unwrap();
    let http = reqwest::Client::new();
    let metrics = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // Counters of this process, which other tests in this binary do not touch before.
    let before = metrics().await;
    let rows_before = sample(&before, "borderwatch_rows_ingested_total");

    let r = http
        .post(format!("{base}/v1/subscriptions"))
        .json(&json!({"filter": {"countries": ["PRK"]}, "webhook": {"url": receiver.url("hook"), "secret": "s"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let release: Value = http
        .post(format!("{base}/v1/ingest?format=generic"))
        .header("content-type", "text/csv")
        .body(headline_csv())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let accepted = release["accepted"].as_f64().unwrap();
    assert!(accepted > 20.0, "{release}");
    // The first POST fails, the retry succeeds: one `retrying` and one `delivered` at least.
    receiver
        .wait_accepted(Duration::from_secs(30), "a delivery", |got| !got.is_empty())
        .await;
    let mut text = String::new();
    for _ in 0..100 {
        text = metrics().await;
        if sample(&text, "borderwatch_deliveries_total{outcome=\"delivered\"}") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sample(&text, "borderwatch_rows_ingested_total") - rows_before,
        accepted
    );
    assert!(sample(&text, "borderwatch_releases_total") >= 1.0);
    assert!(sample(&text, "borderwatch_surges_total{severity=\"critical\"}") >= 1.0);
    assert!(sample(&text, "borderwatch_deliveries_total{outcome=\"retrying\"}") >= 1.0);
    assert!(sample(&text, "borderwatch_deliveries_total{outcome=\"delivered\"}") >= 1.0);
    assert!(
        sample(
            &text,
            "borderwatch_http_requests_total{route=\"/v1/ingest\",status=\"201\"}"
        ) >= 1.0
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_role_in_its_own_process_serves_metrics_on_metrics_addr() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let _analytics = RoleProcess::start(
        &["analytics", "--nats", &nats.url(), "--metrics-addr", &addr],
        dir.path(),
        "analytics",
    );
    let http = reqwest::Client::new();
    let mut text = None;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("http://{addr}/metrics")).send().await
            && r.status() == 200
        {
            text = Some(r.text().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = text.expect("analytics served /metrics on --metrics-addr");
    assert_eq!(sample(&text, "borderwatch_nats_connected"), 1.0);
    assert_eq!(
        sample(&text, "borderwatch_surges_total{severity=\"critical\"}"),
        0.0
    );
}
