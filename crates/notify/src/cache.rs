//! A bucket's values (subscriptions, silences) as the notify tasks share them: read once and
//! reused while younger than `max_age`, so an event does not re-read every key.
//!
//! A read that finds the copy stale reloads it before answering (one reload at a time; the
//! others wait for it), so a change made through the API takes effect for events handled
//! at most `max_age` plus one reload later. Values are fetched concurrently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use borderwatch_bus::{Bus, BusError};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

/// Values fetched at once while reloading.
const READS_IN_FLIGHT: usize = 64;

/// Every value of `bucket` that parses as `T`, read with up to 64 requests in flight.
pub(crate) async fn load_bucket<T: DeserializeOwned>(
    bus: &Bus,
    bucket: &str,
) -> Result<Vec<T>, BusError> {
    let keys = bus.kv_keys(bucket).await?;
    let values: Vec<Result<Option<bytes::Bytes>, BusError>> = futures::stream::iter(keys)
        .map(|key| async move { bus.kv_get(bucket, &key).await })
        .buffered(READS_IN_FLIGHT)
        .collect()
        .await;
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        // A key deleted between the listing and the read is simply gone.
        if let Some(raw) = v?
            && let Ok(t) = serde_json::from_slice::<T>(&raw)
        {
            out.push(t);
        }
    }
    Ok(out)
}

/// The shared copy of one bucket's values.
#[derive(Debug)]
pub(crate) struct Cached<T> {
    bucket: &'static str,
    max_age: Duration,
    state: Mutex<Option<(Instant, Arc<Vec<T>>)>>,
}

impl<T: DeserializeOwned> Cached<T> {
    pub(crate) fn new(bucket: &'static str, max_age: Duration) -> Cached<T> {
        Cached {
            bucket,
            max_age,
            state: Mutex::new(None),
        }
    }

    /// The values, reloaded first when the copy is older than `max_age` (or absent).
    pub(crate) async fn get(&self, bus: &Bus) -> Result<Arc<Vec<T>>, BusError> {
        let mut state = self.state.lock().await;
        if let Some((at, values)) = state.as_ref()
            && at.elapsed() < self.max_age
        {
            return Ok(values.clone());
        }
        // The age counts from the start of the reload: a value written during it may be
        // missing from this copy, and the next read after max_age sees it.
        let started = Instant::now();
        let values = Arc::new(load_bucket::<T>(bus, self.bucket).await?);
        *state = Some((started, values.clone()));
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_bus::{MemoryBus, names};

    async fn bus() -> Bus {
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        bus
    }

    async fn put(bus: &Bus, key: &str, v: u32) {
        bus.kv_put(
            names::SILENCES_BUCKET,
            key,
            serde_json::to_vec(&v).unwrap().into(),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_fresh_copy_is_reused_and_a_stale_one_reloaded() {
        let bus = bus().await;
        put(&bus, "a", 1).await;
        let cache = Cached::<u32>::new(names::SILENCES_BUCKET, Duration::from_millis(200));
        assert_eq!(*cache.get(&bus).await.unwrap(), vec![1]);
        put(&bus, "b", 2).await;
        assert_eq!(
            *cache.get(&bus).await.unwrap(),
            vec![1],
            "within max_age the copy is reused"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            *cache.get(&bus).await.unwrap(),
            vec![1, 2],
            "after max_age a read reloads"
        );
    }

    #[tokio::test]
    async fn every_value_is_read_and_unparseable_ones_skipped() {
        let bus = bus().await;
        for i in 0..300 {
            put(&bus, &format!("k{i:03}"), i).await;
        }
        bus.kv_put(names::SILENCES_BUCKET, "bad", "not json".into())
            .await
            .unwrap();
        let got = load_bucket::<u32>(&bus, names::SILENCES_BUCKET)
            .await
            .unwrap();
        assert_eq!(got, (0..300).collect::<Vec<_>>());
    }
}
