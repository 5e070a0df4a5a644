//! The body schemas several resources share (the error body, the surge event, names), as
//! schema-only mirrors of `borderwatch-model`'s JSON, so that the model crate stays free of
//! API concerns. Each resource's own bodies sit in its module; `openapi.rs` checks the
//! mirrors against real model values.

use serde_json::Value;
use utoipa::ToSchema;

/// Every 4xx/5xx answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorDetail {
    /// A stable code: `bad_request`, `unauthorized`, `not_found`, `rate_limited`, …
    code: String,
    /// What was wrong, for people.
    message: String,
    /// For a file: its rejected rows (`RejectedRow`).
    details: Vec<Value>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// Which way a finding goes: `rise` (a surge) or `fall` (a significant drop).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum Direction {
    Rise,
    Fall,
}

/// The earlier figure a finding compares with.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Baseline {
    period: String,
    value: f64,
}

/// What one detector found.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Finding {
    detector: String,
    expected: Option<f64>,
    upper_bound: Option<f64>,
    p_value: Option<f64>,
    message: String,
    #[schema(required = false)]
    baseline: Option<Baseline>,
}

/// A surge: one period of one series that at least one detector flagged.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct SurgeEvent {
    /// Stable: the same series, period and detector configuration give the same id.
    id: String,
    source: String,
    /// ISO 3166-1 alpha-3.
    country: String,
    category: String,
    /// `2024`, `2024-Q3` or `2024-07`.
    period: String,
    value: u64,
    severity: Severity,
    explanation: String,
    findings: Vec<Finding>,
    release_id: String,
    detected_at: String,
    /// How newsworthy, 0–100 (size of the jump, absolute size, rarity, agreement of the
    /// detectors): ranks surges; severity follows from it.
    score: f64,
    /// `rise` for a surge, `fall` for a significant drop.
    direction: Direction,
    /// True when the period was not at the live edge of its series in the release that
    /// brought it (history, a backfill, a late addition).
    historical: bool,
    /// The incident (run of consecutive alarming periods of the series) it belongs to.
    incident_id: Option<String>,
    /// What the surge did to its incident: `opened` and `escalated` are news, `continued`
    /// is not announced again.
    incident_update: IncidentUpdate,
    /// The story of its release it belongs to (surges that share a cause, told once).
    #[schema(required = false)]
    story: Option<StoryRef>,
    /// The evidence: the dashboard page of its series with this surge marked on the chart
    /// (`<public URL>/series/{source}/{country}/{category}?surge={id}#chart`). Present when
    /// the gateway knows its public URL (`--public-url`; `up` defaults to its own address).
    #[schema(required = false)]
    url: Option<String>,
}

/// Surges of one release that share a cause.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct StoryRef {
    /// `st-…`: stable for the release, kind and key.
    id: String,
    kind: StoryKind,
    /// A headline for the group.
    title: String,
    /// How many surges of the release it holds.
    members: usize,
}

/// `category`: many countries rising on one category; `country`: one country across
/// categories; `source`: much of a source at once (more often a change of method).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum StoryKind {
    Category,
    Country,
    Source,
}

/// What one surge did to its incident.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum IncidentUpdate {
    Opened,
    Continued,
    Escalated,
    Closed,
}

/// A name: lowercase letters, digits, `-` and `_`.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[a-z0-9_-]{1,64}$")]
#[allow(dead_code)]
pub(crate) struct Token(String);
