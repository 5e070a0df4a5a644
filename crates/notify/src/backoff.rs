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

/// The longest a receiver's `Retry-After` may hold a delivery back: a later time (or a
/// bigger number) waits this long, and the retry policy's `max_age` still gives up on time.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// Reads `Retry-After` in either of its forms (RFC 9110 §10.2.3): delta-seconds (`120`) or
/// an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`, or the obsolete RFC 850 and asctime
/// forms), as the wait from now; a date already past is no wait. At most
/// [`RETRY_AFTER_CAP`]. `None` when the value is neither.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, time::OffsetDateTime::now_utc())
}

/// [`parse_retry_after`] as of `now`.
pub fn parse_retry_after_at(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = parse_http_date(value)?;
            Duration::try_from(at - now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(RETRY_AFTER_CAP))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date in any of the three forms a recipient must accept (RFC 9110 §5.6.7):
/// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`
/// and asctime `Sun Nov  6 08:49:37 1994`. The weekday is not checked.
pub fn parse_http_date(value: &str) -> Option<time::OffsetDateTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let (day, month, year, clock) = match parts.as_slice() {
        [_, day, month, year, clock, "GMT"] => (*day, *month, year.parse::<i32>().ok()?, *clock),
        [_, dmy, clock, "GMT"] => {
            let mut it = dmy.split('-');
            let (day, month, yy) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() || yy.len() != 2 {
                return None;
            }
            // Two digits: RFC 9110 reads a year more than 50 years ahead as the past
            // century's.
            let yy: i32 = yy.parse().ok()?;
            let this_year = time::OffsetDateTime::now_utc().year();
            let year = this_year - this_year.rem_euclid(100) + yy;
            (
                day,
                month,
                if year > this_year + 50 {
                    year - 100
                } else {
                    year
                },
                *clock,
            )
        }
        [_, month, day, clock, year] => (*day, *month, year.parse::<i32>().ok()?, *clock),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u8 + 1;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day.parse().ok()?)
            .ok()?;
    let mut hms = clock.split(':').map(|n| n.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
        return None;
    }
    let time = time::Time::from_hms(h, m, s).ok()?;
    Some(time::PrimitiveDateTime::new(date, time).assume_utc())
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
        assert_eq!(parse_retry_after("99999"), Some(RETRY_AFTER_CAP), "capped");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-5"), None);
    }

    #[test]
    fn parses_retry_after_as_an_http_date_in_each_form() {
        let now = time::macros::datetime!(2026-10-21 07:27:00 UTC);
        let minute = Some(Duration::from_secs(60));
        assert_eq!(
            parse_retry_after_at("Wed, 21 Oct 2026 07:28:00 GMT", now),
            minute
        );
        assert_eq!(
            parse_retry_after_at("Wednesday, 21-Oct-26 07:28:00 GMT", now),
            minute
        );
        assert_eq!(
            parse_retry_after_at("Wed Oct 21 07:28:00 2026", now),
            minute
        );
        assert_eq!(
            parse_retry_after_at("Wed Oct  1 07:28:00 2026", now),
            Some(Duration::ZERO),
            "past: no wait"
        );
        assert_eq!(
            parse_retry_after_at("Thu, 22 Oct 2026 07:27:00 GMT", now),
            Some(RETRY_AFTER_CAP),
            "a day ahead is capped"
        );
        for bad in [
            "Wed, 21 Oct 2026 07:28:00 CET",
            "Wed, 32 Oct 2026 07:28:00 GMT",
            "Wed, 21 Foo 2026 07:28:00 GMT",
            "Wed, 21 Oct 2026 25:28:00 GMT",
            "Wed, 21 Oct 2026 07:28 GMT",
            "",
        ] {
            assert_eq!(parse_retry_after_at(bad, now), None, "{bad}");
        }
    }
}
