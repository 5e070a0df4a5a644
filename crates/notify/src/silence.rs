//! Silences: which stored silence, if any, mutes an event now. Pure; the service reads the
//! `bw_silences` bucket and records a muted event as `silenced` instead of delivering it.
//! That record is final: a silence that expires later does not resurrect the event.

use borderwatch_model::{Silence, SilenceMatchers, SurgeEvent};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Whether every matcher matches `e` (`=`, `!=`, `=~`, `!~`; regexes anchored and compiled
/// when the silence was read). A silence with none matches nothing.
pub fn matchers_match(m: &SilenceMatchers, e: &SurgeEvent) -> bool {
    m.matches(e)
}

/// Whether `s` is still in force at `now` (an unreadable `until` never is).
pub fn is_active(s: &Silence, now: OffsetDateTime) -> bool {
    OffsetDateTime::parse(&s.until, &Rfc3339).is_ok_and(|until| until > now)
}

/// The first silence in force at `now` that mutes `e`.
pub fn silenced_by<'a>(
    silences: &'a [Silence],
    e: &SurgeEvent,
    now: OffsetDateTime,
) -> Option<&'a Silence> {
    silences
        .iter()
        .find(|s| is_active(s, now) && matchers_match(&s.matchers, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::{Country, Period, Severity};
    use serde_json::{Value, json};
    use time::macros::datetime;

    fn m(v: Value) -> SilenceMatchers {
        serde_json::from_value(v).unwrap()
    }

    fn event(country: &str, category: &str) -> SurgeEvent {
        SurgeEvent {
            id: "sg-1".into(),
            source: "fsb".into(),
            country: Country::parse(country).unwrap(),
            category: category.into(),
            period: Period::Quarter(2024, 3),
            value: 1,
            severity: Severity::High,
            explanation: String::new(),
            findings: vec![],
            release_id: "rel-1".into(),
            detected_at: String::new(),
            score: 0.0,
            direction: Default::default(),
            historical: false,
            incident_id: None,
            incident_update: Default::default(),
            story: None,
            url: None,
        }
    }

    fn silence(m: SilenceMatchers, until: &str) -> Silence {
        Silence {
            id: "sil-1".into(),
            matchers: m,
            until: until.into(),
            comment: None,
            created_at: String::new(),
        }
    }

    const NOW: OffsetDateTime = datetime!(2024-11-01 12:00 UTC);

    #[test]
    fn a_country_silence_mutes_every_category_of_that_country() {
        let s = [silence(
            m(json!({"country": "PRK"})),
            "2024-11-02T00:00:00Z",
        )];
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_some());
        assert!(silenced_by(&s, &event("PRK", "work"), NOW).is_some());
        assert!(silenced_by(&s, &event("CHN", "study"), NOW).is_none());
    }

    #[test]
    fn a_series_silence_needs_every_matcher() {
        let all = m(json!({"source": "fsb", "country": "PRK", "category": "study"}));
        let s = [silence(all, "2024-11-02T00:00:00+03:00")];
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_some());
        assert!(silenced_by(&s, &event("PRK", "work"), NOW).is_none());
        let mut other_source = event("PRK", "study");
        other_source.source = "cbp".into();
        assert!(silenced_by(&s, &other_source, NOW).is_none());
    }

    #[test]
    fn an_expired_silence_mutes_nothing() {
        let study = m(json!({"category": "study"}));
        let s = [silence(study.clone(), "2024-11-01T12:00:00Z")];
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_none());
        let bad = [silence(study, "tomorrow")];
        assert!(silenced_by(&bad, &event("PRK", "study"), NOW).is_none());
    }

    #[test]
    fn a_silence_without_matchers_mutes_nothing() {
        let s = [silence(SilenceMatchers::default(), "2030-01-01T00:00:00Z")];
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_none());
    }

    #[test]
    fn alertmanager_matchers_mute_by_inequality_and_regex() {
        let s = [silence(
            m(json!([
                {"name": "country", "value": "PRK", "isRegex": false, "isEqual": false},
                {"name": "category", "value": "study|work", "isRegex": true, "isEqual": true},
            ])),
            "2024-11-02T00:00:00Z",
        )];
        assert!(silenced_by(&s, &event("CHN", "study"), NOW).is_some());
        assert!(silenced_by(&s, &event("CHN", "work"), NOW).is_some());
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_none());
        // Anchored as Alertmanager anchors: `work` does not match `homework`.
        assert!(silenced_by(&s, &event("CHN", "homework"), NOW).is_none());
        let not_study = [silence(
            m(json!(["category!~\"stud.*\""])),
            "2024-11-02T00:00:00Z",
        )];
        assert!(silenced_by(&not_study, &event("PRK", "study"), NOW).is_none());
        assert!(silenced_by(&not_study, &event("PRK", "work"), NOW).is_some());
    }
}
