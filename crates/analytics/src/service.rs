//! The analytics service: for each release marker, aggregate the touched series, run the
//! detectors on the changed periods, announce new surges and store per-series results.
//!
//! Replicas share the durable consumer `analytics` on `BW_RELEASES`; a replica that dies
//! mid-release leaves the marker unacknowledged and another one takes it. Surge ids are
//! stable and checked against `bw_announced` before publishing (and deduplicated by the
//! stream's `Nats-Msg-Id` window), so a redelivered release announces nothing twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, BusError, Outgoing, Transport, names};
use borderwatch_model::{
    AnalyzedRelease, Observation, Period, ReleaseMarker, SeriesKey, SeriesView, SurgeEvent,
    now_rfc3339,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{DetectorConfig, aggregate, evaluate};

/// How long a release may go unacknowledged before another replica gets it.
const ACK_WAIT: Duration = Duration::from_secs(120);

/// Processes releases until `cancel` fires; work in progress is finished first.
pub async fn run(
    bus: Bus,
    cfg: Arc<DetectorConfig>,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let mut deliveries = bus
        .consume(
            names::RELEASE_STREAM,
            names::ANALYTICS_CONSUMER,
            "bw.release.>",
            ACK_WAIT,
        )
        .await?;
    info!("analytics consuming releases");
    loop {
        let delivery = tokio::select! {
            _ = cancel.cancelled() => break,
            d = deliveries.next() => match d {
                Some(Ok(d)) => d,
                Some(Err(e)) => { warn!(error = %e, "release consumer failed"); tokio::time::sleep(Duration::from_secs(1)).await; continue }
                None => break,
            },
        };
        let marker: ReleaseMarker = match serde_json::from_slice(&delivery.message.payload) {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, seq = delivery.message.seq, "dropping a release marker that does not parse");
                delivery.ack().await?;
                continue;
            }
        };
        match process(bus.as_ref(), &cfg, &marker).await {
            Ok(done) => {
                info!(release = %marker.release_id, series = done.series, surges = done.surges.len(), "release analysed");
                delivery.ack().await?;
            }
            Err(e) => {
                warn!(release = %marker.release_id, error = %e, "release analysis failed; will retry");
                delivery.nak(Some(Duration::from_secs(5))).await?;
            }
        }
    }
    info!("analytics stopped");
    Ok(())
}

/// Why a release could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Analytics(#[from] crate::AnalyticsError),
    #[error("the aggregation worker failed: {0}")]
    Worker(String),
}

/// Analyses one release marker; safe to repeat.
pub async fn process(
    bus: &dyn Transport,
    cfg: &DetectorConfig,
    marker: &ReleaseMarker,
) -> Result<AnalyzedRelease, ProcessError> {
    let touched: HashMap<(String, String), &Vec<Period>> = marker
        .changes
        .iter()
        .map(|c| {
            (
                (c.country.code().to_string(), c.category.clone()),
                &c.periods,
            )
        })
        .collect();
    let filters: Vec<String> = marker
        .changes
        .iter()
        .map(|c| names::obs_filter_for_series(&marker.source, c.country.code(), &c.category))
        .collect();
    let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
    let observations: Vec<Observation> = bus
        .last_per_subject(names::OBS_STREAM, &filters)
        .await?
        .into_iter()
        .filter_map(|m| serde_json::from_slice::<Observation>(&m.payload).ok())
        .filter(|o| touched.contains_key(&(o.country.code().to_string(), o.category.clone())))
        .collect();
    let frames = tokio::task::spawn_blocking(move || aggregate(&observations))
        .await
        .map_err(|e| ProcessError::Worker(e.to_string()))??;
    let detected_at = now_rfc3339();
    let mut surges = Vec::new();
    let mut periods_evaluated = 0u64;
    for frame in &frames {
        let key = &frame.key;
        let Some(periods) = touched.get(&(key.country.code().to_string(), key.category.clone()))
        else {
            continue;
        };
        let periods: Vec<Period> = periods
            .iter()
            .copied()
            .filter(|p| p.freq() == frame.freq)
            .collect();
        periods_evaluated += periods.len() as u64;
        let events = evaluate(frame, &periods, cfg, &marker.release_id, &detected_at);
        for event in &events {
            announce(bus, event).await?;
        }
        store_view(
            bus,
            frame.to_view(&marker.release_id, &detected_at),
            &events,
        )
        .await?;
        surges.extend(events);
    }
    let done = AnalyzedRelease {
        release_id: marker.release_id.clone(),
        source: marker.source.clone(),
        part: marker.part,
        series: frames.len() as u64,
        periods_evaluated,
        surges,
        finished_at: now_rfc3339(),
    };
    bus.kv_put(
        names::ANALYZED_BUCKET,
        &names::analyzed_key(&marker.release_id, &marker.source, marker.part),
        serde_json::to_vec(&done).unwrap_or_default().into(),
    )
    .await?;
    Ok(done)
}

/// Publishes a surge unless it was announced before.
async fn announce(bus: &dyn Transport, event: &SurgeEvent) -> Result<(), BusError> {
    if bus
        .kv_get(names::ANNOUNCED_BUCKET, &event.id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let payload = serde_json::to_vec(event).unwrap_or_default();
    bus.publish(
        Outgoing::new(
            names::surge_subject(event.country.code(), &event.category),
            payload,
        )
        .with_id(event.id.clone()),
    )
    .await?;
    bus.kv_put(
        names::ANNOUNCED_BUCKET,
        &event.id,
        bytes_of(&event.release_id),
    )
    .await?;
    info!(id = %event.id, series = %event.series(), period = %event.period, severity = %event.severity, "surge announced");
    Ok(())
}

fn bytes_of(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

/// Stores the series view, keeping the ids of surges found in earlier releases.
async fn store_view(
    bus: &dyn Transport,
    mut view: SeriesView,
    events: &[SurgeEvent],
) -> Result<(), BusError> {
    let key = SeriesKey::new(&view.source, view.country, &view.category);
    let kv_key = names::series_key(&key.source, key.country.code(), &key.category);
    let mut ids: Vec<String> = Vec::new();
    if let Some(prev) = bus.kv_get(names::SERIES_BUCKET, &kv_key).await?
        && let Ok(prev) = serde_json::from_slice::<SeriesView>(&prev)
    {
        ids = prev.surges;
    }
    for e in events {
        if !ids.contains(&e.id) {
            ids.push(e.id.clone());
        }
    }
    view.surges = ids;
    bus.kv_put(
        names::SERIES_BUCKET,
        &kv_key,
        serde_json::to_vec(&view).unwrap_or_default().into(),
    )
    .await
}
