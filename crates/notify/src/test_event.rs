//! A test event for one subscription (`POST /v1/subscriptions/{id}/test`): a surge-shaped
//! example rendered in the subscription's format with `"test": true` added, signed and
//! POSTed once through the same `attempt::post` every delivery uses, and logged in the delivery
//! log like any attempt. Nothing is recorded as delivered and nothing is retried: the
//! answer says at once whether the receiver took it.

use borderwatch_bus::{Bus, BusError};
use borderwatch_model::{
    Country, Finding, Period, Severity, Subscription, SurgeEvent, now_rfc3339,
};
use serde_json::Value;

use crate::attempt::log;
use crate::channel;
use crate::config::NotifyConfig;
use crate::ctx::Ctx;
use crate::notice::Notice;
use crate::record::Outcome;
use crate::template;

/// What the one POST of a test event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSent {
    /// `test-…`: its `X-Borderwatch-Event-Id` and its line in the delivery log.
    pub event_id: String,
    /// `Delivered` (2xx) or `Failed`.
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// Sends a test event to `sub` once and logs the attempt.
pub async fn send_test(
    bus: Bus,
    cfg: NotifyConfig,
    sub: &Subscription,
) -> Result<TestSent, BusError> {
    let ctx = Ctx::new(bus, cfg)?;
    let event = example(sub);
    let id = event.id.clone();
    let notice = Notice::Surge(event);
    let mut body = template::render_value_with(
        sub.format,
        &notice,
        ctx.cfg.public_url.as_deref(),
        ctx.cfg.chart_images,
    );
    if let Value::Object(o) = &mut body {
        o.insert("test".into(), Value::Bool(true));
    }
    let body = serde_json::to_vec(&body).unwrap_or_default();
    // An email's subject says TEST (its id starts `test-`).
    let a = channel::attempt(&ctx, sub, &notice, &body).await;
    let outcome = if a.ok() {
        Outcome::Delivered
    } else {
        Outcome::Failed
    };
    log(&ctx, &sub.id, &id, 1, &a, outcome).await;
    Ok(TestSent {
        event_id: id,
        outcome,
        status: a.status,
        error: a.error,
        latency_ms: a.latency_ms,
    })
}

/// A surge as the subscription could be sent one: the headline case (North Korean
/// students at Russia's border, 2024-Q3), moved to the first country, category and source
/// its filter names so that a receiver routing on them sees its own.
pub fn example(sub: &Subscription) -> SurgeEvent {
    let f = &sub.filter;
    let country = f
        .countries
        .first()
        .copied()
        .or_else(|| Country::parse("PRK").ok())
        .expect("PRK is a country");
    let category = f
        .categories
        .first()
        .cloned()
        .unwrap_or_else(|| "study".into());
    let source = f.sources.first().cloned().unwrap_or_else(|| "fsb".into());
    let severity = f.min_severity.max(Severity::High);
    SurgeEvent {
        id: format!("test-{:020x}", rand::random::<u128>() >> 48),
        source,
        country,
        category,
        period: Period::Quarter(2024, 3),
        value: 3765,
        severity,
        explanation: "This is a test event from borderwatch: the figures are an example, not \
                      a surge."
            .into(),
        findings: vec![Finding {
            detector: f
                .detectors
                .first()
                .cloned()
                .unwrap_or_else(|| "record_high".into()),
            expected: Some(950.0),
            upper_bound: Some(1200.0),
            p_value: None,
            message: "the highest quarter on record (an example)".into(),
            baseline: None,
        }],
        release_id: "rel-test".into(),
        detected_at: now_rfc3339(),
        score: 90.0,
        direction: Default::default(),
        historical: false,
        incident_id: None,
        incident_update: Default::default(),
        story: None,
        url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::{SubscriptionFilter, Webhook};

    #[test]
    fn the_example_takes_the_subscriptions_own_names() {
        let mut sub = Subscription {
            id: "sub-1".into(),
            filter: SubscriptionFilter {
                countries: vec![Country::parse("CHN").unwrap()],
                categories: vec!["work".into()],
                min_severity: Severity::Critical,
                ..Default::default()
            },
            webhook: Webhook {
                url: "http://127.0.0.1:1/".into(),
                secret: Some("s".into()),
            },
            created_at: String::new(),
            format: Default::default(),
            digest: None,
            history: Default::default(),
            max_per_release: None,
            resolved: false,
            falls: false,
            kinds: borderwatch_model::default_kinds(),
            matchers: Default::default(),
        };
        let e = example(&sub);
        assert!(e.id.starts_with("test-") && e.id.len() == 25, "{}", e.id);
        assert!(
            sub.wants(&e),
            "the example passes its own subscription's filter"
        );
        sub.filter = SubscriptionFilter::default();
        let e = example(&sub);
        assert_eq!((e.country.code(), e.category.as_str()), ("PRK", "study"));
        assert_ne!(e.id, example(&sub).id);
    }
}
