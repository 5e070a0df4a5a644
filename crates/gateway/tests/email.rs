//! Email subscriptions through the API, against a real gateway on a random port and a real
//! SMTP server (aiosmtpd) on loopback: addresses are checked when the subscription is made
//! or edited (422 `email_address_invalid`, nothing stored), format and target must agree
//! (400), reads mask the addresses, and the test event goes out as an email through the
//! gateway's SMTP settings.

mod support;
use support::{Gateway, start};

use std::time::Duration;

use borderwatch_bus::names;
use borderwatch_gateway::GatewayConfig;
use borderwatch_notify::SmtpConfig;
use borderwatch_test_support::SmtpServer;
use serde_json::{Value, json};

impl Gateway {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn subscribe(&self, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, "/v1/subscriptions", Some(body))
            .await
    }

    async fn stored(&self) -> usize {
        self.bus
            .kv_keys(names::SUBSCRIPTIONS_BUCKET)
            .await
            .unwrap()
            .len()
    }
}

fn config(smtp: Option<SmtpConfig>) -> GatewayConfig {
    GatewayConfig {
        rate_limit: None,
        public_url: Some("https://bw.example.org".into()),
        smtp,
        ..GatewayConfig::default()
    }
}

fn email(url: &str) -> Value {
    json!({"filter": {"countries": ["PRK"]}, "webhook": {"url": url}, "format": "email"})
}

#[tokio::test]
async fn invalid_addresses_are_refused_at_subscription_time() {
    let gw = start(config(None)).await;
    for bad in [
        "mailto:not-an-address",
        "mailto:desk@example.org\r\nBcc: everyone@example.org",
        "mailto:desk@example.org?bcc=everyone@example.org",
        "mailto:Desk <desk@example.org>",
        "mailto:root@localhost",
        "mailto:root@[127.0.0.1]",
        "mailto:",
    ] {
        let (status, body) = gw.subscribe(email(bad)).await;
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "email_address_invalid", "{bad:?}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("webhook.url: "),
            "{body}"
        );
    }
    // Format and target must agree.
    let (status, body) = gw
        .subscribe(json!({"webhook": {"url": "mailto:desk@example.org", "secret": "s"}}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = gw
        .subscribe(json!({"webhook": {"url": "https://hooks.example.org/x"}, "format": "email"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(gw.stored().await, 0, "nothing refused is stored");

    // A good one is stored (no secret needed) and read back masked.
    let (status, body) = gw
        .subscribe(email("mailto:desk@example.org,night@example.org"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["format"], "email");
    assert_eq!(body["webhook"]["url"], "mailto:…");
    let id = body["id"].as_str().unwrap().to_string();
    // Edited to a bad address: refused, the stored one kept.
    let (status, body) = gw
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/subscriptions/{id}"),
            Some(json!({"webhook": {"url": "mailto:x@example.org\nBcc: y@example.org"}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let raw = gw
        .bus
        .kv_get(names::SUBSCRIPTIONS_BUCKET, &id)
        .await
        .unwrap()
        .unwrap();
    let stored: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        stored["webhook"]["url"],
        "mailto:desk@example.org,night@example.org"
    );
}

/// `POST /v1/subscriptions/{id}/test` sends the test email through the gateway's SMTP
/// settings: it arrives, marked as a test, and the answer says the server took it.
#[tokio::test]
async fn the_test_event_is_an_email() {
    let server = SmtpServer::start();
    let gw = start(config(Some(SmtpConfig {
        url: server.url(),
        from: "alerts@bw.example.org".into(),
        password: None,
    })))
    .await;
    let (status, body) = gw.subscribe(email("mailto:desk@example.org")).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    let (status, body) = gw
        .send(
            reqwest::Method::POST,
            &format!("/v1/subscriptions/{id}/test"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["outcome"], "delivered", "{body}");
    assert_eq!(body["status"], 250, "{body}");
    let got = server.wait_messages(1, Duration::from_secs(30)).await;
    let m = &got[0];
    assert_eq!(
        m.header("Subject"),
        Some("[borderwatch] TEST: HIGH surge: fsb/PRK/study 2024-Q3")
    );
    assert_eq!(
        m.header("X-Borderwatch-Event-Id"),
        body["event_id"].as_str()
    );
    assert!(
        m.text.contains("This is a test event from borderwatch"),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("https://bw.example.org/v1/series/fsb/PRK/study/chart.png?period=2024-Q3"),
        "{}",
        m.text
    );
}
