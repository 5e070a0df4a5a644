//! The notify service in process, on the in-process bus and on a real nats-server, with a
//! real webhook receiver. Subscriptions and silences are written to their buckets and the
//! delivery log read from its stream directly; the gateway's HTTP side of them is tested
//! in the gateway crate.

mod support;

use std::time::Duration;

use borderwatch_bus::{Bus, names};
use borderwatch_model::{Period, verify_signature};
use borderwatch_notify::notice::digest_id;
use borderwatch_notify::record::{Outcome, read_record};
use borderwatch_notify::{DeadLetter, NotifyConfig};
use futures::StreamExt;
use serde_json::{Value, json};
use support::{Receiver, SECRET, Services, Transport, fast_config, surge};

const Q3: Period = Period::Quarter(2024, 3);

async fn record_outcome(bus: &Bus, sub: &str, event: &str) -> Option<Outcome> {
    read_record(bus, sub, event)
        .await
        .unwrap()
        .map(|r| r.outcome)
}

/// Polls the delivery record until it exists.
async fn wait_record(bus: &Bus, sub: &str, event: &str) -> Outcome {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(o) = record_outcome(bus, sub, event).await {
            return o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery record for {sub}/{event}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn slack_body_arrives_signed_over_the_exact_bytes() {
    let t = Transport::memory().await;
    let mut cfg = fast_config();
    cfg.public_url = Some("https://bw.example.org".into());
    let s = Services::start(t.bus.clone(), cfg).await;
    let receiver = Receiver::start(&[]).await;
    s.subscribe(&receiver, json!({"format": "slack"})).await;
    s.publish(&surge("sg-slack", "PRK", "study", Q3, "rel-1"))
        .await;

    let got = receiver.wait_for(1, "the slack message").await;
    let r = &got[0];
    assert_eq!(r.event_id, "sg-slack");
    assert!(verify_signature(SECRET.as_bytes(), &r.body, &r.signature));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body["text"],
        "HIGH surge: fsb/PRK/study 2024-Q3: sg-slack: 3,765 entries for study in 2024-Q3"
    );
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(
        body["blocks"][2]["fields"][4]["text"],
        "*Evidence*\n<https://bw.example.org/series/fsb/PRK/study?surge=sg-slack#chart|View the evidence>"
    );
    s.stop().await;
}

#[tokio::test]
async fn detector_filter_skips_surges_of_other_detectors() {
    let t = Transport::memory().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(&[]).await;
    s.subscribe(
        &receiver,
        json!({"filter": {"detectors": ["year_over_year"]}}),
    )
    .await;
    let mut wanted = surge("sg-yoy", "PRK", "study", Q3, "rel-1");
    wanted.findings[0].detector = "year_over_year".into();
    s.publish(&surge(
        "sg-record",
        "PRK",
        "study",
        Period::Quarter(2024, 2),
        "rel-1",
    ))
    .await;
    s.publish(&wanted).await;
    let got = receiver.wait_for(1, "the year-over-year surge").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(got[0].event_id, "sg-yoy");
    s.stop().await;
}

#[tokio::test]
async fn delivery_log_lists_attempts_with_status_codes_newest_first() {
    let t = Transport::memory().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(&[500, 503]).await;
    let sub = s.subscribe(&receiver, json!({})).await;
    s.publish(&surge("sg-log", "PRK", "study", Q3, "rel-1"))
        .await;
    receiver.wait_for(1, "the surge after two failures").await;
    assert_eq!(
        wait_record(&s.bus, &sub, "sg-log").await,
        Outcome::Delivered
    );

    let log = s.deliveries(&sub).await;
    let summary: Vec<(u64, String, u64)> = log
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap().to_string(),
                a["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (3, "delivered".into(), 200),
            (2, "retrying".into(), 503),
            (1, "retrying".into(), 500),
        ]
    );
    for a in &log {
        assert_eq!(a["event_id"], "sg-log");
        assert!(a["latency_ms"].is_u64() && a["at"].is_string());
    }
    assert!(log[1]["error"].as_str().unwrap().starts_with("HTTP 503"));
    s.stop().await;
}

#[tokio::test]
async fn silenced_event_is_recorded_not_delivered() {
    let t = Transport::memory().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(&[]).await;
    let sub = s
        .subscribe(&receiver, json!({"filter": {"countries": ["PRK", "CHN"]}}))
        .await;
    let silence_id = s
        .silence(json!({"matchers": {"country": "PRK", "category": "study"}, "until": "2999-01-01T00:00:00Z", "comment": "known story"}))
        .await;

    s.publish(&surge("sg-muted", "PRK", "study", Q3, "rel-1"))
        .await;
    s.publish(&surge("sg-loud", "CHN", "study", Q3, "rel-1"))
        .await;
    let got = receiver.wait_for(1, "the unsilenced surge").await;
    assert_eq!(got[0].event_id, "sg-loud");
    assert_eq!(
        wait_record(&s.bus, &sub, "sg-muted").await,
        Outcome::Silenced
    );
    let rec = read_record(&s.bus, &sub, "sg-muted")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.silence.as_deref(), Some(silence_id.as_str()));
    let log = s.deliveries(&sub).await;
    assert!(
        log.iter()
            .any(|a| a["event_id"] == "sg-muted" && a["outcome"] == "silenced"),
        "{log:?}"
    );
    assert_eq!(receiver.received().len(), 1);
    s.stop().await;
}

/// Dead letters on `bw.deadletter.>`, oldest first.
async fn dead_letters(bus: &Bus) -> Vec<DeadLetter> {
    let last = bus.last_seq(names::DEADLETTER_STREAM).await.unwrap();
    let mut out = Vec::new();
    if last == 0 {
        return out;
    }
    let mut replay = bus
        .replay(names::DEADLETTER_STREAM, "bw.deadletter.>", 1)
        .await
        .unwrap();
    while let Some(msg) = replay.next().await {
        let msg = msg.unwrap();
        out.push(serde_json::from_slice(&msg.payload).unwrap());
        if msg.seq >= last {
            break;
        }
    }
    out
}

async fn dead_letter_case(t: Transport) {
    let mut cfg = fast_config();
    cfg.backoff.max_attempts = 3;
    let s = Services::start(t.bus.clone(), cfg.clone()).await;
    let receiver = Receiver::start(&[]).await;
    receiver.set_down(true);
    let sub = s.subscribe(&receiver, json!({})).await;
    s.publish(&surge("sg-dead", "PRK", "study", Q3, "rel-1"))
        .await;

    assert_eq!(wait_record(&s.bus, &sub, "sg-dead").await, Outcome::Failed);
    assert_eq!(receiver.seen(), 3, "max_attempts POSTs, then given up");
    let dead = dead_letters(&s.bus).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].subscription, sub);
    assert_eq!(dead[0].event_id, "sg-dead");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_status, Some(500));
    assert!(dead[0].last_error.starts_with("HTTP 500"));
    let log = s.deliveries(&sub).await;
    assert_eq!(log[0]["outcome"], "failed");

    // Still down: the replay is refused and the dead letter stays.
    let report = borderwatch_notify::replay(s.bus.clone(), cfg.clone(), Some(&sub))
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(receiver.received().is_empty());

    receiver.set_down(false);
    let report = borderwatch_notify::replay(s.bus.clone(), cfg.clone(), None)
        .await
        .unwrap();
    assert_eq!(report.resent, vec![format!("{sub}.sg-dead")]);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id, "sg-dead");
    assert!(verify_signature(
        SECRET.as_bytes(),
        &got[0].body,
        &got[0].signature
    ));
    assert_eq!(
        record_outcome(&s.bus, &sub, "sg-dead").await,
        Some(Outcome::Delivered)
    );

    // A second replay sends nothing.
    let report = borderwatch_notify::replay(s.bus.clone(), cfg, None)
        .await
        .unwrap();
    assert!(report.resent.is_empty() && report.failed.is_empty());
    assert_eq!(report.already_done, 1);
    assert_eq!(receiver.received().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn embedded_max_attempts_exceeded_goes_to_dead_letter_and_replays_once() {
    dead_letter_case(Transport::memory().await).await;
}

#[tokio::test]
async fn nats_max_attempts_exceeded_goes_to_dead_letter_and_replays_once() {
    dead_letter_case(Transport::nats().await).await;
}

async fn digest_case(t: Transport) {
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(&[]).await;
    let sub = s
        .subscribe(&receiver, json!({"digest": {"group_wait_secs": 1}}))
        .await;
    for (i, category) in ["study", "work", "tourism"].iter().enumerate() {
        s.publish(&surge(&format!("sg-d{i}"), "PRK", category, Q3, "rel-7"))
            .await;
    }
    let got = receiver.wait_for(1, "the digest").await;
    // Nothing else follows: one POST for the release.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1);
    let r = &got[0];
    let id = digest_id(&sub, "rel-7");
    assert_eq!(r.event_id, id);
    assert!(verify_signature(SECRET.as_bytes(), &r.body, &r.signature));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["release_id"], "rel-7");
    assert_eq!(body["count"], 3);
    let mut ids: Vec<&str> = body["surges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["sg-d0", "sg-d1", "sg-d2"]);
    assert_eq!(wait_record(&s.bus, &sub, &id).await, Outcome::Delivered);
    assert_eq!(wait_record(&s.bus, &sub, "sg-d1").await, Outcome::Delivered);
    let left = s.bus.kv_keys(names::DIGESTS_BUCKET).await.unwrap();
    assert!(
        left.is_empty(),
        "sent digests leave nothing behind: {left:?}"
    );
    s.stop().await;
}

/// The surges of one story (shared cause) go out in one signed message titled by the story,
/// and a subscription's history in one summary; a continued incident is not sent again.
#[tokio::test]
async fn a_story_and_a_history_load_are_one_message_each() {
    use borderwatch_model::{IncidentUpdate, StoryKind, StoryRef};
    let s = Services::start(Transport::memory().await.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(&[]).await;
    let sub = s.subscribe(&receiver, json!({"filter": {}})).await;
    let story = StoryRef {
        id: "st-1".into(),
        kind: StoryKind::Category,
        title: "Entries rose for 3 countries at once in 2024-Q3: Peru, Chile and Mexico".into(),
        members: 3,
    };
    for (i, country) in ["PER", "CHL", "MEX"].iter().enumerate() {
        let mut e = surge(&format!("sg-s{i}"), country, "total", Q3, "rel-8");
        e.story = Some(story.clone());
        s.publish(&e).await;
    }
    let mut continued = surge("sg-c", "PRK", "study", Q3, "rel-8");
    continued.incident_update = IncidentUpdate::Continued;
    s.publish(&continued).await;
    for i in 0..4 {
        let mut e = surge(&format!("sg-h{i}"), "PRK", "work", Q3, "rel-9");
        e.historical = true;
        e.period = Q3.offset(-i);
        s.publish(&e).await;
    }
    let got = receiver.wait_for(2, "the story and the summary").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "one message each, nothing else"
    );
    let bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let told = bodies
        .iter()
        .find(|b| b["story"]["id"] == "st-1")
        .expect("the story's message");
    assert_eq!(told["count"], 3);
    assert_eq!(told["story"]["title"], story.title.as_str());
    let summary = bodies
        .iter()
        .find(|b| b["history"] == true)
        .expect("the history summary");
    assert_eq!(summary["count"], 4);
    assert_eq!(summary["series"], 1);
    assert!(
        got.iter()
            .all(|r| verify_signature(SECRET.as_bytes(), &r.body, &r.signature))
    );
    assert!(
        record_outcome(&s.bus, &sub, "sg-c").await.is_none(),
        "a continued incident is not sent"
    );
    s.stop().await;
}

/// An incident's closing notice reaches only the subscriptions that asked for it.
#[tokio::test]
async fn a_closing_notice_goes_to_subscriptions_that_ask_for_it() {
    use borderwatch_model::IncidentUpdate;
    let s = Services::start(Transport::memory().await.bus.clone(), fast_config()).await;
    let wants = Receiver::start(&[]).await;
    let quiet = Receiver::start(&[]).await;
    let sub = s.subscribe(&wants, json!({"resolved": true})).await;
    let other = s.subscribe(&quiet, json!({})).await;
    let mut closing = surge("rs-1", "PRK", "study", Q3, "rel-11");
    closing.incident_update = IncidentUpdate::Closed;
    closing.incident_id = Some("in-1".into());
    s.publish(&closing).await;
    let got = wants.wait_for(1, "the closing notice").await;
    assert_eq!(got[0].event_id, "rs-1");
    assert_eq!(wait_record(&s.bus, &sub, "rs-1").await, Outcome::Delivered);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(quiet.received().is_empty(), "not asked for, not sent");
    assert!(record_outcome(&s.bus, &other, "rs-1").await.is_none());
    s.stop().await;
}

/// A fall reaches only the subscriptions that ask for falls; a surge reaches both.
#[tokio::test]
async fn falls_go_only_to_subscriptions_that_ask_for_them() {
    use borderwatch_model::Direction;
    let s = Services::start(Transport::memory().await.bus.clone(), fast_config()).await;
    let wants = Receiver::start(&[]).await;
    let quiet = Receiver::start(&[]).await;
    let sub = s.subscribe(&wants, json!({"falls": true})).await;
    let other = s.subscribe(&quiet, json!({})).await;
    let mut fall = surge("sg-fall", "PRK", "study", Q3, "rel-12");
    fall.direction = Direction::Fall;
    s.publish(&fall).await;
    let got = wants.wait_for(1, "the fall").await;
    assert_eq!(got[0].event_id, "sg-fall");
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["direction"], "fall", "{body}");
    assert_eq!(
        wait_record(&s.bus, &sub, "sg-fall").await,
        Outcome::Delivered
    );
    // A surge after it goes to both: the quiet one was not skipping everything.
    s.publish(&surge("sg-rise", "PRK", "study", Q3, "rel-12"))
        .await;
    let seen = quiet.wait_for(1, "the surge").await;
    assert_eq!(seen[0].event_id, "sg-rise", "falls are off by default");
    assert_eq!(quiet.received().len(), 1);
    assert!(record_outcome(&s.bus, &other, "sg-fall").await.is_none());
    s.stop().await;
}

/// A subscription that asks for at most two surges per release gets one message with the two
/// highest scores, and every surge of the release is settled (none comes again later).
#[tokio::test]
async fn max_per_release_sends_the_highest_scores_once() {
    let s = Services::start(Transport::memory().await.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(&[]).await;
    let sub = s
        .subscribe(&receiver, json!({"filter": {}, "max_per_release": 2}))
        .await;
    for (i, (country, score)) in [("PER", 10.0), ("CHL", 40.0), ("MEX", 30.0), ("BRA", 20.0)]
        .iter()
        .enumerate()
    {
        let mut e = surge(&format!("sg-t{i}"), country, "total", Q3, "rel-10");
        e.score = *score;
        s.publish(&e).await;
    }
    let got = receiver.wait_for(1, "the release's message").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1, "one message for the release");
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["count"], 4, "{body}");
    assert_eq!(body["limit"], 2, "{body}");
    let ids: Vec<&str> = body["surges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sg-t1", "sg-t2"], "the highest scores first");
    for id in ["sg-t0", "sg-t1", "sg-t2", "sg-t3"] {
        assert_eq!(
            wait_record(&s.bus, &sub, id).await,
            Outcome::Delivered,
            "{id}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn embedded_digest_sends_one_post_with_every_surge_of_the_release() {
    digest_case(Transport::memory().await).await;
}

#[tokio::test]
async fn nats_digest_sends_one_post_with_every_surge_of_the_release() {
    digest_case(Transport::nats().await).await;
}

#[tokio::test]
async fn pending_digest_is_sent_after_a_restart() {
    let t = Transport::memory().await;
    let receiver = Receiver::start(&[]).await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let sub = s
        .subscribe(
            &receiver,
            json!({"digest": {"group_wait_secs": 2}, "format": "teams"}),
        )
        .await;
    s.publish(&surge("sg-r1", "PRK", "study", Q3, "rel-9"))
        .await;
    s.publish(&surge("sg-r2", "PRK", "work", Q3, "rel-9")).await;
    // Both recorded for the digest, then notify stops before it is due.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t.bus.kv_keys(names::DIGESTS_BUCKET).await.unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "surges not recorded"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    s.stop().await;
    assert!(receiver.received().is_empty());

    let s = Services::start(t.bus.clone(), fast_config()).await;
    let got = receiver.wait_for(1, "the digest after restart").await;
    assert_eq!(got[0].event_id, digest_id(&sub, "rel-9"));
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(
        body["attachments"][0]["content"]["body"][0]["text"],
        "2 surges in release rel-9"
    );
    s.stop().await;
}

/// How many POSTs each event id got (accepted ones).
fn per_event(r: &Receiver) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for p in r.received() {
        *out.entry(p.event_id).or_insert(0) += 1;
    }
    out
}

#[tokio::test]
async fn a_failing_webhook_does_not_hold_back_other_subscriptions() {
    let t = Transport::memory().await;
    let mut cfg = fast_config();
    // Far fewer POST slots than events: a delivery waiting to retry must not hold one.
    cfg.concurrency = 2;
    cfg.backoff.initial = Duration::from_millis(200);
    cfg.backoff.max = Duration::from_millis(400);
    let s = Services::start(t.bus.clone(), cfg).await;
    let failing = Receiver::start(&[]).await;
    failing.set_down(true);
    let healthy = Receiver::start(&[]).await;
    s.subscribe(&failing, json!({})).await;
    s.subscribe(&healthy, json!({})).await;
    for i in 0..20 {
        s.publish(&surge(
            &format!("sg-f{i:02}"),
            "PRK",
            "study",
            Period::Quarter(2000 + i, 1),
            "rel-f",
        ))
        .await;
    }
    let started = tokio::time::Instant::now();
    healthy
        .wait_for(20, "every event at the healthy webhook")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the healthy webhook waited {:?} behind the failing one",
        started.elapsed()
    );
    assert!(
        failing.received().is_empty(),
        "the failing one is still down"
    );
    assert!(
        failing.seen() >= 20,
        "every event was tried at the failing one"
    );
    failing.set_down(false);
    failing.wait_for(20, "every event once it is back").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for r in [&failing, &healthy] {
        let counts = per_event(r);
        assert_eq!(counts.len(), 20);
        assert!(
            counts.values().all(|n| *n == 1),
            "sent once each: {counts:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn events_queued_longer_than_the_ack_wait_are_sent_once() {
    let t = Transport::nats().await;
    let mut cfg = fast_config();
    // One POST at a time, 150 ms each, 20 events: the last waits 3 s, three ack waits.
    cfg.concurrency = 1;
    cfg.ack_wait = Duration::from_secs(1);
    let s = Services::start(t.bus.clone(), cfg).await;
    let receiver = Receiver::start(&[]).await;
    receiver.set_delay(Duration::from_millis(150));
    let sub = s.subscribe(&receiver, json!({})).await;
    for i in 0..20 {
        s.publish(&surge(
            &format!("sg-q{i:02}"),
            "PRK",
            "study",
            Period::Quarter(2000 + i, 1),
            "rel-q",
        ))
        .await;
    }
    receiver.wait_for(20, "every event").await;
    // Long enough for a redelivered copy to be sent too, if one were.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.seen(), 20, "no event was POSTed twice");
    assert!(per_event(&receiver).values().all(|n| *n == 1));
    assert_eq!(
        wait_record(&s.bus, &sub, "sg-q19").await,
        Outcome::Delivered
    );
    s.stop().await;
}

#[tokio::test]
async fn a_new_subscription_takes_effect_within_the_cache_age() {
    let t = Transport::memory().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let first = Receiver::start(&[]).await;
    s.subscribe(&first, json!({})).await;
    s.publish(&surge("sg-c1", "PRK", "study", Q3, "rel-c"))
        .await;
    first.wait_for(1, "the first event").await;
    // Created after the cache was loaded: seen once the copy is older than its max age.
    let second = Receiver::start(&[]).await;
    s.subscribe(&second, json!({})).await;
    tokio::time::sleep(NotifyConfig::default().cache_max_age + Duration::from_millis(100)).await;
    s.publish(&surge("sg-c2", "PRK", "work", Q3, "rel-c")).await;
    let got = second.wait_for(1, "the event after the subscription").await;
    assert_eq!(got[0].event_id, "sg-c2");
    s.stop().await;
}

#[tokio::test]
async fn an_event_reaches_more_subscriptions_than_deliveries_allowed_at_once() {
    let t = Transport::memory().await;
    let mut cfg = fast_config();
    cfg.concurrency = 1;
    cfg.max_deliveries = 2;
    let s = Services::start(t.bus.clone(), cfg).await;
    let mut receivers = Vec::new();
    for _ in 0..6 {
        let r = Receiver::start(&[]).await;
        s.subscribe(&r, json!({})).await;
        receivers.push(r);
    }
    s.publish(&surge("sg-many", "PRK", "study", Q3, "rel-m"))
        .await;
    for r in &receivers {
        let got = r.wait_for(1, "the event").await;
        assert_eq!(got[0].event_id, "sg-many");
    }
    s.stop().await;
}

/// A receiver's `429` with `Retry-After` as an HTTP-date holds the retry until that time,
/// though the retry policy alone would retry within 100 ms.
#[tokio::test]
async fn a_retry_after_http_date_holds_the_retry_until_then() {
    let t = Transport::nats().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(borderwatch_test_support::webhook::Behaviour {
        throttle_first: 1,
        retry_after_secs: 2,
        retry_after_date: true,
        ..Default::default()
    })
    .await;
    let sub = s.subscribe(&receiver, json!({})).await;
    s.publish(&surge("sg-date", "PRK", "study", Q3, "rel-1"))
        .await;
    assert_eq!(
        wait_record(&t.bus, &sub, "sg-date").await,
        Outcome::Delivered
    );
    let got = receiver.attempts();
    assert_eq!(got.iter().map(|a| a.status).collect::<Vec<_>>(), [429, 200]);
    // The date is the whole second at least 2 s after the 429: the retry waits for it.
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "retried {gap:?} after a Retry-After 2 s ahead"
    );
    s.stop().await;
}
