//! Incidents: `GET /v1/incidents`, each series' runs of consecutive alarming periods as
//! analytics keeps them in `bw_incidents` (opened by the first period, continued by the
//! next ones, closed by the first period back inside the band).

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use borderwatch_bus::names;
use borderwatch_model::{Incident, SeriesIncidents};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{SeriesFilter, parse_country, schema};
use crate::error::ApiError;
use crate::page::{self, ApiQuery};
use crate::state::AppState;

/// The incidents' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(list_incidents),
    components(schemas(doc::IncidentList, doc::Incident, doc::IncidentSurge, Status))
)]
pub(crate) struct IncidentsApi;

/// Open (still alarming at its series' latest evaluated period) or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Open,
    Closed,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentParams {
    /// Country: ISO alpha-2, alpha-3 or an English or Russian name.
    country: Option<String>,
    /// Category, such as `study` or `total`.
    category: Option<String>,
    /// Source, such as `fsb`.
    source: Option<String>,
    /// `open` or `closed`; both when absent.
    status: Option<Status>,
    /// Series per page, 1 to 1000 (default 1000): a page holds every matching incident of
    /// its series.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Incidents by series key (`source.country.category`), each series' newest first,
/// filtered by the query parameters. The next page is at `next` (also the `Link` header).
#[utoipa::path(get, path = "/v1/incidents", tag = "surges", params(IncidentParams),
    responses(
        (status = 200, description = "a page of incidents", body = doc::IncidentList),
        (status = 400, description = "a parameter is wrong: the message names it", body = schema::ErrorBody),
    ))]
pub(crate) async fn list_incidents(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(params): ApiQuery<IncidentParams>,
) -> Result<Response, ApiError> {
    let filter = SeriesFilter {
        source: params.source.as_deref(),
        category: params.category.as_deref(),
        country: params.country.as_deref().map(parse_country).transpose()?,
    };
    let limit = page::limit(params.limit, 1000, 1000)?;
    let cursor = page::key_cursor(params.cursor.as_deref())?;
    let mut keys = state.bus.kv_keys(names::INCIDENTS_BUCKET).await?;
    keys.sort();
    let mut out: Vec<Incident> = Vec::new();
    let mut series = 0;
    let mut next_cursor = None;
    let mut last_key = None;
    for key in keys {
        if cursor.is_some_and(|c| key.as_str() <= c) {
            continue;
        }
        if !filter.matches(&key) {
            continue;
        }
        let Some(raw) = state.bus.kv_get(names::INCIDENTS_BUCKET, &key).await? else {
            continue;
        };
        let Ok(kept) = serde_json::from_slice::<SeriesIncidents>(&raw) else {
            continue;
        };
        let matching: Vec<Incident> = kept
            .incidents
            .into_iter()
            .rev()
            .filter(|i| match params.status {
                Some(Status::Open) => i.is_open(),
                Some(Status::Closed) => !i.is_open(),
                None => true,
            })
            .collect();
        if matching.is_empty() {
            continue;
        }
        if series == limit {
            next_cursor = last_key;
            break;
        }
        series += 1;
        out.extend(matching);
        last_key = Some(key);
    }
    let next = next_cursor.as_deref().map(|c| page::next_link(&uri, c));
    let resp =
        Json(json!({ "incidents": out, "next_cursor": next_cursor, "next": next })).into_response();
    Ok(page::with_next(resp, next.as_deref()))
}

/// The documented shapes of the model's incident types.
mod doc {
    use utoipa::ToSchema;

    use crate::api::schema::{Direction, IncidentUpdate, Severity};

    /// A page of incidents.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct IncidentList {
        incidents: Vec<Incident>,
        next_cursor: Option<String>,
        /// The next page's URL.
        next: Option<String>,
    }

    /// One episode of a series: consecutive alarming periods.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Incident {
        /// `in-…`: stable for the series, its first period and the detector configuration.
        id: String,
        source: String,
        /// ISO 3166-1 alpha-3.
        country: String,
        category: String,
        /// The first alarming period.
        opened: String,
        /// The latest alarming period so far.
        last: String,
        last_value: u64,
        peak_value: u64,
        /// The first period back inside the band; absent while open.
        #[schema(required = false)]
        closed: Option<String>,
        peak_severity: Severity,
        peak_score: f64,
        surges: Vec<IncidentSurge>,
        /// Whether any of its periods was at the live edge of a release.
        live: bool,
        /// Whether subscribers were told of it one by one.
        announced: bool,
        /// A run of surges (`rise`) or of falls (`fall`).
        direction: Direction,
    }

    /// One period of an incident.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct IncidentSurge {
        /// The surge event's id.
        id: String,
        period: String,
        value: u64,
        severity: Severity,
        score: f64,
        update: IncidentUpdate,
        live: bool,
    }
}
