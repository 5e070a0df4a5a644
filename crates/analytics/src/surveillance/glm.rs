//! Quasi-Poisson log-link GLM fitted by IRLS, step for step as R's `glm.fit` does it, so that
//! `farringtonFlexible` reproduces R's numbers: the same start (mu = y + 0.1), the same
//! deviance-based stopping rule, and the same Householder QR with limited column pivoting
//! (LINPACK `dqrdc2`), so aliased columns are dropped exactly where R drops them.
//! `farringtonFlexible`'s designs (intercept, time, seasonal level indicators) are solved
//! through their structure instead (`Workspace::fit_grouped`): the same iterations, numbers
//! equal to R's up to rounding, and the QR above wherever R could drop a column.

/// R's `glm.control()` defaults.
pub const GLM_EPSILON: f64 = 1e-8;
/// R's `glm.control()` defaults.
pub const GLM_MAXIT: usize = 25;

/// Why a fit could not be computed at all (R stops with an error in these cases).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GlmError {
    #[error(
        "design has {columns} columns of length {rows}, but the response has {response} values"
    )]
    Shape {
        columns: usize,
        rows: usize,
        response: usize,
    },
    #[error(
        "negative or non-finite response {value} at row {row}; a Poisson GLM needs counts >= 0"
    )]
    InvalidResponse { row: usize, value: f64 },
    #[error("negative or non-finite prior weight {value} at row {row}")]
    InvalidWeight { row: usize, value: f64 },
    #[error("design matrix has rank {rank} but only {observations} observations")]
    TooFewObservations { rank: usize, observations: usize },
    #[error("the deviance became non-finite and step halving could not recover it")]
    NonFiniteDeviance,
}

/// The result of a quasi-Poisson log-link fit, with what `summary.glm`, `predict.glm` and
/// `hatvalues` need. Vectors indexed by observation have the length of the response.
#[derive(Debug, Clone)]
pub struct GlmFit {
    /// Coefficients in the order of the design columns; `None` where the column is aliased.
    pub coefficients: Vec<Option<f64>>,
    /// Fitted means mu at the final coefficients.
    pub fitted: Vec<f64>,
    /// Linear predictor eta at the final coefficients.
    pub linear_predictor: Vec<f64>,
    /// Working weights of the last IRLS iteration (R's `model$weights`: prior weight times mu
    /// of the iteration's start, as `glm.fit` stores them).
    pub working_weights: Vec<f64>,
    /// Working residuals (y - mu) / mu at the final fit (R's `model$residuals`).
    pub working_residuals: Vec<f64>,
    /// The prior weights the fit used.
    pub prior_weights: Vec<f64>,
    /// Diagonal of the hat matrix of the weighted least-squares problem of the last iteration.
    pub hat: Vec<f64>,
    /// Unscaled covariance (X'WX)^-1 over all design columns; rows and columns of aliased
    /// columns are zero.
    pub cov_unscaled: Vec<Vec<f64>>,
    /// Poisson deviance at the final fit.
    pub deviance: f64,
    /// Rank of the design.
    pub rank: usize,
    /// Observations with positive prior weight minus the rank.
    pub df_residual: usize,
    /// IRLS iterations run.
    pub iterations: usize,
    /// Whether the deviance criterion was met within `maxit` iterations.
    pub converged: bool,
}

impl GlmFit {
    /// `summary.glm`'s dispersion for quasi families: sum(w r^2) / df over w > 0, with the given
    /// weights `w` and the working residuals. Pass the working weights for the Pearson estimate.
    pub fn dispersion_with(&self, weights: &[f64]) -> f64 {
        dispersion(weights, &self.working_residuals, self.df_residual)
    }

    /// Pearson chi-square over residual degrees of freedom (R's `summary(model)$dispersion`).
    pub fn pearson_dispersion(&self) -> f64 {
        self.dispersion_with(&self.working_weights)
    }

    /// Linear predictor at a new design row, and its unscaled variance x0'(X'WX)^-1 x0.
    /// Aliased coefficients count as zero, as `predict.lm` does for rank-deficient fits.
    pub fn predict_link(&self, x0: &[f64]) -> (f64, f64) {
        let p = self.coefficients.len();
        let eta = (0..p)
            .map(|j| self.coefficients[j].map_or(0.0, |b| b * x0[j]))
            .sum();
        let mut var = 0.0;
        for i in 0..p {
            for j in 0..p {
                var += x0[i] * self.cov_unscaled[i][j] * x0[j];
            }
        }
        (eta, var)
    }

    /// Standard error, t value and two-sided p-value (t distribution with `df_residual`
    /// degrees of freedom) of coefficient `j` under the given dispersion, as in the coefficient
    /// table of `summary.glm`. `None` when the coefficient is aliased.
    pub fn t_test(&self, j: usize, dispersion: f64) -> Option<(f64, f64, f64)> {
        let beta = self.coefficients.get(j).copied().flatten()?;
        let se = (self.cov_unscaled[j][j] * dispersion).sqrt();
        let t = beta / se;
        let p = two_sided_t_pvalue(t, self.df_residual as f64);
        Some((se, t, p))
    }
}

/// 2 * pt(-|t|, df).
fn two_sided_t_pvalue(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    // As R's `pt` computes it: for |t| < sqrt(df) the upper tail of Beta(1/2, df/2) at
    // t^2 / (df + t^2), so that a tiny t gives 1 - tiny rather than exactly 1 (which decides
    // `p < pThresholdTrend` when that threshold is 1 and the trend estimate is ~0).
    let t2 = t * t;
    let nx = 1.0 + (t / df) * t;
    if nx > 1e100 {
        let lval = -0.5 * df * (2.0 * t.abs().ln() - df.ln())
            - statrs::function::beta::ln_beta(0.5 * df, 0.5)
            - (0.5 * df).ln();
        lval.exp()
    } else if df > t2 {
        1.0 - statrs::function::beta::beta_reg(0.5, df / 2.0, t2 / (df + t2))
    } else {
        statrs::function::beta::beta_reg(df / 2.0, 0.5, 1.0 / nx)
    }
}

/// `summary.glm`'s quasi dispersion: sum(w r^2) over w > 0, divided by `df` (NaN if df = 0).
pub(crate) fn dispersion(weights: &[f64], residuals: &[f64], df_residual: usize) -> f64 {
    if df_residual == 0 {
        return f64::NAN;
    }
    let ss: f64 = weights
        .iter()
        .zip(residuals)
        .filter(|(w, _)| **w > 0.0)
        .map(|(w, r)| w * r * r)
        .sum();
    ss / df_residual as f64
}

/// Linear predictor at `x0` and x0'(X'WX)^-1 x0, with `cov` row-major p x p.
pub(crate) fn predict(coefficients: &[Option<f64>], cov: &[f64], x0: &[f64]) -> (f64, f64) {
    let p = coefficients.len();
    let eta = (0..p)
        .map(|j| coefficients[j].map_or(0.0, |b| b * x0[j]))
        .sum();
    let mut var = 0.0;
    for i in 0..p {
        for j in 0..p {
            var += x0[i] * cov[i * p + j] * x0[j];
        }
    }
    (eta, var)
}

/// Whether the two-sided p-value of coefficient `j` (as [`GlmFit::t_test`] gives it) is below
/// `threshold`; `false` when the coefficient is aliased. farringtonFlexible only compares
/// the trend's p-value with `pThresholdTrend`, and Noufaily's setting is 1 ("keep any
/// trend"), where the answer is yes for every |t| >= 1e-3 with df >= 1: the p-value is then
/// at most 2 pt(-0.001, 1) < 0.9994, whatever the rounding of the incomplete beta. Those
/// cases skip that function (a continued fraction and three log-gammas); all others compute
/// the p-value as before.
pub(crate) fn t_test_below(
    coefficients: &[Option<f64>],
    cov: &[f64],
    j: usize,
    dispersion: f64,
    df_residual: usize,
    threshold: f64,
) -> bool {
    let Some(t) = t_value(coefficients, cov, j, dispersion).map(|(_, t)| t) else {
        return false;
    };
    if threshold >= 1.0 && df_residual >= 1 && t.abs() >= 1e-3 {
        return true;
    }
    two_sided_t_pvalue(t, df_residual as f64) < threshold
}

/// (se, t) of coefficient `j` as in `summary.glm`; `None` when aliased.
fn t_value(
    coefficients: &[Option<f64>],
    cov: &[f64],
    j: usize,
    dispersion: f64,
) -> Option<(f64, f64)> {
    let p = coefficients.len();
    let beta = coefficients.get(j).copied().flatten()?;
    let se = (cov[j * p + j] * dispersion).sqrt();
    Some((se, beta / se))
}

/// Fits `y ~ X` (X given by columns, including the intercept column if wanted) as a
/// quasi-Poisson GLM with log link, with optional prior weights, like
/// `glm(..., family = quasipoisson(link = "log"), weights = prior)`.
/// Non-convergence is not an error: check [`GlmFit::converged`].
pub fn fit_quasi_poisson(
    columns: &[Vec<f64>],
    y: &[f64],
    prior_weights: Option<&[f64]>,
) -> Result<GlmFit, GlmError> {
    fit_quasi_poisson_with(columns, y, prior_weights, GLM_EPSILON, GLM_MAXIT)
}

/// [`fit_quasi_poisson`] with explicit convergence tolerance and iteration limit.
pub fn fit_quasi_poisson_with(
    columns: &[Vec<f64>],
    y: &[f64],
    prior_weights: Option<&[f64]>,
    epsilon: f64,
    maxit: usize,
) -> Result<GlmFit, GlmError> {
    let n = y.len();
    let p = columns.len();
    if let Some(c) = columns.iter().find(|c| c.len() != n) {
        return Err(GlmError::Shape {
            columns: p,
            rows: c.len(),
            response: n,
        });
    }
    let mut x = Vec::with_capacity(n * p);
    for c in columns {
        x.extend_from_slice(c);
    }
    let mut ws = Workspace::default();
    let wants = Wants {
        hat: true,
        cov: true,
    };
    let fit = ws.fit(&x, p, y, prior_weights, epsilon, maxit, wants)?;
    Ok(GlmFit {
        coefficients: ws.coefficients.clone(),
        fitted: ws.mu.clone(),
        linear_predictor: ws.eta.clone(),
        working_weights: ws.working_weights.clone(),
        working_residuals: ws.working_residuals.clone(),
        prior_weights: ws.weights.clone(),
        hat: ws.hat.clone(),
        cov_unscaled: ws
            .cov
            .chunks(p.max(1))
            .take(p)
            .map(<[f64]>::to_vec)
            .collect(),
        deviance: deviance(y, &ws.mu, &ws.weights),
        rank: fit.rank,
        df_residual: fit.df_residual,
        iterations: fit.iterations,
        converged: fit.converged,
    })
}

/// Which by-products of a fit to compute (they do not change the fit itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wants {
    /// Hat values ([`Workspace::hat`]).
    pub hat: bool,
    /// Unscaled covariance ([`Workspace::cov`]).
    pub cov: bool,
}

/// The scalar results of [`Workspace::fit`]; the vectors stay in the workspace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FitInfo {
    pub rank: usize,
    pub df_residual: usize,
    pub iterations: usize,
    pub converged: bool,
}

#[inline]
fn linkinv(eta: f64) -> f64 {
    eta.exp().max(f64::EPSILON)
}

/// Poisson deviance, summed in row order.
fn deviance(y: &[f64], mu: &[f64], weights: &[f64]) -> f64 {
    y.iter()
        .zip(mu)
        .zip(weights)
        .map(|((&yi, &mi), &wi)| {
            if yi > 0.0 {
                2.0 * wi * (yi * (yi / mi).ln() - (yi - mi))
            } else {
                2.0 * mi * wi
            }
        })
        .sum()
}

/// eta = X coef (X column-major n x p; each element summed over the columns in order from
/// the starting value of `Iterator::sum`), mu = linkinv(eta) and the deviance at mu, in one
/// pass over the rows; returns the deviance and whether every mu is
/// finite. The deviance only decides convergence and step halving, so its log term is taken
/// as log(y) - eta (`log_y` holds log(y) for y > 0) instead of log(y / mu): the same number
/// to a few ulps, one logarithm per row and iteration fewer. Where mu is clamped at
/// `f64::EPSILON`, log(mu) itself is used.
#[allow(clippy::too_many_arguments)]
fn eta_mu_deviance(
    x: &[f64],
    n: usize,
    p: usize,
    coef: &[f64],
    y: &[f64],
    log_y: &[f64],
    weights: &[f64],
    eta: &mut [f64],
    mu: &mut [f64],
) -> (f64, bool) {
    let zero: f64 = std::iter::empty::<f64>().sum();
    let mut dev = zero;
    let mut finite = true;
    let coef = &coef[..p];
    for i in 0..n {
        let mut e = zero;
        for (j, &c) in coef.iter().enumerate() {
            e += x[j * n + i] * c;
        }
        eta[i] = e;
        let ex = e.exp();
        let m = ex.max(f64::EPSILON);
        mu[i] = m;
        finite &= m.is_finite();
        let (yi, wi) = (y[i], weights[i]);
        dev += if yi > 0.0 {
            let log_mu = if m == ex { e } else { m.ln() };
            2.0 * wi * (yi * (log_y[i] - log_mu) - (yi - m))
        } else {
            2.0 * m * wi
        };
    }
    (dev, finite)
}

/// Buffers of one IRLS fit, reused from fit to fit so that fitting allocates nothing once
/// the buffers have grown. After [`Workspace::fit`] the public fields hold the results (see
/// [`GlmFit`] for their meaning; `cov` is row-major p x p).
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    pub coefficients: Vec<Option<f64>>,
    pub mu: Vec<f64>,
    pub eta: Vec<f64>,
    pub working_weights: Vec<f64>,
    pub working_residuals: Vec<f64>,
    pub weights: Vec<f64>,
    pub hat: Vec<f64>,
    pub cov: Vec<f64>,
    good: Vec<usize>,
    /// Column-major good x p weighted design, then its QR.
    xw: Vec<f64>,
    zw: Vec<f64>,
    w: Vec<f64>,
    qraux: Vec<f64>,
    work1: Vec<f64>,
    work2: Vec<f64>,
    pivot: Vec<usize>,
    /// Column sums of the QR (norms, dot products), see [`column_sums`].
    dots: Vec<f64>,
    coef: Vec<f64>,
    start: Vec<f64>,
    coefold: Vec<f64>,
    rinv: Vec<f64>,
    v: Vec<f64>,
    /// The response of the last start computed, its eta and mu, and the unweighted deviance
    /// term of each row at the start.
    init_y: Vec<f64>,
    init_eta: Vec<f64>,
    init_mu: Vec<f64>,
    init_terms: Vec<f64>,
    /// log(y) of that response where y > 0 (0 elsewhere), for [`eta_mu_deviance`].
    init_log_y: Vec<f64>,
    /// The per-row start values by count, shared by the fits of consecutive points.
    start_memo: StartMemo,
    /// Per-level sums of the last grouped iteration, see [`Workspace::fit_grouped`].
    levels: LevelSums,
    /// Whether the last [`Workspace::fit_grouped`] was solved by the grouped IRLS (so that
    /// its level sums, parameters, mu and working weights are still in place for
    /// [`Workspace::grouped_fit_again`]).
    last_grouped: bool,
}

/// What `glm.fit`'s start gives one row, a pure function of its response y (see
/// [`StartValues::of`]).
#[derive(Debug, Clone, Copy)]
struct StartValues {
    /// eta = log(y + 0.1).
    eta: f64,
    /// mu = linkinv(eta).
    mu: f64,
    /// y log(y / mu) - (y - mu), the deviance term before its weight (0 where y = 0).
    term: f64,
    /// log(y) where y > 0, 0 elsewhere.
    log_y: f64,
}

impl StartValues {
    fn of(y: f64) -> Self {
        let eta = (y + 0.1).ln();
        let mu = linkinv(eta);
        let (term, log_y) = if y > 0.0 {
            (y * (y / mu).ln() - (y - mu), y.ln())
        } else {
            (0.0, 0.0)
        };
        StartValues {
            eta,
            mu,
            term,
            log_y,
        }
    }
}

/// A direct-mapped memo of [`StartValues::of`] by the bits of y. `farringtonFlexible` fits
/// one response per evaluated point, and consecutive points share most of their rows (the
/// reference windows move by one period), so most counts come back from one point to the
/// next; a remembered value is the very same number (three logarithms and an exponential
/// per row saved). Empty, and bypassed, until [`StartMemo::enable`].
#[derive(Debug, Default)]
struct StartMemo {
    /// (bits of y, its values); the key `u64::MAX` (a NaN, never a valid response) marks an
    /// empty slot.
    slots: Vec<(u64, StartValues)>,
}

impl StartMemo {
    const SLOTS: usize = 1024;

    fn enable(&mut self) {
        if self.slots.is_empty() {
            let empty = StartValues {
                eta: 0.0,
                mu: 0.0,
                term: 0.0,
                log_y: 0.0,
            };
            self.slots = vec![(u64::MAX, empty); Self::SLOTS];
        }
    }

    fn get(&mut self, y: f64) -> StartValues {
        if self.slots.is_empty() {
            return StartValues::of(y);
        }
        let bits = y.to_bits();
        let slot = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
        let entry = &mut self.slots[slot];
        if entry.0 != bits {
            *entry = (bits, StartValues::of(y));
        }
        entry.1
    }
}

/// A design of the shape `farringtonFlexible` fits, given by its structure instead of its
/// columns: an intercept, optionally a time column, then the indicator columns of levels
/// `1..levels` of a factor (level 0 is the reference level, without a column). Without a
/// factor, `levels` is 1 and every row is at level 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouped<'a> {
    /// Level of each row, in `0..levels`.
    pub level: &'a [usize],
    /// Number of levels (at least 1).
    pub levels: usize,
    /// The time column (the design's second column), if the design has one.
    pub time: Option<&'a [f64]>,
}

impl Grouped<'_> {
    /// Number of design columns: intercept, time, one indicator per non-reference level.
    pub(crate) fn columns(&self) -> usize {
        usize::from(self.time.is_some()) + self.levels
    }
}

/// The weighted least-squares problem of one IRLS iteration of a [`Grouped`] design, reduced
/// to per-level sums: with working weights W and working responses z, the weighted sum `a`,
/// the weighted means of time (`tbar`) and z (`zbar`) per level, and the within-level sums
/// of squares and products of time.
#[derive(Debug, Default)]
struct LevelSums {
    a: Vec<f64>,
    tbar: Vec<f64>,
    zbar: Vec<f64>,
    /// Sum of W t^2 over all rows (the time column's squared norm, for the rank check).
    tt: f64,
    /// Sum of W (t - tbar)^2, within levels: the time column's squared norm once the
    /// intercept and the level columns are projected out.
    stt: f64,
    /// Sum of W (t - tbar)(z - zbar), within levels.
    stz: f64,
    /// The sums of W t per level (`tbar` before it is divided by `a`), for the exact rank
    /// check.
    tsum: Vec<f64>,
    /// X'WX in the design's column order (row-major), factored in place by the rank check.
    gram: Vec<f64>,
}

/// A column whose squared norm, once the columns before it are projected out, is below this
/// fraction of its squared norm sends [`Workspace::fit_grouped`] to the general QR. R's
/// `dqrdc2` drops a column below 1e-7 of its norm, i.e. 1e-14 squared; five orders of
/// magnitude of margin make sure that R keeps every column wherever the grouped solution is
/// used, even with the rounding of the normal equations and of R's norm downdating.
const GROUPED_RANK_MARGIN: f64 = 1e-9;

/// The largest g_jj (X'WX)^-1_jj that [`Workspace::grouped_clearly_full_rank`] accepts
/// without the exact check: six orders of magnitude from [`GROUPED_RANK_MARGIN`]'s 1e9.
/// farringtonFlexible's designs are far inside it.
const CLEAR_RANK_RATIO: f64 = 1e3;

/// glm.fit's step halving: the deviance at `start`, and while it (or a fitted mean) is not
/// finite, `start` moved halfway back to the previous coefficients, at most `maxit` times.
/// `None` where it stays non-finite, or at the first iteration (no previous coefficients).
fn halve_until_finite(
    start: &mut [f64],
    coefold: Option<&[f64]>,
    maxit: usize,
    mut deviance: impl FnMut(&[f64]) -> (f64, bool),
) -> Option<f64> {
    let (mut dev, mut mu_finite) = deviance(start);
    if dev.is_finite() && mu_finite {
        return Some(dev);
    }
    let coefold = coefold?;
    for _ in 0..maxit {
        for (s, o) in start.iter_mut().zip(coefold) {
            *s = (*s + o) / 2.0;
        }
        (dev, mu_finite) = deviance(start);
        if dev.is_finite() && mu_finite {
            return Some(dev);
        }
    }
    None
}

/// The per-row inputs of one grouped least-squares step (all of length n).
#[derive(Clone, Copy)]
struct StepRows<'a> {
    y: &'a [f64],
    mu: &'a [f64],
    eta: &'a [f64],
    weights: &'a [f64],
    level: &'a [usize],
}

/// The first pass of [`Workspace::grouped_step`]: working weights W = prior weight * mu
/// (prior weight * mu_eta^2 / variance for the log link; rows of prior weight 0 get W = 0 and
/// drop out of every sum, as R drops them) into `w`, working responses
/// z = eta + (y - mu) / mu into `zw`, and per level the sums of W, W z and (with `TIME`) W t
/// into `lv.a`, `lv.zbar`, `lv.tbar`; returns the sum of W t^2 over all rows (0 without
/// time). Each sum adds its terms in row order, as a plain loop would; but the rows of one
/// level come in runs (the windows and the blocks between them), and a run is summed in
/// registers and stored once, instead of adding to memory row by row (which chains every
/// addition through a store and a reload).
#[inline(always)]
fn level_sums<const TIME: bool>(
    r: StepRows<'_>,
    t: &[f64],
    w: &mut [f64],
    zw: &mut [f64],
    lv: &mut LevelSums,
) -> f64 {
    let n = r.y.len();
    let mut tt = 0.0;
    let mut i = 0;
    while i < n {
        let l = r.level[i];
        let (mut a, mut sz, mut st) = (lv.a[l], lv.zbar[l], lv.tbar[l]);
        while i < n && r.level[i] == l {
            let m = r.mu[i];
            let ww = r.weights[i] * m;
            let z = r.eta[i] + (r.y[i] - m) / m;
            w[i] = ww;
            zw[i] = z;
            a += ww;
            sz += ww * z;
            if TIME {
                let wt = ww * t[i];
                st += wt;
                tt += wt * t[i];
            }
            i += 1;
        }
        lv.a[l] = a;
        lv.zbar[l] = sz;
        lv.tbar[l] = st;
    }
    tt
}

/// eta = gamma[level] + slope * t, mu = linkinv(eta) and the deviance at mu for a
/// [`Grouped`] design with level intercepts `gamma` (`coef[..levels]`) and the slope
/// `coef[levels]`; as [`eta_mu_deviance`] otherwise.
#[allow(clippy::too_many_arguments)]
fn eta_mu_deviance_grouped(
    g: Grouped<'_>,
    coef: &[f64],
    y: &[f64],
    log_y: &[f64],
    weights: &[f64],
    eta: &mut [f64],
    mu: &mut [f64],
) -> (f64, bool) {
    let n = y.len();
    let (gamma, slope) = (&coef[..g.levels], coef[g.levels]);
    let rows = DevianceRows {
        y,
        log_y: &log_y[..n],
        weights: &weights[..n],
        level: &g.level[..n],
    };
    let (eta, mu) = (&mut eta[..n], &mut mu[..n]);
    match g.time {
        Some(t) => deviance_rows::<true>(rows, gamma, slope, &t[..n], eta, mu),
        None => deviance_rows::<false>(rows, gamma, slope, &[], eta, mu),
    }
}

/// The per-row inputs of [`eta_mu_deviance_grouped`] (all of length n).
#[derive(Clone, Copy)]
struct DevianceRows<'a> {
    y: &'a [f64],
    log_y: &'a [f64],
    weights: &'a [f64],
    level: &'a [usize],
}

/// The loops of [`eta_mu_deviance_grouped`], with and without the time column (without it,
/// eta is gamma[level] + slope * 0, as the design's zero time would give it). Slices of one
/// length, so the loops carry no bounds checks and reload nothing. Two passes: eta and
/// exp(eta) first (without time, one `exp` per run of rows of one level), a loop of nothing
/// but the `exp` calls (across a call every floating-point register is lost, so the
/// deviance's running sum would be spilled and reloaded around each one); then mu = max(exp(eta), eps) and the deviance, summed in the same row order with the
/// same terms.
#[inline(always)]
fn deviance_rows<const TIME: bool>(
    r: DevianceRows<'_>,
    gamma: &[f64],
    slope: f64,
    t: &[f64],
    eta: &mut [f64],
    mu: &mut [f64],
) -> (f64, bool) {
    let n = r.y.len();
    if TIME {
        for i in 0..n {
            let e = gamma[r.level[i]] + slope * t[i];
            eta[i] = e;
            mu[i] = e.exp();
        }
    } else {
        // Every row of a level has the same eta, so the same exp: one call per run of rows
        // of one level (the windows and the blocks between them) instead of one per row.
        let mut run: Option<(usize, f64, f64)> = None;
        for i in 0..n {
            let l = r.level[i];
            let (e, ex) = match run {
                Some((level, e, ex)) if level == l => (e, ex),
                _ => {
                    let e = gamma[l] + slope * 0.0;
                    let ex = e.exp();
                    run = Some((l, e, ex));
                    (e, ex)
                }
            };
            eta[i] = e;
            mu[i] = ex;
        }
    }
    let zero: f64 = std::iter::empty::<f64>().sum();
    let mut dev = zero;
    let mut finite = true;
    for i in 0..n {
        let (e, ex) = (eta[i], mu[i]);
        let m = ex.max(f64::EPSILON);
        mu[i] = m;
        finite &= m.is_finite();
        let (yi, wi) = (r.y[i], r.weights[i]);
        dev += if yi > 0.0 {
            let log_mu = if m == ex { e } else { m.ln() };
            2.0 * wi * (yi * (r.log_y[i] - log_mu) - (yi - m))
        } else {
            2.0 * m * wi
        };
    }
    (dev, finite)
}

impl Workspace {
    /// Checks the response and prior weights, sets `weights`, and the start (eta, mu) as
    /// `glm.fit` takes it (mu = y + 0.1); returns the deviance at the start. `p` only names
    /// the design's width in a shape error.
    fn prepare(
        &mut self,
        p: usize,
        y: &[f64],
        prior_weights: Option<&[f64]>,
    ) -> Result<f64, GlmError> {
        let n = y.len();
        for (row, &v) in y.iter().enumerate() {
            if !v.is_finite() || v < 0.0 {
                return Err(GlmError::InvalidResponse { row, value: v });
            }
        }
        self.weights.clear();
        match prior_weights {
            Some(w) => {
                if w.len() != n {
                    return Err(GlmError::Shape {
                        columns: p,
                        rows: w.len(),
                        response: n,
                    });
                }
                for (row, &v) in w.iter().enumerate() {
                    if !v.is_finite() || v < 0.0 {
                        return Err(GlmError::InvalidWeight { row, value: v });
                    }
                }
                self.weights.extend_from_slice(w);
            }
            None => self.weights.resize(n, 1.0),
        }

        // The start depends on y only (and the first deviance on the weights too); fits of
        // the same response one after the other share it.
        let same_y = self.init_y.len() == n
            && self
                .init_y
                .iter()
                .zip(y)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same_y {
            // A workspace that sees a second response is fitting many (one per evaluated
            // point); only then is the memo worth its allocation.
            if !self.init_y.is_empty() {
                self.start_memo.enable();
            }
            self.init_y.clear();
            self.init_y.extend_from_slice(y);
            self.init_eta.clear();
            self.init_mu.clear();
            self.init_terms.clear();
            self.init_log_y.clear();
            for &yi in y {
                let s = self.start_memo.get(yi);
                self.init_eta.push(s.eta);
                self.init_mu.push(s.mu);
                self.init_terms.push(s.term);
                self.init_log_y.push(s.log_y);
            }
        }
        self.eta.clear();
        self.eta.extend_from_slice(&self.init_eta);
        self.mu.clear();
        self.mu.extend_from_slice(&self.init_mu);
        // deviance(y, mu, weights) at the start, from the cached per-row terms.
        let devold: f64 = y
            .iter()
            .zip(&self.mu)
            .zip(&self.weights)
            .zip(&self.init_terms)
            .map(|(((&yi, &mi), &wi), &term)| {
                if yi > 0.0 {
                    2.0 * wi * term
                } else {
                    2.0 * mi * wi
                }
            })
            .sum();
        Ok(devold)
    }

    /// [`fit_quasi_poisson_with`] on a column-major n x p design `x` (n = `y.len()`), the
    /// same computation step for step.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fit(
        &mut self,
        x: &[f64],
        p: usize,
        y: &[f64],
        prior_weights: Option<&[f64]>,
        epsilon: f64,
        maxit: usize,
        wants: Wants,
    ) -> Result<FitInfo, GlmError> {
        let n = y.len();
        debug_assert_eq!(x.len(), n * p);
        self.last_grouped = false;
        let mut devold = self.prepare(p, y, prior_weights)?;
        assert!(maxit >= 1, "maxit >= 1 runs at least one iteration");
        let mut have_coefold = false;
        self.start.clear();
        self.start.resize(p, 0.0);
        self.coef.resize(p, 0.0);
        let mut converged = false;
        let mut iterations = 0;
        let mut rank = 0;

        // The prior weights do not change, so neither do the rows with positive weight.
        self.good.clear();
        self.good.extend((0..n).filter(|&i| self.weights[i] > 0.0));
        let ng = self.good.len();
        let all_good = ng == n && n > 0;
        self.zw.resize(ng, 0.0);
        self.w.resize(ng, 0.0);
        self.xw.resize(ng * p, 0.0);
        let tol = (1e-7f64).min(epsilon / 1000.0);

        for iter in 1..=maxit {
            iterations = iter;
            // mu_eta(eta) = max(exp(eta), eps) = mu for the log link.
            if all_good {
                let (zw, w) = (&mut self.zw[..n], &mut self.w[..n]);
                let (eta, mu, yy, wt) =
                    (&self.eta[..n], &self.mu[..n], &y[..n], &self.weights[..n]);
                for i in 0..n {
                    let mu_eta = mu[i];
                    let z = eta[i] + (yy[i] - mu[i]) / mu_eta;
                    let wi = (wt[i] * mu_eta * mu_eta / mu[i]).sqrt();
                    zw[i] = z * wi;
                    w[i] = wi;
                }
                for (dst, col) in self.xw.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                    for ((d, &v), &wi) in dst.iter_mut().zip(col).zip(&self.w) {
                        *d = v * wi;
                    }
                }
            } else {
                for (r, &i) in self.good.iter().enumerate() {
                    let mu_eta = self.mu[i];
                    let z = self.eta[i] + (y[i] - self.mu[i]) / mu_eta;
                    let wi = (self.weights[i] * mu_eta * mu_eta / self.mu[i]).sqrt();
                    self.zw[r] = z * wi;
                    self.w[r] = wi;
                }
                for j in 0..p {
                    let col = &x[j * n..(j + 1) * n];
                    let dst = &mut self.xw[j * ng..(j + 1) * ng];
                    for ((d, &i), &wi) in dst.iter_mut().zip(&self.good).zip(&self.w) {
                        *d = col[i] * wi;
                    }
                }
            }
            rank = qr_decompose(
                &mut self.xw,
                ng,
                p,
                tol,
                &mut self.qraux,
                &mut self.work1,
                &mut self.work2,
                &mut self.pivot,
                &mut self.dots,
            );
            if ng < rank {
                return Err(GlmError::TooFewObservations {
                    rank,
                    observations: ng,
                });
            }
            qr_solve(
                &self.xw,
                ng,
                &self.qraux,
                &self.pivot,
                rank,
                &mut self.zw,
                &mut self.v,
                &mut self.coef,
            );
            if self.coef.iter().any(|c| !c.is_finite()) {
                // R: "non-finite coefficients at iteration", not converged.
                converged = false;
                break;
            }
            self.start.copy_from_slice(&self.coef);
            let (log_y, weights) = (&self.init_log_y, &self.weights);
            let (eta, mu) = (&mut self.eta, &mut self.mu);
            let dev = halve_until_finite(
                &mut self.start,
                have_coefold.then_some(&self.coefold[..]),
                maxit,
                |coef| eta_mu_deviance(x, n, p, coef, y, log_y, weights, eta, mu),
            )
            .ok_or(GlmError::NonFiniteDeviance)?;
            if (dev - devold).abs() / (dev.abs() + 0.1) < epsilon {
                converged = true;
                break;
            }
            devold = dev;
            self.coefold.resize(p, 0.0);
            self.coefold.copy_from_slice(&self.start);
            have_coefold = true;
        }

        self.coefficients.clear();
        self.coefficients.resize(p, None);
        for &col in self.pivot.iter().take(rank) {
            self.coefficients[col] = Some(self.start[col]);
        }
        // (y - mu) / mu_eta(eta), and mu_eta(eta) = mu.
        self.working_residuals.clear();
        self.working_residuals
            .extend((0..n).map(|i| (y[i] - self.mu[i]) / self.mu[i]));
        self.working_weights.clear();
        self.working_weights.resize(n, 0.0);
        for (k, &i) in self.good.iter().enumerate() {
            self.working_weights[i] = self.w[k] * self.w[k];
        }

        let k = rank;
        let r = |i: usize, j: usize| self.xw[j * ng + i];
        self.cov.clear();
        if wants.cov {
            // R^-1 (k x k, upper triangular, row-major): column c solves R v = e_c.
            self.rinv.clear();
            self.rinv.resize(k * k, 0.0);
            self.v.clear();
            self.v.resize(k, 0.0);
            for c in 0..k {
                self.v.fill(0.0);
                for a in (0..=c).rev() {
                    let e = if a == c { 1.0 } else { 0.0 };
                    let s = e - (a + 1..=c).map(|m| r(a, m) * self.v[m]).sum::<f64>();
                    self.v[a] = s / r(a, a);
                }
                for a in 0..k {
                    self.rinv[a * k + c] = self.v[a];
                }
            }
            // (R'R)^-1 on the non-aliased columns, scattered back to design positions.
            self.cov.resize(p * p, 0.0);
            for a in 0..k {
                for b in 0..k {
                    let s: f64 = (a.max(b)..k)
                        .map(|m| self.rinv[a * k + m] * self.rinv[b * k + m])
                        .sum();
                    self.cov[self.pivot[a] * p + self.pivot[b]] = s;
                }
            }
        }
        self.hat.clear();
        if wants.hat {
            // Hat values: ||R^-T (sqrt(w_i) x_i)||^2 over the pivoted, non-aliased columns.
            self.hat.resize(n, 0.0);
            self.v.clear();
            self.v.resize(k, 0.0);
            for (row, &i) in self.good.iter().enumerate() {
                for a in 0..k {
                    // Solve R' v = xi (forward substitution).
                    let xi = x[self.pivot[a] * n + i] * self.w[row];
                    let s = xi - (0..a).map(|m| r(m, a) * self.v[m]).sum::<f64>();
                    self.v[a] = s / r(a, a);
                }
                let mut h: f64 = self.v.iter().map(|t| t * t).sum();
                if h > 1.0 - 10.0 * f64::EPSILON {
                    h = 1.0;
                }
                self.hat[i] = h;
            }
        }

        let n_ok = self.weights.iter().filter(|&&v| v != 0.0).count();
        Ok(FitInfo {
            rank: k,
            df_residual: n_ok.saturating_sub(k),
            iterations,
            converged,
        })
    }
}

impl Workspace {
    /// [`Workspace::fit`] for a [`Grouped`] design (`x` is the same design by columns, `p`
    /// its width), solved through its structure: X'WX of an intercept, a time column and
    /// level indicators is, in the equivalent parametrisation by level intercepts and a
    /// slope, diagonal in the levels plus one row and column for time, so each iteration's
    /// least-squares step is the within-level regression of z on t (two passes over the rows,
    /// time centred within each level, no cancellation beyond R's own) instead of a
    /// Householder QR. Same start, same deviance, same stopping rule and step halving as
    /// `glm.fit`, so the same iterations; the numbers differ from R's QR by rounding only.
    /// Wherever R could find a column aliased (see [`GROUPED_RANK_MARGIN`]), a coefficient
    /// becomes non-finite, the deviance cannot be formed or an input is invalid, the fit is
    /// done again by [`Workspace::fit`], exactly as R does it. `design` gives the same design
    /// by columns (column-major, `g.columns()` wide); it is called only for that general
    /// fit, so the grouped one never builds the columns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fit_grouped<'x>(
        &mut self,
        design: impl FnOnce() -> &'x [f64],
        g: Grouped<'_>,
        y: &[f64],
        prior_weights: Option<&[f64]>,
        epsilon: f64,
        maxit: usize,
        wants: Wants,
    ) -> Result<FitInfo, GlmError> {
        self.last_grouped = false;
        match self.try_grouped(g, y, prior_weights, epsilon, maxit, wants) {
            Some(info) => {
                self.last_grouped = true;
                Ok(info)
            }
            None => {
                let p = g.columns();
                self.fit(design(), p, y, prior_weights, epsilon, maxit, wants)
            }
        }
    }

    /// What [`Workspace::fit_grouped`] of the same design `g`, response `y` and prior weights
    /// as the last fit (and the same `epsilon` and `maxit`) would give, without its
    /// iterations, with other by-products (`wants`). That fit would start from the same
    /// values and run the same iterations on the same numbers, so its parameters, mu, working
    /// weights and level sums are the ones still in place, and its results are computed from
    /// them by the same code. `farringtonFlexible`'s reweighted fit is such a fit wherever no
    /// Anscombe residual is above the threshold: every weight is then exactly 1. `None`
    /// (nothing done) where the last fit was not solved by the grouped IRLS, or `y` or the
    /// prior weights (`None`: all 1) are not bit for bit the last fit's: fit again then.
    pub(crate) fn grouped_fit_again(
        &mut self,
        g: Grouped<'_>,
        y: &[f64],
        prior_weights: Option<&[f64]>,
        info: FitInfo,
        wants: Wants,
    ) -> Option<FitInfo> {
        let n = y.len();
        let same_bits = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(u, v)| u.to_bits() == v.to_bits())
        };
        let same_weights = match prior_weights {
            Some(w) => same_bits(w, &self.weights),
            None => self.weights.len() == n && self.weights.iter().all(|&v| v == 1.0),
        };
        let same = self.last_grouped
            && same_bits(y, &self.init_y)
            && same_weights
            && self.mu.len() == n
            && self.w.len() == n
            && self.start.len() == g.levels + 1
            && self.levels.a.len() == g.levels
            && info.rank == g.columns();
        if !same {
            return None;
        }
        self.grouped_results(g, y, wants);
        Some(info)
    }

    /// The grouped IRLS of [`Workspace::fit_grouped`]; `None` where the general fit must
    /// answer instead. Parameters in `start`: the level intercepts, then the slope (0 without
    /// time).
    fn try_grouped(
        &mut self,
        g: Grouped<'_>,
        y: &[f64],
        prior_weights: Option<&[f64]>,
        epsilon: f64,
        maxit: usize,
        wants: Wants,
    ) -> Option<FitInfo> {
        let n = y.len();
        let p = g.columns();
        let shape_ok = g.levels >= 1
            && g.level.len() == n
            && g.level.iter().all(|&l| l < g.levels)
            && g.time.is_none_or(|t| t.len() == n);
        if !shape_ok || maxit == 0 {
            return None;
        }
        let mut devold = self.prepare(p, y, prior_weights).ok()?;
        let q = g.levels + 1;
        self.start.clear();
        self.start.resize(q, 0.0);
        self.coef.clear();
        self.coef.resize(q, 0.0);
        self.w.resize(n, 0.0);
        self.zw.resize(n, 0.0);
        let mut have_coefold = false;
        let mut converged = false;
        let mut iterations = 0;
        for iter in 1..=maxit {
            iterations = iter;
            if !self.grouped_step(g, y) {
                return None;
            }
            if self.coef.iter().any(|c| !c.is_finite()) {
                return None;
            }
            self.start.copy_from_slice(&self.coef);
            let (log_y, weights) = (&self.init_log_y, &self.weights);
            let (eta, mu) = (&mut self.eta, &mut self.mu);
            let dev = halve_until_finite(
                &mut self.start,
                have_coefold.then_some(&self.coefold[..]),
                maxit,
                |coef| eta_mu_deviance_grouped(g, coef, y, log_y, weights, eta, mu),
            )?;
            if (dev - devold).abs() / (dev.abs() + 0.1) < epsilon {
                converged = true;
                break;
            }
            devold = dev;
            self.coefold.clear();
            self.coefold.extend_from_slice(&self.start);
            have_coefold = true;
        }
        self.grouped_results(g, y, wants);
        let n_ok = self.weights.iter().filter(|&&v| v != 0.0).count();
        Some(FitInfo {
            rank: p,
            df_residual: n_ok.saturating_sub(p),
            iterations,
            converged,
        })
    }

    /// One least-squares step at the current eta and mu: working weights into `w`, working
    /// responses into `zw`, the level sums, and the new parameters into `coef`. `false` when
    /// R could find a column aliased at these weights (the general QR must decide).
    fn grouped_step(&mut self, g: Grouped<'_>, y: &[f64]) -> bool {
        let n = y.len();
        let lv = &mut self.levels;
        for v in [&mut lv.a, &mut lv.tbar, &mut lv.zbar] {
            v.clear();
            v.resize(g.levels, 0.0);
        }
        let rows = StepRows {
            y,
            mu: &self.mu[..n],
            eta: &self.eta[..n],
            weights: &self.weights[..n],
            level: &g.level[..n],
        };
        let (w, zw) = (&mut self.w[..n], &mut self.zw[..n]);
        let tt = match g.time {
            Some(t) => level_sums::<true>(rows, &t[..n], w, zw, lv),
            None => level_sums::<false>(rows, &[], w, zw, lv),
        };
        if lv.a.iter().any(|&a| !(a > 0.0 && a.is_finite())) {
            return false;
        }
        lv.tt = tt;
        // The exact rank check reads the sums of W t; keep them before they become means.
        lv.tsum.clear();
        lv.tsum.extend_from_slice(&lv.tbar);
        for l in 0..g.levels {
            lv.tbar[l] /= lv.a[l];
            lv.zbar[l] /= lv.a[l];
        }
        let mut slope = 0.0;
        lv.stt = 0.0;
        lv.stz = 0.0;
        if let Some(t) = g.time {
            let (mut stt, mut stz) = (0.0, 0.0);
            let rows = t[..n].iter().zip(&g.level[..n]).zip(&self.w[..n]);
            for (((&ti, &l), &wi), &zi) in rows.zip(&self.zw[..n]) {
                let dt = ti - lv.tbar[l];
                let wdt = wi * dt;
                stt += wdt * dt;
                stz += wdt * (zi - lv.zbar[l]);
            }
            lv.stt = stt;
            lv.stz = stz;
        }
        if !(self.grouped_clearly_full_rank(g) || self.grouped_full_rank(g)) {
            return false;
        }
        let lv = &mut self.levels;
        if g.time.is_some() {
            slope = lv.stz / lv.stt;
        }
        for l in 0..g.levels {
            self.coef[l] = lv.zbar[l] - slope * lv.tbar[l];
        }
        self.coef[g.levels] = slope;
        true
    }

    /// A sufficient condition for [`Workspace::grouped_full_rank`], without its chain of
    /// square roots and divisions (a good part of an iteration's time on designs of ~30
    /// rows): every column j keeps at least 1/[`CLEAR_RANK_RATIO`] of its squared norm g_jj
    /// once all the other columns are projected out, i.e. g_jj (X'WX)^-1_jj <= that ratio,
    /// with (X'WX)^-1's diagonal from the level sums (the formulas of `grouped_results`'s
    /// covariance: sums of positive terms, accurate to a few ulps). Projecting out only the
    /// columns before j leaves at least as much, so the Cholesky pivot that the exact check
    /// compares with 1e-9 g_jj ([`GROUPED_RANK_MARGIN`]) is then at least 1e-3 g_jj, far
    /// beyond what the rounding of either computation could move across that bound: where
    /// this says yes, the exact check says yes. Where it says no (or meets a non-finite
    /// value), the exact check decides. Needs the level means and `stt`.
    fn grouped_clearly_full_rank(&self, g: Grouped<'_>) -> bool {
        let lv = &self.levels;
        // g_jj (X'WX)^-1_jj within the bound; false for NaN.
        let clear = |ratio: f64| ratio <= CLEAR_RANK_RATIO;
        let a0 = lv.a[0];
        let (v, t0) = if g.time.is_some() {
            // The time column: g_jj = sum of W t^2, (X'WX)^-1_jj = 1 / stt.
            let v = 1.0 / lv.stt;
            if !(v.is_finite() && v > 0.0 && clear(lv.tt * v)) {
                return false;
            }
            (v, lv.tbar[0])
        } else {
            (0.0, 0.0)
        };
        // The intercept: g_jj = sum of W.
        let total: f64 = lv.a.iter().sum();
        if !clear(total * (1.0 / a0 + t0 * t0 * v)) {
            return false;
        }
        // Level j's indicator: g_jj = a_j.
        (1..g.levels).all(|j| {
            let dj = lv.tbar[j] - t0;
            clear(lv.a[j] * (1.0 / lv.a[j] + 1.0 / a0 + v * dj * dj))
        })
    }

    /// Whether every column of the design is clearly not aliased at the current level sums
    /// (`tsum` holding the sums of W t): the Cholesky factor of X'WX in the design's column
    /// order gives each column's squared norm once the columns before it are projected out,
    /// which is what R's `dqrdc2` compares with its original norm.
    #[inline(never)] // the rare path, after `grouped_clearly_full_rank`
    fn grouped_full_rank(&mut self, g: Grouped<'_>) -> bool {
        let p = g.columns();
        let lv = &mut self.levels;
        let off = usize::from(g.time.is_some());
        let gram = &mut lv.gram;
        gram.clear();
        gram.resize(p * p, 0.0);
        // Intercept, time, then level l >= 1 in column off + l.
        gram[0] = lv.a.iter().sum();
        if off == 1 {
            let st: f64 = lv.tsum.iter().sum();
            gram[1] = st;
            gram[p] = st;
            gram[p + 1] = lv.tt;
        }
        for l in 1..g.levels {
            let c = off + l;
            gram[c] = lv.a[l];
            gram[c * p] = lv.a[l];
            gram[c * p + c] = lv.a[l];
            if off == 1 {
                gram[p + c] = lv.tsum[l];
                gram[c * p + 1] = lv.tsum[l];
            }
        }
        // In-place Cholesky (lower triangle), checking each pivot against the column's norm.
        for j in 0..p {
            let norm2 = gram[j * p + j];
            let mut d = norm2;
            for k in 0..j {
                d -= gram[j * p + k] * gram[j * p + k];
            }
            if !(norm2 > 0.0 && d >= GROUPED_RANK_MARGIN * norm2) {
                return false;
            }
            let r = d.sqrt();
            gram[j * p + j] = r;
            for i in j + 1..p {
                let mut s = gram[i * p + j];
                for k in 0..j {
                    s -= gram[i * p + k] * gram[j * p + k];
                }
                gram[i * p + j] = s / r;
            }
        }
        true
    }

    /// The public results of a grouped fit, in the design's column order, from the last
    /// iteration's level sums (as R's come from the last iteration's QR).
    fn grouped_results(&mut self, g: Grouped<'_>, y: &[f64], wants: Wants) {
        let n = y.len();
        let p = g.columns();
        let off = usize::from(g.time.is_some());
        let nl = g.levels;
        let (gamma, slope) = (&self.start[..nl], self.start[nl]);
        self.coefficients.clear();
        self.coefficients.push(Some(gamma[0]));
        if off == 1 {
            self.coefficients.push(Some(slope));
        }
        self.coefficients
            .extend(gamma[1..].iter().map(|&c| Some(c - gamma[0])));
        self.working_residuals.clear();
        self.working_residuals
            .extend((0..n).map(|i| (y[i] - self.mu[i]) / self.mu[i]));
        self.working_weights.clear();
        self.working_weights.extend_from_slice(&self.w[..n]);

        let lv = &self.levels;
        // Inverse of X'WX in the level parametrisation: 1/a on the level diagonal, and
        // v = 1 / stt for the slope, with the level means of time coupling them.
        let v = if off == 1 { 1.0 / lv.stt } else { 0.0 };
        self.cov.clear();
        if wants.cov {
            self.cov.resize(p * p, 0.0);
            let cov = &mut self.cov;
            let (a0, t0) = (lv.a[0], lv.tbar[0]);
            cov[0] = 1.0 / a0 + t0 * t0 * v;
            if off == 1 {
                cov[1] = -t0 * v;
                cov[p] = -t0 * v;
                cov[p + 1] = v;
            }
            for j in 1..nl {
                let cj = off + j;
                let dj = lv.tbar[j] - t0;
                let c0 = -1.0 / a0 + t0 * v * dj;
                cov[cj] = c0;
                cov[cj * p] = c0;
                if off == 1 {
                    cov[p + cj] = -v * dj;
                    cov[cj * p + 1] = -v * dj;
                }
                for k in 1..nl {
                    let ck = off + k;
                    let dk = lv.tbar[k] - t0;
                    let diag = if j == k { 1.0 / lv.a[j] } else { 0.0 };
                    cov[cj * p + ck] = diag + 1.0 / a0 + v * dj * dk;
                }
            }
        }
        self.hat.clear();
        if wants.hat {
            self.hat.extend((0..n).map(|i| {
                let l = g.level[i];
                let dt = g.time.map_or(0.0, |t| t[i] - lv.tbar[l]);
                let h = self.w[i] * (1.0 / lv.a[l] + v * dt * dt);
                if h > 1.0 - 10.0 * f64::EPSILON {
                    1.0
                } else {
                    h
                }
            }));
        }
    }
}

/// Column sums of the column-major `cols` (`n` rows) from row `from` on: of `h[i] * col[i]`
/// (dot products with `h`) or, without `h`, of `col[i]^2`, into `out`. Each sum adds its
/// products in row order from the starting value of `Iterator::sum`, exactly as
/// `iter().map(..).sum()` over that column alone; up to four columns are summed side by side,
/// so that one sum's addition latency is hidden by the others'.
fn column_sums(cols: &[f64], n: usize, from: usize, h: Option<&[f64]>, out: &mut Vec<f64>) {
    out.clear();
    if n == 0 {
        return;
    }
    let count = cols.len() / n;
    let mut c = 0;
    while c < count {
        let group = &cols[c * n..];
        let taken = match count - c {
            1 => push_sums::<1>(group, n, from, h, out),
            2 => push_sums::<2>(group, n, from, h, out),
            3 => push_sums::<3>(group, n, from, h, out),
            _ => push_sums::<4>(group, n, from, h, out),
        };
        c += taken;
    }
}

/// [`column_sums`] of the first `N` columns of `cols`; returns `N`.
#[inline(always)]
fn push_sums<const N: usize>(
    cols: &[f64],
    n: usize,
    from: usize,
    h: Option<&[f64]>,
    out: &mut Vec<f64>,
) -> usize {
    let zero: f64 = std::iter::empty::<f64>().sum();
    let mut d = [zero; N];
    let cols = &cols[..N * n];
    match h {
        Some(h) => {
            for i in from..n {
                let hi = h[i];
                for q in 0..N {
                    d[q] += hi * cols[q * n + i];
                }
            }
        }
        None => {
            for i in from..n {
                for q in 0..N {
                    let v = cols[q * n + i];
                    d[q] += v * v;
                }
            }
        }
    }
    out.extend_from_slice(&d);
    N
}

fn nrm2(v: &[f64]) -> f64 {
    v.iter().map(|t| t * t).sum::<f64>().sqrt()
}

/// Householder QR after LINPACK's `dqrdc2` (R's modification with limited pivoting: a column
/// whose remaining norm falls below `tol` times its original norm is moved to the end), in
/// place on the column-major n x p matrix `x`, which then holds R above the diagonal and the
/// Householder vectors below. Returns the rank.
#[allow(clippy::too_many_arguments)]
fn qr_decompose(
    x: &mut [f64],
    n: usize,
    p: usize,
    tol: f64,
    qraux: &mut Vec<f64>,
    work1: &mut Vec<f64>,
    work2: &mut Vec<f64>,
    pivot: &mut Vec<usize>,
    dots: &mut Vec<f64>,
) -> usize {
    qraux.resize(p, 0.0);
    work1.resize(p, 0.0);
    work2.resize(p, 0.0);
    pivot.resize(p, 0);
    column_sums(&x[..p * n], n, 0, None, dots);
    for j in 0..p {
        let q = dots[j].sqrt();
        qraux[j] = q;
        work1[j] = q;
        work2[j] = if q == 0.0 { 1.0 } else { q };
        pivot[j] = j;
    }
    let lup = n.min(p);
    let mut k = p + 1; // 1-based as in the Fortran
    for l in 0..lup {
        // Cycle negligible columns to the end.
        while l + 1 < k && qraux[l] < work2[l] * tol {
            x[l * n..p * n].rotate_left(n);
            pivot[l..p].rotate_left(1);
            qraux[l..p].rotate_left(1);
            work1[l..p].rotate_left(1);
            work2[l..p].rotate_left(1);
            k -= 1;
        }
        if l + 1 == n {
            break;
        }
        let (head, tail) = x.split_at_mut((l + 1) * n);
        let hv = &mut head[l * n..];
        let mut nrmxl = nrm2(&hv[l..]);
        if nrmxl == 0.0 {
            continue;
        }
        if hv[l] != 0.0 {
            nrmxl = nrmxl.abs() * hv[l].signum();
        }
        for v in &mut hv[l..] {
            *v /= nrmxl;
        }
        hv[l] += 1.0;
        let hv = &*hv;
        // Each column's dot product with the Householder vector reads only that column, so
        // all are taken before any column is updated (see `column_sums`).
        let rest = p - l - 1;
        column_sums(&tail[..rest * n], n, l, Some(hv), dots);
        for (off, col) in tail.chunks_exact_mut(n).take(rest).enumerate() {
            let j = l + 1 + off;
            let dot = dots[off];
            let t = -dot / hv[l];
            for (c, h) in col[l..].iter_mut().zip(&hv[l..]) {
                *c += t * h;
            }
            if qraux[j] != 0.0 {
                let tt = (1.0 - (col[l].abs() / qraux[j]).powi(2)).max(0.0);
                if tt.abs() < 1e-6 {
                    qraux[j] = nrm2(&col[l + 1..]);
                    work1[j] = qraux[j];
                } else {
                    qraux[j] *= tt.sqrt();
                }
            }
        }
        qraux[l] = x[l * n + l];
        x[l * n + l] = -nrmxl;
    }
    (k - 1).min(n)
}

/// Least-squares coefficients in the original column order; aliased ones are 0
/// (as R's `Cdqrls` leaves them before `glm.fit` marks them NA). `qty` holds y on entry and
/// is overwritten with Q'y.
#[allow(clippy::too_many_arguments)]
fn qr_solve(
    x: &[f64],
    n: usize,
    qraux: &[f64],
    pivot: &[usize],
    k: usize,
    qty: &mut [f64],
    b: &mut Vec<f64>,
    coef: &mut [f64],
) {
    for l in 0..k.min(n.saturating_sub(1)) {
        if qraux[l] == 0.0 {
            continue;
        }
        let col = &x[l * n..(l + 1) * n];
        let diag = qraux[l];
        let dot: f64 = diag * qty[l]
            + col[l + 1..]
                .iter()
                .zip(&qty[l + 1..])
                .map(|(a, b)| a * b)
                .sum::<f64>();
        let t = -dot / diag;
        qty[l] += t * diag;
        for (q, c) in qty[l + 1..].iter_mut().zip(&col[l + 1..]) {
            *q += t * c;
        }
    }
    let r = |i: usize, j: usize| x[j * n + i];
    b.resize(k, 0.0);
    for a in (0..k).rev() {
        let s = qty[a] - (a + 1..k).map(|m| r(a, m) * b[m]).sum::<f64>();
        b[a] = s / r(a, a);
    }
    coef.fill(0.0);
    for a in 0..k {
        coef[pivot[a]] = b[a];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercept_only_fit_is_the_mean() {
        let y = [1.0, 2.0, 3.0, 6.0];
        let fit = fit_quasi_poisson(&[vec![1.0; 4]], &y, None).unwrap();
        assert!(fit.converged);
        let b = fit.coefficients[0].unwrap();
        assert!((b - 3.0f64.ln()).abs() < 1e-10);
        // Pearson: sum (y-3)^2/3 / 3
        let pearson = (4.0 + 1.0 + 0.0 + 9.0) / 3.0 / 3.0;
        assert!((fit.pearson_dispersion() - pearson).abs() < 1e-8);
        for h in &fit.hat {
            assert!((h - 0.25).abs() < 1e-8);
        }
        assert!((fit.cov_unscaled[0][0] - 1.0 / 12.0).abs() < 1e-8);
    }

    #[test]
    fn log_linear_fit_matches_r() {
        // R: glm(c(2,3,6,7,8,9,10,12,15) ~ I(1:9), family = quasipoisson)
        //   (Intercept) 0.8838309, slope 0.1550652 (computed by the normal equations below).
        let y = [2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 15.0];
        let t: Vec<f64> = (1..=9).map(f64::from).collect();
        let fit = fit_quasi_poisson(&[vec![1.0; 9], t.clone()], &y, None).unwrap();
        assert!(fit.converged);
        // Score equations of the Poisson MLE: X'(y - mu) = 0.
        let s0: f64 = y.iter().zip(&fit.fitted).map(|(a, b)| a - b).sum();
        let s1: f64 = (0..9).map(|i| t[i] * (y[i] - fit.fitted[i])).sum();
        assert!(s0.abs() < 1e-5 && s1.abs() < 1e-4, "{s0} {s1}");
        let hsum: f64 = fit.hat.iter().sum();
        assert!((hsum - 2.0).abs() < 1e-10);
        assert_eq!(fit.df_residual, 7);
    }

    #[test]
    fn aliased_column_is_dropped_like_r() {
        let y = [1.0, 4.0, 2.0, 5.0];
        let cols = vec![vec![1.0; 4], vec![0.0, 1.0, 0.0, 1.0], vec![2.0; 4]];
        let fit = fit_quasi_poisson(&cols, &y, None).unwrap();
        assert_eq!(fit.rank, 2);
        assert!(fit.coefficients[2].is_none());
        assert!((fit.coefficients[0].unwrap() - 1.5f64.ln()).abs() < 1e-8);
        assert!((fit.coefficients[1].unwrap() - (4.5f64 / 1.5).ln()).abs() < 1e-8);
    }

    /// The shortcut of `t_test_below` gives the comparison the p-value itself gives, for
    /// t from 1e-20 to 1e3 (both signs), df from 1 to 400 and thresholds at and around 1.
    #[test]
    fn t_test_below_agrees_with_the_p_value() {
        let cov = [1.0, 0.0, 0.0, 1.0];
        let mut shortcut = 0;
        for e in -80..=12 {
            let t = 10f64.powf(e as f64 / 4.0);
            for beta in [t, -t] {
                let coefficients = [Some(0.5), Some(beta)];
                for df in [1usize, 2, 3, 5, 8, 13, 30, 100, 400] {
                    for threshold in [0.05, 0.5, 0.9999, 1.0, 1.5] {
                        let pv = two_sided_t_pvalue(beta, df as f64);
                        let got = t_test_below(&coefficients, &cov, 1, 1.0, df, threshold);
                        assert_eq!(got, pv < threshold, "t {beta}, df {df}, {threshold}");
                        shortcut += usize::from(threshold >= 1.0 && t >= 1e-3);
                    }
                }
            }
        }
        assert!(shortcut > 500, "{shortcut}");
        // Aliased coefficient and no residual degrees of freedom: never significant.
        assert!(!t_test_below(&[Some(1.0), None], &cov, 1, 1.0, 5, 1.0));
        assert!(!t_test_below(&[Some(1.0), Some(2.0)], &cov, 1, 1.0, 0, 1.0));
    }

    /// Wherever the cheap rank test of the grouped fit accepts a design, the exact one
    /// (the Cholesky pivots against `GROUPED_RANK_MARGIN`) accepts it too, over random
    /// designs of 1 to 5 levels with and without time, weights over seven orders of
    /// magnitude, and nearly aliased ones (time almost constant within the levels).
    #[test]
    fn clear_rank_check_never_overrules_the_exact_one() {
        let mut uniform = crate::surveillance::test_uniform(0x9E37_79B9_7F4A_7C15u64);
        let (mut cases, mut clear, mut exact_only, mut rejected) = (0, 0, 0, 0);
        for case in 0..4000 {
            let levels = 1 + case % 5;
            let n = levels + 2 + (uniform() * 50.0) as usize;
            let with_time = case % 7 != 0;
            let spread = [1.0, 1e-3, 1e-6, 1e-9][case % 4];
            let mut level = Vec::new();
            let mut time = Vec::new();
            for i in 0..n {
                let l = (i * levels / n).min(levels - 1);
                level.push(l);
                time.push(l as f64 * 12.0 + spread * (i as f64 + uniform()));
            }
            let mu: Vec<f64> = (0..n).map(|_| 10f64.powf(uniform() * 7.0 - 3.0)).collect();
            let mut ws = Workspace {
                eta: mu.iter().map(|m| m.ln()).collect(),
                mu: mu.clone(),
                weights: (0..n).map(|_| uniform() * 2.0).collect(),
                w: vec![0.0; n],
                zw: vec![0.0; n],
                coef: vec![0.0; levels + 1],
                ..Workspace::default()
            };
            let y: Vec<f64> = mu.iter().map(|m| (m * (0.5 + uniform())).round()).collect();
            let g = Grouped {
                level: &level,
                levels,
                time: with_time.then_some(&time[..]),
            };
            if !ws.grouped_step(g, &y) {
                rejected += 1;
                continue;
            }
            cases += 1;
            if ws.grouped_clearly_full_rank(g) {
                clear += 1;
                assert!(ws.grouped_full_rank(g), "case {case}");
            } else {
                exact_only += 1;
            }
        }
        assert!(clear > cases / 2, "{clear} of {cases}");
        // The generator also reaches the cases left to the exact check, and aliased ones.
        assert!(
            exact_only > 100 && rejected > 100,
            "{exact_only}, {rejected}"
        );
    }

    /// [`Workspace::grouped_fit_again`] leaves the workspace as a new grouped fit of the same
    /// design, response and prior weights (all ones given as weights, after a fit without)
    /// would, bit for bit, and refuses other weights or responses.
    #[test]
    fn grouped_fit_again_is_the_same_fit() {
        let mut uniform = crate::surveillance::test_uniform(0x2545_F491_4F6C_DD1Du64);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut again_count = 0;
        for case in 0..300 {
            let levels = 1 + case % 4;
            let n = 3 * levels + 4 + (uniform() * 30.0) as usize;
            let with_time = case % 3 != 0;
            let level: Vec<usize> = (0..n).map(|i| (i * levels / n).min(levels - 1)).collect();
            let time: Vec<f64> = (0..n).map(|i| (i + 1) as f64).collect();
            let base = 10f64.powf(uniform() * 3.0);
            let y: Vec<f64> = (0..n)
                .map(|i| (base * (1.0 + 0.01 * i as f64) * (0.5 + uniform())).round())
                .collect();
            let g = Grouped {
                level: &level,
                levels,
                time: with_time.then_some(&time[..]),
            };
            let design = {
                let mut x = vec![1.0; n];
                if with_time {
                    x.extend_from_slice(&time);
                }
                for l in 1..levels {
                    x.extend(level.iter().map(|&v| if v == l { 1.0 } else { 0.0 }));
                }
                x
            };
            let first = Wants {
                hat: true,
                cov: false,
            };
            let second = Wants {
                hat: false,
                cov: true,
            };
            let ones = vec![1.0; n];
            let mut fresh = Workspace::default();
            let want = fresh
                .fit_grouped(
                    || &design,
                    g,
                    &y,
                    Some(&ones),
                    GLM_EPSILON,
                    GLM_MAXIT,
                    second,
                )
                .unwrap();
            let mut ws = Workspace::default();
            let info = ws
                .fit_grouped(|| &design, g, &y, None, GLM_EPSILON, GLM_MAXIT, first)
                .unwrap();
            let mut other = ones.clone();
            other[n / 2] = 0.5;
            assert!(
                ws.grouped_fit_again(g, &y, Some(&other), info, second)
                    .is_none()
            );
            let mut y2 = y.clone();
            y2[0] += 1.0;
            assert!(
                ws.grouped_fit_again(g, &y2, Some(&ones), info, second)
                    .is_none()
            );
            let Some(got) = ws.grouped_fit_again(g, &y, Some(&ones), info, second) else {
                continue;
            };
            again_count += 1;
            assert_eq!(
                (got.rank, got.df_residual, got.iterations, got.converged),
                (want.rank, want.df_residual, want.iterations, want.converged)
            );
            let coef = |w: &Workspace| {
                w.coefficients
                    .iter()
                    .map(|c| c.map(f64::to_bits))
                    .collect::<Vec<_>>()
            };
            assert_eq!(coef(&ws), coef(&fresh));
            for (a, b) in [
                (&ws.mu, &fresh.mu),
                (&ws.eta, &fresh.eta),
                (&ws.working_weights, &fresh.working_weights),
                (&ws.working_residuals, &fresh.working_residuals),
                (&ws.cov, &fresh.cov),
                (&ws.hat, &fresh.hat),
            ] {
                assert_eq!(bits(a), bits(b), "case {case}");
            }
        }
        assert!(again_count > 250, "{again_count}");
    }

    /// R 4.2.2: `sprintf("%.17g", 2 * pt(-t, df))`. A tiny t must give a p-value below 1, as
    /// in R (farringtonFlexible keeps the trend when p < pThresholdTrend = 1).
    #[test]
    #[allow(clippy::excessive_precision)] // R's values exactly as printed
    fn t_pvalue_matches_r_pt() {
        let cases = [
            (1e-14, 8.0, 0.99999999999999223),
            (0.5, 8.0, 0.63053607555697644),
            (3.0, 8.0, 0.017071681233782634),
            (40.0, 3.0, 3.438068078915854e-05),
            (1e60, 5.0, 1.8980334491124211e-299),
        ];
        for (t, df, want) in cases {
            let got = two_sided_t_pvalue(-t, df);
            assert!(
                (got - want).abs() <= 1e-12 * want,
                "t {t}, df {df}: {got} vs {want}"
            );
        }
        assert!(two_sided_t_pvalue(1e-14, 8.0) < 1.0);
        assert_eq!(two_sided_t_pvalue(0.0, 8.0), 1.0);
    }
}
