//! Incidents: consecutive alarming periods of one series, announced once (Alertmanager's
//! firing/resolved grouping, for statistics that arrive a release at a time).

use serde::{Deserialize, Serialize};

use crate::{Country, Direction, Period, Severity};

/// One episode of a series: opened by its first alarming period, continued by the next
/// consecutive ones, closed by the first period back inside the band. Kept by analytics in
/// `bw_incidents` (key `<source>.<country>.<category>`, the series' incidents oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `in-` and 20 hex digits of series, first period and detector configuration: stable.
    pub id: String,
    pub source: String,
    pub country: Country,
    pub category: String,
    /// The first alarming period.
    pub opened: Period,
    /// The latest alarming period so far.
    pub last: Period,
    pub last_value: u64,
    /// The most extreme figure of its alarming periods: the highest of a surge, the lowest
    /// (the trough) of a fall.
    pub peak_value: u64,
    /// The first period back inside the band; `None` while the incident is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Period>,
    pub peak_severity: Severity,
    pub peak_score: f64,
    /// Its surges, oldest period first.
    pub surges: Vec<IncidentSurge>,
    /// Whether any of its periods was at the live edge of a release (else it is history).
    pub live: bool,
    /// Whether subscribers were told of it one by one (it reached the live edge).
    pub announced: bool,
    /// A run of surges (`rise`) or of falls (`fall`). `rise` in records from before.
    #[serde(default)]
    pub direction: Direction,
}

/// One period of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSurge {
    /// The surge event's id.
    pub id: String,
    pub period: Period,
    pub value: u64,
    pub severity: Severity,
    pub score: f64,
    /// What this surge did to the incident.
    pub update: IncidentUpdate,
    /// Whether it was at the live edge of its release.
    pub live: bool,
}

/// Everything `bw_incidents` keeps for one series.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SeriesIncidents {
    /// The latest period whose verdict the incidents include: a release analysed again
    /// changes nothing up to here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<Period>,
    /// Oldest first; the open one, if any, is last.
    pub incidents: Vec<Incident>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }
}

/// What one surge did to its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IncidentUpdate {
    /// The first period of the incident subscribers hear of: it is announced.
    #[default]
    Opened,
    /// Another period of an incident already announced, no louder: recorded, not announced.
    Continued,
    /// A period louder than every earlier one of its incident: announced again.
    Escalated,
    /// Not a surge: the closing notice of an incident subscribers were told of, sent on the
    /// first period back inside the band to subscriptions that ask for it (`resolved`).
    Closed,
}

impl IncidentUpdate {
    /// Whether a surge with this update is sent to subscribers one by one.
    pub fn is_news(self) -> bool {
        matches!(self, IncidentUpdate::Opened | IncidentUpdate::Escalated)
    }
}
