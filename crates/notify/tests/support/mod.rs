//! What the notify tests share: a webhook receiver that records every POST with its exact
//! bytes and answers as told, and the notify service on a bus whose subscriptions, silences
//! and delivery log the tests write and read directly, as the gateway does.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, MemoryBus, NatsBus, Outgoing, names};
use borderwatch_model::{
    Country, Finding, Period, Severity, Silence, Subscription, SurgeEvent, now_rfc3339,
};
use borderwatch_notify::NotifyConfig;
use borderwatch_notify::backoff::Backoff;
use borderwatch_test_support::NatsServer;
use futures::StreamExt;
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

/// Short waits, so tests finish in seconds; private webhook targets allowed (the receiver
/// is on loopback).
pub fn fast_config() -> NotifyConfig {
    NotifyConfig {
        allow_private_targets: true,
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            max_age: Duration::from_secs(60),
            max_attempts: 50,
        },
        request_timeout: Duration::from_secs(5),
        digest_tick: Duration::from_millis(100),
        digest_claim_lease: Duration::from_secs(5),
        history_wait: Duration::from_millis(500),
        ..NotifyConfig::default()
    }
}

/// Notify on a bus.
pub struct Services {
    pub bus: Bus,
    cancel: CancellationToken,
    notify: tokio::task::JoinHandle<()>,
}

/// A fresh id with `prefix`, as the gateway makes them (`sub-…`, `sil-…`).
fn new_id(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}

impl Services {
    pub async fn start(bus: Bus, cfg: NotifyConfig) -> Services {
        let cancel = CancellationToken::new();
        let (b, c) = (bus.clone(), cancel.clone());
        let notify = tokio::spawn(async move { borderwatch_notify::run(b, cfg, c).await.unwrap() });
        Services {
            bus,
            cancel,
            notify,
        }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.notify.await;
    }

    /// Stores a subscription for `receiver` with `extra` fields merged in, in
    /// `bw_subscriptions` as the gateway does; returns its id.
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
        body["id"] = new_id("sub").into();
        body["created_at"] = now_rfc3339().into();
        let sub: Subscription = serde_json::from_value(body).unwrap();
        self.bus
            .kv_put(
                names::SUBSCRIPTIONS_BUCKET,
                &sub.id,
                serde_json::to_vec(&sub).unwrap().into(),
            )
            .await
            .unwrap();
        sub.id
    }

    /// Stores a silence (`matchers`, `until`, `comment`) in `bw_silences` as the gateway
    /// does; returns its id.
    pub async fn silence(&self, mut body: Value) -> String {
        body["id"] = new_id("sil").into();
        body["created_at"] = now_rfc3339().into();
        let silence: Silence = serde_json::from_value(body).unwrap();
        self.bus
            .kv_put(
                names::SILENCES_BUCKET,
                &silence.id,
                serde_json::to_vec(&silence).unwrap().into(),
            )
            .await
            .unwrap();
        silence.id
    }

    /// The delivery log of a subscription (`BW_ATTEMPTS`), newest first: what
    /// `GET /v1/subscriptions/{id}/deliveries` serves.
    pub async fn deliveries(&self, sub: &str) -> Vec<Value> {
        let subject = names::attempt_subject(sub);
        let last = self
            .bus
            .last_per_subject(names::ATTEMPT_STREAM, &[&subject])
            .await
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .max();
        let mut out = Vec::new();
        let Some(last) = last else {
            return out;
        };
        let mut replay = self
            .bus
            .replay(names::ATTEMPT_STREAM, &subject, 1)
            .await
            .unwrap();
        while let Some(msg) = replay.next().await {
            let msg = msg.unwrap();
            out.push(serde_json::from_slice(&msg.payload).unwrap());
            if msg.seq >= last {
                break;
            }
        }
        out.reverse();
        out
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
        score: 0.0,
        direction: Default::default(),
        historical: false,
        incident_id: None,
        incident_update: Default::default(),
        story: None,
        url: None,
    }
}
