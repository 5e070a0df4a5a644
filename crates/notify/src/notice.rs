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

/// How many revisions a batch's `json` body lists, at most (largest absolute change first);
/// `count` says how many the release had for the subscription. At ~350 bytes a revision the
/// body stays well under a megabyte, which receivers and the dead-letter stream take.
pub const REVISIONS_LISTED: usize = 1000;

/// How many of the largest changes (by absolute and by relative change) the text of a
/// batch names.
pub const REVISIONS_NAMED: usize = 5;

/// The revisions of one release a subscription selects, in one message: agencies revise a
/// whole year at a time, and thousands of POSTs for one release would be noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionBatch {
    /// `rb-<hash of subscription + release>` (a follow-up for revisions that came after it
    /// went out: `…-2`, …): the `X-Borderwatch-Event-Id`.
    pub id: String,
    pub release_id: String,
    /// How many revisions of the release this subscription selects (all of them, also
    /// those past [`REVISIONS_LISTED`]).
    pub count: usize,
    /// The revisions, largest absolute change first, at most [`REVISIONS_LISTED`].
    pub revisions: Vec<RevisionEvent>,
}

/// A revision's change, new minus old.
pub fn change(e: &RevisionEvent) -> i128 {
    e.revision.new_count as i128 - e.revision.old_count as i128
}

/// A revision's change relative to the old figure (a revision from 0 counts as from 1).
pub fn relative_change(e: &RevisionEvent) -> f64 {
    change(e).unsigned_abs() as f64 / (e.revision.old_count.max(1) as f64)
}

impl RevisionBatch {
    /// The batch of `revisions` (one release's, for one subscription): sorted by absolute
    /// change, then series and period, so equal inputs give equal bodies; capped at
    /// [`REVISIONS_LISTED`].
    pub fn new(id: String, release_id: String, mut revisions: Vec<RevisionEvent>) -> Self {
        revisions.sort_by(|a, b| {
            change(b)
                .unsigned_abs()
                .cmp(&change(a).unsigned_abs())
                .then_with(|| a.id.cmp(&b.id))
        });
        revisions.dedup_by(|a, b| a.id == b.id);
        let count = revisions.len();
        revisions.truncate(REVISIONS_LISTED);
        RevisionBatch {
            id,
            release_id,
            count,
            revisions,
        }
    }

    /// The [`REVISIONS_NAMED`] largest absolute changes listed.
    pub fn largest(&self) -> &[RevisionEvent] {
        &self.revisions[..self.revisions.len().min(REVISIONS_NAMED)]
    }

    /// The [`REVISIONS_NAMED`] largest relative changes listed, that are not among
    /// [`Self::largest`] already.
    pub fn largest_relative(&self) -> Vec<&RevisionEvent> {
        let named: Vec<&str> = self.largest().iter().map(|e| e.id.as_str()).collect();
        let mut rest: Vec<&RevisionEvent> = self
            .revisions
            .iter()
            .filter(|e| !named.contains(&e.id.as_str()))
            .collect();
        rest.sort_by(|a, b| {
            relative_change(b)
                .total_cmp(&relative_change(a))
                .then_with(|| a.id.cmp(&b.id))
        });
        rest.truncate(REVISIONS_NAMED);
        rest
    }

    /// "500 revised figures in release rel-2".
    pub fn title(&self) -> String {
        let noun = if self.count == 1 { "figure" } else { "figures" };
        format!(
            "{} revised {noun} in release {}",
            self.count, self.release_id
        )
    }
}

/// The stable id of the batch of `release`'s revisions for `subscription`.
pub fn revisions_id(subscription: &str, release: &str) -> String {
    let mut h = Sha256::new();
    h.update(subscription.as_bytes());
    h.update([0u8]);
    h.update(release.as_bytes());
    h.update([0u8]);
    h.update(b"revisions");
    format!("rb-{}", &hex::encode(h.finalize())[..20])
}

/// A notice for one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "event", rename_all = "lowercase")]
pub enum Notice {
    Surge(SurgeEvent),
    Digest(Digest),
    /// A revised figure on its own: what notify sent before revisions were batched, kept
    /// so that dead letters of that time replay.
    Revision(RevisionEvent),
    /// The revisions of one release a subscription selects (`revision` among its kinds).
    Revisions(RevisionBatch),
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
            Notice::Revisions(b) => &b.id,
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

    #[test]
    fn a_revision_batch_lists_at_most_its_cap_and_counts_all() {
        let all: Vec<RevisionEvent> = (0..(REVISIONS_LISTED as u64 + 200))
            .map(|i| {
                RevisionEvent::new(borderwatch_model::Revision {
                    source: "fsb".into(),
                    country: borderwatch_model::Country::parse("PRK").unwrap(),
                    category: format!("c{i}"),
                    period: borderwatch_model::Period::Quarter(2024, 2),
                    old_count: 100,
                    new_count: 100 + i,
                    old_release_id: "rel-0".into(),
                    release_id: "rel-1".into(),
                })
            })
            .collect();
        let mut twice = all.clone();
        twice.extend(all.iter().take(10).cloned());
        let b = RevisionBatch::new(revisions_id("sub-1", "rel-1"), "rel-1".into(), twice);
        assert_eq!(
            b.count,
            REVISIONS_LISTED + 200,
            "a repeated revision counts once"
        );
        assert_eq!(b.revisions.len(), REVISIONS_LISTED);
        assert_eq!(
            b.revisions[0].revision.category,
            format!("c{}", REVISIONS_LISTED + 199)
        );
        assert!(b.id.starts_with("rb-"));
        assert_ne!(b.id, digest_id("sub-1", "rel-1"));
    }
}
