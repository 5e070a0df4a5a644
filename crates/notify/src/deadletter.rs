//! Dead letters: notices given up on go to `BW_DEADLETTER` (`bw.deadletter.<subscription>`)
//! with what the last attempt said; `borderwatch notify replay` resends them, each once:
//! a resent one is marked in `bw_deadletter_done`.

use borderwatch_bus::{BusError, Message, Outgoing, names};
use borderwatch_model::{Subscription, now_rfc3339};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::attempt::log;
use crate::channel;
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

/// How many distinct notices the dead-letter stream holds whose key is not among `done`
/// (the keys of `bw_deadletter_done`): given up on, and not resent since.
pub(crate) async fn outstanding(
    bus: &borderwatch_bus::Bus,
    done: &[String],
) -> Result<usize, BusError> {
    let done: std::collections::HashSet<&str> = done.iter().map(String::as_str).collect();
    let mut dead = std::collections::HashSet::new();
    for msg in read_all(bus, names::DEADLETTER_STREAM, names::ALL_DEADLETTERS).await? {
        if let Ok(dl) = serde_json::from_slice::<DeadLetter>(&msg.payload) {
            let key = record_key(&dl.subscription, &dl.event_id);
            if !done.contains(key.as_str()) {
                dead.insert(key);
            }
        }
    }
    Ok(dead.len())
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
        match resend(&ctx, &dl).await? {
            Resent::AlreadyDone(_) => report.already_done += 1,
            Resent::Orphaned => report.orphaned.push(key),
            Resent::Delivered { .. } => report.resent.push(key),
            Resent::Failed { .. } => report.failed.push(key),
        }
    }
    Ok(report)
}

/// What resending one dead letter did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resent {
    /// Taken (2xx): marked done, its delivery record now says delivered.
    Delivered { attempt: u32, status: Option<u16> },
    /// Refused again: still dead, a later resend tries again.
    Failed {
        attempt: u32,
        status: Option<u16>,
        error: String,
    },
    /// Resent before (at this time): not sent again.
    AlreadyDone(String),
    /// Its subscription no longer exists.
    Orphaned,
}

/// Resends one dead letter once, unless an earlier resend delivered it: the one resend path
/// of `notify replay` and of the API's redeliver. The POST is signed and logged like any
/// other attempt (attempt number: the dead letter's attempts plus one).
pub async fn resend_one(
    bus: borderwatch_bus::Bus,
    cfg: NotifyConfig,
    dl: &DeadLetter,
) -> Result<Resent, BusError> {
    let ctx = Ctx::new(bus, cfg)?;
    resend(&ctx, dl).await
}

async fn resend(ctx: &Ctx, dl: &DeadLetter) -> Result<Resent, BusError> {
    let key = record_key(&dl.subscription, &dl.event_id);
    if let Some(at) = ctx.bus.kv_get(names::DEADLETTER_DONE_BUCKET, &key).await? {
        return Ok(Resent::AlreadyDone(
            String::from_utf8_lossy(&at).into_owned(),
        ));
    }
    let sub = ctx
        .bus
        .kv_get(names::SUBSCRIPTIONS_BUCKET, &dl.subscription)
        .await?
        .and_then(|raw| serde_json::from_slice::<Subscription>(&raw).ok());
    let Some(sub) = sub else {
        return Ok(Resent::Orphaned);
    };
    let body = template::render(
        sub.format,
        &dl.notice,
        ctx.cfg.public_url.as_deref(),
        ctx.cfg.chart_images,
    );
    let n = dl.attempts + 1;
    let a = channel::attempt(ctx, &sub, &dl.notice, &body).await;
    if !a.ok() {
        log(ctx, &sub.id, &dl.event_id, n, &a, Outcome::Failed).await;
        let error = a.error.clone().unwrap_or_default();
        warn!(subscription = %sub.id, event = %dl.event_id, error, "dead letter refused again");
        return Ok(Resent::Failed {
            attempt: n,
            status: a.status,
            error,
        });
    }
    log(ctx, &sub.id, &dl.event_id, n, &a, Outcome::Delivered).await;
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
    Ok(Resent::Delivered {
        attempt: n,
        status: a.status,
    })
}

/// A dead letter as listed: the notice given up on, and when a resend delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub dead: DeadLetter,
    /// When a resend delivered it (RFC 3339); `None` while it is still dead.
    pub redelivered_at: Option<String>,
}

/// The dead letters of `subscription`, oldest first, each notice once (the newest copy).
pub async fn list(bus: &borderwatch_bus::Bus, subscription: &str) -> Result<Vec<Listed>, BusError> {
    let filter = names::deadletter_subject(subscription);
    let mut out: Vec<Listed> = Vec::new();
    for msg in read_all(bus, names::DEADLETTER_STREAM, &filter).await? {
        let Ok(dl) = serde_json::from_slice::<DeadLetter>(&msg.payload) else {
            continue;
        };
        out.retain(|l| l.dead.event_id != dl.event_id);
        out.push(Listed {
            dead: dl,
            redelivered_at: None,
        });
    }
    for l in &mut out {
        let key = record_key(&l.dead.subscription, &l.dead.event_id);
        l.redelivered_at = bus
            .kv_get(names::DEADLETTER_DONE_BUCKET, &key)
            .await?
            .map(|at| String::from_utf8_lossy(&at).into_owned());
    }
    Ok(out)
}
