//! Event kinds beyond surges: a revised figure and a missing category, as subscriptions and
//! the live stream carry them. Ingest publishes the bare [`Revision`] and
//! [`MissingCategory`]; these wrap them with a stable id, their kind and a sentence, and say
//! which of them a subscription wants (its filter's countries, categories and sources and
//! its matchers; severity and detectors are about surges and do not apply).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::matcher::{Labels, MatcherName};
use crate::{Country, MissingCategory, Revision, Subscription, SurgeEvent, thousands};

/// What an event is. A subscription lists the kinds it wants (`["surge"]` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A surge (or, with `falls`, a fall): `bw.surge.…`.
    Surge,
    /// A figure of a known period that a later release changed: `bw.revision.…`.
    Revision,
    /// A category a source stopped publishing: `bw.missing.…`.
    Missing,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Surge => "surge",
            EventKind::Revision => "revision",
            EventKind::Missing => "missing",
        }
    }
}

/// What subscriptions stored before kinds existed want: surges only.
pub fn default_kinds() -> Vec<EventKind> {
    vec![EventKind::Surge]
}

fn hashed_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("{prefix}-{}", &hex::encode(h.finalize())[..20])
}

/// A revision as a subscriber and the live stream get it: `"kind": "revision"`, a stable id
/// (`rv-…`: the same revision announced twice has one id), the figures and a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionEvent {
    pub kind: EventKind,
    pub id: String,
    #[serde(flatten)]
    pub revision: Revision,
    /// "fsb revised fsb/PRK/study 2024-Q2 from 950 to 1,020 (+70) in release rel-…".
    pub explanation: String,
}

impl RevisionEvent {
    pub fn new(revision: Revision) -> RevisionEvent {
        let r = &revision;
        let id = hashed_id(
            "rv",
            &[
                &r.source,
                r.country.code(),
                &r.category,
                &r.period.to_string(),
                &r.release_id,
            ],
        );
        let change = r.new_count as i128 - r.old_count as i128;
        let explanation = format!(
            "{} revised {}/{}/{} {} from {} to {} ({}{}) in release {}",
            r.source,
            r.source,
            r.country.code(),
            r.category,
            r.period,
            thousands(r.old_count),
            thousands(r.new_count),
            if change >= 0 { "+" } else { "-" },
            thousands(change.unsigned_abs() as u64),
            r.release_id
        );
        RevisionEvent {
            kind: EventKind::Revision,
            id,
            revision,
            explanation,
        }
    }
}

/// A missing category as a subscriber and the live stream get it: `"kind": "missing"`, a
/// stable id (`ms-…`), the category and its countries (for a subscriber, only those its
/// filter and matchers select), and a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingEvent {
    pub kind: EventKind,
    pub id: String,
    #[serde(flatten)]
    pub missing: MissingCategory,
    /// "fsb left out category study for PRK, CHN in release rel-… (2024-Q4 to 2025-Q1); last
    /// published for 2024-Q3".
    pub explanation: String,
}

impl MissingEvent {
    pub fn new(missing: MissingCategory) -> MissingEvent {
        let m = &missing;
        let id = hashed_id(
            "ms",
            &[
                &m.source,
                &m.category,
                &m.last_period.to_string(),
                &m.release_id,
            ],
        );
        let mut e = MissingEvent {
            kind: EventKind::Missing,
            id,
            missing,
            explanation: String::new(),
        };
        e.explain();
        e
    }

    fn explain(&mut self) {
        let m = &self.missing;
        let countries: Vec<&str> = m.countries.iter().map(Country::code).collect();
        self.explanation = format!(
            "{} left out category {} for {} in release {} ({} to {}); last published for {}",
            m.source,
            m.category,
            countries.join(", "),
            m.release_id,
            m.release_first_period,
            m.release_last_period,
            m.last_period
        );
    }

    /// The same event with only the countries `keep` selects; `None` when it selects none.
    pub fn narrowed(&self, keep: impl Fn(&MissingEvent) -> bool) -> Option<MissingEvent> {
        let mut out = self.clone();
        out.missing.countries = self
            .missing
            .countries
            .iter()
            .copied()
            .filter(|c| {
                let mut one = self.clone();
                one.missing.countries = vec![*c];
                keep(&one)
            })
            .collect();
        if out.missing.countries.is_empty() {
            return None;
        }
        out.explain();
        Some(out)
    }
}

impl Labels for RevisionEvent {
    fn label(&self, name: MatcherName) -> Vec<Cow<'_, str>> {
        let r = &self.revision;
        match name {
            MatcherName::Source => vec![r.source.as_str().into()],
            MatcherName::Country => vec![r.country.code().into()],
            MatcherName::Category => vec![r.category.as_str().into()],
            MatcherName::Severity | MatcherName::Direction | MatcherName::Detector => vec![],
        }
    }
}

impl Labels for MissingEvent {
    fn label(&self, name: MatcherName) -> Vec<Cow<'_, str>> {
        let m = &self.missing;
        match name {
            MatcherName::Source => vec![m.source.as_str().into()],
            MatcherName::Country => m.countries.iter().map(|c| c.code().into()).collect(),
            MatcherName::Category => vec![m.category.as_str().into()],
            MatcherName::Severity | MatcherName::Direction | MatcherName::Detector => vec![],
        }
    }
}

impl Subscription {
    /// Whether this subscription takes events of `kind`.
    pub fn takes(&self, kind: EventKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Whether the filter's source, country and category lists let this series through.
    fn series_passes(&self, source: &str, country: Country, category: &str) -> bool {
        let f = &self.filter;
        (f.sources.is_empty() || f.sources.iter().any(|s| s == source))
            && (f.countries.is_empty() || f.countries.contains(&country))
            && (f.categories.is_empty() || f.categories.iter().any(|c| c == category))
    }

    /// Whether this subscription is sent `e`: it takes revisions, and its filter's
    /// countries, categories and sources and its matchers select the series.
    pub fn wants_revision(&self, e: &RevisionEvent) -> bool {
        let r = &e.revision;
        self.takes(EventKind::Revision)
            && self.series_passes(&r.source, r.country, &r.category)
            && self.matchers.matches(e)
    }

    /// What this subscription is sent of `e`: the event with the countries its filter and
    /// matchers select, each country on its own (so `country!="PRK"` keeps the others);
    /// `None` when it takes no missing categories or selects no country.
    pub fn wants_missing(&self, e: &MissingEvent) -> Option<MissingEvent> {
        if !self.takes(EventKind::Missing) {
            return None;
        }
        e.narrowed(|one| {
            let m = &one.missing;
            m.countries
                .iter()
                .all(|c| self.series_passes(&m.source, *c, &m.category))
                && self.matchers.matches(one)
        })
    }

    /// Whether the kinds and matchers let surge `e` through (the filter is checked apart).
    pub(crate) fn kinds_and_matchers_pass(&self, e: &SurgeEvent) -> bool {
        self.takes(EventKind::Surge) && self.matchers.matches(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Matchers, Period};
    use serde_json::json;

    fn revision(country: &str, category: &str) -> RevisionEvent {
        RevisionEvent::new(Revision {
            source: "fsb".into(),
            country: Country::parse(country).unwrap(),
            category: category.into(),
            period: Period::Quarter(2024, 2),
            old_count: 950,
            new_count: 1020,
            old_release_id: "rel-a".into(),
            release_id: "rel-b".into(),
        })
    }

    fn missing(countries: &[&str]) -> MissingEvent {
        MissingEvent::new(MissingCategory {
            source: "fsb".into(),
            category: "study".into(),
            countries: countries
                .iter()
                .map(|c| Country::parse(c).unwrap())
                .collect(),
            last_period: Period::Quarter(2024, 3),
            release_first_period: Period::Quarter(2024, 4),
            release_last_period: Period::Quarter(2024, 4),
            release_id: "rel-b".into(),
        })
    }

    fn sub(v: serde_json::Value) -> Subscription {
        let mut base = json!({"id": "sub-1", "filter": {}, "webhook": {"url": "http://x/"}, "created_at": "t"});
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_revision_event_says_what_it_is_and_reads_back() {
        let e = revision("PRK", "study");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "revision");
        assert_eq!(v["old_count"], 950);
        assert_eq!(v["new_count"], 1020);
        assert_eq!(v["release_id"], "rel-b");
        assert_eq!(v["country"], "PRK");
        assert!(e.id.starts_with("rv-"));
        assert_eq!(
            e.explanation,
            "fsb revised fsb/PRK/study 2024-Q2 from 950 to 1,020 (+70) in release rel-b"
        );
        let back: RevisionEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.id, revision("PRK", "study").id);
        assert_ne!(e.id, revision("CHN", "study").id);
    }

    #[test]
    fn old_subscriptions_take_surges_only() {
        let s = sub(json!({}));
        assert_eq!(s.kinds, vec![EventKind::Surge]);
        assert!(s.matchers.is_empty());
        assert!(!s.wants_revision(&revision("PRK", "study")));
        assert!(s.wants_missing(&missing(&["PRK"])).is_none());
        // Written back without the empty matchers, with the kinds.
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("matchers").is_none());
        assert_eq!(v["kinds"], json!(["surge"]));
    }

    #[test]
    fn filter_and_matchers_select_revisions_and_missing_countries() {
        let s = sub(json!({
            "kinds": ["revision", "missing"],
            "filter": {"categories": ["study", "work"]},
            "matchers": ["country!=PRK", "category=~\"stud.*\""],
        }));
        assert!(s.wants_revision(&revision("CHN", "study")));
        assert!(!s.wants_revision(&revision("PRK", "study")));
        assert!(!s.wants_revision(&revision("CHN", "work")));
        let got = s.wants_missing(&missing(&["PRK", "CHN", "VNM"])).unwrap();
        let codes: Vec<&str> = got.missing.countries.iter().map(Country::code).collect();
        assert_eq!(codes, ["CHN", "VNM"]);
        assert!(got.explanation.contains("CHN, VNM"), "{}", got.explanation);
        assert!(s.wants_missing(&missing(&["PRK"])).is_none());
        // Severity is no label of a revision: `=` misses, `!=` matches.
        let sev = sub(json!({"kinds": ["revision"], "matchers": ["severity=high"]}));
        assert!(!sev.wants_revision(&revision("CHN", "study")));
        let not_sev = sub(json!({"kinds": ["revision"], "matchers": ["severity!=high"]}));
        assert!(not_sev.wants_revision(&revision("CHN", "study")));
    }

    #[test]
    fn matchers_are_written_in_the_text_form_and_name_the_bad_one() {
        let m: Matchers =
            serde_json::from_value(json!(["country=~\"PRK|CHN\"", "category!=tourism"])).unwrap();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!(["country=~\"PRK|CHN\"", "category!=\"tourism\""])
        );
        let again: Matchers = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(again, m);
        let e = Matchers::from_json(&json!(["country=PRK", "category=~\"(\""])).unwrap_err();
        assert!(e.starts_with("matchers[1]:"), "{e}");
        let many = json!(vec!["country!=PRK"; 33]);
        assert!(
            Matchers::from_json(&many)
                .unwrap_err()
                .contains("at most 32")
        );
    }
}
