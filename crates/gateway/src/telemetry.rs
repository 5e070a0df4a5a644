//! Observability: the Prometheus registry every role of a process records into, `/metrics`,
//! the per-request counter and latency histogram, and the request log line.
//!
//! The recorder is process-wide (the `metrics` facade): in `borderwatch up` the ingest,
//! analytics and notify roles count into it with one-line `metrics::counter!` calls and the
//! gateway's `/metrics` shows them; a role in its own process serves them on `--metrics-addr`
//! ([`serve_metrics`]).

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use borderwatch_bus::Bus;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::state::AppState;

/// Seconds: from a cache hit to a slow upload.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
/// `None` when another recorder was installed first: then `/metrics` answers 503.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("borderwatch_http_request_duration_seconds".into()),
                    &LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("borderwatch_notification_latency_seconds".into()),
                        &borderwatch_notify::telemetry::NOTIFICATION_LATENCY_BUCKETS,
                    )
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    warn!(error = %e, "cannot install the metrics recorder; /metrics is off");
                    None
                }
            }
        })
        .clone()
}

/// Help texts, and every labelled series at zero so a dashboard sees them before the first
/// event.
fn describe() {
    use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "borderwatch_http_requests_total",
        "HTTP requests answered, by route and status"
    );
    describe_histogram!(
        "borderwatch_http_request_duration_seconds",
        Unit::Seconds,
        "time to answer an HTTP request (to the first byte of the body), by route"
    );
    describe_counter!(
        "borderwatch_rows_ingested_total",
        "observations accepted by ingest"
    );
    describe_counter!(
        "borderwatch_releases_total",
        "releases ingested (new content; a repeated upload is not counted)"
    );
    describe_counter!(
        "borderwatch_surges_total",
        "surges announced by analytics, by severity"
    );
    describe_counter!(
        "borderwatch_deliveries_total",
        "webhook delivery attempts, by outcome"
    );
    describe_gauge!(
        "borderwatch_nats_connected",
        "1 while the bus is connected, 0 while it is not"
    );
    describe_histogram!(
        "borderwatch_notification_latency_seconds",
        Unit::Seconds,
        "notify: from a surge's announcement (a digest's earliest surge) to the receiver's 2xx, by format and notice kind"
    );
    describe_gauge!(
        "borderwatch_consumer_pending_messages",
        "messages a durable consumer has not yet been handed (notify on BW_SURGES, analytics on BW_RELEASES)"
    );
    describe_gauge!(
        "borderwatch_consumer_ack_pending_messages",
        "messages a durable consumer was handed and has not acknowledged yet"
    );
    describe_gauge!(
        "borderwatch_dead_letters",
        "notify: notices given up on (BW_DEADLETTER) and not resent since"
    );
    describe_gauge!(
        "borderwatch_silences_active",
        "notify: silences in force now"
    );
    describe_gauge!(
        "borderwatch_incidents_open",
        "analytics: open incidents in bw_incidents, by direction (rise, fall)"
    );
    describe_gauge!(
        "borderwatch_source_last_success_timestamp_seconds",
        Unit::Seconds,
        "ingest: when each scheduled source was last fetched and its content ingested or known (Unix time)"
    );
    describe_gauge!(
        "borderwatch_source_interval_seconds",
        Unit::Seconds,
        "ingest: each scheduled source's polling interval (`every`)"
    );
    counter!("borderwatch_rows_ingested_total").absolute(0);
    counter!("borderwatch_releases_total").absolute(0);
    for severity in ["low", "medium", "high", "critical"] {
        counter!("borderwatch_surges_total", "severity" => severity).absolute(0);
    }
    for outcome in ["delivered", "retrying", "failed", "silenced"] {
        counter!("borderwatch_deliveries_total", "outcome" => outcome).absolute(0);
    }
}

/// The request metrics' handles by route (the router's pattern) and status, so that a
/// request neither builds their keys (two labels: allocated, hashed) nor looks them up in
/// the recorder's registry: it finds them here, under a read lock, and records.
#[derive(Default)]
struct RouteMetrics {
    duration: Option<metrics::Histogram>,
    by_status: Vec<(u16, metrics::Counter)>,
}

static ROUTE_METRICS: LazyLock<RwLock<HashMap<Box<str>, RouteMetrics>>> =
    LazyLock::new(RwLock::default);

/// Counts one answer for `route` with `status` and records its latency.
fn record(route: &str, status: StatusCode, seconds: f64) {
    let code = status.as_u16();
    {
        let routes = ROUTE_METRICS.read().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = routes.get(route)
            && let (Some(duration), Some((_, counter))) =
                (&m.duration, m.by_status.iter().find(|(c, _)| *c == code))
        {
            counter.increment(1);
            duration.record(seconds);
            return;
        }
    }
    let mut routes = ROUTE_METRICS.write().unwrap_or_else(|e| e.into_inner());
    let m = routes.entry(route.into()).or_default();
    let duration = m.duration.get_or_insert_with(|| {
        metrics::histogram!("borderwatch_http_request_duration_seconds", "route" => route.to_string())
    });
    duration.record(seconds);
    let counter = match m.by_status.iter().find(|(c, _)| *c == code) {
        Some((_, counter)) => counter,
        None => {
            let counter = metrics::counter!(
                "borderwatch_http_requests_total",
                "route" => route.to_string(),
                "status" => code.to_string()
            );
            m.by_status.push((code, counter));
            &m.by_status[m.by_status.len() - 1].1
        }
    };
    counter.increment(1);
}

/// Middleware, the outer half of the router's layers (inside the request log): counts every
/// answer by route and status and records its latency, after an error answer that is not
/// JSON has been given the API's error body ([`crate::error::normalize`]). The route is the
/// router's pattern (`/v1/series/{source}/{country}/{category}`), never the raw path, so the
/// label set stays small; unrouted requests are `unmatched`.
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let start = Instant::now();
    let resp = crate::error::normalize(next.run(request).await).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    record(route, resp.status(), start.elapsed().as_secs_f64());
    resp
}

pub(crate) fn route_of(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string())
}

/// The outer layers, as one (a layer of the router costs a boxed service per request): the
/// request log line, in the request's span (method, route, path), with status and latency,
/// then [`observe`]. Headers are not logged: the Authorization token never reaches a log.
pub(crate) fn with_request_log(app: axum::Router<AppState>) -> axum::Router<AppState> {
    let log = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            tracing::info_span!(
                "request",
                method = %req.method(),
                route = %route_of(req),
                path = %req.uri().path(),
            )
        })
        .on_request(())
        .on_response(
            |resp: &Response, latency: Duration, _span: &tracing::Span| {
                info!(
                    status = resp.status().as_u16(),
                    latency_ms = latency.as_secs_f64() * 1000.0,
                    "request"
                );
            },
        )
        .on_body_chunk(())
        .on_eos(())
        .on_failure(());
    app.layer((log, axum::middleware::from_fn(observe)))
}

/// Metrics in Prometheus text format, every name `borderwatch_…`: requests by route and
/// status with latency histograms, rows ingested, releases, surges by severity, deliveries by
/// outcome, and whether the bus is connected; in `borderwatch up`, also what the other roles
/// record (notification latency, consumer lag, dead letters, silences, open incidents,
/// scheduled sources' last success; see docs/gateway.md). Needs the read token when the
/// gateway has one.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
#[allow(dead_code)] // documents metrics_handler
pub(crate) fn metrics_doc() {}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics_handler(State(state): State<AppState>) -> Response {
    render(&state.bus)
}

fn render(bus: &Bus) -> Response {
    metrics::gauge!("borderwatch_nats_connected").set(if bus.is_connected() { 1.0 } else { 0.0 });
    match HANDLE.get().cloned().flatten() {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                handle.render(),
            )
                .into_response()
        }
        None => crate::error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "metrics are off: another metrics recorder was installed in this process",
        )
        .into_response(),
    }
}

/// Serves `/metrics` alone on `listener` until `cancel` fires: for a role in its own process
/// (`borderwatch analytics --metrics-addr …`).
pub async fn serve_metrics(
    bus: Bus,
    listener: TcpListener,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    install();
    let app = axum::Router::new().route("/metrics", get(move || async move { render(&bus) }));
    info!(addr = %listener.local_addr()?, "metrics listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}
