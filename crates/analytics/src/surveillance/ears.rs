//! EARS C1, C2 and C3 after R `surveillance::earsC` (1.26.0): a bound from the mean and standard
//! deviation of the last few periods, for series with little history. Pure functions over counts;
//! bounds and alarms reproduce R's, quirks included (below; docs/detection.md, "EARS C1, C2, C3").

use std::ops::Range;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// Which EARS variant to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarsMethod {
    /// Baseline: the `baseline` periods just before t.
    #[default]
    C1,
    /// Baseline: the `baseline` periods before t − 2 (a two-period guard band).
    C2,
    /// C2 plus the exceedances of the two previous periods.
    C3,
}

impl EarsMethod {
    /// How many periods before the first tested one the method reads (R's `maxLag`).
    pub fn max_lag(self, baseline: usize) -> usize {
        match self {
            EarsMethod::C1 => baseline,
            EarsMethod::C2 => baseline + 2,
            EarsMethod::C3 => baseline + 4,
        }
    }

    /// R's `alpha` when the control list omits it: 0.001 for C1/C2, 0.025 for C3.
    ///
    /// R quirk: `earsC(sts)` called with no control list at all uses 0.001 for every method
    /// (the default of the `control` argument). To reproduce that for C3, set `alpha` explicitly.
    pub fn default_alpha(self) -> f64 {
        match self {
            EarsMethod::C1 | EarsMethod::C2 => 0.001,
            EarsMethod::C3 => 0.025,
        }
    }
}

/// Settings of [`ears_c`], named as in R's control list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EarsConfig {
    /// The variant.
    pub method: EarsMethod,
    /// Periods in the baseline window (R's `baseline`, at least 3).
    pub baseline: usize,
    /// Floor for the standard deviation (R's `minSigma`, at least 0).
    pub min_sigma: f64,
    /// False-alarm probability; `None` takes [`EarsMethod::default_alpha`].
    pub alpha: Option<f64>,
}

impl Default for EarsConfig {
    fn default() -> Self {
        EarsConfig {
            method: EarsMethod::C1,
            baseline: 7,
            min_sigma: 0.0,
            alpha: None,
        }
    }
}

impl EarsConfig {
    /// The α in use: the configured one, or the method's default.
    pub fn effective_alpha(&self) -> f64 {
        self.alpha.unwrap_or_else(|| self.method.default_alpha())
    }
}

/// The outcome for one tested period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarsPoint {
    /// Position of the period in the input slice (0-based).
    pub index: usize,
    /// R's `upperbound`. NaN where R gives NA (see [`ears_c`]).
    pub upper_bound: f64,
    /// R's `alarm`: observed > upper bound (false where the bound is NaN; R gives NA).
    pub alarm: bool,
    /// Mean of the baseline window of this period (for C3, its C2 window).
    pub expected: f64,
    /// The standardised statistic: (y − ȳ) / max(s, min_sigma) for C1/C2; for C3 the sum of
    /// max(0, C2stat − 1) over the two previous periods (see [`ears_c`] for why).
    pub statistic: f64,
    /// One-sided standard-normal p-value of `statistic`, P(Z > statistic); `None` where the
    /// statistic is undefined (0/0).
    pub p_value: Option<f64>,
}

/// Why [`ears_c`] refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EarsError {
    /// R: "Minimum baseline to use is 3."
    #[error("the EARS baseline must be at least 3 periods, got {0}")]
    BaselineTooShort(usize),
    /// R: "The minimum sigma parameter (minSigma) needs to be positive".
    #[error("min_sigma must be a finite number >= 0, got {0}")]
    InvalidMinSigma(f64),
    /// α outside (0, 1).
    #[error("alpha must lie strictly between 0 and 1, got {0}")]
    InvalidAlpha(f64),
    /// R: "The vector of observed is too short!": the first tested period needs `needed`
    /// earlier periods.
    #[error(
        "series too short for EARS {method:?}: period {first} is tested but {needed} earlier \
         periods are needed (series length {len}); start the range later or lower the baseline"
    )]
    TooShort {
        method: EarsMethod,
        first: usize,
        needed: usize,
        len: usize,
    },
    /// The range reaches past the end of the series.
    #[error("range {start}..{end} reaches past the end of the series (length {len})")]
    RangeOutOfBounds {
        start: usize,
        end: usize,
        len: usize,
    },
    /// A count the method reads is NaN or infinite.
    #[error("count at index {index} is not finite ({value}); EARS needs every count it reads")]
    NonFiniteCount { index: usize, value: f64 },
}

/// EARS C1/C2/C3 for the periods in `range` (0-based indices into `counts`; `None` takes R's
/// default, every period from `max_lag` on).
///
/// For each t, with ȳ and s the mean and sample standard deviation (n − 1) of the baseline
/// window, σ = max(s, min_sigma) and z = qnorm(1 − α):
/// - C1: window `t−B..t`; U = ȳ + z·σ.
/// - C2: window `t−B−2..t−2`; U = ȳ + z·σ.
/// - C3: with C2stat(u) = (y_u − ȳ_u)/σ_u on C2 windows and
///   L = max(0, C2stat(t−2) − 1) + max(0, C2stat(t−1) − 1): U = max(0, y_t + σ_t·(z − L)).
///
/// Alarm = y_t > U. Note on C3 (R's code, reproduced here): the bound is built on y_t itself,
/// so the alarm does not depend on C2stat(t): when σ_t > 0 it fires iff L > z and y_t > 0. The
/// "C2stat(t) + L > z" reading of EARS C3 gives different alarms (6 of 105 epysurv weeks), so
/// `statistic` for C3 is L, the quantity R's alarm actually tests.
///
/// Degenerate windows (s = 0 and min_sigma = 0, e.g. a constant baseline): C1/C2 give U = ȳ, so
/// any count above the flat baseline alarms (statistic ±∞, p-value 0 or 1; 0/0 gives `None`).
/// For C3, σ_t = 0 gives U = y_t (never an alarm), and a lag with 0/0 makes U NaN, as R's NA.
/// Set `min_sigma > 0` to avoid both.
pub fn ears_c(
    counts: &[f64],
    range: Option<Range<usize>>,
    cfg: &EarsConfig,
) -> Result<Vec<EarsPoint>, EarsError> {
    let b = cfg.baseline;
    if b < 3 {
        return Err(EarsError::BaselineTooShort(b));
    }
    if !(cfg.min_sigma.is_finite() && cfg.min_sigma >= 0.0) {
        return Err(EarsError::InvalidMinSigma(cfg.min_sigma));
    }
    let alpha = cfg.effective_alpha();
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(EarsError::InvalidAlpha(alpha));
    }
    let method = cfg.method;
    let max_lag = method.max_lag(b);
    let len = counts.len();
    let range = match range {
        Some(r) => r,
        None => {
            // R's default `seq(baseline + 1, n)` fails on a series this short.
            if len <= max_lag {
                return Err(EarsError::TooShort {
                    method,
                    first: max_lag,
                    needed: max_lag,
                    len,
                });
            }
            max_lag..len
        }
    };
    if range.is_empty() {
        return Ok(Vec::new());
    }
    if range.end > len {
        return Err(EarsError::RangeOutOfBounds {
            start: range.start,
            end: range.end,
            len,
        });
    }
    if range.start < max_lag {
        return Err(EarsError::TooShort {
            method,
            first: range.start,
            needed: max_lag,
            len,
        });
    }
    let read = range.start - max_lag..range.end;
    if let Some((index, &value)) = counts[read.clone()]
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        return Err(EarsError::NonFiniteCount {
            index: read.start + index,
            value,
        });
    }

    let z = Normal::standard().inverse_cdf(1.0 - alpha);
    let min_sigma = cfg.min_sigma;
    let window = |t: usize, guard: usize| {
        let (mean, sd) = mean_sd(&counts[t - guard - b..t - guard]);
        (mean, sd.max(min_sigma))
    };
    let points = range
        .map(|t| {
            let y = counts[t];
            let (expected, upper_bound, statistic) = match method {
                EarsMethod::C1 | EarsMethod::C2 => {
                    let guard = if method == EarsMethod::C1 { 0 } else { 2 };
                    let (mean, sigma) = window(t, guard);
                    (mean, mean + z * sigma, (y - mean) / sigma)
                }
                EarsMethod::C3 => {
                    let c2stat = |u: usize| {
                        let (mean, sigma) = window(u, 2);
                        (counts[u] - mean) / sigma
                    };
                    let lags = r_pmax(0.0, c2stat(t - 2) - 1.0) + r_pmax(0.0, c2stat(t - 1) - 1.0);
                    let (mean, sigma) = window(t, 2);
                    (mean, r_pmax(0.0, y + sigma * (z - lags)), lags)
                }
            };
            EarsPoint {
                index: t,
                upper_bound,
                alarm: y > upper_bound,
                expected,
                statistic,
                p_value: upper_tail(statistic),
            }
        })
        .collect();
    Ok(points)
}

/// Mean and sample standard deviation (n − 1), two-pass like R's `mean`/`sd`.
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let ss = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// R's `pmax` for two scalars: NaN (NA) wins, unlike `f64::max`.
fn r_pmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// P(Z > x) for a standard normal; `None` for NaN.
fn upper_tail(x: f64) -> Option<f64> {
    if x.is_nan() {
        None
    } else if x == f64::INFINITY {
        Some(0.0)
    } else if x == f64::NEG_INFINITY {
        Some(1.0)
    } else {
        Some(Normal::standard().sf(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(method: EarsMethod) -> EarsConfig {
        EarsConfig {
            method,
            ..EarsConfig::default()
        }
    }

    #[test]
    fn default_range_starts_after_max_lag() {
        let counts: Vec<f64> = (0..20).map(|i| f64::from(i % 5)).collect();
        for (method, first) in [
            (EarsMethod::C1, 7),
            (EarsMethod::C2, 9),
            (EarsMethod::C3, 11),
        ] {
            let out = ears_c(&counts, None, &cfg(method)).unwrap();
            assert_eq!(out.first().unwrap().index, first, "{method:?}");
            assert_eq!(out.len(), 20 - first, "{method:?}");
        }
    }

    #[test]
    fn c1_bound_is_mean_plus_z_sd() {
        let counts = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 30.0];
        let out = ears_c(&counts, None, &cfg(EarsMethod::C1)).unwrap();
        let z = Normal::standard().inverse_cdf(0.999);
        let sd = (28.0f64 / 6.0).sqrt();
        assert_eq!(out.len(), 1);
        assert!((out[0].upper_bound - (4.0 + z * sd)).abs() < 1e-12);
        assert_eq!(out[0].expected, 4.0);
        assert!(out[0].alarm);
        assert!(out[0].p_value.unwrap() < 0.001);
    }

    #[test]
    fn all_zeros_never_alarm_and_do_not_panic() {
        let counts = [0.0; 30];
        for method in [EarsMethod::C1, EarsMethod::C2] {
            let out = ears_c(&counts, None, &cfg(method)).unwrap();
            assert!(out.iter().all(|p| p.upper_bound == 0.0 && !p.alarm));
            // 0/0: no p-value.
            assert!(out.iter().all(|p| p.p_value.is_none()));
        }
        // C3: the lag statistics are 0/0, so R's bound is NA; here NaN and no alarm.
        let out = ears_c(&counts, None, &cfg(EarsMethod::C3)).unwrap();
        assert!(out.iter().all(|p| p.upper_bound.is_nan() && !p.alarm));
    }

    #[test]
    fn constant_baseline_degenerates_to_the_mean() {
        // s = 0 and min_sigma = 0: U = ȳ, so any count above the flat baseline alarms.
        let mut counts = vec![5.0; 10];
        counts.push(6.0);
        counts.push(5.0);
        let out = ears_c(&counts, Some(10..12), &cfg(EarsMethod::C1)).unwrap();
        assert_eq!(out[0].upper_bound, 5.0);
        assert!(out[0].alarm);
        assert_eq!(out[0].statistic, f64::INFINITY);
        assert_eq!(out[0].p_value, Some(0.0));
        // The next window holds the 6, so it is no longer degenerate.
        assert!(out[1].upper_bound > 5.0 && !out[1].alarm);
    }

    #[test]
    fn min_sigma_floors_a_constant_baseline() {
        let counts = [5.0; 8];
        let c = EarsConfig {
            min_sigma: 1.0,
            ..cfg(EarsMethod::C1)
        };
        let out = ears_c(&counts, None, &c).unwrap();
        let z = Normal::standard().inverse_cdf(0.999);
        assert!((out[0].upper_bound - (5.0 + z)).abs() < 1e-12);
        assert_eq!(out[0].p_value, Some(0.5));
    }

    #[test]
    fn c3_constant_series_bound_is_nan() {
        // Every window has s = 0, so each lag statistic is 0/0 and the bound is NaN (R: NA):
        // nothing alarms and nothing panics.
        let out = ears_c(&[3.0; 15], None, &cfg(EarsMethod::C3)).unwrap();
        assert!(out.iter().all(|p| p.upper_bound.is_nan() && !p.alarm));
    }

    #[test]
    fn c3_flat_current_window_bounds_at_the_observation() {
        // The C2 window of t = 11 (indices 2..9) is flat, those of t−1 and t−2 hold the 9 at
        // index 1: σ_t = 0 with finite lags, so U = y_t and even 50 does not alarm (R does the same).
        let mut counts = vec![2.0; 11];
        counts[1] = 9.0;
        counts.push(50.0);
        let out = ears_c(&counts, Some(11..12), &cfg(EarsMethod::C3)).unwrap();
        assert!(out[0].statistic.is_finite());
        assert_eq!(out[0].upper_bound, 50.0);
        assert!(!out[0].alarm);
    }

    #[test]
    fn c3_alarm_follows_the_lag_sum() {
        // Two large counts at t−2 and t−1 push L above z, so t alarms if y_t > 0.
        let mut counts: Vec<f64> = (0..13).map(|i| f64::from(i % 3 + 1)).collect();
        counts[11] = 40.0;
        counts[12] = 40.0;
        counts.push(1.0);
        let c = EarsConfig {
            alpha: Some(0.001),
            ..cfg(EarsMethod::C3)
        };
        let out = ears_c(&counts, Some(13..14), &c).unwrap();
        let z = Normal::standard().inverse_cdf(0.999);
        assert!(out[0].statistic > z);
        assert!(out[0].alarm);
    }

    #[test]
    fn default_alpha_depends_on_method() {
        assert_eq!(cfg(EarsMethod::C1).effective_alpha(), 0.001);
        assert_eq!(cfg(EarsMethod::C2).effective_alpha(), 0.001);
        assert_eq!(cfg(EarsMethod::C3).effective_alpha(), 0.025);
    }

    #[test]
    fn baseline_below_three_is_an_error() {
        let c = EarsConfig {
            baseline: 2,
            ..EarsConfig::default()
        };
        assert_eq!(
            ears_c(&[1.0; 10], None, &c),
            Err(EarsError::BaselineTooShort(2))
        );
    }

    #[test]
    fn short_series_is_an_error() {
        for method in [EarsMethod::C1, EarsMethod::C2, EarsMethod::C3] {
            let n = method.max_lag(7);
            let err = ears_c(&vec![1.0; n], None, &cfg(method)).unwrap_err();
            assert!(matches!(err, EarsError::TooShort { .. }), "{method:?}");
            // One more period is enough.
            assert_eq!(
                ears_c(&vec![1.0; n + 1], None, &cfg(method)).unwrap().len(),
                1
            );
        }
        let err = ears_c(&[1.0; 20], Some(3..20), &cfg(EarsMethod::C1)).unwrap_err();
        assert!(matches!(
            err,
            EarsError::TooShort {
                first: 3,
                needed: 7,
                ..
            }
        ));
    }

    #[test]
    fn invalid_settings_and_inputs_are_errors() {
        let counts = [1.0; 20];
        let bad_sigma = EarsConfig {
            min_sigma: -2.0,
            ..EarsConfig::default()
        };
        assert!(matches!(
            ears_c(&counts, None, &bad_sigma),
            Err(EarsError::InvalidMinSigma(_))
        ));
        let bad_alpha = EarsConfig {
            alpha: Some(1.0),
            ..EarsConfig::default()
        };
        assert!(matches!(
            ears_c(&counts, None, &bad_alpha),
            Err(EarsError::InvalidAlpha(_))
        ));
        assert!(matches!(
            ears_c(&counts, Some(10..21), &EarsConfig::default()),
            Err(EarsError::RangeOutOfBounds { .. })
        ));
        let mut nan = counts;
        nan[5] = f64::NAN;
        assert!(matches!(
            ears_c(&nan, None, &EarsConfig::default()),
            Err(EarsError::NonFiniteCount { index: 5, .. })
        ));
        assert_eq!(
            ears_c(&counts, Some(10..10), &EarsConfig::default()),
            Ok(vec![])
        );
    }

    #[test]
    fn config_serde_uses_snake_case_and_defaults() {
        let c: EarsConfig = serde_json::from_str(r#"{"method":"c3","alpha":0.01}"#).unwrap();
        assert_eq!(c.method, EarsMethod::C3);
        assert_eq!(c.baseline, 7);
        assert_eq!(c.effective_alpha(), 0.01);
    }
}
