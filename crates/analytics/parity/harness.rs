//! Side-by-side runs of borderwatch's detectors and R's `surveillance` package: a seeded series
//! generator, the CSV files `parity.R` reads, running Rscript, and the point-by-point comparison.
//! Shared by the `r_parity` test and example and by the `detectors_vs_r` and `quality` benches
//! (each includes this file with `#[path]`, and each uses only part of it).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use borderwatch_analytics::surveillance::ears::{EarsConfig, EarsMethod, ears_c};
use borderwatch_analytics::surveillance::farrington::{
    FarringtonConfig, PowerTrans, ThresholdMethod, farrington_flexible,
};

/// SplitMix64: a tiny seeded generator, so the series are the same on every machine and in
/// every version of every crate.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `lo..=hi`.
    pub(crate) fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    pub(crate) fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Gamma(shape, scale 1), Marsaglia and Tsang.
    pub(crate) fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Poisson(mean): multiplication for small means, Hörmann's PTRS above 10.
    pub(crate) fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean < 10.0 {
            let limit = (-mean).exp();
            let mut k = 0;
            let mut p = self.uniform();
            while p > limit {
                k += 1;
                p *= self.uniform();
            }
            return k;
        }
        let smu = mean.sqrt();
        let b = 0.931 + 2.53 * smu;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            let lhs = v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln();
            let rhs = -mean + k * mean.ln() - statrs::function::gamma::ln_gamma(k + 1.0);
            if lhs <= rhs {
                return k as u64;
            }
        }
    }

    /// Negative binomial with the given mean and variance `phi * mean` (Poisson when phi <= 1).
    pub(crate) fn neg_binomial(&mut self, mean: f64, phi: f64) -> u64 {
        if phi <= 1.0 {
            return self.poisson(mean);
        }
        let shape = mean / (phi - 1.0);
        let lambda = self.gamma(shape) * (phi - 1.0);
        self.poisson(lambda)
    }
}

/// One detector configuration run by both sides.
#[derive(Debug, Clone)]
pub(crate) enum Method {
    Farrington(FarringtonConfig),
    Ears(EarsConfig),
}

impl Method {
    /// The name in parity.R's `method` column.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Method::Farrington(_) => "farrington",
            Method::Ears(c) => match c.method {
                EarsMethod::C1 => "C1",
                EarsMethod::C2 => "C2",
                EarsMethod::C3 => "C3",
            },
        }
    }
}

/// A named group of detector configurations and the kind of series they run on.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub(crate) name: String,
    pub(crate) freq: usize,
    pub(crate) methods: Vec<Method>,
    /// Length range of the generated series.
    pub(crate) len: (usize, usize),
    /// Share of missing counts in the generated series.
    pub(crate) missing: f64,
}

/// A series as both sides see it.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) id: String,
    pub(crate) setting: String,
    pub(crate) freq: usize,
    pub(crate) counts: Vec<Option<u64>>,
    /// 0-based indices to evaluate; `None`: each method's default range (R's too).
    pub(crate) evaluate: Option<Range<usize>>,
}

fn farrington(freq: usize, edit: impl FnOnce(&mut FarringtonConfig)) -> Method {
    let mut cfg = FarringtonConfig {
        b: 3,
        w: if freq == 4 { 1 } else { 2 },
        ..FarringtonConfig::default()
    };
    edit(&mut cfg);
    Method::Farrington(cfg)
}

fn ears_defaults() -> Vec<Method> {
    [EarsMethod::C1, EarsMethod::C2, EarsMethod::C3]
        .into_iter()
        .map(|method| {
            Method::Ears(EarsConfig {
                method,
                ..EarsConfig::default()
            })
        })
        .collect()
}

fn with(mut methods: Vec<Method>, first: Method) -> Vec<Method> {
    methods.insert(0, first);
    methods
}

/// The parameter settings the parity run covers: defaults adapted to the frequency
/// (b = 3, w = 1 quarterly; b = 3, w = 2 monthly), both threshold families, reweighting and
/// trend on and off, `no_periods` > 1 where the windows leave room, missing counts.
pub(crate) fn parity_settings() -> Vec<Setting> {
    let q = (20, 60);
    let m = (45, 80);
    vec![
        Setting {
            name: "q_delta_default".into(),
            freq: 4,
            methods: with(ears_defaults(), farrington(4, |_| {})),
            len: q,
            missing: 0.0,
        },
        Setting {
            name: "q_nbplugin_np2".into(),
            freq: 4,
            methods: vec![
                farrington(4, |c| {
                    c.no_periods = 2;
                    c.threshold_method = ThresholdMethod::NbPlugin;
                    c.p_threshold_trend = 1.0;
                    c.past_periods_not_included = Some(2);
                }),
                Method::Ears(EarsConfig {
                    method: EarsMethod::C1,
                    baseline: 5,
                    min_sigma: 0.5,
                    alpha: Some(0.05),
                }),
                Method::Ears(EarsConfig {
                    method: EarsMethod::C3,
                    baseline: 4,
                    min_sigma: 1.0,
                    alpha: Some(0.01),
                }),
            ],
            len: q,
            missing: 0.0,
        },
        Setting {
            name: "q_plain_b4_alpha01".into(),
            freq: 4,
            methods: vec![farrington(4, |c| {
                c.b = 4;
                c.reweight = false;
                c.trend = false;
                c.weights_threshold = 1.0;
                c.alpha = 0.01;
                c.power_trans = PowerTrans::Half;
            })],
            len: (24, 60),
            missing: 0.0,
        },
        Setting {
            name: "q_muan_w0_missing".into(),
            freq: 4,
            methods: vec![farrington(4, |c| {
                c.w = 0;
                c.threshold_method = ThresholdMethod::Muan;
                c.weights_threshold = 1.0;
            })],
            len: q,
            missing: 0.03,
        },
        Setting {
            name: "m_delta_default".into(),
            freq: 12,
            methods: with(ears_defaults(), farrington(12, |_| {})),
            len: m,
            missing: 0.0,
        },
        Setting {
            name: "m_nbplugin_np4".into(),
            freq: 12,
            methods: vec![farrington(12, |c| {
                c.no_periods = 4;
                c.threshold_method = ThresholdMethod::NbPlugin;
                c.p_threshold_trend = 1.0;
                c.past_periods_not_included = Some(6);
            })],
            len: m,
            missing: 0.0,
        },
        Setting {
            name: "m_plain_b2_w1".into(),
            freq: 12,
            methods: vec![farrington(12, |c| {
                c.b = 2;
                c.w = 1;
                c.reweight = false;
                c.trend = false;
                c.alpha = 0.01;
                c.power_trans = PowerTrans::None;
                c.limit54 = (3, 2);
            })],
            len: (30, 70),
            missing: 0.0,
        },
        Setting {
            name: "m_trend_w1_thr1".into(),
            freq: 12,
            methods: vec![farrington(12, |c| {
                c.w = 1;
                c.weights_threshold = 1.0;
                c.p_threshold_trend = 0.2;
                c.no_periods = 3;
            })],
            len: m,
            missing: 0.02,
        },
    ]
}

/// Parameters of one simulated baseline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Baseline {
    /// Mean count at t = 0.
    pub(crate) level: f64,
    /// Log-scale slope per period.
    pub(crate) slope: f64,
    /// Amplitude of the log-scale seasonal wave.
    pub(crate) season: f64,
    pub(crate) phase: f64,
    /// Variance / mean.
    pub(crate) phi: f64,
}

impl Baseline {
    pub(crate) fn mean(&self, t: usize, freq: usize) -> f64 {
        let angle = 2.0 * std::f64::consts::PI * t as f64 / freq as f64 + self.phase;
        (self.level.ln() + self.slope * t as f64 + self.season * angle.cos()).exp()
    }

    pub(crate) fn sd(&self, t: usize, freq: usize) -> f64 {
        (self.phi.max(1.0) * self.mean(t, freq)).sqrt()
    }
}

/// Series for the parity run: log-uniform levels from a mean of 2 to 5000, seasonality,
/// overdispersion, trends, and spikes both in the history (for the reweighting) and near
/// the end (for alarms).
pub(crate) fn parity_series(setting: &Setting, count: usize, seed: u64) -> Vec<Series> {
    let mut rng = Rng::new(seed);
    let freq = setting.freq;
    (0..count)
        .map(|i| {
            let n = rng.int(setting.len.0, setting.len.1);
            let base = Baseline {
                level: (2f64.ln() + rng.uniform() * (5000f64 / 2.0).ln()).exp(),
                slope: if rng.chance(0.5) {
                    0.0
                } else {
                    rng.range(-0.15, 0.25) / freq as f64
                },
                season: rng.range(0.0, 0.6),
                phase: rng.range(0.0, 2.0 * std::f64::consts::PI),
                phi: [1.0, 1.5, 3.0, 6.0][rng.int(0, 3)],
            };
            let mut counts: Vec<Option<u64>> = (0..n)
                .map(|t| Some(rng.neg_binomial(base.mean(t, freq), base.phi)))
                .collect();
            for _ in 0..2 {
                if rng.chance(0.4) {
                    let t = rng.int(0, n - 1);
                    let k = rng.range(2.0, 10.0);
                    let extra = rng.poisson(k * base.sd(t, freq));
                    counts[t] = counts[t].map(|c| c + extra);
                }
            }
            if setting.missing > 0.0 {
                for c in counts.iter_mut() {
                    if rng.chance(setting.missing) {
                        *c = None;
                    }
                }
            }
            Series {
                id: format!("{}_{i:04}", setting.name),
                setting: setting.name.clone(),
                freq,
                counts,
                evaluate: None,
            }
        })
        .collect()
}

/// The outcome of one evaluated point, from either side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub(crate) alarm: bool,
    pub(crate) upper_bound: Option<f64>,
    pub(crate) expected: Option<f64>,
    pub(crate) p_value: Option<f64>,
}

/// Key of a point: (series id, method, t as R counts it, 1-based).
pub(crate) type Key = (String, &'static str, usize);

/// All points of one side, and the (series, method) calls that stopped with an error.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) points: HashMap<Key, Point>,
    pub(crate) errors: HashMap<(String, &'static str), String>,
    /// Points R could not evaluate when rerun alone (parity.R's fallback).
    pub(crate) point_errors: HashMap<Key, String>,
}

/// An R run: its outcome, the time inside the detector calls per method (seconds, points)
/// and the wall time of the whole Rscript process (start-up, package loading, CSV I/O).
#[derive(Debug)]
pub(crate) struct RRun {
    pub(crate) outcome: Outcome,
    pub(crate) inner: BTreeMap<String, (f64, usize)>,
    pub(crate) wall: Duration,
}

fn method_name(s: &str) -> &'static str {
    match s {
        "farrington" => "farrington",
        "C1" => "C1",
        "C2" => "C2",
        "C3" => "C3",
        other => panic!("parity.R wrote an unknown method {other:?}"),
    }
}

/// Runs one method of borderwatch on a series.
pub(crate) fn run_method(series: &Series, method: &Method, out: &mut Outcome) {
    let name = method.name();
    match method {
        Method::Farrington(cfg) => {
            match farrington_flexible(&series.counts, series.freq, series.evaluate.clone(), cfg) {
                Ok(points) => {
                    for p in points {
                        out.points.insert(
                            (series.id.clone(), name, p.index + 1),
                            Point {
                                alarm: p.alarm,
                                upper_bound: p.upper_bound,
                                expected: p.expected,
                                p_value: p.p_value,
                            },
                        );
                    }
                }
                Err(e) => {
                    out.errors.insert((series.id.clone(), name), e.to_string());
                }
            }
        }
        Method::Ears(cfg) => {
            let counts: Vec<f64> = series
                .counts
                .iter()
                .map(|c| c.map_or(f64::NAN, |v| v as f64))
                .collect();
            match ears_c(&counts, series.evaluate.clone(), cfg) {
                Ok(points) => {
                    for p in points {
                        out.points.insert(
                            (series.id.clone(), name, p.index + 1),
                            Point {
                                alarm: p.alarm,
                                upper_bound: p.upper_bound.is_finite().then_some(p.upper_bound),
                                expected: None,
                                p_value: None,
                            },
                        );
                    }
                }
                Err(e) => {
                    out.errors.insert((series.id.clone(), name), e.to_string());
                }
            }
        }
    }
}

/// Runs borderwatch on every series with every method of its setting.
pub(crate) fn run_rust(series: &[Series], settings: &[Setting]) -> Outcome {
    let by_name: HashMap<&str, &Setting> = settings.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut out = Outcome::default();
    for s in series {
        for m in &by_name[s.setting.as_str()].methods {
            run_method(s, m, &mut out);
        }
    }
    out
}

fn opt(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "NA".to_string(), |v| v.to_string())
}

fn r_bool(b: bool) -> &'static str {
    if b { "TRUE" } else { "FALSE" }
}

/// Writes the series and control CSVs parity.R reads.
pub(crate) fn write_inputs(dir: &Path, series: &[Series], settings: &[Setting]) {
    let with_eval = series.iter().any(|s| s.evaluate.is_some());
    let mut text = String::from("id,setting,freq,t,count");
    text.push_str(if with_eval { ",evaluate\n" } else { "\n" });
    for s in series {
        for (i, c) in s.counts.iter().enumerate() {
            write!(
                text,
                "{},{},{},{},{}",
                s.id,
                s.setting,
                s.freq,
                i + 1,
                opt(*c)
            )
            .unwrap();
            if with_eval {
                let e = s.evaluate.as_ref().is_some_and(|r| r.contains(&i));
                write!(text, ",{}", u8::from(e)).unwrap();
            }
            text.push('\n');
        }
    }
    std::fs::write(dir.join("series.csv"), text).expect("write series.csv");

    let mut text = String::from(
        "setting,method,b,w,reweight,weights_threshold,alpha,trend,p_threshold_trend,\
         limit54_cases,limit54_periods,powertrans,no_periods,past_weeks_not_included,\
         threshold_method,baseline,min_sigma\n",
    );
    for s in settings {
        for m in &s.methods {
            match m {
                Method::Farrington(c) => {
                    let power = match c.power_trans {
                        PowerTrans::TwoThirds => "2/3",
                        PowerTrans::Half => "1/2",
                        PowerTrans::None => "none",
                    };
                    let threshold = match c.threshold_method {
                        ThresholdMethod::Delta => "delta",
                        ThresholdMethod::NbPlugin => "nbPlugin",
                        ThresholdMethod::Muan => "muan",
                    };
                    writeln!(
                        text,
                        "{},farrington,{},{},{},{:?},{:?},{},{:?},{},{},{},{},{},{},NA,NA",
                        s.name,
                        c.b,
                        c.w,
                        r_bool(c.reweight),
                        c.weights_threshold,
                        c.alpha,
                        r_bool(c.trend),
                        c.p_threshold_trend,
                        c.limit54.0,
                        c.limit54.1,
                        power,
                        c.no_periods,
                        opt(c.past_periods_not_included),
                        threshold
                    )
                    .unwrap();
                }
                Method::Ears(c) => {
                    writeln!(
                        text,
                        "{},{},NA,NA,NA,NA,{},NA,NA,NA,NA,NA,NA,NA,NA,{},{:?}",
                        s.name,
                        m.name(),
                        opt(c.alpha.map(|a| format!("{a:?}"))),
                        c.baseline,
                        c.min_sigma
                    )
                    .unwrap();
                }
            }
        }
    }
    std::fs::write(dir.join("control.csv"), text).expect("write control.csv");
}

/// Where parity.R lives.
pub(crate) fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("parity/parity.R")
}

fn parse_f64(s: &str) -> Option<f64> {
    match s {
        "NA" | "NaN" | "" => None,
        "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        v => Some(
            v.parse()
                .unwrap_or_else(|e| panic!("parity.R wrote {v:?}, not a number: {e}")),
        ),
    }
}

/// Runs parity.R on the series. Panics with what to install when Rscript or the
/// `surveillance` package is missing: a parity check that skips itself proves nothing.
pub(crate) fn run_r(series: &[Series], settings: &[Setting]) -> RRun {
    let dir = tempfile::tempdir().expect("temporary directory");
    write_inputs(dir.path(), series, settings);
    let started = Instant::now();
    let output = Command::new("Rscript")
        .arg(script())
        .arg(dir.path().join("series.csv"))
        .arg(dir.path().join("control.csv"))
        .arg(dir.path().join("out.csv"))
        .arg(dir.path().join("timing.csv"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `Rscript` ({e}): the R parity check needs R with the `surveillance` \
                 package; install it with `apt-get install -y r-cran-surveillance`"
            )
        });
    let wall = started.elapsed();
    if !output.status.success() {
        panic!(
            "parity.R failed ({}): {}\n(the R parity check needs R with the `surveillance` \
             package: `apt-get install -y r-cran-surveillance`)",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = std::fs::read_to_string(dir.path().join("out.csv")).expect("parity.R output");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("parity.R output lacks column {name}"))
    };
    let (id, method, t, ub, alarm, expected, pvalue, error) = (
        col("id"),
        col("method"),
        col("t"),
        col("upperbound"),
        col("alarm"),
        col("expected"),
        col("pvalue"),
        col("error"),
    );
    let mut outcome = Outcome::default();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let m = method_name(f[method]);
        if !f[error].is_empty() {
            if f[t] == "NA" {
                outcome
                    .errors
                    .insert((f[id].to_string(), m), f[error].to_string());
            } else {
                let t: usize = f[t].parse().expect("t");
                outcome
                    .point_errors
                    .insert((f[id].to_string(), m, t), f[error].to_string());
            }
            continue;
        }
        let t: usize = f[t].parse().expect("t");
        outcome.points.insert(
            (f[id].to_string(), m, t),
            Point {
                alarm: f[alarm] == "1",
                upper_bound: parse_f64(f[ub]),
                expected: parse_f64(f[expected]),
                p_value: parse_f64(f[pvalue]),
            },
        );
    }
    let mut inner = BTreeMap::new();
    let timing = std::fs::read_to_string(dir.path().join("timing.csv")).expect("timing.csv");
    for line in timing.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        inner.insert(
            f[0].to_string(),
            (
                f[1].parse().expect("seconds"),
                f[2].parse().expect("points"),
            ),
        );
    }
    RRun {
        outcome,
        inner,
        wall,
    }
}

/// Relative difference, with an absolute floor of 1e-9 for bounds near zero.
pub(crate) fn rel_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).abs();
    if d < 1e-9 || (a.is_infinite() && a == b) {
        0.0
    } else {
        d / a.abs().max(b.abs())
    }
}

/// Comparison of one setting × method.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) points: usize,
    pub(crate) r_alarms: usize,
    pub(crate) alarm_mismatches: usize,
    /// A bound on one side and NA on the other.
    pub(crate) na_mismatches: usize,
    /// Points only one side evaluated.
    pub(crate) unmatched: usize,
    /// Calls that stopped with an error on both sides (agreement), or on one only.
    pub(crate) both_errors: usize,
    pub(crate) error_mismatches: usize,
    pub(crate) max_rel_bound: f64,
    pub(crate) max_rel_expected: f64,
    /// Bound differences above 1e-6 relative.
    pub(crate) bound_over: usize,
    /// Points where R stopped with an error and borderwatch gave a result.
    pub(crate) r_point_errors: usize,
    /// Points R evaluated in a series where borderwatch's call stopped with an error.
    pub(crate) rust_call_failed: usize,
}

/// The comparison of a whole run, keyed by (setting, method), plus the worst cases to show.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) tallies: BTreeMap<(String, &'static str), Tally>,
    pub(crate) problems: Vec<String>,
    /// The messages of R's point errors where borderwatch gave a result.
    pub(crate) r_error_messages: Vec<String>,
}

impl Comparison {
    pub(crate) fn total(&self) -> Tally {
        let mut t = Tally::default();
        for v in self.tallies.values() {
            t.points += v.points;
            t.r_alarms += v.r_alarms;
            t.alarm_mismatches += v.alarm_mismatches;
            t.na_mismatches += v.na_mismatches;
            t.unmatched += v.unmatched;
            t.both_errors += v.both_errors;
            t.error_mismatches += v.error_mismatches;
            t.max_rel_bound = t.max_rel_bound.max(v.max_rel_bound);
            t.max_rel_expected = t.max_rel_expected.max(v.max_rel_expected);
            t.bound_over += v.bound_over;
            t.r_point_errors += v.r_point_errors;
            t.rust_call_failed += v.rust_call_failed;
        }
        t
    }

    /// A markdown table, one row per setting × method, and a total.
    pub(crate) fn table(&self) -> String {
        let mut s = String::from(
            "| setting | method | points | R alarms | alarm mismatches | bound NA on one side | unmatched | errors (both / one side) | R errors, borderwatch result | R result, borderwatch call failed | bounds > 1e-6 rel. | max rel. bound diff | max rel. expected diff |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        let row = |s: &mut String, a: &str, b: &str, t: &Tally| {
            writeln!(
                s,
                "| {a} | {b} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {:.2e} | {:.2e} |",
                t.points,
                t.r_alarms,
                t.alarm_mismatches,
                t.na_mismatches,
                t.unmatched,
                t.both_errors,
                t.error_mismatches,
                t.r_point_errors,
                t.rust_call_failed,
                t.bound_over,
                t.max_rel_bound,
                t.max_rel_expected
            )
            .unwrap();
        };
        for ((setting, method), t) in &self.tallies {
            row(&mut s, setting, method, t);
        }
        row(&mut s, "**all**", "", &self.total());
        s
    }
}

/// Compares every point and every error of the two sides.
pub(crate) fn compare(series: &[Series], rust: &Outcome, r: &Outcome) -> Comparison {
    let setting_of: HashMap<&str, &str> = series
        .iter()
        .map(|s| (s.id.as_str(), s.setting.as_str()))
        .collect();
    let mut cmp = Comparison::default();
    let tally = |cmp: &mut Comparison, id: &str, m: &'static str| -> (String, &'static str) {
        let key = (setting_of[id].to_string(), m);
        cmp.tallies.entry(key.clone()).or_default();
        key
    };
    for (key, rp) in &r.points {
        let k = tally(&mut cmp, &key.0, key.1);
        let Some(bp) = rust.points.get(key) else {
            let t = cmp.tallies.get_mut(&k).unwrap();
            if rust.errors.contains_key(&(key.0.clone(), key.1)) {
                // R stopped at other points of this series (see parity.R's fallback), and
                // borderwatch stopped the whole call.
                t.rust_call_failed += 1;
                continue;
            }
            t.unmatched += 1;
            if cmp.problems.len() < 20 {
                cmp.problems
                    .push(format!("{key:?}: evaluated by R only: R {rp:?}"));
            }
            continue;
        };
        let t = cmp.tallies.get_mut(&k).unwrap();
        t.points += 1;
        t.r_alarms += usize::from(rp.alarm);
        let mut bad = false;
        if rp.alarm != bp.alarm {
            t.alarm_mismatches += 1;
            bad = true;
        }
        match (rp.upper_bound, bp.upper_bound) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                let d = rel_diff(a, b);
                t.max_rel_bound = t.max_rel_bound.max(d);
                if d > 1e-6 {
                    t.bound_over += 1;
                    bad = true;
                }
            }
            _ => {
                t.na_mismatches += 1;
                bad = true;
            }
        }
        if let (Some(a), Some(b)) = (rp.expected, bp.expected) {
            t.max_rel_expected = t.max_rel_expected.max(rel_diff(a, b));
        }
        if bad && cmp.problems.len() < 20 {
            cmp.problems
                .push(format!("{key:?}: R {rp:?} vs borderwatch {bp:?}"));
        }
    }
    for (key, message) in &r.point_errors {
        let k = tally(&mut cmp, &key.0, key.1);
        let t = cmp.tallies.get_mut(&k).unwrap();
        if rust.points.contains_key(key) {
            t.r_point_errors += 1;
            if !cmp.r_error_messages.contains(message) {
                cmp.r_error_messages.push(message.clone());
            }
        } else if rust.errors.contains_key(&(key.0.clone(), key.1)) {
            t.both_errors += 1;
        } else {
            t.error_mismatches += 1;
        }
    }
    for key in rust.points.keys() {
        if !r.points.contains_key(key) && !r.point_errors.contains_key(key) {
            let k = tally(&mut cmp, &key.0, key.1);
            cmp.tallies.get_mut(&k).unwrap().unmatched += 1;
            if cmp.problems.len() < 20 {
                cmp.problems
                    .push(format!("{key:?}: evaluated by borderwatch only"));
            }
        }
    }
    let mut calls: Vec<&(String, &'static str)> =
        r.errors.keys().chain(rust.errors.keys()).collect();
    calls.sort();
    calls.dedup();
    for call in calls {
        let k = tally(&mut cmp, &call.0, call.1);
        let r_points_failed = r
            .point_errors
            .keys()
            .any(|p| p.0 == call.0 && p.1 == call.1);
        if r_points_failed && rust.errors.contains_key(call) {
            // Counted with the point errors above.
            continue;
        }
        match (r.errors.get(call), rust.errors.get(call)) {
            (Some(_), Some(_)) => cmp.tallies.get_mut(&k).unwrap().both_errors += 1,
            (re, be) => {
                cmp.tallies.get_mut(&k).unwrap().error_mismatches += 1;
                cmp.problems.push(format!(
                    "{call:?}: error in R {re:?}, in borderwatch {be:?}"
                ));
            }
        }
    }
    cmp
}
