//! Evaluation: runs every enabled detector over the requested periods of a series
//! ([`evaluate_all`], [`evaluate_frames`]) and writes one [`Evaluation`] row per (period,
//! detector), with the long-run guard, the alarm-free baselines and the finding sentences.

use borderwatch_model::{Finding, Freq, Period, thousands};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::config::{AnalysisConfig, Detector};
use crate::aggregate::SeriesFrame;
use crate::detect::{DetectorConfig, exceeds_prior_year, record_high, year_over_year};
use crate::surveillance::cusum::{CusumConfig, cusum};
use crate::surveillance::ears::{EarsConfig, EarsMethod, ears_c};
use crate::surveillance::farrington::{FarringtonPoint, farrington_flexible};

/// What one detector said about one period of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub detector: Detector,
    pub period: Period,
    pub value: u64,
    /// The expected count (`None`: too little history, no fit, or an evidence rule that did
    /// not fire).
    pub expected: Option<f64>,
    /// The threshold the value was tested against.
    pub upper_bound: Option<f64>,
    /// The detector's alarm; for statistical detectors also `value >= min_value` and the
    /// long-run guard (see [`AnalysisConfig::long_run_guard`]).
    pub alarm: bool,
    /// One-sided p-value of the statistical detectors that give one (`farrington`, `ears_*`).
    pub p_value: Option<f64>,
    /// The finding a surge event would carry, when the detector alarmed.
    pub finding: Option<Finding>,
}

impl Evaluation {
    pub(super) fn quiet(detector: Detector, period: Period, value: u64) -> Evaluation {
        Evaluation {
            detector,
            period,
            value,
            expected: None,
            upper_bound: None,
            alarm: false,
            p_value: None,
            finding: None,
        }
    }
}

/// Runs every enabled detector on each requested period of `frame` that the series has a
/// figure for (others are skipped; duplicates tested once) and returns one row per (period,
/// detector), by period, then in [`Detector::ALL`] order. Never panics on short, sparse,
/// all-zero or gappy series: a detector without enough history gives a quiet row.
pub fn evaluate_all(
    frame: &SeriesFrame,
    periods: &[Period],
    cfg: &AnalysisConfig,
) -> Vec<Evaluation> {
    let mut wanted: Vec<(Period, usize)> = periods
        .iter()
        .filter_map(|&p| frame.position(p).map(|i| (p, i)))
        .collect();
    wanted.sort_unstable_by_key(|&(_, i)| i);
    wanted.dedup();
    if wanted.is_empty() {
        return Vec::new();
    }
    let evidence = cfg.evidence_config();
    let enabled = cfg.enabled();
    let levels = if cfg.long_run_guard && enabled.iter().any(|d| !d.is_evidence()) {
        long_run_levels(frame, wanted.last().map_or(0, |&(_, i)| i))
    } else {
        Vec::new()
    };
    let guard = Guard {
        min_value: cfg.min_value,
        levels: &levels,
    };
    // One farrington fit per period serves both `farrington` (upper tail) and `fall` (lower).
    let fits = if enabled
        .iter()
        .any(|d| matches!(d, Detector::Farrington | Detector::Fall))
    {
        farrington_points(frame, &wanted, cfg)
    } else {
        Vec::new()
    };
    let columns: Vec<Vec<Evaluation>> = enabled
        .into_iter()
        .map(|d| match d {
            Detector::ExceedsPriorYear | Detector::RecordHigh | Detector::YearOverYear => {
                evidence_rows(frame, &wanted, d, &evidence)
            }
            Detector::Farrington => farrington_rows(frame, &wanted, &fits, &guard),
            Detector::Fall => super::fall::fall_rows(frame, &wanted, &fits, &cfg.fall),
            Detector::EarsC1 | Detector::EarsC2 | Detector::EarsC3 => {
                ears_rows(frame, &wanted, d, cfg, &guard)
            }
            Detector::Cusum => cusum_rows(frame, &wanted, cfg, &guard),
        })
        .collect();
    let mut out = Vec::with_capacity(wanted.len() * columns.len());
    for i in 0..wanted.len() {
        for column in &columns {
            out.push(column[i].clone());
        }
    }
    out
}

/// [`evaluate_all`] for many series at once, on every core (rayon). Call it from a blocking
/// context (`spawn_blocking`) inside async code.
pub fn evaluate_frames(
    jobs: &[(&SeriesFrame, Vec<Period>)],
    cfg: &AnalysisConfig,
) -> Vec<Vec<Evaluation>> {
    jobs.par_iter()
        .map(|(frame, periods)| evaluate_all(frame, periods, cfg))
        .collect()
}

/// The floors a statistical alarm must also clear: `min_value` and the long-run level.
#[derive(Debug)]
struct Guard<'a> {
    min_value: u64,
    /// Per position in `points`: the long-run level of that period's season (empty: no guard).
    levels: &'a [Option<f64>],
}

impl Guard<'_> {
    fn passes(&self, i: usize, value: u64, expected: Option<f64>, upper: Option<f64>) -> bool {
        if value < self.min_value {
            return false;
        }
        let Some(level) = self.levels.get(i).copied().flatten() else {
            return true;
        };
        let margin = match (expected, upper) {
            (Some(e), Some(u)) if e > 0.0 && u.is_finite() => (u / e).max(1.0),
            _ => 1.0,
        };
        value as f64 > level * margin
    }
}

/// For each position up to `last`: the median of every earlier figure of the same quarter or
/// month, or of every earlier figure when the season has fewer than two; `None` at the start.
fn long_run_levels(frame: &SeriesFrame, last: usize) -> Vec<Option<f64>> {
    let mut by_season: Vec<Vec<u64>> = vec![Vec::new(); 13];
    let mut all: Vec<u64> = Vec::new();
    let median = |v: &[u64]| -> f64 {
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2] as f64
        } else {
            (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
        }
    };
    let mut out = Vec::with_capacity(last + 1);
    for &(period, value) in frame.points.iter().take(last + 1) {
        let season = &mut by_season[usize::from(period.sub()).min(12)];
        out.push(if season.len() >= 2 {
            Some(median(season))
        } else if !all.is_empty() {
            Some(median(&all))
        } else {
            None
        });
        let at = season.partition_point(|&x| x < value);
        season.insert(at, value);
        let at = all.partition_point(|&x| x < value);
        all.insert(at, value);
    }
    out
}

fn evidence_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    d: Detector,
    cfg: &DetectorConfig,
) -> Vec<Evaluation> {
    wanted
        .iter()
        .map(|&(period, i)| {
            let value = frame.points[i].1;
            let finding = match d {
                Detector::ExceedsPriorYear => {
                    exceeds_prior_year(frame, period, &cfg.exceeds_prior_year)
                }
                Detector::RecordHigh => record_high(frame, period, &cfg.record_high),
                _ => year_over_year(frame, period, &cfg.year_over_year),
            };
            match finding {
                Some(f) => Evaluation {
                    expected: f.expected,
                    upper_bound: f.upper_bound,
                    alarm: true,
                    finding: Some(f),
                    ..Evaluation::quiet(d, period, value)
                },
                None => Evaluation::quiet(d, period, value),
            }
        })
        .collect()
}

fn quiet_rows(frame: &SeriesFrame, wanted: &[(Period, usize)], d: Detector) -> Vec<Evaluation> {
    wanted
        .iter()
        .map(|&(p, i)| Evaluation::quiet(d, p, frame.points[i].1))
        .collect()
}

/// farrington's fit of each wanted period: `None` where it cannot run (a yearly series, too
/// little history, a GLM that cannot be fitted).
pub(super) fn farrington_points(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    cfg: &AnalysisConfig,
) -> Vec<Option<FarringtonPoint>> {
    let Some(fc) = cfg.farrington.for_freq(frame.freq) else {
        return vec![None; wanted.len()];
    };
    // The dense series from its first figure: missing periods are `None` (R's NA).
    let first = frame.points[0].0.index();
    let last = wanted.last().map_or(0, |&(p, _)| p.index());
    let mut counts = vec![None; (last - first + 1) as usize];
    for &(p, c) in frame.points.iter().take_while(|(p, _)| p.index() <= last) {
        counts[(p.index() - first) as usize] = Some(c);
    }
    let freq = frame.freq.per_year() as usize;
    let start = freq * fc.b + fc.w;
    wanted
        .iter()
        .map(|&(period, _)| {
            let k = (period.index() - first) as usize;
            if k < start {
                return None;
            }
            // One call per period: an error (a GLM that cannot be fitted) costs that period
            // only, and later figures never reach the fit.
            farrington_flexible(&counts[..=k], freq, Some(k..k + 1), fc)
                .ok()?
                .into_iter()
                .next()
        })
        .collect()
}

fn farrington_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    fits: &[Option<FarringtonPoint>],
    guard: &Guard<'_>,
) -> Vec<Evaluation> {
    wanted
        .iter()
        .zip(fits)
        .map(|(&(period, i), pt)| {
            let value = frame.points[i].1;
            let quiet = Evaluation::quiet(Detector::Farrington, period, value);
            let Some(pt) = pt else {
                return quiet;
            };
            let alarm = pt.alarm && guard.passes(i, value, pt.expected, pt.upper_bound);
            let finding = match (alarm, pt.expected, pt.upper_bound) {
                (true, Some(expected), Some(upper)) => Some(Finding {
                    detector: Detector::Farrington.name().into(),
                    expected: Some(expected),
                    upper_bound: Some(upper),
                    p_value: pt.p_value,
                    message: format!(
                        "{} the expected {} (upper bound {}{})",
                        above(value, upper),
                        count(expected),
                        count(upper),
                        p_text(pt.p_value)
                    ),
                    baseline: None,
                }),
                _ => None,
            };
            Evaluation {
                expected: pt.expected,
                upper_bound: pt.upper_bound,
                alarm: finding.is_some(),
                p_value: pt.p_value.filter(|p| !p.is_nan()),
                finding,
                ..quiet
            }
        })
        .collect()
}

/// Keeps the history a baseline may read: every figure but the alarms being left out.
#[derive(Debug)]
struct CleanHistory {
    /// (position in `points`, value) of the periods a baseline may use.
    kept: Vec<(usize, f64)>,
    excluded_in_a_row: usize,
    cap: usize,
    exclude: bool,
}

impl CleanHistory {
    fn new(exclude: bool, cap: usize) -> CleanHistory {
        CleanHistory {
            kept: Vec::new(),
            excluded_in_a_row: 0,
            cap,
            exclude,
        }
    }

    /// Records the outcome at position `i`: an alarm is left out, up to `cap` in a row.
    fn record(&mut self, i: usize, value: f64, alarm: bool) {
        if !alarm {
            self.excluded_in_a_row = 0;
        } else if self.exclude && self.excluded_in_a_row < self.cap {
            self.excluded_in_a_row += 1;
            return;
        }
        self.kept.push((i, value));
    }
}

fn ears_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    d: Detector,
    cfg: &AnalysisConfig,
    guard: &Guard<'_>,
) -> Vec<Evaluation> {
    let Some(method) = d.ears_method().filter(|_| frame.freq != Freq::Year) else {
        return quiet_rows(frame, wanted, d);
    };
    let s = &cfg.ears;
    let ec = EarsConfig {
        method,
        baseline: s.baseline,
        min_sigma: s.min_sigma,
        alpha: s.alpha,
    };
    let lag = method.max_lag(s.baseline);
    let noun = frame.freq.noun();
    let mut history = CleanHistory::new(s.exclude_alarms, s.baseline / 2);
    let mut buf = Vec::with_capacity(lag + 1);
    let mut out = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    let last = wanted.last().map_or(0, |&(_, i)| i);
    for (i, &(period, value)) in frame.points[..=last].iter().enumerate() {
        let mut row = Evaluation::quiet(d, period, value);
        let kept = &history.kept;
        if kept.len() >= lag && s.baseline >= 3 {
            buf.clear();
            buf.extend(kept[kept.len() - lag..].iter().map(|&(_, v)| v));
            buf.push(value as f64);
            if let Ok(points) = ears_c(&buf, Some(lag..lag + 1), &ec)
                && let Some(pt) = points.first()
            {
                let (expected, upper) = (finite(pt.expected), finite(pt.upper_bound));
                let alarm = pt.alarm && guard.passes(i, value, expected, upper);
                row.expected = expected;
                row.upper_bound = upper;
                row.p_value = ears_p_value(method, pt.statistic, s.baseline);
                if let (true, Some(e), Some(u)) = (alarm, expected, upper) {
                    row.alarm = true;
                    row.finding = Some(Finding {
                        detector: d.name().into(),
                        expected: Some(e),
                        upper_bound: Some(u),
                        p_value: row.p_value,
                        message: format!(
                            "{} the average of {} earlier {noun}s ({}; upper bound {}{})",
                            above(value, u),
                            s.baseline,
                            count(e),
                            count(u),
                            p_text(row.p_value)
                        ),
                        baseline: None,
                    });
                }
            }
        }
        history.record(i, value as f64, row.alarm);
        if next.peek().is_some_and(|&&(_, j)| j == i) {
            next.next();
            out.push(row);
        }
    }
    out
}

fn cusum_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    cfg: &AnalysisConfig,
    guard: &Guard<'_>,
) -> Vec<Evaluation> {
    if frame.freq == Freq::Year {
        return quiet_rows(frame, wanted, Detector::Cusum);
    }
    let s = &cfg.cusum;
    let cc = CusumConfig {
        k: s.k,
        h: s.h,
        ..CusumConfig::default()
    };
    let noun = frame.freq.noun();
    let mut history = CleanHistory::new(s.exclude_alarms, s.reference / 2);
    let mut buf = Vec::with_capacity(s.reference + s.run);
    let mut out = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    let last = wanted.last().map_or(0, |&(_, i)| i);
    for (i, &(period, value)) in frame.points[..=last].iter().enumerate() {
        let mut row = Evaluation::quiet(Detector::Cusum, period, value);
        if s.run >= 1 && s.reference >= 1 && i + 1 >= s.run {
            let run_start = i + 1 - s.run;
            let kept = &history.kept;
            let end = kept.partition_point(|&(j, _)| j < run_start);
            if end >= s.reference {
                buf.clear();
                buf.extend(kept[end - s.reference..end].iter().map(|&(_, v)| v));
                buf.extend(frame.points[run_start..=i].iter().map(|&(_, c)| c as f64));
                if let Ok(points) = cusum(&buf, s.reference..buf.len(), &cc)
                    && let Some(pt) = points.last()
                {
                    row.expected = finite(pt.expected);
                    row.upper_bound = finite(pt.upper_bound);
                    let alarm = pt.alarm && guard.passes(i, value, row.expected, row.upper_bound);
                    if alarm && let Some(e) = row.expected {
                        row.alarm = true;
                        row.finding = Some(Finding {
                            detector: Detector::Cusum.name().into(),
                            expected: Some(e),
                            upper_bound: row.upper_bound,
                            p_value: None,
                            message: format!(
                                "a sustained rise over the average of {} earlier {noun}s ({})",
                                s.reference,
                                count(e)
                            ),
                            baseline: None,
                        });
                    }
                }
            }
        }
        history.record(i, value as f64, row.alarm);
        if next.peek().is_some_and(|&&(_, j)| j == i) {
            next.next();
            out.push(row);
        }
    }
    out
}

/// The p-value of an EARS C1 or C2 statistic z = (y − ȳ)/max(s, min_sigma), with ȳ and s
/// the mean and standard deviation of B baseline counts: P(T > z / √(1 + 1/B)) for a Student
/// t with B − 1 degrees of freedom, the exact prediction tail for normal counts (a larger
/// `min_sigma` only makes it conservative). `ears_c`'s own one-sided *normal* p-value treats s
/// as the true deviation; with B = 7 that understates the tail about tenfold at z = 3, and
/// across thousands of series false discoveries swamp Benjamini–Hochberg (150 quiet series
/// gave 56 "surges" in the test `decide_controls_false_discoveries_across_series`). `None` for
/// C3, whose statistic is the lags' excess (no such distribution), and for 0/0.
pub fn ears_p_value(method: EarsMethod, statistic: f64, baseline: usize) -> Option<f64> {
    if method == EarsMethod::C3 || statistic.is_nan() || baseline < 2 {
        return None;
    }
    if statistic == f64::INFINITY {
        return Some(0.0);
    }
    if statistic == f64::NEG_INFINITY {
        return Some(1.0);
    }
    let b = baseline as f64;
    let t = StudentsT::new(0.0, 1.0, b - 1.0).ok()?;
    Some(t.sf(statistic / (1.0 + 1.0 / b).sqrt()))
}

pub(super) fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// "far above" from twice the bound up, "above" below.
fn above(value: u64, upper: f64) -> &'static str {
    if value as f64 >= 2.0 * upper {
        "far above"
    } else {
        "above"
    }
}

/// A model count as a reader sees it: whole, with thousands separators.
pub(super) fn count(x: f64) -> String {
    thousands(x.max(0.0).round() as u64)
}

/// ", p < 0.001" or ", p = 0.012"; nothing without a p-value.
pub(super) fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => ", p < 0.001".into(),
        Some(p) if p.is_finite() => format!(", p = {p:.3}"),
        _ => String::new(),
    }
}
