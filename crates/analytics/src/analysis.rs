//! One analysis layer over every detector: the evidence rules (`record_high`,
//! `exceeds_prior_year`, `year_over_year`) and the statistical ones after R's `surveillance`
//! (`farrington`, `ears_c1..3`, `cusum`), run on a [`SeriesFrame`] and turned into surge events.
//!
//! # Detection, step by step
//!
//! 1. [`evaluate_all`] runs every enabled detector on every requested period of one series and
//!    returns one [`Evaluation`] row per (period, detector), quiet rows and rows without enough
//!    history included (those have no bounds and never alarm).
//! 2. [`assess`] folds the rows of one (series, period) into an [`Assessment`]: the evidence
//!    findings, the statistical findings that alarmed, and one combined p-value: the smallest
//!    p-value of the enabled p-value detectors (`farrington`, `ears_*`), times their number
//!    (Bonferroni), where a detector that did not alarm counts as p = 1 (see
//!    [`ears_p_value`] for why EARS's p-values are Student-t, not normal). (Setting p to 1 when
//!    there is no alarm keeps it a valid p-value, P(p' ≤ t) ≤ P(p ≤ t) ≤ t, and makes sure a
//!    p-value below the FDR rate always comes with an alarm: nothing alarms on nothing.)
//!    CUSUM and EARS C3 give no sound p-value: their alarms only corroborate (they appear
//!    among the findings and raise the severity) and never make a surge by themselves.
//! 3. [`decide`] applies Benjamini–Hochberg at the configured rate (default 0.05) across every
//!    tested (series, period) of a release, and makes a surge event of each period where an
//!    evidence detector fired or whose statistical alarm survives BH. The analytics service
//!    does the same in two steps: evidence surges per release part, BH once over all parts.
//!
//! # Anomalous baselines
//!
//! An earlier surge or a pandemic collapse must not poison later baselines:
//! - `farrington` reweights its GLM by Anscombe residuals (R's `reweight`, on by default), so
//!   outlying baseline periods weigh little; the most recent `past_periods_not_included`
//!   periods are left out of the fit.
//! - `exceeds_prior_year` ignores collapsed years (`min_year_share`); `record_high` and
//!   `year_over_year` compare with single named periods a reader can check.
//! - `ears_*` and `cusum` (with `exclude_alarms`, the default) leave periods they alarmed on
//!   out of later baselines: the baseline is the last `baseline` (`reference`) earlier periods
//!   that did not alarm. At most `baseline / 2` (`reference / 2`) alarms in a row are left out;
//!   a longer run is a new level, and from then on its periods count, so the baseline catches up
//!   instead of alarming forever. Missing periods are skipped the same way (the window is the
//!   last periods the series has). With `exclude_alarms = false` and no gaps, the windows are
//!   R's exactly. A collapse (low values) lowers the EARS mean and can make an ordinary
//!   recovery look high, and so does farrington when its whole reference window lies in the
//!   collapse: the long-run guard ([`AnalysisConfig::long_run_guard`]) asks every statistical
//!   alarm to hold against the median of all earlier figures of the same season too, so a
//!   return to normal is not a surge.

use std::fmt;
use std::str::FromStr;

use borderwatch_model::{
    Finding, Freq, Period, SeriesKey, SurgeEvent, sha256_hex, surge_id, thousands,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::aggregate::SeriesFrame;
use crate::detect::{DetectorConfig, exceeds_prior_year, record_high, year_over_year};
use crate::error::AnalyticsError;
use crate::explain::{explanation, severity};
use crate::surveillance::cusum::{CusumConfig, cusum};
use crate::surveillance::ears::{EarsConfig, EarsMethod, ears_c};
use crate::surveillance::farrington::{
    FarringtonConfig, PowerTrans, ThresholdMethod, farrington_flexible,
};

/// Every detector, by the name the CLI, the config and surge findings use. The order is the
/// order of findings in a surge event: evidence first, then statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Detector {
    #[serde(rename = "exceeds_prior_year")]
    ExceedsPriorYear,
    #[serde(rename = "record_high")]
    RecordHigh,
    #[serde(rename = "year_over_year")]
    YearOverYear,
    #[serde(rename = "farrington")]
    Farrington,
    #[serde(rename = "ears_c1")]
    EarsC1,
    #[serde(rename = "ears_c2")]
    EarsC2,
    #[serde(rename = "ears_c3")]
    EarsC3,
    #[serde(rename = "cusum")]
    Cusum,
}

impl Detector {
    /// Every detector, in findings order.
    pub const ALL: [Detector; 8] = [
        Detector::ExceedsPriorYear,
        Detector::RecordHigh,
        Detector::YearOverYear,
        Detector::Farrington,
        Detector::EarsC1,
        Detector::EarsC2,
        Detector::EarsC3,
        Detector::Cusum,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Detector::ExceedsPriorYear => "exceeds_prior_year",
            Detector::RecordHigh => "record_high",
            Detector::YearOverYear => "year_over_year",
            Detector::Farrington => "farrington",
            Detector::EarsC1 => "ears_c1",
            Detector::EarsC2 => "ears_c2",
            Detector::EarsC3 => "ears_c3",
            Detector::Cusum => "cusum",
        }
    }

    /// The evidence rules: a sentence a reader can check, no p-value.
    pub fn is_evidence(self) -> bool {
        matches!(
            self,
            Detector::ExceedsPriorYear | Detector::RecordHigh | Detector::YearOverYear
        )
    }

    /// The detectors whose p-values enter the false-discovery control: `farrington`
    /// (R's p-value of its model), `ears_c1` and `ears_c2` (see [`ears_p_value`]). `ears_c3`
    /// and `cusum` have no sound p-value: their alarms only corroborate.
    pub fn gives_p_value(self) -> bool {
        matches!(
            self,
            Detector::Farrington | Detector::EarsC1 | Detector::EarsC2
        )
    }

    /// A comma-separated list of names (`"farrington,ears_c1"`), in findings order.
    pub fn parse_list(list: &str) -> Result<Vec<Detector>, AnalyticsError> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            out.push(name.parse()?);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn ears_method(self) -> Option<EarsMethod> {
        match self {
            Detector::EarsC1 => Some(EarsMethod::C1),
            Detector::EarsC2 => Some(EarsMethod::C2),
            Detector::EarsC3 => Some(EarsMethod::C3),
            _ => None,
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Detector {
    type Err = AnalyticsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Detector::ALL
            .into_iter()
            .find(|d| d.name() == s.trim())
            .ok_or_else(|| AnalyticsError::UnknownDetector {
                name: s.trim().to_string(),
                known: Detector::ALL.map(Detector::name).join(", "),
            })
    }
}

/// `farrington`'s settings per frequency (yearly series run only the evidence rules).
///
/// R's defaults (b = 5, w = 3) are made for weekly data: ±3 weeks around the same week of 5
/// earlier years. For months and quarters the defaults here are b = 3, w = 1:
/// - w = 1 keeps the window a season wide (±1 quarter is half a year, ±1 month is about the
///   7 weeks of R's weekly window); w = 3 quarters would cover almost the whole year and wash
///   out seasonality.
/// - b = 3 needs 3 years and one period of history (13 quarters, 37 months) instead of 5: border
///   series are short, many start in the 2010s, and 5 years back from 2024 reach into the
///   2020–2022 collapse for every period. 3 is also R's minimum for fitting a trend.
///
/// In JSON, a partial block (`{"quarterly": {"b": 4}}`) changes only the fields it names:
/// the others keep these defaults, not R's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FarringtonByFreq {
    #[serde(deserialize_with = "over_short_defaults")]
    pub monthly: FarringtonConfig,
    #[serde(deserialize_with = "over_short_defaults")]
    pub quarterly: FarringtonConfig,
}

impl FarringtonByFreq {
    fn short() -> FarringtonConfig {
        FarringtonConfig {
            b: 3,
            w: 1,
            ..FarringtonConfig::default()
        }
    }
}

impl Default for FarringtonByFreq {
    fn default() -> Self {
        FarringtonByFreq {
            monthly: FarringtonByFreq::short(),
            quarterly: FarringtonByFreq::short(),
        }
    }
}

/// Reads a farrington block as a patch over [`FarringtonByFreq`]'s defaults.
fn over_short_defaults<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<FarringtonConfig, D::Error> {
    use serde::de::Error;
    let patch = serde_json::Value::deserialize(d)?;
    let mut base = serde_json::to_value(FarringtonByFreq::short()).map_err(D::Error::custom)?;
    match (base.as_object_mut(), patch.as_object()) {
        (Some(base), Some(patch)) => {
            for (k, v) in patch {
                base.insert(k.clone(), v.clone());
            }
        }
        _ => return Err(D::Error::custom("farrington settings must be an object")),
    }
    serde_json::from_value(base).map_err(D::Error::custom)
}

impl FarringtonByFreq {
    /// The settings for a series of this frequency; `None` for yearly series.
    pub fn for_freq(&self, freq: Freq) -> Option<&FarringtonConfig> {
        match freq {
            Freq::Month => Some(&self.monthly),
            Freq::Quarter => Some(&self.quarterly),
            Freq::Year => None,
        }
    }
}

/// Settings of the three EARS detectors (R's `earsC` control list, plus `exclude_alarms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EarsSettings {
    /// Periods in the baseline window (R's `baseline`, default 7).
    pub baseline: usize,
    /// False-alarm probability; `None` takes R's per-method default (0.001 for C1 and C2,
    /// 0.025 for C3).
    pub alpha: Option<f64>,
    /// Floor of the standard deviation (R's `minSigma`). 1 here, where R has 0: with 0 a flat
    /// baseline (seven quarters of 100) has s = 0 and a rise of one count alarms with p = 0;
    /// one count is the smallest change a count can make.
    pub min_sigma: f64,
    /// Leave periods this detector alarmed on out of its later baselines (see the module
    /// documentation).
    pub exclude_alarms: bool,
}

impl Default for EarsSettings {
    fn default() -> Self {
        EarsSettings {
            baseline: 7,
            alpha: None,
            min_sigma: 1.0,
            exclude_alarms: true,
        }
    }
}

/// Settings of the CUSUM detector (R's `algo.cusum`, standard transform), run per period over a
/// short window: the in-control mean is the average of `reference` earlier periods before
/// the last `run` periods, and the sum runs over those `run` periods, ending at the tested one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CusumSettings {
    /// R's `k` (default 1.04).
    pub k: f64,
    /// R's `h` (default 2.26).
    pub h: f64,
    /// Periods the in-control mean is taken from (8: two years of quarters).
    pub reference: usize,
    /// Periods summed, the tested one last (4: a year of quarters).
    pub run: usize,
    /// Leave periods CUSUM alarmed on out of later reference windows.
    pub exclude_alarms: bool,
}

impl Default for CusumSettings {
    fn default() -> Self {
        let r = CusumConfig::default();
        CusumSettings {
            k: r.k,
            h: r.h,
            reference: 8,
            run: 4,
            exclude_alarms: true,
        }
    }
}

/// Everything the analysis runs with. Serde-readable with every field optional; its
/// [`fingerprint`](AnalysisConfig::fingerprint) goes into surge ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisConfig {
    /// The enabled detectors. Default: the three evidence rules, `farrington` (series with
    /// three years of history), `ears_c2` (short series; its two-period guard band keeps a
    /// two- or three-period ramp out of its own baseline) and `cusum` (corroboration).
    /// `ears_c1` and `ears_c3` are available but off: the EARS variants alarm on nearly the
    /// same periods, and each enabled p-value detector costs a Bonferroni factor.
    pub detectors: Vec<Detector>,
    /// Parameters of the evidence rules (their `enabled` flags are set from `detectors`).
    pub evidence: DetectorConfig,
    pub farrington: FarringtonByFreq,
    pub ears: EarsSettings,
    pub cusum: CusumSettings,
    /// Benjamini–Hochberg false-discovery rate across a release (default 0.05).
    pub fdr: f64,
    /// Smallest count a statistical detector may alarm on (default 20). EARS's normal
    /// approximation means nothing on a handful of cases, and a rise from 2 to 9 is no news.
    /// 0 gives R's alarms unchanged.
    pub min_value: u64,
    /// A statistical alarm must also hold against the series' long-run level: the value must
    /// exceed the median of every earlier figure of the same quarter or month (of every
    /// earlier figure, with fewer than two) by the detector's own margin (upper bound over
    /// expected). Without it, the recovery after a collapse (the 2020–2022 border closures)
    /// alarms everywhere: every baseline of those years is low, and reweighting cannot help
    /// when the whole window is the collapse. On the demo data this is 1,413 false surges in
    /// 240 synthetic series against none. false gives R's alarms unchanged.
    pub long_run_guard: bool,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            detectors: vec![
                Detector::ExceedsPriorYear,
                Detector::RecordHigh,
                Detector::YearOverYear,
                Detector::Farrington,
                Detector::EarsC2,
                Detector::Cusum,
            ],
            evidence: DetectorConfig::default(),
            farrington: FarringtonByFreq::default(),
            ears: EarsSettings::default(),
            cusum: CusumSettings::default(),
            fdr: 0.05,
            min_value: 20,
            long_run_guard: true,
        }
    }
}

/// The names `--set` accepts for farrington, as in R's control list (snake_case).
const FARRINGTON_KEYS: [&str; 12] = [
    "b",
    "w",
    "alpha",
    "reweight",
    "weights_threshold",
    "trend",
    "p_threshold_trend",
    "limit54",
    "power_trans",
    "no_periods",
    "past_periods_not_included",
    "threshold_method",
];

impl AnalysisConfig {
    /// The enabled detectors, once each, in findings order.
    pub fn enabled(&self) -> Vec<Detector> {
        let mut d = self.detectors.clone();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// The defaults with only the named detectors enabled (see [`Detector::parse_list`]); an
    /// empty list keeps the default set.
    pub fn only(list: &str) -> Result<AnalysisConfig, AnalyticsError> {
        let mut cfg = AnalysisConfig::default();
        let detectors = Detector::parse_list(list)?;
        if !detectors.is_empty() {
            cfg.detectors = detectors;
        }
        Ok(cfg)
    }

    /// The evidence configuration with `enabled` set from [`detectors`](Self::detectors).
    pub fn evidence_config(&self) -> DetectorConfig {
        let mut ev = self.evidence.clone();
        let on = |d| self.detectors.contains(&d);
        ev.exceeds_prior_year.enabled = on(Detector::ExceedsPriorYear);
        ev.record_high.enabled = on(Detector::RecordHigh);
        ev.year_over_year.enabled = on(Detector::YearOverYear);
        ev
    }

    /// Stable text for surge ids: `analysis-v1:` and a hash of the enabled detectors and the
    /// parameters they run with (a disabled detector's parameters change nothing).
    pub fn fingerprint(&self) -> String {
        let enabled = self.enabled();
        let on = |d: &[Detector]| d.iter().any(|x| enabled.contains(x));
        let mut parts = vec![
            format!(
                "detectors={}",
                enabled
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            format!("evidence={}", self.evidence_config().fingerprint()),
        ];
        if on(&[Detector::Farrington]) {
            parts.push(format!("farrington={}", json(&self.farrington)));
        }
        if on(&[Detector::EarsC1, Detector::EarsC2, Detector::EarsC3]) {
            parts.push(format!("ears={}", json(&self.ears)));
        }
        if on(&[Detector::Cusum]) {
            parts.push(format!("cusum={}", json(&self.cusum)));
        }
        if enabled.iter().any(|d| !d.is_evidence()) {
            parts.push(format!(
                "fdr={};min_value={};long_run_guard={}",
                self.fdr, self.min_value, self.long_run_guard
            ));
        }
        format!(
            "analysis-v1:{}",
            &sha256_hex(parts.join(";").as_bytes())[..16]
        )
    }

    /// Checks ranges and combinations a detector would otherwise refuse period by period.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        let bad = |m: String| Err(AnalyticsError::InvalidConfig(m));
        if self.detectors.is_empty() {
            return bad("no detector is enabled".into());
        }
        if !(self.fdr > 0.0 && self.fdr <= 1.0) {
            return bad(format!("fdr must be in (0, 1], got {}", self.fdr));
        }
        for (name, f, freq) in [
            ("farrington.monthly", &self.farrington.monthly, 12usize),
            ("farrington.quarterly", &self.farrington.quarterly, 4),
        ] {
            if f.b == 0 {
                return bad(format!("{name}.b must be at least 1"));
            }
            if !(f.alpha > 0.0 && f.alpha < 1.0) {
                return bad(format!("{name}.alpha must be in (0, 1), got {}", f.alpha));
            }
            if f.no_periods == 0 {
                return bad(format!("{name}.no_periods must be at least 1"));
            }
            if f.limit54.1 == 0 {
                return bad(format!("{name}.limit54 needs at least 1 period"));
            }
            let gap = freq as i64 - 2 * f.w as i64 - 1;
            if f.no_periods > 1 && gap < f.no_periods as i64 - 1 {
                return bad(format!(
                    "{name}.no_periods = {} needs {} periods between windows, but w = {} leaves {}",
                    f.no_periods,
                    f.no_periods - 1,
                    f.w,
                    gap.max(0)
                ));
            }
        }
        if self.ears.baseline < 3 {
            return bad(format!(
                "ears.baseline must be at least 3, got {}",
                self.ears.baseline
            ));
        }
        if let Some(a) = self.ears.alpha
            && !(a > 0.0 && a < 1.0)
        {
            return bad(format!("ears.alpha must be in (0, 1), got {a}"));
        }
        if !(self.ears.min_sigma.is_finite() && self.ears.min_sigma >= 0.0) {
            return bad(format!(
                "ears.min_sigma must be >= 0, got {}",
                self.ears.min_sigma
            ));
        }
        for (name, v) in [("cusum.k", self.cusum.k), ("cusum.h", self.cusum.h)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be >= 0, got {v}"));
            }
        }
        if self.cusum.reference == 0 || self.cusum.run == 0 {
            return bad("cusum.reference and cusum.run must be at least 1".into());
        }
        Ok(())
    }

    /// Every key [`set`](Self::set) accepts.
    pub fn setting_names() -> Vec<String> {
        let mut keys: Vec<String> = vec!["fdr".into(), "min_value".into(), "long_run_guard".into()];
        for k in FARRINGTON_KEYS {
            keys.push(format!("farrington.{k}"));
        }
        keys.push("farrington.monthly.<name>, farrington.quarterly.<name>".into());
        for k in ["baseline", "alpha", "min_sigma", "exclude_alarms"] {
            keys.push(format!("ears.{k}"));
        }
        for k in ["k", "h", "reference", "run", "exclude_alarms"] {
            keys.push(format!("cusum.{k}"));
        }
        for k in ["min_history", "margin", "min_value"] {
            keys.push(format!("record_high.{k}"));
        }
        for k in ["min_value", "min_year_share"] {
            keys.push(format!("exceeds_prior_year.{k}"));
        }
        for k in ["min_ratio", "min_value"] {
            keys.push(format!("year_over_year.{k}"));
        }
        keys
    }

    /// Sets one parameter by name, as `borderwatch analyze --set KEY=VALUE` does. farrington's
    /// names are R's in snake_case (`farrington.b`, `farrington.limit54=5,4`, or bare `b`); a
    /// `farrington.` key sets monthly and quarterly alike, `farrington.quarterly.b` one of them.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), AnalyticsError> {
        let v = Value { key, value };
        let (head, rest) = key.split_once('.').unwrap_or(("", key));
        let known = match (head, rest) {
            ("", "fdr") => {
                self.fdr = v.f64()?;
                true
            }
            ("", "min_value") => {
                self.min_value = v.u64()?;
                true
            }
            ("", "long_run_guard") => {
                self.long_run_guard = v.bool()?;
                true
            }
            ("farrington", name) | ("", name) => match name.split_once('.') {
                Some(("monthly", n)) => set_farrington(&mut self.farrington.monthly, n, &v)?,
                Some(("quarterly", n)) => set_farrington(&mut self.farrington.quarterly, n, &v)?,
                Some(_) => false,
                None => {
                    let mut m = self.farrington.monthly.clone();
                    let known = set_farrington(&mut m, name, &v)?;
                    if known {
                        self.farrington.monthly = m;
                        set_farrington(&mut self.farrington.quarterly, name, &v)?;
                    }
                    known
                }
            },
            ("ears", "baseline") => {
                self.ears.baseline = v.usize()?;
                true
            }
            ("ears", "alpha") => {
                self.ears.alpha = v.optional(Value::f64)?;
                true
            }
            ("ears", "min_sigma") => {
                self.ears.min_sigma = v.f64()?;
                true
            }
            ("ears", "exclude_alarms") => {
                self.ears.exclude_alarms = v.bool()?;
                true
            }
            ("cusum", "k") => {
                self.cusum.k = v.f64()?;
                true
            }
            ("cusum", "h") => {
                self.cusum.h = v.f64()?;
                true
            }
            ("cusum", "reference") => {
                self.cusum.reference = v.usize()?;
                true
            }
            ("cusum", "run") => {
                self.cusum.run = v.usize()?;
                true
            }
            ("cusum", "exclude_alarms") => {
                self.cusum.exclude_alarms = v.bool()?;
                true
            }
            ("record_high", "min_history") => {
                self.evidence.record_high.min_history = v.usize()?;
                true
            }
            ("record_high", "margin") => {
                self.evidence.record_high.margin = v.f64()?;
                true
            }
            ("record_high", "min_value") => {
                self.evidence.record_high.min_value = v.u64()?;
                true
            }
            ("exceeds_prior_year", "min_value") => {
                self.evidence.exceeds_prior_year.min_value = v.u64()?;
                true
            }
            ("exceeds_prior_year", "min_year_share") => {
                self.evidence.exceeds_prior_year.min_year_share = v.f64()?;
                true
            }
            ("year_over_year", "min_ratio") => {
                self.evidence.year_over_year.min_ratio = v.f64()?;
                true
            }
            ("year_over_year", "min_value") => {
                self.evidence.year_over_year.min_value = v.u64()?;
                true
            }
            _ => false,
        };
        if known {
            Ok(())
        } else {
            Err(AnalyticsError::UnknownSetting {
                key: key.to_string(),
                known: AnalysisConfig::setting_names().join(", "),
            })
        }
    }

    /// [`set`](Self::set) for a `KEY=VALUE` string.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), AnalyticsError> {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| AnalyticsError::BadSetting {
                key: pair.trim().to_string(),
                value: String::new(),
                expected: "given: write KEY=VALUE, e.g. farrington.b=3".into(),
            })?;
        self.set(key.trim(), value.trim())
    }
}

/// JSON of a config part, for the fingerprint.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// One `--set` value being read, for errors that name the key.
struct Value<'a> {
    key: &'a str,
    value: &'a str,
}

impl Value<'_> {
    fn err<T>(&self, expected: &str) -> Result<T, AnalyticsError> {
        Err(AnalyticsError::BadSetting {
            key: self.key.to_string(),
            value: self.value.to_string(),
            expected: expected.to_string(),
        })
    }

    fn usize(&self) -> Result<usize, AnalyticsError> {
        self.value
            .parse()
            .or_else(|_| self.err("a whole number >= 0"))
    }

    fn u64(&self) -> Result<u64, AnalyticsError> {
        self.value
            .parse()
            .or_else(|_| self.err("a whole number >= 0"))
    }

    fn f64(&self) -> Result<f64, AnalyticsError> {
        match self.value.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => self.err("a number"),
        }
    }

    fn bool(&self) -> Result<bool, AnalyticsError> {
        match self.value.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Ok(true),
            "false" | "f" | "no" | "0" => Ok(false),
            _ => self.err("true or false"),
        }
    }

    fn optional<T>(
        &self,
        read: impl Fn(&Self) -> Result<T, AnalyticsError>,
    ) -> Result<Option<T>, AnalyticsError> {
        match self.value.to_ascii_lowercase().as_str() {
            "" | "null" | "none" | "na" | "default" => Ok(None),
            _ => read(self).map(Some),
        }
    }
}

/// Sets one farrington parameter; `Ok(false)` when `name` is not one.
fn set_farrington(
    f: &mut FarringtonConfig,
    name: &str,
    v: &Value<'_>,
) -> Result<bool, AnalyticsError> {
    match name {
        "b" => f.b = v.usize()?,
        "w" => f.w = v.usize()?,
        "alpha" => f.alpha = v.f64()?,
        "reweight" => f.reweight = v.bool()?,
        "weights_threshold" => f.weights_threshold = v.f64()?,
        "trend" => f.trend = v.bool()?,
        "p_threshold_trend" => f.p_threshold_trend = v.f64()?,
        "limit54" => {
            let parts: Vec<&str> = v
                .value
                .trim_start_matches("c(")
                .trim_end_matches(')')
                .split(',')
                .map(str::trim)
                .collect();
            f.limit54 = match parts.as_slice() {
                [cases, periods] => match (cases.parse(), periods.parse()) {
                    (Ok(c), Ok(p)) => (c, p),
                    _ => return v.err("two whole numbers, cases and periods, such as 5,4"),
                },
                _ => return v.err("two whole numbers, cases and periods, such as 5,4"),
            };
        }
        "power_trans" => {
            f.power_trans = match v.value {
                "2/3" | "two_thirds" => PowerTrans::TwoThirds,
                "1/2" | "half" => PowerTrans::Half,
                "none" => PowerTrans::None,
                _ => return v.err("2/3, 1/2 or none"),
            }
        }
        "no_periods" => f.no_periods = v.usize()?,
        "past_periods_not_included" => f.past_periods_not_included = v.optional(Value::usize)?,
        "threshold_method" => {
            f.threshold_method = match v.value {
                "delta" => ThresholdMethod::Delta,
                "nbPlugin" | "nb_plugin" | "nbplugin" => ThresholdMethod::NbPlugin,
                "muan" => ThresholdMethod::Muan,
                _ => return v.err("delta, nb_plugin or muan"),
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// What one detector said about one period of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub detector: Detector,
    pub period: Period,
    pub value: u64,
    /// The expected count (`None`: too little history, no fit, or an evidence rule that did
    /// not fire).
    pub expected: Option<f64>,
    /// The threshold the value was tested against.
    pub upper_bound: Option<f64>,
    /// The detector's alarm; for statistical detectors also `value >= min_value` and the
    /// long-run guard (see [`AnalysisConfig::long_run_guard`]).
    pub alarm: bool,
    /// One-sided p-value of the statistical detectors that give one (`farrington`, `ears_*`).
    pub p_value: Option<f64>,
    /// The finding a surge event would carry, when the detector alarmed.
    pub finding: Option<Finding>,
}

impl Evaluation {
    fn quiet(detector: Detector, period: Period, value: u64) -> Evaluation {
        Evaluation {
            detector,
            period,
            value,
            expected: None,
            upper_bound: None,
            alarm: false,
            p_value: None,
            finding: None,
        }
    }
}

/// Runs every enabled detector on each requested period of `frame` that the series has a
/// figure for (others are skipped; duplicates tested once) and returns one row per (period,
/// detector), by period, then in [`Detector::ALL`] order. Never panics on short, sparse,
/// all-zero or gappy series: a detector without enough history gives a quiet row.
pub fn evaluate_all(
    frame: &SeriesFrame,
    periods: &[Period],
    cfg: &AnalysisConfig,
) -> Vec<Evaluation> {
    let mut wanted: Vec<(Period, usize)> = periods
        .iter()
        .filter_map(|&p| frame.position(p).map(|i| (p, i)))
        .collect();
    wanted.sort_unstable_by_key(|&(_, i)| i);
    wanted.dedup();
    if wanted.is_empty() {
        return Vec::new();
    }
    let evidence = cfg.evidence_config();
    let enabled = cfg.enabled();
    let levels = if cfg.long_run_guard && enabled.iter().any(|d| !d.is_evidence()) {
        long_run_levels(frame, wanted.last().map_or(0, |&(_, i)| i))
    } else {
        Vec::new()
    };
    let guard = Guard {
        min_value: cfg.min_value,
        levels: &levels,
    };
    let columns: Vec<Vec<Evaluation>> = enabled
        .into_iter()
        .map(|d| match d {
            Detector::ExceedsPriorYear | Detector::RecordHigh | Detector::YearOverYear => {
                evidence_rows(frame, &wanted, d, &evidence)
            }
            Detector::Farrington => farrington_rows(frame, &wanted, cfg, &guard),
            Detector::EarsC1 | Detector::EarsC2 | Detector::EarsC3 => {
                ears_rows(frame, &wanted, d, cfg, &guard)
            }
            Detector::Cusum => cusum_rows(frame, &wanted, cfg, &guard),
        })
        .collect();
    let mut out = Vec::with_capacity(wanted.len() * columns.len());
    for i in 0..wanted.len() {
        for column in &columns {
            out.push(column[i].clone());
        }
    }
    out
}

/// [`evaluate_all`] for many series at once, on every core (rayon). Call it from a blocking
/// context (`spawn_blocking`) inside async code.
pub fn evaluate_frames(
    jobs: &[(&SeriesFrame, Vec<Period>)],
    cfg: &AnalysisConfig,
) -> Vec<Vec<Evaluation>> {
    jobs.par_iter()
        .map(|(frame, periods)| evaluate_all(frame, periods, cfg))
        .collect()
}

/// The floors a statistical alarm must also clear: `min_value` and the long-run level.
#[derive(Debug)]
struct Guard<'a> {
    min_value: u64,
    /// Per position in `points`: the long-run level of that period's season (empty: no guard).
    levels: &'a [Option<f64>],
}

impl Guard<'_> {
    fn passes(&self, i: usize, value: u64, expected: Option<f64>, upper: Option<f64>) -> bool {
        if value < self.min_value {
            return false;
        }
        let Some(level) = self.levels.get(i).copied().flatten() else {
            return true;
        };
        let margin = match (expected, upper) {
            (Some(e), Some(u)) if e > 0.0 && u.is_finite() => (u / e).max(1.0),
            _ => 1.0,
        };
        value as f64 > level * margin
    }
}

/// For each position up to `last`: the median of every earlier figure of the same quarter or
/// month, or of every earlier figure when the season has fewer than two; `None` at the start.
fn long_run_levels(frame: &SeriesFrame, last: usize) -> Vec<Option<f64>> {
    let mut by_season: Vec<Vec<u64>> = vec![Vec::new(); 13];
    let mut all: Vec<u64> = Vec::new();
    let median = |v: &[u64]| -> f64 {
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2] as f64
        } else {
            (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
        }
    };
    let mut out = Vec::with_capacity(last + 1);
    for &(period, value) in frame.points.iter().take(last + 1) {
        let season = &mut by_season[usize::from(period.sub()).min(12)];
        out.push(if season.len() >= 2 {
            Some(median(season))
        } else if !all.is_empty() {
            Some(median(&all))
        } else {
            None
        });
        let at = season.partition_point(|&x| x < value);
        season.insert(at, value);
        let at = all.partition_point(|&x| x < value);
        all.insert(at, value);
    }
    out
}

fn evidence_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    d: Detector,
    cfg: &DetectorConfig,
) -> Vec<Evaluation> {
    wanted
        .iter()
        .map(|&(period, i)| {
            let value = frame.points[i].1;
            let finding = match d {
                Detector::ExceedsPriorYear => {
                    exceeds_prior_year(frame, period, &cfg.exceeds_prior_year)
                }
                Detector::RecordHigh => record_high(frame, period, &cfg.record_high),
                _ => year_over_year(frame, period, &cfg.year_over_year),
            };
            match finding {
                Some(f) => Evaluation {
                    expected: f.expected,
                    upper_bound: f.upper_bound,
                    alarm: true,
                    finding: Some(f),
                    ..Evaluation::quiet(d, period, value)
                },
                None => Evaluation::quiet(d, period, value),
            }
        })
        .collect()
}

fn quiet_rows(frame: &SeriesFrame, wanted: &[(Period, usize)], d: Detector) -> Vec<Evaluation> {
    wanted
        .iter()
        .map(|&(p, i)| Evaluation::quiet(d, p, frame.points[i].1))
        .collect()
}

fn farrington_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    cfg: &AnalysisConfig,
    guard: &Guard<'_>,
) -> Vec<Evaluation> {
    let Some(fc) = cfg.farrington.for_freq(frame.freq) else {
        return quiet_rows(frame, wanted, Detector::Farrington);
    };
    // The dense series from its first figure: missing periods are `None` (R's NA).
    let first = frame.points[0].0.index();
    let last = wanted.last().map_or(0, |&(p, _)| p.index());
    let mut counts = vec![None; (last - first + 1) as usize];
    for &(p, c) in frame.points.iter().take_while(|(p, _)| p.index() <= last) {
        counts[(p.index() - first) as usize] = Some(c);
    }
    let freq = frame.freq.per_year() as usize;
    let start = freq * fc.b + fc.w;
    wanted
        .iter()
        .map(|&(period, i)| {
            let value = frame.points[i].1;
            let quiet = Evaluation::quiet(Detector::Farrington, period, value);
            let k = (period.index() - first) as usize;
            if k < start {
                return quiet;
            }
            // One call per period: an error (a GLM that cannot be fitted) costs that period
            // only, and later figures never reach the fit.
            let Ok(points) = farrington_flexible(&counts[..=k], freq, Some(k..k + 1), fc) else {
                return quiet;
            };
            let Some(pt) = points.into_iter().next() else {
                return quiet;
            };
            let alarm = pt.alarm && guard.passes(i, value, pt.expected, pt.upper_bound);
            let finding = match (alarm, pt.expected, pt.upper_bound) {
                (true, Some(expected), Some(upper)) => Some(Finding {
                    detector: Detector::Farrington.name().into(),
                    expected: Some(expected),
                    upper_bound: Some(upper),
                    p_value: pt.p_value,
                    message: format!(
                        "{} the expected {} (upper bound {}{})",
                        above(value, upper),
                        count(expected),
                        count(upper),
                        p_text(pt.p_value)
                    ),
                    baseline: None,
                }),
                _ => None,
            };
            Evaluation {
                expected: pt.expected,
                upper_bound: pt.upper_bound,
                alarm: finding.is_some(),
                p_value: pt.p_value.filter(|p| !p.is_nan()),
                finding,
                ..quiet
            }
        })
        .collect()
}

/// Keeps the history a baseline may read: every figure but the alarms being left out.
#[derive(Debug)]
struct CleanHistory {
    /// (position in `points`, value) of the periods a baseline may use.
    kept: Vec<(usize, f64)>,
    excluded_in_a_row: usize,
    cap: usize,
    exclude: bool,
}

impl CleanHistory {
    fn new(exclude: bool, cap: usize) -> CleanHistory {
        CleanHistory {
            kept: Vec::new(),
            excluded_in_a_row: 0,
            cap,
            exclude,
        }
    }

    /// Records the outcome at position `i`: an alarm is left out, up to `cap` in a row.
    fn record(&mut self, i: usize, value: f64, alarm: bool) {
        if !alarm {
            self.excluded_in_a_row = 0;
        } else if self.exclude && self.excluded_in_a_row < self.cap {
            self.excluded_in_a_row += 1;
            return;
        }
        self.kept.push((i, value));
    }
}

fn ears_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    d: Detector,
    cfg: &AnalysisConfig,
    guard: &Guard<'_>,
) -> Vec<Evaluation> {
    let Some(method) = d.ears_method().filter(|_| frame.freq != Freq::Year) else {
        return quiet_rows(frame, wanted, d);
    };
    let s = &cfg.ears;
    let ec = EarsConfig {
        method,
        baseline: s.baseline,
        min_sigma: s.min_sigma,
        alpha: s.alpha,
    };
    let lag = method.max_lag(s.baseline);
    let noun = frame.freq.noun();
    let mut history = CleanHistory::new(s.exclude_alarms, s.baseline / 2);
    let mut buf = Vec::with_capacity(lag + 1);
    let mut out = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    let last = wanted.last().map_or(0, |&(_, i)| i);
    for (i, &(period, value)) in frame.points[..=last].iter().enumerate() {
        let mut row = Evaluation::quiet(d, period, value);
        let kept = &history.kept;
        if kept.len() >= lag && s.baseline >= 3 {
            buf.clear();
            buf.extend(kept[kept.len() - lag..].iter().map(|&(_, v)| v));
            buf.push(value as f64);
            if let Ok(points) = ears_c(&buf, Some(lag..lag + 1), &ec)
                && let Some(pt) = points.first()
            {
                let (expected, upper) = (finite(pt.expected), finite(pt.upper_bound));
                let alarm = pt.alarm && guard.passes(i, value, expected, upper);
                row.expected = expected;
                row.upper_bound = upper;
                row.p_value = ears_p_value(method, pt.statistic, s.baseline);
                if let (true, Some(e), Some(u)) = (alarm, expected, upper) {
                    row.alarm = true;
                    row.finding = Some(Finding {
                        detector: d.name().into(),
                        expected: Some(e),
                        upper_bound: Some(u),
                        p_value: row.p_value,
                        message: format!(
                            "{} the average of {} earlier {noun}s ({}; upper bound {}{})",
                            above(value, u),
                            s.baseline,
                            count(e),
                            count(u),
                            p_text(row.p_value)
                        ),
                        baseline: None,
                    });
                }
            }
        }
        history.record(i, value as f64, row.alarm);
        if next.peek().is_some_and(|&&(_, j)| j == i) {
            next.next();
            out.push(row);
        }
    }
    out
}

fn cusum_rows(
    frame: &SeriesFrame,
    wanted: &[(Period, usize)],
    cfg: &AnalysisConfig,
    guard: &Guard<'_>,
) -> Vec<Evaluation> {
    if frame.freq == Freq::Year {
        return quiet_rows(frame, wanted, Detector::Cusum);
    }
    let s = &cfg.cusum;
    let cc = CusumConfig {
        k: s.k,
        h: s.h,
        ..CusumConfig::default()
    };
    let noun = frame.freq.noun();
    let mut history = CleanHistory::new(s.exclude_alarms, s.reference / 2);
    let mut buf = Vec::with_capacity(s.reference + s.run);
    let mut out = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    let last = wanted.last().map_or(0, |&(_, i)| i);
    for (i, &(period, value)) in frame.points[..=last].iter().enumerate() {
        let mut row = Evaluation::quiet(Detector::Cusum, period, value);
        if s.run >= 1 && s.reference >= 1 && i + 1 >= s.run {
            let run_start = i + 1 - s.run;
            let kept = &history.kept;
            let end = kept.partition_point(|&(j, _)| j < run_start);
            if end >= s.reference {
                buf.clear();
                buf.extend(kept[end - s.reference..end].iter().map(|&(_, v)| v));
                buf.extend(frame.points[run_start..=i].iter().map(|&(_, c)| c as f64));
                if let Ok(points) = cusum(&buf, s.reference..buf.len(), &cc)
                    && let Some(pt) = points.last()
                {
                    row.expected = finite(pt.expected);
                    row.upper_bound = finite(pt.upper_bound);
                    let alarm = pt.alarm && guard.passes(i, value, row.expected, row.upper_bound);
                    if alarm && let Some(e) = row.expected {
                        row.alarm = true;
                        row.finding = Some(Finding {
                            detector: Detector::Cusum.name().into(),
                            expected: Some(e),
                            upper_bound: row.upper_bound,
                            p_value: None,
                            message: format!(
                                "a sustained rise over the average of {} earlier {noun}s ({})",
                                s.reference,
                                count(e)
                            ),
                            baseline: None,
                        });
                    }
                }
            }
        }
        history.record(i, value as f64, row.alarm);
        if next.peek().is_some_and(|&&(_, j)| j == i) {
            next.next();
            out.push(row);
        }
    }
    out
}

/// The p-value of an EARS C1 or C2 statistic z = (y − ȳ)/max(s, min_sigma), with ȳ and s
/// the mean and standard deviation of B baseline counts: P(T > z / √(1 + 1/B)) for a Student
/// t with B − 1 degrees of freedom, the exact prediction tail for normal counts (a larger
/// `min_sigma` only makes it conservative). `ears_c`'s own one-sided *normal* p-value treats s
/// as the true deviation; with B = 7 that understates the tail about tenfold at z = 3, and
/// across thousands of series false discoveries swamp Benjamini–Hochberg (150 quiet series
/// gave 56 "surges" in the test `decide_controls_false_discoveries_across_series`). `None` for
/// C3, whose statistic is the lags' excess (no such distribution), and for 0/0.
pub fn ears_p_value(method: EarsMethod, statistic: f64, baseline: usize) -> Option<f64> {
    if method == EarsMethod::C3 || statistic.is_nan() || baseline < 2 {
        return None;
    }
    if statistic == f64::INFINITY {
        return Some(0.0);
    }
    if statistic == f64::NEG_INFINITY {
        return Some(1.0);
    }
    let b = baseline as f64;
    let t = StudentsT::new(0.0, 1.0, b - 1.0).ok()?;
    Some(t.sf(statistic / (1.0 + 1.0 / b).sqrt()))
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// "far above" from twice the bound up, "above" below.
fn above(value: u64, upper: f64) -> &'static str {
    if value as f64 >= 2.0 * upper {
        "far above"
    } else {
        "above"
    }
}

/// A model count as a reader sees it: whole, with thousands separators.
fn count(x: f64) -> String {
    thousands(x.max(0.0).round() as u64)
}

/// ", p < 0.001" or ", p = 0.012"; nothing without a p-value.
fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => ", p < 0.001".into(),
        Some(p) if p.is_finite() => format!(", p = {p:.3}"),
        _ => String::new(),
    }
}

/// One (series, period) with everything the surge decision needs. Serialisable: the
/// analytics service stores a release part's candidates with its `bw_analyzed` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub key: SeriesKey,
    pub period: Period,
    pub value: u64,
    /// Findings of the evidence rules that fired.
    #[serde(default)]
    pub evidence: Vec<Finding>,
    /// Findings of the statistical detectors that alarmed (CUSUM included).
    #[serde(default)]
    pub statistical: Vec<Finding>,
    /// The combined p-value: min over the enabled p-value detectors of (p if it alarmed,
    /// else 1), times the number of those that gave a p-value (Bonferroni), at most 1.
    /// `None` when none of them could run (too little history).
    pub p_value: Option<f64>,
}

/// Folds the rows of [`evaluate_all`] into one [`Assessment`] per period.
pub fn assess(frame: &SeriesFrame, evaluations: &[Evaluation]) -> Vec<Assessment> {
    let mut out: Vec<Assessment> = Vec::new();
    let mut tested: Vec<f64> = Vec::new();
    for (n, e) in evaluations.iter().enumerate() {
        if out.last().is_none_or(|a| a.period != e.period) {
            out.push(Assessment {
                key: frame.key.clone(),
                period: e.period,
                value: e.value,
                evidence: Vec::new(),
                statistical: Vec::new(),
                p_value: None,
            });
            tested.clear();
        }
        let Some(a) = out.last_mut() else { continue };
        if let Some(f) = &e.finding {
            if e.detector.is_evidence() {
                a.evidence.push(f.clone());
            } else {
                a.statistical.push(f.clone());
            }
        }
        if e.detector.gives_p_value()
            && let Some(p) = e.p_value
        {
            tested.push(if e.alarm { p } else { 1.0 });
        }
        let period_ends = evaluations
            .get(n + 1)
            .is_none_or(|next| next.period != e.period);
        if period_ends && !tested.is_empty() {
            let min = tested.iter().copied().fold(1.0, f64::min);
            a.p_value = Some((min * tested.len() as f64).min(1.0));
        }
    }
    out
}

/// R's `p.adjust(p, method = "BH", n = m)`: Benjamini–Hochberg adjusted p-values of `p` among
/// `m ≥ p.len()` tests, the others all having larger p-values (NaN counts as 1).
pub fn bh_adjust(p: &[f64], m: usize) -> Vec<f64> {
    let m = m.max(p.len()) as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    let val = |i: usize| if p[i].is_nan() { 1.0 } else { p[i] };
    order.sort_by(|&a, &b| val(b).total_cmp(&val(a)));
    let mut adjusted = vec![1.0; p.len()];
    let mut running = f64::INFINITY;
    for (pos, &i) in order.iter().enumerate() {
        let rank = (p.len() - pos) as f64;
        running = running.min(m / rank * val(i));
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

/// Which assessments survive Benjamini–Hochberg at rate `fdr` among `tested` tests (at least
/// the number with a p-value here): adjusted p ≤ fdr. Assessments without a p-value never do.
pub fn fdr_survivors(assessments: &[Assessment], tested: usize, fdr: f64) -> Vec<bool> {
    let with_p: Vec<(usize, f64)> = assessments
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.p_value.map(|p| (i, p)))
        .collect();
    let p: Vec<f64> = with_p.iter().map(|&(_, p)| p).collect();
    let adjusted = bh_adjust(&p, tested);
    let mut out = vec![false; assessments.len()];
    for (&(i, _), q) in with_p.iter().zip(adjusted) {
        out[i] = q <= fdr;
    }
    out
}

/// How many assessments carry a p-value: the BH family size they add.
pub fn tested(assessments: &[Assessment]) -> usize {
    assessments.iter().filter(|a| a.p_value.is_some()).count()
}

/// The surge event of one assessment: when an evidence rule fired, or when `significant`
/// (it survived BH) and a statistical detector alarmed. Findings: evidence first, then the
/// statistical alarms (corroboration, with their own p-values).
pub fn surge_event(
    a: &Assessment,
    significant: bool,
    fingerprint: &str,
    release_id: &str,
    detected_at: &str,
) -> Option<SurgeEvent> {
    let statistical_surge = significant && a.statistical.iter().any(|f| f.p_value.is_some());
    if a.evidence.is_empty() && !statistical_surge {
        return None;
    }
    let findings: Vec<Finding> = a.evidence.iter().chain(&a.statistical).cloned().collect();
    // The sentence cites every evidence rule but only the first statistical detector that
    // gave a p-value, and only when it survived BH: one number a reader can check, not three
    // ways of saying "unusually high". Every finding stays in `findings`.
    let lead_statistic = a
        .statistical
        .iter()
        .find(|f| significant && f.p_value.is_some());
    let told: Vec<Finding> = a.evidence.iter().chain(lead_statistic).cloned().collect();
    Some(SurgeEvent {
        id: surge_id(&a.key, a.period, fingerprint),
        source: a.key.source.clone(),
        country: a.key.country,
        category: a.key.category.clone(),
        period: a.period,
        value: a.value,
        severity: severity(a.value, &findings),
        explanation: explanation(&a.key, a.period, a.value, &told),
        findings,
        release_id: release_id.to_string(),
        detected_at: detected_at.to_string(),
    })
}

/// From the assessments of a whole release to its surge events: BH at `cfg.fdr` across every
/// assessment with a p-value, then [`surge_event`] for each, in input order.
pub fn decide(
    assessments: &[Assessment],
    cfg: &AnalysisConfig,
    release_id: &str,
    detected_at: &str,
) -> Vec<SurgeEvent> {
    let survivors = fdr_survivors(assessments, tested(assessments), cfg.fdr);
    let fingerprint = cfg.fingerprint();
    assessments
        .iter()
        .zip(survivors)
        .filter_map(|(a, s)| surge_event(a, s, &fingerprint, release_id, detected_at))
        .collect()
}

#[cfg(test)]
mod tests;
