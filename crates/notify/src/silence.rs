//! Silences: which stored silence, if any, mutes an event now. Pure; the service reads the
//! `bw_silences` bucket and records a muted event as `silenced` instead of delivering it.
//! That record is final: a silence that expires later does not resurrect the event.

use borderwatch_model::{Silence, SilenceMatchers, SurgeEvent};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Whether every given matcher matches `e` (a silence with none matches nothing).
pub fn matchers_match(m: &SilenceMatchers, e: &SurgeEvent) -> bool {
    let any = m.source.is_some() || m.country.is_some() || m.category.is_some();
    any && m.source.as_deref().is_none_or(|s| s == e.source)
        && m.country.is_none_or(|c| c == e.country)
        && m.category.as_deref().is_none_or(|c| c == e.category)
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
    use time::macros::datetime;

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
            SilenceMatchers {
                country: Some(Country::parse("PRK").unwrap()),
                ..Default::default()
            },
            "2024-11-02T00:00:00Z",
        )];
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_some());
        assert!(silenced_by(&s, &event("PRK", "work"), NOW).is_some());
        assert!(silenced_by(&s, &event("CHN", "study"), NOW).is_none());
    }

    #[test]
    fn a_series_silence_needs_every_matcher() {
        let m = SilenceMatchers {
            source: Some("fsb".into()),
            country: Some(Country::parse("PRK").unwrap()),
            category: Some("study".into()),
        };
        let s = [silence(m, "2024-11-02T00:00:00+03:00")];
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_some());
        assert!(silenced_by(&s, &event("PRK", "work"), NOW).is_none());
        let mut other_source = event("PRK", "study");
        other_source.source = "cbp".into();
        assert!(silenced_by(&s, &other_source, NOW).is_none());
    }

    #[test]
    fn an_expired_silence_mutes_nothing() {
        let m = SilenceMatchers {
            category: Some("study".into()),
            ..Default::default()
        };
        let s = [silence(m.clone(), "2024-11-01T12:00:00Z")];
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_none());
        let bad = [silence(m, "tomorrow")];
        assert!(silenced_by(&bad, &event("PRK", "study"), NOW).is_none());
    }

    #[test]
    fn a_silence_without_matchers_mutes_nothing() {
        let s = [silence(SilenceMatchers::default(), "2030-01-01T00:00:00Z")];
        assert!(silenced_by(&s, &event("PRK", "study"), NOW).is_none());
    }
}
