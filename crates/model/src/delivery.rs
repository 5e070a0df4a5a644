//! What notify records of its deliveries, as the bus carries it and the gateway serves it:
//! the outcome of a notice, its record in `bw_deliveries` and each attempt in the delivery
//! log (`BW_ATTEMPTS`). Notify writes them; the gateway reads and documents them.

use serde::{Deserialize, Serialize};

use crate::now_rfc3339;

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
