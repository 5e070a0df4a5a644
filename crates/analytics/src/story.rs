//! Stories across series: the news surges of one release that share a cause are told once.
//!
//! Three shapes, tried in this order, each surge in at most one story: much of a source
//! jumping at once (more often a change of method than news, and the story says so), many
//! countries rising on one category in one period (a sports event, a visa change), one
//! country rising across categories. Only news is grouped: live surges that open or escalate
//! an incident. Each member keeps its own evidence.

use std::collections::BTreeMap;

use borderwatch_model::{
    Country, Direction, Period, StoryKind, StoryRef, SurgeEvent, category_phrase, thousands,
    unit_noun,
};
use sha2::{Digest, Sha256};

use crate::alert::AlertConfig;

/// Groups the news surges of one release (one source) into stories and sets `story` on
/// each member. `live_series` is how many series the release brought a live period for.
/// Surges and falls are grouped apart: a story is told of one or the other.
pub fn group(events: &mut [SurgeEvent], live_series: usize, release_id: &str, cfg: &AlertConfig) {
    for direction in [Direction::Rise, Direction::Fall] {
        let news: Vec<usize> = (0..events.len())
            .filter(|&i| {
                let e = &events[i];
                e.direction == direction && !e.historical && e.incident_update.is_news()
            })
            .collect();
        group_news(events, &news, direction, live_series, release_id, cfg);
    }
}

fn group_news(
    events: &mut [SurgeEvent],
    news: &[usize],
    direction: Direction,
    live_series: usize,
    release_id: &str,
    cfg: &AlertConfig,
) {
    let verb = match direction {
        Direction::Rise => "rose",
        Direction::Fall => "fell",
    };
    // Story ids of falls differ from those of rises on the same key.
    let suffix = match direction {
        Direction::Rise => "",
        Direction::Fall => ";fall",
    };
    let min = cfg.story_min_members.max(2);
    // A whole source at once.
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in news {
        by_source
            .entry(events[i].source.as_str())
            .or_default()
            .push(i);
    }
    let mut stories: Vec<(StoryKind, String, String, Vec<usize>)> = Vec::new();
    for (source, members) in by_source {
        if members.len() >= cfg.story_source_min
            && members.len() as f64 >= cfg.story_source_share * live_series as f64
        {
            let period = latest(events, &members);
            let cause = match direction {
                Direction::Rise => "more often a change of method or coverage than news",
                Direction::Fall => "a border closing, or a change of method or coverage",
            };
            let title = format!(
                "{} of {} {source} series {verb} at once in {period}: {cause}; check the source \
                 before reporting",
                thousands(members.len() as u64),
                thousands(live_series as u64),
            );
            stories.push((
                StoryKind::Source,
                format!("{source}{suffix}"),
                title,
                members,
            ));
        }
    }
    let taken = |stories: &[(StoryKind, String, String, Vec<usize>)], i: usize| {
        stories.iter().any(|s| s.3.contains(&i))
    };
    // Many countries, one category.
    let mut by_category: BTreeMap<(String, String, Period), Vec<usize>> = BTreeMap::new();
    for &i in news.iter().filter(|&&i| !taken(&stories, i)) {
        let e = &events[i];
        by_category
            .entry((e.source.clone(), e.category.clone(), e.period))
            .or_default()
            .push(i);
    }
    for ((source, category, period), members) in by_category {
        if members.len() >= min {
            let phrase = category_phrase(&category);
            let noun = unit_noun(&source);
            let what = if phrase.is_empty() {
                noun.to_string()
            } else {
                format!("{noun} {phrase}")
            };
            let countries: Vec<Country> = members.iter().map(|&i| events[i].country).collect();
            let title = format!(
                "{} {verb} for {} countries at once in {period}: {}",
                capitalise(&what),
                members.len(),
                names(&countries)
            );
            stories.push((
                StoryKind::Category,
                format!("{source}.{category}.{period}{suffix}"),
                title,
                members,
            ));
        }
    }
    // One country, many categories.
    let mut by_country: BTreeMap<(String, Country, Period), Vec<usize>> = BTreeMap::new();
    for &i in news.iter().filter(|&&i| !taken(&stories, i)) {
        let e = &events[i];
        by_country
            .entry((e.source.clone(), e.country, e.period))
            .or_default()
            .push(i);
    }
    for ((source, country, period), members) in by_country {
        if members.len() >= min {
            let title = format!(
                "{} of {} {verb} in {} categories at once in {period}",
                capitalise(unit_noun(&source)),
                country.citizens_phrase(),
                members.len()
            );
            stories.push((
                StoryKind::Country,
                format!("{source}.{country}.{period}{suffix}"),
                title,
                members,
            ));
        }
    }
    for (kind, key, title, members) in stories {
        let story = StoryRef {
            id: story_id(release_id, kind, &key),
            kind,
            title,
            members: members.len(),
        };
        for i in members {
            events[i].story = Some(story.clone());
        }
    }
}

fn latest(events: &[SurgeEvent], members: &[usize]) -> Period {
    members
        .iter()
        .map(|&i| events[i].period)
        .max()
        .expect("a story has members")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// "Peru, Argentina and Mexico", or the first three and how many more.
fn names(countries: &[Country]) -> String {
    let shown: Vec<String> = countries.iter().take(3).map(Country::name).collect();
    match countries.len() {
        0 => String::new(),
        1 => shown[0].clone(),
        2 | 3 => {
            let (last, rest) = shown.split_last().expect("two or three names");
            format!("{} and {last}", rest.join(", "))
        }
        n => format!("{} and {} more", shown.join(", "), n - 3),
    }
}

fn story_id(release_id: &str, kind: StoryKind, key: &str) -> String {
    let mut h = Sha256::new();
    for part in [release_id, &format!("{kind:?}"), key] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("st-{}", &hex::encode(h.finalize())[..20])
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::{IncidentUpdate, Severity};

    fn surge(country: &str, category: &str, period: &str) -> SurgeEvent {
        SurgeEvent {
            id: format!("sg-{country}-{category}-{period}"),
            source: "fsb".into(),
            country: Country::parse(country).unwrap(),
            category: category.into(),
            period: period.parse().unwrap(),
            value: 1000,
            severity: Severity::High,
            explanation: String::new(),
            findings: vec![],
            release_id: "rel-1".into(),
            detected_at: String::new(),
            score: 70.0,
            direction: Default::default(),
            historical: false,
            incident_id: None,
            incident_update: IncidentUpdate::Opened,
            story: None,
            url: None,
        }
    }

    #[test]
    fn many_countries_on_one_category_are_one_story() {
        let mut events: Vec<SurgeEvent> = ["PER", "ARG", "MEX", "COL", "BRA"]
            .iter()
            .map(|c| surge(c, "total", "2018-Q2"))
            .collect();
        events.push(surge("CHN", "air", "2018-Q2"));
        group(&mut events, 200, "rel-1", &AlertConfig::default());
        let story = events[0].story.clone().expect("a story");
        assert_eq!(story.kind, StoryKind::Category);
        assert_eq!(story.members, 5);
        assert!(events[..5].iter().all(|e| e.story.as_ref() == Some(&story)));
        assert!(events[5].story.is_none(), "a lone surge stays alone");
        assert_eq!(
            story.title,
            "Entries rose for 5 countries at once in 2018-Q2: Peru, Argentina, Mexico and 2 more"
        );
    }

    #[test]
    fn one_country_across_categories_is_one_story() {
        let mut events = vec![
            surge("PRK", "study", "2024-Q3"),
            surge("PRK", "work", "2024-Q3"),
            surge("PRK", "total", "2024-Q3"),
        ];
        group(&mut events, 50, "rel-1", &AlertConfig::default());
        let story = events[0].story.clone().expect("a story");
        assert_eq!(story.kind, StoryKind::Country);
        assert_eq!(
            story.title,
            "Entries of North Korean citizens rose in 3 categories at once in 2024-Q3"
        );
    }

    #[test]
    fn a_whole_source_jumping_is_flagged_as_a_likely_change_of_method() {
        let countries = [
            "PER", "ARG", "MEX", "COL", "BRA", "CHN", "IND", "TUR", "EGY", "IRN", "IRQ", "SYR",
        ];
        let mut events: Vec<SurgeEvent> = countries
            .iter()
            .enumerate()
            .map(|(i, c)| surge(c, ["air", "car", "rail"][i % 3], "2018-Q2"))
            .collect();
        group(&mut events, 20, "rel-1", &AlertConfig::default());
        let story = events[0].story.clone().expect("a story");
        assert_eq!(story.kind, StoryKind::Source);
        assert!(story.title.contains("change of method"), "{}", story.title);
        assert!(events.iter().all(|e| e.story.as_ref() == Some(&story)));
    }

    #[test]
    fn history_and_continuing_incidents_are_not_grouped() {
        let mut events: Vec<SurgeEvent> = ["PER", "ARG", "MEX"]
            .iter()
            .map(|c| surge(c, "total", "2018-Q2"))
            .collect();
        events[0].historical = true;
        events[1].incident_update = IncidentUpdate::Continued;
        group(&mut events, 200, "rel-1", &AlertConfig::default());
        assert!(events.iter().all(|e| e.story.is_none()));
    }

    #[test]
    fn story_ids_are_stable() {
        let a = story_id("rel-1", StoryKind::Category, "fsb.total.2018-Q2");
        assert_eq!(
            a,
            story_id("rel-1", StoryKind::Category, "fsb.total.2018-Q2")
        );
        assert_ne!(
            a,
            story_id("rel-2", StoryKind::Category, "fsb.total.2018-Q2")
        );
        assert!(a.starts_with("st-") && a.len() == 23);
    }
}
