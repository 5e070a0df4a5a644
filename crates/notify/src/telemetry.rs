//! What notify tells an operator through `/metrics`: how long a notice took from its surge
//! to the receiver's 2xx, how far each of its consumers (surges, revisions, missing categories)
//! is behind, how many dead letters wait
//! for a replay, and how many silences are in force.
//!
//! The histogram is recorded as each notice is delivered; the gauges are sampled every
//! `SAMPLE_EVERY` by `run_sampler`, which every notify replica runs (they read shared
//! state, so every replica reports the same values: alert on `max`, not `sum`).
//!
//! Imports `ctx`, `deadletter` (the dead letters still to replay), `notice` and `silence`.

use std::time::Duration;

use borderwatch_bus::names;
use borderwatch_model::{PayloadFormat, SurgeEvent};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::ctx::Ctx;
use crate::deadletter;
use crate::notice::Notice;
use crate::silence;

/// How often the gauges are sampled: well inside a usual scrape interval, and cheap (the
/// consumer's info, the cached silences, and the dead letters only when they changed).
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Seconds, for `borderwatch_notification_latency_seconds`: a surge delivered at once takes
/// well under a second after analytics announced it; digests wait their `group_wait_secs`;
/// retries stretch it to hours.
pub const NOTIFICATION_LATENCY_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

/// Records the time from `notice`'s surge to now (its receiver's 2xx), by the receiver's
/// format and the kind of notice: never by URL or subscription, so the series stay few.
/// A digest or story counts from its earliest surge: the release's arrival, near enough.
pub(crate) fn record_latency(format: PayloadFormat, notice: &Notice) {
    let Some(since) = announced_at(notice) else {
        return;
    };
    let seconds = (OffsetDateTime::now_utc() - since)
        .as_seconds_f64()
        .max(0.0);
    metrics::histogram!(
        "borderwatch_notification_latency_seconds",
        "format" => format_label(format),
        "notice" => notice_label(notice),
    )
    .record(seconds);
}

/// When the notice's (earliest) surge was announced; `None` when no time can be read.
fn announced_at(notice: &Notice) -> Option<OffsetDateTime> {
    let at = |e: &SurgeEvent| OffsetDateTime::parse(&e.detected_at, &Rfc3339).ok();
    match notice {
        Notice::Surge(e) => at(e),
        Notice::Digest(d) => d.surges.iter().filter_map(at).min(),
        Notice::Revision(_) | Notice::Revisions(_) | Notice::Missing(_) => None,
    }
}

/// `json`, `slack`, …: the format as subscriptions name it.
fn format_label(format: PayloadFormat) -> String {
    serde_json::to_value(format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// `surge`, `digest`, `story`, `history`, `top`, `revision`, `revisions` or `missing`.
fn notice_label(notice: &Notice) -> &'static str {
    match notice {
        Notice::Surge(_) => "surge",
        Notice::Digest(d) if d.story.is_some() => "story",
        Notice::Digest(d) if d.history => "history",
        Notice::Digest(d) if d.limit.is_some() => "top",
        Notice::Digest(_) => "digest",
        Notice::Revision(_) => "revision",
        Notice::Revisions(_) => "revisions",
        Notice::Missing(_) => "missing",
    }
}

/// Samples the gauges every [`SAMPLE_EVERY`] until `cancel` fires. A failed read leaves a
/// gauge at its last value and is logged; the next sample tries again.
pub(crate) async fn run_sampler(ctx: Ctx, cancel: CancellationToken) {
    let mut dead = DeadLetterCount::default();
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        sample_consumer(&ctx).await;
        sample_silences(&ctx).await;
        dead.sample(&ctx).await;
    }
}

/// The durable consumers notify reads: surges, revisions and missing categories.
pub const CONSUMERS: [(&str, &str); 3] = [
    (names::SURGE_STREAM, names::NOTIFY_CONSUMER),
    (names::REVISION_STREAM, names::NOTIFY_REVISIONS_CONSUMER),
    (names::MISSING_STREAM, names::NOTIFY_MISSING_CONSUMER),
];

/// `borderwatch_consumer_pending_messages` and `…_ack_pending_messages` of each of notify's
/// [`CONSUMERS`]: a release revising a whole year backs up `notify-revisions`, not `notify`.
async fn sample_consumer(ctx: &Ctx) {
    for (stream, consumer) in CONSUMERS {
        match ctx.bus.consumer_lag(stream, consumer).await {
            Ok(Some(lag)) => consumer_gauges(stream, consumer, lag),
            Ok(None) => {}
            Err(e) => warn!(error = %e, stream, consumer, "cannot read a consumer's lag"),
        }
    }
}

/// Sets the lag gauges of one durable consumer.
pub fn consumer_gauges(stream: &str, consumer: &str, lag: borderwatch_bus::ConsumerLag) {
    let labels = [
        ("stream", stream.to_string()),
        ("consumer", consumer.to_string()),
    ];
    metrics::gauge!("borderwatch_consumer_pending_messages", &labels).set(lag.pending as f64);
    metrics::gauge!("borderwatch_consumer_ack_pending_messages", &labels)
        .set(lag.ack_pending as f64);
}

/// `borderwatch_silences_active`: silences in force now (from the shared cache, no older
/// than `cache_max_age`).
async fn sample_silences(ctx: &Ctx) {
    match ctx.silences.get(&ctx.bus).await {
        Ok(all) => {
            let now = OffsetDateTime::now_utc();
            let active = all.iter().filter(|s| silence::is_active(s, now)).count();
            metrics::gauge!("borderwatch_silences_active").set(active as f64);
        }
        Err(e) => warn!(error = %e, "cannot read the silences"),
    }
}

/// `borderwatch_dead_letters`: notices given up on and not resent since. Counted again only
/// when a dead letter was added or resent, so a quiet system reads no stream.
#[derive(Debug, Default)]
struct DeadLetterCount {
    /// The dead-letter stream's last sequence and the resent keys' count when last counted.
    seen: Option<(u64, usize)>,
}

impl DeadLetterCount {
    async fn sample(&mut self, ctx: &Ctx) {
        let state = async {
            let last = ctx.bus.last_seq(names::DEADLETTER_STREAM).await?;
            let done = ctx.bus.kv_keys(names::DEADLETTER_DONE_BUCKET).await?;
            Ok::<_, borderwatch_bus::BusError>((last, done))
        };
        let (last, done) = match state.await {
            Ok(s) => s,
            Err(e) => return warn!(error = %e, "cannot read the dead letters"),
        };
        if self.seen == Some((last, done.len())) {
            return;
        }
        match deadletter::outstanding(&ctx.bus, &done).await {
            Ok(n) => {
                metrics::gauge!("borderwatch_dead_letters").set(n as f64);
                self.seen = Some((last, done.len()));
            }
            Err(e) => warn!(error = %e, "cannot count the dead letters"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_labelled_as_subscriptions_name_them() {
        assert_eq!(format_label(PayloadFormat::Json), "json");
        assert_eq!(format_label(PayloadFormat::Alertmanager), "alertmanager");
    }
}
