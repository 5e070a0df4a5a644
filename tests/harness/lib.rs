//! Test harness for borderwatch's end-to-end tests: a webhook receiver that records every
//! POST with its exact bytes, and small HTTP helpers; a scripted receiver (`webhook`),
//! roles as OS processes (`process`) and surge events fed straight to notify (`surges`).

pub mod process;
pub mod surges;
pub mod webhook;

pub use process::{RoleProcess, built_borderwatch_bin};
pub use webhook::{Attempt, Behaviour, ScriptedReceiver};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One POST the receiver took.
#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub signature: String,
    pub body: Bytes,
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    /// Answer this many POSTs with 500 before accepting.
    fail_first: usize,
    seen: usize,
}

/// A webhook receiver on a random loopback port.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

async fn take(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inner = inner.lock().unwrap();
    inner.seen += 1;
    if inner.seen <= inner.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    inner.received.push(Received {
        event_id: header("x-borderwatch-event-id"),
        signature: header("x-borderwatch-signature"),
        body,
    });
    StatusCode::OK
}

impl Receiver {
    /// Starts a receiver that answers the first `fail_first` POSTs with 500.
    pub async fn start(fail_first: usize) -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            fail_first,
            ..Default::default()
        }));
        let app = Router::new()
            .route("/hook", post(take))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// POSTs seen, failed ones included.
    pub fn attempts(&self) -> usize {
        self.inner.lock().unwrap().seen
    }

    /// Waits until `pred` holds for what was received, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; received {} POSTs",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The demo's North Korea figures as a generic CSV, the input of the headline case.
pub fn headline_csv() -> String {
    borderwatch_ingest::demo::demo_nk_only_csv()
}

/// The `borderwatch` binary that `cargo test` built beside this test (the cli crate's own
/// integration tests make cargo build it).
pub fn borderwatch_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join("borderwatch");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p borderwatch` first)",
        bin.display()
    );
    bin
}
