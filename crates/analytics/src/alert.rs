//! What of a release's surges a subscriber hears: the live edge of each series, one
//! incident per episode, and a score that ranks surges and sets their severity.
//!
//! The detectors say what is unusual in a series; this module says what is news. It is pure
//! (the analytics service keeps the incident state in `bw_incidents`, the live-replay
//! benchmark in memory), so the service and the benchmark decide alike.

use borderwatch_model::{
    Direction, Finding, Incident, IncidentSurge, IncidentUpdate, Period, SeriesKey, Severity,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What makes a surge news, and how loud. Part of the analysis configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertConfig {
    /// How many of a series' newest periods count as its live edge (1: only the figure a
    /// release adds at the end).
    pub live_window: usize,
    /// Smallest score a surge needs to be announced at all.
    pub min_score: f64,
    /// Scores from which a surge is `medium`, `high` and `critical`.
    pub medium_score: f64,
    pub high_score: f64,
    pub critical_score: f64,
    /// Surges of one category (countries) or one country (categories) in one period that
    /// make a story told once.
    pub story_min_members: usize,
    /// A source whose news surges of one release are at least this many and this share of
    /// its live series is told as one story: a likely change of method.
    pub story_source_min: usize,
    pub story_source_share: f64,
}

impl Default for AlertConfig {
    /// Calibrated with the live-replay benchmark on the real files of `testdata/borders`
    /// (`cargo bench -p borderwatch-analytics --bench live_replay`; rates in BENCHMARKS.md).
    fn default() -> Self {
        AlertConfig {
            live_window: 1,
            min_score: 55.0,
            medium_score: 62.0,
            high_score: 70.0,
            critical_score: 78.0,
            story_min_members: 3,
            story_source_min: 10,
            story_source_share: 0.3,
        }
    }
}

impl AlertConfig {
    /// Severity from the score, with one rule a reader can check: `critical` needs a
    /// sentence that stands on its own (a whole earlier year beaten, or a record), never
    /// statistics alone.
    pub fn severity(&self, score: f64, findings: &[Finding]) -> Severity {
        let has = |name: &str| findings.iter().any(|f| f.detector == name);
        let checkable = has("exceeds_prior_year") || has("record_high");
        if score >= self.critical_score && checkable {
            Severity::Critical
        } else if score >= self.high_score {
            Severity::High
        } else if score >= self.medium_score {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// Severity of a fall from its score: as for surges, `critical` needs a sentence that
    /// stands on its own, here the lowest figure on record or in at least
    /// [`FALL_CHECKABLE_YEARS`] years (the finding's `baseline` says since when).
    pub fn fall_severity(&self, score: f64, finding: &Finding, period: Period) -> Severity {
        let checkable = finding
            .baseline
            .as_ref()
            .is_none_or(|b| period.year() - b.period.year() >= FALL_CHECKABLE_YEARS);
        if score >= self.critical_score && checkable {
            Severity::Critical
        } else if score >= self.high_score {
            Severity::High
        } else if score >= self.medium_score {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// Stable text of the settings, mixed into surge ids with the detectors' settings.
    pub fn fingerprint(&self) -> String {
        format!(
            "alert-v2;{};{};{};{};{}",
            self.live_window,
            self.min_score,
            self.medium_score,
            self.high_score,
            self.critical_score
        )
    }
}

/// The periods of one series at its live edge after a release: among the series' newest
/// `window` periods, those the release brought (`new`) that are later than every period the
/// series had before it. `all` is every period of the series after the release, oldest
/// first.
///
/// A series that had no figures before the release has no live edge: its first load is
/// history, however recent, so loading a source's archive announces nothing one by one.
pub fn live_periods(all: &[Period], new: &[Period], window: usize) -> Vec<Period> {
    let Some(prior_max) = all.iter().filter(|p| !new.contains(p)).max() else {
        return Vec::new();
    };
    let tail = &all[all.len().saturating_sub(window.max(1))..];
    tail.iter()
        .copied()
        .filter(|p| p > prior_max && new.contains(p))
        .collect()
}

/// A fall is `critical` only when it is the lowest figure in at least this many years.
pub const FALL_CHECKABLE_YEARS: i32 = 5;

/// How many figures before a period make the series' recent level ([`recent_level`]).
pub const RECENT_PERIODS: usize = 3;

/// The series' recent level before `period`: the mean of its last [`RECENT_PERIODS`] figures
/// before it (fewer where the series is shorter; `None` where it has none). `points` are the
/// series' figures, oldest first.
pub fn recent_level(points: &[(Period, u64)], period: Period) -> Option<f64> {
    let before = points.partition_point(|p| p.0 < period);
    let window = &points[before.saturating_sub(RECENT_PERIODS)..before];
    (!window.is_empty())
        .then(|| window.iter().map(|p| p.1 as f64).sum::<f64>() / window.len() as f64)
}

/// The lowest of the series' last [`RECENT_PERIODS`] figures before `period` (`None` where
/// it has none): what a fall's drop is measured from when the series was already low.
pub fn recent_low(points: &[(Period, u64)], period: Period) -> Option<f64> {
    let before = points.partition_point(|p| p.0 < period);
    points[before.saturating_sub(RECENT_PERIODS)..before]
        .iter()
        .map(|p| p.1 as f64)
        .reduce(f64::min)
}

/// How newsworthy a surge is, 0–100: the size of the jump (40 points: value over the larger
/// of expected and the series' recent level, log2, full at 32 times), its absolute size (40:
/// the excess over expected, log10, full at 100,000), its rarity (10: −log10 of the smallest
/// p-value, full at 10⁻⁸), how many detectors agree (10: two points each, full at five), and
/// two points more for a figure above a whole recent year (`exceeds_prior_year`).
///
/// The weights were chosen with the live-replay benchmark: rarity weighs little because on
/// real series p-values reach 10⁻⁵⁰ for rises of a few dozen people, and absolute size
/// weighs as much as the jump because a newsroom does not print 20 → 60.
///
/// Expected is the statistical detectors' largest expectation, or without one the largest
/// figure an evidence rule compared with: the least flattering comparison, so a jump is not
/// made big by a small baseline. The jump is also measured against `recent` (the mean of
/// the last few figures, [`recent_level`]): a series that has been climbing for months is
/// far above a seasonal baseline fitted on earlier years, but its newest step is small, and
/// the story was told when the climb began. Without this a long rise such as the Border
/// Patrol's of 2019–2023 alerted 7.9 % of series-months; with it 1.8 % (BENCHMARKS.md, "Live
/// replay"). The absolute size keeps the comparison with expected: the extra people are
/// extra however long the rise.
pub fn score(value: u64, findings: &[Finding], recent: Option<f64>) -> f64 {
    let expected = |evidence: bool| {
        findings
            .iter()
            .filter(|f| crate::detect::DETECTORS.contains(&f.detector.as_str()) == evidence)
            .filter_map(|f| f.expected)
            .filter(|e| e.is_finite())
            .reduce(f64::max)
    };
    let reference = expected(false)
        .or_else(|| expected(true))
        .unwrap_or(0.0)
        .max(0.0);
    let level = recent.filter(|r| r.is_finite()).unwrap_or(0.0);
    let value = value as f64;
    let ratio = value / reference.max(level).max(1.0);
    let excess = (value - reference).max(1.0);
    let jump = (ratio.max(1.0).log2() / 5.0).min(1.0) * 40.0;
    let size = (excess.log10() / 5.0).min(1.0) * 40.0;
    let p = findings
        .iter()
        .filter_map(|f| f.p_value)
        .filter(|p| p.is_finite())
        .reduce(f64::min);
    let rarity = p.map_or(0.0, |p| {
        ((-p.max(1e-300).log10()) / 8.0).clamp(0.0, 1.0) * 10.0
    });
    let agreement = (findings.len().min(5) as f64) * 2.0;
    // A quarter or month above a whole recent year is the strongest sentence there is (the
    // seed case's): by construction at least four (twelve) times that year's average.
    let whole_year = if findings.iter().any(|f| f.detector == "exceeds_prior_year") {
        WHOLE_YEAR_POINTS
    } else {
        0.0
    };
    (((jump + size + rarity + agreement + whole_year) * 10.0).round() / 10.0).min(100.0)
}

/// The points a surge gains when it is above a whole recent year ([`score`]): two, as if one
/// more detector agreed. Chosen with the live-replay benchmark: it lifts Guinea's 2023-08
/// (810 after 350, more than in the whole of 2022) over the gate and changes no source's
/// rates by more than 0.06 points (BENCHMARKS.md, "Live replay").
const WHOLE_YEAR_POINTS: f64 = 2.0;

/// How newsworthy a fall is, 0–100, on the scale of [`score`]: the size of the drop (40:
/// the lower of expected and `recent_low` over the value, log2, full at 32 times), the
/// people missing (40: expected minus the value, log10, full at 100,000), rarity (10: the
/// lower-tail p-value) and agreement (2: one detector). Measuring the drop from the lowest
/// recent figure ([`recent_low`]) keeps a series that collapsed last month, or has been
/// sinking for months, from alarming anew each month: the story was its first step down
/// (the next months hold its incident open, quietly).
pub fn fall_score(value: u64, finding: &Finding, recent_low: Option<f64>) -> f64 {
    let expected = finding
        .expected
        .filter(|e| e.is_finite())
        .unwrap_or(0.0)
        .max(0.0);
    let level = recent_low.filter(|r| r.is_finite()).unwrap_or(expected);
    let value = value as f64;
    let ratio = expected.min(level) / value.max(1.0);
    let missing = (expected - value).max(1.0);
    let drop = (ratio.max(1.0).log2() / 5.0).min(1.0) * 40.0;
    let size = (missing.log10() / 5.0).min(1.0) * 40.0;
    let rarity = finding.p_value.filter(|p| p.is_finite()).map_or(0.0, |p| {
        ((-p.max(1e-300).log10()) / 8.0).clamp(0.0, 1.0) * 10.0
    });
    ((drop + size + rarity + 2.0) * 10.0).round() / 10.0
}

/// The stable id of the incident a series' surge at `opened` starts.
pub fn incident_id(series: &SeriesKey, opened: Period, fingerprint: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        series.source.as_str(),
        series.country.code(),
        series.category.as_str(),
        &opened.to_string(),
        fingerprint,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("in-{}", &hex::encode(h.finalize())[..20])
}

/// One surge of a series as the incident tracker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub period: Period,
    pub value: u64,
    pub surge_id: String,
    pub severity: Severity,
    pub score: f64,
    pub live: bool,
}

impl Alarm {
    fn surge(&self, update: IncidentUpdate) -> IncidentSurge {
        IncidentSurge {
            id: self.surge_id.clone(),
            period: self.period,
            value: self.value,
            severity: self.severity,
            score: self.score,
            update,
            live: self.live,
        }
    }
}

/// What happened to a series' incidents over one release's evaluated periods.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Advance {
    /// Per alarm, in input order: its incident and what the alarm did to it.
    pub updates: Vec<(String, IncidentUpdate)>,
    /// Incidents that ended in this release (the series came back inside its band).
    pub closed: Vec<Incident>,
}

/// One release's verdicts on one series, for one direction (surges or falls).
#[derive(Debug, Clone, Copy)]
pub struct Verdicts<'a> {
    pub direction: Direction,
    /// The periods the release evaluated, oldest first.
    pub evaluated: &'a [Period],
    /// The alarms among them (events of `direction` that passed the score gate), oldest
    /// first, each at one of the evaluated periods.
    pub alarms: &'a [Alarm],
    /// Periods a detector flagged in `direction` whose score stayed under the gate: the
    /// series is still outside its band there, so they keep an open incident open (quietly:
    /// no surge, no update), but never open one.
    pub held: &'a [Period],
}

/// Advances one series' incidents of one direction over the periods a release evaluated.
///
/// Consecutive alarming periods are one incident: the first opens it, the next ones continue
/// it, one louder than every earlier one escalates it. A period still outside the band but
/// under the score gate (`held`) keeps it open without a word. The first period back inside
/// the band closes it, as does a gap (the next alarm is not the period right after). An
/// incident opened in history that continues at the live edge is announced then, once
/// (`Opened`): the subscriber heard of it only in the history summary.
///
/// `incidents` holds the series' incidents of both directions, oldest first; each direction
/// has at most one open, its latest.
pub fn advance(
    incidents: &mut Vec<Incident>,
    series: &SeriesKey,
    verdicts: Verdicts<'_>,
    fingerprint: &str,
) -> Advance {
    let Verdicts {
        direction,
        evaluated,
        alarms,
        held,
    } = verdicts;
    let fingerprint = match direction {
        Direction::Rise => fingerprint.to_string(),
        Direction::Fall => format!("{fingerprint};fall"),
    };
    let mut out = Advance::default();
    let mut next_alarm = alarms.iter().peekable();
    for &period in evaluated {
        let alarm = next_alarm.next_if(|a| a.period == period);
        let open = incidents
            .iter_mut()
            .rev()
            .find(|i| i.direction == direction)
            .filter(|i| i.closed.is_none());
        match (alarm, open) {
            (Some(a), Some(open)) if open.last.offset(1) == period => {
                let update = if !open.announced && a.live {
                    IncidentUpdate::Opened
                } else if a.severity > open.peak_severity {
                    IncidentUpdate::Escalated
                } else {
                    IncidentUpdate::Continued
                };
                open.last = period;
                open.last_value = a.value;
                open.peak_value = match direction {
                    Direction::Rise => open.peak_value.max(a.value),
                    Direction::Fall => open.peak_value.min(a.value),
                };
                open.surges.push(a.surge(update));
                open.peak_severity = open.peak_severity.max(a.severity);
                open.peak_score = open.peak_score.max(a.score);
                open.live |= a.live;
                open.announced |= a.live;
                out.updates.push((open.id.clone(), update));
            }
            (Some(a), open) => {
                if let Some(open) = open {
                    open.closed = Some(open.last.offset(1));
                    out.closed.push(open.clone());
                }
                let incident = Incident {
                    id: incident_id(series, period, &fingerprint),
                    source: series.source.clone(),
                    country: series.country,
                    category: series.category.clone(),
                    opened: period,
                    last: period,
                    last_value: a.value,
                    peak_value: a.value,
                    closed: None,
                    peak_severity: a.severity,
                    peak_score: a.score,
                    surges: vec![a.surge(IncidentUpdate::Opened)],
                    live: a.live,
                    announced: a.live,
                    direction,
                };
                out.updates
                    .push((incident.id.clone(), IncidentUpdate::Opened));
                incidents.push(incident);
            }
            (None, Some(open)) if open.last.offset(1) == period && held.contains(&period) => {
                open.last = period;
            }
            (None, Some(open)) if open.last < period => {
                open.closed = Some(period);
                out.closed.push(open.clone());
            }
            (None, _) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::Country;

    fn q(s: &str) -> Period {
        s.parse().unwrap()
    }

    fn qs(list: &[&str]) -> Vec<Period> {
        list.iter().map(|s| q(s)).collect()
    }

    fn rises<'a>(evaluated: &'a [Period], alarms: &'a [Alarm]) -> Verdicts<'a> {
        Verdicts {
            direction: Direction::Rise,
            evaluated,
            alarms,
            held: &[],
        }
    }

    #[test]
    fn a_period_still_outside_the_band_under_the_gate_keeps_the_incident_open() {
        let mut incidents = Vec::new();
        let evaluated = qs(&["2021-Q1", "2021-Q2", "2021-Q3", "2021-Q4"]);
        let alarms = [
            alarm("2021-Q1", Severity::High, true),
            alarm("2021-Q3", Severity::High, true),
        ];
        let held = qs(&["2021-Q2"]);
        let verdicts = Verdicts {
            held: &held,
            ..rises(&evaluated, &alarms)
        };
        let out = advance(&mut incidents, &key(), verdicts, "f");
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        assert_eq!(out.updates[1].1, IncidentUpdate::Continued);
        assert_eq!(incidents[0].closed, Some(q("2021-Q4")));
        // A held period never opens one.
        let mut none = Vec::new();
        let quiet = Verdicts {
            held: &held,
            ..rises(&evaluated, &[])
        };
        advance(&mut none, &key(), quiet, "f");
        assert!(none.is_empty());
    }

    #[test]
    fn falls_are_incidents_of_their_own() {
        let mut incidents = Vec::new();
        let evaluated = qs(&["2021-Q1", "2021-Q2"]);
        let up = [alarm("2021-Q1", Severity::High, true)];
        let down = [alarm("2021-Q2", Severity::High, true)];
        let rise = advance(&mut incidents, &key(), rises(&evaluated, &up), "f");
        let fall = advance(
            &mut incidents,
            &key(),
            Verdicts {
                direction: Direction::Fall,
                ..rises(&evaluated, &down)
            },
            "f",
        );
        assert_eq!(incidents.len(), 2);
        assert_ne!(rise.updates[0].0, fall.updates[0].0);
        assert_eq!(rise.closed.len(), 1, "the rise ends when the series drops");
        assert_eq!(incidents[1].direction, Direction::Fall);
        assert!(incidents[1].is_open());
    }

    #[test]
    fn a_fall_reports_its_trough_and_a_surge_its_peak() {
        let evaluated = qs(&["2021-Q1", "2021-Q2", "2021-Q3"]);
        let values = [("2021-Q1", 300), ("2021-Q2", 120), ("2021-Q3", 200)];
        let alarms: Vec<Alarm> = values
            .iter()
            .map(|&(p, value)| Alarm {
                value,
                ..alarm(p, Severity::High, true)
            })
            .collect();
        let mut falls = Vec::new();
        let down = Verdicts {
            direction: Direction::Fall,
            ..rises(&evaluated, &alarms)
        };
        advance(&mut falls, &key(), down, "f");
        assert_eq!(
            falls[0].peak_value, 120,
            "a fall's extreme is its lowest figure"
        );
        let mut surges = Vec::new();
        advance(&mut surges, &key(), rises(&evaluated, &alarms), "f");
        assert_eq!(surges[0].peak_value, 300);
    }

    fn key() -> SeriesKey {
        SeriesKey::new("fsb", Country::parse("PRK").unwrap(), "study")
    }

    fn alarm(period: &str, severity: Severity, live: bool) -> Alarm {
        Alarm {
            period: q(period),
            value: 100,
            surge_id: format!("sg-{period}"),
            severity,
            score: 50.0,
            live,
        }
    }

    #[test]
    fn the_newest_period_a_release_adds_is_live() {
        let all = qs(&["2024-Q1", "2024-Q2", "2024-Q3"]);
        assert_eq!(live_periods(&all, &qs(&["2024-Q3"]), 1), qs(&["2024-Q3"]));
    }

    #[test]
    fn a_first_load_is_history() {
        let all = qs(&["2024-Q1", "2024-Q2", "2024-Q3"]);
        assert!(live_periods(&all, &all, 1).is_empty());
    }

    #[test]
    fn a_backfill_or_late_addition_is_history() {
        // 2023-Q4 arrives late, after 2024-Q1 was known.
        let all = qs(&["2023-Q3", "2023-Q4", "2024-Q1"]);
        assert!(live_periods(&all, &qs(&["2023-Q4"]), 1).is_empty());
        // A release that adds two quarters at the end: only the newest is live…
        let all = qs(&["2024-Q1", "2024-Q2", "2024-Q3"]);
        let new = qs(&["2024-Q2", "2024-Q3"]);
        assert_eq!(live_periods(&all, &new, 1), qs(&["2024-Q3"]));
        // …unless the window is widened.
        assert_eq!(live_periods(&all, &new, 2), new);
    }

    #[test]
    fn a_widened_window_never_reaches_behind_what_was_known() {
        let all = qs(&["2024-Q1", "2024-Q2", "2024-Q3"]);
        assert_eq!(live_periods(&all, &qs(&["2024-Q3"]), 3), qs(&["2024-Q3"]));
    }

    #[test]
    fn consecutive_alarms_are_one_incident() {
        let mut incidents = Vec::new();
        let evaluated = qs(&["2021-Q2", "2021-Q3", "2021-Q4", "2022-Q1"]);
        let alarms = [
            alarm("2021-Q2", Severity::Medium, true),
            alarm("2021-Q3", Severity::Medium, true),
            alarm("2021-Q4", Severity::High, true),
        ];
        let out = advance(&mut incidents, &key(), rises(&evaluated, &alarms), "f");
        let updates: Vec<IncidentUpdate> = out.updates.iter().map(|u| u.1).collect();
        assert_eq!(
            updates,
            [
                IncidentUpdate::Opened,
                IncidentUpdate::Continued,
                IncidentUpdate::Escalated
            ]
        );
        assert!(out.updates.iter().all(|u| u.0 == out.updates[0].0));
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0].closed, Some(q("2022-Q1")));
        assert_eq!(out.closed.len(), 1);
        assert_eq!(incidents[0].peak_severity, Severity::High);
        assert_eq!(incidents[0].surges.len(), 3);
    }

    #[test]
    fn incidents_continue_across_releases_and_keep_their_id() {
        let mut incidents = Vec::new();
        let first = advance(
            &mut incidents,
            &key(),
            rises(&qs(&["2021-Q2"]), &[alarm("2021-Q2", Severity::High, true)]),
            "f",
        );
        let second = advance(
            &mut incidents,
            &key(),
            rises(&qs(&["2021-Q3"]), &[alarm("2021-Q3", Severity::High, true)]),
            "f",
        );
        assert_eq!(first.updates[0].0, second.updates[0].0);
        assert_eq!(second.updates[0].1, IncidentUpdate::Continued);
        assert!(incidents[0].closed.is_none());
    }

    #[test]
    fn a_gap_or_a_quiet_period_ends_the_episode() {
        let mut incidents = Vec::new();
        let evaluated = qs(&["2021-Q1", "2021-Q2", "2021-Q3"]);
        let alarms = [
            alarm("2021-Q1", Severity::Low, true),
            alarm("2021-Q3", Severity::Low, true),
        ];
        let out = advance(&mut incidents, &key(), rises(&evaluated, &alarms), "f");
        assert_eq!(incidents.len(), 2);
        assert_eq!(incidents[0].closed, Some(q("2021-Q2")));
        assert_ne!(out.updates[0].0, out.updates[1].0);
        assert_eq!(out.updates[1].1, IncidentUpdate::Opened);
    }

    #[test]
    fn an_incident_opened_in_history_is_announced_when_it_reaches_the_live_edge() {
        let mut incidents = Vec::new();
        let history = advance(
            &mut incidents,
            &key(),
            rises(
                &qs(&["2021-Q1"]),
                &[alarm("2021-Q1", Severity::High, false)],
            ),
            "f",
        );
        assert_eq!(history.updates[0].1, IncidentUpdate::Opened);
        assert!(!incidents[0].announced);
        let live = advance(
            &mut incidents,
            &key(),
            rises(&qs(&["2021-Q2"]), &[alarm("2021-Q2", Severity::High, true)]),
            "f",
        );
        assert_eq!(live.updates[0].1, IncidentUpdate::Opened);
        let again = advance(
            &mut incidents,
            &key(),
            rises(&qs(&["2021-Q3"]), &[alarm("2021-Q3", Severity::High, true)]),
            "f",
        );
        assert_eq!(again.updates[0].1, IncidentUpdate::Continued);
    }

    #[test]
    fn score_grows_with_jump_size_and_rarity() {
        let finding = |expected: f64, p: Option<f64>| Finding {
            detector: "farrington".into(),
            expected: Some(expected),
            upper_bound: Some(expected * 2.0),
            p_value: p,
            message: String::new(),
            baseline: None,
        };
        let small = score(91, &[finding(38.0, Some(0.01))], None);
        let big = score(3765, &[finding(62.0, Some(1e-9))], None);
        assert!(small < big, "{small} {big}");
        assert!(score(3765, &[finding(62.0, Some(1e-3))], None) < big);
        assert!((0.0..=100.0).contains(&big));
    }

    #[test]
    fn a_rise_that_continues_a_climb_scores_less_than_its_first_step() {
        let finding = Finding {
            detector: "farrington".into(),
            expected: Some(1_000.0),
            upper_bound: Some(1_500.0),
            p_value: Some(1e-9),
            message: String::new(),
            baseline: None,
        };
        let first = score(8_000, std::slice::from_ref(&finding), Some(900.0));
        let continued = score(8_000, std::slice::from_ref(&finding), Some(7_000.0));
        assert!(continued < first - 10.0, "{continued} {first}");
        // The recent level never raises a score: below expected it changes nothing.
        assert_eq!(
            score(8_000, std::slice::from_ref(&finding), Some(10.0)),
            first
        );
    }

    #[test]
    fn a_fall_scores_its_first_step_down_not_the_months_that_stay_low() {
        let finding = Finding {
            detector: "fall".into(),
            expected: Some(50_000.0),
            upper_bound: None,
            p_value: Some(1e-12),
            message: String::new(),
            baseline: None,
        };
        let first = fall_score(2_000, &finding, Some(45_000.0));
        let still_low = fall_score(1_800, &finding, Some(2_000.0));
        assert!(first >= AlertConfig::default().min_score, "{first}");
        assert!(still_low < AlertConfig::default().min_score, "{still_low}");
        let points: Vec<(Period, u64)> = qs(&["2024-Q1", "2024-Q2", "2024-Q3"])
            .into_iter()
            .zip([900, 40, 700])
            .collect();
        assert_eq!(recent_low(&points, q("2024-Q4")), Some(40.0));
        assert_eq!(recent_low(&points, q("2024-Q1")), None);
    }

    #[test]
    fn recent_level_is_the_mean_of_the_last_figures_before_the_period() {
        let points: Vec<(Period, u64)> =
            qs(&["2023-Q1", "2023-Q2", "2023-Q3", "2023-Q4", "2024-Q1"])
                .into_iter()
                .zip([10, 20, 30, 60, 1_000])
                .collect();
        assert_eq!(recent_level(&points, q("2024-Q1")), Some(110.0 / 3.0));
        assert_eq!(recent_level(&points, q("2023-Q2")), Some(10.0));
        assert_eq!(recent_level(&points, q("2023-Q1")), None);
    }

    #[test]
    fn critical_needs_a_checkable_sentence() {
        let cfg = AlertConfig::default();
        let stat = Finding {
            detector: "farrington".into(),
            expected: None,
            upper_bound: None,
            p_value: Some(1e-12),
            message: String::new(),
            baseline: None,
        };
        assert_eq!(
            cfg.severity(99.0, std::slice::from_ref(&stat)),
            Severity::High
        );
        let record = Finding {
            detector: "record_high".into(),
            ..stat
        };
        assert_eq!(cfg.severity(99.0, &[record]), Severity::Critical);
    }
}
