//! What analytics tells an operator through `/metrics`: how far the release consumer is
//! behind (`borderwatch_consumer_pending_messages{stream="BW_RELEASES",consumer="analytics"}`
//! and `…_ack_pending_messages`) and how many incidents are open
//! (`borderwatch_incidents_open{direction}`), both sampled every [`SAMPLE_EVERY`].
//!
//! Every replica samples the same shared state, so every replica reports the same values:
//! alert on `max`, not `sum`. Incidents change only as releases are analysed, so they are
//! counted again only when the release stream or the consumer's position moved.

use std::time::Duration;

use borderwatch_bus::{Bus, BusError, ConsumerLag, names};
use borderwatch_model::{Direction, SeriesIncidents};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How often the gauges are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Samples until `cancel` fires; a failed read keeps a gauge at its last value, logged.
pub(crate) async fn run_sampler(bus: Bus, cancel: CancellationToken) {
    let mut counted: Option<(u64, Option<ConsumerLag>)> = None;
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let position = async {
            let last = bus.last_seq(names::RELEASE_STREAM).await?;
            let lag = bus
                .consumer_lag(names::RELEASE_STREAM, names::ANALYTICS_CONSUMER)
                .await?;
            Ok::<_, BusError>((last, lag))
        };
        let (last, lag) = match position.await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot read the release consumer's lag");
                continue;
            }
        };
        if let Some(lag) = lag {
            let labels = [
                ("stream", names::RELEASE_STREAM.to_string()),
                ("consumer", names::ANALYTICS_CONSUMER.to_string()),
            ];
            metrics::gauge!("borderwatch_consumer_pending_messages", &labels)
                .set(lag.pending as f64);
            metrics::gauge!("borderwatch_consumer_ack_pending_messages", &labels)
                .set(lag.ack_pending as f64);
        }
        if counted == Some((last, lag)) {
            continue;
        }
        match open_incidents(&bus).await {
            Ok((rises, falls)) => {
                metrics::gauge!("borderwatch_incidents_open", "direction" => "rise")
                    .set(rises as f64);
                metrics::gauge!("borderwatch_incidents_open", "direction" => "fall")
                    .set(falls as f64);
                counted = Some((last, lag));
            }
            Err(e) => warn!(error = %e, "cannot count the open incidents"),
        }
    }
}

/// Open incidents in `bw_incidents`: (rises, falls).
async fn open_incidents(bus: &Bus) -> Result<(usize, usize), BusError> {
    let (mut rises, mut falls) = (0, 0);
    for key in bus.kv_keys(names::INCIDENTS_BUCKET).await? {
        let Some(raw) = bus.kv_get(names::INCIDENTS_BUCKET, &key).await? else {
            continue;
        };
        let Ok(series) = serde_json::from_slice::<SeriesIncidents>(&raw) else {
            continue;
        };
        for i in series.incidents.iter().filter(|i| i.is_open()) {
            match i.direction {
                Direction::Rise => rises += 1,
                Direction::Fall => falls += 1,
            }
        }
    }
    Ok((rises, falls))
}
