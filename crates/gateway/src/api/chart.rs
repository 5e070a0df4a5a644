//! A series' chart on its own, to embed and to send: `GET /v1/series/{source}/{country}/
//! {category}/chart.svg` and `…/chart.png`. The same drawing as the series page (figures,
//! statistical band, surges), under a heading, with one period marked: by default the surge
//! the page shows first (the most severe, latest), or `?period=`.
//!
//! Access is that of every series read: open where the series API is open, behind the read
//! token where there is one (`auth.rs`). An `<img>` on another site sends no token, so a
//! chart embedded elsewhere shows only from a gateway whose reads are public; on the
//! gateway's own pages a signed-in browser's session cookie is enough.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use borderwatch_model::{Period, SeriesView, SurgeEvent};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::schema;
use super::series::load_view;
use crate::error::ApiError;
use crate::page::ApiQuery;
use crate::state::AppState;

/// The charts' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(paths(chart_svg, chart_png))]
pub(crate) struct ChartApi;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChartParams {
    /// The period to mark, such as `2024-Q3`: one the series has a figure for. Default: the
    /// period of the most severe, latest surge (none when the series has no surge).
    period: Option<String>,
}

/// Browsers and chat tools may keep a chart a few minutes: a new release changes it rarely
/// and a stale picture for five minutes misleads no one.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The chart as SVG (640 × 410 units), for an `<img>`, an iframe or a page of one's own.
#[utoipa::path(get, path = "/v1/series/{source}/{country}/{category}/chart.svg", tag = "series",
    params(
        ("source" = String, Path, description = "source, such as `fsb`"),
        ("country" = String, Path, description = "country: ISO alpha-2, alpha-3 or a name"),
        ("category" = String, Path, description = "category, such as `study`"),
        ChartParams,
    ),
    responses(
        (status = 200, description = "the chart, its band and the marked period", content_type = "image/svg+xml", body = String),
        (status = 400, description = "a parameter is wrong: the message names it", body = schema::ErrorBody),
        (status = 404, description = "no such series", body = schema::ErrorBody),
    ))]
pub(crate) async fn chart_svg(
    State(state): State<AppState>,
    Path((source, country, category)): Path<(String, String, String)>,
    ApiQuery(params): ApiQuery<ChartParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (view, raw) = load_view(&state, &source, &country, &category).await?;
    let mark = marked_period(&view, params.period.as_deref())?;
    let key = cache_key(&uri);
    let surges = state.surges.get_many(&view.surges).await?;
    let body = state
        .surges
        .cached(&key, &raw, || svg(&surges, &view, mark).into());
    Ok(image("image/svg+xml", body))
}

/// The chart as PNG (1280 × 820 pixels), for chat messages and tools that take no SVG.
#[utoipa::path(get, path = "/v1/series/{source}/{country}/{category}/chart.png", tag = "series",
    params(
        ("source" = String, Path, description = "source, such as `fsb`"),
        ("country" = String, Path, description = "country: ISO alpha-2, alpha-3 or a name"),
        ("category" = String, Path, description = "category, such as `study`"),
        ChartParams,
    ),
    responses(
        (status = 200, description = "the chart, its band and the marked period", content_type = "image/png", body = Vec<u8>),
        (status = 400, description = "a parameter is wrong: the message names it", body = schema::ErrorBody),
        (status = 404, description = "no such series", body = schema::ErrorBody),
    ))]
pub(crate) async fn chart_png(
    State(state): State<AppState>,
    Path((source, country, category)): Path<(String, String, String)>,
    ApiQuery(params): ApiQuery<ChartParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (view, raw) = load_view(&state, &source, &country, &category).await?;
    let mark = marked_period(&view, params.period.as_deref())?;
    let key = cache_key(&uri);
    let surges = state.surges.get_many(&view.surges).await?;
    // Drawing takes milliseconds of CPU: off the async workers, and once per stored view and
    // query until the next surge arrives.
    let body = tokio::task::spawn_blocking(move || {
        let mut failed = None;
        let body = state.surges.cached(&key, &raw, || {
            match crate::raster::png(&svg(&surges, &view, mark)) {
                Ok(png) => png.into(),
                Err(e) => {
                    failed = Some(e);
                    Bytes::new()
                }
            }
        });
        failed.map_or(Ok(body), Err)
    })
    .await
    .map_err(|e| internal(format!("the PNG was not drawn: {e}")))?
    .map_err(|e| internal(format!("the PNG was not drawn: {e}")))?;
    if body.is_empty() {
        return Err(internal("the PNG was not drawn".into()));
    }
    Ok(image("image/png", body))
}

fn internal(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// Cached renderings by path and query (the path says SVG or PNG).
fn cache_key(uri: &Uri) -> String {
    format!("{}?{}", uri.path(), uri.query().unwrap_or(""))
}

fn image(content_type: &'static str, body: Bytes) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    resp
}

/// The period to mark: the one asked for (a 400 when it is no period, or one the series has
/// no figure for), else the default surge's.
fn marked_period(view: &SeriesView, asked: Option<&str>) -> Result<Option<Period>, ApiError> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let period: Period = asked.trim().parse().map_err(|e| {
        ApiError::bad_request(format!(
            "`period={asked}` is not a period such as 2024, 2024-Q3 or 2024-07: {e}"
        ))
    })?;
    if !view.observations.iter().any(|p| p.period == period) {
        return Err(ApiError::bad_request(format!(
            "`period={period}`: the series {}/{}/{} has no figure for it",
            view.source, view.country, view.category
        )));
    }
    Ok(Some(period))
}

/// The standalone SVG: the surge of the marked period (the most severe there) draws its
/// cited baselines; without `period`, the page's default surge is both.
fn svg(surges: &[Arc<SurgeEvent>], view: &SeriesView, mark: Option<Period>) -> String {
    crate::dashboard::chart_svg(view, surges, mark)
}
