//! CUSUM after R `surveillance::algo.cusum` (1.26.0): a one-sided cumulative sum of standardised
//! counts against an in-control mean estimated from the periods before the tested range. Pure
//! function over counts; statistic, bounds and alarms follow R's code (quirks noted below).

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The in-control mean m (R's `control$m`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CusumMean {
    /// R's `m = NULL`: the mean of every count before the range (the reference values).
    #[default]
    Reference,
    /// A known mean (R's numeric `m`).
    Fixed(f64),
}

/// How counts are standardised before summing (R's `control$trans`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CusumTrans {
    /// z = (x − m)/√m (R's "standard").
    #[default]
    Standard,
    /// z = (x − 3m + 2√(xm))/(2√m) (R's "rossi").
    Rossi,
    /// z = 3/2·(x^{2/3} − m^{2/3})/m^{1/6} (R's "anscombe").
    Anscombe,
    /// z = (x^{2/3} − (m^{2/3} − m^{−1/3}/9))/(2/3·m^{1/6}) (R's "anscombe2nd").
    Anscombe2nd,
    /// z = (x − m)/√(m + α·m²) (R's "pearsonNegBin"; R's default α is 0.1).
    PearsonNegBin { alpha: f64 },
    /// z = x (R's "none").
    #[serde(rename = "none")]
    Identity,
}

/// Settings of [`cusum`], named as in R's control list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CusumConfig {
    /// Reference value subtracted from each standardised count.
    pub k: f64,
    /// Decision boundary: alarm when C_t ≥ h.
    pub h: f64,
    /// The in-control mean.
    pub m: CusumMean,
    /// The standardisation.
    pub trans: CusumTrans,
    /// Restart the sum at 0 after each alarm (R's `reset`, default FALSE).
    pub reset: bool,
}

impl Default for CusumConfig {
    fn default() -> Self {
        CusumConfig {
            k: 1.04,
            h: 2.26,
            m: CusumMean::Reference,
            trans: CusumTrans::Standard,
            reset: false,
        }
    }
}

/// The outcome for one tested period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CusumPoint {
    /// Position of the period in the input slice (0-based).
    pub index: usize,
    /// C_t = max(0, C_{t−1} + z_t − k), the value compared with h. With `reset`, the sum the next
    /// period starts from is 0 after an alarm; this field keeps the value that alarmed (R's
    /// `survRes$cusum` holds the reset 0 instead).
    pub statistic: f64,
    /// R's `upperbound`: the smallest count at t that would have made C_t reach h, given
    /// C_{t−1} (rounded up to a whole count for the standard transform; never negative).
    /// R quirks kept: for `Identity` it is h − C_t, for `Anscombe2nd` it uses m^{1/3}/9 where the
    /// transform uses m^{−1/3}/9.
    pub upper_bound: f64,
    /// C_t ≥ h.
    pub alarm: bool,
    /// The in-control mean m.
    pub expected: f64,
}

/// Why [`cusum`] refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CusumError {
    /// The range reaches past the end of the series.
    #[error("range {start}..{end} reaches past the end of the series (length {len})")]
    RangeOutOfBounds {
        start: usize,
        end: usize,
        len: usize,
    },
    /// `CusumMean::Reference` with a range that starts at the first period.
    #[error(
        "no reference values: the range starts at period 0, so the in-control mean cannot be \
         estimated; start the range later or give a fixed mean"
    )]
    NoReference,
    /// The in-control mean is not a positive finite number (e.g. an all-zero history).
    #[error(
        "the in-control mean must be positive and finite, got {0}; an all-zero history cannot \
         standardise counts (give a fixed mean or use trans = none)"
    )]
    InvalidMean(f64),
    /// k, h or the negative-binomial α is negative or not finite.
    #[error("{name} must be a finite number >= 0, got {value}")]
    InvalidParameter { name: &'static str, value: f64 },
    /// A count is not finite, or negative where the transform takes a root.
    #[error("count at index {index} is {value}, which the {trans:?} transform cannot take")]
    InvalidCount {
        index: usize,
        value: f64,
        trans: CusumTrans,
    },
}

/// CUSUM over the periods in `range` (0-based indices into `counts`), as R's `algo.cusum`:
/// C_{start−1} = 0, C_t = max(0, C_{t−1} + z_t − k), alarm when C_t ≥ h. The mean m comes from
/// `counts[..range.start]` unless fixed. For R's `cusum(sts, control)` this is the same call with
/// `range` shifted to 0-based.
pub fn cusum(
    counts: &[f64],
    range: Range<usize>,
    cfg: &CusumConfig,
) -> Result<Vec<CusumPoint>, CusumError> {
    let len = counts.len();
    if range.end > len {
        return Err(CusumError::RangeOutOfBounds {
            start: range.start,
            end: range.end,
            len,
        });
    }
    for (name, value) in [("k", cfg.k), ("h", cfg.h)] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(CusumError::InvalidParameter { name, value });
        }
    }
    if let CusumTrans::PearsonNegBin { alpha } = cfg.trans
        && !(alpha.is_finite() && alpha >= 0.0)
    {
        return Err(CusumError::InvalidParameter {
            name: "alpha",
            value: alpha,
        });
    }
    if range.is_empty() {
        return Ok(Vec::new());
    }
    let m = match cfg.m {
        CusumMean::Fixed(m) => m,
        CusumMean::Reference => {
            if range.start == 0 {
                // R would silently use observed[1:0], i.e. the first count.
                return Err(CusumError::NoReference);
            }
            let reference = &counts[..range.start];
            reference.iter().sum::<f64>() / reference.len() as f64
        }
    };
    if cfg.trans != CusumTrans::Identity && !(m.is_finite() && m > 0.0) {
        return Err(CusumError::InvalidMean(m));
    }
    let needs_root = matches!(
        cfg.trans,
        CusumTrans::Rossi | CusumTrans::Anscombe | CusumTrans::Anscombe2nd
    );
    for (index, &value) in counts[range.clone()].iter().enumerate() {
        if !value.is_finite() || (needs_root && value < 0.0) {
            return Err(CusumError::InvalidCount {
                index: range.start + index,
                value,
                trans: cfg.trans,
            });
        }
    }

    let (k, h) = (cfg.k, cfg.h);
    let mut previous = 0.0;
    let points = range
        .map(|t| {
            let statistic = (previous + standardise(counts[t], m, cfg.trans) - k).max(0.0);
            let alarm = statistic >= h;
            let upper_bound = bound(m, k, h, previous, statistic, cfg.trans);
            previous = if cfg.reset && alarm { 0.0 } else { statistic };
            CusumPoint {
                index: t,
                statistic,
                upper_bound,
                alarm,
                expected: m,
            }
        })
        .collect();
    Ok(points)
}

fn standardise(x: f64, m: f64, trans: CusumTrans) -> f64 {
    match trans {
        CusumTrans::Standard => (x - m) / m.sqrt(),
        CusumTrans::Rossi => (x - 3.0 * m + 2.0 * (x * m).sqrt()) / (2.0 * m.sqrt()),
        CusumTrans::Anscombe => 1.5 * (x.powf(2.0 / 3.0) - m.powf(2.0 / 3.0)) / m.powf(1.0 / 6.0),
        CusumTrans::Anscombe2nd => {
            (x.powf(2.0 / 3.0) - (m.powf(2.0 / 3.0) - m.powf(-1.0 / 3.0) / 9.0))
                / (2.0 / 3.0 * m.powf(1.0 / 6.0))
        }
        CusumTrans::PearsonNegBin { alpha } => (x - m) / (m + alpha * m * m).sqrt(),
        CusumTrans::Identity => x,
    }
}

/// R's back-transformed upper bound, from C_{t−1} (`prev`; C_t for `Identity`, as in R).
fn bound(m: f64, k: f64, h: f64, prev: f64, current: f64, trans: CusumTrans) -> f64 {
    let d = h + k - prev;
    let ub = match trans {
        CusumTrans::Standard => (m.sqrt() * d + m).ceil(),
        CusumTrans::Rossi => {
            let m32 = m.powf(1.5);
            2.0 * h * m.sqrt() + 2.0 * k * m.sqrt() - 2.0 * prev * m.sqrt() + 5.0 * m
                - 2.0 * (4.0 * m * m + 2.0 * m32 * h + 2.0 * m32 * k - 2.0 * m32 * prev).sqrt()
        }
        CusumTrans::Anscombe => {
            pow_three_halves(2.0 / 3.0 * m.powf(1.0 / 6.0) * d + m.powf(2.0 / 3.0))
        }
        CusumTrans::Anscombe2nd => pow_three_halves(
            2.0 / 3.0 * m.powf(1.0 / 6.0) * d + (m.powf(2.0 / 3.0) - m.powf(1.0 / 3.0) / 9.0),
        ),
        CusumTrans::PearsonNegBin { alpha } => (m + alpha * m * m).sqrt() * d + m,
        CusumTrans::Identity => h - current,
    };
    // R: upperbound[is.na(upperbound)] <- 0; upperbound[upperbound < 0] <- 0
    if ub.is_nan() || ub < 0.0 { 0.0 } else { ub }
}

/// R's `ifelse(a < 0, 0, a^(3/2))`.
fn pow_three_halves(a: f64) -> f64 {
    if a < 0.0 { 0.0 } else { a.powf(1.5) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_cusum_accumulates_and_alarms_at_h() {
        // m = 4 from the reference, so z = (x − 4)/2.
        let counts = [4.0, 4.0, 4.0, 4.0, 8.0, 8.0, 4.0, 0.0];
        let out = cusum(&counts, 4..8, &CusumConfig::default()).unwrap();
        let stats: Vec<f64> = out.iter().map(|p| p.statistic).collect();
        let expected = [0.96, 1.92, 0.88, 0.0];
        for (s, e) in stats.iter().zip(expected) {
            assert!((s - e).abs() < 1e-12, "{stats:?}");
        }
        assert!(out.iter().all(|p| !p.alarm && p.expected == 4.0));
        // U at t: ceil(m + √m·(h + k − C_{t−1})).
        assert_eq!(out[0].upper_bound, (4.0f64 + 2.0 * 3.3).ceil());
        assert_eq!(out[1].upper_bound, (4.0 + 2.0 * (3.3 - 0.96f64)).ceil());
    }

    #[test]
    fn count_at_the_bound_alarms_and_one_below_does_not() {
        let reference = [2.0, 3.0, 2.0, 3.0];
        let first = cusum(
            &[&reference[..], &[0.0]].concat(),
            4..5,
            &CusumConfig::default(),
        )
        .unwrap()[0];
        let ub = first.upper_bound;
        let at = cusum(
            &[&reference[..], &[ub]].concat(),
            4..5,
            &CusumConfig::default(),
        )
        .unwrap();
        let below = cusum(
            &[&reference[..], &[ub - 1.0]].concat(),
            4..5,
            &CusumConfig::default(),
        )
        .unwrap();
        assert!(at[0].alarm);
        assert!(!below[0].alarm);
    }

    #[test]
    fn without_reset_the_alarm_persists_and_with_reset_it_restarts() {
        let counts = [2.0, 2.0, 2.0, 2.0, 20.0, 2.0, 2.0];
        let plain = cusum(&counts, 4..7, &CusumConfig::default()).unwrap();
        assert_eq!(
            plain.iter().map(|p| p.alarm).collect::<Vec<_>>(),
            [true, true, true]
        );
        let reset = CusumConfig {
            reset: true,
            ..CusumConfig::default()
        };
        let out = cusum(&counts, 4..7, &reset).unwrap();
        assert_eq!(
            out.iter().map(|p| p.alarm).collect::<Vec<_>>(),
            [true, false, false]
        );
        // The alarming value is kept; the next step starts from 0.
        assert!(out[0].statistic >= 2.26);
        assert_eq!(out[1].statistic, 0.0);
    }

    #[test]
    fn anscombe_bound_inverts_the_transform() {
        let cfg = CusumConfig {
            trans: CusumTrans::Anscombe,
            ..CusumConfig::default()
        };
        let counts = [5.0, 5.0, 5.0, 5.0, 0.0];
        let ub = cusum(&counts, 4..5, &cfg).unwrap()[0].upper_bound;
        // Exactly at the bound, C_t = h.
        let z = standardise(ub, 5.0, CusumTrans::Anscombe);
        assert!((z - cfg.k - cfg.h).abs() < 1e-9);
    }

    #[test]
    fn rossi_bound_inverts_the_transform() {
        let counts = [5.0, 5.0, 5.0, 5.0, 0.0];
        let cfg = CusumConfig {
            trans: CusumTrans::Rossi,
            ..CusumConfig::default()
        };
        let ub = cusum(&counts, 4..5, &cfg).unwrap()[0].upper_bound;
        let z = standardise(ub, 5.0, CusumTrans::Rossi);
        assert!((z - cfg.k - cfg.h).abs() < 1e-9);
    }

    #[test]
    fn zeros_history_is_an_error_not_a_panic() {
        let counts = [0.0; 10];
        assert_eq!(
            cusum(&counts, 5..10, &CusumConfig::default()),
            Err(CusumError::InvalidMean(0.0))
        );
        // With a fixed mean, zero counts just keep the sum at 0.
        let fixed = CusumConfig {
            m: CusumMean::Fixed(1.0),
            ..CusumConfig::default()
        };
        let out = cusum(&counts, 5..10, &fixed).unwrap();
        assert!(out.iter().all(|p| p.statistic == 0.0 && !p.alarm));
    }

    #[test]
    fn constant_series_never_alarms() {
        let out = cusum(&[7.0; 30], 10..30, &CusumConfig::default()).unwrap();
        assert!(out.iter().all(|p| p.statistic == 0.0 && !p.alarm));
        let ub = (7.0 + 7.0f64.sqrt() * 3.3).ceil();
        assert!(out.iter().all(|p| p.upper_bound == ub));
    }

    #[test]
    fn short_or_invalid_input_is_an_error() {
        let counts = [1.0, 2.0, 3.0];
        assert_eq!(
            cusum(&counts, 0..3, &CusumConfig::default()),
            Err(CusumError::NoReference)
        );
        assert!(matches!(
            cusum(&counts, 1..4, &CusumConfig::default()),
            Err(CusumError::RangeOutOfBounds { .. })
        ));
        assert_eq!(cusum(&counts, 3..3, &CusumConfig::default()), Ok(vec![]));
        let bad_k = CusumConfig {
            k: -1.0,
            ..CusumConfig::default()
        };
        assert!(matches!(
            cusum(&counts, 1..3, &bad_k),
            Err(CusumError::InvalidParameter { name: "k", .. })
        ));
        let anscombe = CusumConfig {
            trans: CusumTrans::Anscombe,
            ..CusumConfig::default()
        };
        assert!(matches!(
            cusum(&[1.0, -1.0], 1..2, &anscombe),
            Err(CusumError::InvalidCount { index: 1, .. })
        ));
        assert!(matches!(
            cusum(&[1.0, f64::NAN], 1..2, &CusumConfig::default()),
            Err(CusumError::InvalidCount { index: 1, .. })
        ));
    }

    #[test]
    fn config_serde_uses_snake_case_and_defaults() {
        let c: CusumConfig =
            serde_json::from_str(r#"{"trans":{"pearson_neg_bin":{"alpha":0.1}},"reset":true}"#)
                .unwrap();
        assert_eq!(c.trans, CusumTrans::PearsonNegBin { alpha: 0.1 });
        assert_eq!(c.k, 1.04);
        assert!(c.reset);
        let c: CusumConfig = serde_json::from_str(r#"{"trans":"none","m":{"fixed":3.0}}"#).unwrap();
        assert_eq!(c.trans, CusumTrans::Identity);
        assert_eq!(c.m, CusumMean::Fixed(3.0));
    }
}
