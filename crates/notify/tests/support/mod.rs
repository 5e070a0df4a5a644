//! What the notify tests share: a webhook receiver that records every POST with its exact
//! bytes and answers as told, and the notify service with a gateway on one bus.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use borderwatch_bus::test_server::NatsServer;
use borderwatch_bus::{Bus, MemoryBus, NatsBus, Outgoing, names};
use borderwatch_model::{Country, Finding, Period, Severity, SurgeEvent};
use borderwatch_notify::NotifyConfig;
use borderwatch_notify::backoff::Backoff;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "s3cret-for-notify-tests";

/// One POST the receiver took.
#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub signature: String,
    pub body: Bytes,
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    /// Statuses to answer with, in order; 200 once they run out.
    script: VecDeque<u16>,
    /// Answer 500 to everything while set.
    down: bool,
    /// Hold every POST this long before answering.
    delay: Duration,
    seen: usize,
}

/// A webhook receiver on a random loopback port.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

async fn take(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let delay = inner.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut inner = inner.lock().unwrap();
    inner.seen += 1;
    if inner.down {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let status = inner.script.pop_front().unwrap_or(200);
    if status != 200 {
        return StatusCode::from_u16(status).unwrap();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    inner.received.push(Received {
        event_id: header("x-borderwatch-event-id"),
        signature: header("x-borderwatch-signature"),
        body,
    });
    StatusCode::OK
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            script: script.iter().copied().collect(),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/hook", post(take))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    pub fn set_down(&self, down: bool) {
        self.inner.lock().unwrap().down = down;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn seen(&self) -> usize {
        self.inner.lock().unwrap().seen
    }

    pub async fn wait_for(&self, n: usize, what: &str) -> Vec<Received> {
        eventually(Duration::from_secs(20), what, || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

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
            "webhook": {"url": receiver.url(), "secret": SECRET},
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
