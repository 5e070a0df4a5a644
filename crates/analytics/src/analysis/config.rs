//! The configuration of an analysis: which detectors run ([`Detector`]), their settings
//! ([`AnalysisConfig`] and its per-detector blocks), the fingerprint that names them in surge
//! ids, and the `--set KEY=VALUE` parser the CLI and the service share.

use std::fmt;
use std::str::FromStr;

use borderwatch_model::{Freq, sha256_hex};
use serde::{Deserialize, Serialize};

use crate::alert::AlertConfig;
use crate::detect::DetectorConfig;
use crate::error::AnalyticsError;
use crate::surveillance::cusum::CusumConfig;
use crate::surveillance::ears::EarsMethod;
use crate::surveillance::farrington::{FarringtonConfig, PowerTrans, ThresholdMethod};

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
    #[serde(rename = "fall")]
    Fall,
}

impl Detector {
    /// Every detector, in findings order.
    pub const ALL: [Detector; 9] = [
        Detector::ExceedsPriorYear,
        Detector::RecordHigh,
        Detector::YearOverYear,
        Detector::Farrington,
        Detector::EarsC1,
        Detector::EarsC2,
        Detector::EarsC3,
        Detector::Cusum,
        Detector::Fall,
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
            Detector::Fall => "fall",
        }
    }

    /// The evidence rules: a sentence a reader can check, no p-value.
    pub fn is_evidence(self) -> bool {
        matches!(
            self,
            Detector::ExceedsPriorYear | Detector::RecordHigh | Detector::YearOverYear
        )
    }

    /// The detector of falls (significant drops): its p-values are a false-discovery family
    /// of their own, and its alarms make fall events, never surges.
    pub fn is_fall(self) -> bool {
        self == Detector::Fall
    }

    /// The detectors whose p-values enter the false-discovery control: `farrington`
    /// (R's p-value of its model), `ears_c1` and `ears_c2` (see [`ears_p_value`](super::ears_p_value)). `ears_c3`
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

    pub(super) fn ears_method(self) -> Option<EarsMethod> {
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

/// Settings of `fall`, the detector of significant drops. It reads farrington's fit of the
/// same period (so it runs where farrington can, at farrington's `alpha`) and alarms below
/// its lower bound; its p-value is the lower tail, the probability of a count at most the
/// observed one under the fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FallSettings {
    /// Smallest expected count a fall is tested at (default 100): a series of a few dozen
    /// people that drops to zero is noise, not a border closing.
    pub min_expected: f64,
}

impl Default for FallSettings {
    fn default() -> Self {
        FallSettings {
            min_expected: 100.0,
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
    pub fall: FallSettings,
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
    /// What of the surges is news and how loud ([`AlertConfig`]: the score gate, severity
    /// thresholds and the live edge). Not in the fingerprint: retuning the thresholds does
    /// not rename the surges that stay.
    pub alert: AlertConfig,
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
                Detector::Fall,
            ],
            evidence: DetectorConfig::default(),
            farrington: FarringtonByFreq::default(),
            ears: EarsSettings::default(),
            cusum: CusumSettings::default(),
            fall: FallSettings::default(),
            fdr: 0.05,
            min_value: 20,
            long_run_guard: true,
            alert: AlertConfig::default(),
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
        if on(&[Detector::Fall]) {
            parts.push(format!("fall={}", json(&self.fall)));
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
        let a = &self.alert;
        if !(a.min_score <= a.medium_score
            && a.medium_score <= a.high_score
            && a.high_score <= a.critical_score)
        {
            return bad(format!(
                "alert scores must rise: min_score {} <= medium_score {} <= high_score {} <= critical_score {}",
                a.min_score, a.medium_score, a.high_score, a.critical_score
            ));
        }
        if a.live_window == 0 {
            return bad("alert.live_window must be at least 1".into());
        }
        if self.fall.min_expected.is_nan() || self.fall.min_expected < 0.0 {
            return bad(format!(
                "fall.min_expected must be at least 0, got {}",
                self.fall.min_expected
            ));
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
        keys.push("fall.min_expected".into());
        for k in ["min_history", "margin", "min_value"] {
            keys.push(format!("record_high.{k}"));
        }
        for k in ["min_value", "min_year_share", "recent_years"] {
            keys.push(format!("exceeds_prior_year.{k}"));
        }
        for k in ["min_ratio", "min_value", "min_previous"] {
            keys.push(format!("year_over_year.{k}"));
        }
        for k in [
            "live_window",
            "min_score",
            "medium_score",
            "high_score",
            "critical_score",
        ] {
            keys.push(format!("alert.{k}"));
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
            ("fall", "min_expected") => {
                self.fall.min_expected = v.f64()?;
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
            ("year_over_year", "min_previous") => {
                self.evidence.year_over_year.min_previous = v.u64()?;
                true
            }
            ("exceeds_prior_year", "recent_years") => {
                self.evidence.exceeds_prior_year.recent_years = v.u64()? as i32;
                true
            }
            ("alert", "live_window") => {
                self.alert.live_window = v.u64()? as usize;
                true
            }
            ("alert", "min_score") => {
                self.alert.min_score = v.f64()?;
                true
            }
            ("alert", "medium_score") => {
                self.alert.medium_score = v.f64()?;
                true
            }
            ("alert", "high_score") => {
                self.alert.high_score = v.f64()?;
                true
            }
            ("alert", "critical_score") => {
                self.alert.critical_score = v.f64()?;
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

    /// Every value [`set`](Self::set) can change, as `(key, value)` in the form `set` reads
    /// back: the inverse of `set`, so that `borderwatch config check` prints settings a file
    /// can hold. farrington's keys are per frequency (`farrington.monthly.b`), as the two may
    /// differ; `detectors` is not among them (it is a list, not a `set` key).
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| out.push((k.to_string(), v));
        put("fdr", self.fdr.to_string());
        put("min_value", self.min_value.to_string());
        put("long_run_guard", self.long_run_guard.to_string());
        for (freq, f) in [
            ("monthly", &self.farrington.monthly),
            ("quarterly", &self.farrington.quarterly),
        ] {
            for (name, value) in farrington_settings(f) {
                put(&format!("farrington.{freq}.{name}"), value);
            }
        }
        let e = &self.ears;
        put("ears.baseline", e.baseline.to_string());
        put("ears.alpha", optional(e.alpha));
        put("ears.min_sigma", e.min_sigma.to_string());
        put("ears.exclude_alarms", e.exclude_alarms.to_string());
        let c = &self.cusum;
        put("cusum.k", c.k.to_string());
        put("cusum.h", c.h.to_string());
        put("cusum.reference", c.reference.to_string());
        put("cusum.run", c.run.to_string());
        put("cusum.exclude_alarms", c.exclude_alarms.to_string());
        put("fall.min_expected", self.fall.min_expected.to_string());
        let (rh, py, yoy) = (
            &self.evidence.record_high,
            &self.evidence.exceeds_prior_year,
            &self.evidence.year_over_year,
        );
        put("record_high.min_history", rh.min_history.to_string());
        put("record_high.margin", rh.margin.to_string());
        put("record_high.min_value", rh.min_value.to_string());
        put("exceeds_prior_year.min_value", py.min_value.to_string());
        put(
            "exceeds_prior_year.min_year_share",
            py.min_year_share.to_string(),
        );
        put(
            "exceeds_prior_year.recent_years",
            py.recent_years.to_string(),
        );
        put("year_over_year.min_ratio", yoy.min_ratio.to_string());
        put("year_over_year.min_value", yoy.min_value.to_string());
        put("year_over_year.min_previous", yoy.min_previous.to_string());
        let a = &self.alert;
        put("alert.live_window", a.live_window.to_string());
        put("alert.min_score", a.min_score.to_string());
        put("alert.medium_score", a.medium_score.to_string());
        put("alert.high_score", a.high_score.to_string());
        put("alert.critical_score", a.critical_score.to_string());
        out
    }
}

/// An optional value as [`Value::optional`] reads it back: `default` for `None`.
fn optional<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "default".to_string(), |x| x.to_string())
}

/// One farrington block's values under the names [`set_farrington`] reads.
fn farrington_settings(f: &FarringtonConfig) -> Vec<(&'static str, String)> {
    let power_trans = match f.power_trans {
        PowerTrans::TwoThirds => "2/3",
        PowerTrans::Half => "1/2",
        PowerTrans::None => "none",
    };
    let threshold_method = match f.threshold_method {
        ThresholdMethod::Delta => "delta",
        ThresholdMethod::NbPlugin => "nb_plugin",
        ThresholdMethod::Muan => "muan",
    };
    vec![
        ("b", f.b.to_string()),
        ("w", f.w.to_string()),
        ("alpha", f.alpha.to_string()),
        ("reweight", f.reweight.to_string()),
        ("weights_threshold", f.weights_threshold.to_string()),
        ("trend", f.trend.to_string()),
        ("p_threshold_trend", f.p_threshold_trend.to_string()),
        ("limit54", format!("{},{}", f.limit54.0, f.limit54.1)),
        ("power_trans", power_trans.to_string()),
        ("no_periods", f.no_periods.to_string()),
        (
            "past_periods_not_included",
            optional(f.past_periods_not_included),
        ),
        ("threshold_method", threshold_method.to_string()),
    ]
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
