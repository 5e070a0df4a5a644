//! Series: `GET /v1/series` (the list, with each series' latest figure; JSON or CSV) and
//! `GET /v1/series/{source}/{country}/{category}` (one series with its aggregates and
//! surges), read from the `bw_series` bucket that analytics writes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use borderwatch_bus::names;
use borderwatch_model::{SeriesView, SurgeEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{SeriesFilter, parse_country, schema};
use crate::error::ApiError;
use crate::page::{self, ApiQuery, Format};
use crate::state::AppState;

/// The series' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(list_series, get_series),
    components(schemas(
        doc::SeriesList,
        SeriesSummary,
        doc::SeriesDetail,
        doc::Point,
        doc::YearTotal,
        doc::YearOverYear,
        Format,
    ))
)]
pub(crate) struct SeriesApi;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeriesParams {
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
            (doc::SeriesList = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "a parameter is wrong: the message names it", body = schema::ErrorBody),
    ))]
pub(crate) async fn list_series(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(params): ApiQuery<SeriesParams>,
) -> Result<Response, ApiError> {
    let filter = SeriesFilter {
        source: params.source.as_deref(),
        category: params.category.as_deref(),
        country: params.country.as_deref().map(parse_country).transpose()?,
    };
    let limit = page::limit(params.limit, 1000, page::MAX_LIMIT)?;
    let cursor = page::key_cursor(params.cursor.as_deref())?;
    // Listed and sorted once a second for all requests, not per request (`series_keys.rs`).
    let keys = state.series_keys.sorted(&state.bus).await?;
    let mut out: Vec<SeriesSummary> = Vec::new();
    let mut next_cursor = None;
    for key in &keys[crate::series_keys::after(&keys, cursor)..] {
        if !filter.matches(key) {
            continue;
        }
        let Some(raw) = state.bus.kv_get(names::SERIES_BUCKET, key).await? else {
            continue;
        };
        let Ok(view) = SeriesView::from_stored(&raw) else {
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
pub(crate) struct SeriesExportParams {
    /// `json` (default: the series with its aggregates and surges) or `csv` (its figures,
    /// as `source,period,country,category,count`: the generic input format, so the export
    /// can be ingested again; then `expected,upper`: the statistical band the chart draws,
    /// empty for a period without one).
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
            (doc::SeriesDetail = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "a parameter is wrong", body = schema::ErrorBody),
        (status = 404, description = "no such series", body = schema::ErrorBody),
    ))]
pub(crate) async fn get_series(
    State(state): State<AppState>,
    Path((source, country, category)): Path<(String, String, String)>,
    ApiQuery(params): ApiQuery<SeriesExportParams>,
) -> Result<Response, ApiError> {
    let (view, _) = load_view(&state, &source, &country, &category).await?;
    if params.format == Some(Format::Csv) {
        return Ok(series_csv(&view));
    }
    let surges: Vec<Arc<SurgeEvent>> = state.surges.get_many(&view.surges).await?;
    let mut body = serde_json::to_value(&view).unwrap_or_default();
    body["surge_events"] = serde_json::to_value(&surges).unwrap_or_default();
    Ok(Json(body).into_response())
}

/// The stored view of a series and its bytes (the key of cached renderings): a 400 for a
/// country or name that cannot be one, a 404 for a series that does not exist.
pub(crate) async fn load_view(
    state: &AppState,
    source: &str,
    country: &str,
    category: &str,
) -> Result<(SeriesView, Bytes), ApiError> {
    let country = parse_country(country)?;
    let key = names::series_key(source, country.code(), category);
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
    let view = SeriesView::from_stored(&raw)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", e.to_string()))?;
    Ok((view, raw))
}

/// The columns of a series in CSV: the generic input format (so an export can be ingested
/// again: ingest ignores columns it does not know), then the band the chart draws, so a
/// newsroom can rebuild the chart in its own tool.
pub(crate) const SERIES_EXPORT_HEADER: [&str; 7] = [
    "source", "period", "country", "category", "count", "expected", "upper",
];

/// A series as CSV: a row per figure, `expected` and `upper` from the detector whose band
/// the dashboard's chart draws (the one that bounded the latest period), empty where it
/// fitted none.
fn series_csv(view: &SeriesView) -> Response {
    let name = format!("{}-{}-{}.csv", view.source, view.country, view.category);
    let detector = view.bands.last().map(|b| b.detector.as_str());
    let band = |period| {
        view.bands
            .iter()
            .find(|b| b.period == period && Some(b.detector.as_str()) == detector)
    };
    let rows = view.observations.iter().map(|p| {
        let band = band(p.period);
        [
            view.source.clone(),
            p.period.to_string(),
            view.country.code().to_string(),
            view.category.clone(),
            p.count.to_string(),
            band.map(|b| csv_number(b.expected)).unwrap_or_default(),
            band.map(|b| csv_number(b.upper_bound)).unwrap_or_default(),
        ]
    });
    page::csv(&name, &SERIES_EXPORT_HEADER, rows)
}

/// A bound as a spreadsheet reads it: two decimals at most, no exponent; empty when it is
/// not a number.
fn csv_number(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// This resource's bodies as schema-only mirrors of `borderwatch-model`'s JSON, for the
/// document only.
mod doc {
    use utoipa::ToSchema;

    use crate::api::schema::SurgeEvent;

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SeriesList {
        series: Vec<super::SeriesSummary>,
        next_cursor: Option<String>,
        next: Option<String>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Point {
        period: String,
        count: u64,
    }

    /// A calendar year's total (`complete` is false while some quarters or months are missing).
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct YearTotal {
        year: i32,
        total: u64,
        complete: bool,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct YearOverYear {
        period: String,
        value: u64,
        previous: u64,
        /// `value / previous`; null when the earlier figure is zero.
        ratio: Option<f64>,
    }

    /// One series with its aggregates and surges.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SeriesDetail {
        source: String,
        country: String,
        category: String,
        /// `year`, `quarter` or `month`.
        freq: String,
        observations: Vec<Point>,
        yearly: Vec<YearTotal>,
        year_over_year: Vec<YearOverYear>,
        /// Ids of the surges found in the series.
        surges: Vec<String>,
        updated_at: String,
        release_id: String,
        /// The surges themselves.
        surge_events: Vec<SurgeEvent>,
    }
}
