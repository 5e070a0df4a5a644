//! The gateway: borderwatch's HTTP API, live event stream and dashboard (axum).
//!
//! It owns no state of its own: uploads go to the ingest service over `bw.ingest.submit`,
//! series come from the `bw_series` bucket that analytics writes, surges from the
//! `BW_SURGES` stream, subscriptions live in the `bw_subscriptions` bucket.
//!
//! Every route is described in the OpenAPI document ([`openapi`], served at `/openapi.json`
//! and rendered at `/docs`). Requests pass, outermost first: the request log, metrics, error
//! normalisation, CORS, the per-client rate limit, the timeout, the body limit and the token
//! check.

pub mod auth;
mod dashboard;
mod deliveries;
pub mod error;
pub mod openapi;
mod page;
mod silences;
pub mod surges;
pub mod telemetry;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use borderwatch_bus::{Bus, names};
use borderwatch_ingest::service::{SubmitError, submit_reader};
use borderwatch_model::{
    Country, DigestSpec, PayloadFormat, Period, SeriesView, Severity, Subscription,
    SubscriptionFilter, SurgeEvent, Webhook, now_rfc3339,
};
use futures::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tracing::{info, warn};
use utoipa::{IntoParams, ToSchema};

pub use error::ApiError;
use page::{ApiQuery, Format};
use surges::SurgeIndex;

/// Settings of the gateway.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Required as `Authorization: Bearer …` on every request that changes state.
    pub api_token: Option<String>,
    /// When set, required (or the API token) on every read but `/healthz`, `/readyz`,
    /// `/openapi.json` and `/docs`.
    pub read_token: Option<String>,
    /// Largest accepted request body (uploads).
    pub max_body_bytes: usize,
    /// A request not answered within this gets `408` (the live stream, once started, is not
    /// cut).
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser (CORS); `*` allows any; empty: none.
    pub cors_origins: Vec<String>,
    /// Requests per client IP address; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
}

/// A token bucket per client IP: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 50,
            burst: 100,
        }
    }
}

// By hand, so that a logged configuration never shows a token.
impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |t: &Option<String>| if t.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("GatewayConfig")
            .field("api_token", &set(&self.api_token))
            .field("read_token", &set(&self.read_token))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            api_token: None,
            read_token: None,
            max_body_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            cors_origins: Vec::new(),
            rate_limit: Some(RateLimit::default()),
        }
    }
}

impl GatewayConfig {
    /// Checks what cannot be checked by types: CORS origins are origins, limits are not zero.
    pub fn validate(&self) -> Result<(), String> {
        cors_layer(&self.cors_origins)?;
        if let Some(rl) = self.rate_limit
            && (rl.per_second == 0 || rl.burst == 0)
        {
            return Err(format!(
                "rate limit {} per second, burst {}: both must be at least 1 (or turn the limit off)",
                rl.per_second, rl.burst
            ));
        }
        if self.request_timeout.is_zero() {
            return Err("the request timeout must be longer than zero".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct AppState {
    bus: Bus,
    surges: SurgeIndex,
    cfg: Arc<GatewayConfig>,
    /// Fires at shutdown: long-lived responses (the live stream) end with it.
    cancel: CancellationToken,
}

/// Builds the router over a surge index that is still catching up (`/readyz` says when it
/// is done; [`serve`] waits for it before answering). The rate limit keys on the peer
/// address: serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(bus: Bus, cfg: GatewayConfig, cancel: CancellationToken) -> Router {
    let surges = SurgeIndex::follow(bus.clone(), cancel.clone());
    router_with(bus, surges, cfg, cancel)
}

/// The routes: each is in the OpenAPI document ([`openapi::ApiDoc`]); a test checks both ways.
fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::home_page))
        .route(
            "/series/{source}/{country}/{category}",
            get(dashboard::series_page),
        )
        .route("/login", get(dashboard::login_form).post(dashboard::login))
        .route("/logout", post(dashboard::logout))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(telemetry::metrics_handler))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs_page))
        .route("/v1/ingest", post(ingest))
        .route("/v1/series", get(list_series))
        .route("/v1/series/{source}/{country}/{category}", get(get_series))
        .route("/v1/surges", get(list_surges))
        .route("/v1/surges/stream", get(stream_surges))
        .route("/v1/surges/{id}", get(get_surge))
        .route(
            "/v1/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route("/v1/subscriptions/{id}", delete(delete_subscription))
        .route(
            "/v1/subscriptions/{id}/deliveries",
            get(deliveries::list_deliveries),
        )
        .route(
            "/v1/silences",
            post(silences::create_silence).get(silences::list_silences),
        )
        .route("/v1/silences/{id}", delete(silences::delete_silence))
}

fn router_with(
    bus: Bus,
    surges: SurgeIndex,
    cfg: GatewayConfig,
    cancel: CancellationToken,
) -> Router {
    telemetry::install();
    let state = AppState {
        cancel: cancel.clone(),
        surges,
        bus,
        cfg: Arc::new(cfg.clone()),
    };
    // Layers added later wrap those added before: the token check runs innermost.
    let mut app = routes()
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            cfg.request_timeout,
        ));
    app = with_rate_limit(app, cfg.rate_limit, &cancel);
    match cors_layer(&cfg.cors_origins) {
        Ok(Some(cors)) => app = app.layer(cors),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "CORS is off"),
    }
    let app = app
        .layer(middleware::from_fn(error::normalize))
        .layer(middleware::from_fn(telemetry::track));
    telemetry::with_request_log(app).with_state(state)
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
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let mut list = Vec::new();
        for o in origins {
            let uri: Uri = o.parse().map_err(|_| {
                format!("CORS origin `{o}` is not an origin such as https://example.org")
            })?;
            if uri.scheme().is_none() || uri.host().is_none() || uri.path().len() > 1 {
                return Err(format!(
                    "CORS origin `{o}` is not an origin such as https://example.org (scheme and host, no path)"
                ));
            }
            list.push(
                HeaderValue::from_str(o.trim_end_matches('/'))
                    .map_err(|_| format!("CORS origin `{o}` is not a valid header value"))?,
            );
        }
        AllowOrigin::list(list)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::LINK, header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    ))
}

/// Serves the API on `listener` until `cancel` fires.
pub async fn serve(
    bus: Bus,
    listener: TcpListener,
    cfg: GatewayConfig,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    cfg.validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let addr: SocketAddr = listener.local_addr()?;
    let surges = SurgeIndex::follow(bus.clone(), cancel.clone());
    // Answer only once the surges stored before start are indexed, so that a restarted
    // gateway never serves an empty list; connections wait in the listen backlog meanwhile.
    surges.wait_caught_up(Duration::from_secs(30)).await;
    info!(%addr, indexed = surges.last_seq(), "gateway listening");
    let app = router_with(bus, surges, cfg, cancel.clone());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { cancel.cancelled().await })
    .await
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `connected` and `surges_followed`.
    ready: bool,
    /// `memory` (embedded bus) or `nats`.
    transport: String,
    /// The bus connection is up.
    connected: bool,
    /// The surge index has read what the surge stream held at start.
    surges_followed: bool,
}

/// Readiness: 200 while the bus is connected and the surge index caught up, 503 otherwise
/// (for instance while NATS is unreachable).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "not ready: the body says why", body = Readiness),
    ))]
async fn readyz(State(state): State<AppState>) -> Response {
    let connected = state.bus.is_connected();
    let following = state.surges.is_following();
    let body = Readiness {
        ready: connected && following,
        transport: state.bus.kind().to_string(),
        connected,
        surges_followed: following,
    };
    let status = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IngestParams {
    /// Input format (`generic`, or a native format such as `fsb`); detected when absent.
    format: Option<String>,
    /// Source name, for files without a `source` column.
    source: Option<String>,
}

/// Ingest a file: the body is the file's bytes. Rows that cannot be read are listed in the
/// answer; the rest are ingested.
#[utoipa::path(post, path = "/v1/ingest", tag = "ingest", params(IngestParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the file (CSV or JSON lines, UTF-8, UTF-16 or windows-1251; or a native format)"),
    responses(
        (status = 201, description = "a new release", body = openapi::Release),
        (status = 200, description = "the same bytes came before: nothing new", body = openapi::Release),
        (status = 400, description = "empty body or bad parameters", body = openapi::ErrorBody),
        (status = 401, description = "the API token is missing or wrong", body = openapi::ErrorBody),
        (status = 413, description = "the body is too large", body = openapi::ErrorBody),
        (status = 422, description = "nothing in the file could be read; `details` lists the rows", body = openapi::ErrorBody),
    ),
    security((), ("bearer" = [])))]
async fn ingest(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<IngestParams>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let limit = state.cfg.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the file is larger than {limit} bytes, the most this gateway takes in one \
                 upload: split it into smaller files, or start the gateway with a higher \
                 --max-upload-bytes (BORDERWATCH_MAX_UPLOAD_BYTES)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    // The body is read as it arrives and handed on as it is read: a big upload goes to the
    // object store piece by piece, never whole into this process. A body without a length
    // is stopped as soon as it passes the limit.
    let mut chunks = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let first = loop {
        match chunks.next().await {
            None => {
                return Err(ApiError::bad_request(
                    "the request body is empty: send the file as the body",
                ));
            }
            Some(Ok(chunk)) if chunk.is_empty() => {}
            Some(Ok(chunk)) => break chunk,
            Some(Err(e)) => {
                return Err(ApiError::bad_request(format!(
                    "the upload could not be read: {e}"
                )));
            }
        }
    };
    let upload = tokio_util::io::StreamReader::new(stream::iter([Ok(first)]).chain(chunks));
    let submitted = submit_reader(
        state.bus.as_ref(),
        params.format,
        params.source,
        upload,
        Some(limit as u64),
    )
    .await;
    match submitted {
        Ok(release) => {
            let status = if release.duplicate {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((status, Json(release)).into_response())
        }
        Err(SubmitError::Rejected(body)) => Err(ApiError {
            status: match body.error.code.as_str() {
                "too_many_rows" => StatusCode::PAYLOAD_TOO_LARGE,
                "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
                "internal" => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            body,
        }),
        Err(SubmitError::TooLarge { .. }) => Err(too_large()),
        Err(SubmitError::Read(reason)) => Err(ApiError::bad_request(format!(
            "the upload could not be read: {reason}"
        ))),
        Err(SubmitError::Bus(e)) => Err(e.into()),
        Err(e @ SubmitError::BadReply(_)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_reply",
            e.to_string(),
        )),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SeriesParams {
    /// Country: ISO alpha-2, alpha-3 or an English or Russian name.
    country: Option<String>,
    /// Category, such as `study` or `total`.
    category: Option<String>,
    /// Source, such as `fsb`.
    source: Option<String>,
    /// Page size, 1 to 10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<Format>,
}

fn parse_country(value: &str) -> Result<Country, ApiError> {
    Country::parse(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A series in the list: its key, frequency and latest figure.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SeriesSummary {
    source: String,
    /// ISO 3166-1 alpha-3.
    country: String,
    category: String,
    /// `year`, `quarter` or `month`.
    freq: String,
    /// Number of periods with a figure.
    points: usize,
    last_period: Option<String>,
    last_value: Option<u64>,
    /// Number of surges found in the series.
    surges: usize,
    /// The series' own URL.
    href: String,
}

const SERIES_CSV_HEADER: [&str; 8] = [
    "source",
    "country",
    "category",
    "freq",
    "points",
    "last_period",
    "last_value",
    "surges",
];

/// Series with their latest figure, by key (`source.country.category`), filtered by the
/// query parameters; `format=csv` answers CSV. The next page is at `next` (also the `Link`
/// header).
#[utoipa::path(get, path = "/v1/series", tag = "series", params(SeriesParams),
    responses(
        (status = 200, description = "a page of series", content(
            (openapi::SeriesList = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "a parameter is wrong: the message names it", body = openapi::ErrorBody),
    ))]
async fn list_series(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(params): ApiQuery<SeriesParams>,
) -> Result<Response, ApiError> {
    let country = params.country.as_deref().map(parse_country).transpose()?;
    let limit = page::limit(params.limit, 1000, page::MAX_LIMIT)?;
    let cursor = page::key_cursor(params.cursor.as_deref())?;
    let mut keys = state.bus.kv_keys(names::SERIES_BUCKET).await?;
    keys.sort();
    let mut out: Vec<SeriesSummary> = Vec::new();
    let mut next_cursor = None;
    for key in keys {
        if cursor.is_some_and(|c| key.as_str() <= c) {
            continue;
        }
        let mut parts = key.splitn(3, '.');
        let (Some(source), Some(code), Some(category)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if params.source.as_deref().is_some_and(|s| s != source)
            || params.category.as_deref().is_some_and(|c| c != category)
            || country.is_some_and(|c| c.code() != code)
        {
            continue;
        }
        let Some(raw) = state.bus.kv_get(names::SERIES_BUCKET, &key).await? else {
            continue;
        };
        let Ok(view) = serde_json::from_slice::<SeriesView>(&raw) else {
            continue;
        };
        if out.len() == limit {
            // One more matches: the page is full and there is a next one.
            next_cursor = out
                .last()
                .map(|s| names::series_key(&s.source, &s.country, &s.category));
            break;
        }
        let last = view.observations.last();
        out.push(SeriesSummary {
            source: view.source.clone(),
            country: view.country.code().to_string(),
            category: view.category.clone(),
            freq: serde_json::to_value(view.freq)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            points: view.observations.len(),
            last_period: last.map(|p| p.period.to_string()),
            last_value: last.map(|p| p.count),
            surges: view.surges.len(),
            href: format!(
                "/v1/series/{}/{}/{}",
                view.source, view.country, view.category
            ),
        });
    }
    let next = next_cursor.as_deref().map(|c| page::next_link(&uri, c));
    let resp = match params.format.unwrap_or_default() {
        Format::Json => Json(json!({
            "series": out,
            "next_cursor": next_cursor,
            "next": next,
        }))
        .into_response(),
        Format::Csv => page::csv(
            "series.csv",
            &SERIES_CSV_HEADER,
            out.into_iter().map(|s| {
                [
                    s.source,
                    s.country,
                    s.category,
                    s.freq,
                    s.points.to_string(),
                    s.last_period.unwrap_or_default(),
                    s.last_value.map(|v| v.to_string()).unwrap_or_default(),
                    s.surges.to_string(),
                ]
            }),
        ),
    };
    Ok(page::with_next(resp, next.as_deref()))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SeriesExportParams {
    /// `json` (default: the series with its aggregates and surges) or `csv` (its figures,
    /// as `source,period,country,category,count`: the generic input format, so the export
    /// can be ingested again).
    format: Option<Format>,
}

/// One series: its figures, yearly totals, year over year, and the surges found in it.
#[utoipa::path(get, path = "/v1/series/{source}/{country}/{category}", tag = "series",
    params(
        ("source" = String, Path, description = "source, such as `fsb`"),
        ("country" = String, Path, description = "country: ISO alpha-2, alpha-3 or a name"),
        ("category" = String, Path, description = "category, such as `study`"),
        SeriesExportParams,
    ),
    responses(
        (status = 200, description = "the series", content(
            (openapi::SeriesDetail = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "a parameter is wrong", body = openapi::ErrorBody),
        (status = 404, description = "no such series", body = openapi::ErrorBody),
    ))]
async fn get_series(
    State(state): State<AppState>,
    Path((source, country, category)): Path<(String, String, String)>,
    ApiQuery(params): ApiQuery<SeriesExportParams>,
) -> Result<Response, ApiError> {
    let country = parse_country(&country)?;
    let key = names::series_key(&source, country.code(), &category);
    if !borderwatch_bus::valid_key(&key) {
        return Err(ApiError::bad_request(format!(
            "`{source}` or `{category}` is not a valid name"
        )));
    }
    let raw = state
        .bus
        .kv_get(names::SERIES_BUCKET, &key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no series {source}/{country}/{category}")))?;
    let view: SeriesView = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", e.to_string()))?;
    if params.format == Some(Format::Csv) {
        let name = format!("{}-{}-{}.csv", view.source, view.country, view.category);
        let rows = view.observations.iter().map(|p| {
            [
                view.source.clone(),
                p.period.to_string(),
                view.country.code().to_string(),
                view.category.clone(),
                p.count.to_string(),
            ]
        });
        return Ok(page::csv(
            &name,
            &["source", "period", "country", "category", "count"],
            rows,
        ));
    }
    let surges: Vec<Arc<SurgeEvent>> = view
        .surges
        .iter()
        .filter_map(|id| state.surges.get(id))
        .collect();
    let mut body = serde_json::to_value(&view).unwrap_or_default();
    body["surge_events"] = serde_json::to_value(&surges).unwrap_or_default();
    Ok(Json(body).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SurgeParams {
    /// Country: ISO alpha-2, alpha-3 or an English or Russian name.
    country: Option<String>,
    /// Category, such as `study`.
    category: Option<String>,
    /// Source, such as `fsb`.
    source: Option<String>,
    /// A period (`2024-Q1`: surges for that period or later) or an RFC 3339 time
    /// (surges detected then or later).
    since: Option<String>,
    /// `low`, `medium`, `high` or `critical`: that severity or higher.
    min_severity: Option<String>,
    /// Page size, 1 to 10000 (default 50: page with `cursor`).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<Format>,
}

/// The filter of the live stream: the list's filters, without paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    /// Country: ISO alpha-2, alpha-3 or an English or Russian name.
    country: Option<String>,
    /// Category, such as `study`.
    category: Option<String>,
    /// Source, such as `fsb`.
    source: Option<String>,
    /// A period (`2024-Q1`) or an RFC 3339 time.
    since: Option<String>,
    /// `low`, `medium`, `high` or `critical`.
    min_severity: Option<String>,
}

/// A surge filter from query parameters, shared by the list and the live stream.
#[derive(Debug, Default)]
struct SurgeQuery {
    country: Option<Country>,
    category: Option<String>,
    source: Option<String>,
    since_period: Option<Period>,
    since_time: Option<String>,
    min_severity: Severity,
}

impl SurgeQuery {
    fn new(
        country: Option<&str>,
        category: Option<&str>,
        source: Option<&str>,
        since: Option<&str>,
        min_severity: Option<&str>,
    ) -> Result<SurgeQuery, ApiError> {
        let mut q = SurgeQuery {
            country: country.map(parse_country).transpose()?,
            category: category.map(str::to_string),
            source: source.map(str::to_string),
            ..Default::default()
        };
        if let Some(s) = min_severity {
            q.min_severity = s.parse().map_err(ApiError::bad_request)?;
        }
        if let Some(since) = since {
            if let Ok(period) = since.parse::<Period>() {
                q.since_period = Some(period);
            } else if time::OffsetDateTime::parse(
                since,
                &time::format_description::well_known::Rfc3339,
            )
            .is_ok()
            {
                q.since_time = Some(since.to_string());
            } else {
                return Err(ApiError::bad_request(format!(
                    "`since={since}` is neither a period (2024-Q1) nor an RFC 3339 time"
                )));
            }
        }
        Ok(q)
    }

    fn matches(&self, e: &SurgeEvent) -> bool {
        self.country.is_none_or(|c| c == e.country)
            && self.category.as_deref().is_none_or(|c| c == e.category)
            && self.source.as_deref().is_none_or(|s| s == e.source)
            && self.since_period.is_none_or(|p| e.period >= p)
            && self
                .since_time
                .as_deref()
                .is_none_or(|t| e.detected_at.as_str() >= t)
            && e.severity >= self.min_severity
    }
}

const SURGE_CSV_HEADER: [&str; 11] = [
    "id",
    "source",
    "country",
    "category",
    "period",
    "value",
    "severity",
    "detectors",
    "release_id",
    "detected_at",
    "explanation",
];

fn surge_csv_row(e: &SurgeEvent) -> [String; 11] {
    let detectors: Vec<&str> = e.findings.iter().map(|f| f.detector.as_str()).collect();
    [
        e.id.clone(),
        e.source.clone(),
        e.country.code().to_string(),
        e.category.clone(),
        e.period.to_string(),
        e.value.to_string(),
        e.severity.to_string(),
        detectors.join(";"),
        e.release_id.clone(),
        e.detected_at.clone(),
        e.explanation.clone(),
    ]
}

/// Surges, newest first, filtered by the query parameters; `format=csv` answers CSV (one
/// row per surge, detectors joined with `;`). The next page is at `next` (also the `Link`
/// header); new surges do not shift the pages.
#[utoipa::path(get, path = "/v1/surges", tag = "surges", params(SurgeParams),
    responses(
        (status = 200, description = "a page of surges", content(
            (openapi::SurgeList = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "a parameter is wrong: the message names it", body = openapi::ErrorBody),
    ))]
async fn list_surges(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(params): ApiQuery<SurgeParams>,
) -> Result<Response, ApiError> {
    let q = SurgeQuery::new(
        params.country.as_deref(),
        params.category.as_deref(),
        params.source.as_deref(),
        params.since.as_deref(),
        params.min_severity.as_deref(),
    )?;
    let limit = page::limit(params.limit, 50, page::MAX_LIMIT)?;
    let before = page::seq_cursor(params.cursor.as_deref())?.unwrap_or(u64::MAX);
    // Newest first; the cursor is the stream sequence of the last surge returned.
    let select = || {
        let mut matching = state
            .surges
            .after(0)
            .into_iter()
            .rev()
            .filter(|e| e.seq < before && q.matches(&e.event));
        let page: Vec<surges::Entry> = matching.by_ref().take(limit).collect();
        let next_cursor = match (matching.next(), page.last()) {
            (Some(_), Some(last)) => Some(last.seq.to_string()),
            _ => None,
        };
        let next = next_cursor.as_deref().map(|c| page::next_link(&uri, c));
        (page, next_cursor, next)
    };
    match params.format.unwrap_or_default() {
        Format::Json => {
            // Rendered once per query until the next surge arrives; the next page's link is
            // kept beside the body for the Link header.
            let key = format!("/v1/surges?{}", uri.query().unwrap_or(""));
            // A miss selects the page once; the link it found fills the second entry.
            let mut fresh_next: Option<Option<String>> = None;
            let body = state.surges.cached(&key, b"", || {
                let (page, next_cursor, next) = select();
                let surges: Vec<Arc<SurgeEvent>> = page.into_iter().map(|e| e.event).collect();
                let body = serde_json::to_vec(
                    &json!({ "surges": surges, "next_cursor": next_cursor, "next": next }),
                )
                .unwrap_or_default()
                .into();
                fresh_next = Some(next);
                body
            });
            let next = state.surges.cached(&format!("{key}#next"), b"", || {
                fresh_next
                    .unwrap_or_else(|| select().2)
                    .unwrap_or_default()
                    .into()
            });
            let next = String::from_utf8_lossy(&next).into_owned();
            let resp = (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            Ok(page::with_next(
                resp,
                (!next.is_empty()).then_some(next.as_str()),
            ))
        }
        Format::Csv => {
            let (page, _, next) = select();
            let resp = page::csv(
                "surges.csv",
                &SURGE_CSV_HEADER,
                page.iter().map(|e| surge_csv_row(&e.event)),
            );
            Ok(page::with_next(resp, next.as_deref()))
        }
    }
}

/// One surge by id.
#[utoipa::path(get, path = "/v1/surges/{id}", tag = "surges",
    params(("id" = String, Path, description = "the surge id (`sg-…`)")),
    responses(
        (status = 200, description = "the surge", body = openapi::SurgeEvent),
        (status = 404, description = "no such surge", body = openapi::ErrorBody),
    ))]
async fn get_surge(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Arc<SurgeEvent>>, ApiError> {
    state
        .surges
        .get(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no surge {id}")))
}

/// Server-sent events: every new surge as `event: surge` with the stream sequence as its id
/// and the surge event as data. A client reconnecting with `Last-Event-ID` gets what it
/// missed first.
#[utoipa::path(get, path = "/v1/surges/stream", tag = "surges", params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received")),
    responses(
        (status = 200, description = "an endless stream of `surge` events", content_type = "text/event-stream", body = String),
        (status = 400, description = "a parameter is wrong", body = openapi::ErrorBody),
    ))]
async fn stream_surges(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StreamParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let q = Arc::new(SurgeQuery::new(
        params.country.as_deref(),
        params.category.as_deref(),
        params.source.as_deref(),
        params.since.as_deref(),
        params.min_severity.as_deref(),
    )?);
    let last_id: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX);
    // Subscribe before reading the backlog, so nothing falls between the two.
    let live = state.surges.subscribe();
    let backlog = if last_id == u64::MAX {
        Vec::new()
    } else {
        state.surges.after(last_id)
    };
    let mut high_water = backlog
        .last()
        .map_or(last_id.min(state.surges.last_seq()), |e| e.seq);
    if last_id == u64::MAX {
        high_water = state.surges.last_seq();
    }
    let to_event = |e: &surges::Entry| {
        Event::default()
            .event("surge")
            .id(e.seq.to_string())
            .json_data(&*e.event)
            .unwrap_or_default()
    };
    let qb = q.clone();
    let backlog = stream::iter(
        backlog
            .into_iter()
            .filter(move |e| qb.matches(&e.event))
            .map(move |e| Ok(to_event(&e))),
    );
    let live = stream::unfold((live, high_water), move |(mut rx, mut hw)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.seq > hw => {
                    hw = e.seq;
                    return Some((e, (rx, hw)));
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    })
    .filter(move |e| std::future::ready(q.matches(&e.event)))
    .map(move |e| Ok(to_event(&e)));
    Ok(
        // The stream ends at shutdown, so open dashboards do not hold the server up.
        Sse::new(
            backlog
                .chain(live)
                .take_until(state.cancel.clone().cancelled_owned()),
        )
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
}

/// `POST /v1/subscriptions`' body (schema: [`openapi::SubscriptionRequest`]).
#[derive(Debug, Deserialize)]
struct SubscriptionRequest {
    #[serde(default)]
    filter: SubscriptionFilter,
    webhook: Webhook,
    #[serde(default)]
    format: PayloadFormat,
    #[serde(default)]
    digest: Option<DigestSpec>,
}

/// The longest digest grouping wait: a day.
const MAX_GROUP_WAIT_SECS: u64 = 24 * 3600;

fn validate_webhook(w: &Webhook) -> Result<(), ApiError> {
    let uri: Uri = w
        .url
        .parse()
        .map_err(|_| ApiError::bad_request(format!("webhook.url `{}` is not a URL", w.url)))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http") | Some("https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "webhook.url `{}` must be an http:// or https:// URL with a host",
            w.url
        )));
    }
    if w.secret.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "webhook.secret is required: it keys the X-Borderwatch-Signature HMAC",
        ));
    }
    Ok(())
}

fn validate_filter(f: &SubscriptionFilter) -> Result<(), ApiError> {
    let named = [
        ("filter.categories", &f.categories),
        ("filter.sources", &f.sources),
        ("filter.detectors", &f.detectors),
    ];
    for (field, list) in named {
        if let Some(bad) = list.iter().find(|t| !borderwatch_model::is_token(t)) {
            return Err(ApiError::bad_request(format!(
                "{field}: `{bad}` is not a name (lowercase letters, digits, - and _)"
            )));
        }
    }
    Ok(())
}

/// Create a webhook subscription. The secret keys the signature of every POST and is never
/// returned.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    request_body(content = openapi::SubscriptionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "the stored subscription, without its secret", body = openapi::Subscription),
        (status = 400, description = "the body is wrong: the message names the field", body = openapi::ErrorBody),
        (status = 401, description = "the API token is missing or wrong", body = openapi::ErrorBody),
    ),
    security((), ("bearer" = [])))]
async fn create_subscription(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    let req: SubscriptionRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid subscription: {e}")))?;
    validate_webhook(&req.webhook)?;
    validate_filter(&req.filter)?;
    if let Some(d) = &req.digest
        && d.group_wait_secs > MAX_GROUP_WAIT_SECS
    {
        return Err(ApiError::bad_request(format!(
            "digest.group_wait_secs is {}: at most {MAX_GROUP_WAIT_SECS} (a day)",
            d.group_wait_secs
        )));
    }
    let sub = Subscription {
        id: format!("sub-{}", uuid::Uuid::new_v4().simple()),
        filter: req.filter,
        webhook: req.webhook,
        created_at: now_rfc3339(),
        format: req.format,
        digest: req.digest,
    };
    state
        .bus
        .kv_put(
            names::SUBSCRIPTIONS_BUCKET,
            &sub.id,
            serde_json::to_vec(&sub).unwrap_or_default().into(),
        )
        .await?;
    info!(subscription = %sub.id, "subscription created");
    Ok((StatusCode::CREATED, Json(sub.redacted())))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyPageParams {
    /// Page size, 1 to 1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One page of a bucket's values in key order, and the cursor of the next page.
pub(crate) async fn key_page(
    bus: &Bus,
    bucket: &str,
    params: &KeyPageParams,
) -> Result<(Vec<(String, Bytes)>, Option<String>), ApiError> {
    let limit = page::limit(params.limit, 1000, 1000)?;
    let cursor = page::key_cursor(params.cursor.as_deref())?;
    let mut keys = bus.kv_keys(bucket).await?;
    keys.sort();
    let mut out = Vec::new();
    let mut next = None;
    for key in keys {
        if cursor.is_some_and(|c| key.as_str() <= c) {
            continue;
        }
        let Some(raw) = bus.kv_get(bucket, &key).await? else {
            continue;
        };
        if out.len() == limit {
            next = out.last().map(|(k, _): &(String, Bytes)| k.clone());
            break;
        }
        out.push((key, raw));
    }
    Ok((out, next))
}

/// Subscriptions in id order, without their secrets.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", params(KeyPageParams),
    responses(
        (status = 200, description = "a page of subscriptions", body = openapi::SubscriptionList),
        (status = 400, description = "a parameter is wrong", body = openapi::ErrorBody),
    ))]
async fn list_subscriptions(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(params): ApiQuery<KeyPageParams>,
) -> Result<Response, ApiError> {
    let (raw, next_cursor) = key_page(&state.bus, names::SUBSCRIPTIONS_BUCKET, &params).await?;
    let subs: Vec<Subscription> = raw
        .iter()
        .filter_map(|(_, r)| serde_json::from_slice::<Subscription>(r).ok())
        .map(|s| s.redacted())
        .collect();
    let next = next_cursor.as_deref().map(|c| page::next_link(&uri, c));
    let resp = Json(json!({ "subscriptions": subs, "next_cursor": next_cursor, "next": next }))
        .into_response();
    Ok(page::with_next(resp, next.as_deref()))
}

/// Delete a subscription: nothing more is sent to its webhook.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "the subscription id (`sub-…`)")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "the API token is missing or wrong", body = openapi::ErrorBody),
        (status = 404, description = "no such subscription", body = openapi::ErrorBody),
    ),
    security((), ("bearer" = [])))]
async fn delete_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !borderwatch_bus::valid_key(&id)
        || state
            .bus
            .kv_get(names::SUBSCRIPTIONS_BUCKET, &id)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found(format!("no subscription {id}")));
    }
    state
        .bus
        .kv_delete(names::SUBSCRIPTIONS_BUCKET, &id)
        .await?;
    info!(subscription = %id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_need_a_scheme_and_host() {
        let ok = Webhook {
            url: "https://example.org/hook".into(),
            secret: Some("s".into()),
        };
        assert!(validate_webhook(&ok).is_ok());
        for bad in [
            "ftp://example.org/x",
            "example.org",
            "http://",
            "/just/a/path",
        ] {
            let w = Webhook {
                url: bad.into(),
                secret: Some("s".into()),
            };
            assert!(validate_webhook(&w).is_err(), "{bad}");
        }
        assert!(
            validate_filter(&SubscriptionFilter {
                detectors: vec!["record_high".into()],
                ..Default::default()
            })
            .is_ok()
        );
        assert!(
            validate_filter(&SubscriptionFilter {
                detectors: vec!["Record High".into()],
                ..Default::default()
            })
            .is_err()
        );
        let no_secret = Webhook {
            url: "https://example.org".into(),
            secret: None,
        };
        assert!(validate_webhook(&no_secret).is_err());
    }
}
