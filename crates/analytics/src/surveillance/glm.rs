//! Quasi-Poisson log-link GLM fitted by IRLS, step for step as R's `glm.fit` does it, so that
//! `farringtonFlexible` reproduces R's numbers: the same start (mu = y + 0.1), the same
//! deviance-based stopping rule, and the same Householder QR with limited column pivoting
//! (LINPACK `dqrdc2`), so aliased columns are dropped exactly where R drops them.

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
        if self.df_residual == 0 {
            return f64::NAN;
        }
        let ss: f64 = weights
            .iter()
            .zip(&self.working_residuals)
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, r)| w * r * r)
            .sum();
        ss / self.df_residual as f64
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
    statrs::function::beta::beta_reg(df / 2.0, 0.5, df / (df + t * t))
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
    for (row, &v) in y.iter().enumerate() {
        if !v.is_finite() || v < 0.0 {
            return Err(GlmError::InvalidResponse { row, value: v });
        }
    }
    let weights: Vec<f64> = match prior_weights {
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
            w.to_vec()
        }
        None => vec![1.0; n],
    };

    let linkinv = |eta: f64| eta.exp().max(f64::EPSILON);
    let deviance = |mu: &[f64]| -> f64 {
        y.iter()
            .zip(mu)
            .zip(&weights)
            .map(|((&yi, &mi), &wi)| {
                if yi > 0.0 {
                    2.0 * wi * (yi * (yi / mi).ln() - (yi - mi))
                } else {
                    2.0 * mi * wi
                }
            })
            .sum()
    };
    let x_times = |coef: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| (0..p).map(|j| columns[j][i] * coef[j]).sum())
            .collect()
    };

    let mut eta: Vec<f64> = y.iter().map(|v| (v + 0.1).ln()).collect();
    let mut mu: Vec<f64> = eta.iter().map(|&e| linkinv(e)).collect();
    let mut devold = deviance(&mu);
    let mut coefold: Option<Vec<f64>> = None;
    let mut start = vec![0.0; p];
    let mut converged = false;
    let mut iterations = 0;
    let mut last: Option<(Vec<usize>, Vec<f64>, Qr)> = None;

    for iter in 1..=maxit {
        iterations = iter;
        let good: Vec<usize> = (0..n).filter(|&i| weights[i] > 0.0).collect();
        let mut xw = vec![Vec::with_capacity(good.len()); p];
        let mut zw = Vec::with_capacity(good.len());
        let mut w = Vec::with_capacity(good.len());
        for &i in &good {
            let mu_eta = linkinv(eta[i]);
            let z = eta[i] + (y[i] - mu[i]) / mu_eta;
            let wi = (weights[i] * mu_eta * mu_eta / mu[i]).sqrt();
            for (j, col) in columns.iter().enumerate() {
                xw[j].push(col[i] * wi);
            }
            zw.push(z * wi);
            w.push(wi);
        }
        let tol = (1e-7f64).min(epsilon / 1000.0);
        let qr = Qr::decompose(xw, tol);
        if good.len() < qr.rank {
            return Err(GlmError::TooFewObservations {
                rank: qr.rank,
                observations: good.len(),
            });
        }
        let coef = qr.solve(&zw);
        if coef.iter().any(|c| !c.is_finite()) {
            // R: "non-finite coefficients at iteration", not converged.
            last = Some((good, w, qr));
            converged = false;
            break;
        }
        start = coef;
        eta = x_times(&start);
        mu = eta.iter().map(|&e| linkinv(e)).collect();
        let mut dev = deviance(&mu);
        if !dev.is_finite() || mu.iter().any(|m| !m.is_finite()) {
            let Some(old) = coefold.as_ref() else {
                return Err(GlmError::NonFiniteDeviance);
            };
            let mut ii = 1;
            while !dev.is_finite() || mu.iter().any(|m| !m.is_finite()) {
                if ii > maxit {
                    return Err(GlmError::NonFiniteDeviance);
                }
                ii += 1;
                for (s, o) in start.iter_mut().zip(old) {
                    *s = (*s + o) / 2.0;
                }
                eta = x_times(&start);
                mu = eta.iter().map(|&e| linkinv(e)).collect();
                dev = deviance(&mu);
            }
        }
        last = Some((good, w, qr));
        if (dev - devold).abs() / (dev.abs() + 0.1) < epsilon {
            converged = true;
            break;
        }
        devold = dev;
        coefold = Some(start.clone());
    }

    let (good, w, qr) = last.expect("maxit >= 1 runs at least one iteration");
    let mut coefficients = vec![None; p];
    for &col in qr.pivot.iter().take(qr.rank) {
        coefficients[col] = Some(start[col]);
    }
    let working_residuals: Vec<f64> = (0..n).map(|i| (y[i] - mu[i]) / linkinv(eta[i])).collect();
    let mut working_weights = vec![0.0; n];
    for (k, &i) in good.iter().enumerate() {
        working_weights[i] = w[k] * w[k];
    }

    // (R'R)^-1 on the non-aliased columns, scattered back to design positions.
    let rinv = qr.r_inverse();
    let k = qr.rank;
    let mut cov_unscaled = vec![vec![0.0; p]; p];
    for a in 0..k {
        for b in 0..k {
            let s: f64 = (a.max(b)..k).map(|m| rinv[a][m] * rinv[b][m]).sum();
            cov_unscaled[qr.pivot[a]][qr.pivot[b]] = s;
        }
    }
    // Hat values: ||R^-T (sqrt(w_i) x_i)||^2 over the pivoted, non-aliased columns.
    let mut hat = vec![0.0; n];
    for (row, &i) in good.iter().enumerate() {
        let xi: Vec<f64> = (0..k).map(|a| columns[qr.pivot[a]][i] * w[row]).collect();
        let mut v = vec![0.0; k];
        for a in 0..k {
            // Solve R' v = xi (forward substitution).
            let s = xi[a] - (0..a).map(|m| qr.r(m, a) * v[m]).sum::<f64>();
            v[a] = s / qr.r(a, a);
        }
        let mut h: f64 = v.iter().map(|t| t * t).sum();
        if h > 1.0 - 10.0 * f64::EPSILON {
            h = 1.0;
        }
        hat[i] = h;
    }

    let n_ok = weights.iter().filter(|&&v| v != 0.0).count();
    let final_deviance = deviance(&mu);
    Ok(GlmFit {
        coefficients,
        fitted: mu.clone(),
        linear_predictor: eta,
        working_weights,
        working_residuals,
        prior_weights: weights,
        hat,
        cov_unscaled,
        deviance: final_deviance,
        rank: k,
        df_residual: n_ok.saturating_sub(k),
        iterations,
        converged,
    })
}

/// Householder QR after LINPACK's `dqrdc2` (R's modification with limited pivoting: a column
/// whose remaining norm falls below `tol` times its original norm is moved to the end).
#[derive(Debug, Clone)]
struct Qr {
    /// Column-major n x p, holding R above the diagonal and the Householder vectors below.
    x: Vec<Vec<f64>>,
    qraux: Vec<f64>,
    pivot: Vec<usize>,
    rank: usize,
    n: usize,
}

impl Qr {
    fn decompose(mut x: Vec<Vec<f64>>, tol: f64) -> Qr {
        let p = x.len();
        let n = x.first().map_or(0, Vec::len);
        let nrm2 = |v: &[f64]| v.iter().map(|t| t * t).sum::<f64>().sqrt();
        let mut qraux: Vec<f64> = x.iter().map(|c| nrm2(c)).collect();
        let mut work1 = qraux.clone();
        let mut work2: Vec<f64> = qraux
            .iter()
            .map(|&q| if q == 0.0 { 1.0 } else { q })
            .collect();
        let mut pivot: Vec<usize> = (0..p).collect();
        let lup = n.min(p);
        let mut k = p + 1; // 1-based as in the Fortran
        for l in 0..lup {
            // Cycle negligible columns to the end.
            while l + 1 < k && qraux[l] < work2[l] * tol {
                let col = x.remove(l);
                x.push(col);
                let pv = pivot.remove(l);
                pivot.push(pv);
                let q = qraux.remove(l);
                qraux.push(q);
                let w1 = work1.remove(l);
                work1.push(w1);
                let w2 = work2.remove(l);
                work2.push(w2);
                k -= 1;
            }
            if l + 1 == n {
                break;
            }
            let mut nrmxl = nrm2(&x[l][l..]);
            if nrmxl == 0.0 {
                continue;
            }
            if x[l][l] != 0.0 {
                nrmxl = nrmxl.abs() * x[l][l].signum();
            }
            for v in &mut x[l][l..] {
                *v /= nrmxl;
            }
            x[l][l] += 1.0;
            let (head, tail) = x.split_at_mut(l + 1);
            let hv = &head[l];
            for (off, col) in tail.iter_mut().enumerate() {
                let j = l + 1 + off;
                let dot: f64 = hv[l..].iter().zip(&col[l..]).map(|(a, b)| a * b).sum();
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
            qraux[l] = x[l][l];
            x[l][l] = -nrmxl;
        }
        let rank = (k - 1).min(n);
        Qr {
            x,
            qraux,
            pivot,
            rank,
            n,
        }
    }

    /// Element (i, j) of R (pivoted order).
    fn r(&self, i: usize, j: usize) -> f64 {
        self.x[j][i]
    }

    /// Least-squares coefficients in the original column order; aliased ones are 0
    /// (as R's `Cdqrls` leaves them before `glm.fit` marks them NA).
    fn solve(&self, y: &[f64]) -> Vec<f64> {
        let k = self.rank;
        let mut qty = y.to_vec();
        for l in 0..k.min(self.n.saturating_sub(1)) {
            if self.qraux[l] == 0.0 {
                continue;
            }
            let col = &self.x[l];
            let diag = self.qraux[l];
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
        let mut b = vec![0.0; k];
        for a in (0..k).rev() {
            let s = qty[a] - (a + 1..k).map(|m| self.r(a, m) * b[m]).sum::<f64>();
            b[a] = s / self.r(a, a);
        }
        let mut coef = vec![0.0; self.pivot.len()];
        for a in 0..k {
            coef[self.pivot[a]] = b[a];
        }
        coef
    }

    /// R^-1 (rank x rank, upper triangular), row-major.
    fn r_inverse(&self) -> Vec<Vec<f64>> {
        let k = self.rank;
        // Column c of R^-1 solves R v = e_c.
        let cols: Vec<Vec<f64>> = (0..k)
            .map(|c| {
                let mut v = vec![0.0; k];
                for a in (0..=c).rev() {
                    let e = if a == c { 1.0 } else { 0.0 };
                    let s = e - (a + 1..=c).map(|m| self.r(a, m) * v[m]).sum::<f64>();
                    v[a] = s / self.r(a, a);
                }
                v
            })
            .collect();
        (0..k)
            .map(|a| (0..k).map(|c| cols[c][a]).collect())
            .collect()
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
}
