//! A scripted webhook receiver: answers as a test tells it to (500 until a time, 429 with
//! `Retry-After`, slow answers) and records every POST it sees, on any path, with its
//! exact bytes, signature, event id and arrival time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Hold every POST this long before answering (it is recorded on arrival).
    pub latency: Duration,
}

/// One POST the receiver saw, and what it answered.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub path: String,
    pub event_id: String,
    pub signature: String,
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
        let answer = if attempts.len() < b.fail_first || b.fail_for.is_some_and(|d| at < first + d)
        {
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        } else if attempts.len() < b.throttle_first {
            (StatusCode::TOO_MANY_REQUESTS, Some(b.retry_after_secs))
        } else {
            (StatusCode::OK, None)
        };
        attempts.push(Attempt {
            path: uri.path().to_string(),
            event_id: header("x-borderwatch-event-id"),
            signature: header("x-borderwatch-signature"),
            body,
            at,
            status: answer.0.as_u16(),
        });
        answer
    };
    if !b.latency.is_zero() {
        tokio::time::sleep(b.latency).await;
    }
    let mut resp = status.into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    resp
}

impl ScriptedReceiver {
    pub async fn start(behaviour: Behaviour) -> ScriptedReceiver {
        let inner = Arc::new(Inner {
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

    /// POSTs the receiver is holding now (arrived, not yet answered).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until `pred` holds for the attempts seen, or panics after `timeout`.
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
