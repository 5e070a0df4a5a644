//! Analytics: turns observations into per-series aggregates and tests each period against the
//! series' own history.
//!
//! The core here is pure (data in, surge events out); the adapter that connects it to the bus
//! lives beside it. polars is used inside `aggregate` only and never appears in the API.

mod aggregate;
pub mod alert;
mod analysis;
mod detect;
mod error;
mod explain;
mod incidents;
pub mod story;
pub mod surveillance;
mod telemetry;
#[cfg(test)]
mod testutil;

pub use aggregate::{SeriesFrame, aggregate};
pub use analysis::{
    AnalysisConfig, Assessment, CusumSettings, Detector, EarsSettings, Evaluation, FallSettings,
    FarringtonByFreq, SeriesAssessment, assess, assess_frames, bands, bh_adjust, decide,
    ears_p_value, evaluate_all, evaluate_frames, fall_event, fall_survivors, fdr_survivors,
    surge_event, tested, tested_falls,
};
pub use detect::{
    DETECTORS, DetectorConfig, PriorYearConfig, RecordHighConfig, YearOverYearConfig,
    exceeds_prior_year, record_high, year_over_year,
};
pub use error::AnalyticsError;
pub use explain::explanation;
pub use incidents::IncidentWork;
pub mod service;
