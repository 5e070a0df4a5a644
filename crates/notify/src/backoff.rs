//! When to try a failed delivery again: exponential backoff with jitter, and the
//! receiver's `Retry-After` when it gives one.

use std::time::Duration;

/// The retry policy of one delivery.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// After this long since the first attempt the delivery is given up: recorded failed
    /// and sent to the dead-letter stream.
    pub max_age: Duration,
    /// After this many attempts, likewise.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            max_age: Duration::from_secs(24 * 3600),
            max_attempts: 50,
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt + 1` (attempt counts from 1), given a jitter draw in
    /// [0, 1) and the receiver's `Retry-After`, which wins when it asks for longer.
    pub fn delay(&self, attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        // "Equal jitter": half fixed, half random, so retries spread but never collapse to 0.
        let base = exp / 2 + exp.mul_f64(0.5 * jitter.clamp(0.0, 1.0));
        match retry_after {
            Some(ra) if ra > base => ra,
            _ => base,
        }
    }
}

impl Backoff {
    /// Whether a delivery that failed `attempts` times over `elapsed` is given up.
    pub fn exhausted(&self, attempts: u32, elapsed: Duration) -> bool {
        attempts >= self.max_attempts.max(1) || elapsed >= self.max_age
    }
}

/// Reads `Retry-After` as seconds (the HTTP-date form is read as "retry soon").
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 1.0, None), Duration::from_millis(500));
        assert_eq!(b.delay(2, 1.0, None), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.0, None), Duration::from_secs(1));
        assert_eq!(b.delay(30, 1.0, None), Duration::from_secs(60));
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let b = Backoff::default();
        assert_eq!(
            b.delay(1, 0.5, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert!(b.delay(10, 0.5, Some(Duration::from_secs(2))) > Duration::from_secs(2));
    }

    #[test]
    fn gives_up_at_max_attempts_or_max_age() {
        let b = Backoff {
            max_attempts: 3,
            max_age: Duration::from_secs(60),
            ..Backoff::default()
        };
        assert!(!b.exhausted(2, Duration::from_secs(59)));
        assert!(b.exhausted(3, Duration::ZERO));
        assert!(b.exhausted(1, Duration::from_secs(60)));
    }

    #[test]
    fn parses_retry_after_seconds() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
