//! The one error type of the analytics crate.
//!
//! polars errors are carried as text so that no polars type leaks into the public API.

/// What can go wrong in analytics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsError {
    /// The dataframe engine refused or failed a step of the aggregation.
    #[error("aggregation failed: {0}")]
    Aggregation(String),
    /// A detector list named a detector that does not exist.
    #[error("`{name}` is not a detector: use {known}")]
    UnknownDetector { name: String, known: String },
    /// A `--set` key that names no setting.
    #[error("`{key}` is not a setting: use {known}")]
    UnknownSetting { key: String, known: String },
    /// A setting given a value it cannot take.
    #[error("setting `{key}`: `{value}` is not {expected}")]
    BadSetting {
        key: String,
        value: String,
        expected: String,
    },
    /// A configuration whose values do not fit together or lie out of range.
    #[error("invalid analysis configuration: {0}")]
    InvalidConfig(String),
}

impl AnalyticsError {
    pub(crate) fn polars(e: polars::error::PolarsError) -> AnalyticsError {
        AnalyticsError::Aggregation(e.to_string())
    }
}
