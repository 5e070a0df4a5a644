//! Regression snapshot of `farrington_flexible` over generated series.
//!
//! `tests/data/farrington_golden.txt` was generated ONCE, before the speed work of 2026-11-28
//! (reusable GLM workspace, flat column-major designs), from the straightforward port: the
//! `surveillance/farrington.rs` and `surveillance/glm.rs` of commit 973bc67 plus the two
//! parity changes made beside that work (an NA point instead of a GLM error when the
//! reweighting weights cannot be formed; R's `pt` algorithm for the trend p-value). It is the
//! output of `golden_lines(&golden_cases(40), 9)` below, one line per result, run on that code
//! in a separate export of the tree. It must never be regenerated from a later
//! implementation: it is the reference later implementations are compared against. If an
//! intended change of output makes it wrong, replace it deliberately and say why in the
//! commit.
//!
//! Every field must agree exactly (alarm, trend, index, NA-ness, errors) or, for floats, within
//! a combined tolerance: |a - b| <= 1e-12 max(|a|, |b|), or |a - b| <= 1e-12 absolute for the
//! fields whose natural scale is at least 1:
//! - `expected` and `upper_bound`: counts, compared with integer observations (a unit of one
//!   case);
//! - `score`: (y - fit) / (U - fit), which alarms above 1;
//! - `phi`: the dispersion, at least 1 by construction.
//!
//! The absolute arm is there because a value of such a field that comes from cancellation
//! near machine precision (e.g. a score of 5e-16 where y equals the fit up to rounding) is
//! noise, not a result: any change in the rounding of the GLM fit (a different least-squares
//! method, one multiplication instead of a division) moves it by a large relative amount and
//! nothing else.
//!
//! `p_value` is a probability (small values are meaningful relative to themselves), so it has
//! no absolute arm; it is compared relative only, to 1e-12 times `max(1, U + E / (phi - 1))`
//! (U the upper bound, E the expected count; E / (phi - 1) is the negative binomial's size,
//! read as E where phi = 1). That is the size of the arguments of the log-gamma functions the
//! tail is computed from (statrs' incomplete beta / gamma: ln Γ(size + y) - ln Γ(size) - ...,
//! each rounded to ε of its own magnitude), and for the delta method the cancellation of
//! y^(2/3) against mu0^(2/3) is of the same order: a p-value cannot be reproduced closer than
//! that once the fit's last bits move. Example from the snapshot: phi = 1 + 3.6e-8 and E = 2.1
//! give a size of 5.8e7, and a fit that moves phi in its 16th digit moves that p-value by 5e-8
//! relative. Any number in an error message stays 1e-12 relative. Alarms, trend decisions,
//! indices and NA-ness must be identical.

use borderwatch_analytics::surveillance::farrington::{
    Epochs, FarringtonConfig, FarringtonPoint, PowerTrans, ThresholdMethod, farrington_flexible,
    farrington_flexible_with_epochs,
};

/// splitmix64: reproducible without a random-number crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unif(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Poisson by inversion for small means, a rounded normal for large ones.
    fn poisson(&mut self, mean: f64) -> u64 {
        if mean < 30.0 {
            let mut k = 0u64;
            let mut p = (-mean).exp();
            let mut cdf = p;
            let u = self.unif();
            while u > cdf && k < 1000 {
                k += 1;
                p *= mean / k as f64;
                cdf += p;
            }
            k
        } else {
            let z = (-2.0 * self.unif().max(1e-300).ln()).sqrt()
                * (2.0 * std::f64::consts::PI * self.unif()).cos();
            (mean + z * mean.sqrt()).round().max(0.0) as u64
        }
    }

    /// Overdispersed count: Poisson with a gamma-ish (log-normal) multiplier.
    fn overdispersed(&mut self, mean: f64, spread: f64) -> u64 {
        let z = (-2.0 * self.unif().max(1e-300).ln()).sqrt()
            * (2.0 * std::f64::consts::PI * self.unif()).cos();
        self.poisson(mean * (spread * z - spread * spread / 2.0).exp())
    }
}

struct Case {
    name: String,
    counts: Vec<Option<u64>>,
    freq: usize,
    days: Option<Vec<i64>>,
    cfg: FarringtonConfig,
}

fn series(rng: &mut Rng, n: usize, freq: usize, kind: usize) -> Vec<Option<u64>> {
    let level = match kind % 5 {
        0 => 0.3 + 2.0 * rng.unif(),         // sparse
        1 => 5.0 + 20.0 * rng.unif(),        // small
        2 => 50.0 + 500.0 * rng.unif(),      // medium
        3 => 2000.0 + 50_000.0 * rng.unif(), // large
        _ => 1.0 + 8.0 * rng.unif(),
    };
    let amp = 0.5 * rng.unif();
    let trend = if kind.is_multiple_of(3) {
        0.0
    } else {
        (rng.unif() - 0.5) * 0.04
    };
    let spread = [0.0, 0.1, 0.4][kind % 3];
    let missing = kind % 7 == 3;
    (0..n)
        .map(|t| {
            let season = 1.0 + amp * (2.0 * std::f64::consts::PI * t as f64 / freq as f64).sin();
            let mut mean = level * season * (trend * t as f64).exp();
            if rng.unif() < 0.05 {
                mean *= 3.0 + 5.0 * rng.unif(); // outbreak
            }
            if missing && rng.unif() < 0.04 {
                return None;
            }
            Some(rng.overdispersed(mean, spread))
        })
        .collect()
}

fn config(freq: usize, i: usize) -> FarringtonConfig {
    let method = [
        ThresholdMethod::Delta,
        ThresholdMethod::Delta,
        ThresholdMethod::NbPlugin,
        ThresholdMethod::Muan,
    ][i % 4];
    let power = [PowerTrans::TwoThirds, PowerTrans::Half, PowerTrans::None][(i / 4) % 3];
    let reweight = (i / 2).is_multiple_of(2);
    let trend = !(i / 3).is_multiple_of(3);
    let (b, w, no_periods) = match freq {
        4 => [(3, 1, 1), (3, 1, 2), (2, 0, 1), (4, 0, 3), (3, 1, 1)][i % 5],
        12 => [(3, 1, 1), (3, 1, 4), (5, 3, 1), (4, 0, 10), (2, 2, 3)][i % 5],
        _ => [(3, 3, 1), (2, 1, 10), (3, 2, 5)][i % 3],
    };
    FarringtonConfig {
        b,
        w,
        reweight,
        weights_threshold: if i % 5 == 1 { 1.0 } else { 2.58 },
        alpha: [0.05, 0.01, 0.1][i % 3],
        trend,
        p_threshold_trend: if i % 6 == 5 { 1.0 } else { 0.05 },
        limit54: if i % 4 == 1 { (0, 4) } else { (5, 4) },
        power_trans: power,
        no_periods,
        past_periods_not_included: match i % 7 {
            2 => Some(0),
            4 => Some(w + 2),
            _ => None,
        },
        threshold_method: method,
    }
}

/// The cases: quarterly (40 and 60 quarters), monthly (72 and 120 months) and weekly dated
/// series (260 weeks), across the settings above.
fn golden_cases(count: usize) -> Vec<Case> {
    let mut rng = Rng(0x5EED_F4A1);
    let mut out = Vec::new();
    for i in 0..count {
        let (freq, n, dated) = match i % 10 {
            0..=3 => (4, if i % 2 == 0 { 40 } else { 60 }, false),
            4..=7 => (12, if i % 2 == 0 { 72 } else { 120 }, false),
            8 => (52, 260, true),
            _ => (12, 84, true),
        };
        let counts = series(&mut rng, n, freq, i / 3 + i);
        let cfg = config(freq, i);
        let days = dated.then(|| {
            // Weekly from Monday 2010-01-04, or monthly on the 1st from 2010-01-01.
            if freq == 52 {
                (0..n as i64).map(|t| 14_613 + 7 * t).collect()
            } else {
                let mut d = Vec::new();
                let (mut y, mut m) = (2010i64, 1i64);
                for _ in 0..n {
                    d.push(days_from_civil(y, m, 1));
                    m += 1;
                    if m > 12 {
                        m = 1;
                        y += 1;
                    }
                }
                d
            }
        });
        out.push(Case {
            name: format!("c{i}"),
            counts,
            freq,
            days,
            cfg,
        });
    }
    out
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn opt(v: Option<f64>) -> String {
    v.map_or("NA".to_string(), |v| format!("{v:?}"))
}

fn point_line(name: &str, mode: &str, p: &FarringtonPoint) -> String {
    format!(
        "{name} {mode} {} {} {} {} {} {} {} {}",
        p.index,
        opt(p.expected),
        opt(p.upper_bound),
        p.alarm,
        opt(p.p_value),
        opt(p.score),
        opt(p.phi),
        p.trend
    )
}

/// One line per evaluated point (or per error): the whole default range in one call, and for
/// integer epochs also one call per point on the series cut at that point, as `analysis.rs`
/// calls it.
fn golden_lines(cases: &[Case], cut_step: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for c in cases {
        let whole = match &c.days {
            Some(d) => {
                farrington_flexible_with_epochs(&c.counts, c.freq, Epochs::Days(d), None, &c.cfg)
            }
            None => farrington_flexible(&c.counts, c.freq, None, &c.cfg),
        };
        match whole {
            Ok(points) => lines.extend(points.iter().map(|p| point_line(&c.name, "all", p))),
            Err(e) => lines.push(format!("{} all error {e}", c.name)),
        }
        if c.days.is_none() {
            let start = c.freq * c.cfg.b + c.cfg.w;
            for k in (start..c.counts.len()).step_by(cut_step) {
                match farrington_flexible(&c.counts[..=k], c.freq, Some(k..k + 1), &c.cfg) {
                    Ok(points) => {
                        lines.extend(points.iter().map(|p| point_line(&c.name, "cut", p)))
                    }
                    Err(e) => lines.push(format!("{} cut error {k} {e}", c.name)),
                }
            }
        }
    }
    lines
}

/// Positions, in a point line of [`point_line`], of the fields whose natural scale is at
/// least 1 (expected, upper bound, score, phi): they may also agree to 1e-12 absolute.
const UNIT_SCALE_FIELDS: [usize; 4] = [3, 4, 7, 8];

/// Position of the p-value in a point line.
const P_VALUE_FIELD: usize = 6;

/// The relative tolerance of a point line's p-value (see the module doc): 1e-12 times
/// max(1, U + E / (phi - 1)), from the reference line's fields (NA ones count as 0).
fn p_value_tolerance(fields: &[&str]) -> f64 {
    let num = |i: usize| fields[i].parse::<f64>().ok().filter(|v| v.is_finite());
    let (e, u) = (num(3).unwrap_or(0.0), num(4).unwrap_or(0.0));
    let size = match num(8) {
        Some(phi) if phi > 1.0 => e / (phi - 1.0),
        _ => e,
    };
    1e-12 * (u + size).max(1.0)
}

/// Whether a line is a point line (not an error line).
fn is_point_line(fields: &[&str]) -> bool {
    fields.len() == 10 && matches!(fields[1], "all" | "cut") && fields[2] != "error"
}

/// The largest differences found by [`compare`].
#[derive(Debug, Default)]
struct Differences {
    /// Largest relative difference over all differing float fields.
    max_rel: f64,
    /// Largest absolute difference among the fields accepted by the absolute arm only.
    max_abs_only: f64,
    /// Number of fields accepted by the absolute arm only.
    abs_only: usize,
    /// Number of p-values beyond 1e-12 relative, within their conditioned tolerance.
    p_loose: usize,
}

/// Compares two dumps field by field with the combined tolerance of the module doc.
fn compare(got: &[String], want: &[String]) -> Differences {
    assert_eq!(got.len(), want.len(), "number of result lines differs");
    let mut d = Differences::default();
    for (g, w) in got.iter().zip(want) {
        let gf: Vec<&str> = g.split(' ').collect();
        let wf: Vec<&str> = w.split(' ').collect();
        assert_eq!(gf.len(), wf.len(), "\n got: {g}\nwant: {w}");
        let point = is_point_line(&wf);
        for (pos, (a, b)) in gf.iter().zip(&wf).enumerate() {
            if a == b {
                continue;
            }
            let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) else {
                panic!("field differs: {a} vs {b}\n got: {g}\nwant: {w}");
            };
            let diff = (x - y).abs();
            let rel = diff / x.abs().max(y.abs()).max(f64::MIN_POSITIVE);
            d.max_rel = d.max_rel.max(rel);
            if rel <= 1e-12 {
                continue;
            }
            if point && pos == P_VALUE_FIELD {
                let tol = p_value_tolerance(&wf);
                assert!(
                    rel <= tol,
                    "p-value differs by {rel:e} relative (tolerance {tol:e}): {a} vs {b}\n got: {g}\nwant: {w}"
                );
                d.p_loose += 1;
                continue;
            }
            let unit_scale = point && UNIT_SCALE_FIELDS.contains(&pos);
            assert!(
                unit_scale && diff <= 1e-12,
                "float differs by {rel:e} relative, {diff:e} absolute: {a} vs {b}\n got: {g}\nwant: {w}"
            );
            d.abs_only += 1;
            d.max_abs_only = d.max_abs_only.max(diff);
        }
    }
    d
}

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/farrington_golden.txt"
);

#[test]
fn farrington_matches_the_pre_optimisation_snapshot() {
    let got = golden_lines(&golden_cases(40), 9);
    let want_text = std::fs::read_to_string(GOLDEN).expect("golden file");
    let want: Vec<String> = want_text.lines().map(str::to_string).collect();
    let d = compare(&got, &want);
    eprintln!(
        "{} lines agree; largest relative float difference {:e}; {} field(s) within 1e-12 \
         absolute only (largest {:e}); {} p-value(s) beyond 1e-12 relative within their \
         conditioned tolerance",
        got.len(),
        d.max_rel,
        d.abs_only,
        d.max_abs_only,
        d.p_loose
    );
}

/// The comparison itself: the absolute arm covers only the unit-scale fields of point lines,
/// and never a p-value, an alarm or an NA.
#[test]
fn the_comparison_accepts_only_what_the_doc_says() {
    let line = |score: &str, p: &str, alarm: &str| {
        vec![format!("c1 all 12 3.5 7.25 {alarm} {p} {score} 1.5 false")]
    };
    let base = line("5e-16", "0.25", "false");
    // A cancellation-level score moved by 25 % relative, 1.25e-16 absolute: accepted.
    let d = compare(&line("6.25e-16", "0.25", "false"), &base);
    assert_eq!(d.abs_only, 1);
    // The same score 1e-11 away: refused.
    let r = std::panic::catch_unwind(|| compare(&line("1.0005e-11", "0.25", "false"), &base));
    assert!(r.is_err(), "a score 1e-11 off must fail");
    // A tiny p-value moved by 1e-20 absolute but 1e-4 relative: refused (relative only).
    let r = std::panic::catch_unwind(|| {
        compare(
            &line("5e-16", "1.0001e-16", "false"),
            &line("5e-16", "1e-16", "false"),
        )
    });
    assert!(r.is_err(), "p-values are compared relative only");
    // Here U + E / (phi - 1) = 7.25 + 3.5 / 0.5 = 14.25: 1e-11 relative passes, 2e-11 not.
    let d = compare(&line("5e-16", "0.2500000000025", "false"), &base);
    assert_eq!(d.p_loose, 1);
    let r = std::panic::catch_unwind(|| compare(&line("5e-16", "0.250000000005", "false"), &base));
    assert!(
        r.is_err(),
        "a p-value beyond its conditioned tolerance must fail"
    );
    // An alarm that differs: refused.
    let r = std::panic::catch_unwind(|| compare(&line("5e-16", "0.25", "true"), &base));
    assert!(r.is_err(), "alarms must be identical");
    // NA against a number: refused.
    let r = std::panic::catch_unwind(|| compare(&line("NA", "0.25", "false"), &base));
    assert!(r.is_err(), "NA-ness must be identical");
}
