//! The gateway: borderwatch's HTTP API, live event stream and dashboard (axum).
//!
//! It owns no state of its own: uploads go to the ingest service over `bw.ingest.submit`,
//! series come from the `bw_series` bucket that analytics writes, surges from the
//! `BW_SURGES` stream, subscriptions live in the `bw_subscriptions` bucket.

mod dashboard;
mod deliveries;
pub mod error;
mod silences;
pub mod surges;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use borderwatch_bus::{Bus, names};
use borderwatch_ingest::service::{Submission, SubmitError, submit};
use borderwatch_model::{
    Country, DigestSpec, PayloadFormat, Period, SeriesView, Severity, Subscription,
    SubscriptionFilter, SurgeEvent, Webhook, now_rfc3339,
};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use error::ApiError;
use surges::SurgeIndex;

/// Settings of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Required as `Authorization: Bearer …` on every request that changes state.
    pub api_token: Option<String>,
    /// Largest accepted upload.
    pub max_body_bytes: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            api_token: None,
            max_body_bytes: 64 * 1024 * 1024,
        }
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
/// is done; [`serve`] waits for it before answering).
pub fn router(bus: Bus, cfg: GatewayConfig, cancel: CancellationToken) -> Router {
    let surges = SurgeIndex::follow(bus.clone(), cancel.clone());
    router_with(bus, surges, cfg, cancel)
}

fn router_with(
    bus: Bus,
    surges: SurgeIndex,
    cfg: GatewayConfig,
    cancel: CancellationToken,
) -> Router {
    let state = AppState {
        cancel,
        surges,
        bus,
        cfg: Arc::new(cfg.clone()),
    };
    Router::new()
        .merge(dashboard::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .with_state(state)
}

/// Serves the API on `listener` until `cancel` fires.
pub async fn serve(
    bus: Bus,
    listener: TcpListener,
    cfg: GatewayConfig,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let surges = SurgeIndex::follow(bus.clone(), cancel.clone());
    // Answer only once the surges stored before start are indexed, so that a restarted
    // gateway never serves an empty list; connections wait in the listen backlog meanwhile.
    surges.wait_caught_up(Duration::from_secs(30)).await;
    info!(%addr, indexed = surges.last_seq(), "gateway listening");
    let app = router_with(bus, surges, cfg, cancel.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

async fn require_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if let (true, Some(token)) = (changes_state, state.cfg.api_token.as_deref()) {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so timing says nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let connected = state.bus.is_connected();
    let following = state.surges.is_following();
    let body = json!({
        "ready": connected && following,
        "transport": state.bus.kind(),
        "connected": connected,
        "surges_followed": following,
    });
    let status = if connected && following {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
struct IngestParams {
    format: Option<String>,
    source: Option<String>,
}

async fn ingest(
    State(state): State<AppState>,
    Query(params): Query<IngestParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty: send the file as the body",
        ));
    }
    let sub = Submission {
        format: params.format,
        source: params.source,
        bytes: body,
    };
    match submit(state.bus.as_ref(), sub).await {
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
        Err(SubmitError::Bus(e)) => Err(e.into()),
        Err(e @ SubmitError::BadReply(_)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_reply",
            e.to_string(),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
struct SeriesParams {
    country: Option<String>,
    category: Option<String>,
    source: Option<String>,
}

fn parse_country(value: &str) -> Result<Country, ApiError> {
    Country::parse(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn list_series(
    State(state): State<AppState>,
    Query(params): Query<SeriesParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let country = params.country.as_deref().map(parse_country).transpose()?;
    let mut out = Vec::new();
    for key in state.bus.kv_keys(names::SERIES_BUCKET).await? {
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
        let last = view.observations.last();
        out.push(json!({
            "source": view.source,
            "country": view.country,
            "category": view.category,
            "freq": view.freq,
            "points": view.observations.len(),
            "last_period": last.map(|p| p.period),
            "last_value": last.map(|p| p.count),
            "surges": view.surges.len(),
            "href": format!("/v1/series/{}/{}/{}", view.source, view.country, view.category),
        }));
    }
    Ok(Json(json!({ "series": out })))
}

async fn get_series(
    State(state): State<AppState>,
    Path((source, country, category)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let surges: Vec<Arc<SurgeEvent>> = view
        .surges
        .iter()
        .filter_map(|id| state.surges.get(id))
        .collect();
    let mut body = serde_json::to_value(&view).unwrap_or_default();
    body["surge_events"] = serde_json::to_value(&surges).unwrap_or_default();
    Ok(Json(body))
}

#[derive(Debug, Default, Deserialize)]
struct SurgeParams {
    country: Option<String>,
    category: Option<String>,
    source: Option<String>,
    /// A period (`2024-Q1`: surges for that period or later) or an RFC 3339 time
    /// (surges detected then or later).
    since: Option<String>,
    min_severity: Option<String>,
    limit: Option<usize>,
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
    fn from_params(p: &SurgeParams) -> Result<SurgeQuery, ApiError> {
        let mut q = SurgeQuery {
            country: p.country.as_deref().map(parse_country).transpose()?,
            category: p.category.clone(),
            source: p.source.clone(),
            ..Default::default()
        };
        if let Some(s) = p.min_severity.as_deref() {
            q.min_severity = s.parse().map_err(ApiError::bad_request)?;
        }
        if let Some(since) = p.since.as_deref() {
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

async fn list_surges(
    State(state): State<AppState>,
    Query(params): Query<SurgeParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = SurgeQuery::from_params(&params)?;
    let limit = params.limit.unwrap_or(1000).min(10_000);
    // Rendered once per query until the next surge arrives.
    let key = format!("/v1/surges?{}", uri.query().unwrap_or(""));
    let body = state.surges.cached(&key, b"", || {
        // Newest first.
        let surges: Vec<Arc<SurgeEvent>> = state
            .surges
            .after(0)
            .into_iter()
            .rev()
            .filter(|e| q.matches(&e.event))
            .take(limit)
            .map(|e| e.event)
            .collect();
        serde_json::to_vec(&json!({ "surges": surges }))
            .unwrap_or_default()
            .into()
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

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

/// Server-sent events: every surge as `event: surge` with the stream sequence as its id.
/// A client reconnecting with `Last-Event-ID` gets what it missed first.
async fn stream_surges(
    State(state): State<AppState>,
    Query(params): Query<SurgeParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let q = Arc::new(SurgeQuery::from_params(&params)?);
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

async fn list_subscriptions(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut subs = Vec::new();
    for key in state.bus.kv_keys(names::SUBSCRIPTIONS_BUCKET).await? {
        if let Some(raw) = state.bus.kv_get(names::SUBSCRIPTIONS_BUCKET, &key).await?
            && let Ok(s) = serde_json::from_slice::<Subscription>(&raw)
        {
            subs.push(s.redacted());
        }
    }
    Ok(Json(json!({ "subscriptions": subs })))
}

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
    fn token_comparison_needs_equal_bytes() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

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
