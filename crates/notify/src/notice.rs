//! What one webhook POST carries: a single surge, or a digest of one release's surges for
//! one subscription. Dead letters keep the notice, so a replay renders it again.

use borderwatch_model::{MissingEvent, RevisionEvent, StoryRef, SurgeEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// All matching surges of one release, for one subscription (the `json` digest body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// `dg-<hash of subscription + release>`: the `X-Borderwatch-Event-Id`.
    pub id: String,
    pub release_id: String,
    pub surges: Vec<SurgeEvent>,
    pub count: usize,
    /// True for the summary of the historical surges a release brought (a first load, a
    /// backfill): `surges` then holds the highest-scoring [`HISTORY_TOP`], `count` all of
    /// them, in `series` series.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub history: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<usize>,
    /// Set for the one message of a story: surges of the release that share a cause
    /// (`surges` are those of its members this subscription matches, each with its evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<StoryRef>,
    /// Set when the subscription asked for at most this many surges per release: `surges`
    /// holds the highest-scoring ones, `count` how many the release had for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// How many surges a history summary lists.
pub const HISTORY_TOP: usize = 10;

impl Digest {
    pub fn new(id: String, release_id: String, mut surges: Vec<SurgeEvent>) -> Digest {
        surges.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.series().cmp(&b.series()))
                .then_with(|| a.period.cmp(&b.period))
        });
        Digest {
            id,
            release_id,
            count: surges.len(),
            surges,
            history: false,
            series: None,
            story: None,
            limit: None,
        }
    }

    /// A release's surges for a subscription that asked for at most `limit`: the highest
    /// scores first, `count` all of them.
    pub fn top(id: String, release_id: String, surges: Vec<SurgeEvent>, limit: u32) -> Digest {
        let mut d = Digest::new(id, release_id, surges);
        d.surges.sort_by(|a, b| b.score.total_cmp(&a.score));
        d.surges.truncate(limit as usize);
        d.limit = Some(limit);
        d
    }

    /// The one message of a story: its matching members, highest score first.
    pub fn story(
        id: String,
        release_id: String,
        surges: Vec<SurgeEvent>,
        story: StoryRef,
    ) -> Digest {
        let mut d = Digest::new(id, release_id, surges);
        d.surges.sort_by(|a, b| b.score.total_cmp(&a.score));
        d.story = Some(story);
        d
    }

    /// The summary of a release's historical surges: how many, in how many series, and the
    /// highest-scoring few.
    pub fn history(id: String, release_id: String, mut surges: Vec<SurgeEvent>) -> Digest {
        let count = surges.len();
        let mut series: Vec<_> = surges.iter().map(SurgeEvent::series).collect();
        series.sort();
        series.dedup();
        surges.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.series().cmp(&b.series()))
                .then_with(|| a.period.cmp(&b.period))
        });
        surges.truncate(HISTORY_TOP);
        Digest {
            id,
            release_id,
            count,
            surges,
            history: true,
            series: Some(series.len()),
            story: None,
            limit: None,
        }
    }
}

/// The stable id of the digest of `release` for `subscription`.
pub fn digest_id(subscription: &str, release: &str) -> String {
    let mut h = Sha256::new();
    h.update(subscription.as_bytes());
    h.update([0u8]);
    h.update(release.as_bytes());
    format!("dg-{}", &hex::encode(h.finalize())[..20])
}

/// The stable id of the summary of `release`'s historical surges for `subscription`.
pub fn history_id(subscription: &str, release: &str) -> String {
    let mut h = Sha256::new();
    h.update(subscription.as_bytes());
    h.update([0u8]);
    h.update(release.as_bytes());
    h.update([0u8]);
    h.update(b"history");
    format!("hs-{}", &hex::encode(h.finalize())[..20])
}

/// The stable id of the message telling `story` to `subscription`.
pub fn story_digest_id(subscription: &str, story: &str) -> String {
    let mut h = Sha256::new();
    h.update(subscription.as_bytes());
    h.update([0u8]);
    h.update(story.as_bytes());
    format!("sy-{}", &hex::encode(h.finalize())[..20])
}

/// The stable id of the message of `release`'s highest-scoring surges for `subscription`.
pub fn top_id(subscription: &str, release: &str) -> String {
    let mut h = Sha256::new();
    h.update(subscription.as_bytes());
    h.update([0u8]);
    h.update(release.as_bytes());
    h.update([0u8]);
    h.update(b"top");
    format!("tp-{}", &hex::encode(h.finalize())[..20])
}

/// A notice for one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "event", rename_all = "lowercase")]
pub enum Notice {
    Surge(SurgeEvent),
    Digest(Digest),
    /// A revised figure (subscriptions with `revision` among their kinds).
    Revision(RevisionEvent),
    /// A category a source left out (`missing`), with the countries the subscription selects.
    Missing(MissingEvent),
}

impl Notice {
    /// The id receivers see in `X-Borderwatch-Event-Id` and the delivery record's key.
    pub fn id(&self) -> &str {
        match self {
            Notice::Surge(e) => &e.id,
            Notice::Digest(d) => &d.id,
            Notice::Revision(r) => &r.id,
            Notice::Missing(m) => &m.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ids_are_stable_per_subscription_and_release() {
        let a = digest_id("sub-1", "rel-1");
        assert_eq!(a, digest_id("sub-1", "rel-1"));
        assert!(a.starts_with("dg-") && a.len() == 23);
        assert_ne!(a, digest_id("sub-1", "rel-2"));
        assert_ne!(a, digest_id("sub-2", "rel-1"));
    }
}
