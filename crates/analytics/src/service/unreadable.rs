//! Release markers analytics cannot read.
//!
//! Such a marker used to be acknowledged with a warning ("dropping a release marker"): its
//! figures stayed stored, were never analysed, and sending the file again added nothing, so
//! the release's surges were never found. Now nothing is acknowledged away:
//!
//! - it is handed back with a long delay ([`RETRY_UNREADABLE`]), never acknowledged and never
//!   terminated: a marker is kept until an analytics that reads it (a fixed or newer
//!   version) analyses it, and the delay keeps it from looping hot (one error line and one
//!   count of `borderwatch_unreadable_markers_total` per delay, so it stays loud);
//! - when its release, source and part can still be read from it, a note
//!   ([`names::unreadable_marker_key`]) tells ingest that this part was not analysed: the same
//!   file sent again marks the release's figures again in a readable marker;
//! - once that part is analysed (by a marker sent again), the unreadable one is acknowledged:
//!   the work it asked for is done.

use std::time::Duration;

use borderwatch_bus::{Delivery, Transport, names};
use tracing::{error, info, warn};

/// How long an unreadable marker waits before it is delivered again.
pub(crate) const RETRY_UNREADABLE: Duration = Duration::from_secs(600);

/// Release, source and part of a marker that does not parse as a whole, when its JSON has
/// them.
fn part_of(payload: &[u8]) -> Option<(String, String, u32)> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let release = value.get("release_id")?.as_str()?.to_string();
    let source = value.get("source")?.as_str()?.to_string();
    let part = u32::try_from(value.get("part")?.as_u64()?).ok()?;
    Some((release, source, part))
}

/// Settles a marker that does not parse (`why`): see the module's documentation.
pub(crate) async fn settle(bus: &dyn Transport, delivery: &Delivery, why: &serde_json::Error) {
    let seq = delivery.message.seq;
    metrics::counter!("borderwatch_unreadable_markers_total").increment(1);
    let part = part_of(&delivery.message.payload);
    if let Some((release, source, part)) = &part {
        let done = names::analyzed_key(release, source, *part);
        if let Ok(Some(_)) = bus.kv_get(names::ANALYZED_BUCKET, &done).await {
            info!(
                seq,
                release,
                source,
                part,
                "an unreadable release marker's part was analysed from a marker sent again; acknowledging it"
            );
            if let Err(e) = delivery.ack().await {
                warn!(error = %e, seq, "could not acknowledge an unreadable release marker");
            }
            return;
        }
        let note = serde_json::json!({
            "seq": seq,
            "error": why.to_string(),
            "at": borderwatch_model::now_rfc3339(),
        });
        let key = names::unreadable_marker_key(&done);
        if let Err(e) = bus
            .kv_put(
                names::ANALYZED_BUCKET,
                &key,
                serde_json::to_vec(&note).unwrap_or_default().into(),
            )
            .await
        {
            warn!(error = %e, key, "could not note an unreadable release marker");
        }
    }
    error!(
        error = %why,
        seq,
        release = part.as_ref().map(|p| p.0.as_str()),
        source = part.as_ref().map(|p| p.1.as_str()),
        part = part.as_ref().map(|p| p.2),
        retry_in_s = RETRY_UNREADABLE.as_secs(),
        "a release marker does not parse: its figures are not analysed. It is kept and \
         delivered again; send the release's file again to mark its figures anew"
    );
    if let Err(e) = delivery.nak(Some(RETRY_UNREADABLE)).await {
        warn!(error = %e, seq, "could not hand an unreadable release marker back; it returns after the ack wait");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};

    use borderwatch_bus::{Acker, MemoryBus, Message};

    /// What was done with a delivery: `ack`, or `nak <delay in s>`.
    #[derive(Debug, Default, Clone)]
    struct Settled(Arc<Mutex<Vec<String>>>);

    type Done<'a> = Pin<Box<dyn Future<Output = borderwatch_bus::Result<()>> + Send + 'a>>;

    impl Acker for Settled {
        fn ack<'a, 'b>(&'a self) -> Done<'b>
        where
            'a: 'b,
            Self: 'b,
        {
            self.0.lock().unwrap().push("ack".into());
            Box::pin(async { Ok(()) })
        }
        fn nak<'a, 'b>(&'a self, delay: Option<Duration>) -> Done<'b>
        where
            'a: 'b,
            Self: 'b,
        {
            let delay = delay.map_or(0, |d| d.as_secs());
            self.0.lock().unwrap().push(format!("nak {delay}"));
            Box::pin(async { Ok(()) })
        }
        fn in_progress<'a, 'b>(&'a self) -> Done<'b>
        where
            'a: 'b,
            Self: 'b,
        {
            Box::pin(async { Ok(()) })
        }
    }

    fn delivery(payload: &'static [u8], settled: &Settled) -> Delivery {
        Delivery {
            message: Message {
                subject: "bw.release.fsb".into(),
                headers: Vec::new(),
                payload: bytes::Bytes::from_static(payload),
                seq: 7,
            },
            delivered: 1,
            acker: Box::new(settled.clone()),
        }
    }

    const BAD: &[u8] = br#"{"release_id":"rel-1","source":"fsb","part":0,"parts":1,"changes":[{"country":"FRA","category":"work","periods":["999"],"revised":[]}]}"#;

    #[tokio::test]
    async fn an_unreadable_marker_is_kept_and_noted_never_acknowledged_away() {
        // It was acknowledged with a warning: its figures were never analysed.
        let bus = MemoryBus::ephemeral();
        names::ensure_all(&bus, 1).await.unwrap();
        let why = serde_json::from_slice::<borderwatch_model::ReleaseMarker>(BAD).unwrap_err();
        let settled = Settled::default();
        settle(&bus, &delivery(BAD, &settled), &why).await;
        assert_eq!(*settled.0.lock().unwrap(), ["nak 600"]);
        let done = names::analyzed_key("rel-1", "fsb", 0);
        let note = bus
            .kv_get(names::ANALYZED_BUCKET, &names::unreadable_marker_key(&done))
            .await
            .unwrap()
            .expect("ingest is told the part was not analysed");
        let note: serde_json::Value = serde_json::from_slice(&note).unwrap();
        assert_eq!(note["seq"], 7);
        // Not even JSON: kept all the same.
        let settled = Settled::default();
        settle(&bus, &delivery(b"\xff", &settled), &why).await;
        assert_eq!(*settled.0.lock().unwrap(), ["nak 600"]);
        // Once a marker sent again got the part analysed, the unreadable one is done.
        bus.kv_put(
            names::ANALYZED_BUCKET,
            &done,
            bytes::Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
        let settled = Settled::default();
        settle(&bus, &delivery(BAD, &settled), &why).await;
        assert_eq!(*settled.0.lock().unwrap(), ["ack"]);
    }

    #[test]
    fn the_part_is_read_from_a_marker_that_does_not_parse_whole() {
        let bad = br#"{"release_id":"rel-1","source":"fsb","part":2,"parts":3,"changes":[{"country":"FRA","category":"work","periods":["999"]}]}"#;
        assert!(serde_json::from_slice::<borderwatch_model::ReleaseMarker>(bad).is_err());
        assert_eq!(part_of(bad), Some(("rel-1".into(), "fsb".into(), 2)));
        assert_eq!(part_of(b"not json"), None);
        assert_eq!(part_of(br#"{"release_id":"rel-1"}"#), None);
    }
}
