//! End to end: a release in, a signed surge alert out — through the in-process bus and
//! through a real nats-server, with one scenario run against both.

use std::time::Duration;

use borderwatch::roles::{Running, UpOptions, start};
use borderwatch_e2e::{Attempt, Behaviour, ScriptedReceiver, headline_csv, headline_csv_until};
use borderwatch_model::{IncidentUpdate, Severity, SurgeEvent, verify_signature};
use borderwatch_test_support::NatsServer;
use serde_json::{Value, json};

const SECRET: &str = "s3cret-for-tests";
const HEADLINE: &str = "3,765 entries of North Korean citizens for study in 2024-Q3: more than in the whole of 2019 (3,200); the highest quarter on record";

/// Where a scenario's roles run: a data directory for the in-process bus, or a server.
struct Setup {
    data: tempfile::TempDir,
    nats: Option<NatsServer>,
}

impl Setup {
    fn embedded() -> Setup {
        Setup {
            data: tempfile::tempdir().unwrap(),
            nats: None,
        }
    }

    fn nats() -> Setup {
        Setup {
            data: tempfile::tempdir().unwrap(),
            nats: Some(NatsServer::start()),
        }
    }

    async fn start(&self) -> Running {
        let mut opts = UpOptions::embedded(self.data.path().to_path_buf());
        opts.nats = self.nats.as_ref().map(|n| n.url());
        opts.notify.backoff.initial = Duration::from_millis(100);
        // The tests' webhook receivers are on loopback.
        opts.allow_private_webhooks();
        start(opts).await.expect("roles start")
    }
}

async fn post(
    client: &reqwest::Client,
    url: String,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    // Uploads name their file type and subscriptions are JSON: the gateway refuses
    // untyped bodies (a web page could send those cross-site).
    let content_type = if url.contains("/v1/ingest") {
        "text/csv"
    } else {
        "application/json"
    };
    let resp = client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    let resp = client.get(url).send().await.unwrap();
    assert!(resp.status().is_success(), "GET answered {}", resp.status());
    resp.json().await.unwrap()
}

async fn subscribe(client: &reqwest::Client, base: &str, receiver: &ScriptedReceiver) -> String {
    let (status, body) = post(
        client,
        format!("{base}/v1/subscriptions"),
        json!({
            "filter": {"countries": ["PRK"], "categories": ["study"], "sources": [], "min_severity": "low"},
            "webhook": {"url": receiver.url("hook"), "secret": SECRET},
            // Every surge on its own, history included: this test is about delivery.
            "history": "each"
        })
        .to_string(),
    )
    .await;
    assert_eq!(status, 201, "subscription created: {body}");
    assert!(
        body["webhook"].get("secret").is_none(),
        "the secret is never returned"
    );
    body["id"].as_str().unwrap().to_string()
}

fn headline_received(got: &[Attempt]) -> bool {
    got.iter().filter(|r| r.accepted()).any(|r| {
        serde_json::from_slice::<SurgeEvent>(&r.body)
            .is_ok_and(|e| e.period.to_string() == "2024-Q3")
    })
}

/// The scenario both transports must pass.
async fn headline_case(setup: Setup) {
    let receiver = ScriptedReceiver::start(Behaviour {
        fail_first: 1,
        ..Behaviour::default()
    })
    .await;
    let running = setup.start().await;
    let base = running.gateway_url().unwrap();
    let client = reqwest::Client::new();
    subscribe(&client, &base, &receiver).await;

    let (status, release) = post(
        &client,
        format!("{base}/v1/ingest?format=generic"),
        headline_csv(),
    )
    .await;
    assert_eq!(status, 201, "first ingest creates a release: {release}");
    assert!(release["accepted"].as_u64().unwrap() > 20);
    assert_eq!(release["duplicate"], false);

    // The receiver fails the first POST: the delivery is retried and arrives signed.
    let got = receiver
        .wait_accepted(
            Duration::from_secs(30),
            "the headline surge",
            headline_received,
        )
        .await;
    let headline = got
        .iter()
        .find(|r| {
            serde_json::from_slice::<SurgeEvent>(&r.body)
                .is_ok_and(|e| e.period.to_string() == "2024-Q3")
        })
        .unwrap();
    let event: SurgeEvent = serde_json::from_slice(&headline.body).unwrap();
    assert!(
        event.explanation.contains(HEADLINE),
        "explanation: {}",
        event.explanation
    );
    assert_eq!(event.value, 3765);
    assert_eq!(headline.event_id, event.id);
    assert!(
        verify_signature(SECRET.as_bytes(), &headline.body, &headline.signature),
        "signature checks against the exact bytes sent"
    );
    assert!(!verify_signature(
        b"wrong",
        &headline.body,
        &headline.signature
    ));
    assert!(
        receiver.attempts().len() > got.len(),
        "the first attempt failed and was retried"
    );

    // Every surge of the subscription's series arrives, each once.
    let announced = loop {
        let surges: Value = get_json(
            &client,
            format!("{base}/v1/surges?country=PRK&category=study"),
        )
        .await;
        let n = surges["surges"].as_array().unwrap().len();
        let got = receiver
            .wait_accepted(Duration::from_secs(30), "every announced surge", |r| {
                r.len() >= n
            })
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if receiver.accepted().len() == got.len() {
            break got;
        }
    };
    let got = announced;

    // The same file again adds nothing and announces nothing.
    let (status, again) = post(&client, format!("{base}/v1/ingest"), headline_csv()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["new_observations"], 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_restart = receiver.accepted();
    assert_eq!(
        before_restart.len(),
        got.len(),
        "a duplicate ingest delivers nothing new"
    );
    let mut ids: Vec<&str> = before_restart.iter().map(|r| r.event_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        before_restart.len(),
        "each event reached the subscription once"
    );

    // The API serves what analytics found.
    let surges: Value = get_json(
        &client,
        format!("{base}/v1/surges?country=PRK&category=study"),
    )
    .await;
    let list = surges["surges"].as_array().unwrap();
    assert!(list.iter().any(|s| s["id"] == event.id.as_str()));
    // The headline surge belongs to an incident the API lists; the file is the series' first
    // load, so its surges are history.
    assert!(event.historical, "a first load is history");
    assert!(event.score > 0.0);
    let incident_id = event
        .incident_id
        .clone()
        .expect("the surge has an incident");
    let incidents: Value = get_json(
        &client,
        format!("{base}/v1/incidents?country=PRK&category=study"),
    )
    .await;
    let incident = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == incident_id.as_str())
        .unwrap_or_else(|| panic!("incident {incident_id} is listed: {incidents}"));
    assert!(
        incident["surges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == event.id.as_str()),
        "{incident}"
    );
    let series: Value = get_json(&client, format!("{base}/v1/series/fsb/PRK/study")).await;
    assert!(series["observations"].as_array().unwrap().len() >= 20);
    assert!(
        series["surges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == event.id.as_str())
    );

    // The live stream replays what a client missed when it says where it stopped.
    let mut sse = client
        .get(format!("{base}/v1/surges/stream"))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status().as_u16(), 200);
    let mut text = String::new();
    while !text.contains(&event.id) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), sse.chunk())
            .await
            .expect("the stream sends the backlog")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: surge"), "{text}");
    drop(sse);

    // A restart loses nothing and repeats nothing.
    running.shutdown().await;
    let running = setup.start().await;
    let base = running.gateway_url().unwrap();
    let (status, again) = post(&client, format!("{base}/v1/ingest"), headline_csv()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["duplicate"], true,
        "the release is remembered across a restart"
    );
    let surges: Value = get_json(&client, format!("{base}/v1/surges?country=PRK")).await;
    assert!(
        surges["surges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == event.id.as_str())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.accepted().len(),
        got.len(),
        "nothing redelivered after a restart"
    );
    running.shutdown().await;
}

/// Runs one scenario as two tests, one per transport.
macro_rules! on_both_transports {
    ($case:ident: $embedded:ident, $nats:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $embedded() {
            $case(Setup::embedded()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $nats() {
            $case(Setup::nats()).await;
        }
    };
}

on_both_transports!(headline_case:
    embedded_headline_surge_reaches_a_signed_webhook_once,
    nats_headline_surge_reaches_a_signed_webhook_once);

/// What a newsroom subscribed with the defaults hears: the archive loaded first is history,
/// told in one summary; the release that adds 2024-Q3 brings exactly its live surges, the
/// headline among them, critical and citing 2019.
async fn history_then_live_case(setup: Setup) {
    let receiver = ScriptedReceiver::start(Behaviour::default()).await;
    let running = setup.start().await;
    let base = running.gateway_url().unwrap();
    let client = reqwest::Client::new();
    let (status, body) = post(
        &client,
        format!("{base}/v1/subscriptions"),
        json!({
            "filter": {"countries": ["PRK"]},
            "webhook": {"url": receiver.url("hook"), "secret": SECRET}
        })
        .to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["history"], "summary", "the default: {body}");

    // The archive up to 2024-Q2: history, told once.
    let (status, release) = post(
        &client,
        format!("{base}/v1/ingest?format=generic"),
        headline_csv_until("2024-Q2"),
    )
    .await;
    assert_eq!(status, 201, "{release}");
    receiver
        .wait_accepted(Duration::from_secs(30), "the history summary", |r| {
            !r.is_empty()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = receiver.accepted();
    assert_eq!(got.len(), 1, "one summary for the history load");
    assert!(verify_signature(
        SECRET.as_bytes(),
        &got[0].body,
        &got[0].signature
    ));
    let summary: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(summary["history"], true, "{summary}");
    // The summary counts what the subscription is sent: surges, not falls (off by default).
    let historical: Value = get_json(
        &client,
        format!("{base}/v1/surges?country=PRK&direction=rise"),
    )
    .await;
    let historical = historical["surges"].as_array().unwrap();
    assert!(!historical.is_empty());
    assert!(historical.iter().all(|s| s["historical"] == true));
    assert_eq!(summary["count"], historical.len(), "{summary}");

    // The release that adds 2024-Q3: its live surges, each once, and nothing of the past.
    let (status, release) = post(
        &client,
        format!("{base}/v1/ingest?format=generic"),
        headline_csv_until("2024-Q3"),
    )
    .await;
    assert_eq!(status, 201, "{release}");
    let got = receiver
        .wait_accepted(Duration::from_secs(30), "the live surge", headline_received)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let live: Vec<SurgeEvent> = receiver.accepted()[1..]
        .iter()
        .map(|a| serde_json::from_slice(&a.body).unwrap())
        .collect();
    assert!(got.len() > 1);
    assert!(
        live.iter()
            .all(|e| e.period.to_string() == "2024-Q3" && !e.historical),
        "{live:?}"
    );
    let headline = live
        .iter()
        .find(|e| e.category == "study")
        .expect("the headline surge");
    assert_eq!(headline.severity, Severity::Critical);
    assert!(
        headline
            .explanation
            .contains("more than in the whole of 2019 (3,200)"),
        "{}",
        headline.explanation
    );
    assert_eq!(headline.incident_update, IncidentUpdate::Opened);
    assert!(headline.incident_id.is_some());
}

on_both_transports!(history_then_live_case:
    embedded_history_load_is_one_summary_then_the_live_surge_arrives,
    nats_history_load_is_one_summary_then_the_live_surge_arrives);

/// Ten years of a steady series of about 20,000 a quarter, then (with `collapse`) a quarter
/// of 900: a border closing.
fn steady_then_collapse_csv(collapse: bool) -> String {
    let mut csv = String::from("source,period,country,category,count\n");
    for i in 0..40u64 {
        let count = 20_000 + (i * 7_919) % 1_200;
        csv.push_str(&format!(
            "fsb,{}-Q{},CHN,total,{count}\n",
            2014 + i / 4,
            i % 4 + 1
        ));
    }
    if collapse {
        csv.push_str("fsb,2024-Q1,CHN,total,900\n");
    }
    csv
}

/// A fall at the live edge reaches the subscription that asked for falls, as a fall, and
/// not the one with the defaults.
async fn falls_case(setup: Setup) {
    let wants = ScriptedReceiver::start(Behaviour::default()).await;
    let quiet = ScriptedReceiver::start(Behaviour::default()).await;
    let running = setup.start().await;
    let base = running.gateway_url().unwrap();
    let client = reqwest::Client::new();
    for (receiver, falls) in [(&wants, true), (&quiet, false)] {
        let (status, body) = post(
            &client,
            format!("{base}/v1/subscriptions"),
            json!({
                "filter": {"countries": ["CHN"]},
                "webhook": {"url": receiver.url("hook"), "secret": SECRET},
                "falls": falls,
            })
            .to_string(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["falls"], falls, "{body}");
    }
    let (status, body) = post(
        &client,
        format!("{base}/v1/ingest?format=generic"),
        steady_then_collapse_csv(false),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &client,
        format!("{base}/v1/ingest?format=generic"),
        steady_then_collapse_csv(true),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let got = wants
        .wait_accepted(Duration::from_secs(30), "the fall", |r| !r.is_empty())
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(wants.accepted().len(), 1, "one fall, once");
    let fall: SurgeEvent = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(
        fall.direction,
        borderwatch_model::Direction::Fall,
        "{fall:?}"
    );
    assert_eq!(fall.period.to_string(), "2024-Q1");
    assert!(!fall.historical);
    assert!(
        fall.explanation.contains("far below the expected")
            && fall.explanation.contains("the lowest on record"),
        "{}",
        fall.explanation
    );
    assert!(quiet.accepted().is_empty(), "falls are off by default");
    let listed: Value = get_json(&client, format!("{base}/v1/surges?direction=fall")).await;
    assert_eq!(listed["surges"][0]["id"], fall.id.as_str(), "{listed}");
    running.shutdown().await;
}

on_both_transports!(falls_case:
    embedded_a_fall_reaches_only_the_subscription_that_asked_for_falls,
    nats_a_fall_reaches_only_the_subscription_that_asked_for_falls);

/// Rows that cannot be read are listed with row, column, value and reason; the rest land.
async fn bad_rows_case(setup: Setup) {
    let running = setup.start().await;
    let base = running.gateway_url().unwrap();
    let client = reqwest::Client::new();
    let csv = "source,period,country,category,count\n\
               fsb,2024-Q1,PRK,study,38\n\
               fsb,2024-Q2,Atlantis,study,5\n\
               fsb,2024-Q5,PRK,study,5\n\
               fsb,2024-Q3,PRK,study,-3\n";
    let (status, body) = post(&client, format!("{base}/v1/ingest"), csv).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accepted"], 1);
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 3, "{body}");
    assert_eq!(rejected[0]["row"], 3);
    assert_eq!(rejected[0]["column"], "country");
    assert_eq!(rejected[0]["value"], "Atlantis");
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a known country")
    );
    assert_eq!(rejected[1]["column"], "period");
    assert_eq!(rejected[2]["column"], "count");

    let (status, body) = post(
        &client,
        format!("{base}/v1/ingest"),
        "period,country\n2024,PRK\n",
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("count"),
        "{body}"
    );
    running.shutdown().await;
}

on_both_transports!(bad_rows_case:
    embedded_bad_rows_are_reported_by_row_and_column,
    nats_bad_rows_are_reported_by_row_and_column);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_requests_need_the_api_token() {
    let setup = Setup::embedded();
    let mut opts = UpOptions::embedded(setup.data.path().to_path_buf());
    opts.gateway.api_token = Some("tok".into());
    let running = start(opts).await.unwrap();
    let base = running.gateway_url().unwrap();
    let client = reqwest::Client::new();
    let (status, body) = post(&client, format!("{base}/v1/ingest"), headline_csv()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let resp = client
        .post(format!("{base}/v1/ingest"))
        .bearer_auth("tok")
        .body(headline_csv())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let resp = client
        .get(format!("{base}/v1/surges"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "reading needs no token");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_bad_subscriptions_get_json_errors() {
    let setup = Setup::embedded();
    let running = setup.start().await;
    let base = running.gateway_url().unwrap();
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{base}/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = post(
        &client,
        format!("{base}/v1/subscriptions"),
        json!({"webhook": {"url": "ftp://x", "secret": "s"}}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("http"));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_live_streams() {
    let setup = Setup::embedded();
    let running = setup.start().await;
    let base = running.gateway_url().unwrap();
    let client = reqwest::Client::new();
    let mut sse = client
        .get(format!("{base}/v1/surges/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status().as_u16(), 200);
    tokio::time::timeout(Duration::from_secs(10), running.shutdown())
        .await
        .expect("an open live stream does not hold shutdown up");
    // The stream was closed by the server, not left hanging.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = sse.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the live stream ended");
}
