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
//!    [`assess_frames`] does this for many series at once on every core, with each period's
//!    live edge and its chart [`bands`]: only step 3 looks across series.
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

mod assessed;
mod config;
mod decide;
mod evaluate;
mod fall;

pub use assessed::{SeriesAssessment, assess_frames, bands};
pub use config::{
    AnalysisConfig, CusumSettings, Detector, EarsSettings, FallSettings, FarringtonByFreq,
};
pub use decide::{
    Assessment, assess, bh_adjust, decide, fall_event, fall_survivors, fdr_survivors, surge_event,
    tested, tested_falls,
};
pub use evaluate::{Evaluation, ears_p_value, evaluate_all, evaluate_frames};

#[cfg(test)]
mod tests;
