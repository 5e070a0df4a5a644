//! Subscription kinds and matchers through the API, and revisions and missing categories on
//! the live stream, against a real gateway on a random port over a real nats-server
//! (`NATS_SERVER_BIN`). Revisions and missing categories are published as ingest publishes
//! them. Every webhook URL here is on 127.0.0.1 and never called.

mod support;
use support::Gateway;

use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, NatsBus, Outgoing, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_model::{Country, MissingCategory, Period, Revision};
use borderwatch_test_support::NatsServer;
use serde_json::{Value, json};

async fn start() -> Gateway {
    let nats = NatsServer::start();
    let bus: Bus = Arc::new(
        NatsBus::connect(&nats.url(), "gateway-kinds")
            .await
            .unwrap(),
    );
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let cfg = GatewayConfig {
        rate_limit: None,
        webhook_allow_private: true,
        ..GatewayConfig::default()
    };
    support::start_on(bus, cfg).await.holding(nats)
}

impl Gateway {
    async fn send(&self, method: &str, path: &str, ct: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("content-type", ct)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, "application/json", body).await
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("PATCH", path, "application/merge-patch+json", body)
            .await
    }

    /// Opens the live stream at `query` and returns the open response.
    async fn stream(&self, query: &str) -> reqwest::Response {
        let r = self
            .http
            .get(format!("{}/v1/surges/stream{query}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r
    }
}

/// Reads `stream` until `text` holds `want`, or panics after 15 s with what came.
async fn read_until(stream: &mut reqwest::Response, text: &mut String, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !text.contains(want) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `{want}` on the live stream; got:\n{text}"))
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The `data:` of the first SSE event of type `kind` in `text`, and whether it had an id.
fn event_of(text: &str, kind: &str) -> (Value, bool) {
    let block = text
        .split("\n\n")
        .find(|b| b.lines().any(|l| l == format!("event: {kind}")))
        .unwrap_or_else(|| panic!("no {kind} event in:\n{text}"));
    let data = block
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    (
        serde_json::from_str(data).unwrap(),
        block.lines().any(|l| l.starts_with("id:")),
    )
}

fn revision() -> Revision {
    Revision {
        source: "fsb".into(),
        country: Country::parse("PRK").unwrap(),
        category: "study".into(),
        period: Period::Quarter(2024, 2),
        old_count: 950,
        new_count: 1020,
        old_release_id: "rel-old".into(),
        release_id: "rel-new".into(),
    }
}

fn missing() -> MissingCategory {
    MissingCategory {
        source: "fsb".into(),
        category: "work".into(),
        countries: vec![
            Country::parse("PRK").unwrap(),
            Country::parse("CHN").unwrap(),
        ],
        last_period: Period::Quarter(2024, 3),
        release_first_period: Period::Quarter(2024, 4),
        release_last_period: Period::Quarter(2024, 4),
        release_id: "rel-new".into(),
    }
}

async fn publish(bus: &Bus, subject: String, body: Vec<u8>) {
    bus.publish(Outgoing::new(subject, body)).await.unwrap();
}

#[tokio::test]
async fn subscriptions_take_kinds_and_matchers_and_a_bad_matcher_is_named_422() {
    let gw = start().await;
    let hook = json!({"url": "http://127.0.0.1:9/hook", "secret": "s"});
    let (status, created) = gw
        .post(
            "/v1/subscriptions",
            json!({"webhook": hook, "kinds": ["surge", "revision", "missing"],
                   "matchers": ["country=~\"PRK|CHN\"", "category!=tourism"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kinds"], json!(["surge", "revision", "missing"]));
    assert_eq!(
        created["matchers"],
        json!(["country=~\"PRK|CHN\"", "category!=\"tourism\""])
    );
    let id = created["id"].as_str().unwrap();
    // Stored as notify reads it.
    let raw = gw
        .bus
        .kv_get(names::SUBSCRIPTIONS_BUCKET, id)
        .await
        .unwrap()
        .unwrap();
    let stored: borderwatch_model::Subscription = serde_json::from_slice(&raw).unwrap();
    assert_eq!(stored.matchers.0.len(), 2);

    // A subscription without kinds takes surges, as before.
    let (_, plain) = gw.post("/v1/subscriptions", json!({"webhook": hook})).await;
    assert_eq!(plain["kinds"], json!(["surge"]));
    assert!(plain.get("matchers").is_none(), "{plain}");

    for (matchers, names_it) in [
        (json!(["country=PRK", "category=~\"(\""]), "matchers[1]"),
        (json!(["colour=red"]), "colour"),
        (json!(["country=Atlantis"]), "matchers[0]"),
        (
            json!(["severity=~\"(a{1000}){1000}\""]),
            "not a valid regex",
        ),
        (json!(vec!["country!=PRK"; 33]), "at most 32"),
    ] {
        let (status, err) = gw
            .post(
                "/v1/subscriptions",
                json!({"webhook": hook, "matchers": matchers}),
            )
            .await;
        assert_eq!(status, 422, "{matchers}: {err}");
        assert_eq!(err["error"]["code"], "invalid_matcher");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(names_it), "{message}");
    }
    let (status, _) = gw
        .post("/v1/subscriptions", json!({"webhook": hook, "kinds": []}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = gw
        .post(
            "/v1/subscriptions",
            json!({"webhook": hook, "kinds": ["surge", "weather"]}),
        )
        .await;
    assert_eq!(status, 400);

    // PATCH: a bad matcher is 422 and changes nothing; a good list replaces; null removes.
    let path = format!("/v1/subscriptions/{id}");
    let (status, err) = gw
        .patch(&path, json!({"matchers": ["direction=sideways"]}))
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("matchers[0]")
    );
    let (status, edited) = gw
        .patch(
            &path,
            json!({"matchers": ["detector=farrington"], "kinds": ["revision"]}),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["matchers"], json!(["detector=\"farrington\""]));
    assert_eq!(edited["kinds"], json!(["revision"]));
    let (status, edited) = gw.patch(&path, json!({"matchers": null})).await;
    assert_eq!(status, 200);
    assert!(edited.get("matchers").is_none(), "{edited}");
    assert_eq!(edited["kinds"], json!(["revision"]));
}

#[tokio::test]
async fn the_live_stream_carries_revisions_and_missing_categories_as_their_own_events() {
    let gw = start().await;
    let mut all = gw.stream("").await;
    let mut chn = gw.stream("?country=CHN").await;
    let mut surges_only = gw.stream("?kinds=surge").await;
    let (status, _) = gw
        .post(
            "/v1/subscriptions",
            json!({"webhook": {"url": "http://127.0.0.1:9/hook", "secret": "s"}}),
        )
        .await;
    assert_eq!(status, 201);

    let r = revision();
    publish(
        &gw.bus,
        names::revision_subject(&r.source, r.country.code(), &r.category),
        serde_json::to_vec(&r).unwrap(),
    )
    .await;
    let m = missing();
    publish(
        &gw.bus,
        names::missing_subject(&m.source, &m.category),
        serde_json::to_vec(&m).unwrap(),
    )
    .await;

    let mut text = String::new();
    read_until(&mut all, &mut text, "event: revision").await;
    read_until(&mut all, &mut text, "event: missing").await;
    let (rev, has_id) = event_of(&text, "revision");
    assert_eq!(rev["kind"], "revision");
    assert_eq!(rev["old_count"], 950);
    assert_eq!(rev["new_count"], 1020);
    assert_eq!(rev["release_id"], "rel-new");
    assert!(rev["id"].as_str().unwrap().starts_with("rv-"));
    assert!(!has_id, "a revision leaves Last-Event-ID to the surges");
    let (miss, _) = event_of(&text, "missing");
    assert_eq!(miss["countries"], json!(["PRK", "CHN"]));
    assert!(!text.contains("event: surge"));

    // `country=CHN`: the missing category narrowed to CHN, and no PRK revision.
    let mut chn_text = String::new();
    read_until(&mut chn, &mut chn_text, "event: missing").await;
    let (miss, _) = event_of(&chn_text, "missing");
    assert_eq!(miss["countries"], json!(["CHN"]));
    // A stream that asked for surges only gets neither: a surge published after them is
    // the first thing it sees.
    let surge = json!({
        "id": "sg-after", "source": "fsb", "country": "PRK", "category": "study",
        "period": "2024-Q3", "value": 3765, "severity": "high", "explanation": "x",
        "findings": [], "release_id": "rel-new", "detected_at": "2024-11-01T00:00:00Z",
    });
    gw.bus
        .publish(
            Outgoing::new(
                names::surge_subject("PRK", "study"),
                serde_json::to_vec(&surge).unwrap(),
            )
            .with_id("sg-after".to_string()),
        )
        .await
        .unwrap();
    let mut only = String::new();
    read_until(&mut surges_only, &mut only, "event: surge").await;
    assert!(
        !only.contains("event: revision") && !only.contains("event: missing"),
        "{only}"
    );
    let (_, has_id) = event_of(&only, "surge");
    assert!(has_id);
    // The CHN stream saw no PRK revision meanwhile, nor the PRK surge.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let more = tokio::time::timeout(Duration::from_millis(200), chn.chunk()).await;
    if let Ok(Ok(Some(chunk))) = more {
        chn_text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!chn_text.contains("event: revision"), "{chn_text}");
    assert!(!chn_text.contains("sg-after"), "{chn_text}");
}
