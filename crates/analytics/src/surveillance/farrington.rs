//! R's `farringtonFlexible` (surveillance 1.26.0) as pure functions: reference windows, the
//! reweighted quasi-Poisson GLM, the trend test, and the delta / nbPlugin / muan thresholds.
//! It copies R's quirks so alarms match R's (docs/detection.md, "The R quirk the code copies").

use std::cell::RefCell;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use statrs::distribution::{
    ContinuousCDF, Discrete, DiscreteCDF, NegativeBinomial, Normal, Poisson as PoissonDist,
};

use super::glm::{
    GLM_EPSILON, GLM_MAXIT, GlmError, Grouped, Wants, Workspace, dispersion, predict, t_test_below,
};

/// Power transformation of the delta threshold (R's `powertrans`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerTrans {
    /// "2/3": skewness correction (the default).
    #[default]
    TwoThirds,
    /// "1/2": variance stabilising.
    Half,
    /// "none".
    None,
}

impl PowerTrans {
    fn exponent(self) -> f64 {
        match self {
            PowerTrans::TwoThirds => 2.0 / 3.0,
            PowerTrans::Half => 1.0 / 2.0,
            PowerTrans::None => 1.0,
        }
    }
}

/// How the upper bound is derived from the prediction (R's `thresholdMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMethod {
    /// Farrington et al. (1996): normal approximation on the power-transformed scale.
    #[default]
    Delta,
    /// Noufaily et al. (2013): negative binomial quantile with plug-in mean.
    NbPlugin,
    /// Negative binomial quantile at the upper (1 - alpha) quantile of the mean.
    Muan,
}

/// `farringtonFlexible`'s control list. Defaults are R's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct FarringtonConfig {
    /// Years to go back.
    pub b: usize,
    /// Half-width of the reference windows.
    pub w: usize,
    /// Down-weight past outbreaks by their Anscombe residuals.
    pub reweight: bool,
    /// Residuals above this are down-weighted (1 in the original method, 2.58 in Noufaily's).
    pub weights_threshold: f64,
    /// One-sided level of the prediction interval.
    pub alpha: f64,
    /// Try a linear time trend.
    pub trend: bool,
    /// Keep the trend only when its p-value is below this.
    pub p_threshold_trend: f64,
    /// (cases, periods): no bound and no alarm unless the last `periods` periods (current
    /// included) hold at least `cases` cases.
    pub limit54: (u64, usize),
    /// Power transformation of the delta threshold.
    pub power_trans: PowerTrans,
    /// Number of seasonal factor levels per year (1: windows only, the original method).
    pub no_periods: usize,
    /// Most recent periods left out of the fit; `None` means `w`.
    pub past_periods_not_included: Option<usize>,
    /// Threshold method.
    pub threshold_method: ThresholdMethod,
}

impl Default for FarringtonConfig {
    fn default() -> Self {
        FarringtonConfig {
            b: 5,
            w: 3,
            reweight: true,
            weights_threshold: 2.58,
            alpha: 0.05,
            trend: true,
            p_threshold_trend: 0.05,
            limit54: (5, 4),
            power_trans: PowerTrans::TwoThirds,
            no_periods: 1,
            past_periods_not_included: None,
            threshold_method: ThresholdMethod::Delta,
        }
    }
}

impl FarringtonConfig {
    /// The vignette's "improved method" (Noufaily et al. 2013) settings, with `b = 4`.
    pub fn noufaily() -> Self {
        FarringtonConfig {
            b: 4,
            no_periods: 10,
            weights_threshold: 2.58,
            past_periods_not_included: Some(26),
            p_threshold_trend: 1.0,
            threshold_method: ThresholdMethod::NbPlugin,
            ..FarringtonConfig::default()
        }
    }
}

/// How time points are placed in calendar time, which decides the reference points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epochs<'a> {
    /// Integer epochs (R's `epochAsDate = FALSE`): reference points are `k - i * freq`.
    Index,
    /// Dates as days since 1970-01-01, one per count (R's `epochAsDate = TRUE`). With
    /// `freq = 52` the reference point is the same calendar date `i` years back moved to the
    /// nearest same weekday; with 12 or 365 it is the same calendar date.
    Days(&'a [i64]),
}

/// The outcome for one evaluated time point. `None` is R's `NA`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FarringtonPoint {
    /// 0-based index into the series.
    pub index: usize,
    /// Expected count (response scale); `None` without enough recent cases or without a fit.
    pub expected: Option<f64>,
    /// Upper bound; `None` without enough recent cases (limit54) or without a fit.
    pub upper_bound: Option<f64>,
    /// R's alarm: score > 1 and a nonzero count, with enough recent cases.
    pub alarm: bool,
    /// Probability of a count at least as large as the observed one under the model.
    pub p_value: Option<f64>,
    /// The lower bound of the prediction interval (the mirror of `upper_bound`); `None`
    /// where the upper one is.
    #[serde(default)]
    pub lower_bound: Option<f64>,
    /// Probability of a count at most as large as the observed one under the model (the
    /// lower tail, for falls).
    #[serde(default)]
    pub p_lower: Option<f64>,
    /// (y - predFit) / (U - predFit); predFit is on the link scale for the NB methods (as R).
    pub score: Option<f64>,
    /// Overdispersion of the final fit, at least 1.
    pub phi: Option<f64>,
    /// Whether the time trend was kept.
    pub trend: bool,
}

impl FarringtonPoint {
    fn na(index: usize) -> Self {
        FarringtonPoint {
            index,
            expected: None,
            upper_bound: None,
            alarm: false,
            p_value: None,
            lower_bound: None,
            p_lower: None,
            score: None,
            phi: None,
            trend: false,
        }
    }
}

/// Why `farringtonFlexible` cannot run (R stops with an error in each of these cases).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FarringtonError {
    #[error("invalid farrington configuration: {0}")]
    Config(String),
    #[error("{dates} dates given for {counts} counts; give one date per count")]
    DatesLength { dates: usize, counts: usize },
    #[error("dates must be equally spaced and increasing; give weekly, monthly or daily dates")]
    Dates,
    #[error("range {start}..{end} is outside the series of {len} periods")]
    Range {
        start: usize,
        end: usize,
        len: usize,
    },
    #[error(
        "not enough history at index {index}: reference point {years} year(s) back (with a window of {w}) \
         is before the start of the series; decrease `b` or start the range later"
    )]
    InsufficientHistory {
        index: usize,
        years: usize,
        w: usize,
    },
    #[error(
        "no_periods = {no_periods} is too big for the {gap} periods between reference windows at index {index}"
    )]
    TooManyPeriods {
        index: usize,
        no_periods: usize,
        gap: usize,
    },
    #[error("the GLM at index {index} cannot be fitted: {source}")]
    Glm {
        index: usize,
        #[source]
        source: GlmError,
    },
}

/// The pieces a threshold function returns (R's `list(lower, upper, prob, score)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Lower bound, at least 0.
    pub lower: f64,
    /// Upper bound; `None` where it is not defined (R's NA).
    pub upper: Option<f64>,
    /// Probability of observing a count at least as large as `y`.
    pub p_value: Option<f64>,
    /// Probability of observing a count at most as large as `y` (the lower tail; not in R,
    /// which tests only for outbreaks: borderwatch's `fall` detector reads it). Computed
    /// only below the lower bound, where a fall can alarm (`None` elsewhere): the negative
    /// binomial's tail costs as much as the upper p-value, and the parity settings never
    /// need it.
    #[serde(default)]
    pub p_lower: Option<f64>,
    /// (y - predFit) / (upper - predFit).
    pub score: Option<f64>,
}

fn qnorm(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}

fn finite(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// R's `algo.farrington.threshold.farrington`: the delta-method bound. `pred_fit` is mu0 on
/// the response scale and `pred_se_fit` its standard error; the interval is one-sided.
pub fn delta_threshold(
    pred_fit: f64,
    pred_se_fit: f64,
    phi: f64,
    power: PowerTrans,
    alpha: f64,
    y: Option<f64>,
) -> Threshold {
    let mu0 = pred_fit;
    let tau = phi + pred_se_fit * pred_se_fit / mu0;
    let exponent = power.exponent();
    let se = match power {
        PowerTrans::None => (mu0 * tau).sqrt(),
        PowerTrans::Half => (1.0 / 4.0 * tau).sqrt(),
        PowerTrans::TwoThirds => (4.0 / 9.0 * mu0.powf(1.0 / 3.0) * tau).sqrt(),
    };
    let z = qnorm(1.0 - alpha);
    let centre = mu0.powf(exponent);
    let a = (centre - z * se).powf(1.0 / exponent);
    let c = (centre + z * se).powf(1.0 / exponent);
    // sort(na.last = FALSE): NaNs first, then ascending.
    let (lo, hi) = match (a.is_nan(), c.is_nan()) {
        (false, false) => (a.min(c), a.max(c)),
        (true, false) => (f64::NAN, c),
        (false, true) => (f64::NAN, a),
        (true, true) => (f64::NAN, f64::NAN),
    };
    let lower = if lo.is_nan() { 0.0 } else { lo.max(0.0) };
    let upper = finite(hi);
    let p_value = y.map(|y| {
        Normal::new(centre, se)
            .map(|d| d.sf(y.powf(exponent)))
            .unwrap_or(f64::NAN)
    });
    let p_lower = y.filter(|&y| y < lower).map(|y| {
        Normal::new(centre, se)
            .map(|d| d.cdf(y.powf(exponent)))
            .unwrap_or(f64::NAN)
    });
    let score = match (y, upper) {
        (Some(y), Some(u)) => Some((y - pred_fit) / (u - pred_fit)),
        _ => None,
    };
    Threshold {
        lower,
        upper,
        p_value: p_value.and_then(finite),
        p_lower: p_lower.and_then(finite),
        score: score.and_then(finite),
    }
}

/// R's `algo.farrington.threshold.noufaily` with `method = "nbPlugin"`: `pred_fit` is the
/// linear predictor eta0 (link scale).
pub fn nb_plugin_threshold(
    pred_fit: f64,
    pred_se_fit: f64,
    phi: f64,
    alpha: f64,
    y: Option<f64>,
) -> Threshold {
    noufaily_threshold(pred_fit, pred_se_fit, phi, alpha, y, false)
}

/// R's `algo.farrington.threshold.noufaily` with `method = "muan"`: the NB quantile at
/// exp(qnorm(1 - alpha, eta0, se(eta0))).
pub fn muan_threshold(
    pred_fit: f64,
    pred_se_fit: f64,
    phi: f64,
    alpha: f64,
    y: Option<f64>,
) -> Threshold {
    noufaily_threshold(pred_fit, pred_se_fit, phi, alpha, y, true)
}

fn noufaily_threshold(
    pred_fit: f64,
    pred_se_fit: f64,
    phi: f64,
    alpha: f64,
    y: Option<f64>,
    muan: bool,
) -> Threshold {
    let m = if muan {
        (pred_fit + pred_se_fit * qnorm(1.0 - alpha)).exp()
    } else {
        pred_fit.exp()
    };
    if m == f64::INFINITY || m.is_nan() {
        return Threshold {
            lower: 0.0,
            upper: None,
            p_value: None,
            p_lower: None,
            score: None,
        };
    }
    let (lower, upper) = if phi > 1.0 {
        let size = m / (phi - 1.0);
        let prob = 1.0 / phi;
        qnbinom_pair(alpha, size, prob)
    } else {
        qpois_pair(alpha, m)
    };
    let lower = lower.max(0.0);
    let p_value = y.map(|y| {
        if y < 1.0 {
            1.0
        } else if phi != 1.0 {
            pnbinom_upper((y - 1.0) as u64, m / (phi - 1.0), 1.0 / phi)
        } else {
            ppois_upper((y - 1.0) as u64, m)
        }
    });
    let p_lower = y.filter(|&y| y < lower).map(|y| {
        let q = y.max(0.0) as u64;
        if phi != 1.0 {
            pnbinom_lower(q, m / (phi - 1.0), 1.0 / phi)
        } else {
            ppois_lower(q, m)
        }
    });
    let score = y.map(|y| (y - pred_fit) / (upper - pred_fit));
    Threshold {
        lower,
        upper: finite(upper),
        p_value: p_value.and_then(finite),
        p_lower: p_lower.and_then(finite),
        score: score.and_then(finite),
    }
}

/// P(X > q) for X ~ NB(size, prob) (R's `pnbinom(q, size, prob, lower.tail = FALSE)`).
fn pnbinom_upper(q: u64, size: f64, prob: f64) -> f64 {
    if size == 0.0 {
        return 0.0;
    }
    NegativeBinomial::new(size, prob)
        .map(|d| d.sf(q))
        .unwrap_or(f64::NAN)
}

/// P(X ≤ q) for X ~ NB(size, prob).
fn pnbinom_lower(q: u64, size: f64, prob: f64) -> f64 {
    if size == 0.0 {
        return 1.0;
    }
    NegativeBinomial::new(size, prob)
        .map(|d| d.cdf(q))
        .unwrap_or(f64::NAN)
}

/// P(X ≤ q) for X ~ Poisson(lambda).
fn ppois_lower(q: u64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        return 1.0;
    }
    PoissonDist::new(lambda)
        .map(|d| d.cdf(q))
        .unwrap_or(f64::NAN)
}

/// P(X > q) for X ~ Poisson(lambda).
fn ppois_upper(q: u64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        return 0.0;
    }
    PoissonDist::new(lambda)
        .map(|d| d.sf(q))
        .unwrap_or(f64::NAN)
}

/// The smallest x in (lo, hi] with cdf(x) >= target, given cdf(lo) < target <= cdf(hi).
fn smallest_reaching(mut lo: u64, mut hi: u64, cdf: &impl Fn(u64) -> f64, target: f64) -> u64 {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if cdf(mid) >= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Smallest integer x with cdf(x) >= p (with R's fuzz for left continuity), searching from a
/// normal-approximation start.
fn discrete_quantile(p: f64, mean: f64, sd: f64, cdf: impl Fn(u64) -> f64) -> f64 {
    if p.is_nan() || mean.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let target = p * (1.0 - 64.0 * f64::EPSILON);
    let guess = (mean + sd * qnorm(p)).floor();
    let mut x = if guess.is_finite() && guess > 0.0 {
        guess as u64
    } else {
        0
    };
    if cdf(x) >= target {
        // Step down, doubling, then bisect.
        let mut step = 1u64;
        loop {
            if x == 0 {
                return 0.0;
            }
            let cand = x.saturating_sub(step);
            if cdf(cand) >= target {
                x = cand;
                step *= 2;
            } else {
                // Answer in (cand, x].
                return smallest_reaching(cand, x, &cdf, target) as f64;
            }
        }
    } else {
        let mut step = 1u64;
        loop {
            let cand = x.saturating_add(step);
            if cdf(cand) >= target {
                return smallest_reaching(x, cand, &cdf, target) as f64;
            }
            if cand == u64::MAX {
                return f64::INFINITY;
            }
            x = cand;
            step = step.saturating_mul(2);
        }
    }
}

/// R's `qnbinom(p, size, prob)`.
fn qnbinom(p: f64, size: f64, prob: f64) -> f64 {
    if size == 0.0 || prob == 1.0 {
        return 0.0;
    }
    let Ok(d) = NegativeBinomial::new(size, prob) else {
        return f64::NAN;
    };
    let mean = size * (1.0 - prob) / prob;
    let sd = (mean / prob).sqrt();
    let cdf = |x| d.cdf(x);
    // Cornish-Fisher start as R's qnbinom: skewness (Q + P) / sigma with Q = 1/prob,
    // P = (1 - prob)/prob.
    let skew = (1.0 / prob + (1.0 - prob) / prob) / sd;
    let q = 1.0 - prob;
    let walk = Walk {
        cdf: &cdf,
        pmf: &|x| d.pmf(x),
        ratio: &|k| (k as f64 + size) / (k as f64 + 1.0) * q,
    };
    fast_quantile(p, mean, sd, skew, size + mean, &walk)
        .unwrap_or_else(|| discrete_quantile(p, mean, sd, cdf))
}

/// (R's `qnbinom(alpha, size, prob)`, `qnbinom(1 - alpha, size, prob)`): both quantiles
/// from one upward sum of the masses where [`summed_quantiles`] applies, else each by
/// [`qnbinom`].
fn qnbinom_pair(alpha: f64, size: f64, prob: f64) -> (f64, f64) {
    let each = || (qnbinom(alpha, size, prob), qnbinom(1.0 - alpha, size, prob));
    if size == 0.0 || prob == 1.0 {
        return each();
    }
    let Ok(d) = NegativeBinomial::new(size, prob) else {
        return each();
    };
    let mean = size * (1.0 - prob) / prob;
    let sd = (mean / prob).sqrt();
    let q = 1.0 - prob;
    let walk = Masses {
        cdf: |x| d.cdf(x),
        pmf: |x| d.pmf(x),
        num: |k| (k + size) * q,
        den: |k| k + 1.0,
        zero: (size * prob.ln()).exp(),
    };
    // Below the mode the masses fall at least geometrically going down where size >= 1:
    // pmf(k - 1) / pmf(k) = k / ((k - 1 + size) q) grows with k.
    let levels = [alpha, 1.0 - alpha];
    // Cornish-Fisher skewness as in `qnbinom`.
    let skew = (1.0 / prob + (1.0 - prob) / prob) / sd;
    summed_quantiles(levels, mean, sd, size + mean, size >= 1.0, &walk)
        .or_else(|| walked_quantiles(levels, mean, sd, skew, size + mean, &walk))
        .map_or_else(each, |[lo, hi]| (lo, hi))
}

/// (R's `qpois(alpha, lambda)`, `qpois(1 - alpha, lambda)`), as [`qnbinom_pair`].
fn qpois_pair(alpha: f64, lambda: f64) -> (f64, f64) {
    let each = || (qpois(alpha, lambda), qpois(1.0 - alpha, lambda));
    if lambda == 0.0 {
        return each();
    }
    let Ok(d) = PoissonDist::new(lambda) else {
        return each();
    };
    let walk = Masses {
        cdf: |x| d.cdf(x),
        pmf: |x| d.pmf(x),
        num: |_| lambda,
        den: |k| k + 1.0,
        zero: (-lambda).exp(),
    };
    // pmf(k - 1) / pmf(k) = k / lambda grows with k.
    let levels = [alpha, 1.0 - alpha];
    let sd = lambda.sqrt();
    summed_quantiles(levels, lambda, sd, lambda, true, &walk)
        .or_else(|| walked_quantiles(levels, lambda, sd, 1.0 / sd, lambda, &walk))
        .map_or_else(each, |[lo, hi]| (lo, hi))
}

/// A discrete distribution as [`summed_quantiles`] adds it up: the exact (statrs) CDF, the
/// probability mass, and pmf(k + 1) / pmf(k) as num(k) / den(k) (k as a float; by type, so
/// that the sum's loop inlines them).
struct Masses<C, P, N, D> {
    cdf: C,
    pmf: P,
    num: N,
    den: D,
    /// pmf(0), computed directly (prob^size, e^-lambda) to a few ulps times its exponent
    /// instead of through the log-gamma differences of `pmf`.
    zero: f64,
}

impl<C, P, N, D> Masses<C, P, N, D>
where
    C: Fn(u64) -> f64,
    P: Fn(u64) -> f64,
    N: Fn(f64) -> f64,
    D: Fn(f64) -> f64,
{
    /// pmf(k + 1) / pmf(k).
    fn ratio(&self, k: u64) -> f64 {
        (self.num)(k as f64) / (self.den)(k as f64)
    }

    /// From the state `(k, c, f)` (c within about 2e-10 of cdf(k), f = pmf(k)), the state at
    /// the smallest x >= k with cdf(x) >= target: masses added upward two at a time with one
    /// division (pmf(k + 1) = f n0 d1 / (d0 d1), pmf(k + 2) = f n0 n1 / (d0 d1), with
    /// n = num and d = den at k and k + 1), each running value compared with the target,
    /// exactly (statrs' CDF) within [`WALK_MARGIN`] of it. `None` once past `limit` or at a
    /// non-finite value.
    fn sum_up(&self, state: (u64, f64, f64), target: f64, limit: u64) -> Option<(u64, f64, f64)> {
        let reached = |k: u64, c: f64| {
            if (c - target).abs() <= WALK_MARGIN {
                (self.cdf)(k) >= target
            } else {
                c >= target
            }
        };
        let (mut k, mut c, mut f) = state;
        if reached(k, c) {
            return Some((k, c, f));
        }
        while k < limit {
            let kf = k as f64;
            let (n0, n1) = ((self.num)(kf), (self.num)(kf + 1.0));
            let (d0, d1) = ((self.den)(kf), (self.den)(kf + 1.0));
            let inv = 1.0 / (d0 * d1);
            let f1 = f * (n0 * d1 * inv);
            let f2 = f * (n0 * n1 * inv);
            let c1 = c + f1;
            if !(f2.is_finite() && c1.is_finite()) {
                return None;
            }
            if reached(k + 1, c1) {
                return Some((k + 1, c1, f1));
            }
            (k, c, f) = (k + 2, c1 + f2, f2);
            if reached(k, c) {
                return Some((k, c, f));
            }
        }
        None
    }
}

/// Both quantiles of a pair (`ps[0] < ps[1]`) with one exact CDF evaluation where the
/// parameters are too large for [`summed_quantiles`]: the lower by [`fast_quantile`]'s walk,
/// then the upper by adding masses upward from the walk's state at the lower, at most
/// [`SUM_TERMS`] of them, comparing with the target as [`summed_quantiles`] does (the
/// running value stays within about 1e-10 of the CDF). `None` where the walk does not apply
/// or the upper is too far: answer each level by itself.
fn walked_quantiles(
    ps: [f64; 2],
    mean: f64,
    sd: f64,
    skew: f64,
    scale: f64,
    d: &Masses<impl Fn(u64) -> f64, impl Fn(u64) -> f64, impl Fn(f64) -> f64, impl Fn(f64) -> f64>,
) -> Option<[f64; 2]> {
    if !(ps[0] < ps[1] && ps[1] < 1.0) {
        return None;
    }
    let walk = Walk {
        cdf: &d.cdf,
        pmf: &d.pmf,
        ratio: &|k| d.ratio(k),
    };
    let (lower, c, f) = fast_quantile_state(ps[0], mean, sd, skew, scale, &walk)?;
    let target = ps[1] * (1.0 - 64.0 * f64::EPSILON);
    let (upper, _, _) = d.sum_up((lower, c, f), target, lower + SUM_TERMS)?;
    Some([lower as f64, upper as f64])
}

/// Most masses [`summed_quantiles`] and [`walked_quantiles`] add (beyond, the CDF's
/// continued fraction costs less time than the sum: one step of the sum is a multiplication
/// and an addition in a chain with an independent division beside it, one step of statrs'
/// continued fraction two chained divisions; measured on the bench's parameters, 2 to 5,000
/// counts with dispersions 1.5 to 6, the pair took ~0.9 us against ~1.3 us for two
/// [`qnbinom`] calls with 600, and no gain with 100).
const SUM_TERMS: u64 = 600;

/// Standard deviations below the mean where [`summed_quantiles`] starts.
const SUM_START_SDS: f64 = 6.5;

/// Largest probability below the start that [`summed_quantiles`] leaves out.
const SUM_LEFT_TAIL: f64 = 1e-10;

/// The same answers as [`discrete_quantile`] for each level in `ps` (the smallest x with
/// cdf(x) >= p, R's fuzz included), from one upward sum of the probability masses instead of
/// exact CDF evaluations: start at k0 = 0, or [`SUM_START_SDS`] standard deviations below the
/// mean where the masses below k0 provably add to at most [`SUM_LEFT_TAIL`] (they fall at
/// least geometrically going down when `down_geometric`: pmf(k - 1) / pmf(k) grows with k),
/// take the exact pmf(k0), and add pmf(k + 1) = pmf(k) * ratio(k) step by step. The running
/// sum is within about 2e-10 of the CDF (pmf(k0)'s relative error of about 1e-11 from statrs'
/// `ln_gamma` differences, or of about 1e-13 for pmf(0) = prob^size or e^-lambda where the
/// exponent is at most the ~700 that keeps it a normal number, a few ulps per step over at most [`SUM_TERMS`] steps, and the left
/// tail of at most 1e-10), so outside [`WALK_MARGIN`] of the target its comparison with the target is the one
/// the exact CDF gives; within the margin the exact CDF decides, as in [`fast_quantile`].
/// `None` where it does not apply (huge parameters, levels outside (1e-6, 1), an unbounded
/// left tail, too many steps, non-finite values): answer each level by the walk or search.
fn summed_quantiles(
    ps: [f64; 2],
    mean: f64,
    sd: f64,
    scale: f64,
    down_geometric: bool,
    d: &Masses<impl Fn(u64) -> f64, impl Fn(u64) -> f64, impl Fn(f64) -> f64, impl Fn(f64) -> f64>,
) -> Option<[f64; 2]> {
    let applies = mean.is_finite()
        && sd.is_finite()
        && scale <= WALK_MAX_SCALE
        && ps.iter().all(|&p| p > 1e-6 && p < 1.0);
    if !applies {
        return None;
    }
    let start = (mean - SUM_START_SDS * sd).floor();
    let k0 = if down_geometric && start >= 1.0 {
        start as u64
    } else {
        0
    };
    // Where the sum would stop, roughly (the larger level's normal quantile, plus a margin
    // for the skewness): beyond SUM_TERMS steps, leave it to the walk without starting.
    let z = qnorm(ps[0].max(ps[1])).max(0.0);
    let end = mean + (z + 1.0) * sd + 2.0;
    let span = end - k0 as f64;
    if !span.is_finite() || span > SUM_TERMS as f64 {
        return None;
    }
    let f = if k0 == 0 { d.zero } else { (d.pmf)(k0) };
    if !(f.is_finite() && f >= f64::MIN_POSITIVE) {
        return None;
    }
    if k0 > 0 {
        // The masses below k0 add to at most f (rho + rho^2 + ...).
        let rho = 1.0 / d.ratio(k0 - 1);
        if !(rho < 1.0 && f * rho / (1.0 - rho) <= SUM_LEFT_TAIL) {
            return None;
        }
    }
    let mut state = (k0, f, f);
    let mut out = [0.0; 2];
    let order = if ps[0] <= ps[1] { [0, 1] } else { [1, 0] };
    for i in order {
        let target = ps[i] * (1.0 - 64.0 * f64::EPSILON);
        state = d.sum_up(state, target, k0 + SUM_TERMS)?;
        out[i] = state.0 as f64;
    }
    Some(out)
}

/// R's `qpois(p, lambda)`.
fn qpois(p: f64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        return 0.0;
    }
    let Ok(d) = PoissonDist::new(lambda) else {
        return f64::NAN;
    };
    let sd = lambda.sqrt();
    let cdf = |x| d.cdf(x);
    let walk = Walk {
        cdf: &cdf,
        pmf: &|x| d.pmf(x),
        ratio: &|k| lambda / (k as f64 + 1.0),
    };
    fast_quantile(p, lambda, sd, 1.0 / sd, lambda, &walk)
        .unwrap_or_else(|| discrete_quantile(p, lambda, sd, cdf))
}

/// A discrete distribution as [`fast_quantile`] walks it: the exact (statrs) CDF, the
/// probability mass, and pmf(k + 1) / pmf(k).
struct Walk<'a> {
    cdf: &'a dyn Fn(u64) -> f64,
    pmf: &'a dyn Fn(u64) -> f64,
    ratio: &'a dyn Fn(u64) -> f64,
}

/// A CDF value computed by the recurrence closer than this to the target is recomputed
/// exactly. The recurrence carries the exact CDF of the start along with masses accurate to
/// about 1e-11 relative (statrs' `ln_gamma` differences), a few steps at most, so outside this
/// margin its comparison with the target is the one the exact CDF gives.
const WALK_MARGIN: f64 = 1e-8;

/// Steps the walk takes before it gives up (the bisection of [`discrete_quantile`] then
/// answers).
const WALK_STEPS: usize = 12;

/// Largest `size + mean` (or lambda) of the fast path: statrs' incomplete beta / gamma
/// evaluate a continued fraction of at most 140 terms, which needs about sqrt of the
/// parameters; beyond this, leave the exact search to [`discrete_quantile`] as before.
const WALK_MAX_SCALE: f64 = 1.5e4;

/// The same answer as [`discrete_quantile`] (the smallest x with cdf(x) >= p, R's fuzz
/// included) with one exact CDF evaluation instead of several: start at R's Cornish-Fisher
/// guess, evaluate the CDF there exactly, and walk to the neighbours by adding or removing
/// probability masses (pmf(k+1) = pmf(k) * ratio(k)), recomputing exactly wherever the
/// running value is within [`WALK_MARGIN`] of the target. `None` when the walk does not
/// apply (huge parameters, a guess too far off, non-finite values): use the search.
fn fast_quantile(p: f64, mean: f64, sd: f64, skew: f64, scale: f64, d: &Walk<'_>) -> Option<f64> {
    fast_quantile_state(p, mean, sd, skew, scale, d).map(|(x, _, _)| x as f64)
}

/// [`fast_quantile`], with the walk's state at the answer x: (x, the running CDF value at x,
/// pmf(x)), the running value within about 1e-10 of cdf(x).
fn fast_quantile_state(
    p: f64,
    mean: f64,
    sd: f64,
    skew: f64,
    scale: f64,
    d: &Walk<'_>,
) -> Option<(u64, f64, f64)> {
    let applies = p > 0.0 && p < 1.0 && mean.is_finite() && scale <= WALK_MAX_SCALE;
    if !applies {
        return None;
    }
    let target = p * (1.0 - 64.0 * f64::EPSILON);
    let z = qnorm(p);
    let guess = (mean + sd * (z + skew * (z * z - 1.0) / 6.0)).round();
    if !guess.is_finite() {
        return None;
    }
    let mut x = guess.max(0.0) as u64;
    let mut c = (d.cdf)(x);
    let mut f = (d.pmf)(x);
    if !(c.is_finite() && f.is_finite() && f > 0.0) {
        return None;
    }
    // Whether cdf(at) >= target given the running value `v`; exact near the target.
    let reaches = |at: u64, v: &mut f64| {
        if (*v - target).abs() <= WALK_MARGIN {
            *v = (d.cdf)(at);
        }
        *v >= target
    };
    if c >= target {
        for _ in 0..WALK_STEPS {
            if x == 0 {
                return Some((0, c, f));
            }
            let mut below = c - f;
            if !reaches(x - 1, &mut below) {
                return Some((x, c, f));
            }
            f /= (d.ratio)(x - 1);
            c = below;
            x -= 1;
        }
    } else {
        for _ in 0..WALK_STEPS {
            f *= (d.ratio)(x);
            x += 1;
            c += f;
            if reaches(x, &mut c) {
                return Some((x, c, f));
            }
        }
    }
    None
}

/// R's `anscombe.residuals(m, phi)`: 1.5 (y^(2/3) mu^(-1/6) - mu^(1/2)) / sqrt(phi (1 - h)).
pub fn anscombe_residuals(y: &[f64], mu: &[f64], hat: &[f64], phi: f64) -> Vec<f64> {
    let mut y23 = Vec::with_capacity(y.len());
    powers_two_thirds(y, &mut y23);
    let mut out = Vec::with_capacity(y.len());
    anscombe_residuals_into(&y23, mu, hat, phi, &mut out);
    out
}

/// y^(2/3) for each y.
fn powers_two_thirds(y: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend(y.iter().map(|&y| y.powf(2.0 / 3.0)));
}

/// [`anscombe_residuals`] into a reused buffer, given y^(2/3) (see [`powers_two_thirds`]).
fn anscombe_residuals_into(y23: &[f64], mu: &[f64], hat: &[f64], phi: f64, out: &mut Vec<f64>) {
    out.clear();
    out.extend(y23.iter().zip(mu).zip(hat).map(|((&y23, &m), &h)| {
        3.0 / 2.0 * (y23 * m.powf(-1.0 / 6.0) - m.sqrt()) / (phi * (1.0 - h)).sqrt()
    }));
}

/// The residuals [`anscombe_weights_into`] reads with `threshold`, computed only where they
/// matter: the weights treat every residual that is not above the threshold alike (weight
/// gamma), so a residual that is clearly below it (decided with multiplications and square
/// roots instead of `powf`, see below) is written as -inf, which the weights treat the same;
/// every other one exactly as [`anscombe_residuals_into`] computes it. So the weights are the
/// same numbers.
///
/// With d = sqrt(phi (1 - h)) > 0 and y^(2/3), mu, the threshold t positive and finite,
/// s > t means y^(2/3) mu^(-1/6) > sqrt(mu) + t d / 1.5, and both sides being positive, the
/// same for their sixth powers: (y^(2/3))^6 / mu > (sqrt(mu) + t d / 1.5)^6. Each side is
/// computed to within about 1e-13 relative (a few roundings, each a sixth power at most), and
/// the residual itself (`powf` within an ulp, then the difference, a cancellation of at
/// most about 1e-15 of y^(2/3) mu^(-1/6) absolute) moves by less again, so a left side below
/// 1 - 1e-9 of the right one means that the residual as computed is below the threshold too.
/// Anything non-finite, h = 1 or a threshold that is not positive takes the exact formula.
fn anscombe_residuals_for_weights(
    y23: &[f64],
    mu: &[f64],
    hat: &[f64],
    phi: f64,
    threshold: f64,
    out: &mut Vec<f64>,
) {
    out.clear();
    out.extend(y23.iter().zip(mu).zip(hat).map(|((&y23, &m), &h)| {
        let d = (phi * (1.0 - h)).sqrt();
        let clearly_below = threshold > 0.0
            && threshold.is_finite()
            && d > 0.0
            && d.is_finite()
            && m > 0.0
            && m.is_finite()
            && y23 >= 0.0
            && y23.is_finite()
            && {
                let c = y23 * y23 * y23;
                let lhs = c * c / m;
                let b = m.sqrt() + threshold * d / 1.5;
                let b3 = b * b * b;
                lhs < b3 * b3 * (1.0 - 1e-9)
            };
        if clearly_below {
            f64::NEG_INFINITY
        } else {
            3.0 / 2.0 * (y23 * m.powf(-1.0 / 6.0) - m.sqrt()) / (phi * (1.0 - h)).sqrt()
        }
    }));
}

/// R's `algo.farrington.assign.weights(s, weightsThreshold)`: gamma s^-2 above the threshold,
/// gamma elsewhere, with gamma chosen so the weights sum to the number of points.
pub fn anscombe_weights(s: &[f64], threshold: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(s.len());
    anscombe_weights_into(s, threshold, &mut out);
    out
}

/// [`anscombe_weights`] into a reused buffer.
fn anscombe_weights_into(s: &[f64], threshold: f64, out: &mut Vec<f64>) {
    // A NaN residual (h = 1 and y = mu) counts as not above the threshold.
    let above = |v: f64| v > threshold;
    let denom: f64 = s
        .iter()
        .map(|&v| if above(v) { v.powi(-2) } else { 1.0 })
        .sum();
    let gamma = s.len() as f64 / denom;
    out.clear();
    out.extend(
        s.iter()
            .map(|&v| if above(v) { gamma * v.powi(-2) } else { gamma }),
    );
}

// ---------------------------------------------------------------------------------------------
// Calendar helpers (days since 1970-01-01, proleptic Gregorian), so no date crate is needed.

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// 0 = Sunday, as R's `format(date, "%w")`.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The same calendar date `years` back, as `seq(by = "-1 year")` (Feb 29 becomes Mar 1).
fn minus_years(days: i64, years: i64) -> i64 {
    let (y, m, d) = civil_from_days(days);
    days_from_civil(y - years, m, d)
}

/// R's `algo.farrington.referencetimepoints` for dates: day `t` and the same date 1..=b years
/// back; for weekly data (`weekly`) each moved to the nearest day with `t`'s weekday.
pub fn reference_dates(t: i64, b: usize, weekly: bool) -> Vec<i64> {
    (0..=b as i64)
        .map(|i| {
            let r = minus_years(t, i);
            if !weekly {
                return r;
            }
            let a = r - (weekday(r) - weekday(t));
            let bb = a + if a > r { -7 } else { 7 };
            if (a - r).abs() > (bb - r).abs() {
                bb
            } else {
                a
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------

/// Labels of R's `blocks()`: `Some(level)` for points used in the fit (before removing the
/// most recent ones). `refs` are 0-based indices, `refs[0] = k`, descending.
#[cfg(test)]
fn blocks(
    n: usize,
    refs: &[usize],
    w: usize,
    p: usize,
    years_back: usize,
) -> Result<Vec<Option<usize>>, FarringtonError> {
    let mut labels = Vec::new();
    blocks_into(n, refs, w, p, years_back, &mut labels)?;
    Ok(labels)
}

/// [`blocks`] into a reused buffer.
fn blocks_into(
    n: usize,
    refs: &[usize],
    w: usize,
    p: usize,
    years_back: usize,
    labels: &mut Vec<Option<usize>>,
) -> Result<(), FarringtonError> {
    let k = refs[0];
    labels.clear();
    labels.resize(n, None);
    for l in &mut labels[k.saturating_sub(w)..=k] {
        *l = Some(p);
    }
    for i in 1..=years_back {
        let r = refs[i];
        // R silently drops index 0 but fails on negative indices.
        if r + 1 < w {
            return Err(FarringtonError::InsufficientHistory {
                index: k,
                years: i,
                w,
            });
        }
        let hi = (r + w).min(n - 1);
        for l in &mut labels[r.saturating_sub(w)..=hi] {
            *l = Some(p);
        }
        if p != 1 {
            let prev = refs[i - 1] as i64;
            let period = prev - 2 * w as i64 - 1 - r as i64;
            // R only refuses period < p - (2w + 1); shorter gaps give empty blocks for which
            // R's `a:(a - 1)` counts backwards into the window. Refuse those too.
            if period < p as i64 - 1 {
                return Err(FarringtonError::TooManyPeriods {
                    index: k,
                    no_periods: p,
                    gap: period.max(0) as usize,
                });
            }
            let period = period as usize;
            let len = period / (p - 1);
            let rest = period % (p - 1);
            let mut start = r + w + 1;
            for j in 1..p {
                let l = len + usize::from(j <= rest);
                for lab in &mut labels[start..start + l] {
                    *lab = Some(j);
                }
                start += l;
            }
        }
    }
    Ok(())
}

/// Rows of the GLM for one time point (R's `algo.farrington.data.glm`).
#[derive(Debug, Default)]
struct GlmData {
    response: Vec<f64>,
    wtime: Vec<f64>,
    /// Seasonal level per row.
    groups: Vec<usize>,
    /// wtime of the evaluated point, measured as R does it in the prediction step.
    wtime_now: f64,
}

/// Buffers reused from point to point and from call to call (one set per thread), so that
/// evaluating a point allocates nothing once they have grown.
#[derive(Debug, Default)]
struct Scratch {
    refs: Vec<usize>,
    labels: Vec<Option<usize>>,
    data: GlmData,
    /// Sorted seasonal levels present (the first is the reference level), empty without
    /// factors.
    levels: Vec<usize>,
    /// Each row's position in `levels` (0 throughout without factors), for the grouped fit.
    level_idx: Vec<usize>,
    /// Position of each level value in `levels`, see [`levels_into`].
    level_pos: Vec<usize>,
    /// Column-major design of the current fit.
    x: Vec<f64>,
    /// Design row of the evaluated point.
    x0: Vec<f64>,
    residuals: Vec<f64>,
    omega: Vec<f64>,
    /// response^(2/3) of the current point, computed on first use (empty until then).
    y23: Vec<f64>,
    pow_memo: PowMemo,
    ws: Workspace,
}

/// A direct-mapped memo of y^(2/3): the same counts come back in the windows of many points,
/// and `powf` is a pure function, so a remembered value is the very same number.
#[derive(Debug)]
struct PowMemo {
    /// (bits of y, y^(2/3)); the key `u64::MAX` (a NaN) marks an empty slot.
    slots: Vec<(u64, f64)>,
}

impl Default for PowMemo {
    fn default() -> Self {
        PowMemo {
            slots: vec![(u64::MAX, 0.0); 1024],
        }
    }
}

impl PowMemo {
    fn two_thirds(&mut self, y: f64) -> f64 {
        let bits = y.to_bits();
        let slot = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
        let entry = &mut self.slots[slot];
        if entry.0 != bits {
            *entry = (bits, y.powf(2.0 / 3.0));
        }
        entry.1
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// One fit of R's `algo.farrington.fitGLM.flexible`, reduced to what the evaluation uses.
#[derive(Debug)]
struct FlexFit {
    /// max(1, Pearson dispersion) of the final (possibly reweighted) fit.
    phi: f64,
    /// What `summary.glm` and `predict.glm` see afterwards (quirk Q1): the dispersion
    /// computed with `model$weights <- omega`.
    summary_dispersion: f64,
    has_time: bool,
    /// `predict(model, newdata, se.fit = TRUE)` on the link scale before scaling: eta and
    /// x0'(X'WX)^-1 x0. `None` if the evaluated point's level is not in the fit (R's predict
    /// fails on a new factor level).
    prediction: Option<(f64, f64)>,
    /// Whether the two-sided p-value of the time coefficient (with `has_time` and a
    /// prediction) is below `p_threshold_trend`; `false` when the coefficient is aliased.
    trend_significant: bool,
}

/// Column-major design (intercept, wtime, level indicators) into `x`, which it returns.
fn design_into<'x>(data: &GlmData, time: bool, levels: &[usize], x: &'x mut Vec<f64>) -> &'x [f64] {
    let n = data.response.len();
    x.clear();
    x.resize(n, 1.0);
    if time {
        x.extend_from_slice(&data.wtime);
    }
    for &lev in levels.iter().skip(1) {
        x.extend(
            data.groups
                .iter()
                .map(|&g| if g == lev { 1.0 } else { 0.0 }),
        );
    }
    x
}

/// The sorted seasonal levels present in `groups` into `levels` (empty without `factors`),
/// and each row's position among them (the design's level columns; 0 for every row without
/// factors) into `idx`. Levels are small integers (at most `no_periods`), so they are counted
/// in a table indexed by level (`pos`, reused) instead of sorted.
fn levels_into(
    groups: &[usize],
    factors: bool,
    levels: &mut Vec<usize>,
    idx: &mut Vec<usize>,
    pos: &mut Vec<usize>,
) {
    levels.clear();
    idx.clear();
    if !factors {
        idx.resize(groups.len(), 0);
        return;
    }
    const ABSENT: usize = usize::MAX;
    let top = groups.iter().copied().max().unwrap_or(0);
    pos.clear();
    pos.resize(top + 1, ABSENT);
    for &g in groups {
        pos[g] = 0;
    }
    for (g, slot) in pos.iter_mut().enumerate() {
        if *slot != ABSENT {
            *slot = levels.len();
            levels.push(g);
        }
    }
    idx.extend(groups.iter().map(|&g| pos[g]));
}

/// Design row of the evaluated point: intercept, wtime, level `p`. `false` if level `p` is not
/// in the fit (R's predict fails on a new factor level).
fn x_now_into(
    has_time: bool,
    levels: &[usize],
    wtime_now: f64,
    p: usize,
    x: &mut Vec<f64>,
) -> bool {
    x.clear();
    x.push(1.0);
    if has_time {
        x.push(wtime_now);
    }
    if !levels.is_empty() {
        if !levels.contains(&p) {
            return false;
        }
        for &lev in levels.iter().skip(1) {
            x.push(if lev == p { 1.0 } else { 0.0 });
        }
    }
    true
}

fn fit_flexible(
    s: &mut Scratch,
    time: bool,
    cfg: &FarringtonConfig,
    index: usize,
) -> Result<Option<FlexFit>, FarringtonError> {
    let glm_err = |source| FarringtonError::Glm { index, source };
    let first = Wants {
        hat: cfg.reweight,
        cov: !cfg.reweight,
    };
    let mut has_time = time;
    let y = &s.data.response;
    let levels = s.levels.len().max(1);
    let grouped = |has_time: bool| Grouped {
        level: &s.level_idx,
        levels,
        time: has_time.then_some(&s.data.wtime[..]),
    };
    // The design by columns, built only where the grouped fit hands over to the QR.
    let (data, level_values, x) = (&s.data, &s.levels[..], &mut s.x);
    let mut fit =
        s.ws.fit_grouped(
            || design_into(data, has_time, level_values, x),
            grouped(has_time),
            y,
            None,
            GLM_EPSILON,
            GLM_MAXIT,
            first,
        )
        .map_err(glm_err)?;
    if !fit.converged {
        if has_time {
            has_time = false;
            fit =
                s.ws.fit_grouped(
                    || design_into(data, false, level_values, x),
                    grouped(false),
                    y,
                    None,
                    GLM_EPSILON,
                    GLM_MAXIT,
                    first,
                )
                .map_err(glm_err)?;
        }
        if !fit.converged {
            return Ok(None);
        }
    }
    let pearson = |ws: &Workspace, df| dispersion(&ws.working_weights, &ws.working_residuals, df);
    // The Pearson dispersion of the fit in the workspace, computed once per fit.
    let mut pearson_now = pearson(&s.ws, fit.df_residual);
    let mut phi = pearson_now.max(1.0);
    let summary_dispersion = if cfg.reweight {
        // R has no result at this point when the weights cannot be formed, and stops the
        // whole call: without residual degrees of freedom its phi is max(NaN, 1) = NaN, so
        // every Anscombe residual is NaN and `algo.farrington.assign.weights` fails ("NAs
        // are not allowed in subscripted assignments"; with one row, glm.fit's "object 'fit'
        // not found"); if every residual is +Inf (h = 1), gamma = Inf gives NaN weights.
        // Give an NA point there instead of stopping the call.
        if pearson_now.is_nan() {
            return Ok(None);
        }
        if s.y23.len() != y.len() {
            s.y23.clear();
            s.y23.extend(y.iter().map(|&v| s.pow_memo.two_thirds(v)));
        }
        anscombe_residuals_for_weights(
            &s.y23,
            &s.ws.mu,
            &s.ws.hat,
            phi,
            cfg.weights_threshold,
            &mut s.residuals,
        );
        anscombe_weights_into(&s.residuals, cfg.weights_threshold, &mut s.omega);
        if s.omega.iter().any(|w| !w.is_finite()) {
            return Ok(None);
        }
        // R does not check convergence of the reweighted fit.
        let wants = Wants {
            hat: false,
            cov: true,
        };
        // Where no residual is above the threshold every weight is exactly 1 (gamma = n / n),
        // and the reweighted fit is the first one again: same start, same iterations, same
        // numbers. Its results are then taken from the first fit's final state.
        let again =
            s.ws.grouped_fit_again(grouped(has_time), y, Some(&s.omega), fit, wants);
        fit = match again {
            Some(info) => info,
            None => {
                s.ws.fit_grouped(
                    || design_into(data, has_time, level_values, x),
                    grouped(has_time),
                    y,
                    Some(&s.omega),
                    GLM_EPSILON,
                    GLM_MAXIT,
                    wants,
                )
                .map_err(glm_err)?
            }
        };
        pearson_now = pearson(&s.ws, fit.df_residual);
        phi = pearson_now.max(1.0);
        dispersion(&s.omega, &s.ws.working_residuals, fit.df_residual)
    } else {
        pearson_now
    };
    // `max(NaN, 1)` is NaN in R; keep that.
    if pearson_now.is_nan() {
        phi = f64::NAN;
    }
    let mut prediction = None;
    let mut trend_significant = false;
    if x_now_into(
        has_time,
        &s.levels,
        s.data.wtime_now,
        cfg.no_periods,
        &mut s.x0,
    ) {
        prediction = Some(predict(&s.ws.coefficients, &s.ws.cov, &s.x0));
        if has_time {
            trend_significant = t_test_below(
                &s.ws.coefficients,
                &s.ws.cov,
                1,
                summary_dispersion,
                fit.df_residual,
                cfg.p_threshold_trend,
            );
        }
    }
    Ok(Some(FlexFit {
        phi,
        summary_dispersion,
        has_time,
        prediction,
        trend_significant,
    }))
}

/// R's `farringtonFlexible` with integer epochs (`epochAsDate = FALSE`). `counts` is the whole
/// series (`None` = missing), `freq` periods per year, `range` the 0-based indices to evaluate
/// (default `freq * b + w .. n`, R's `(freq*b + w + 1):n`).
///
/// Missing reference history is an error for the whole call (as in R); a GLM that does not
/// converge with or without trend gives an all-`None` point (as R's NA).
pub fn farrington_flexible(
    counts: &[Option<u64>],
    freq: usize,
    range: Option<Range<usize>>,
    cfg: &FarringtonConfig,
) -> Result<Vec<FarringtonPoint>, FarringtonError> {
    farrington_flexible_with_epochs(counts, freq, Epochs::Index, range, cfg)
}

/// [`farrington_flexible`] with a choice of epochs: pass [`Epochs::Days`] to reproduce R on an
/// `sts` built with `epochAsDate = TRUE` (weekly data with dates, as epysurv and the
/// vignette do).
pub fn farrington_flexible_with_epochs(
    counts: &[Option<u64>],
    freq: usize,
    epochs: Epochs<'_>,
    range: Option<Range<usize>>,
    cfg: &FarringtonConfig,
) -> Result<Vec<FarringtonPoint>, FarringtonError> {
    let n = counts.len();
    validate(cfg, freq)?;
    if let Epochs::Days(days) = epochs {
        if days.len() != n {
            return Err(FarringtonError::DatesLength {
                dates: days.len(),
                counts: n,
            });
        }
        if days.windows(2).any(|d| d[1] <= d[0]) || n < 2 {
            return Err(FarringtonError::Dates);
        }
        if !matches!(freq, 52 | 12 | 365) {
            return Err(FarringtonError::Config(format!(
                "dated epochs need freq 52, 12 or 365 (R has no reference rule for freq {freq}); \
                 use integer epochs"
            )));
        }
    }
    let range = range.unwrap_or(freq * cfg.b + cfg.w..n);
    if range.start >= range.end || range.end > n {
        return Err(FarringtonError::Range {
            start: range.start,
            end: range.end,
            len: n,
        });
    }
    let pwni = cfg.past_periods_not_included.unwrap_or(cfg.w);
    let factors = cfg.no_periods != 1;
    let y: Vec<Option<f64>> = counts.iter().map(|c| c.map(|v| v as f64)).collect();

    with_scratch(|s| {
        let mut out = Vec::with_capacity(range.len());
        for k in range {
            reference_indices_into(k, freq, epochs, cfg.b, &mut s.refs)?;
            blocks_into(n, &s.refs, cfg.w, cfg.no_periods, cfg.b, &mut s.labels)?;
            glm_data_into(&s.labels, &y, k, pwni, epochs, &mut s.data);
            s.y23.clear();
            levels_into(
                &s.data.groups,
                factors,
                &mut s.levels,
                &mut s.level_idx,
                &mut s.level_pos,
            );
            out.push(evaluate(k, s, &y, cfg)?);
        }
        Ok(out)
    })
}

fn validate(cfg: &FarringtonConfig, freq: usize) -> Result<(), FarringtonError> {
    let bad = |m: &str| Err(FarringtonError::Config(m.to_string()));
    if freq == 0 {
        return bad("freq must be at least 1");
    }
    if cfg.b == 0 {
        return bad("b must be at least 1");
    }
    if cfg.no_periods == 0 {
        return bad("no_periods must be at least 1");
    }
    if !(cfg.alpha > 0.0 && cfg.alpha < 1.0) {
        return bad("alpha must be in (0, 1)");
    }
    if cfg.limit54.1 == 0 {
        return bad("limit54 period must be > 0");
    }
    Ok(())
}

/// 0-based indices of the reference points, `[k, ...]`, descending, into `refs`.
fn reference_indices_into(
    k: usize,
    freq: usize,
    epochs: Epochs<'_>,
    b: usize,
    refs: &mut Vec<usize>,
) -> Result<(), FarringtonError> {
    let missing = |years| FarringtonError::InsufficientHistory {
        index: k,
        years,
        w: 0,
    };
    refs.clear();
    match epochs {
        Epochs::Index => {
            for i in 0..=b {
                refs.push(k.checked_sub(i * freq).ok_or_else(|| missing(i))?);
            }
        }
        Epochs::Days(days) => {
            for (i, d) in reference_dates(days[k], b, freq == 52)
                .into_iter()
                .enumerate()
            {
                refs.push(days.binary_search(&d).map_err(|_| missing(i))?);
            }
        }
    }
    Ok(())
}

fn glm_data_into(
    labels: &[Option<usize>],
    y: &[Option<f64>],
    k: usize,
    pwni: usize,
    epochs: Epochs<'_>,
    data: &mut GlmData,
) {
    let recent = k.saturating_sub(pwni)..=k;
    let used = |i: usize| labels[i].is_some() && !recent.contains(&i);
    let time_of = |i: usize, origin: usize| match epochs {
        Epochs::Index => (i + 1) as f64,
        Epochs::Days(d) => (d[i] - d[origin]) as f64 / (d[1] - d[0]) as f64,
    };
    let origin = (0..labels.len()).find(|&i| used(i)).unwrap_or(k);
    data.response.clear();
    data.wtime.clear();
    data.groups.clear();
    // R measures the prediction's wtime from the first row left after dropping missing
    // counts, while the fit's wtime starts at the first used row (they differ only when that
    // count is missing).
    let mut origin_now = None;
    for i in origin..labels.len() {
        if !used(i) {
            continue;
        }
        if let Some(v) = y[i] {
            origin_now.get_or_insert(i);
            data.response.push(v);
            data.wtime.push(time_of(i, origin));
            data.groups.push(labels[i].unwrap_or(0));
        }
    }
    data.wtime_now = time_of(k, origin_now.unwrap_or(origin));
}

fn evaluate(
    k: usize,
    s: &mut Scratch,
    y: &[Option<f64>],
    cfg: &FarringtonConfig,
) -> Result<FarringtonPoint, FarringtonError> {
    let Some(mut model) = fit_flexible(s, cfg.trend, cfg, k)? else {
        return Ok(FarringtonPoint::na(k));
    };
    let mut do_trend = false;
    if model.has_time {
        let Some((eta, _)) = model.prediction else {
            return Ok(FarringtonPoint::na(k));
        };
        let fit_response = eta.exp().max(f64::EPSILON);
        let significant = model.trend_significant;
        let max_response = s.data.response.iter().copied().fold(f64::NAN, f64::max);
        let no_extrapolation = fit_response <= max_response;
        do_trend = cfg.b >= 3 && significant && no_extrapolation;
        if !do_trend {
            match fit_flexible(s, false, cfg, k)? {
                Some(m) => model = m,
                None => return Ok(FarringtonPoint::na(k)),
            }
        }
    }
    let Some((eta, var)) = model.prediction else {
        return Ok(FarringtonPoint::na(k));
    };
    let se_link = (var * model.summary_dispersion).sqrt();
    let phi = model.phi;
    let yk = y[k];
    let (lu, pred_fit) = match cfg.threshold_method {
        ThresholdMethod::Delta => {
            let mu0 = eta.exp().max(f64::EPSILON);
            let se = se_link * mu0;
            (
                delta_threshold(mu0, se, phi, cfg.power_trans, cfg.alpha, yk),
                mu0,
            )
        }
        ThresholdMethod::NbPlugin => (nb_plugin_threshold(eta, se_link, phi, cfg.alpha, yk), eta),
        ThresholdMethod::Muan => (muan_threshold(eta, se_link, phi, cfg.alpha, yk), eta),
    };
    let (cases, periods) = cfg.limit54;
    let window = (k + 1).saturating_sub(periods)..=k;
    let recent: Option<f64> = y[window].iter().copied().sum();
    let enough = recent.is_some_and(|s| s >= cases as f64);
    let score = lu.score;
    let alarm = enough && score.is_some_and(|s| s > 1.0) && yk.is_some_and(|v| v != 0.0);
    let expected = match (enough, lu.upper) {
        (true, Some(_)) => Some(match cfg.threshold_method {
            ThresholdMethod::Delta => pred_fit,
            _ => pred_fit.exp(),
        }),
        _ => None,
    };
    Ok(FarringtonPoint {
        index: k,
        expected,
        upper_bound: if enough { lu.upper } else { None },
        alarm,
        p_value: lu.p_value,
        lower_bound: (enough && lu.upper.is_some()).then_some(lu.lower),
        p_lower: if enough { lu.p_lower } else { None },
        score,
        phi: finite(phi),
        trend: do_trend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-12)
    }

    #[test]
    fn delta_threshold_reproduces_package_test_for_power_none() {
        let t = delta_threshold(5.0, 0.2, 1.0, PowerTrans::None, 0.05, Some(8.0));
        assert!(close(t.lower, 1.3073128, 1e-7));
        assert!(close(t.upper.unwrap(), 8.6926872, 1e-7));
        assert!(close(t.p_value.unwrap(), 0.0907246, 1e-6));
        assert!(close(t.score.unwrap(), 0.8124165, 1e-7));
    }

    /// The package's threshold unit-test inputs, against R 4.2.2 / surveillance 1.20.3 printing
    /// 17 digits (the shared CSV rounds them to 7). Bounds and scores agree to 1e-13; p-values
    /// to 1e-9, the accuracy of statrs' normal and beta tails (R's pnorm is Cody's algorithm).
    #[test]
    #[allow(clippy::excessive_precision)] // R's values exactly as printed
    fn thresholds_match_r_to_full_precision() {
        let cases = [
            (
                PowerTrans::None,
                [
                    1.30731276593307033,
                    8.69268723406693056,
                    0.09072460386071016,
                    0.81241648962941237,
                ],
            ),
            (
                PowerTrans::Half,
                [
                    1.9891097163651146,
                    9.3744841844989732,
                    0.1189985829145086,
                    0.6857951414318810,
                ],
            ),
            (
                PowerTrans::TwoThirds,
                [
                    1.8084476509717649,
                    9.1154824950046933,
                    0.1094726600042496,
                    0.7289546252818113,
                ],
            ),
        ];
        for (power, want) in cases {
            let t = delta_threshold(5.0, 0.2, 1.0, power, 0.05, Some(8.0));
            let got = [
                t.lower,
                t.upper.unwrap(),
                t.p_value.unwrap(),
                t.score.unwrap(),
            ];
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let tol = if i == 2 { 1e-9 } else { 1e-13 };
                assert!(close(*g, w, tol), "{power:?}: {got:?} vs {want:?}");
            }
        }
        let (eta, se, y) = (5f64.ln(), 2f64.ln(), Some(11.0));
        let nb = [
            (
                nb_plugin_threshold(eta, se, 1.5, 0.05, y),
                [1.0, 10.0, 0.03763657109466346, 1.11918152676349481],
            ),
            (
                nb_plugin_threshold(eta, se, 1.0, 0.05, y),
                [2.0, 9.0, 0.01369526859838293, 1.27061541142653556],
            ),
            (
                muan_threshold(eta, se, 1.5, 0.05, y),
                [8.0, 24.0, 0.8597797196439607, 0.4193982290770958],
            ),
        ];
        for (t, want) in nb {
            let got = [
                t.lower,
                t.upper.unwrap(),
                t.p_value.unwrap(),
                t.score.unwrap(),
            ];
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let tol = if i == 2 { 1e-9 } else { 1e-13 };
                assert!(close(*g, w, tol), "{got:?} vs {want:?}");
            }
        }
    }

    /// The walk from the Cornish-Fisher start gives the quantile the exact search gives, over
    /// means from 0.01 to 1e5, dispersions from barely above 1 to 100 and levels in both tails
    /// (fixed ones and pseudo-random ones); most of these cases take the walk.
    #[test]
    fn walked_quantiles_equal_the_searched_ones() {
        let mut uniform = crate::surveillance::test_uniform(0x2545_F491_4F6C_DD1Du64);
        let (mut checked, mut walked) = (0, 0);
        for i in 0..=140 {
            let mean = 0.01 * 10f64.powf(i as f64 / 20.0);
            for phi in [1.0, 1.0001, 1.01, 1.1, 1.5, 2.0, 3.0, 6.0, 20.0, 100.0] {
                let fixed = [0.001, 0.01, 0.05, 0.3, 0.5, 0.95, 0.975, 0.99, 0.999];
                let random: Vec<f64> = (0..6).map(|_| uniform()).collect();
                for p in fixed.into_iter().chain(random) {
                    let (fast, searched, took_walk) = if phi > 1.0 {
                        let (size, prob) = (mean / (phi - 1.0), 1.0 / phi);
                        let d = NegativeBinomial::new(size, prob).unwrap();
                        let m = size * (1.0 - prob) / prob;
                        let sd = (m / prob).sqrt();
                        let searched = discrete_quantile(p, m, sd, |x| d.cdf(x));
                        let skew = (1.0 / prob + (1.0 - prob) / prob) / sd;
                        let walk = Walk {
                            cdf: &|x| d.cdf(x),
                            pmf: &|x| d.pmf(x),
                            ratio: &|k| (k as f64 + size) / (k as f64 + 1.0) * (1.0 - prob),
                        };
                        let took = fast_quantile(p, m, sd, skew, size + m, &walk).is_some();
                        (qnbinom(p, size, prob), searched, took)
                    } else {
                        let d = PoissonDist::new(mean).unwrap();
                        let sd = mean.sqrt();
                        let searched = discrete_quantile(p, mean, sd, |x| d.cdf(x));
                        let walk = Walk {
                            cdf: &|x| d.cdf(x),
                            pmf: &|x| d.pmf(x),
                            ratio: &|k| mean / (k as f64 + 1.0),
                        };
                        let took = fast_quantile(p, mean, sd, 1.0 / sd, mean, &walk).is_some();
                        (qpois(p, mean), searched, took)
                    };
                    assert_eq!(fast, searched, "mean {mean}, phi {phi}, p {p}");
                    checked += 1;
                    walked += usize::from(took_walk);
                }
            }
        }
        assert!(walked * 3 > checked * 2, "{walked} of {checked} walked");
    }

    /// The quantile pairs of the NB and Poisson thresholds ([`qnbinom_pair`], [`qpois_pair`]:
    /// both levels from one sum of the masses where [`summed_quantiles`] applies) are the
    /// quantiles the bisection search finds, over the same grid as the walk's test plus
    /// dispersions barely above 1, and levels near 0 and 1 (where the sum does not apply).
    #[test]
    fn summed_quantile_pairs_equal_the_searched_ones() {
        let mut uniform = crate::surveillance::test_uniform(0x9E37_79B9_7F4A_7C15u64);
        let (mut checked, mut summed) = (0, 0);
        for i in 0..=140 {
            let mean = 0.01 * 10f64.powf(i as f64 / 20.0);
            for phi in [
                1.0,
                1.0 + 1e-8,
                1.0001,
                1.01,
                1.1,
                1.5,
                2.0,
                3.0,
                6.0,
                20.0,
                100.0,
            ] {
                let fixed = [1e-7, 0.001, 0.01, 0.05, 0.3, 0.5, 0.95, 0.975, 0.99, 0.999];
                let random: Vec<f64> = (0..6).map(|_| uniform()).collect();
                for alpha in fixed.into_iter().chain(random) {
                    let levels = [alpha, 1.0 - alpha];
                    let (pair, searched, took) = if phi > 1.0 {
                        let (size, prob) = (mean / (phi - 1.0), 1.0 / phi);
                        let d = NegativeBinomial::new(size, prob).unwrap();
                        let m = size * (1.0 - prob) / prob;
                        let sd = (m / prob).sqrt();
                        let searched = levels.map(|p| discrete_quantile(p, m, sd, |x| d.cdf(x)));
                        let masses = Masses {
                            cdf: |x| d.cdf(x),
                            pmf: |x| d.pmf(x),
                            num: |k| (k + size) * (1.0 - prob),
                            den: |k| k + 1.0,
                            zero: (size * prob.ln()).exp(),
                        };
                        let took = summed_quantiles(levels, m, sd, size + m, size >= 1.0, &masses)
                            .is_some();
                        (qnbinom_pair(alpha, size, prob), searched, took)
                    } else {
                        let d = PoissonDist::new(mean).unwrap();
                        let sd = mean.sqrt();
                        let searched = levels.map(|p| discrete_quantile(p, mean, sd, |x| d.cdf(x)));
                        let masses = Masses {
                            cdf: |x| d.cdf(x),
                            pmf: |x| d.pmf(x),
                            num: |_| mean,
                            den: |k| k + 1.0,
                            zero: (-mean).exp(),
                        };
                        let took =
                            summed_quantiles(levels, mean, sd, mean, true, &masses).is_some();
                        (qpois_pair(alpha, mean), searched, took)
                    };
                    assert_eq!(
                        [pair.0, pair.1],
                        searched,
                        "mean {mean}, phi {phi}, alpha {alpha}"
                    );
                    checked += 1;
                    summed += usize::from(took);
                }
            }
        }
        assert!(summed * 3 > checked, "{summed} of {checked} summed");
    }

    /// [`anscombe_residuals_for_weights`] leaves out (as -inf) only residuals that are at
    /// most the threshold as [`anscombe_residuals_into`] computes them, writes every other one
    /// bit for bit as it does, and so gives the same weights; including residuals within
    /// 1e-15 to 1e-3 (relative) of the threshold on either side, h near 1 and exact fits.
    #[test]
    fn residuals_for_weights_give_the_same_weights() {
        let mut uniform = crate::surveillance::test_uniform(0x0123_4567_89AB_CDEFu64);
        let (mut left_out, mut near) = (0, 0);
        for case in 0..4000 {
            let n = 8 + case % 40;
            let phi = 1.0 + 5.0 * uniform();
            let threshold = [1.0, 2.58, 0.0, -1.0, 1e-3][case % 5];
            let (mut y23, mut mu, mut hat) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..n {
                let m = [f64::EPSILON, 0.3, 4.0, 80.0, 3000.0][i % 5] * (0.5 + uniform());
                let h = match i % 7 {
                    0 => 1.0,
                    1 => 1.0 - 1e-15,
                    _ => 0.9 * uniform(),
                };
                let d = (phi * (1.0 - h)).sqrt();
                let v = match i % 4 {
                    // Near the threshold: y^(2/3) mu^(-1/6) = sqrt(mu) + t d / 1.5, moved by
                    // a tiny relative amount either way.
                    0 | 1 => {
                        near += 1;
                        let rel = 10f64.powf(-15.0 + 12.0 * uniform());
                        let sign = if i % 4 == 0 { 1.0 } else { -1.0 };
                        (m.sqrt() + threshold * d / 1.5) * m.powf(1.0 / 6.0) * (1.0 + sign * rel)
                    }
                    2 => (m * (0.5 + uniform())).powf(2.0 / 3.0),
                    _ => (10.0 * m * uniform()).round().powf(2.0 / 3.0),
                };
                y23.push(v.max(0.0));
                mu.push(m);
                hat.push(h);
            }
            let (mut exact, mut some) = (Vec::new(), Vec::new());
            anscombe_residuals_into(&y23, &mu, &hat, phi, &mut exact);
            anscombe_residuals_for_weights(&y23, &mu, &hat, phi, threshold, &mut some);
            for (&e, &s) in exact.iter().zip(&some) {
                if s == f64::NEG_INFINITY && e != f64::NEG_INFINITY {
                    assert!(
                        e <= threshold || e.is_nan(),
                        "left out {e} above {threshold}"
                    );
                    left_out += 1;
                } else {
                    assert_eq!(e.to_bits(), s.to_bits());
                }
            }
            let (mut we, mut ws) = (Vec::new(), Vec::new());
            anscombe_weights_into(&exact, threshold, &mut we);
            anscombe_weights_into(&some, threshold, &mut ws);
            let bits = |v: &[f64]| v.iter().map(|w| w.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&we), bits(&ws));
        }
        assert!(
            left_out > 10_000 && near > 10_000,
            "{left_out} left out, {near} near"
        );
    }

    #[test]
    fn nb_plugin_uses_poisson_when_phi_is_one() {
        let t = nb_plugin_threshold(5f64.ln(), 2f64.ln(), 1.0, 0.05, Some(11.0));
        assert_eq!((t.lower, t.upper), (2.0, Some(9.0)));
    }

    #[test]
    fn weights_sum_to_n_and_downweight_large_residuals() {
        let w = anscombe_weights(&[0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 2.0], 0.0);
        assert!(w[..5].iter().all(|v| close(*v, 1.6, 1e-12)));
        assert!(w[5..].iter().all(|v| close(*v, 0.4, 1e-12)));
        assert_eq!(anscombe_weights(&[0.5; 10], 1.0), vec![1.0; 10]);
    }

    #[test]
    fn reference_dates_move_to_the_same_weekday() {
        // 2011-01-03 (Monday): 3 years back is Thursday 2008-01-03, nearest Monday 2007-12-31.
        let t = days_from_civil(2011, 1, 3);
        let r = reference_dates(t, 3, true);
        assert_eq!(r[0], t);
        assert_eq!(civil_from_days(r[3]), (2007, 12, 31));
        assert!(r.iter().all(|&d| weekday(d) == 1));
        // Feb 29 one year back is Mar 1 (R's seq by "-1 year").
        assert_eq!(
            civil_from_days(minus_years(days_from_civil(2012, 2, 29), 1)),
            (2011, 3, 1)
        );
    }

    #[test]
    fn civil_round_trip() {
        for z in [-1000, 0, 1, 15_000, 20_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(weekday(0), 4);
    }

    #[test]
    fn blocks_split_the_gaps_into_periods() {
        // freq 12, w 1, b 1, p 3: window around k-12 and k, gap of 12-2-1 = 9 points in 2 blocks.
        let refs = [20, 8];
        let l = blocks(21, &refs, 1, 3, 1).unwrap();
        assert_eq!(&l[7..10], &[Some(3); 3]);
        assert_eq!(&l[10..15], &[Some(1); 5]);
        assert_eq!(&l[15..19], &[Some(2); 4]);
        assert_eq!(&l[19..21], &[Some(3); 2]);
        assert_eq!(l[6], None);
    }

    #[test]
    fn default_config_is_r_default() {
        let c = FarringtonConfig::default();
        assert_eq!((c.b, c.w, c.limit54), (5, 3, (5, 4)));
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"threshold_method\":\"delta\""));
        assert!(json.contains("\"power_trans\":\"two_thirds\""));
    }

    /// With w = 0 and a missing count, some fits have as many rows as coefficients: R's phi
    /// is then max(NaN, 1) = NaN and its reweighting stops ("NAs are not allowed in
    /// subscripted assignments"). Those points are NA; the call goes on, and the other points
    /// are R's (surveillance 1.20.3, parity series q_muan_w0_missing_0002).
    #[test]
    fn saturated_first_fit_gives_an_na_point_not_an_error() {
        let counts: Vec<Option<u64>> = [
            1589, 1376, 1631, 1964, 1582, 1370, 1619, 1987, 1543, 1337, 1684, 2076, 1612, 0, 1664,
            2021, 1657, 1356, 1705, 2025, 1620, 1290, 1657, 2021, 0, 1376, 1730, 1995, 1610, 1330,
            1627, 2059,
        ]
        .iter()
        .enumerate()
        .map(|(i, &c)| (!matches!(i, 13 | 24)).then_some(c))
        .collect();
        let cfg = FarringtonConfig {
            b: 3,
            w: 0,
            weights_threshold: 1.0,
            threshold_method: ThresholdMethod::Muan,
            ..FarringtonConfig::default()
        };
        let out = farrington_flexible(&counts, 4, Some(12..32), &cfg).unwrap();
        for t in [18, 22, 26, 29] {
            assert_eq!(out[t - 13].upper_bound, None, "t = {t}");
        }
        let r = [
            (19, 1724.0, 1655.6666666666677, false),
            (24, 2065.0, 1990.1937928716914, false),
            (32, 2058.0, 1983.8520657186384, true),
        ];
        for (t, upper, expected, alarm) in r {
            let p = &out[t - 13];
            assert_eq!((p.upper_bound, p.alarm), (Some(upper), alarm), "t = {t}");
            assert!(close(p.expected.unwrap(), expected, 1e-9), "t = {t}");
        }
    }
}
