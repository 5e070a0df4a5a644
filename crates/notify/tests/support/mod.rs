//! What the notify tests share: a webhook receiver that records every POST with its exact
//! bytes and answers as told, and the notify service with a gateway on one bus.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, MemoryBus, NatsBus, Outgoing, names};
use borderwatch_model::{Country, Finding, Period, Severity, SurgeEvent};
use borderwatch_notify::NotifyConfig;
use borderwatch_notify::backoff::Backoff;
use borderwatch_test_support::NatsServer;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "s3cret-for-notify-tests";

/// The webhook receiver every test shares, started with a script of statuses
/// (`Receiver::start(&[500, 503])`); subscriptions point at its `/hook`.
pub use borderwatch_test_support::ScriptedReceiver as Receiver;

/// Polls `f` until it gives a value, or panics after `timeout`.
pub async fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The transport a test runs on; the server lives as long as this does.
pub struct Transport {
    pub bus: Bus,
    _nats: Option<NatsServer>,
}

impl Transport {
    pub async fn memory() -> Transport {
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        Transport { bus, _nats: None }
    }

    pub async fn nats() -> Transport {
        let server = NatsServer::start();
        let bus: Bus = Arc::new(
            NatsBus::connect(&server.url(), "notify-tests")
                .await
                .unwrap(),
        );
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        Transport {
            bus,
            _nats: Some(server),
        }
    }
}

/// Short waits, so tests finish in seconds.
pub fn fast_config() -> NotifyConfig {
    NotifyConfig {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            max_age: Duration::from_secs(60),
            max_attempts: 50,
        },
        request_timeout: Duration::from_secs(5),
        digest_tick: Duration::from_millis(100),
        digest_claim_lease: Duration::from_secs(5),
        ..NotifyConfig::default()
    }
}

/// Notify and a gateway on one bus.
pub struct Services {
    pub bus: Bus,
    pub base: String,
    pub http: reqwest::Client,
    cancel: CancellationToken,
    notify: tokio::task::JoinHandle<()>,
}

impl Services {
    pub async fn start(bus: Bus, cfg: NotifyConfig) -> Services {
        let cancel = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (b, c) = (bus.clone(), cancel.clone());
        tokio::spawn(async move {
            borderwatch_gateway::serve(b, listener, Default::default(), c)
                .await
                .unwrap()
        });
        let (b, c) = (bus.clone(), cancel.clone());
        let notify = tokio::spawn(async move { borderwatch_notify::run(b, cfg, c).await.unwrap() });
        Services {
            bus,
            base,
            http: reqwest::Client::new(),
            cancel,
            notify,
        }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.notify.await;
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates a subscription for `receiver` with `extra` fields merged in; returns its id.
    pub async fn subscribe(&self, receiver: &Receiver, extra: Value) -> String {
        let mut body = serde_json::json!({
            "filter": {"countries": ["PRK"]},
            "webhook": {"url": receiver.url("hook"), "secret": SECRET},
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let (status, sub) = self.post("/v1/subscriptions", body).await;
        assert_eq!(status, 201, "subscription created: {sub}");
        assert!(
            sub["webhook"].get("secret").is_none(),
            "the secret is never returned"
        );
        sub["id"].as_str().unwrap().to_string()
    }

    /// The delivery log of a subscription, newest first.
    pub async fn deliveries(&self, sub: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/v1/subscriptions/{sub}/deliveries"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["deliveries"].as_array().unwrap().clone()
    }

    pub async fn publish(&self, e: &SurgeEvent) {
        publish(&self.bus, e).await
    }
}

pub async fn publish(bus: &Bus, e: &SurgeEvent) {
    let msg = Outgoing::new(
        names::surge_subject(e.country.code(), &e.category),
        serde_json::to_vec(e).unwrap(),
    )
    .with_id(e.id.clone());
    bus.publish(msg).await.unwrap();
}

/// A surge of `country`/`category` in `period` from release `release`.
pub fn surge(id: &str, country: &str, category: &str, period: Period, release: &str) -> SurgeEvent {
    SurgeEvent {
        id: id.into(),
        source: "fsb".into(),
        country: Country::parse(country).unwrap(),
        category: category.into(),
        period,
        value: 3765,
        severity: Severity::High,
        explanation: format!("{id}: 3,765 entries for {category} in {period}"),
        findings: vec![Finding {
            detector: "record_high".into(),
            expected: None,
            upper_bound: None,
            p_value: None,
            message: String::new(),
            baseline: None,
        }],
        release_id: release.into(),
        detected_at: "2024-11-01T00:00:00Z".into(),
    }
}
