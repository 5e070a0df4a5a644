//! Where notify sends, and what it keeps of the answer: private targets refused before any
//! connection (unless allowed), no redirect followed, no answer body kept, and the Standard
//! Webhooks signature a receiver can check. Every receiver is on loopback, and nothing is
//! sent anywhere else: a refusal happens on the address, before connecting.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use borderwatch_model::{Period, verify_signature, verify_standard};
use borderwatch_notify::NotifyConfig;
use borderwatch_notify::record::{Outcome, read_record};
use borderwatch_test_support::Behaviour;
use serde_json::{Value, json};
use support::{Receiver, SECRET, Services, Transport, fast_config, surge};

const Q3: Period = Period::Quarter(2024, 3);

/// Waits up to 20 s until the delivery log of `sub` has at least `n` attempts, and
/// returns it, oldest first.
async fn logged(s: &Services, sub: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut log = s.deliveries(sub).await;
        if log.len() >= n {
            log.reverse();
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} attempts logged for {sub}",
            log.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits up to 20 s for the delivery record of `sub` and `event`.
async fn record(bus: &borderwatch_bus::Bus, sub: &str, event: &str) -> Outcome {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = read_record(bus, sub, event).await.unwrap() {
            return r.outcome;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no record for {sub}/{event}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Without `allow_private_targets`, a subscription stored while they were allowed (or
/// written to the bucket directly) is refused at connect time: an address in any of its
/// spellings, and a name that resolves to loopback. Nothing reaches the receiver, and the
/// delivery is given up at once, with the reason in the log.
#[tokio::test]
async fn private_targets_are_refused_at_connect_time_without_connecting() {
    let t = Transport::memory().await;
    let cfg = NotifyConfig {
        allow_private_targets: false,
        ..fast_config()
    };
    let s = Services::start(t.bus.clone(), cfg).await;
    let receiver = Receiver::start(&[]).await;
    let port = receiver.addr.port();
    let urls = [
        receiver.url("hook"),
        format!("http://0x7f000001:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ];
    let mut subs = Vec::new();
    for url in &urls {
        let sub = s
            .subscribe(
                &receiver,
                json!({"webhook": {"url": url, "secret": SECRET}}),
            )
            .await;
        subs.push(sub);
    }
    s.publish(&surge("sg-private", "PRK", "study", Q3, "rel-1"))
        .await;

    for (sub, url) in subs.iter().zip(&urls) {
        let attempt = logged(&s, sub, 1).await.remove(0);
        let error = attempt["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("refused: ") && error.contains("--webhook-allow-private"),
            "{url}: {attempt}"
        );
        assert_eq!(attempt["outcome"], "failed", "{url}: given up at once");
        assert_eq!(attempt["attempt"], 1, "{url}: not retried");
        assert_eq!(
            record(&t.bus, sub, "sg-private").await,
            Outcome::Failed,
            "{url}"
        );
    }
    let name = s.deliveries(&subs[3]).await.pop().unwrap();
    assert!(
        name["error"]
            .as_str()
            .unwrap()
            .contains("localhost resolves to 127.0.0.1"),
        "{name}"
    );
    // Give a stray connection time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen(), 0, "nothing may reach a refused target");
    s.stop().await;
}

/// A 302 is a failed attempt with its status: the receiver it points to gets nothing.
#[tokio::test]
async fn redirects_are_not_followed() {
    let t = Transport::memory().await;
    let mut cfg = fast_config();
    cfg.backoff.max_attempts = 2;
    let s = Services::start(t.bus.clone(), cfg).await;
    let target = Receiver::start(&[]).await;
    let redirecting = Receiver::start(Behaviour {
        redirect_to: Some(target.url("admin")),
        ..Behaviour::default()
    })
    .await;
    let sub = s.subscribe(&redirecting, json!({})).await;
    s.publish(&surge("sg-redirect", "PRK", "study", Q3, "rel-1"))
        .await;

    redirecting
        .wait_until(Duration::from_secs(20), "two attempts", |a| a.len() >= 2)
        .await;
    let attempt = logged(&s, &sub, 1).await.remove(0);
    assert_eq!(attempt["status"], 302, "{attempt}");
    assert_eq!(
        attempt["error"], "HTTP 302 Found: redirects are not followed",
        "{attempt}"
    );
    assert_eq!(record(&t.bus, &sub, "sg-redirect").await, Outcome::Failed);
    assert_eq!(target.seen(), 0, "the redirect's target got a request");
    s.stop().await;
}

/// A failing receiver's answer body (16 MiB here) is neither read into the log nor kept:
/// the log says the status and its reason only.
#[tokio::test]
async fn error_bodies_are_not_kept() {
    let t = Transport::memory().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(Behaviour {
        fail_first: 1,
        error_body_bytes: 16 << 20,
        ..Behaviour::default()
    })
    .await;
    let sub = s.subscribe(&receiver, json!({})).await;
    s.publish(&surge("sg-body", "PRK", "study", Q3, "rel-1"))
        .await;

    receiver.wait_for(1, "the retry accepted").await;
    let log = logged(&s, &sub, 2).await;
    let failed = log.iter().find(|a| a["status"] == 500).expect("the 500");
    assert_eq!(
        failed["error"], "HTTP 500 Internal Server Error",
        "{failed}"
    );
    let all = serde_json::to_string(&log).unwrap();
    assert!(!all.contains("receiver error body"), "{all}");
    s.stop().await;
}

/// The Standard Webhooks headers of real deliveries: `webhook-id` is the event id on
/// every attempt, `webhook-timestamp` the attempt's time, and `webhook-signature` signs
/// `id.timestamp.body`, as a receiver checks it; the body-only signature is still there.
#[tokio::test]
async fn standard_webhook_signatures_verify_on_every_attempt() {
    let t = Transport::memory().await;
    let s = Services::start(t.bus.clone(), fast_config()).await;
    let receiver = Receiver::start(&[500]).await;
    s.subscribe(&receiver, json!({})).await;
    s.publish(&surge("sg-standard", "PRK", "study", Q3, "rel-1"))
        .await;

    receiver.wait_for(1, "the retry accepted").await;
    let attempts = receiver.attempts();
    assert_eq!(attempts.len(), 2, "a failure, then the delivery");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for a in &attempts {
        let header = |name: &str| a.headers[name].to_str().unwrap().to_string();
        let (id, ts, sig) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        assert_eq!(id, "sg-standard");
        assert_eq!(id, a.event_id);
        let ts: i64 = ts.parse().unwrap();
        assert!((now - ts).abs() <= 60, "timestamp {ts}, now {now}");
        assert!(sig.starts_with("v1,"), "{sig}");
        assert!(verify_standard(SECRET.as_bytes(), &id, ts, &a.body, &sig));
        // A replay under a new timestamp or id does not verify.
        assert!(!verify_standard(
            SECRET.as_bytes(),
            &id,
            ts + 600,
            &a.body,
            &sig
        ));
        assert!(!verify_standard(
            SECRET.as_bytes(),
            "sg-other",
            ts,
            &a.body,
            &sig
        ));
        assert!(!verify_standard(b"wrong secret", &id, ts, &a.body, &sig));
        assert!(verify_signature(SECRET.as_bytes(), &a.body, &a.signature));
    }
    s.stop().await;
}

/// A POST that gets no answer is logged with what failed, not with the URL: its userinfo
/// and path are often the secret.
#[tokio::test]
async fn network_errors_do_not_log_the_url() {
    let t = Transport::memory().await;
    let mut cfg = fast_config();
    cfg.backoff.max_attempts = 1;
    let s = Services::start(t.bus.clone(), cfg).await;
    let receiver = Receiver::start(&[]).await;
    // A loopback port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://user:pa55word@127.0.0.1:{port}/services/T0/XXXX?token=abc");
    let sub = s
        .subscribe(
            &receiver,
            json!({"webhook": {"url": url, "secret": SECRET}}),
        )
        .await;
    s.publish(&surge("sg-closed", "PRK", "study", Q3, "rel-1"))
        .await;

    let attempt = logged(&s, &sub, 1).await.remove(0);
    let error = attempt["error"].as_str().unwrap();
    assert!(error.starts_with("could not connect: "), "{attempt}");
    for secret in ["pa55word", "XXXX", "token=abc", "services"] {
        assert!(!error.contains(secret), "{secret} in {error}");
    }
    s.stop().await;
}
