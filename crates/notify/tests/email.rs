//! Email subscriptions against a real SMTP server (aiosmtpd, which `.ci/run` installs),
//! on loopback: a surge reaches the mailbox once, with its headline, evidence and links; an
//! SMTP server down at first gets the message once it is up (retried like a webhook); a
//! digest is one email; without SMTP settings the message is given up at once, to the
//! dead-letter stream.

mod support;

use std::time::Duration;

use borderwatch_bus::{Bus, Outgoing, names};
use borderwatch_model::{Finding, Period, Subscription, SurgeEvent, now_rfc3339};
use borderwatch_notify::SmtpConfig;
use borderwatch_notify::record::{Outcome, read_record};
use borderwatch_test_support::smtp::free_port;
use borderwatch_test_support::{Mail, SmtpServer};
use serde_json::{Value, json};
use support::{Services, Transport, fast_config, surge};

const PUBLIC: &str = "https://bw.example.org";
const TO: &str = "mailto:desk@example.org,night.desk@example.org";

fn smtp(url: String) -> Option<SmtpConfig> {
    Some(SmtpConfig {
        url,
        from: "borderwatch <alerts@bw.example.org>".into(),
        password: None,
    })
}

/// Stores an email subscription to [`TO`] for PRK, with `extra` fields, as the gateway
/// does; returns its id.
async fn subscribe(bus: &Bus, extra: Value) -> String {
    let id = format!("sub-{:032x}", rand::random::<u128>());
    let mut body = json!({
        "id": id,
        "created_at": now_rfc3339(),
        "filter": {"countries": ["PRK"]},
        "webhook": {"url": TO},
        "format": "email",
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let sub: Subscription = serde_json::from_value(body).unwrap();
    bus.kv_put(
        names::SUBSCRIPTIONS_BUCKET,
        &sub.id,
        serde_json::to_vec(&sub).unwrap().into(),
    )
    .await
    .unwrap();
    id
}

/// Polls the delivery record of (sub, event) until it exists.
async fn wait_record(
    bus: &Bus,
    sub: &str,
    event: &str,
) -> borderwatch_notify::record::DeliveryRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = read_record(bus, sub, event).await.unwrap() {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery record for {sub}/{event}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The headline case, with a statistical finding to print.
fn headline() -> SurgeEvent {
    let mut e = surge("sg-em-1", "PRK", "study", Period::Quarter(2024, 3), "rel-1");
    e.explanation = "3,765 entries of North Korean citizens for study in 2024-Q3: more than in \
                     the whole of 2019 (3,200)"
        .into();
    e.findings.push(Finding {
        detector: "farrington".into(),
        expected: Some(412.0),
        upper_bound: Some(1210.0),
        p_value: Some(0.0123),
        message: "above the band".into(),
        baseline: None,
    });
    e
}

/// Publishes `e` under a message id of its own, as a redelivery or a second copy would come.
async fn publish_as(bus: &Bus, e: &SurgeEvent, msg_id: &str) {
    let msg = Outgoing::new(
        names::surge_subject(e.country.code(), &e.category),
        serde_json::to_vec(e).unwrap(),
    )
    .with_id(msg_id.to_string());
    bus.publish(msg).await.unwrap();
}

fn check_headline_mail(m: &Mail, sub: &str) {
    let header = |n: &str| m.header(n).unwrap_or_else(|| panic!("no {n}: {m:#?}"));
    assert_eq!(
        header("Subject"),
        "[borderwatch] HIGH surge: fsb/PRK/study 2024-Q3"
    );
    assert_eq!(
        header("Message-ID"),
        format!("<sg-em-1.{sub}@bw.example.org>")
    );
    assert_eq!(header("X-Borderwatch-Event-Id"), "sg-em-1");
    assert_eq!(header("From"), "borderwatch <alerts@bw.example.org>");
    assert_eq!(header("To"), "desk@example.org, night.desk@example.org");
    assert_eq!(
        header("X-RcptTo"),
        "desk@example.org, night.desk@example.org",
        "the envelope has both recipients"
    );
    for want in [
        "3,765 entries of North Korean citizens for study in 2024-Q3: more than in the whole of 2019 (3,200)",
        "farrington, expected 412, upper bound 1,210, p-value 0.0123: above the band",
        "View the evidence: https://bw.example.org/series/fsb/PRK/study?surge=sg-em-1#chart",
        "Chart: https://bw.example.org/v1/series/fsb/PRK/study/chart.png?period=2024-Q3",
    ] {
        assert!(
            m.text.contains(want),
            "{want:?} in the text part:\n{}",
            m.text
        );
    }
    assert!(
        m.html.contains(
            "<a href=\"https://bw.example.org/series/fsb/PRK/study?surge=sg-em-1#chart\">View the evidence</a>"
        ),
        "{}",
        m.html
    );
    assert!(
        m.html.contains(
            "<img src=\"https://bw.example.org/v1/series/fsb/PRK/study/chart.png?period=2024-Q3\""
        ),
        "{}",
        m.html
    );
}

async fn surge_reaches_the_mailbox_once(t: Transport) {
    let server = SmtpServer::start();
    let mut cfg = fast_config();
    cfg.public_url = Some(PUBLIC.into());
    cfg.smtp = smtp(server.url());
    let s = Services::start(t.bus.clone(), cfg).await;
    let sub = subscribe(&s.bus, json!({})).await;
    let e = headline();
    s.publish(&e).await;
    let got = server.wait_messages(1, Duration::from_secs(30)).await;
    check_headline_mail(&got[0], &sub);
    let rec = wait_record(&s.bus, &sub, &e.id).await;
    assert_eq!(rec.outcome, Outcome::Delivered);
    assert_eq!(rec.status, Some(250), "the SMTP reply code");
    let log = s.deliveries(&sub).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], 250);
    assert_eq!(log[0]["outcome"], "delivered");

    // The same event again (a redelivery, a second copy): its record stops it.
    publish_as(&s.bus, &e, "sg-em-1-again").await;
    let other = surge("sg-em-2", "PRK", "work", Period::Quarter(2024, 3), "rel-1");
    s.publish(&other).await;
    let got = server.wait_messages(2, Duration::from_secs(30)).await;
    wait_record(&s.bus, &sub, "sg-em-2").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_now = server.messages();
    assert_eq!(got_now.len(), 2, "one email per event: {got_now:#?}");
    assert_eq!(got[1].header("X-Borderwatch-Event-Id"), Some("sg-em-2"));
    s.stop().await;
}

#[tokio::test]
async fn embedded_a_surge_reaches_the_mailbox_once() {
    surge_reaches_the_mailbox_once(Transport::memory().await).await;
}

#[tokio::test]
async fn nats_a_surge_reaches_the_mailbox_once() {
    surge_reaches_the_mailbox_once(Transport::nats().await).await;
}

/// The SMTP server is down when the surge comes: the attempts fail and are retried with
/// backoff, logged; once the server is up the email arrives, once.
#[tokio::test]
async fn an_smtp_server_down_then_up_gets_the_email_after_a_retry() {
    let t = Transport::memory().await;
    let port = free_port();
    let mut cfg = fast_config();
    cfg.public_url = Some(PUBLIC.into());
    cfg.smtp = smtp(format!("smtp://127.0.0.1:{port}"));
    cfg.backoff.max_attempts = 10_000;
    let s = Services::start(t.bus.clone(), cfg).await;
    let sub = subscribe(&s.bus, json!({})).await;
    let e = headline();
    s.publish(&e).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let log = s.deliveries(&sub).await;
        if log.len() >= 2 {
            break log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retries: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        failed.iter().all(|a| a["outcome"] == "retrying"),
        "{failed:?}"
    );
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.starts_with("SMTP: "), "{error}");
    assert!(read_record(&s.bus, &sub, &e.id).await.unwrap().is_none());

    let server = SmtpServer::start_on(port);
    let got = server.wait_messages(1, Duration::from_secs(30)).await;
    check_headline_mail(&got[0], &sub);
    let rec = wait_record(&s.bus, &sub, &e.id).await;
    assert_eq!(rec.outcome, Outcome::Delivered);
    assert!(rec.attempts >= 3, "{rec:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.messages().len(), 1, "sent once");
    s.stop().await;
}

/// A subscription with a digest gets one email per release, listing every surge.
#[tokio::test]
async fn a_digest_is_one_email() {
    let t = Transport::memory().await;
    let server = SmtpServer::start();
    let mut cfg = fast_config();
    cfg.smtp = smtp(server.url());
    let s = Services::start(t.bus.clone(), cfg).await;
    let sub = subscribe(&s.bus, json!({"digest": {"group_wait_secs": 1}})).await;
    s.publish(&headline()).await;
    s.publish(&surge(
        "sg-em-3",
        "PRK",
        "work",
        Period::Quarter(2024, 3),
        "rel-1",
    ))
    .await;
    let got = server.wait_messages(1, Duration::from_secs(30)).await;
    let digest = borderwatch_notify::notice::digest_id(&sub, "rel-1");
    let rec = wait_record(&s.bus, &sub, &digest).await;
    assert_eq!(rec.outcome, Outcome::Delivered);
    let m = &got[0];
    assert_eq!(
        m.header("Subject"),
        Some("[borderwatch] 2 surges in release rel-1")
    );
    assert_eq!(m.header("X-Borderwatch-Event-Id"), Some(digest.as_str()));
    assert!(
        m.text.contains("North Korean citizens for study"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("sg-em-3: 3,765 entries for work"),
        "{}",
        m.text
    );
    assert!(
        !m.text.contains("http"),
        "no public URL, no links: {}",
        m.text
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.messages().len(), 1);
    s.stop().await;
}

/// Without SMTP settings an email subscription's message is given up at once, recorded
/// failed with the reason, and kept as a dead letter for a replay.
#[tokio::test]
async fn without_smtp_settings_the_email_is_a_dead_letter_at_once() {
    let t = Transport::memory().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let sub = subscribe(&s.bus, json!({})).await;
    let e = headline();
    s.publish(&e).await;
    let rec = wait_record(&s.bus, &sub, &e.id).await;
    assert_eq!(rec.outcome, Outcome::Failed);
    assert_eq!(rec.attempts, 1);
    assert!(
        rec.error
            .as_deref()
            .unwrap_or_default()
            .contains("no SMTP server configured"),
        "{rec:?}"
    );
    s.stop().await;
}
