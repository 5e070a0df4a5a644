//! A scripted webhook receiver, the one every test uses: answers as a test tells it to (a
//! script of statuses, 500 until a time or while switched down, 429 with `Retry-After`, slow
//! answers, redirects, long error bodies) and records every POST it sees, on any path, with
//! its exact bytes, headers, signature, event id and arrival time.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// How the receiver answers.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer `500` to the first this many POSTs.
    pub fail_first: usize,
    /// Answer `500` to every POST for this long from the first POST on.
    pub fail_for: Option<Duration>,
    /// Answer `429` with `Retry-After: <retry_after_secs>` to the first this many POSTs.
    pub throttle_first: usize,
    pub retry_after_secs: u64,
    /// Send that `Retry-After` as an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`): the
    /// whole second `retry_after_secs` after the answer, rounded up.
    pub retry_after_date: bool,
    /// Hold every POST this long before answering (it is recorded on arrival); see also
    /// [`ScriptedReceiver::set_delay`].
    pub latency: Duration,
    /// Statuses to answer POSTs with, in order, once the rules above let a POST through;
    /// `200` once they run out.
    pub script: Vec<u16>,
    /// Answer every POST `302 Found` to this URL (a sender must not follow it).
    pub redirect_to: Option<String>,
    /// Send this many bytes of body with every answer that is not 2xx (a sender must not
    /// read them all, nor keep them).
    pub error_body_bytes: usize,
}

/// A script of statuses (`&[500, 503]`: two failures, then success), the rest as default.
impl<const N: usize> From<&[u16; N]> for Behaviour {
    fn from(script: &[u16; N]) -> Behaviour {
        Behaviour {
            script: script.to_vec(),
            ..Behaviour::default()
        }
    }
}

/// One POST the receiver saw, and what it answered.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub path: String,
    pub event_id: String,
    pub signature: String,
    /// Every header of the POST (the Standard Webhooks ones among them).
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    pub status: u16,
}

impl Attempt {
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug)]
struct Inner {
    behaviour: Behaviour,
    attempts: Mutex<Vec<Attempt>>,
    in_flight: AtomicUsize,
    /// What is left of `behaviour.script`.
    script: Mutex<VecDeque<u16>>,
    /// Answer 500 to every POST while set ([`ScriptedReceiver::set_down`]).
    down: AtomicBool,
    /// How long to hold every POST (starts as `behaviour.latency`).
    latency: Mutex<Duration>,
}

/// A webhook receiver on a random loopback port that answers every path.
#[derive(Debug, Clone)]
pub struct ScriptedReceiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

/// Decrements the in-flight count however the handler ends (a dropped connection too).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn take(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    inner.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(&inner.in_flight);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let b = &inner.behaviour;
    let (status, retry_after) = {
        let mut attempts = inner.attempts.lock().unwrap();
        let first = attempts.first().map_or(at, |a| a.at);
        let answer = if b.redirect_to.is_some() {
            (StatusCode::FOUND, None)
        } else if inner.down.load(Ordering::SeqCst)
            || attempts.len() < b.fail_first
            || b.fail_for.is_some_and(|d| at < first + d)
        {
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        } else if attempts.len() < b.throttle_first {
            (StatusCode::TOO_MANY_REQUESTS, Some(b.retry_after_secs))
        } else {
            let scripted = inner.script.lock().unwrap().pop_front();
            let status = scripted.and_then(|s| StatusCode::from_u16(s).ok());
            (status.unwrap_or(StatusCode::OK), None)
        };
        attempts.push(Attempt {
            path: uri.path().to_string(),
            event_id: header("x-borderwatch-event-id"),
            signature: header("x-borderwatch-signature"),
            headers: headers.clone(),
            body,
            at,
            status: answer.0.as_u16(),
        });
        answer
    };
    let latency = *inner.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut resp = if !status.is_success() && b.error_body_bytes > 0 {
        // A page of the same line, so a test can tell whether any of it was kept.
        let line = b"receiver error body ";
        let body: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(b.error_body_bytes)
            .collect();
        (status, body).into_response()
    } else {
        status.into_response()
    };
    if let Some(to) = &b.redirect_to {
        resp.headers_mut().insert(
            "location",
            HeaderValue::from_str(to).expect("a redirect target that is a header value"),
        );
    }
    if let Some(secs) = retry_after {
        let value = if b.retry_after_date {
            HeaderValue::from_str(&http_date_in(secs)).expect("a date is a header value")
        } else {
            HeaderValue::from(secs)
        };
        resp.headers_mut().insert("retry-after", value);
    }
    resp
}

/// The IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of the whole second at least `secs`
/// from now.
fn http_date_in(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let t = now.as_secs() + secs + u64::from(now.subsec_nanos() > 0);
    let (days, rem) = ((t / 86_400) as i64, t % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl ScriptedReceiver {
    /// Starts a receiver that answers as `behaviour` says: a [`Behaviour`], or just a script
    /// of statuses (`&[500, 503]`, `&[]`).
    pub async fn start(behaviour: impl Into<Behaviour>) -> ScriptedReceiver {
        let behaviour = behaviour.into();
        let inner = Arc::new(Inner {
            script: Mutex::new(behaviour.script.iter().copied().collect()),
            down: AtomicBool::new(false),
            latency: Mutex::new(behaviour.latency),
            behaviour,
            attempts: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/{*path}", post(take))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ScriptedReceiver { addr, inner }
    }

    /// The URL of `path` (without a leading slash) on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Answers 500 to every POST from now on while `down` (a receiver that went away).
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Holds every POST from now on this long before answering.
    pub fn set_delay(&self, delay: Duration) {
        *self.inner.latency.lock().unwrap() = delay;
    }

    /// Every POST seen, in arrival order, failed ones included.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.inner.attempts.lock().unwrap().clone()
    }

    /// The POSTs answered 2xx.
    pub fn accepted(&self) -> Vec<Attempt> {
        self.attempts()
            .into_iter()
            .filter(Attempt::accepted)
            .collect()
    }

    /// How many accepted POSTs each event id got.
    pub fn accepted_per_event(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for a in self.inner.attempts.lock().unwrap().iter() {
            if a.accepted() {
                *out.entry(a.event_id.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Accepted POSTs so far (cheap: no copies).
    pub fn accepted_count(&self) -> usize {
        self.inner
            .attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.accepted())
            .count()
    }

    /// POSTs seen so far, failed ones included (cheap: no copies).
    pub fn seen(&self) -> usize {
        self.inner.attempts.lock().unwrap().len()
    }

    /// What a subscriber received: the POSTs answered 2xx ([`ScriptedReceiver::accepted`]).
    pub fn received(&self) -> Vec<Attempt> {
        self.accepted()
    }

    /// Waits up to 20 s until at least `n` POSTs were accepted, and returns the accepted ones.
    pub async fn wait_for(&self, n: usize, what: &str) -> Vec<Attempt> {
        self.wait_accepted(Duration::from_secs(20), what, |a| a.len() >= n)
            .await
    }

    /// POSTs the receiver is holding now (arrived, not yet answered).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until `pred` holds for the accepted POSTs, and returns them; panics after
    /// `timeout`.
    pub async fn wait_accepted(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Attempt]) -> bool,
    ) -> Vec<Attempt> {
        let all = self
            .wait_until(timeout, what, |r| {
                let accepted: Vec<Attempt> = r.iter().filter(|a| a.accepted()).cloned().collect();
                pred(&accepted)
            })
            .await;
        all.into_iter().filter(|a| a.accepted()).collect()
    }

    /// Waits until `pred` holds for the attempts seen, and returns them; panics after
    /// `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Attempt]) -> bool,
    ) -> Vec<Attempt> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.attempts();
            if pred(&got) {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                let accepted = got.iter().filter(|a| a.accepted()).count();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; saw {} POSTs, {accepted} accepted",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// POSTs `body` to `url`'s path by hand and returns the status the receiver answered.
    async fn post(receiver: &ScriptedReceiver, path: &str, event: &str) -> u16 {
        let mut conn = tokio::net::TcpStream::connect(receiver.addr).await.unwrap();
        let request = format!(
            "POST /{path} HTTP/1.1\r\nHost: x\r\nX-Borderwatch-Event-Id: {event}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        response.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn a_script_of_statuses_then_success_and_down_while_switched() {
        let r = ScriptedReceiver::start(&[500, 503]).await;
        assert_eq!(post(&r, "hook", "a").await, 500);
        assert_eq!(post(&r, "hook", "a").await, 503);
        assert_eq!(post(&r, "hook", "a").await, 200);
        r.set_down(true);
        assert_eq!(post(&r, "other/path", "b").await, 500);
        r.set_down(false);
        assert_eq!(post(&r, "other/path", "b").await, 200);
        assert_eq!(r.seen(), 5);
        let got = r.wait_for(2, "two accepted").await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].path, "/other/path");
        assert_eq!(r.accepted_per_event()["b"], 1);
    }

    #[tokio::test]
    async fn throttles_with_retry_after_first() {
        let r = ScriptedReceiver::start(Behaviour {
            throttle_first: 1,
            retry_after_secs: 7,
            ..Behaviour::default()
        })
        .await;
        assert_eq!(post(&r, "h", "a").await, 429);
        assert_eq!(post(&r, "h", "a").await, 200);
        assert_eq!(r.received().len(), 1);
    }
}
