//! The gateway's side of webhook safety, against a real server on a random port: a
//! subscription to a loopback, private, link-local or metadata address is refused (422)
//! unless private targets are allowed, reads show webhook URLs masked and need the API
//! token, and the delivery log shows no receiver's answer. Nothing here connects anywhere
//! but loopback: addresses are judged as written, and `localhost` resolves from the hosts
//! file.

mod support;
use support::{Gateway, start};

use borderwatch_bus::{Outgoing, names};
use borderwatch_gateway::GatewayConfig;
use serde_json::{Value, json};

fn config() -> GatewayConfig {
    GatewayConfig {
        rate_limit: None,
        ..GatewayConfig::default()
    }
}

impl Gateway {
    async fn subscribe(&self, url: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/subscriptions", self.base))
            .json(&json!({"webhook": {"url": url, "secret": "s"}}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn subscriptions_to_non_public_addresses_are_refused() {
    let gw = start(config()).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://0x7f000001/hook",
        "http://2130706433/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://localhost:9/hook",
        "http://LOCALHOST./hook",
        "http://10.0.0.1/hook",
        "http://172.16.5.4/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://[fc00::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://255.255.255.255/hook",
        "http://224.0.0.1/hook",
        "http://[ff02::1]/hook",
        "http://192.0.2.1/hook",
        "http://[2001:db8::1]/hook",
    ] {
        let (status, body) = gw.subscribe(url, None).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"]["code"], "webhook_target_refused", "{url}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("only public addresses are accepted")
                && message.contains("--webhook-allow-private"),
            "{url}: {message}"
        );
    }
    let (_, subs) = gw.get("/v1/subscriptions", None).await;
    assert_eq!(subs["subscriptions"], json!([]), "nothing was stored");
    let (_, body) = gw.subscribe("http://localhost:9/hook", None).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{body}"
    );
}

#[tokio::test]
async fn private_targets_are_accepted_when_allowed() {
    let gw = start(GatewayConfig {
        webhook_allow_private: true,
        ..config()
    })
    .await;
    for url in ["http://127.0.0.1:9/hook", "http://localhost:9/hook"] {
        let (status, body) = gw.subscribe(url, None).await;
        assert_eq!(status, 201, "{url}: {body}");
    }
}

/// URLs are shown as scheme, host and port only (their userinfo, path and query are often
/// the secret), and with an API token, subscriptions and their delivery logs are read with it
/// only: neither anonymously nor with the read token.
#[tokio::test]
async fn subscription_reads_mask_urls_and_need_the_api_token() {
    let gw = start(GatewayConfig {
        api_token: Some("write-token".into()),
        read_token: Some("read-token".into()),
        webhook_allow_private: true,
        ..config()
    })
    .await;
    let secret_url = "https://user:pass@127.0.0.1:9/services/T0/B0/XXXX?token=abc";
    let (status, created) = gw.subscribe(secret_url, Some("write-token")).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["webhook"]["url"], "https://127.0.0.1:9/…");
    let id = created["id"].as_str().unwrap().to_string();
    let deliveries = format!("/v1/subscriptions/{id}/deliveries");
    for path in ["/v1/subscriptions", deliveries.as_str()] {
        for token in [None, Some("read-token"), Some("wrong")] {
            let (status, body) = gw.get(path, token).await;
            assert_eq!(status, 401, "{path} with {token:?}: {body}");
        }
        let (status, body) = gw.get(path, Some("write-token")).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The read token still reads everything else.
    assert_eq!(gw.get("/v1/surges", Some("read-token")).await.0, 200);
    let (_, subs) = gw.get("/v1/subscriptions", Some("write-token")).await;
    assert_eq!(
        subs["subscriptions"][0]["webhook"]["url"],
        "https://127.0.0.1:9/…"
    );
    let shown = subs.to_string();
    for secret in ["pass", "XXXX", "token=abc", "services"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
}

/// Without tokens, reads stay open, but URLs are masked all the same.
#[tokio::test]
async fn open_reads_show_masked_urls() {
    let gw = start(GatewayConfig {
        webhook_allow_private: true,
        ..config()
    })
    .await;
    let (status, _) = gw
        .subscribe("http://127.0.0.1:9/hooks/slack-like-secret", None)
        .await;
    assert_eq!(status, 201);
    let (status, subs) = gw.get("/v1/subscriptions", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        subs["subscriptions"][0]["webhook"]["url"],
        "http://127.0.0.1:9/…"
    );
}

/// Attempts logged before answer bodies were dropped (`HTTP 500: <answer>`) are shown with
/// their status only.
#[tokio::test]
async fn the_delivery_log_shows_no_answer_text_from_old_attempts() {
    let gw = start(GatewayConfig {
        webhook_allow_private: true,
        ..config()
    })
    .await;
    let (_, created) = gw.subscribe("http://127.0.0.1:9/hook", None).await;
    let id = created["id"].as_str().unwrap().to_string();
    for (n, error) in [
        (1, "HTTP 500: <html>admin password is hunter2</html>"),
        (2, "HTTP 302 Found: redirects are not followed"),
    ] {
        let attempt = json!({
            "subscription": id, "event_id": "sg-1", "attempt": n, "at": "2026-01-01T00:00:00Z",
            "outcome": "retrying", "status": 500, "latency_ms": 1, "error": error,
        });
        gw.bus
            .publish(Outgoing::new(
                names::attempt_subject(&id),
                serde_json::to_vec(&attempt).unwrap(),
            ))
            .await
            .unwrap();
    }
    let (status, log) = gw
        .get(&format!("/v1/subscriptions/{id}/deliveries"), None)
        .await;
    assert_eq!(status, 200, "{log}");
    let errors: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        ["HTTP 302 Found: redirects are not followed", "HTTP 500"]
    );
}
