//! Caps on live streams (`/v1/surges/stream`) open at once: per client IP address and in
//! all. A stream holds a [`Slot`] for as long as it runs; dropping it (the client went away,
//! the gateway stops) frees the place. A leaf: the stream handler uses it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// This client has its share open already.
    Client,
    /// The gateway has every stream it serves open.
    Total,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// The open streams, counted.
#[derive(Debug, Clone)]
pub(crate) struct StreamSlots {
    counts: Arc<Mutex<Counts>>,
    per_client: usize,
    total: usize,
}

/// One open stream's place; freed on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    counts: Arc<Mutex<Counts>>,
    client: IpAddr,
}

impl StreamSlots {
    pub(crate) fn new(per_client: usize, total: usize) -> StreamSlots {
        StreamSlots {
            counts: Arc::default(),
            per_client,
            total,
        }
    }

    /// Takes a place for a stream from `client`, if there is one.
    pub(crate) fn acquire(&self, client: IpAddr) -> Result<Slot, Full> {
        let mut c = lock(&self.counts);
        if c.total >= self.total {
            return Err(Full::Total);
        }
        let mine = c.per_client.entry(client).or_insert(0);
        if *mine >= self.per_client {
            return Err(Full::Client);
        }
        *mine += 1;
        c.total += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            client,
        })
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                c.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_per_client_and_in_all_and_freed_on_drop() {
        let slots = StreamSlots::new(2, 3);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let a1 = slots.acquire(a).unwrap();
        let _a2 = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(a).unwrap_err(), Full::Client);
        let _b1 = slots.acquire(b).unwrap();
        assert_eq!(slots.acquire(b).unwrap_err(), Full::Total);
        drop(a1);
        assert!(slots.acquire(b).is_ok());
        assert!(lock(&slots.counts).per_client.len() <= 2);
    }
}
