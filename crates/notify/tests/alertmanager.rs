//! Alertmanager, for real (Debian's `prometheus-alertmanager`; `.ci/run` installs it): notify
//! pushes surges to its `/api/v2/alerts` (`--alertmanager-url`), Alertmanager routes them
//! to its webhook receiver, and what arrives there is compared with what a subscription of
//! format `alertmanager` gets from borderwatch directly: the same alert (labels,
//! fingerprint, link to the evidence), firing, then resolved by the incident's closing
//! notice.

mod support;

use std::time::Duration;

use borderwatch_model::{IncidentUpdate, Period, Severity, SurgeEvent, now_rfc3339};
use borderwatch_test_support::{Alertmanager, Attempt};
use serde_json::{Value, json};
use support::{Receiver, Services, Transport, fast_config, surge};

const PUBLIC: &str = "https://bw.example.org";
const EVIDENCE: &str = "https://bw.example.org/series/fsb/PRK/study?surge=sg-am-1#chart";

fn body(a: &Attempt) -> Value {
    serde_json::from_slice(&a.body).unwrap()
}

/// The POSTs `receiver` took on `path`.
fn on(receiver: &Receiver, path: &str) -> Vec<Value> {
    receiver
        .accepted()
        .iter()
        .filter(|a| a.path == path)
        .map(body)
        .collect()
}

/// Waits until a POST on `path` satisfies `pred`, and returns it.
async fn wait_post(
    receiver: &Receiver,
    path: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    receiver
        .wait_accepted(Duration::from_secs(30), what, |got| {
            got.iter().any(|a| a.path == path && pred(&body(a)))
        })
        .await;
    on(receiver, path).into_iter().find(|b| pred(b)).unwrap()
}

/// The alerts Alertmanager holds now (`GET /api/v2/alerts`).
async fn listed(am: &Alertmanager) -> Vec<Value> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/api/v2/alerts", am.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn opened() -> SurgeEvent {
    let mut e = surge("sg-am-1", "PRK", "study", Period::Quarter(2024, 3), "rel-1");
    e.incident_id = Some("in-am".into());
    e.incident_update = IncidentUpdate::Opened;
    e.detected_at = now_rfc3339();
    e
}

async fn case(t: Transport) {
    let receiver = Receiver::start(&[]).await;
    let am = Alertmanager::start(
        &receiver.url("am"),
        &["alertname", "source", "country", "category"],
    );
    let mut cfg = fast_config();
    cfg.public_url = Some(PUBLIC.into());
    cfg.alertmanager_url = Some(format!("{}/", am.url()));
    let s = Services::start(t.bus.clone(), cfg).await;
    // The same receiver as a subscription in Alertmanager's webhook format, on /hook.
    s.subscribe(
        &receiver,
        json!({"format": "alertmanager", "resolved": true}),
    )
    .await;

    // History is not pushed: a first load would fire every surge of ten years.
    let mut old = surge(
        "sg-am-old",
        "CHN",
        "study",
        Period::Quarter(2020, 1),
        "rel-1",
    );
    old.historical = true;
    s.publish(&old).await;
    s.publish(&opened()).await;

    let firing = |b: &Value| b["status"] == "firing";
    let via_am = wait_post(&receiver, "/am", "the alert through Alertmanager", firing).await;
    let direct = wait_post(
        &receiver,
        "/hook",
        "the alertmanager-format webhook",
        firing,
    )
    .await;
    let labels = json!({"alertname": "BorderSurge", "source": "fsb", "country": "PRK",
        "category": "study", "severity": "high"});
    for (who, b) in [("Alertmanager", &via_am), ("borderwatch", &direct)] {
        assert_eq!(b["version"], "4", "{who}: {b}");
        let alerts = b["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 1, "{who}: one alert: {b}");
        assert_eq!(alerts[0]["status"], "firing", "{who}");
        assert_eq!(alerts[0]["labels"], labels, "{who}");
        assert_eq!(alerts[0]["generatorURL"], EVIDENCE, "{who}");
        assert_eq!(
            alerts[0]["annotations"]["summary"], "High surge: fsb/PRK/study 2024-Q3",
            "{who}"
        );
        assert_eq!(alerts[0]["endsAt"], "0001-01-01T00:00:00Z", "{who}");
    }
    // borderwatch's own body is Alertmanager's, down to the fingerprint and group labels.
    assert_eq!(
        direct["alerts"][0]["fingerprint"],
        via_am["alerts"][0]["fingerprint"]
    );
    assert_eq!(direct["groupLabels"], via_am["groupLabels"]);
    assert_eq!(direct["commonLabels"], via_am["commonLabels"]);
    assert_eq!(direct["commonAnnotations"], via_am["commonAnnotations"]);
    assert_eq!(
        direct["alerts"][0]["startsAt"],
        via_am["alerts"][0]["startsAt"]
    );

    // Alertmanager holds exactly that alert: the historical surge never reached it.
    let alerts = listed(&am).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}\n{}", am.log());
    assert_eq!(alerts[0]["labels"], labels);
    assert_eq!(alerts[0]["generatorURL"], EVIDENCE);
    assert_eq!(alerts[0]["status"]["state"], "active");

    // The incident closes: the same alert resolves, through Alertmanager and directly.
    let mut closed = opened();
    closed.id = "rs-am".into();
    closed.period = Period::Quarter(2024, 4);
    closed.incident_update = IncidentUpdate::Closed;
    closed.severity = Severity::High;
    closed.detected_at = now_rfc3339();
    s.publish(&closed).await;
    let resolved = |b: &Value| b["status"] == "resolved";
    let via_am = wait_post(
        &receiver,
        "/am",
        "the resolved alert through Alertmanager",
        resolved,
    )
    .await;
    let direct = wait_post(&receiver, "/hook", "the resolved webhook", resolved).await;
    assert_eq!(via_am["alerts"][0]["status"], "resolved");
    assert_eq!(direct["alerts"][0]["status"], "resolved");
    assert_eq!(
        direct["alerts"][0]["fingerprint"],
        via_am["alerts"][0]["fingerprint"]
    );
    assert_eq!(via_am["alerts"][0]["endsAt"], closed.detected_at);
    assert_eq!(direct["alerts"][0]["endsAt"], closed.detected_at);
    // Alertmanager no longer lists it as active.
    let alerts = listed(&am).await;
    assert!(
        alerts.iter().all(|a| a["status"]["state"] != "active"),
        "{alerts:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn embedded_surges_reach_alertmanager_and_resolve() {
    case(Transport::memory().await).await;
}

#[tokio::test]
async fn nats_surges_reach_alertmanager_and_resolve() {
    case(Transport::nats().await).await;
}

/// An Alertmanager that refuses at first (503, as one starting up or overloaded does) gets
/// the alert once it takes it: the push is retried like a webhook.
#[tokio::test]
async fn the_push_is_retried_until_alertmanager_takes_it() {
    let t = Transport::memory().await;
    let receiver = Receiver::start(&[503, 503]).await;
    let mut cfg = fast_config();
    // The receiver stands in for Alertmanager's API: two refusals, then 200.
    cfg.alertmanager_url = Some(receiver.url(""));
    let s = Services::start(t.bus.clone(), cfg).await;
    s.publish(&opened()).await;
    let got = receiver
        .wait_accepted(Duration::from_secs(20), "the third push", |a| !a.is_empty())
        .await;
    assert_eq!(receiver.attempts().len(), 3);
    assert_eq!(got[0].path, "/api/v2/alerts");
    let alerts = body(&got[0]);
    assert_eq!(alerts[0]["labels"]["alertname"], "BorderSurge");
    assert!(alerts[0].get("endsAt").is_none(), "{alerts}");
    assert!(
        alerts[0].get("generatorURL").is_none(),
        "no public URL, no link: {alerts}"
    );
    s.stop().await;
}
