//! What happened to each (subscription, notice): the record in `bw_deliveries` that keeps a
//! notice from being delivered twice, and the attempt log on `BW_ATTEMPTS` that
//! `GET /v1/subscriptions/{id}/deliveries` serves.

use borderwatch_bus::{Bus, BusError, Outgoing, names};
use borderwatch_model::now_rfc3339;
use serde::{Deserialize, Serialize};
use tracing::warn;

/// How a notice (or one attempt at it) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Delivered,
    /// The attempt failed and another follows (attempt log only).
    Retrying,
    /// Given up: the notice is in the dead-letter stream.
    Failed,
    /// A silence muted it: recorded, not delivered.
    Silenced,
}

/// What `bw_deliveries` records per (subscription, notice).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub subscription: String,
    pub event: String,
    pub outcome: Outcome,
    pub attempts: u32,
    pub status: Option<u16>,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The silence that muted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<String>,
    /// The digest a surge went out in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl DeliveryRecord {
    pub fn new(subscription: &str, event: &str, outcome: Outcome) -> DeliveryRecord {
        DeliveryRecord {
            subscription: subscription.into(),
            event: event.into(),
            outcome,
            attempts: 0,
            status: None,
            at: now_rfc3339(),
            error: None,
            silence: None,
            digest: None,
        }
    }
}

pub fn record_key(subscription: &str, event: &str) -> String {
    format!("{subscription}.{event}")
}

pub async fn read_record(
    bus: &Bus,
    subscription: &str,
    event: &str,
) -> Result<Option<DeliveryRecord>, BusError> {
    let raw = bus
        .kv_get(names::DELIVERIES_BUCKET, &record_key(subscription, event))
        .await?;
    Ok(raw.and_then(|r| serde_json::from_slice(&r).ok()))
}

pub async fn write_record(bus: &Bus, rec: &DeliveryRecord) -> Result<(), BusError> {
    bus.kv_put(
        names::DELIVERIES_BUCKET,
        &record_key(&rec.subscription, &rec.event),
        serde_json::to_vec(rec).unwrap_or_default().into(),
    )
    .await
}

/// One webhook attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub subscription: String,
    pub event_id: String,
    /// 1 for the first attempt; 0 for a silenced notice (nothing was sent).
    pub attempt: u32,
    pub at: String,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
}

/// Appends `a` to the delivery log. The log is history, not state: a failure to write it is
/// logged and does not hold the delivery back.
pub async fn log_attempt(bus: &Bus, a: &DeliveryAttempt) {
    let msg = Outgoing::new(
        names::attempt_subject(&a.subscription),
        serde_json::to_vec(a).unwrap_or_default(),
    );
    if let Err(e) = bus.publish(msg).await {
        warn!(error = %e, subscription = %a.subscription, event = %a.event_id, "could not log a delivery attempt");
    }
}
