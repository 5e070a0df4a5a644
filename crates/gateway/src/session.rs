//! Dashboard sessions, kept in this process: a random id (256 bits from the operating
//! system's CSPRNG through `rand`'s thread generator) per sign-in, with an expiry, revoked at
//! `/logout`. The table is bounded: when full, expired sessions go first, then the ones
//! closest to expiry, so a flood of sign-ins cannot grow memory. A leaf: the access check and
//! the dashboard's sign-in use it.
//!
//! Sessions live in one gateway process: behind several replicas, a browser signs in again
//! where it lands (use sticky sessions), and a restart signs everyone out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::secret::constant_time_eq;

/// How long a session lasts after sign-in.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most sessions kept at once.
pub(crate) const MAX_SESSIONS: usize = 10_000;

/// The live sessions: id → expiry.
#[derive(Debug, Clone)]
pub(crate) struct Sessions {
    inner: Arc<Mutex<HashMap<String, Instant>>>,
    ttl: Duration,
    cap: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(SESSION_TTL, MAX_SESSIONS)
    }
}

impl Sessions {
    pub(crate) fn new(ttl: Duration, cap: usize) -> Sessions {
        Sessions {
            inner: Arc::default(),
            ttl,
            cap: cap.max(1),
        }
    }

    /// How long a new session lasts.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding the lock leaves a table that is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session and returns its id (64 hex characters).
    pub(crate) fn create(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let now = Instant::now();
        let mut table = self.table();
        if table.len() >= self.cap {
            table.retain(|_, expiry| *expiry > now);
        }
        while table.len() >= self.cap {
            let Some(soonest) = table
                .iter()
                .min_by_key(|(_, expiry)| **expiry)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            table.remove(&soonest);
        }
        table.insert(id.clone(), now + self.ttl);
        id
    }

    /// Whether `id` is a live session. The lookup is by hash; the stored id is then compared
    /// in constant time.
    pub(crate) fn is_live(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut table = self.table();
        match table.get_key_value(id) {
            Some((k, expiry)) if *expiry > now => constant_time_eq(k.as_bytes(), id.as_bytes()),
            Some(_) => {
                table.remove(id);
                false
            }
            None => false,
        }
    }

    /// Ends `id` (nothing if it is not a session).
    pub(crate) fn revoke(&self, id: &str) {
        self.table().remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_live_until_revoked() {
        let s = Sessions::default();
        let a = s.create();
        let b = s.create();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(s.is_live(&a) && s.is_live(&b));
        s.revoke(&a);
        assert!(!s.is_live(&a));
        assert!(s.is_live(&b));
        assert!(!s.is_live(&"0".repeat(64)));
    }

    #[test]
    fn a_session_expires() {
        let s = Sessions::new(Duration::from_millis(20), 10);
        let a = s.create();
        assert!(s.is_live(&a));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!s.is_live(&a));
        assert_eq!(s.len(), 0, "an expired session found is dropped");
    }

    #[test]
    fn the_table_is_bounded_and_drops_the_oldest_first() {
        let s = Sessions::new(Duration::from_secs(60), 3);
        let first = s.create();
        std::thread::sleep(Duration::from_millis(2));
        let rest: Vec<String> = (0..3).map(|_| s.create()).collect();
        assert_eq!(s.len(), 3);
        assert!(!s.is_live(&first));
        assert!(rest.iter().all(|id| s.is_live(id)));
    }
}
