//! Feeding notify directly: valid surge events published to `BW_SURGES` as analytics
//! would (subject per country and category, `Nats-Msg-Id` = event id), and subscriptions
//! stored in `bw_subscriptions` as the gateway would.

use borderwatch_bus::{Outgoing, Transport, names};
use borderwatch_model::{Period, Subscription, SurgeEvent, now_rfc3339};
use serde_json::json;

/// A valid surge event with id `id` for one quarter of PRK/study. Built from JSON (the wire
/// form of docs/design.md, "Interfaces") so that fields added later take their defaults.
pub fn surge_event(id: &str, n: usize) -> SurgeEvent {
    let period = Period::Quarter(2000, 1).offset(n as i64);
    serde_json::from_value(json!({
        "id": id,
        "source": "testsrc",
        "country": "PRK",
        "category": "study",
        "period": period.to_string(),
        "value": 1000 + n,
        "severity": "high",
        "explanation": format!("test surge {n} in {period}"),
        "findings": [{
            "detector": "test", "expected": 100.0, "upper_bound": 200.0, "p_value": 0.001,
            "message": "well above the baseline"
        }],
        "release_id": "test-release",
        "detected_at": now_rfc3339(),
    }))
    .expect("a valid surge event")
}

/// `count` events with distinct ids `<prefix>-00000`, `<prefix>-00001`, …
pub fn surge_events(prefix: &str, count: usize) -> Vec<SurgeEvent> {
    (0..count)
        .map(|n| surge_event(&format!("{prefix}-{n:05}"), n))
        .collect()
}

/// Publishes `events` to `BW_SURGES` as analytics does, pipelined, and checks each was
/// stored as new.
pub async fn publish_surges(bus: &dyn Transport, events: &[SurgeEvent]) {
    let msgs = events
        .iter()
        .map(|e| {
            Outgoing::new(
                names::surge_subject(e.country.code(), &e.category),
                serde_json::to_vec(e).expect("event serialises"),
            )
            .with_id(e.id.clone())
        })
        .collect();
    let acks = bus.publish_all(msgs).await.expect("surges published");
    assert!(
        acks.iter().all(|a| !a.duplicate),
        "every test event is new to the stream"
    );
}

/// Stores a subscription that matches every event, delivered to `url` signed with
/// `secret`, in the JSON form the gateway stores.
pub async fn put_subscription(bus: &dyn Transport, id: &str, url: &str, secret: &str) {
    let raw = json!({
        "id": id,
        "filter": {"countries": [], "categories": [], "sources": [], "min_severity": "low"},
        "webhook": {"url": url, "secret": secret},
        "created_at": now_rfc3339(),
    });
    let sub: Subscription = serde_json::from_value(raw).expect("a valid subscription");
    bus.kv_put(
        names::SUBSCRIPTIONS_BUCKET,
        id,
        serde_json::to_vec(&sub)
            .expect("subscription serialises")
            .into(),
    )
    .await
    .expect("subscription stored");
}
