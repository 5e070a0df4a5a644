//! Revisions and missing categories as event kinds, and subscription matchers, on a real
//! nats-server and on the in-process bus. Revisions and missing categories are published as
//! ingest publishes them (the model's `Revision` and `MissingCategory` on
//! `bw.revision.<source>.<country>.<category>` and `bw.missing.<source>.<category>`, into
//! `BW_REVISIONS` and `BW_MISSING`); each test has a receiver per subscription, so that "got
//! none" is checked on its own receiver. Revisions go out one message per (subscription,
//! release), once the release's revisions stopped coming (`history_wait`, 500 ms here).

mod support;

use std::time::Duration;

use borderwatch_bus::{Bus, Outgoing, names};
use borderwatch_model::{Country, MissingCategory, Period, Revision, verify_signature};
use borderwatch_notify::record::{Outcome, read_record};
use serde_json::{Value, json};
use support::{Receiver, SECRET, Services, Transport, fast_config, surge};

fn revision(country: &str, category: &str, period: Period) -> Revision {
    Revision {
        source: "fsb".into(),
        country: Country::parse(country).unwrap(),
        category: category.into(),
        period,
        old_count: 950,
        new_count: 1020,
        old_release_id: "rel-old".into(),
        release_id: "rel-new".into(),
    }
}

/// Publishes `r` as ingest does; `copy` makes a distinct message id (a second copy on the
/// stream, as a redelivery or a re-announcement past the duplicate window would be).
async fn publish_revision(bus: &Bus, r: &Revision, copy: u32) {
    let msg = Outgoing::new(
        names::revision_subject(&r.source, r.country.code(), &r.category),
        serde_json::to_vec(r).unwrap(),
    )
    .with_id(format!(
        "{}:{}:{}:{}:{copy}",
        r.release_id,
        r.country.code(),
        r.category,
        r.period
    ));
    bus.publish(msg).await.unwrap();
}

async fn publish_missing(bus: &Bus, m: &MissingCategory) {
    let msg = Outgoing::new(
        names::missing_subject(&m.source, &m.category),
        serde_json::to_vec(m).unwrap(),
    )
    .with_id(format!("{}:{}:{}", m.release_id, m.source, m.category));
    bus.publish(msg).await.unwrap();
}

/// Waits until `sub`'s delivery record of `event` exists.
async fn wait_record(bus: &Bus, sub: &str, event: &str) -> Outcome {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = read_record(bus, sub, event).await.unwrap() {
            return r.outcome;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery record for {sub}/{event}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Time for a delivery that should not happen to have happened.
async fn settle_a_while() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn a_revision_reaches_the_subscriptions_that_take_revisions_once_and_signed() {
    let t = Transport::nats().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let (takes, surges_only, other_country, am) = (
        Receiver::start(&[]).await,
        Receiver::start(&[]).await,
        Receiver::start(&[]).await,
        Receiver::start(&[]).await,
    );
    let sub = s.subscribe(&takes, json!({"kinds": ["revision"]})).await;
    s.subscribe(&surges_only, json!({})).await;
    s.subscribe(
        &other_country,
        json!({"kinds": ["surge", "revision"], "filter": {}, "matchers": ["country!=PRK"]}),
    )
    .await;
    s.subscribe(
        &am,
        json!({"kinds": ["revision"], "format": "alertmanager"}),
    )
    .await;

    let r = revision("PRK", "study", Period::Quarter(2024, 2));
    publish_revision(&t.bus, &r, 0).await;
    // The same revision twice on the stream is still one delivery.
    publish_revision(&t.bus, &r, 1).await;

    let got = takes.wait_for(1, "the revision's batch").await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["kind"], "revisions");
    assert_eq!(body["count"], 1);
    assert_eq!(body["release_id"], "rel-new");
    let one = &body["revisions"][0];
    assert_eq!(one["kind"], "revision");
    assert_eq!(one["old_count"], 950);
    assert_eq!(one["new_count"], 1020);
    assert_eq!(one["old_release_id"], "rel-old");
    assert_eq!(one["country"], "PRK");
    assert_eq!(one["period"], "2024-Q2");
    assert_eq!(body["id"], got[0].event_id);
    assert!(got[0].event_id.starts_with("rb-"));
    assert!(verify_signature(
        SECRET.as_bytes(),
        &got[0].body,
        &got[0].signature
    ));
    assert_eq!(
        wait_record(&t.bus, &sub, &got[0].event_id).await,
        Outcome::Delivered
    );
    let alert = am.wait_for(1, "the alertmanager body").await;
    let alert: Value = serde_json::from_slice(&alert[0].body).unwrap();
    assert_eq!(alert["version"], "4");
    assert_eq!(
        alert["alerts"][0]["labels"]["alertname"],
        "BorderwatchRevision"
    );
    assert_eq!(alert["alerts"][0]["labels"]["country"], "PRK");

    settle_a_while().await;
    assert_eq!(takes.accepted_count(), 1, "one revision, one POST");
    // The revision's own record names the batch it went out in.
    let member = read_record(&t.bus, &sub, one["id"].as_str().unwrap())
        .await
        .unwrap()
        .expect("the revision's record");
    assert_eq!(member.digest.as_deref(), Some(got[0].event_id.as_str()));
    assert_eq!(surges_only.seen(), 0, "a surge-only subscription gets none");
    assert_eq!(
        other_country.seen(),
        0,
        "country!=PRK selects no PRK revision"
    );
    // The delivery log has it, as for a surge.
    let log = s.deliveries(&sub).await;
    assert_eq!(log[0]["event_id"], got[0].event_id.as_str());
    assert_eq!(log[0]["outcome"], "delivered");
    s.stop().await;
}

#[tokio::test]
async fn a_missing_category_reaches_its_subscribers_with_the_countries_they_select() {
    let t = Transport::memory().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let (takes, surges_only) = (Receiver::start(&[]).await, Receiver::start(&[]).await);
    s.subscribe(
        &takes,
        json!({"kinds": ["missing"], "filter": {}, "matchers": ["country!=PRK"], "format": "json"}),
    )
    .await;
    s.subscribe(&surges_only, json!({"filter": {}})).await;

    let m = MissingCategory {
        source: "fsb".into(),
        category: "study".into(),
        countries: vec![
            Country::parse("PRK").unwrap(),
            Country::parse("CHN").unwrap(),
        ],
        last_period: Period::Quarter(2024, 3),
        release_first_period: Period::Quarter(2024, 4),
        release_last_period: Period::Quarter(2024, 4),
        release_id: "rel-new".into(),
    };
    publish_missing(&t.bus, &m).await;
    // Nothing this subscription selects: no POST.
    let only_prk = MissingCategory {
        category: "work".into(),
        countries: vec![Country::parse("PRK").unwrap()],
        ..m.clone()
    };
    publish_missing(&t.bus, &only_prk).await;

    let got = takes.wait_for(1, "the missing category").await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["kind"], "missing");
    assert_eq!(body["category"], "study");
    assert_eq!(body["countries"], json!(["CHN"]));
    assert_eq!(body["last_period"], "2024-Q3");
    assert!(got[0].event_id.starts_with("ms-"));
    assert!(verify_signature(
        SECRET.as_bytes(),
        &got[0].body,
        &got[0].signature
    ));
    settle_a_while().await;
    assert_eq!(takes.accepted_count(), 1);
    assert_eq!(surges_only.seen(), 0);
    s.stop().await;
}

#[tokio::test]
async fn matchers_select_surges_beyond_equality() {
    let t = Transport::nats().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(&[]).await;
    s.subscribe(
        &receiver,
        json!({"filter": {}, "matchers": ["country!=CHN", "category=~\"stud.*|work\""]}),
    )
    .await;
    let q3 = Period::Quarter(2024, 3);
    for (id, country, category) in [
        ("sg-prk-study", "PRK", "study"),
        ("sg-chn-study", "CHN", "study"),
        ("sg-prk-tourism", "PRK", "tourism"),
        ("sg-vnm-work", "VNM", "work"),
        ("sg-vnm-homework", "VNM", "homework"),
    ] {
        s.publish(&surge(id, country, category, q3, "rel-1")).await;
    }
    receiver.wait_for(2, "the two matching surges").await;
    settle_a_while().await;
    let mut ids: Vec<String> = receiver.accepted_per_event().into_keys().collect();
    ids.sort();
    assert_eq!(ids, ["sg-prk-study", "sg-vnm-work"]);
    assert_eq!(receiver.accepted_count(), 2);
    s.stop().await;
}

#[tokio::test]
async fn a_revision_given_up_is_a_dead_letter_and_replays_as_a_revision() {
    let t = Transport::memory().await;
    let mut cfg = fast_config();
    cfg.backoff.max_attempts = 2;
    let s = Services::start(t.bus.clone(), cfg.clone()).await;
    let receiver = Receiver::start(&[]).await;
    receiver.set_down(true);
    let sub = s.subscribe(&receiver, json!({"kinds": ["revision"]})).await;
    publish_revision(
        &t.bus,
        &revision("PRK", "study", Period::Quarter(2024, 1)),
        0,
    )
    .await;
    let id = support::eventually(Duration::from_secs(20), "two failed attempts", || {
        let a = receiver.attempts();
        (a.len() >= 2).then(|| a[0].event_id.clone())
    })
    .await;
    assert_eq!(wait_record(&t.bus, &sub, &id).await, Outcome::Failed);
    assert_eq!(receiver.seen(), 2, "max_attempts POSTs, then given up");

    receiver.set_down(false);
    let report = borderwatch_notify::replay(s.bus.clone(), cfg, None)
        .await
        .unwrap();
    assert_eq!(report.resent, vec![format!("{sub}.{id}")]);
    let got = receiver.accepted();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["kind"], "revisions");
    assert_eq!(body["count"], 1);
    assert_eq!(body["id"], id.as_str());
    assert!(verify_signature(
        SECRET.as_bytes(),
        &got[0].body,
        &got[0].signature
    ));
    s.stop().await;
}

/// Revision `i` of 1..=n of `release`: the changes grow with `i` (the largest is the
/// last), and revision 1 is from a tiny figure, so its relative change is the largest.
fn numbered(release: &str, i: u32) -> Revision {
    let mut r = revision("PRK", &format!("cat{i:03}"), Period::Quarter(2024, 1));
    r.release_id = release.into();
    if i == 1 {
        (r.old_count, r.new_count) = (2, 40);
    } else {
        (r.old_count, r.new_count) = (10_000, 10_000 + u64::from(i) * 3);
    }
    r
}

/// Publishes revisions 1..=n of `release` as ingest does, in one batch.
async fn publish_release(bus: &Bus, release: &str, n: u32, copy: u32) {
    let msgs = (1..=n)
        .map(|i| {
            let r = numbered(release, i);
            Outgoing::new(
                names::revision_subject(&r.source, r.country.code(), &r.category),
                serde_json::to_vec(&r).unwrap(),
            )
            .with_id(format!("{release}:{i}:{copy}"))
        })
        .collect();
    bus.publish_all(msgs).await.unwrap();
}

#[tokio::test]
async fn a_release_of_500_revisions_is_one_message_and_stays_one_when_redelivered() {
    let t = Transport::nats().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let (json_rx, slack_rx) = (Receiver::start(&[]).await, Receiver::start(&[]).await);
    let sub = s.subscribe(&json_rx, json!({"kinds": ["revision"]})).await;
    s.subscribe(&slack_rx, json!({"kinds": ["revision"], "format": "slack"}))
        .await;
    publish_release(&t.bus, "rel-year", 500, 0).await;
    // Copies while the batch waits: the same revisions, not more of them.
    publish_release(&t.bus, "rel-year", 500, 1).await;

    let got = json_rx.wait_for(1, "the release's batch").await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["kind"], "revisions");
    assert_eq!(body["release_id"], "rel-year");
    assert_eq!(body["count"], 500);
    assert_eq!(body["listed"], 500);
    let listed = body["revisions"].as_array().unwrap();
    assert_eq!(listed.len(), 500);
    // Largest absolute change first: revision 500 (+1,500), then 499.
    assert_eq!(listed[0]["category"], "cat500");
    assert_eq!(listed[1]["category"], "cat499");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "The largest changes: fsb/PRK/cat500 2024-Q1: 10,000 to 11,500 (+1,500, +15%)"
        ),
        "{text}"
    );
    // The largest relative change (2 to 40) is named though its absolute change is small.
    assert!(
        text.contains("relative changes besides: fsb/PRK/cat001 2024-Q1: 2 to 40 (+38, +1900%)"),
        "{text}"
    );
    assert!(verify_signature(
        SECRET.as_bytes(),
        &got[0].body,
        &got[0].signature
    ));
    let slack = slack_rx.wait_for(1, "the slack batch").await;
    let slack: Value = serde_json::from_slice(&slack[0].body).unwrap();
    assert_eq!(
        slack["blocks"][0]["text"]["text"],
        "500 revised figures in release rel-year"
    );

    // Every revision's record points at the batch: a redelivery after it went out is known.
    let batch = got[0].event_id.clone();
    for r in listed {
        assert_eq!(
            wait_record(&t.bus, &sub, r["id"].as_str().unwrap()).await,
            Outcome::Delivered
        );
    }
    assert_eq!(wait_record(&t.bus, &sub, &batch).await, Outcome::Delivered);
    publish_release(&t.bus, "rel-year", 500, 2).await;
    // Twice the batch wait and more, with the 500 copies handled meanwhile.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        json_rx.accepted_count(),
        1,
        "one batch, however often redelivered"
    );
    assert_eq!(slack_rx.accepted_count(), 1);
    let log = s.deliveries(&sub).await;
    assert_eq!(log.len(), 1, "{log:?}");
    s.stop().await;
}

#[tokio::test]
async fn two_releases_are_two_messages() {
    let t = Transport::nats().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let rx = Receiver::start(&[]).await;
    s.subscribe(
        &rx,
        json!({"kinds": ["revision"], "matchers": ["category!=cat003"]}),
    )
    .await;
    publish_release(&t.bus, "rel-a", 20, 0).await;
    publish_release(&t.bus, "rel-b", 7, 0).await;
    let got = rx.wait_for(2, "a batch per release").await;
    let mut counts: Vec<(String, u64)> = got
        .iter()
        .map(|g| {
            let v: Value = serde_json::from_slice(&g.body).unwrap();
            (
                v["release_id"].as_str().unwrap().to_string(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect();
    counts.sort();
    // The matcher leaves cat003 out of each.
    assert_eq!(
        counts,
        [("rel-a".to_string(), 19), ("rel-b".to_string(), 6)]
    );
    assert_ne!(got[0].event_id, got[1].event_id);
    settle_a_while().await;
    assert_eq!(rx.accepted_count(), 2);
    s.stop().await;
}
