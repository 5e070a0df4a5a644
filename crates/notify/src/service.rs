//! Delivery: the durable consumer `notify` on `BW_SURGES`, the subscriptions bucket, and a
//! delivery record per (subscription, event) in `bw_deliveries`.
//!
//! An event is acknowledged only after every matching subscription has taken it (or given
//! up), so a killed process resumes with it. The record is written after the receiver
//! answered 2xx: a receiver that took the POST but whose answer was lost gets it again,
//! with the same `X-Borderwatch-Event-Id`, which it can use to drop the repeat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use borderwatch_bus::{Bus, BusError, Delivery, names};
use borderwatch_model::{
    EVENT_ID_HEADER, SIGNATURE_HEADER, Subscription, SurgeEvent, now_rfc3339, sign_body,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backoff::{Backoff, parse_retry_after};

/// Settings of the notify service.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub backoff: Backoff,
    /// Timeout of one webhook POST.
    pub request_timeout: Duration,
    /// Events delivered at once.
    pub concurrency: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(10),
            concurrency: 64,
        }
    }
}

/// What `bw_deliveries` records per (subscription, event).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub subscription: String,
    pub event: String,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub attempts: u32,
    pub status: Option<u16>,
    pub at: String,
}

const ACK_WAIT: Duration = Duration::from_secs(30);

/// Delivers events until `cancel` fires, then finishes the attempts in flight.
pub async fn run(bus: Bus, cfg: NotifyConfig, cancel: CancellationToken) -> Result<(), BusError> {
    let client = reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .user_agent(concat!("borderwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| BusError::Nats {
            op: "http client",
            reason: e.to_string(),
        })?;
    let mut deliveries = bus
        .consume(
            names::SURGE_STREAM,
            names::NOTIFY_CONSUMER,
            "bw.surge.>",
            ACK_WAIT,
        )
        .await?;
    info!("notify consuming surges");
    let cfg = Arc::new(cfg);
    let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let delivery = tokio::select! {
            _ = cancel.cancelled() => break,
            d = deliveries.next() => match d {
                Some(Ok(d)) => d,
                Some(Err(e)) => { warn!(error = %e, "surge consumer failed"); tokio::time::sleep(Duration::from_secs(1)).await; continue }
                None => break,
            },
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (bus, client, cfg, cancel) = (bus.clone(), client.clone(), cfg.clone(), cancel.clone());
        tasks.spawn(async move {
            handle(&bus, &client, &cfg, delivery, &cancel).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    // Drain: attempts in flight finish or give their event back unacknowledged.
    while tasks.join_next().await.is_some() {}
    info!("notify stopped");
    Ok(())
}

async fn handle(
    bus: &Bus,
    client: &reqwest::Client,
    cfg: &NotifyConfig,
    delivery: Delivery,
    cancel: &CancellationToken,
) {
    let event: SurgeEvent = match serde_json::from_slice(&delivery.message.payload) {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, seq = delivery.message.seq, "dropping a surge event that does not parse");
            let _ = delivery.ack().await;
            return;
        }
    };
    let subscriptions = match load_subscriptions(bus).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot read subscriptions; will retry the event");
            let _ = delivery.nak(Some(Duration::from_secs(2))).await;
            return;
        }
    };
    let body = delivery.message.payload.clone();
    let mut all_settled = true;
    for sub in subscriptions.iter().filter(|s| s.filter.matches(&event)) {
        match deliver_once(bus, client, cfg, &delivery, sub, &event, &body, cancel).await {
            Ok(true) => {}
            Ok(false) => all_settled = false,
            Err(e) => {
                warn!(error = %e, subscription = %sub.id, event = %event.id, "delivery state failed");
                all_settled = false;
            }
        }
    }
    let settle = if all_settled {
        delivery.ack().await
    } else {
        delivery.nak(Some(Duration::from_secs(1))).await
    };
    if let Err(e) = settle {
        warn!(error = %e, event = %event.id, "could not settle a surge delivery");
    }
}

/// Every stored subscription.
pub async fn load_subscriptions(bus: &Bus) -> Result<Vec<Subscription>, BusError> {
    let mut out = Vec::new();
    for key in bus.kv_keys(names::SUBSCRIPTIONS_BUCKET).await? {
        if let Some(v) = bus.kv_get(names::SUBSCRIPTIONS_BUCKET, &key).await?
            && let Ok(s) = serde_json::from_slice::<Subscription>(&v)
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// Delivers `event` to `sub` unless that was done before. Returns false when it was
/// interrupted by shutdown (the event stays unacknowledged and comes back).
#[allow(clippy::too_many_arguments)]
async fn deliver_once(
    bus: &Bus,
    client: &reqwest::Client,
    cfg: &NotifyConfig,
    delivery: &Delivery,
    sub: &Subscription,
    event: &SurgeEvent,
    body: &bytes::Bytes,
    cancel: &CancellationToken,
) -> Result<bool, BusError> {
    let key = format!("{}.{}", sub.id, event.id);
    if bus.kv_get(names::DELIVERIES_BUCKET, &key).await?.is_some() {
        return Ok(true);
    }
    let secret = sub.webhook.secret.clone().unwrap_or_default();
    let signature = sign_body(secret.as_bytes(), body);
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let sent = Instant::now();
        let result = client
            .post(&sub.webhook.url)
            .header("content-type", "application/json")
            .header(EVENT_ID_HEADER, &event.id)
            .header(SIGNATURE_HEADER, &signature)
            .body(body.clone())
            .send()
            .await;
        let (status, retry_after, error) = match &result {
            Ok(resp) => (
                Some(resp.status().as_u16()),
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
                None,
            ),
            Err(e) => (None, None, Some(e.to_string())),
        };
        let latency_ms = sent.elapsed().as_millis() as u64;
        if let Some(code) = status
            && (200..300).contains(&code)
        {
            info!(subscription = %sub.id, event = %event.id, status = code, attempt, latency_ms, "delivered");
            record(bus, &key, sub, event, "delivered", attempt, status).await?;
            return Ok(true);
        }
        if started.elapsed() >= cfg.backoff.max_age {
            warn!(subscription = %sub.id, event = %event.id, attempt, "giving up on a delivery");
            record(bus, &key, sub, event, "failed", attempt, status).await?;
            return Ok(true);
        }
        let wait = cfg
            .backoff
            .delay(attempt, rand::random::<f64>(), retry_after);
        warn!(
            subscription = %sub.id, event = %event.id, attempt, status = ?status,
            error = error.as_deref().unwrap_or(""), retry_in_ms = wait.as_millis() as u64,
            "delivery failed; retrying"
        );
        // Keep the event ours while we wait, in slices shorter than the ack wait.
        let until = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < until {
            let slice = (until - tokio::time::Instant::now()).min(ACK_WAIT / 3);
            tokio::select! {
                _ = cancel.cancelled() => return Ok(false),
                _ = tokio::time::sleep(slice) => {}
            }
            let _ = delivery.in_progress().await;
        }
    }
}

async fn record(
    bus: &Bus,
    key: &str,
    sub: &Subscription,
    event: &SurgeEvent,
    outcome: &str,
    attempts: u32,
    status: Option<u16>,
) -> Result<(), BusError> {
    let rec = DeliveryRecord {
        subscription: sub.id.clone(),
        event: event.id.clone(),
        outcome: outcome.into(),
        attempts,
        status,
        at: now_rfc3339(),
    };
    bus.kv_put(
        names::DELIVERIES_BUCKET,
        key,
        serde_json::to_vec(&rec).unwrap_or_default().into(),
    )
    .await
}
