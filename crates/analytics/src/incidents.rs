//! Keeping incidents: each series' runs of consecutive alarming periods in `bw_incidents`,
//! advanced once per release by the part that finishes it (`service::process`), with the
//! pure rules of [`crate::alert`].

use std::collections::{BTreeMap, BTreeSet};

use borderwatch_bus::{BusError, Transport, names};
use borderwatch_model::{
    Direction, Incident, IncidentUpdate, Period, SeriesIncidents, SeriesKey, SurgeEvent,
    category_phrase, counted_subject, thousands,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::alert::{self, Alarm, Verdicts};

/// How many incidents a series keeps (the oldest go first): the API lists recent episodes,
/// and the record of one series stays small.
const KEPT_PER_SERIES: usize = 50;

/// A series whose incidents a release may change, with the periods the release evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentWork {
    pub key: SeriesKey,
    pub evaluated: Vec<Period>,
    /// The figures of the evaluated periods, in the same order (for closing notices).
    #[serde(default)]
    pub values: Vec<u64>,
    /// Evaluated periods a detector flagged as rises (`held`) or falls (`held_falls`) whose
    /// score stayed under the gate: outside the band, they keep an open incident open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Period>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_falls: Vec<Period>,
    /// Recorded only as a candidate of the release-wide false-discovery control: no
    /// evidence surge and no open incident when its part ran. Unless the control makes one
    /// of its periods a surge, the release changes nothing of its incidents and `apply`
    /// is not given it (records from before the field read `false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub candidate_only: bool,
}

/// Series whose incident records [`apply`] reads and writes at once: a release can touch
/// thousands, and one after another, two round trips each, took seconds.
const SERIES_IN_FLIGHT: usize = 32;

/// Whether `key` has an open incident.
pub(crate) async fn has_open(bus: &dyn Transport, key: &SeriesKey) -> Result<bool, BusError> {
    Ok(read(bus, key)
        .await?
        .incidents
        .last()
        .is_some_and(|i| i.is_open()))
}

async fn read(bus: &dyn Transport, key: &SeriesKey) -> Result<SeriesIncidents, BusError> {
    let kv_key = names::series_key(&key.source, key.country.code(), &key.category);
    Ok(bus
        .kv_get(names::INCIDENTS_BUCKET, &kv_key)
        .await?
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default())
}

/// Advances the incidents of every series in `work` over its evaluated periods and gives
/// each event of `events` its incident and what it did to it.
///
/// Returns the closing notices of the incidents that subscribers were told of and that this
/// release closed.
///
/// Safe to repeat: a series' record says through which period it is advanced, and periods
/// up to there are not applied again; their events are matched to the incidents that hold
/// them (a closing notice found again has the same id, and is announced once).
pub(crate) async fn apply(
    bus: &dyn Transport,
    work: &[IncidentWork],
    events: &mut [SurgeEvent],
    fingerprint: &str,
    release_id: &str,
    detected_at: &str,
) -> Result<Vec<SurgeEvent>, BusError> {
    let mut values: BTreeMap<(SeriesKey, Period), u64> = BTreeMap::new();
    let mut held: BTreeMap<(SeriesKey, Direction), Vec<Period>> = BTreeMap::new();
    for w in work {
        for (p, v) in w.evaluated.iter().zip(&w.values) {
            values.insert((w.key.clone(), *p), *v);
        }
        for (direction, periods) in [(Direction::Rise, &w.held), (Direction::Fall, &w.held_falls)] {
            held.entry((w.key.clone(), direction))
                .or_default()
                .extend(periods);
        }
    }
    let mut by_series: BTreeMap<SeriesKey, BTreeSet<Period>> = BTreeMap::new();
    for w in work {
        by_series
            .entry(w.key.clone())
            .or_default()
            .extend(w.evaluated.iter().copied());
    }
    for e in events.iter() {
        by_series.entry(e.series()).or_default().insert(e.period);
    }
    // Each event's index, by series.
    let mut events_of: BTreeMap<SeriesKey, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        events_of.entry(e.series()).or_default().push(i);
    }
    let shared: &[SurgeEvent] = events;
    let context = Context {
        values: &values,
        held: &held,
        fingerprint,
        release_id,
        detected_at,
    };
    // Series by series (each its own record), SERIES_IN_FLIGHT at once, in series order.
    let advanced: Vec<Result<Advanced, BusError>> = futures::stream::iter(by_series)
        .map(|(key, evaluated)| {
            let mine: Vec<&SurgeEvent> = events_of
                .get(&key)
                .map(|ix| ix.iter().map(|&i| &shared[i]).collect())
                .unwrap_or_default();
            advance_series(bus, key, evaluated, mine, &context)
        })
        .buffered(SERIES_IN_FLIGHT)
        .collect()
        .await;
    let mut closings = Vec::new();
    for advanced in advanced {
        let advanced = advanced?;
        closings.extend(advanced.closings);
        for &i in events_of.get(&advanced.key).map_or(&[][..], Vec::as_slice) {
            let e = &mut events[i];
            let held = advanced.incidents.iter().find_map(|inc| {
                let s = inc.surges.iter().find(|s| s.id == e.id)?;
                Some((inc.id.clone(), s.update))
            });
            if let Some((id, update)) = held {
                e.incident_id = Some(id);
                e.incident_update = update;
            }
        }
    }
    Ok(closings)
}

/// What [`advance_series`] needs of the whole release besides the series itself.
struct Context<'a> {
    values: &'a BTreeMap<(SeriesKey, Period), u64>,
    held: &'a BTreeMap<(SeriesKey, Direction), Vec<Period>>,
    fingerprint: &'a str,
    release_id: &'a str,
    detected_at: &'a str,
}

/// One series advanced by [`advance_series`]: its incidents as stored, and the closing
/// notices of the incidents subscribers were told of that the release closed.
struct Advanced {
    key: SeriesKey,
    incidents: Vec<Incident>,
    closings: Vec<SurgeEvent>,
}

/// Reads one series' incidents, advances them over the release's fresh periods (those
/// after the record's `through`) with the series' events `mine`, and stores the record.
async fn advance_series(
    bus: &dyn Transport,
    key: SeriesKey,
    evaluated: BTreeSet<Period>,
    mut mine: Vec<&SurgeEvent>,
    cx: &Context<'_>,
) -> Result<Advanced, BusError> {
    let mut state = read(bus, &key).await?;
    let fresh: Vec<Period> = evaluated
        .into_iter()
        .filter(|p| state.through.is_none_or(|t| *p > t))
        .collect();
    mine.sort_by_key(|e| e.period);
    let mut closings = Vec::new();
    if let Some(&last) = fresh.last() {
        let mut closed = Vec::new();
        for direction in [Direction::Rise, Direction::Fall] {
            let alarms: Vec<Alarm> = mine
                .iter()
                .filter(|e| e.direction == direction && fresh.contains(&e.period))
                .map(|e| Alarm {
                    period: e.period,
                    value: e.value,
                    surge_id: e.id.clone(),
                    severity: e.severity,
                    score: e.score,
                    live: !e.historical,
                })
                .collect();
            let quiet = cx
                .held
                .get(&(key.clone(), direction))
                .map_or(&[][..], Vec::as_slice);
            let verdicts = Verdicts {
                direction,
                evaluated: &fresh,
                alarms: &alarms,
                held: quiet,
            };
            let advanced = alert::advance(&mut state.incidents, &key, verdicts, cx.fingerprint);
            closed.extend(advanced.closed);
        }
        for closed in closed.iter().filter(|i| i.announced) {
            let Some(period) = closed.closed else {
                continue;
            };
            let value = cx.values.get(&(key.clone(), period)).copied().unwrap_or(0);
            closings.push(closing(
                closed,
                period,
                value,
                cx.release_id,
                cx.detected_at,
            ));
        }
        state.through = Some(last);
        let excess = state.incidents.len().saturating_sub(KEPT_PER_SERIES);
        state.incidents.drain(..excess);
        let kv_key = names::series_key(&key.source, key.country.code(), &key.category);
        bus.kv_put(
            names::INCIDENTS_BUCKET,
            &kv_key,
            serde_json::to_vec(&state).unwrap_or_default().into(),
        )
        .await?;
    }
    Ok(Advanced {
        key,
        incidents: state.incidents,
        closings,
    })
}

/// The closing notice of `incident`, closed at `period` with figure `value`: an event on the
/// surge stream with `incident_update: closed`, id `rs-` and the incident's, so it is
/// announced once. Not a surge: the gateway does not list it.
fn closing(
    incident: &Incident,
    period: Period,
    value: u64,
    release_id: &str,
    detected_at: &str,
) -> SurgeEvent {
    let key = SeriesKey::new(&incident.source, incident.country, &incident.category);
    let mut subject = counted_subject(&key.source, &key.country, value);
    let phrase = category_phrase(&key.category);
    if !phrase.is_empty() {
        subject.push(' ');
        subject.push_str(&phrase);
    }
    SurgeEvent {
        id: format!("rs-{}", incident.id.trim_start_matches("in-")),
        source: key.source.clone(),
        country: key.country,
        category: key.category.clone(),
        period,
        value,
        severity: incident.peak_severity,
        explanation: match incident.direction {
            Direction::Rise => format!(
                "{subject} in {period}: back inside the expected range; the surge that began in \
                 {} (peak {}) is over",
                incident.opened,
                thousands(incident.peak_value)
            ),
            Direction::Fall => format!(
                "{subject} in {period}: back inside the expected range; the fall that began in \
                 {} (lowest {}) is over",
                incident.opened,
                thousands(incident.peak_value)
            ),
        },
        findings: Vec::new(),
        release_id: release_id.to_string(),
        detected_at: detected_at.to_string(),
        score: 0.0,
        direction: incident.direction,
        historical: false,
        incident_id: Some(incident.id.clone()),
        incident_update: IncidentUpdate::Closed,
        story: None,
        url: None,
    }
}
