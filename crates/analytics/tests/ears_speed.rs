//! EARS's speed, before and after: `ears_c` against a verbatim copy of the version before
//! the per-call speed-up (window statistics computed once per period and several windows at a
//! time, statrs's erfc rearranged and evaluated four p-values at a time, repeated statistics
//! reusing their p-value), on the series of the `detectors_vs_r` bench and on generated edge
//! cases.
//!
//! `matches_reference_bit_for_bit` (always run) checks that every field of every point, and
//! every error, is the same as the reference's, bit for bit. `ns_per_point` (ignored: it
//! times, so run it in a release build) prints nanoseconds per point of both, alternated in one
//! process (`EARS_ROUNDS`: rounds per method, default 15; the e2e package only makes the build
//! share polars's features with the workspace's release build):
//! `cargo test --release -p borderwatch-e2e -p borderwatch-analytics --test ears_speed -- --ignored --nocapture`

#[path = "../parity/harness.rs"]
mod harness;

use std::time::Instant;

use borderwatch_analytics::surveillance::ears::{
    EarsConfig, EarsError, EarsMethod, EarsPoint, ears_c,
};
use harness::{Rng, Setting, parity_series};

/// `ears_c`, `mean_sd`, `r_pmax` and `upper_tail` as of d6916ce, unchanged but for this
/// module's imports.
mod reference {
    use std::ops::Range;

    use borderwatch_analytics::surveillance::ears::{EarsConfig, EarsError, EarsMethod, EarsPoint};
    use statrs::distribution::{ContinuousCDF, Normal};

    pub(crate) fn ears_c(
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
                        let lags =
                            r_pmax(0.0, c2stat(t - 2) - 1.0) + r_pmax(0.0, c2stat(t - 1) - 1.0);
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

    fn mean_sd(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let ss = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
        (mean, (ss / (n - 1.0)).sqrt())
    }

    fn r_pmax(a: f64, b: f64) -> f64 {
        if a.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            a.max(b)
        }
    }

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
}

/// A point's fields as bits: index, upper bound, alarm, expected, statistic, p-value.
type Bits = (usize, u64, bool, u64, u64, Option<u64>);

/// The signature of `ears_c`.
type Detector =
    fn(&[f64], Option<std::ops::Range<usize>>, &EarsConfig) -> Result<Vec<EarsPoint>, EarsError>;

/// Every field as bits, so that NaN equals NaN and 0.0 differs from −0.0.
fn bits(p: &EarsPoint) -> Bits {
    (
        p.index,
        p.upper_bound.to_bits(),
        p.alarm,
        p.expected.to_bits(),
        p.statistic.to_bits(),
        p.p_value.map(f64::to_bits),
    )
}

fn outcome(r: Result<Vec<EarsPoint>, EarsError>) -> Result<Vec<Bits>, String> {
    r.map(|ps| ps.iter().map(bits).collect())
        .map_err(|e| format!("{e:?}"))
}

fn assert_same(counts: &[f64], range: Option<std::ops::Range<usize>>, cfg: &EarsConfig) -> usize {
    let new = outcome(ears_c(counts, range.clone(), cfg));
    let old = outcome(reference::ears_c(counts, range.clone(), cfg));
    assert_eq!(new, old, "counts {counts:?}, range {range:?}, {cfg:?}");
    new.map_or(0, |p| p.len())
}

/// A generated series: counts of several kinds (Poisson-like integers from 0 to 10^6, flat
/// stretches, zeros, runs of one value, non-integers, negative numbers, −0.0, huge values),
/// sometimes with a NaN or an infinity.
fn edge_series(rng: &mut Rng) -> Vec<f64> {
    let n = rng.int(0, 90);
    let kind = rng.int(0, 7);
    let level = [0.5, 3.0, 40.0, 1e3, 1e6][rng.int(0, 4)];
    let mut xs: Vec<f64> = (0..n)
        .map(|_| match kind {
            0 => (level * rng.uniform() * 2.0).round(),
            1 => level.round(),
            2 => 0.0,
            3 => [0.0, 1.0, 2.0][rng.int(0, 2)],
            4 => level * rng.normal(),
            5 => [-0.0, 0.0, -1.0, 3.0][rng.int(0, 3)],
            6 => rng.range(-1.0, 1.0) * 1e300,
            _ => (level * (1.0 + 0.3 * rng.normal())).round().max(0.0),
        })
        .collect();
    if n > 0 && rng.chance(0.1) {
        let i = rng.int(0, n - 1);
        xs[i] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][rng.int(0, 2)];
    }
    if n > 0 && rng.chance(0.3) {
        // A spike.
        let i = rng.int(0, n - 1);
        xs[i] += level * rng.range(2.0, 20.0);
    }
    xs
}

#[test]
fn matches_reference_bit_for_bit() {
    let mut rng = Rng::new(20_261_203);
    let mut points = 0;
    for _ in 0..6_000 {
        let counts = edge_series(&mut rng);
        let cfg = EarsConfig {
            method: [EarsMethod::C1, EarsMethod::C2, EarsMethod::C3][rng.int(0, 2)],
            baseline: if rng.chance(0.5) { 7 } else { rng.int(2, 12) },
            min_sigma: [0.0, 0.0, 0.5, 1.0, -1.0, f64::NAN][rng.int(0, 5)],
            alpha: [None, None, Some(0.01), Some(0.05), Some(0.5), Some(1.0)][rng.int(0, 5)],
        };
        let len = counts.len();
        let range = match rng.int(0, 3) {
            0 | 1 => None,
            2 => {
                let start = rng.int(0, len + 2);
                let end = rng.int(0, len + 2);
                Some(start..end)
            }
            _ => Some(len.saturating_sub(rng.int(1, 20))..len),
        };
        points += assert_same(&counts, range, &cfg);
    }
    // The bench's own series, every method, the default baseline and two others.
    for (i, (freq, len)) in [(4, 40), (12, 72)].into_iter().enumerate() {
        for s in parity_series(&setting(freq, len), 200, 10 + i as u64) {
            let counts = counts_of(&s);
            for method in [EarsMethod::C1, EarsMethod::C2, EarsMethod::C3] {
                for baseline in [7, 3, 5] {
                    let cfg = EarsConfig {
                        method,
                        baseline,
                        ..EarsConfig::default()
                    };
                    points += assert_same(&counts, None, &cfg);
                }
            }
        }
    }
    assert!(points > 100_000, "only {points} points compared");
}

fn setting(freq: usize, len: usize) -> Setting {
    Setting {
        name: format!("ears_{freq}"),
        freq,
        methods: Vec::new(),
        len: (len, len),
        missing: 0.0,
    }
}

fn counts_of(s: &harness::Series) -> Vec<f64> {
    s.counts
        .iter()
        .map(|c| c.map_or(f64::NAN, |v| v as f64))
        .collect()
}

/// Nanoseconds per point of one implementation over all series, one round.
fn round(series: &[Vec<f64>], cfg: &EarsConfig, f: Detector) -> f64 {
    let started = Instant::now();
    let mut points = 0;
    for counts in series {
        points +=
            std::hint::black_box(f(std::hint::black_box(counts), None, cfg)).map_or(0, |p| p.len());
    }
    started.elapsed().as_nanos() as f64 / points as f64
}

#[test]
#[ignore = "timing: run in a release build with --ignored --nocapture"]
fn ns_per_point() {
    let rounds = std::env::var("EARS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    println!(
        "| series | method | reference (ns/point, median of {rounds}) | now (ns/point) | speed-up |"
    );
    println!("|---|---|---|---|---|");
    // The detectors_vs_r bench's EARS settings and seeds: 2,000 series of 40 quarters (seed
    // 10) and of 72 months (seed 11).
    for (name, freq, len, seed) in [("quarterly_40", 4, 40, 10), ("monthly_72", 12, 72, 11)] {
        let series: Vec<Vec<f64>> = parity_series(&setting(freq, len), 2_000, seed)
            .iter()
            .map(counts_of)
            .collect();
        for method in [EarsMethod::C1, EarsMethod::C2, EarsMethod::C3] {
            let cfg = EarsConfig {
                method,
                ..EarsConfig::default()
            };
            let (mut old, mut new) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                old.push(round(&series, &cfg, reference::ears_c));
                new.push(round(&series, &cfg, ears_c));
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let (old, new) = (median(&mut old), median(&mut new));
            println!(
                "| {name} | {method:?} | {old:.1} | {new:.1} | {:.2}× |",
                old / new
            );
        }
    }
}
