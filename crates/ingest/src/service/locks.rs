//! What must stay ordered while uploads are served side by side: a release is built against
//! what the stream holds for its sources (the current figures its revisions are told from,
//! the categories it may leave out, the frequencies of the stored series, the releases with
//! no record), and a file is a duplicate only against the records written before it. So the
//! part of an upload that reads that state and writes to it (keeping the bytes, announcing,
//! publishing, the markers and the release record) runs for one source at a time, and for
//! one content hash at a time; reading and checking a file (the slow part) runs outside.
//!
//! These locks order one process's uploads; `lease.rs` holds the same keys across ingest
//! replicas (the queue group), so that two replicas never build releases of one source at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// One async mutex per key, kept while someone holds or waits for it.
static LOCKS: LazyLock<Mutex<HashMap<String, Weak<AsyncMutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Keys whose locks are forgotten once unused, when the table grows past this.
const PRUNE_AT: usize = 1024;

/// The locks an upload holds while it stores and publishes; released when dropped.
#[derive(Debug)]
pub(super) struct Held {
    _guards: Vec<OwnedMutexGuard<()>>,
}

/// The keys of a release: its bytes (the same bytes twice are one release, or a duplicate)
/// and every source its figures belong to.
pub(super) fn release_keys<'a>(
    sha: &str,
    sources: impl IntoIterator<Item = &'a String>,
) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = sources.into_iter().map(|s| format!("source:{s}")).collect();
    keys.insert(format!("sha:{sha}"));
    keys
}

/// Takes the lock of every key, in the keys' order: two uploads wanting some of the same
/// keys take them in the same order, so neither waits for the other in a cycle. Tokio's
/// mutexes are fair: uploads waiting for a key get it in the order they asked.
pub(super) async fn lock(keys: BTreeSet<String>) -> Held {
    let mut guards = Vec::with_capacity(keys.len());
    for key in keys {
        guards.push(mutex_of(&key).lock_owned().await);
    }
    Held { _guards: guards }
}

fn mutex_of(key: &str) -> Arc<AsyncMutex<()>> {
    let mut table = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = table.get(key).and_then(Weak::upgrade) {
        return m;
    }
    if table.len() >= PRUNE_AT {
        table.retain(|_, m| m.strong_count() > 0);
    }
    let m = Arc::new(AsyncMutex::new(()));
    table.insert(key.to_string(), Arc::downgrade(&m));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_source_at_a_time_other_sources_side_by_side() {
        let sources = |s: &[&str]| s.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let a = lock(release_keys("1", &sources(&["fsb", "cbp"]))).await;
        // Another source, other bytes: at once.
        let other = tokio::time::timeout(
            Duration::from_secs(5),
            lock(release_keys("2", &sources(&["ohss"]))),
        )
        .await;
        assert!(other.is_ok());
        // A source `a` holds: waits until `a` is dropped.
        let fsb = sources(&["fsb"]);
        let waiting =
            tokio::time::timeout(Duration::from_millis(200), lock(release_keys("3", &fsb)));
        assert!(waiting.await.is_err(), "the same source waits");
        let same_bytes = sources(&["frontex"]);
        let waiting = tokio::time::timeout(
            Duration::from_millis(200),
            lock(release_keys("1", &same_bytes)),
        );
        assert!(waiting.await.is_err(), "the same bytes wait");
        drop(a);
        let fsb = tokio::time::timeout(Duration::from_secs(5), lock(release_keys("3", &fsb))).await;
        assert!(fsb.is_ok());
    }
}
