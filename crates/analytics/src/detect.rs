//! Evidence detectors: each tests one period of a series against the series' own history
//! and, when it fires, says so in words a journalist would print.
//!
//! Detectors are pure functions of a [`SeriesFrame`] and a period; they know nothing of
//! releases, the bus or other series.

use borderwatch_model::{Baseline, Finding, Freq, Period, thousands};
use serde::{Deserialize, Serialize};

use crate::aggregate::SeriesFrame;
use crate::error::AnalyticsError;

/// The detector names, in the order findings are listed in a surge event.
pub const DETECTORS: [&str; 3] = ["exceeds_prior_year", "record_high", "year_over_year"];

/// Parameters of [`record_high`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordHighConfig {
    pub enabled: bool,
    /// Earlier periods the series must have before a record means anything.
    pub min_history: usize,
    /// How far above the previous record the value must be (0.2: 20% above).
    pub margin: f64,
    /// Smallest value worth reporting.
    pub min_value: u64,
}

impl Default for RecordHighConfig {
    fn default() -> Self {
        RecordHighConfig {
            enabled: true,
            min_history: 8,
            margin: 0.2,
            min_value: 50,
        }
    }
}

/// Parameters of [`exceeds_prior_year`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriorYearConfig {
    pub enabled: bool,
    /// Smallest value worth reporting.
    pub min_value: u64,
    /// A year whose total is below this share of the median complete year before the
    /// period (a pandemic collapse, a border closure) is no baseline: beating it says
    /// nothing a reader would call news.
    pub min_year_share: f64,
    /// How many calendar years back a compared year may lie: the rule names the largest
    /// complete year among them, so a small year long ago is never the yardstick.
    pub recent_years: i32,
}

impl Default for PriorYearConfig {
    fn default() -> Self {
        PriorYearConfig {
            enabled: true,
            min_value: 50,
            min_year_share: 0.25,
            recent_years: 5,
        }
    }
}

/// Parameters of [`year_over_year`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct YearOverYearConfig {
    pub enabled: bool,
    /// Smallest ratio to the same period a year earlier that fires.
    pub min_ratio: f64,
    /// Smallest value worth reporting.
    pub min_value: u64,
    /// Smallest figure a year earlier that a ratio may be taken to: "1,441 times the same
    /// month a year earlier (1)" says nothing.
    pub min_previous: u64,
}

impl Default for YearOverYearConfig {
    fn default() -> Self {
        YearOverYearConfig {
            enabled: true,
            min_ratio: 3.0,
            min_value: 50,
            min_previous: 20,
        }
    }
}

/// Which detectors run, with what parameters. Part of every surge id (see
/// [`DetectorConfig::fingerprint`]), so changing it re-announces nothing twice but may
/// announce again under new ids.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectorConfig {
    pub exceeds_prior_year: PriorYearConfig,
    pub record_high: RecordHighConfig,
    pub year_over_year: YearOverYearConfig,
}

impl DetectorConfig {
    /// The defaults with only the named detectors enabled: a comma-separated list of
    /// [`DETECTORS`] names (`"record_high,year_over_year"`); an empty list enables all.
    pub fn only(list: &str) -> Result<DetectorConfig, AnalyticsError> {
        let names: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut cfg = DetectorConfig::default();
        if names.is_empty() {
            return Ok(cfg);
        }
        if let Some(bad) = names.iter().find(|n| !DETECTORS.contains(n)) {
            return Err(AnalyticsError::UnknownDetector {
                name: bad.to_string(),
                known: DETECTORS.join(", "),
            });
        }
        cfg.exceeds_prior_year.enabled = names.contains(&"exceeds_prior_year");
        cfg.record_high.enabled = names.contains(&"record_high");
        cfg.year_over_year.enabled = names.contains(&"year_over_year");
        Ok(cfg)
    }

    /// Stable text naming the enabled detectors and their parameters
    /// (`evidence-v2;rh:8,0.2,50;py:50,0.25,5;yoy:3,50,20`), mixed into surge ids.
    pub fn fingerprint(&self) -> String {
        let mut s = String::from("evidence-v2");
        let rh = &self.record_high;
        if rh.enabled {
            s.push_str(&format!(
                ";rh:{},{},{}",
                rh.min_history, rh.margin, rh.min_value
            ));
        }
        let py = &self.exceeds_prior_year;
        if py.enabled {
            s.push_str(&format!(
                ";py:{},{},{}",
                py.min_value, py.min_year_share, py.recent_years
            ));
        }
        let yoy = &self.year_over_year;
        if yoy.enabled {
            s.push_str(&format!(
                ";yoy:{},{},{}",
                yoy.min_ratio, yoy.min_value, yoy.min_previous
            ));
        }
        s
    }
}

/// Fires when `period` is the highest of its length on record: strictly above the previous
/// maximum by more than `margin`, with at least `min_history` earlier figures and a value of
/// at least `min_value`.
///
/// The baseline is the period that set the previous record (the earliest, on a tie);
/// `upper_bound` is the threshold the value had to exceed, previous record × (1 + margin).
pub fn record_high(frame: &SeriesFrame, period: Period, cfg: &RecordHighConfig) -> Option<Finding> {
    let idx = frame.position(period)?;
    let value = frame.points[idx].1;
    let history = &frame.points[..idx];
    if value < cfg.min_value || history.is_empty() || history.len() < cfg.min_history {
        return None;
    }
    // The earliest period holding the maximum: when the record was set.
    let (record_period, record) = history
        .iter()
        .copied()
        .reduce(|best, p| if p.1 > best.1 { p } else { best })?;
    let threshold = record as f64 * (1.0 + cfg.margin.max(0.0));
    if value <= record || value as f64 <= threshold {
        return None;
    }
    Some(Finding {
        detector: "record_high".into(),
        expected: Some(record as f64),
        upper_bound: Some(threshold),
        p_value: None,
        message: format!(
            "the highest {} on record (previous record {} in {record_period})",
            frame.freq.noun(),
            thousands(record)
        ),
        baseline: Some(Baseline {
            period: record_period,
            value: record as f64,
        }),
    })
}

/// Fires when one quarter's or month's figure is above the total of the largest complete
/// calendar year among the last `recent_years` (on a tie, the most recent), at least
/// `min_value`, and the first figure since that year to cross it: the level is news when it
/// is first reached, not every period after.
///
/// A small year long ago is never the yardstick (only recent years count, and the largest
/// of them), nor is a collapsed one (below `min_year_share` of the median earlier year).
/// `expected` is the mean complete-year total of earlier years spread over the year's
/// periods; `upper_bound` is the named year's total.
pub fn exceeds_prior_year(
    frame: &SeriesFrame,
    period: Period,
    cfg: &PriorYearConfig,
) -> Option<Finding> {
    if frame.freq == Freq::Year {
        return None;
    }
    let value = frame.value_at(period)?;
    if value < cfg.min_value {
        return None;
    }
    let earlier: Vec<_> = frame
        .yearly
        .iter()
        .filter(|y| y.complete && y.year < period.year())
        .collect();
    let mut totals: Vec<u64> = earlier.iter().map(|y| y.total).collect();
    totals.sort_unstable();
    let median = totals.get(totals.len() / 2).copied().unwrap_or(0) as f64;
    let floor = median * cfg.min_year_share;
    let (year, total) = earlier
        .iter()
        .filter(|y| y.year >= period.year() - cfg.recent_years.max(1))
        .filter(|y| y.total > 0 && y.total as f64 >= floor)
        .map(|y| (y.year, y.total))
        .max_by_key(|&(year, total)| (total, year))?;
    if value <= total {
        return None;
    }
    let crossed_before = frame
        .points
        .iter()
        .any(|&(p, v)| p.year() > year && p < period && v > total);
    if crossed_before {
        return None;
    }
    let mean = earlier.iter().map(|y| y.total as f64).sum::<f64>() / earlier.len() as f64;
    Some(Finding {
        detector: "exceeds_prior_year".into(),
        expected: Some(mean / f64::from(frame.freq.per_year())),
        upper_bound: Some(total as f64),
        p_value: None,
        message: format!("more than in the whole of {year} ({})", thousands(total)),
        baseline: Some(Baseline {
            period: Period::Year(year),
            value: total as f64,
        }),
    })
}

/// Fires when the figure is at least `min_ratio` times the same period a year earlier (which
/// must be present, above 0 and at least `min_previous`: a ratio to a handful is no news)
/// and at least `min_value`.
pub fn year_over_year(
    frame: &SeriesFrame,
    period: Period,
    cfg: &YearOverYearConfig,
) -> Option<Finding> {
    let value = frame.value_at(period)?;
    let earlier = period.year_earlier();
    let previous = frame.value_at(earlier)?;
    if value < cfg.min_value || previous == 0 || previous < cfg.min_previous {
        return None;
    }
    let ratio = value as f64 / previous as f64;
    if ratio < cfg.min_ratio {
        return None;
    }
    Some(Finding {
        detector: "year_over_year".into(),
        expected: Some(previous as f64),
        upper_bound: Some(previous as f64 * cfg.min_ratio),
        p_value: None,
        message: format!(
            "{} the same {} a year earlier ({} in {earlier})",
            times(ratio),
            frame.freq.noun(),
            thousands(previous)
        ),
        baseline: Some(Baseline {
            period: earlier,
            value: previous as f64,
        }),
    })
}

/// "61 times" from ten up, "4.5 times" below.
fn times(ratio: f64) -> String {
    if (ratio * 10.0).round() >= 100.0 {
        format!("{} times", thousands(ratio.round() as u64))
    } else {
        format!("{ratio:.1} times")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{PRK_STUDY, frame, quarters};

    fn q(s: &str) -> Period {
        s.parse().unwrap()
    }

    #[test]
    fn record_high_fires_above_the_previous_record() {
        let f = quarters("2022-Q1", &[100, 120, 950, 110, 90, 80, 100, 130, 1500]);
        let found = record_high(&f, q("2024-Q1"), &RecordHighConfig::default()).unwrap();
        assert_eq!(
            found.message,
            "the highest quarter on record (previous record 950 in 2022-Q3)"
        );
        assert_eq!(found.expected, Some(950.0));
        assert_eq!(found.baseline.unwrap().period, q("2022-Q3"));
    }

    #[test]
    fn record_high_needs_history() {
        let f = quarters("2023-Q1", &[10, 12, 11, 13, 500]);
        assert!(record_high(&f, q("2024-Q1"), &RecordHighConfig::default()).is_none());
    }

    #[test]
    fn record_high_needs_the_margin() {
        let f = quarters("2022-Q1", &[100, 120, 950, 110, 90, 80, 100, 130, 1100]);
        assert!(record_high(&f, q("2024-Q1"), &RecordHighConfig::default()).is_none());
        let no_margin = RecordHighConfig {
            margin: 0.0,
            ..Default::default()
        };
        assert!(record_high(&f, q("2024-Q1"), &no_margin).is_some());
    }

    #[test]
    fn record_high_ignores_a_tie() {
        let f = quarters("2022-Q1", &[100, 120, 950, 110, 90, 80, 100, 130, 950]);
        let no_margin = RecordHighConfig {
            margin: 0.0,
            ..Default::default()
        };
        assert!(record_high(&f, q("2024-Q1"), &no_margin).is_none());
    }

    #[test]
    fn record_high_ignores_small_values() {
        let f = quarters("2022-Q1", &[1, 2, 1, 0, 3, 2, 1, 2, 40]);
        assert!(record_high(&f, q("2024-Q1"), &RecordHighConfig::default()).is_none());
    }

    #[test]
    fn exceeds_prior_year_names_the_largest_exceeded_year() {
        let f = quarters("2019-Q1", &PRK_STUDY);
        let cfg = PriorYearConfig::default();
        let found = exceeds_prior_year(&f, q("2024-Q3"), &cfg).unwrap();
        assert_eq!(found.message, "more than in the whole of 2019 (3,200)");
        assert_eq!(found.upper_bound, Some(3200.0));
        assert_eq!(found.baseline.unwrap().period, Period::Year(2019));
        // 332 beats 2020-2023, but 2019 (3,200) is the largest of the last five years: a
        // reader is not told it beat a collapsed year when a recent one was ten times larger.
        assert_eq!(exceeds_prior_year(&f, q("2024-Q2"), &cfg), None);
    }

    #[test]
    fn exceeds_prior_year_fires_when_the_level_is_first_crossed() {
        let mut values = PRK_STUDY.to_vec();
        values.push(3752);
        let f = quarters("2019-Q1", &values);
        let cfg = PriorYearConfig::default();
        assert!(exceeds_prior_year(&f, q("2024-Q3"), &cfg).is_some());
        // 2024-Q4 (3,752) is above 2019 too, but 2024-Q3 crossed that level first.
        assert_eq!(exceeds_prior_year(&f, q("2024-Q4"), &cfg), None);
    }

    #[test]
    fn exceeds_prior_year_never_cites_a_small_year_long_ago() {
        // 2010 was small (49 in all); 2011-2015 were large; 2016 months beat 2010 only.
        let mut values = vec![12, 12, 12, 13];
        values.extend([400; 20]);
        values.extend([60, 70, 80, 90]);
        let f = quarters("2010-Q1", &values);
        let cfg = PriorYearConfig {
            min_year_share: 0.0,
            ..PriorYearConfig::default()
        };
        assert_eq!(exceeds_prior_year(&f, q("2016-Q4"), &cfg), None);
    }

    #[test]
    fn exceeds_prior_year_ignores_collapsed_years() {
        // Three normal years of 1,000, then a pandemic year of 40.
        let mut values = vec![250; 12];
        values.extend([10, 10, 10, 10, 100, 600]);
        let f = quarters("2017-Q1", &values);
        let cfg = PriorYearConfig::default();
        assert_eq!(
            exceeds_prior_year(&f, q("2021-Q1"), &cfg),
            None,
            "beating a collapsed year is no news"
        );
        // Compared with 2020 alone, it is the floor that keeps it quiet.
        let last_year_only = PriorYearConfig {
            recent_years: 1,
            ..cfg.clone()
        };
        assert_eq!(exceeds_prior_year(&f, q("2021-Q1"), &last_year_only), None);
        let no_floor = PriorYearConfig {
            min_year_share: 0.0,
            ..last_year_only
        };
        assert!(exceeds_prior_year(&f, q("2021-Q1"), &no_floor).is_some());
    }

    #[test]
    fn exceeds_prior_year_prefers_the_most_recent_of_equal_years() {
        let f = quarters("2019-Q1", &[25, 25, 25, 25, 10, 30, 30, 30, 200]);
        let found = exceeds_prior_year(&f, q("2021-Q1"), &PriorYearConfig::default()).unwrap();
        assert_eq!(found.message, "more than in the whole of 2020 (100)");
    }

    #[test]
    fn exceeds_prior_year_skips_incomplete_and_empty_years() {
        // 2019 has three quarters only, 2020 is all zeros.
        let f = frame(&[
            ("2019-Q2", 10),
            ("2019-Q3", 10),
            ("2019-Q4", 10),
            ("2020-Q1", 0),
            ("2020-Q2", 0),
            ("2020-Q3", 0),
            ("2020-Q4", 0),
            ("2021-Q1", 90),
        ]);
        assert!(exceeds_prior_year(&f, q("2021-Q1"), &PriorYearConfig::default()).is_none());
    }

    #[test]
    fn exceeds_prior_year_ignores_the_same_year() {
        let f = quarters("2024-Q1", &[10, 10, 10, 10]);
        let g = quarters("2023-Q1", &[10, 10, 10, 10, 60, 1, 1, 1]);
        assert!(exceeds_prior_year(&f, q("2024-Q4"), &PriorYearConfig::default()).is_none());
        assert!(exceeds_prior_year(&g, q("2024-Q1"), &PriorYearConfig::default()).is_some());
    }

    #[test]
    fn year_over_year_fires_on_a_large_ratio() {
        let f = quarters("2023-Q3", &[62, 70, 38, 332, 3765]);
        let found = year_over_year(&f, q("2024-Q3"), &YearOverYearConfig::default()).unwrap();
        assert_eq!(
            found.message,
            "61 times the same quarter a year earlier (62 in 2023-Q3)"
        );
        assert_eq!(found.expected, Some(62.0));
        assert_eq!(found.upper_bound, Some(186.0));
    }

    #[test]
    fn year_over_year_writes_small_ratios_with_one_decimal() {
        let f = quarters("2023-Q1", &[20, 1, 1, 1, 90]);
        let found = year_over_year(&f, q("2024-Q1"), &YearOverYearConfig::default()).unwrap();
        assert_eq!(
            found.message,
            "4.5 times the same quarter a year earlier (20 in 2023-Q1)"
        );
    }

    #[test]
    fn year_over_year_needs_a_baseline_that_means_something() {
        let f = quarters("2023-Q1", &[1, 1, 1, 1, 1441]);
        assert!(year_over_year(&f, q("2024-Q1"), &YearOverYearConfig::default()).is_none());
        let g = quarters("2023-Q1", &[20, 1, 1, 1, 100]);
        assert!(year_over_year(&g, q("2024-Q1"), &YearOverYearConfig::default()).is_some());
    }

    #[test]
    fn year_over_year_ignores_zero_baseline() {
        let f = quarters("2023-Q1", &[0, 1, 1, 1, 900]);
        assert!(year_over_year(&f, q("2024-Q1"), &YearOverYearConfig::default()).is_none());
    }

    #[test]
    fn year_over_year_needs_the_earlier_period() {
        let f = frame(&[("2023-Q2", 10), ("2024-Q1", 900)]);
        assert!(year_over_year(&f, q("2024-Q1"), &YearOverYearConfig::default()).is_none());
    }

    #[test]
    fn zeros_and_gaps_do_not_alarm() {
        let f = frame(&[
            ("2019-Q1", 0),
            ("2019-Q3", 0),
            ("2020-Q2", 0),
            ("2021-Q1", 3),
            ("2022-Q4", 0),
            ("2023-Q1", 0),
            ("2023-Q2", 1),
            ("2023-Q3", 0),
            ("2024-Q1", 0),
            ("2024-Q2", 0),
        ]);
        let cfg = DetectorConfig::default();
        for &(p, _) in &f.points {
            assert!(record_high(&f, p, &cfg.record_high).is_none(), "{p}");
            assert!(
                exceeds_prior_year(&f, p, &cfg.exceeds_prior_year).is_none(),
                "{p}"
            );
            assert!(year_over_year(&f, p, &cfg.year_over_year).is_none(), "{p}");
        }
    }

    #[test]
    fn detectors_ignore_periods_the_series_lacks() {
        let f = quarters("2019-Q1", &[700, 750, 950, 800]);
        let cfg = DetectorConfig::default();
        for p in [q("2030-Q1"), q("2019-01"), q("2019")] {
            assert!(record_high(&f, p, &cfg.record_high).is_none());
            assert!(exceeds_prior_year(&f, p, &cfg.exceeds_prior_year).is_none());
            assert!(year_over_year(&f, p, &cfg.year_over_year).is_none());
        }
    }

    #[test]
    fn fingerprint_names_enabled_detectors_and_parameters() {
        assert_eq!(
            DetectorConfig::default().fingerprint(),
            "evidence-v2;rh:8,0.2,50;py:50,0.25,5;yoy:3,50,20"
        );
        assert_eq!(
            DetectorConfig::only("record_high").unwrap().fingerprint(),
            "evidence-v2;rh:8,0.2,50"
        );
    }

    #[test]
    fn only_rejects_unknown_detectors() {
        let err = DetectorConfig::only("record_high,zscore").unwrap_err();
        assert!(err.to_string().contains("`zscore` is not a detector"));
        assert_eq!(
            DetectorConfig::only(" ").unwrap(),
            DetectorConfig::default()
        );
    }

    #[test]
    fn config_reads_partial_json() {
        let cfg: DetectorConfig =
            serde_json::from_str(r#"{"year_over_year": {"min_ratio": 5}}"#).unwrap();
        assert_eq!(cfg.year_over_year.min_ratio, 5.0);
        assert_eq!(cfg.year_over_year.min_value, 50);
        assert_eq!(cfg.record_high, RecordHighConfig::default());
    }
}
