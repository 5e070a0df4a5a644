//! Surges as Alertmanager alerts: the labels that identify one, its fingerprint (computed as
//! Alertmanager computes it), the webhook body Alertmanager's receivers take (format
//! `alertmanager`) and the postable alerts of its API (`--alertmanager-url`). Pure: events
//! in, JSON out.
//!
//! An alert is a series' incident as Alertmanager sees it: its labels are the series and
//! the severity (`alertname` `BorderSurge` or `BorderFall`, `source`, `country`,
//! `category`, `severity`), so an opening and its closing notice (which carries the
//! incident's peak severity) are the same alert, firing then resolved.

use std::collections::BTreeMap;

use borderwatch_model::{Direction, IncidentUpdate, MissingEvent, RevisionEvent, SurgeEvent};
use serde_json::{Value, json};

use crate::notice::Notice;

/// What Alertmanager writes for "no end yet" (Go's zero time).
pub const NO_END: &str = "0001-01-01T00:00:00Z";

/// The receiver name webhook bodies carry.
const RECEIVER: &str = "borderwatch";

/// An alert's labels, sorted by name as Alertmanager keeps them.
pub fn labels(e: &SurgeEvent) -> BTreeMap<&'static str, String> {
    let alertname = match e.direction {
        Direction::Rise => "BorderSurge",
        Direction::Fall => "BorderFall",
    };
    BTreeMap::from([
        ("alertname", alertname.to_string()),
        ("source", e.source.clone()),
        ("country", e.country.code().to_string()),
        ("category", e.category.clone()),
        ("severity", e.severity.to_string()),
    ])
}

/// `summary` (one line) and `description` (the explanation a journalist would print).
pub fn annotations(e: &SurgeEvent) -> BTreeMap<&'static str, String> {
    let kind = match e.direction {
        Direction::Rise => "surge",
        Direction::Fall => "fall",
    };
    let summary = if resolved(e) {
        format!("{kind} over: {} {}", e.series(), e.period)
    } else {
        let severity = e.severity.to_string();
        let mut s = severity[..1].to_uppercase();
        s.push_str(&severity[1..]);
        format!("{s} {kind}: {} {}", e.series(), e.period)
    };
    BTreeMap::from([("summary", summary), ("description", e.explanation.clone())])
}

/// Whether `e` ends its alert: an incident's closing notice.
pub fn resolved(e: &SurgeEvent) -> bool {
    e.incident_update == IncidentUpdate::Closed
}

/// Whether Alertmanager is told of `e`: what opens or escalates an incident at the live
/// edge (what subscribers hear of one by one), and a closing notice (which resolves it).
/// History and continued periods are not alerts: a first load of ten years would fire
/// hundreds, and a continued period may carry a lower severity, which would be another
/// alert.
pub fn pushed(e: &SurgeEvent) -> bool {
    resolved(e) || (!e.historical && e.incident_update.is_news())
}

/// Alertmanager's fingerprint of a label set: FNV-1a (64 bits) over the labels sorted by
/// name, each name and value followed by the byte 0xff, as 16 hex digits
/// (`prometheus/common` `model.LabelSet.Fingerprint`).
pub fn fingerprint(labels: &BTreeMap<&'static str, String>) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    format!("{h:016x}")
}

/// One alert of a webhook body (`template.Alert`).
fn webhook_alert(e: &SurgeEvent) -> Value {
    let labels = labels(e);
    json!({
        "status": if resolved(e) { "resolved" } else { "firing" },
        "labels": labels,
        "annotations": annotations(e),
        "startsAt": e.detected_at,
        "endsAt": if resolved(e) { e.detected_at.as_str() } else { NO_END },
        "generatorURL": e.url.as_deref().unwrap_or_default(),
        "fingerprint": fingerprint(&labels),
    })
}

/// The pairs every map of `maps` holds with the same value.
fn common(maps: &[BTreeMap<&'static str, String>]) -> BTreeMap<&'static str, String> {
    let Some((first, rest)) = maps.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// Alertmanager's group key format: `{}:{name="value", …}`.
fn group_key(labels: &BTreeMap<&'static str, String>) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{}}/{{borderwatch}}:{{{}}}", pairs.join(", "))
}

/// The body an Alertmanager webhook receiver takes (`notify/webhook.Message`, version 4):
/// one alert for a surge or closing notice, one per surge for a digest, story or summary.
/// The group is the series (`alertname`, `source`, `country`, `category`) as far as the
/// alerts share it, so an incident's opening and closing share a `groupKey`.
pub fn webhook(notice: &Notice, public_url: Option<&str>) -> Value {
    let events: Vec<&SurgeEvent> = match notice {
        Notice::Surge(e) => vec![e],
        Notice::Digest(d) => d.surges.iter().collect(),
        Notice::Revision(_) | Notice::Revisions(_) | Notice::Missing(_) => vec![],
    };
    let (labels, annotations, alerts): (Vec<_>, Vec<_>, Vec<_>) = match notice {
        Notice::Revision(r) => revision_alerts(std::slice::from_ref(r)),
        // The largest changes only: an alert per revised figure of a whole year would
        // flood Alertmanager as the POSTs would have flooded the receiver.
        Notice::Revisions(b) => revision_alerts(b.largest()),
        Notice::Missing(m) => missing_alerts(m),
        Notice::Surge(_) | Notice::Digest(_) => (
            events.iter().map(|e| labels(e)).collect(),
            events.iter().map(|e| annotations(e)).collect(),
            events.iter().map(|e| webhook_alert(e)).collect(),
        ),
    };
    let common_labels = common(&labels);
    let group_labels: BTreeMap<_, _> = common_labels
        .iter()
        .filter(|(k, _)| **k != "severity")
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let mut key = group_key(&group_labels);
    if let Notice::Digest(d) = notice {
        key.push_str(&format!(":{}", d.id));
    }
    let firing = events.is_empty() || events.iter().any(|e| !resolved(e));
    let external = public_url
        .map(|u| u.trim().trim_end_matches('/'))
        .unwrap_or_default();
    json!({
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": RECEIVER,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common(&annotations),
        "externalURL": external,
        "alerts": alerts,
    })
}

type Alerts = (
    Vec<BTreeMap<&'static str, String>>,
    Vec<BTreeMap<&'static str, String>>,
    Vec<Value>,
);

/// A notice that is no incident (a revision, a missing category) as firing alerts of
/// severity `info`: one per label set, with no end (the receiver decides how long to keep
/// it).
fn info_alerts(sets: Vec<(BTreeMap<&'static str, String>, String, String)>, at: &str) -> Alerts {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (labels, summary, description) in sets {
        let annotations = BTreeMap::from([("summary", summary), ("description", description)]);
        out.2.push(json!({
            "status": "firing",
            "labels": labels,
            "annotations": annotations,
            "startsAt": at,
            "endsAt": NO_END,
            "generatorURL": "",
            "fingerprint": fingerprint(&labels),
        }));
        out.0.push(labels);
        out.1.push(annotations);
    }
    out
}

/// Revisions: alertname `BorderwatchRevision`, an alert per revision with its series and
/// period.
fn revision_alerts(revisions: &[RevisionEvent]) -> Alerts {
    let alerts = revisions
        .iter()
        .map(|e| {
            let r = &e.revision;
            let labels = BTreeMap::from([
                ("alertname", "BorderwatchRevision".to_string()),
                ("source", r.source.clone()),
                ("country", r.country.code().to_string()),
                ("category", r.category.clone()),
                ("period", r.period.to_string()),
                ("severity", "info".to_string()),
            ]);
            let summary = format!(
                "Revised: {}/{}/{} {}",
                r.source,
                r.country.code(),
                r.category,
                r.period
            );
            (labels, summary, e.explanation.clone())
        })
        .collect();
    info_alerts(alerts, &borderwatch_model::now_rfc3339())
}

/// A missing category: alertname `BorderwatchMissing`, one alert per country.
fn missing_alerts(e: &MissingEvent) -> Alerts {
    let m = &e.missing;
    let sets = m
        .countries
        .iter()
        .map(|c| {
            let labels = BTreeMap::from([
                ("alertname", "BorderwatchMissing".to_string()),
                ("source", m.source.clone()),
                ("country", c.code().to_string()),
                ("category", m.category.clone()),
                ("severity", "info".to_string()),
            ]);
            let summary = format!(
                "Missing: {}/{}/{} after {}",
                m.source,
                c.code(),
                m.category,
                m.last_period
            );
            (labels, summary, e.explanation.clone())
        })
        .collect();
    info_alerts(sets, &borderwatch_model::now_rfc3339())
}

/// The body of `POST /api/v2/alerts` for `e`: one postable alert. A firing alert has no
/// `endsAt`, so Alertmanager's `resolve_timeout` ends it unless the closing notice does
/// first; the closing notice sets `endsAt`.
pub fn postable(e: &SurgeEvent) -> Value {
    let mut alert = json!({
        "labels": labels(e),
        "annotations": annotations(e),
        "startsAt": e.detected_at,
    });
    if resolved(e) {
        alert["endsAt"] = json!(e.detected_at);
    }
    if let Some(url) = &e.url {
        alert["generatorURL"] = json!(url);
    }
    json!([alert])
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::{Country, Period, Severity};

    fn event() -> SurgeEvent {
        serde_json::from_value(json!({
            "id": "sg-1", "source": "fsb", "country": "PRK", "category": "study",
            "period": "2024-Q3", "value": 3765, "severity": "high",
            "explanation": "3,765 entries for study in 2024-Q3", "findings": [],
            "release_id": "rel-1", "detected_at": "2024-11-01T00:00:00Z",
            "incident_id": "in-1", "incident_update": "opened",
            "url": "https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart"
        }))
        .unwrap()
    }

    #[test]
    fn fingerprints_are_alertmanagers() {
        // Alertmanager's fingerprint of {} is FNV-1a's offset basis, and of
        // {alertname="BorderSurge"} what prometheus/common computes.
        assert_eq!(fingerprint(&BTreeMap::new()), "cbf29ce484222325");
        let one = BTreeMap::from([("alertname", "BorderSurge".to_string())]);
        let mut h: u64 = 14_695_981_039_346_656_037;
        for b in b"alertname\xffBorderSurge\xff" {
            h = (h ^ u64::from(*b)).wrapping_mul(1_099_511_628_211);
        }
        assert_eq!(fingerprint(&one), format!("{h:016x}"));
        // Order of insertion does not matter; every label does.
        let a = labels(&event());
        let mut e = event();
        e.severity = Severity::Critical;
        assert_ne!(fingerprint(&a), fingerprint(&labels(&e)));
    }

    #[test]
    fn a_surge_is_one_firing_alert() {
        let v = webhook(&Notice::Surge(event()), Some("https://bw.example.org/"));
        let labels = json!({"alertname": "BorderSurge", "source": "fsb", "country": "PRK",
            "category": "study", "severity": "high"});
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "firing");
        assert_eq!(v["receiver"], "borderwatch");
        assert_eq!(v["externalURL"], "https://bw.example.org");
        assert_eq!(
            v["groupKey"],
            r#"{}/{borderwatch}:{alertname="BorderSurge", category="study", country="PRK", source="fsb"}"#
        );
        assert_eq!(
            v["groupLabels"],
            json!({"alertname": "BorderSurge", "source": "fsb", "country": "PRK", "category": "study"})
        );
        assert_eq!(v["commonLabels"], labels);
        let alert = &v["alerts"][0];
        assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["labels"], labels);
        assert_eq!(
            alert["annotations"],
            json!({"summary": "High surge: fsb/PRK/study 2024-Q3",
                   "description": "3,765 entries for study in 2024-Q3"})
        );
        assert_eq!(alert["startsAt"], "2024-11-01T00:00:00Z");
        assert_eq!(alert["endsAt"], NO_END);
        assert_eq!(
            alert["generatorURL"],
            "https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart"
        );
        assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
    }

    #[test]
    fn a_closing_notice_resolves_the_same_alert() {
        let opened = event();
        let mut closed = event();
        closed.id = "rs-1".into();
        closed.incident_update = IncidentUpdate::Closed;
        closed.detected_at = "2025-02-01T00:00:00Z".into();
        closed.period = Period::Quarter(2024, 4);
        let v = webhook(&Notice::Surge(closed.clone()), None);
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["externalURL"], "");
        assert_eq!(v["alerts"][0]["status"], "resolved");
        assert_eq!(v["alerts"][0]["endsAt"], "2025-02-01T00:00:00Z");
        assert_eq!(
            v["alerts"][0]["annotations"]["summary"],
            "surge over: fsb/PRK/study 2024-Q4"
        );
        let first = webhook(&Notice::Surge(opened.clone()), None);
        assert_eq!(v["groupKey"], first["groupKey"]);
        assert_eq!(
            v["alerts"][0]["fingerprint"],
            first["alerts"][0]["fingerprint"]
        );
        // The API form: endsAt only when it ends.
        assert!(postable(&opened)[0].get("endsAt").is_none());
        assert_eq!(postable(&closed)[0]["endsAt"], "2025-02-01T00:00:00Z");
        assert_eq!(postable(&opened)[0]["labels"], first["alerts"][0]["labels"]);
        assert!(pushed(&opened) && pushed(&closed));
    }

    #[test]
    fn history_and_continued_periods_are_not_pushed() {
        let mut e = event();
        e.historical = true;
        assert!(!pushed(&e));
        e.historical = false;
        e.incident_update = IncidentUpdate::Continued;
        assert!(!pushed(&e));
        e.incident_update = IncidentUpdate::Escalated;
        assert!(pushed(&e));
    }

    #[test]
    fn a_digest_is_one_group_with_an_alert_per_surge() {
        let mut fall = event();
        fall.id = "sg-2".into();
        fall.country = Country::parse("CHN").unwrap();
        fall.direction = Direction::Fall;
        fall.explanation = "a fall".into();
        let d = crate::notice::Digest::new("dg-1".into(), "rel-1".into(), vec![event(), fall]);
        let v = webhook(&Notice::Digest(d), None);
        assert_eq!(v["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["commonLabels"],
            json!({"source": "fsb", "category": "study", "severity": "high"})
        );
        assert_eq!(
            v["groupLabels"],
            json!({"source": "fsb", "category": "study"})
        );
        assert_eq!(
            v["groupKey"],
            r#"{}/{borderwatch}:{category="study", source="fsb"}:dg-1"#
        );
        assert_eq!(v["commonAnnotations"], json!({}));
        let names: Vec<&str> = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"BorderSurge") && names.contains(&"BorderFall"));
    }
}
