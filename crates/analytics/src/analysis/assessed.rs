//! From the detectors' rows of many series to what the service keeps per series: the
//! assessments (each marked live or history) and the chart bands. Per series and
//! independent, so it runs on every core like the detectors do; only Benjamini–Hochberg
//! looks across series and stays serial.

use borderwatch_model::{Band, Period};
use rayon::prelude::*;

use super::config::Detector;
use super::decide::{Assessment, assess};
use super::evaluate::Evaluation;
use crate::aggregate::SeriesFrame;
use crate::alert::live_periods;

/// One series after [`assess_frames`]: an [`Assessment`] per evaluated period, `live` set
/// where the period is at the series' live edge, and the bands ([`bands`]) of those periods.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesAssessment {
    pub assessments: Vec<Assessment>,
    pub bands: Vec<Band>,
}

/// [`assess`], the live edge ([`live_periods`] of the periods each job asked for, within
/// `live_window`) and [`bands`] for every job of
/// [`evaluate_frames`](super::evaluate_frames), on every core (rayon), in job order.
/// `evaluations[i]` are the rows of `jobs[i]`. Call it from a blocking context.
pub fn assess_frames(
    jobs: &[(&SeriesFrame, Vec<Period>)],
    evaluations: &[Vec<Evaluation>],
    live_window: usize,
) -> Vec<SeriesAssessment> {
    jobs.par_iter()
        .zip(evaluations)
        .map(|((frame, periods), rows)| assess_one(frame, periods, rows, live_window))
        .collect()
}

fn assess_one(
    frame: &SeriesFrame,
    periods: &[Period],
    rows: &[Evaluation],
    live_window: usize,
) -> SeriesAssessment {
    let all: Vec<Period> = frame.points.iter().map(|p| p.0).collect();
    let live = live_periods(&all, periods, live_window);
    let mut assessments = assess(frame, rows);
    for a in &mut assessments {
        a.live = live.contains(&a.period);
    }
    SeriesAssessment {
        assessments,
        bands: bands(rows),
    }
}

/// The statistical detectors whose expected value and upper bound a chart draws, in order of
/// preference: the first that has both for a period gives that period's band.
const BAND_DETECTORS: [Detector; 4] = [
    Detector::Farrington,
    Detector::EarsC2,
    Detector::EarsC1,
    Detector::EarsC3,
];

/// One band per evaluated period that a statistical detector could bound. `rows` are one
/// series' rows as [`evaluate_all`](super::evaluate_all) gives them, a period's rows next to
/// each other, so each period looks only at its own few rows (linear in `rows`, not
/// periods × rows).
pub fn bands(rows: &[Evaluation]) -> Vec<Band> {
    rows.chunk_by(|a, b| a.period == b.period)
        .filter_map(band_of_period)
        .collect()
}

/// The band of one period's rows: the first of [`BAND_DETECTORS`] with a finite expected
/// value and upper bound.
fn band_of_period(rows: &[Evaluation]) -> Option<Band> {
    BAND_DETECTORS.iter().find_map(|&d| {
        let r = rows.iter().find(|r| r.detector == d)?;
        match (r.expected, r.upper_bound) {
            (Some(expected), Some(upper_bound))
                if expected.is_finite() && upper_bound.is_finite() =>
            {
                Some(Band {
                    period: r.period,
                    detector: d.name().to_string(),
                    expected,
                    upper_bound,
                })
            }
            _ => None,
        }
    })
}
