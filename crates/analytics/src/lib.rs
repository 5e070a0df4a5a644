//! Analytics: turns observations into per-series aggregates and tests each period against the
//! series' own history.
//!
//! The core here is pure (data in, surge events out); the adapter that connects it to the bus
//! lives beside it. polars is used inside `aggregate` only and never appears in the API.

mod aggregate;
mod detect;
mod error;
mod explain;
pub mod surveillance;
#[cfg(test)]
mod testutil;

pub use aggregate::{SeriesFrame, aggregate};
pub use detect::{
    DETECTORS, DetectorConfig, PriorYearConfig, RecordHighConfig, YearOverYearConfig,
    exceeds_prior_year, record_high, year_over_year,
};
pub use error::AnalyticsError;
pub use explain::{evaluate, explanation, severity};
pub mod service;
