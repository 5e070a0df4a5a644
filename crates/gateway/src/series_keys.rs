//! The keys of `bw_series`, listed and sorted once and shared by every `/v1/series` request
//! for a second, instead of listed, copied and sorted by each (a page of 10,000 series from
//! a bucket of many cost a full listing and sort per request). The bus has no watch on a
//! bucket, so the list is refreshed by age: a series analytics adds shows in the list within
//! [`MAX_AGE`] (its own URL answers at once). One request refreshes at a time; the others
//! wait for its list rather than listing too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use borderwatch_bus::{Bus, BusError, names};
use tokio::sync::Mutex;

/// How long a listing is reused.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

/// A listing: when it was made, and the keys in order.
type Listing = (Instant, Arc<Vec<String>>);

/// The sorted series keys and when they were listed.
#[derive(Debug, Clone)]
pub(crate) struct SeriesKeys {
    cached: Arc<Mutex<Option<Listing>>>,
    max_age: Duration,
}

impl Default for SeriesKeys {
    fn default() -> Self {
        SeriesKeys {
            cached: Arc::default(),
            max_age: MAX_AGE,
        }
    }
}

impl SeriesKeys {
    /// The keys in order, listed anew only when the last listing is older than the maximum
    /// age.
    pub(crate) async fn sorted(&self, bus: &Bus) -> Result<Arc<Vec<String>>, BusError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, keys)) = cached.as_ref()
            && at.elapsed() < self.max_age
        {
            return Ok(keys.clone());
        }
        let mut keys = bus.kv_keys(names::SERIES_BUCKET).await?;
        keys.sort_unstable();
        keys.dedup();
        let keys = Arc::new(keys);
        *cached = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }
}

/// Where the keys after `cursor` start in `keys` (sorted): a binary search, not a scan.
pub(crate) fn after(keys: &[String], cursor: Option<&str>) -> usize {
    cursor.map_or(0, |c| keys.partition_point(|k| k.as_str() <= c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_bus::MemoryBus;

    #[tokio::test]
    async fn one_listing_serves_requests_until_it_is_too_old() {
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        for k in ["fsb.PRK.work", "fsb.CHN.study", "cbp.MEX.total"] {
            bus.kv_put(names::SERIES_BUCKET, k, "{}".into())
                .await
                .unwrap();
        }
        let index = SeriesKeys {
            max_age: Duration::from_millis(200),
            ..SeriesKeys::default()
        };
        let first = index.sorted(&bus).await.unwrap();
        assert_eq!(*first, ["cbp.MEX.total", "fsb.CHN.study", "fsb.PRK.work"]);
        bus.kv_put(names::SERIES_BUCKET, "fsb.AFG.work", "{}".into())
            .await
            .unwrap();
        let again = index.sorted(&bus).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "listed and sorted again");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let fresh = index.sorted(&bus).await.unwrap();
        assert_eq!(fresh.len(), 4);
        assert_eq!(fresh[1], "fsb.AFG.work");
    }

    #[test]
    fn the_page_after_a_cursor_starts_past_it() {
        let keys: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(after(&keys, None), 0);
        assert_eq!(after(&keys, Some("a")), 1);
        assert_eq!(after(&keys, Some("bb")), 2);
        assert_eq!(after(&keys, Some("z")), 3);
    }
}
