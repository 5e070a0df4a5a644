//! Decision: folds evaluation rows into one [`Assessment`] per (series, period), applies
//! Benjamini–Hochberg across a release ([`bh_adjust`], [`fdr_survivors`]) and turns what
//! survives into surge events with their severity and explanation ([`surge_event`], [`decide`]).

use borderwatch_model::{Direction, Finding, Period, SeriesKey, SurgeEvent, surge_id};
use serde::{Deserialize, Serialize};

use super::config::AnalysisConfig;
use super::evaluate::Evaluation;
use crate::aggregate::SeriesFrame;
use crate::alert::{AlertConfig, fall_score, recent_level, recent_low, score};
use crate::explain::explanation;

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
    /// The series' recent level before the period ([`recent_level`]), which the score
    /// measures the jump against as well as against expected.
    #[serde(default)]
    pub recent: Option<f64>,
    /// The lowest of the series' last few figures before the period ([`recent_low`]), which
    /// a fall's drop is measured from as well as from expected.
    #[serde(default)]
    pub recent_low: Option<f64>,
    /// The `fall` finding, when the period is below its lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall: Option<Finding>,
    /// The fall test's p-value (its own false-discovery family): the lower-tail p when the
    /// period alarmed, else 1; `None` when it was not tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall_p: Option<f64>,
    /// Whether the period is at the live edge of its series in the release being analysed
    /// (`alert::live_periods`); set by the service, false where nothing is live (a file
    /// analysed alone is all history).
    #[serde(default)]
    pub live: bool,
}

/// Folds the rows of [`evaluate_all`](super::evaluate_all) into one [`Assessment`] per period.
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
                recent: recent_level(&frame.points, e.period),
                recent_low: recent_low(&frame.points, e.period),
                fall: None,
                fall_p: None,
                live: false,
            });
            tested.clear();
        }
        let Some(a) = out.last_mut() else { continue };
        if e.detector.is_fall() {
            a.fall = e.finding.clone();
            a.fall_p = e.p_value.map(|p| if e.alarm { p } else { 1.0 });
        } else if let Some(f) = &e.finding {
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
    survivors(assessments, tested, fdr, |a| a.p_value)
}

/// Benjamini–Hochberg at `fdr` over the p-values `p_of` gives, among `tested` tests.
fn survivors(
    assessments: &[Assessment],
    tested: usize,
    fdr: f64,
    p_of: impl Fn(&Assessment) -> Option<f64>,
) -> Vec<bool> {
    let with_p: Vec<(usize, f64)> = assessments
        .iter()
        .enumerate()
        .filter_map(|(i, a)| p_of(a).map(|p| (i, p)))
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

/// How many assessments were tested for a fall: the size of the falls' BH family.
pub fn tested_falls(assessments: &[Assessment]) -> usize {
    assessments.iter().filter(|a| a.fall_p.is_some()).count()
}

/// [`fdr_survivors`] for falls: Benjamini–Hochberg over the fall p-values, a family of
/// their own, so that testing for falls costs surges nothing.
pub fn fall_survivors(assessments: &[Assessment], tested: usize, fdr: f64) -> Vec<bool> {
    survivors(assessments, tested, fdr, |a| a.fall_p)
}

/// The fall event of one assessment: when its `fall` finding survived the falls' BH
/// (`significant`) and its [`fall_score`] reaches `alert.min_score`. Its id is the surge id
/// of the same period with `;fall` in the configuration, so a period's surge and fall (which
/// cannot both happen) never share one.
pub fn fall_event(
    a: &Assessment,
    significant: bool,
    fingerprint: &str,
    alert: &AlertConfig,
    release_id: &str,
    detected_at: &str,
) -> Option<SurgeEvent> {
    let finding = a.fall.as_ref().filter(|_| significant)?;
    let score = fall_score(a.value, finding, a.recent_low);
    if score < alert.min_score {
        return None;
    }
    let told = std::slice::from_ref(finding);
    Some(SurgeEvent {
        id: surge_id(&a.key, a.period, &format!("{fingerprint};fall")),
        source: a.key.source.clone(),
        country: a.key.country,
        category: a.key.category.clone(),
        period: a.period,
        value: a.value,
        severity: alert.fall_severity(score, finding, a.period),
        explanation: explanation(&a.key, a.period, a.value, told),
        findings: told.to_vec(),
        release_id: release_id.to_string(),
        detected_at: detected_at.to_string(),
        score,
        direction: Direction::Fall,
        historical: !a.live,
        incident_id: None,
        incident_update: Default::default(),
        story: None,
        url: None,
    })
}

/// The surge event of one assessment: when an evidence rule fired, or when `significant`
/// (it survived BH) and a statistical detector alarmed, and its [`score`] reaches
/// `alert.min_score`. Findings: evidence first, then the statistical alarms (corroboration,
/// with their own p-values). Severity comes from the score ([`AlertConfig::severity`]).
pub fn surge_event(
    a: &Assessment,
    significant: bool,
    fingerprint: &str,
    alert: &AlertConfig,
    release_id: &str,
    detected_at: &str,
) -> Option<SurgeEvent> {
    let statistical_surge = significant && a.statistical.iter().any(|f| f.p_value.is_some());
    if a.evidence.is_empty() && !statistical_surge {
        return None;
    }
    let findings: Vec<Finding> = a.evidence.iter().chain(&a.statistical).cloned().collect();
    let score = score(a.value, &findings, a.recent);
    if score < alert.min_score {
        return None;
    }
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
        severity: alert.severity(score, &findings),
        explanation: explanation(&a.key, a.period, a.value, &told),
        findings,
        release_id: release_id.to_string(),
        detected_at: detected_at.to_string(),
        score,
        direction: Default::default(),
        historical: !a.live,
        incident_id: None,
        incident_update: Default::default(),
        story: None,
        url: None,
    })
}

/// From the assessments of a whole release to its surge and fall events: BH at `cfg.fdr`
/// across every assessment with a p-value (and, apart, across every fall p-value), then
/// [`surge_event`] and [`fall_event`] for each, in input order.
pub fn decide(
    assessments: &[Assessment],
    cfg: &AnalysisConfig,
    release_id: &str,
    detected_at: &str,
) -> Vec<SurgeEvent> {
    let survivors = fdr_survivors(assessments, tested(assessments), cfg.fdr);
    let falls = fall_survivors(assessments, tested_falls(assessments), cfg.fdr);
    let fingerprint = cfg.fingerprint();
    assessments
        .iter()
        .zip(survivors.into_iter().zip(falls))
        .flat_map(|(a, (rise, fall))| {
            let surge = surge_event(a, rise, &fingerprint, &cfg.alert, release_id, detected_at);
            let fall = fall_event(a, fall, &fingerprint, &cfg.alert, release_id, detected_at);
            surge.into_iter().chain(fall)
        })
        .collect()
}
