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
    Ok(Kernel {
        counts,
        method,
        baseline: b,
        z,
        min_sigma: cfg.min_sigma,
    }
    .points(range))
}

/// What [`ears_c`] computes its points from, once its input is checked.
struct Kernel<'a> {
    counts: &'a [f64],
    method: EarsMethod,
    baseline: usize,
    z: f64,
    min_sigma: f64,
}

/// Periods whose baseline windows [`Kernel::points`] computes together, in arrays on the stack.
const CHUNK: usize = 128;

impl Kernel<'_> {
    /// The points of `range`.
    ///
    /// Each window's mean and standard deviation is computed once, from scratch and with the
    /// operations of the two-pass `mean_sd` (no running sums, which would round differently).
    /// The windows of up to [`CHUNK`] consecutive periods are done together, one window
    /// position at a time across all of them ([`window_stats`]), so that the independent sums
    /// of different windows overlap instead of each waiting on its own chain of additions. C3 carries the C2
    /// statistics of t − 2 and t − 1 over from the periods before instead of recomputing their
    /// windows. The p-values come last, in a loop of their own, where the evaluations of
    /// consecutive points overlap; that of a statistic equal to the previous point's is reused
    /// (C3's statistic is often exactly 0).
    fn points(&self, range: Range<usize>) -> Vec<EarsPoint> {
        let (counts, b, z) = (self.counts, self.baseline, self.z);
        let c3 = self.method == EarsMethod::C3;
        let guard = if self.method == EarsMethod::C1 { 0 } else { 2 };
        // The periods whose window is read: the tested ones, and for C3 the two before.
        let first = if c3 { range.start - 2 } else { range.start };
        let mut out = Vec::with_capacity(range.len());
        // C3: C2stat(t − 2) and C2stat(t − 1).
        let (mut lag2, mut lag1) = (f64::NAN, f64::NAN);
        let (mut means, mut sigmas, mut stats) = ([0.0; CHUNK], [0.0; CHUNK], [0.0; CHUNK]);
        let mut u0 = first;
        while u0 < range.end {
            let m = CHUNK.min(range.end - u0);
            let (means, sigmas, stats) = (&mut means[..m], &mut sigmas[..m], &mut stats[..m]);
            let ys = &counts[u0..u0 + m];
            // Period u's window is counts[u − guard − b..u − guard].
            let span = &counts[u0 - guard - b..u0 + m - 1 - guard];
            window_stats(span, b, self.min_sigma, means, sigmas);
            // (y_u − ȳ_u) / σ_u: the statistic of C1 and C2, C2stat(u) for C3.
            for (((stat, &y), &mean), &sigma) in stats.iter_mut().zip(ys).zip(&*means).zip(&*sigmas)
            {
                *stat = (y - mean) / sigma;
            }
            let periods = (u0..)
                .zip(ys)
                .zip(means.iter().zip(sigmas.iter()).zip(stats.iter()));
            for ((u, &y), ((&mean, &sigma), &stat)) in periods {
                if !c3 {
                    let upper_bound = mean + z * sigma;
                    out.push(EarsPoint {
                        index: u,
                        upper_bound,
                        alarm: y > upper_bound,
                        expected: mean,
                        statistic: stat,
                        p_value: None,
                    });
                    continue;
                }
                if u >= range.start {
                    let lags = r_pmax(0.0, lag2 - 1.0) + r_pmax(0.0, lag1 - 1.0);
                    let upper_bound = r_pmax(0.0, y + sigma * (z - lags));
                    out.push(EarsPoint {
                        index: u,
                        upper_bound,
                        alarm: y > upper_bound,
                        expected: mean,
                        statistic: lags,
                        p_value: None,
                    });
                }
                (lag2, lag1) = (lag1, stat);
            }
            u0 += m;
        }
        for block in out.chunks_mut(CHUNK) {
            fill_p_values(block);
        }
        out
    }
}

/// Mean and sample standard deviation (n − 1), two-pass like R's `mean`/`sd`: the arithmetic
/// [`window_stats`] reproduces.
#[cfg(test)]
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let ss = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// For each k, the mean and σ = max(s, min_sigma) of the `b` counts `xs[k..k + b]`, into
/// `means[k]` and `sigmas[k]` (`xs` holds `means.len() + b − 1` counts).
///
/// The operations of each window are those of `mean_sd`, in the same order: the sum x₀ + x₁ +
/// … + x_{b−1} from −0.0 (where `Iterator::sum` starts), divided by b; then the sum of
/// (xᵢ − mean)² in the same order, divided by b − 1, its square root. Only the order between
/// windows differs (all first terms, then all second terms, …), which changes no result.
#[inline]
fn window_stats(xs: &[f64], b: usize, min_sigma: f64, means: &mut [f64], sigmas: &mut [f64]) {
    let m = means.len();
    debug_assert_eq!(xs.len(), m + b - 1);
    debug_assert_eq!(sigmas.len(), m);
    let n = b as f64;
    means.fill(-0.0);
    for j in 0..b {
        for (sum, &x) in means.iter_mut().zip(&xs[j..j + m]) {
            *sum += x;
        }
    }
    for mean in means.iter_mut() {
        *mean /= n;
    }
    sigmas.fill(-0.0);
    for j in 0..b {
        for ((ss, &x), &mean) in sigmas.iter_mut().zip(&xs[j..j + m]).zip(means.iter()) {
            *ss += (x - mean).powi(2);
        }
    }
    for sd in sigmas.iter_mut() {
        *sd = (*sd / (n - 1.0)).sqrt().max(min_sigma);
    }
}

/// How many p-values [`fill_p_values`] evaluates side by side.
const LANES: usize = 4;

/// Sets each point's `p_value` to [`upper_tail`] of its statistic (at most [`CHUNK`] points).
///
/// The same values as calling [`upper_tail`] point by point, computed faster: the finite
/// statistics are sorted, without branches, into those of the small-|x| and the large-|x|
/// approximation of [`erfc`], and each group is evaluated [`LANES`] at a time, so that the
/// independent chains of multiplications and additions overlap and no unpredictable branch
/// separates them. A statistic equal to the previous point's takes its p-value (C3's statistic
/// is often exactly 0); non-finite ones go through [`upper_tail`].
fn fill_p_values(points: &mut [EarsPoint]) {
    let n = points.len();
    debug_assert!(n <= CHUNK);
    let mut scaled = [0.0; CHUNK];
    let (mut small, mut large) = ([0_usize; CHUNK], [0_usize; CHUNK]);
    let (mut n_small, mut n_large) = (0, 0);
    let mut previous = f64::NAN.to_bits();
    for (k, point) in points.iter().enumerate() {
        let x = point.statistic;
        let y = x / std::f64::consts::SQRT_2;
        scaled[k] = y;
        let here = x.is_finite() && x.to_bits() != previous;
        previous = x.to_bits();
        let is_small = y.abs() < 0.5;
        small[n_small] = k;
        large[n_large] = k;
        n_small += usize::from(here & is_small);
        n_large += usize::from(here & !is_small);
    }
    in_batches(points, &scaled, &small[..n_small], erfc_small);
    in_batches(points, &scaled, &large[..n_large], erfc_large);
    for k in 0..n {
        let x = points[k].statistic;
        if !x.is_finite() {
            points[k].p_value = upper_tail(x);
        } else if k > 0 && x.to_bits() == points[k - 1].statistic.to_bits() {
            points[k].p_value = points[k - 1].p_value;
        }
    }
}

/// Sets `points[k].p_value` to ½·`erfc_lanes`(`scaled[k]`) for each k in `group`, [`LANES`] at
/// a time (a short last batch repeats its last point).
#[inline(always)]
fn in_batches(
    points: &mut [EarsPoint],
    scaled: &[f64],
    group: &[usize],
    erfc_lanes: impl Fn([f64; LANES]) -> [f64; LANES],
) {
    for ks in group.chunks(LANES) {
        let k = |lane: usize| ks[lane.min(ks.len() - 1)];
        let tails = erfc_lanes(std::array::from_fn(|lane| scaled[k(lane)]));
        for (lane, tail) in tails.into_iter().enumerate() {
            points[k(lane)].p_value = Some(0.5 * tail);
        }
    }
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
        Some(0.5 * erfc(x / std::f64::consts::SQRT_2))
    }
}

/// The complementary error function of a finite x, computed exactly as statrs 0.19.1 computes
/// it (`statrs::function::erf::erfc`, Boost's rational approximations, whose coefficients are
/// copied below), so that `0.5 * erfc(x / √2)` is, bit for bit, statrs's
/// `Normal::standard().sf(x)` (`tests::upper_tail_is_statrs_sf_bit_for_bit`).
///
/// The operations and their order are statrs's; what differs is how they are arranged: the
/// approximation for |x| ≥ 0.5 comes from tables indexed by the interval of |x| instead of a
/// chain of up to 13 branches, the sign is applied by a select instead of statrs's recursion for
/// negative x, and [`erfc_small`] and [`erfc_large`] take several arguments at once.
fn erfc(x: f64) -> f64 {
    if x.abs() < 0.5 {
        erfc_small([x])[0]
    } else {
        erfc_large([x])[0]
    }
}

/// [`erfc`] of finite arguments with |x| < 0.5, lane by lane.
#[allow(clippy::excessive_precision)] // statrs's digits, as written there
#[inline(always)]
fn erfc_small<const L: usize>(xs: [f64; L]) -> [f64; L] {
    let w = xs.map(f64::abs);
    let num = polynomials(w, [&SMALL_N; L]);
    let den = polynomials(w, [&SMALL_D; L]);
    std::array::from_fn(|l| {
        let w = w[l];
        // statrs: for 0 ≤ x < 0.5, 1 − erf(x); for −0.5 < x < 0, 1 + erf(−x).
        let erf = if w < 1e-10 {
            w * 1.125 + w * 0.003379167095512573896158903121545171688
        } else {
            w * 1.125 + w * num[l] / den[l]
        };
        // 1 − (−erf) is 1 + erf exactly, so the sign needs no branch (x = −0.0 gives 1 either way).
        1.0 - erf.copysign(xs[l])
    })
}

/// [`erfc`] of finite arguments with |x| ≥ 0.5, lane by lane.
#[inline(always)]
fn erfc_large<const L: usize>(xs: [f64; L]) -> [f64; L] {
    let w = xs.map(f64::abs);
    let interval = w.map(large_interval);
    let at = std::array::from_fn(|l| w[l] - LARGE_AT[interval[l]]);
    let exp = w.map(|w| (-w * w).exp());
    let num = polynomials(at, interval.map(|i| &LARGE_N[i]));
    let den = polynomials(at, interval.map(|i| &LARGE_D[i]));
    std::array::from_fn(|l| {
        let (x, w, i) = (xs[l], w[l], interval[l]);
        let erfc_w = if w < 110.0 {
            let r = num[l] / den[l];
            let g = exp[l] / w;
            g * LARGE_B[i] + g * r
        } else {
            0.0
        };
        if x == -0.5 {
            // statrs: 1 + erf(0.5), with erf(0.5) computed as 1 − erfc(0.5).
            1.0 + (1.0 - erfc_w)
        } else {
            // statrs: erfc(x) for x ≥ 0.5, 2 − erfc(−x) for x < −0.5. The first is 0 − (−erfc(x))
            // exactly, so a select of 0 or 2 replaces the branch.
            let base = if x < 0.0 { 2.0 } else { 0.0 };
            base - erfc_w.copysign(-x)
        }
    })
}

/// Which of [`LARGE_AT`]'s intervals holds w ≥ 0.5: the number of [`LARGE_FROM`] bounds ≤ w.
///
/// Every bound is a multiple of 1/4, so w ≥ bound exactly when ⌊4w⌋ ≥ 4·bound (4w is exact),
/// and a table indexed by ⌊4w⌋ answers. From 110 on (erfc = 0, the interval unused) the index
/// is capped.
#[inline(always)]
fn large_interval(w: f64) -> usize {
    usize::from(LARGE_INTERVAL[((w * 4.0) as usize).min(LARGE_INTERVAL.len() - 1)])
}

/// [`large_interval`]'s table: entry q is the number of [`LARGE_FROM`] bounds ≤ q/4.
const LARGE_INTERVAL: [u8; 440] = {
    let mut table = [0; 440];
    let mut q = 0;
    while q < table.len() {
        let mut i = 0;
        while i < LARGE_FROM.len() {
            if (LARGE_FROM[i] * 4.0) as usize <= q {
                table[q] += 1;
            }
            i += 1;
        }
        q += 1;
    }
    table
};

/// statrs's `evaluate::polynomial` in each lane: Horner's scheme from the highest coefficient,
/// starting at 0. The tables are padded with zero high coefficients, which leave every step the
/// same. The lanes advance together, one coefficient at a time, so their chains overlap.
#[inline(always)]
fn polynomials<const L: usize>(z: [f64; L], coeffs: [&[f64; 8]; L]) -> [f64; L] {
    let mut acc = [0.0; L];
    for j in (0..8).rev() {
        for l in 0..L {
            acc[l] = acc[l] * z[l] + coeffs[l][j];
        }
    }
    acc
}

// Coefficients of statrs 0.19.1 `function/erf.rs` (MIT licence, Copyright (c) 2016 Michael Ma;
// from Boost), `ERF_IMPL_AN`/`AD` and `ERF_IMPL_BN`/`BD` … `ERF_IMPL_NN`/`ND`, digit for digit.

/// Numerator of erf on [1e-10, 0.5).
#[allow(clippy::excessive_precision)] // statrs's digits, as written there
const SMALL_N: [f64; 8] = [
    0.00337916709551257388990745,
    -0.00073695653048167948530905,
    -0.374732337392919607868241,
    0.0817442448733587196071743,
    -0.0421089319936548595203468,
    0.0070165709512095756344528,
    -0.00495091255982435110337458,
    0.000871646599037922480317225,
];
/// Denominator of erf on [1e-10, 0.5).
#[allow(clippy::excessive_precision)] // statrs's digits, as written there
const SMALL_D: [f64; 8] = [
    1.0,
    -0.218088218087924645390535,
    0.412542972725442099083918,
    -0.0841891147873106755410271,
    0.0655338856400241519690695,
    -0.0120019604454941768171266,
    0.00408165558926174048329689,
    -0.000615900721557769691924509,
];
/// Where each interval of erfc's approximation for |x| ≥ 0.5 begins, after the first (0.5).
const LARGE_FROM: [f64; 12] = [
    0.75, 1.25, 2.25, 3.5, 5.25, 8.0, 11.5, 17.0, 24.0, 38.0, 60.0, 85.0,
];
/// The point each interval's polynomials are centred on (its start).
const LARGE_AT: [f64; 13] = [
    0.5, 0.75, 1.25, 2.25, 3.5, 5.25, 8.0, 11.5, 17.0, 24.0, 38.0, 60.0, 85.0,
];
/// Each interval's constant term b in erfc(x) = g·b + g·r, g = exp(−x²)/x.
#[allow(clippy::excessive_precision)] // statrs's digits, as written there
const LARGE_B: [f64; 13] = [
    0.3440242112,
    0.419990927,
    0.4898625016,
    0.5317370892,
    0.5489973426,
    0.5571740866,
    0.5609807968,
    0.5626493692,
    0.5634598136,
    0.5638477802,
    0.5640528202,
    0.5641309023,
    0.5641584396,
];
/// Numerators of r, one row per interval.
#[allow(clippy::excessive_precision)] // statrs's digits, as written there
const LARGE_N: [[f64; 8]; 13] = [
    [
        -0.0361790390718262471360258,
        0.292251883444882683221149,
        0.281447041797604512774415,
        0.125610208862766947294894,
        0.0274135028268930549240776,
        0.00250839672168065762786937,
        0.0,
        0.0,
    ],
    [
        -0.0397876892611136856954425,
        0.153165212467878293257683,
        0.191260295600936245503129,
        0.10276327061989304213645,
        0.029637090615738836726027,
        0.0046093486780275489468812,
        0.000307607820348680180548455,
        0.0,
    ],
    [
        -0.0300838560557949717328341,
        0.0538578829844454508530552,
        0.0726211541651914182692959,
        0.0367628469888049348429018,
        0.00964629015572527529605267,
        0.00133453480075291076745275,
        0.778087599782504251917881e-4,
        0.0,
    ],
    [
        -0.0117907570137227847827732,
        0.014262132090538809896674,
        0.0202234435902960820020765,
        0.00930668299990432009042239,
        0.00213357802422065994322516,
        0.00025022987386460102395382,
        0.120534912219588189822126e-4,
        0.0,
    ],
    [
        -0.00546954795538729307482955,
        0.00404190278731707110245394,
        0.0054963369553161170521356,
        0.00212616472603945399437862,
        0.000394984014495083900689956,
        0.365565477064442377259271e-4,
        0.135485897109932323253786e-5,
        0.0,
    ],
    [
        -0.00270722535905778347999196,
        0.0013187563425029400461378,
        0.00119925933261002333923989,
        0.00027849619811344664248235,
        0.267822988218331849989363e-4,
        0.923043672315028197865066e-6,
        0.0,
        0.0,
    ],
    [
        -0.00109946720691742196814323,
        0.000406425442750422675169153,
        0.000274499489416900707787024,
        0.465293770646659383436343e-4,
        0.320955425395767463401993e-5,
        0.778286018145020892261936e-7,
        0.0,
        0.0,
    ],
    [
        -0.00056907993601094962855594,
        0.000169498540373762264416984,
        0.518472354581100890120501e-4,
        0.382819312231928859704678e-5,
        0.824989931281894431781794e-7,
        0.0,
        0.0,
        0.0,
    ],
    [
        -0.000241313599483991337479091,
        0.574224975202501512365975e-4,
        0.115998962927383778460557e-4,
        0.581762134402593739370875e-6,
        0.853971555085673614607418e-8,
        0.0,
        0.0,
        0.0,
    ],
    [
        -0.000146674699277760365803642,
        0.162666552112280519955647e-4,
        0.269116248509165239294897e-5,
        0.979584479468091935086972e-7,
        0.101994647625723465722285e-8,
        0.0,
        0.0,
        0.0,
    ],
    [
        -0.583905797629771786720406e-4,
        0.412510325105496173512992e-5,
        0.431790922420250949096906e-6,
        0.993365155590013193345569e-8,
        0.653480510020104699270084e-10,
        0.0,
        0.0,
        0.0,
    ],
    [
        -0.196457797609229579459841e-4,
        0.157243887666800692441195e-5,
        0.543902511192700878690335e-7,
        0.317472492369117710852685e-9,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        -0.789224703978722689089794e-5,
        0.622088451660986955124162e-6,
        0.145728445676882396797184e-7,
        0.603715505542715364529243e-10,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
];
/// Denominators of r, one row per interval.
#[allow(clippy::excessive_precision)] // statrs's digits, as written there
const LARGE_D: [[f64; 8]; 13] = [
    [
        1.0,
        1.8545005897903486499845,
        1.43575803037831418074962,
        0.582827658753036572454135,
        0.124810476932949746447682,
        0.0113724176546353285778481,
        0.0,
        0.0,
    ],
    [
        1.0,
        1.95520072987627704987886,
        1.64762317199384860109595,
        0.768238607022126250082483,
        0.209793185936509782784315,
        0.0319569316899913392596356,
        0.00213363160895785378615014,
        0.0,
    ],
    [
        1.0,
        1.75967098147167528287343,
        1.32883571437961120556307,
        0.552528596508757581287907,
        0.133793056941332861912279,
        0.0179509645176280768640766,
        0.00104712440019937356634038,
        -0.106640381820357337177643e-7,
    ],
    [
        1.0,
        1.50376225203620482047419,
        0.965397786204462896346934,
        0.339265230476796681555511,
        0.0689740649541569716897427,
        0.00771060262491768307365526,
        0.000371421101531069302990367,
        0.0,
    ],
    [
        1.0,
        1.21019697773630784832251,
        0.620914668221143886601045,
        0.173038430661142762569515,
        0.0276550813773432047594539,
        0.00240625974424309709745382,
        0.891811817251336577241006e-4,
        -0.465528836283382684461025e-11,
    ],
    [
        1.0,
        0.814632808543141591118279,
        0.268901665856299542168425,
        0.0449877216103041118694989,
        0.00381759663320248459168994,
        0.000131571897888596914350697,
        0.404815359675764138445257e-11,
        0.0,
    ],
    [
        1.0,
        0.588173710611846046373373,
        0.139363331289409746077541,
        0.0166329340417083678763028,
        0.00100023921310234908642639,
        0.24254837521587225125068e-4,
        0.0,
        0.0,
    ],
    [
        1.0,
        0.339637250051139347430323,
        0.043472647870310663055044,
        0.00248549335224637114641629,
        0.535633305337152900549536e-4,
        -0.117490944405459578783846e-12,
        0.0,
        0.0,
    ],
    [
        1.0,
        0.233044138299687841018015,
        0.0204186940546440312625597,
        0.000797185647564398289151125,
        0.117019281670172327758019e-4,
        0.0,
        0.0,
        0.0,
    ],
    [
        1.0,
        0.165907812944847226546036,
        0.0103361716191505884359634,
        0.000286593026373868366935721,
        0.298401570840900340874568e-5,
        0.0,
        0.0,
        0.0,
    ],
    [
        1.0,
        0.105077086072039915406159,
        0.00414278428675475620830226,
        0.726338754644523769144108e-4,
        0.477818471047398785369849e-6,
        0.0,
        0.0,
        0.0,
    ],
    [
        1.0,
        0.052803989240957632204885,
        0.000926876069151753290378112,
        0.541011723226630257077328e-5,
        0.535093845803642394908747e-15,
        0.0,
        0.0,
        0.0,
    ],
    [
        1.0,
        0.0375328846356293715248719,
        0.000467919535974625308126054,
        0.193847039275845656900547e-5,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(method: EarsMethod) -> EarsConfig {
        EarsConfig {
            method,
            ..EarsConfig::default()
        }
    }

    /// The points statrs's erfc switches approximation at, and the values next to them.
    fn erfc_edges() -> Vec<f64> {
        let mut xs = vec![0.0, -0.0, 1e-10, 110.0, 1e300, f64::MIN_POSITIVE, 5e-324];
        xs.extend(LARGE_AT);
        let mut out = Vec::new();
        for x in xs {
            for w in [x, x * std::f64::consts::SQRT_2] {
                let bits = w.to_bits();
                for b in bits.saturating_sub(3)..=bits.saturating_add(3) {
                    let v = f64::from_bits(b);
                    out.extend([v, -v]);
                }
            }
        }
        out
    }

    #[test]
    fn upper_tail_is_statrs_sf_bit_for_bit() {
        let statrs = |x: f64| {
            if x.is_nan() {
                None
            } else {
                Some(Normal::standard().sf(x))
            }
        };
        let mut xs = erfc_edges();
        // statrs's special case x/√2 = −0.5 is among them.
        assert!(xs.iter().any(|&x| x / std::f64::consts::SQRT_2 == -0.5));
        xs.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        // A fine grid over every interval, and pseudo-random finite doubles of all magnitudes.
        xs.extend((-20_000..=170_000).map(|i| f64::from(i) * 1e-3));
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            if x.is_finite() {
                xs.push(x);
            }
            // And on the scale of EARS statistics.
            xs.push((state >> 11) as f64 / (1u64 << 53) as f64 * 30.0 - 10.0);
        }
        for &x in &xs {
            assert_eq!(
                upper_tail(x).map(f64::to_bits),
                statrs(x).map(f64::to_bits),
                "x = {x:e} ({:#x})",
                x.to_bits()
            );
        }
        // The batched evaluation, with repeats among the statistics.
        xs.extend([0.0, 0.0, 0.0, 1.5, 1.5, -0.0, 0.0]);
        let mut points: Vec<EarsPoint> = xs
            .iter()
            .enumerate()
            .map(|(index, &statistic)| EarsPoint {
                index,
                upper_bound: 0.0,
                alarm: false,
                expected: 0.0,
                statistic,
                p_value: Some(-1.0),
            })
            .collect();
        for block in points.chunks_mut(CHUNK) {
            fill_p_values(block);
        }
        for p in &points {
            assert_eq!(
                p.p_value.map(f64::to_bits),
                statrs(p.statistic).map(f64::to_bits),
                "x = {:e}",
                p.statistic
            );
        }
    }

    #[test]
    fn large_interval_counts_the_bounds_below() {
        let mut ws: Vec<f64> = (0..=120_000).map(|i| 0.5 + f64::from(i) * 1e-3).collect();
        for from in LARGE_FROM {
            ws.extend([from, from.next_down(), from.next_up()]);
        }
        ws.extend([110.0_f64.next_down(), 110.0, 1e300, f64::MAX]);
        for w in ws {
            let count = LARGE_FROM.iter().filter(|&&from| w >= from).count();
            if w < 110.0 {
                assert_eq!(large_interval(w), count, "w = {w}");
            } else {
                assert!(large_interval(w) < LARGE_AT.len(), "w = {w}");
            }
        }
    }

    #[test]
    fn window_stats_is_mean_sd_bit_for_bit() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..2_000 {
            let b = 3 + round % 9;
            let m = 1 + (next() % 70) as usize;
            let xs: Vec<f64> = (0..m + b - 1)
                .map(|_| match round % 4 {
                    0 => (next() % 50) as f64,
                    1 => (next() % 3) as f64 - 1.0,
                    2 => (next() >> 11) as f64 * 1e-3,
                    _ => [0.0, -0.0, 7.0][(next() % 3) as usize],
                })
                .collect();
            let min_sigma = [0.0, 0.5][round % 2];
            let (mut means, mut sigmas) = (vec![0.0; m], vec![0.0; m]);
            window_stats(&xs, b, min_sigma, &mut means, &mut sigmas);
            for k in 0..m {
                let (mean, sd) = mean_sd(&xs[k..k + b]);
                assert_eq!(means[k].to_bits(), mean.to_bits(), "round {round}, k {k}");
                assert_eq!(
                    sigmas[k].to_bits(),
                    sd.max(min_sigma).to_bits(),
                    "round {round}, k {k}"
                );
            }
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
