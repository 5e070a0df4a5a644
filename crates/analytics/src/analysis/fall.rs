//! `fall`: significant drops (a border closing, a route shutting), the mirror of farrington.
//!
//! It reads farrington's fit of the same period (so it runs where farrington can: a monthly
//! or quarterly series with `b` years of history) and tests the lower tail: a period alarms
//! when its count is below the fit's lower bound and the model gives a count at most that
//! small probability `p_lower`. Those p-values are a Benjamini–Hochberg family of their own
//! (falls do not cost surges power), and a fall that survives is a finding of its own kind
//! (`direction: fall`), scored and calibrated like surges (`alert::fall_score`).

use borderwatch_model::{Baseline, Finding, Period};

use super::config::{Detector, FallSettings};
use super::evaluate::{Evaluation, count, p_text};
use crate::aggregate::SeriesFrame;
use crate::surveillance::farrington::FarringtonPoint;

/// One row per wanted period: the fall verdict of farrington's fit `fits[n]`.
pub(super) fn fall_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    fits: &[Option<FarringtonPoint>],
    cfg: &FallSettings,
) -> Vec<Evaluation> {
    wanted
        .iter()
        .zip(fits)
        .map(|(&(period, i), pt)| {
            let value = frame.points[i].1;
            let quiet = Evaluation::quiet(Detector::Fall, period, value);
            let Some(pt) = pt else {
                return quiet;
            };
            let (Some(expected), Some(lower)) = (pt.expected, pt.lower_bound) else {
                return quiet;
            };
            // farrington computes the lower tail only below the lower bound; above it a fall
            // cannot alarm, and its p-value counts as 1 in the family (as `assess` counts
            // every period that did not alarm).
            let p = pt.p_lower.unwrap_or(1.0);
            if !(expected.is_finite() && lower.is_finite() && p.is_finite()) {
                return quiet;
            }
            let tested = expected >= cfg.min_expected;
            let alarm = tested && (value as f64) < lower;
            let finding = alarm.then(|| {
                let since = lowest_since(frame, i);
                let mut message = format!(
                    "{} the expected {} (lower bound {}{})",
                    below(value, lower),
                    count(expected),
                    count(lower),
                    p_text(Some(p))
                );
                match &since {
                    Some(b) => message.push_str(&format!(
                        "; the lowest since {} ({})",
                        b.period,
                        count(b.value)
                    )),
                    None => message.push_str(&format!(
                        "; the lowest on record (since {})",
                        frame.points[0].0
                    )),
                }
                Finding {
                    detector: Detector::Fall.name().into(),
                    expected: Some(expected),
                    upper_bound: None,
                    p_value: Some(p),
                    message,
                    baseline: since,
                }
            });
            Evaluation {
                expected: Some(expected),
                upper_bound: Some(lower),
                alarm,
                // Untested periods (expected below `min_expected`) stay out of the family.
                p_value: tested.then_some(p),
                finding,
                ..quiet
            }
        })
        .collect()
}

fn below(value: u64, lower: f64) -> &'static str {
    if (value as f64) <= lower / 2.0 {
        "far below"
    } else {
        "below"
    }
}

/// The latest earlier period of the series with a figure at most the one at position `i`:
/// "the lowest since". `None`: lower than every earlier figure (a record low).
pub(crate) fn lowest_since(frame: &SeriesFrame, i: usize) -> Option<Baseline> {
    let value = frame.points[i].1;
    frame.points[..i]
        .iter()
        .rev()
        .find(|p| p.1 <= value)
        .map(|&(period, v)| Baseline {
            period,
            value: v as f64,
        })
}
