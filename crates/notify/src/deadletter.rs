//! Dead letters: notices given up on go to `BW_DEADLETTER` (`bw.deadletter.<subscription>`)
//! with what the last attempt said; `borderwatch notify replay` resends them, each once:
//! a resent one is marked in `bw_deadletter_done`.

use borderwatch_bus::{BusError, Message, Outgoing, names};
use borderwatch_model::{Subscription, now_rfc3339};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::attempt::{log, post};
use crate::config::NotifyConfig;
use crate::ctx::Ctx;
use crate::notice::Notice;
use crate::record::{DeliveryRecord, Outcome, read_record, record_key, write_record};
use crate::template;

/// One notice given up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub subscription: String,
    pub event_id: String,
    pub notice: Notice,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: String,
    pub failed_at: String,
}

/// The last failure of a notice given up on.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) attempts: u32,
    pub(crate) status: Option<u16>,
    pub(crate) error: String,
}

pub(crate) async fn publish(
    ctx: &Ctx,
    sub: &Subscription,
    notice: &Notice,
    failure: &Failure,
) -> Result<(), BusError> {
    let dl = DeadLetter {
        subscription: sub.id.clone(),
        event_id: notice.id().to_string(),
        notice: notice.clone(),
        attempts: failure.attempts,
        last_status: failure.status,
        last_error: failure.error.clone(),
        failed_at: now_rfc3339(),
    };
    let msg = Outgoing::new(
        names::deadletter_subject(&sub.id),
        serde_json::to_vec(&dl).unwrap_or_default(),
    )
    .with_id(record_key(&sub.id, notice.id()));
    ctx.bus.publish(msg).await?;
    Ok(())
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Resent and taken (2xx).
    pub resent: Vec<String>,
    /// Resent and refused again: still dead, a later replay tries again.
    pub failed: Vec<String>,
    /// Resent by an earlier replay.
    pub already_done: usize,
    /// Their subscription no longer exists.
    pub orphaned: Vec<String>,
}

/// Every stored message on `filter` up to the last one there now; the stream does not end
/// by itself, so the last sequence of any matching subject is where reading stops.
pub(crate) async fn read_all(
    bus: &borderwatch_bus::Bus,
    stream: &str,
    filter: &str,
) -> Result<Vec<Message>, BusError> {
    let last = bus
        .last_per_subject(stream, &[filter])
        .await?
        .iter()
        .map(|m| m.seq)
        .max();
    let Some(last) = last else {
        return Ok(Vec::new());
    };
    let mut replay = bus.replay(stream, filter, 1).await?;
    let mut out = Vec::new();
    while let Some(msg) = replay.next().await {
        let msg = msg?;
        let seq = msg.seq;
        out.push(msg);
        if seq >= last {
            break;
        }
    }
    Ok(out)
}

/// Resends the dead letters of `subscription` (all when `None`), one attempt each.
pub async fn replay(
    bus: borderwatch_bus::Bus,
    cfg: NotifyConfig,
    subscription: Option<&str>,
) -> Result<ReplayReport, BusError> {
    let ctx = Ctx::new(bus, cfg)?;
    let filter = match subscription {
        Some(s) => names::deadletter_subject(s),
        None => names::ALL_DEADLETTERS.to_string(),
    };
    let mut report = ReplayReport::default();
    let mut seen = std::collections::HashSet::new();
    for msg in read_all(&ctx.bus, names::DEADLETTER_STREAM, &filter).await? {
        let Ok(dl) = serde_json::from_slice::<DeadLetter>(&msg.payload) else {
            warn!(seq = msg.seq, "skipping a dead letter that does not parse");
            continue;
        };
        let key = record_key(&dl.subscription, &dl.event_id);
        // The same notice can be dead twice (redelivered after a crash): one resend.
        if !seen.insert(key.clone()) {
            continue;
        }
        if ctx
            .bus
            .kv_get(names::DEADLETTER_DONE_BUCKET, &key)
            .await?
            .is_some()
        {
            report.already_done += 1;
            continue;
        }
        let sub = ctx
            .bus
            .kv_get(names::SUBSCRIPTIONS_BUCKET, &dl.subscription)
            .await?
            .and_then(|raw| serde_json::from_slice::<Subscription>(&raw).ok());
        let Some(sub) = sub else {
            report.orphaned.push(key);
            continue;
        };
        let body = template::render(sub.format, &dl.notice, ctx.cfg.public_url.as_deref());
        let n = dl.attempts + 1;
        let a = post(&ctx, &sub, &dl.event_id, &body).await;
        if a.ok() {
            log(&ctx, &sub.id, &dl.event_id, n, &a, Outcome::Delivered).await;
            ctx.bus
                .kv_put(
                    names::DEADLETTER_DONE_BUCKET,
                    &key,
                    now_rfc3339().into_bytes().into(),
                )
                .await?;
            let mut rec = read_record(&ctx.bus, &sub.id, &dl.event_id)
                .await?
                .unwrap_or_else(|| DeliveryRecord::new(&sub.id, &dl.event_id, Outcome::Delivered));
            rec.outcome = Outcome::Delivered;
            rec.attempts = n;
            rec.status = a.status;
            rec.error = None;
            rec.at = now_rfc3339();
            write_record(&ctx.bus, &rec).await?;
            info!(subscription = %sub.id, event = %dl.event_id, "dead letter resent");
            report.resent.push(key);
        } else {
            log(&ctx, &sub.id, &dl.event_id, n, &a, Outcome::Failed).await;
            warn!(subscription = %sub.id, event = %dl.event_id, error = a.error.as_deref().unwrap_or(""), "dead letter refused again");
            report.failed.push(key);
        }
    }
    Ok(report)
}
