//! Shared types of borderwatch: observations, releases, surge events and subscriptions.
//!
//! No I/O lives here. Every service speaks these types on the bus and over HTTP, so a
//! field renamed here is a wire change: add fields, never rename them.

mod country;
mod delivery;
mod format;
mod incident;
mod kinds;
mod matcher;
mod period;
mod sign;
mod stored_view;
mod story;
mod target;
mod vocabulary;

pub use country::{Country, CountryError};
pub use delivery::{DeliveryAttempt, DeliveryRecord, Outcome};
pub use format::{category_phrase, counted_subject, counted_what, thousands, unit_noun};
pub use incident::{Incident, IncidentSurge, IncidentUpdate, SeriesIncidents};
pub use kinds::{EventKind, MissingEvent, RevisionEvent, default_kinds};
pub use matcher::{
    Labels, MAX_MATCHER_VALUE, MAX_MATCHERS, MatchOp, Matcher, MatcherName, Matchers,
    REGEX_SIZE_LIMIT, SilenceMatchers,
};
pub use period::{Freq, Period, PeriodError};
pub use sign::{
    EVENT_ID_HEADER, SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER, sign_body, sign_standard, verify_signature, verify_standard,
};
pub use story::{StoryKind, StoryRef};
pub use target::{WebhookHost, mask_webhook_url, refused_address, refused_name, webhook_host};
pub use vocabulary::{CountedBy, SourceVocabulary, UNKNOWN_SOURCE, vocabulary};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The category that sums all others of a series family.
pub const TOTAL_CATEGORY: &str = "total";

/// One figure: how many crossings of `country`'s citizens a `source` counted for `category`
/// in `period`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub source: String,
    pub country: Country,
    pub category: String,
    pub period: Period,
    pub count: u64,
    /// The release this figure came from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_id: String,
}

impl Observation {
    pub fn series(&self) -> SeriesKey {
        SeriesKey {
            source: self.source.clone(),
            country: self.country,
            category: self.category.clone(),
        }
    }
}

/// A series: every period of one source, country and category.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub source: String,
    pub country: Country,
    pub category: String,
}

impl SeriesKey {
    pub fn new(source: &str, country: Country, category: &str) -> SeriesKey {
        SeriesKey {
            source: source.to_string(),
            country,
            category: category.to_string(),
        }
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.source, self.country, self.category)
    }
}

/// Source and category names are tokens: lowercase ASCII letters, digits, `-` and `_`, so
/// that they can be NATS subject tokens and URL path segments.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Turns a free-text label into a token (`"Study "` → `study`, `"Transport crew"` →
/// `transport_crew`), or `None` if nothing usable is left or the label has a character other
/// than ASCII letters, digits, spaces, `-` and `_` (dropping it would merge `e1.x` with
/// `e1x`).
pub fn tokenize(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if c.is_whitespace() || c == '-' || c == '_' {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else {
            // Other characters are not dropped: `e1.x` and `e1x` would become one series.
            return None;
        }
    }
    let out = out.trim_matches('_').to_string();
    is_token(&out).then_some(out)
}

/// A rejected input row: where it was and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// 1-based line of the file (the header is line 1 in CSV).
    pub row: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// What one ingested file or upload produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// `rel-` and the first 16 hex digits of the content hash and source.
    pub id: String,
    pub source: String,
    pub format: String,
    /// SHA-256 of the exact bytes, hex.
    pub content_sha256: String,
    pub bytes: u64,
    pub accepted: u64,
    pub rejected: Vec<RejectedRow>,
    /// How many rows were rejected: `rejected.len()` in an answer; the stored record keeps
    /// only the first rows of a long list (the kept bytes hold them all).
    #[serde(default)]
    pub rejected_total: u64,
    /// Observations that were new or changed (0 when the same figures arrived before).
    pub new_observations: u64,
    pub first_period: Option<Period>,
    pub last_period: Option<Period>,
    /// True when these exact bytes were ingested before: nothing was published again.
    pub duplicate: bool,
    /// The keys under which analytics records each part of this release in `bw_analyzed`
    /// (`<release id>.<source>.<part>`), one per release marker published.
    #[serde(default)]
    pub analyses: Vec<String>,
    pub received_at: String,
    /// `received_at` in Unix milliseconds: orders releases received within one second.
    #[serde(default)]
    pub received_at_ms: u64,
    /// Where the exact bytes are kept, for audit and `borderwatch replay`: stored before
    /// anything of the release was published. `None` only in records from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<StoredObject>,
    /// The source named with the upload (`?source=`), for rows without one; replay uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_source: Option<String>,
    /// Figures of periods already known that this release changed (each announced as a
    /// [`Revision`]).
    #[serde(default)]
    pub revisions: u64,
    /// Categories that earlier releases published for these countries and this release
    /// left out (each announced as a [`MissingCategory`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingCategory>,
}

/// An object in a bus object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    pub store: String,
    pub name: String,
}

/// A figure for a period already known that a later release changed, published on
/// `bw.revision.<source>.<country>.<category>`. The new figure is stored as a new version;
/// analytics uses the latest, and a revision is never a surge by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub source: String,
    pub country: Country,
    pub category: String,
    pub period: Period,
    pub old_count: u64,
    pub new_count: u64,
    /// The release the old figure came from (empty if unknown).
    pub old_release_id: String,
    pub release_id: String,
}

/// A category that a source published for a country up to `last_period` and that a
/// release covering later periods of that country left out, published on
/// `bw.missing.<source>.<category>`. Not a fall to zero: nothing is stored for the periods
/// it does not cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingCategory {
    pub source: String,
    pub category: String,
    pub countries: Vec<Country>,
    /// The last period the category was published for, for these countries.
    pub last_period: Period,
    /// The periods of those countries the release covers.
    pub release_first_period: Period,
    pub release_last_period: Period,
    pub release_id: String,
}

/// The release marker published on `bw.release.<source>` after all its observations. A big
/// release is cut into parts of a bounded size, each its own unit of analytics work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseMarker {
    pub release_id: String,
    pub source: String,
    /// 0-based part of this source's changes.
    #[serde(default)]
    pub part: u32,
    /// How many parts this source's changes were cut into: the part that finds all of them
    /// analysed runs the release-wide false-discovery control. 1 for markers from before.
    #[serde(default = "one_part")]
    pub parts: u32,
    /// Every series the release carried a new or changed figure for, with those periods
    /// (new and revised apart).
    pub changes: Vec<SeriesChange>,
    /// `BW_OBS`'s last sequence once the release's figures were stored: what the release
    /// saw. Analytics reads each series as of this sequence, so a part analysed late (after
    /// later releases landed, or redone by another replica) gives the same result as one
    /// analysed at once. `None` in markers from before it existed (read as the latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obs_seq: Option<u64>,
}

fn one_part() -> u32 {
    1
}

/// The periods of one series that a release added or revised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesChange {
    pub country: Country,
    pub category: String,
    /// Periods new to the series: the ones analytics tests for surges. (In markers from
    /// before revisions were told apart, every changed period.)
    pub periods: Vec<Period>,
    /// Periods the series had, with a changed figure: analytics uses the new figures but
    /// announces no surge for these periods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revised: Vec<Period>,
}

/// What analytics recorded when it finished a release (bucket `bw_analyzed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzedRelease {
    pub release_id: String,
    pub source: String,
    pub part: u32,
    pub series: u64,
    pub periods_evaluated: u64,
    /// Every surge found in the release, announced now or earlier.
    pub surges: Vec<SurgeEvent>,
    pub finished_at: String,
}

/// How loud a surge is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Low,
    Medium,
    High,
    Critical,
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "`{s}` is not a severity: use low, medium, high or critical"
            )),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// Which way a finding goes: a surge (`rise`) or a significant drop (`fall`: a border
/// closing, a route shutting). Falls are detected like surges, scored and calibrated the
/// same way, and sent only to subscriptions that ask for them (`falls: true`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Rise,
    Fall,
}

impl Direction {
    pub fn is_rise(self) -> bool {
        self == Direction::Rise
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Rise => "rise",
            Direction::Fall => "fall",
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rise" => Ok(Direction::Rise),
            "fall" => Ok(Direction::Fall),
            _ => Err(format!("`{s}` is not a direction: use rise or fall")),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The earlier figure a finding compares with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub period: Period,
    pub value: f64,
}

/// What one detector found for one period of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub detector: String,
    pub expected: Option<f64>,
    pub upper_bound: Option<f64>,
    pub p_value: Option<f64>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

/// A surge: one period of one series that at least one detector flagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurgeEvent {
    pub id: String,
    pub source: String,
    pub country: Country,
    pub category: String,
    pub period: Period,
    pub value: u64,
    pub severity: Severity,
    pub explanation: String,
    pub findings: Vec<Finding>,
    pub release_id: String,
    pub detected_at: String,
    /// How newsworthy, 0–100 (size of the jump, absolute size, rarity, agreement of the
    /// detectors): ranks surges; severity follows from it. 0 in events from before.
    #[serde(default)]
    pub score: f64,
    /// `rise` for a surge, `fall` for a significant drop. `rise` in events from before.
    #[serde(default)]
    pub direction: Direction,
    /// True when the period was not at the live edge of its series in the release that
    /// brought it (a first load's history, a backfill, a late addition): stored and shown,
    /// told to subscribers in a summary rather than one by one.
    #[serde(default)]
    pub historical: bool,
    /// The incident (run of consecutive alarming periods of the series) this surge belongs
    /// to. `None` in events from before incidents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// What this surge did to its incident: `opened` and `escalated` are news, `continued`
    /// is not announced again.
    #[serde(default)]
    pub incident_update: IncidentUpdate,
    /// The story of the release this surge belongs to (surges that share a cause, told
    /// once), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<StoryRef>,
    /// The evidence: the dashboard page of the series with this surge marked on its chart.
    /// Not on the stream (analytics does not know where the dashboard is): notify fills it
    /// when it sends and the gateway when it serves, both from the public base URL
    /// (`--public-url`), with [`SurgeEvent::evidence_url`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl SurgeEvent {
    pub fn series(&self) -> SeriesKey {
        SeriesKey::new(&self.source, self.country, &self.category)
    }

    /// The dashboard page showing this surge under the public base URL `base` (which may
    /// have a path: `https://example.org/borderwatch/`): `<base>/series/<source>/<country>/
    /// <category>?surge=<id>#chart`, each part percent-encoded. An incident's closing notice
    /// is no surge of the page, so it links the series alone. `None` when `base` is not an
    /// absolute http(s) URL.
    pub fn evidence_url(&self, base: &str) -> Option<String> {
        let mut url = url::Url::parse(base.trim()).ok()?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return None;
        }
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut().ok()?.pop_if_empty().extend([
            "series",
            self.source.as_str(),
            self.country.code(),
            self.category.as_str(),
        ]);
        if self.incident_update != IncidentUpdate::Closed {
            url.query_pairs_mut().append_pair("surge", &self.id);
        }
        url.set_fragment(Some("chart"));
        Some(url.into())
    }

    /// Sets `url` from the public base URL, when there is one (see
    /// [`SurgeEvent::evidence_url`]); without one, `url` is left as it is.
    pub fn link_evidence(&mut self, base: Option<&str>) {
        if let Some(url) = base.and_then(|b| self.evidence_url(b)) {
            self.url = Some(url);
        }
    }
}

/// Checks a public base URL (`--public-url`) before a service starts with it: links to the
/// evidence are built under it, so it must be an absolute http(s) URL.
pub fn check_public_url(base: &str) -> Result<(), String> {
    match url::Url::parse(base.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err(format!(
            "public URL `{base}` is not an absolute http(s) URL such as \
             https://borderwatch.example.org (--public-url, BORDERWATCH_PUBLIC_URL)"
        )),
    }
}

/// The stable id of a surge: the same series, period and detector configuration always give
/// the same id, so a surge found twice (a re-ingested file, a redelivered release) is
/// announced once.
pub fn surge_id(series: &SeriesKey, period: Period, detector_config: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        series.source.as_str(),
        series.country.code(),
        series.category.as_str(),
        &period.to_string(),
        detector_config,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("sg-{}", &hex::encode(h.finalize())[..20])
}

/// One period's figure in a series view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub period: Period,
    pub count: u64,
}

/// A calendar year's total of a series: reported as a year, or summed from its quarters or
/// months (`complete` is false while some are missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YearTotal {
    pub year: i32,
    pub total: u64,
    pub complete: bool,
}

/// The same period a year earlier, as a ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YearOverYear {
    pub period: Period,
    pub value: u64,
    pub previous: u64,
    /// `value / previous`; absent when the earlier figure is zero.
    pub ratio: Option<f64>,
}

/// What analytics keeps per series for the gateway: the figures, their aggregates and the
/// surges found in them (bucket `bw_series`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesView {
    pub source: String,
    pub country: Country,
    pub category: String,
    pub freq: Freq,
    pub observations: Vec<Point>,
    pub yearly: Vec<YearTotal>,
    pub year_over_year: Vec<YearOverYear>,
    /// Ids of the surges found in this series, oldest period first.
    pub surges: Vec<String>,
    pub updated_at: String,
    pub release_id: String,
    /// Per evaluated period, what the main statistical detector expected and the threshold
    /// it tested the figure against (the dashboard's chart draws them as a band), oldest
    /// first. Empty for yearly series and views stored before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bands: Vec<Band>,
}

/// One period's expected value and upper bound from one statistical detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub period: Period,
    pub detector: String,
    pub expected: f64,
    pub upper_bound: f64,
}

/// SHA-256 of bytes as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Which events a subscription wants. An empty list matches everything.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SubscriptionFilter {
    #[serde(default)]
    pub countries: Vec<Country>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub min_severity: Severity,
    /// Matches when any finding's detector is listed.
    #[serde(default)]
    pub detectors: Vec<String>,
}

impl SubscriptionFilter {
    pub fn matches(&self, e: &SurgeEvent) -> bool {
        (self.countries.is_empty() || self.countries.contains(&e.country))
            && (self.categories.is_empty() || self.categories.contains(&e.category))
            && (self.sources.is_empty() || self.sources.contains(&e.source))
            && e.severity >= self.min_severity
            && (self.detectors.is_empty()
                || e.findings
                    .iter()
                    .any(|f| self.detectors.contains(&f.detector)))
    }
}

/// The body a webhook receives: the surge event JSON, a Slack or Microsoft Teams
/// incoming-webhook message, or an Alertmanager webhook notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    #[default]
    Json,
    Slack,
    Teams,
    /// The body Alertmanager's webhook receivers take (`version` "4", `alerts[]`…), so
    /// a receiver written for Alertmanager takes borderwatch's alerts as they are.
    Alertmanager,
    /// An email (plain text and HTML) over the operator's SMTP server (`--smtp-url`) to the
    /// addresses of the target, `mailto:desk@example.org[,other@example.org]`.
    Email,
}

/// One message per (subscription, release) instead of one per surge, sent
/// `group_wait_secs` after the release's first matching surge arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSpec {
    pub group_wait_secs: u64,
}

/// Where a subscription's events go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: String,
    /// The HMAC key. Stored, never returned by the API after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub filter: SubscriptionFilter,
    pub webhook: Webhook,
    pub created_at: String,
    #[serde(default)]
    pub format: PayloadFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestSpec>,
    /// How surges that are history (not at their series' live edge) reach it: one summary
    /// per release (the default) or each on its own.
    #[serde(default)]
    pub history: HistoryDelivery,
    /// At most this many live surges of one release, the highest scores first, in one
    /// message; `None`: every one on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_release: Option<u32>,
    /// Also send the closing notice of an incident it was told of, when its series comes
    /// back inside its band (Alertmanager's "resolved").
    #[serde(default)]
    pub resolved: bool,
    /// Also send falls (significant drops: `direction: fall`). Off by default: a subscriber
    /// asks for them.
    #[serde(default)]
    pub falls: bool,
    /// The kinds of event it is sent (surges, revisions, missing categories); `["surge"]`
    /// for subscriptions stored before kinds existed.
    #[serde(default = "default_kinds")]
    pub kinds: Vec<EventKind>,
    /// Alertmanager matchers (`country!="PRK"`, `category=~"study|work"`), every one of
    /// which must match, besides the filter; none: the filter alone decides.
    #[serde(default, skip_serializing_if = "Matchers::is_empty")]
    pub matchers: Matchers,
}

/// How a subscription hears of surges a release brings that are history: a first load, a
/// backfill, a late addition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryDelivery {
    /// One summary per release: how many surges in how many series, the highest-scoring few.
    #[default]
    Summary,
    /// Every historical surge on its own, as if it were news (for an archive of alerts).
    Each,
}

impl Subscription {
    /// Whether this subscription is sent `e`: it takes surges, its filter and matchers
    /// match, and a fall only where it asks for falls.
    pub fn wants(&self, e: &SurgeEvent) -> bool {
        self.filter.matches(e)
            && self.kinds_and_matchers_pass(e)
            && (e.direction.is_rise() || self.falls)
    }

    /// The form the API shows: no secret, and the URL masked to its scheme, host and port
    /// (its userinfo, path and query are often secrets themselves: a Slack hook's path).
    pub fn redacted(&self) -> Subscription {
        let mut s = self.clone();
        s.webhook.secret = None;
        s.webhook.url = mask_webhook_url(&s.webhook.url);
        s
    }
}

/// A stored silence (bucket `bw_silences`): matching events are recorded, not delivered,
/// until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: SilenceMatchers,
    /// RFC 3339, UTC.
    pub until: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub created_at: String,
}

/// The JSON error body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

/// Now, as RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(country: &str, category: &str, severity: Severity) -> SurgeEvent {
        SurgeEvent {
            id: "x".into(),
            source: "fsb".into(),
            country: Country::parse(country).unwrap(),
            category: category.into(),
            period: Period::Quarter(2024, 3),
            value: 1,
            severity,
            explanation: String::new(),
            findings: vec![],
            release_id: String::new(),
            detected_at: String::new(),
            score: 0.0,
            direction: Default::default(),
            historical: false,
            incident_id: None,
            incident_update: Default::default(),
            story: None,
            url: None,
        }
    }

    #[test]
    fn the_evidence_url_is_the_series_page_with_the_surge_marked() {
        let mut e = event("PRK", "study abroad", Severity::High);
        e.id = "sg-1".into();
        let want = "https://bw.example.org/series/fsb/PRK/study%20abroad?surge=sg-1#chart";
        assert_eq!(
            e.evidence_url("https://bw.example.org").as_deref(),
            Some(want)
        );
        assert_eq!(
            e.evidence_url(" https://bw.example.org/ ").as_deref(),
            Some(want)
        );
        // Under a path prefix, and whatever query the base carried is not kept.
        assert_eq!(
            e.evidence_url("http://10.0.0.1:8080/bw/?x=1").as_deref(),
            Some("http://10.0.0.1:8080/bw/series/fsb/PRK/study%20abroad?surge=sg-1#chart")
        );
        assert_eq!(e.evidence_url("not a url"), None);
        assert!(check_public_url("https://bw.example.org/bw/").is_ok());
        assert!(check_public_url("bw.example.org").is_err());
        assert_eq!(e.evidence_url("ftp://example.org"), None);
        // A closing notice is no surge of the page: the series alone.
        e.incident_update = IncidentUpdate::Closed;
        assert_eq!(
            e.evidence_url("https://bw.example.org").as_deref(),
            Some("https://bw.example.org/series/fsb/PRK/study%20abroad#chart")
        );
        // Set only when a base is configured; serialised only when set.
        e.link_evidence(None);
        assert!(serde_json::to_value(&e).unwrap().get("url").is_none());
        e.link_evidence(Some("https://bw.example.org"));
        assert_eq!(
            serde_json::to_value(&e).unwrap()["url"],
            "https://bw.example.org/series/fsb/PRK/study%20abroad#chart"
        );
    }

    #[test]
    fn surge_ids_are_stable_and_distinct() {
        let s = SeriesKey::new("fsb", Country::parse("PRK").unwrap(), "study");
        let a = surge_id(&s, Period::Quarter(2024, 3), "v1");
        assert_eq!(a, surge_id(&s, Period::Quarter(2024, 3), "v1"));
        assert_ne!(a, surge_id(&s, Period::Quarter(2024, 4), "v1"));
        assert_ne!(a, surge_id(&s, Period::Quarter(2024, 3), "v2"));
    }

    #[test]
    fn empty_filter_matches_everything_and_lists_narrow_it() {
        let e = event("PRK", "study", Severity::High);
        assert!(SubscriptionFilter::default().matches(&e));
        let f = SubscriptionFilter {
            countries: vec![Country::parse("PRK").unwrap()],
            categories: vec!["study".into()],
            ..Default::default()
        };
        assert!(f.matches(&e));
        assert!(!f.matches(&event("CHN", "study", Severity::High)));
        assert!(!f.matches(&event("PRK", "work", Severity::High)));
        let severe = SubscriptionFilter {
            min_severity: Severity::Critical,
            ..Default::default()
        };
        assert!(!severe.matches(&e));
    }

    #[test]
    fn detector_filter_matches_when_any_finding_is_listed() {
        let mut e = event("PRK", "study", Severity::High);
        let finding = |d: &str| Finding {
            detector: d.into(),
            expected: None,
            upper_bound: None,
            p_value: None,
            message: String::new(),
            baseline: None,
        };
        e.findings = vec![finding("record_high"), finding("year_over_year")];
        let f = |ds: &[&str]| SubscriptionFilter {
            detectors: ds.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        assert!(f(&[]).matches(&e));
        assert!(f(&["year_over_year"]).matches(&e));
        assert!(f(&["exceeds_prior_year", "record_high"]).matches(&e));
        assert!(!f(&["exceeds_prior_year"]).matches(&e));
    }

    #[test]
    fn old_subscriptions_read_with_json_format_and_no_digest() {
        let s: Subscription = serde_json::from_str(
            r#"{"id":"sub-1","filter":{},"webhook":{"url":"http://x/"},"created_at":"t"}"#,
        )
        .unwrap();
        assert_eq!(s.format, PayloadFormat::Json);
        assert_eq!(s.digest, None);
        assert!(s.filter.detectors.is_empty());
    }

    #[test]
    fn tokenizes_labels() {
        assert_eq!(tokenize(" Study ").as_deref(), Some("study"));
        assert_eq!(
            tokenize("Transport crew").as_deref(),
            Some("transport_crew")
        );
        assert_eq!(tokenize("учеба"), None);
    }

    #[test]
    fn punctuation_is_refused_not_dropped() {
        // `e1.x` became `e1x`, merging two series; now neither punctuated name is a token.
        for s in ["e1.x", "a/b", "work (paid)", "x,y", "c++"] {
            assert_eq!(tokenize(s), None, "{s}");
        }
        assert_eq!(tokenize("e1x").as_deref(), Some("e1x"));
        assert_eq!(tokenize("e1 - x").as_deref(), Some("e1_x"));
    }
}
