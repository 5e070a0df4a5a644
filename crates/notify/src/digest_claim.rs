//! A digest sender's claim in `bw_digests` (`<digest id>.c.<generation>`): the key, what it
//! holds, and the hold its owner refreshes while it retries. Apart from `digest` so that
//! `send` can keep a claim alive without importing the digest sender.

use std::time::{SystemTime, UNIX_EPOCH};

use borderwatch_bus::{Bus, names};
use serde::{Deserialize, Serialize};
use tracing::warn;

/// What a claim key holds: its owner and when the owner last refreshed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClaimValue {
    pub(crate) owner: String,
    pub(crate) at_ms: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn claim_key(digest: &str, generation: u32) -> String {
    format!("{digest}.c.{generation}")
}

/// A sender's hold on one digest.
#[derive(Debug)]
pub(crate) struct Claim {
    pub(crate) bus: Bus,
    pub(crate) digest: String,
    pub(crate) generation: u32,
    pub(crate) owner: String,
}

impl Claim {
    /// Refreshes the claim; false when a newer generation took the digest over.
    pub(crate) async fn refresh(&self) -> bool {
        match self
            .bus
            .kv_get(
                names::DIGESTS_BUCKET,
                &claim_key(&self.digest, self.generation + 1),
            )
            .await
        {
            Ok(Some(_)) => return false,
            Ok(None) => {}
            Err(e) => warn!(error = %e, digest = %self.digest, "cannot check a digest claim"),
        }
        let value = ClaimValue {
            owner: self.owner.clone(),
            at_ms: now_ms(),
        };
        if let Err(e) = self
            .bus
            .kv_put(
                names::DIGESTS_BUCKET,
                &claim_key(&self.digest, self.generation),
                serde_json::to_vec(&value).unwrap_or_default().into(),
            )
            .await
        {
            warn!(error = %e, digest = %self.digest, "cannot refresh a digest claim");
        }
        true
    }
}
