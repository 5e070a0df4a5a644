//! The router: the table of routes (every one documented in the OpenAPI document; a test
//! checks both ways with [`routed_paths`]) and the layers around them. Requests pass,
//! outermost first: the request log, metrics, error normalisation, CORS, the per-client rate
//! limit, the timeout, the body limits (small everywhere, the upload limit on the upload
//! route), the host, origin and content-type checks (`guard.rs`) and the token check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use borderwatch_bus::Bus;
use tokio_util::sync::CancellationToken;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::warn;

use crate::api::{
    chart, deliveries, health, incidents, ingest, releases, series, silences, subscriptions, surges,
};
use crate::config::{GatewayConfig, RateLimit, allowed_origins};
use crate::error::ApiError;
use crate::state::AppState;
use crate::surges::SurgeIndex;
use crate::{auth, dashboard, openapi, telemetry};

/// The routes, each with its handlers: each is in the OpenAPI document
/// ([`openapi::ApiDoc`]); a test checks both ways.
fn table() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(dashboard::home_page)),
        (
            "/series/{source}/{country}/{category}",
            get(dashboard::series_page),
        ),
        ("/login", get(dashboard::login_form).post(dashboard::login)),
        ("/logout", post(dashboard::logout)),
        ("/healthz", get(health::healthz)),
        ("/readyz", get(health::readyz)),
        ("/metrics", get(telemetry::metrics_handler)),
        ("/openapi.json", get(openapi::document)),
        ("/docs", get(openapi::docs_page)),
        // The one route that takes large bodies (its handler stops a body at
        // `max_body_bytes` as it streams it); every other keeps the small limit.
        (
            crate::guard::UPLOAD_PATH,
            post(ingest::ingest).layer(DefaultBodyLimit::disable()),
        ),
        ("/v1/series", get(series::list_series)),
        (
            "/v1/series/{source}/{country}/{category}",
            get(series::get_series),
        ),
        (
            "/v1/series/{source}/{country}/{category}/chart.svg",
            get(chart::chart_svg),
        ),
        (
            "/v1/series/{source}/{country}/{category}/chart.png",
            get(chart::chart_png),
        ),
        ("/v1/surges", get(surges::list_surges)),
        ("/v1/surges/stream", get(surges::stream_surges)),
        ("/v1/surges/{id}", get(surges::get_surge)),
        ("/v1/incidents", get(incidents::list_incidents)),
        (
            "/v1/subscriptions",
            post(subscriptions::create_subscription).get(subscriptions::list_subscriptions),
        ),
        (
            "/v1/subscriptions/{id}",
            get(subscriptions::get_subscription)
                .patch(subscriptions::patch_subscription)
                .delete(subscriptions::delete_subscription),
        ),
        (
            "/v1/subscriptions/{id}/test",
            post(subscriptions::test_subscription),
        ),
        (
            "/v1/subscriptions/{id}/deliveries",
            get(deliveries::list_deliveries),
        ),
        (
            "/v1/subscriptions/{id}/dead-letters",
            get(deliveries::list_dead_letters),
        ),
        (
            "/v1/subscriptions/{id}/dead-letters/{event}/redeliver",
            post(deliveries::redeliver),
        ),
        (
            "/v1/silences",
            post(silences::create_silence).get(silences::list_silences),
        ),
        (
            "/v1/silences/{id}",
            get(silences::get_silence)
                .patch(silences::patch_silence)
                .delete(silences::delete_silence),
        ),
        ("/v1/releases", get(releases::list_releases)),
        ("/v1/releases/{id}", get(releases::get_release)),
    ]
}

/// The paths the router serves, read from the table it is built from.
pub fn routed_paths() -> Vec<&'static str> {
    table().into_iter().map(|(path, _)| path).collect()
}

fn routes() -> Router<AppState> {
    table()
        .into_iter()
        .fold(Router::new(), |app, (path, handlers)| {
            app.route(path, handlers)
        })
}

/// The routes in their layers, over `surges`.
pub(crate) fn build(
    bus: Bus,
    surges: SurgeIndex,
    cfg: GatewayConfig,
    addr: SocketAddr,
    cancel: CancellationToken,
) -> Router {
    telemetry::install();
    let state = AppState {
        cancel: cancel.clone(),
        surges,
        bus,
        cfg: Arc::new(cfg.clone()),
        sessions: crate::session::Sessions::default(),
        streams: crate::streams::StreamSlots::new(cfg.max_streams_per_client, cfg.max_streams),
        loopback: addr.ip().is_loopback(),
        series_keys: crate::series_keys::SeriesKeys::default(),
    };
    // Layers added later wrap those added before. Each layer of a router costs a boxed
    // service and future per request, so the cheap ones in sequence are one: the timeout,
    // the body limit, then `access` (host, origin and content-type checks, then the token).
    let mut app = routes().fallback(not_found).layer((
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, cfg.request_timeout),
        DefaultBodyLimit::max(cfg.max_json_bytes),
        middleware::from_fn_with_state(Arc::new(state.clone()), access),
    ));
    app = with_rate_limit(app, cfg.rate_limit, &cancel);
    match cors_layer(&cfg.cors_origins) {
        Ok(Some(cors)) => app = app.layer(cors),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "CORS is off"),
    }
    // Outermost: the request log, then metrics around error normalisation (one layer).
    telemetry::with_request_log(app).with_state(state)
}

/// The host, origin and content-type checks (`guard.rs`), then the token check (`auth.rs`),
/// in one middleware: both are a few comparisons on the request's head.
async fn access(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(refusal) = crate::guard::refusal(&state, &request) {
        return refusal.into_response();
    }
    if let Some(refusal) = auth::refusal(&state, &request) {
        return refusal;
    }
    next.run(request).await
}

/// Adds the per-client-IP limit (tower_governor). The key is the TCP peer address: behind a
/// reverse proxy every client shares the proxy's budget, so limit there instead or raise it.
fn with_rate_limit(
    app: Router<AppState>,
    limit: Option<RateLimit>,
    cancel: &CancellationToken,
) -> Router<AppState> {
    let Some(limit) = limit else {
        return app;
    };
    let Some(conf) = GovernorConfigBuilder::default()
        .period(Duration::from_secs(1) / limit.per_second.max(1))
        .burst_size(limit.burst.max(1))
        .key_extractor(PeerIpKeyExtractor)
        .finish()
    else {
        warn!(?limit, "the rate limit is off: its settings were refused");
        return app;
    };
    // Forget idle clients now and then, so the table does not grow with every address seen.
    let limiter = conf.limiter().clone();
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => limiter.retain_recent(),
            }
        }
    });
    app.layer(
        GovernorLayer::new(conf).error_handler(|e| match e {
            tower_governor::GovernorError::TooManyRequests { wait_time, headers } => {
                let mut resp = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "too many requests from this address: retry in {wait_time} s (see Retry-After)"
                    ),
                )
                .into_response();
                if let Some(h) = headers {
                    resp.headers_mut().extend(h);
                }
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait_time.max(1)),
                );
                resp
            }
            tower_governor::GovernorError::UnableToExtractKey => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the rate limit needs the client address: serve with connect info",
            )
            .into_response(),
            tower_governor::GovernorError::Other { code, msg, .. } => {
                ApiError::new(code, "rate_limited", msg.unwrap_or_default()).into_response()
            }
        }),
    )
}

/// CORS from the configured origins: `None` when there are none (same origin only).
fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    let Some(allow) = allowed_origins(origins)? else {
        return Ok(None);
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::LINK, header::RETRY_AFTER, header::ETAG])
            .max_age(Duration::from_secs(600)),
    ))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
