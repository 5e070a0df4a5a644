//! Surges: `GET /v1/surges` (newest first, filtered; JSON or CSV), `GET /v1/surges/{id}` and
//! the live stream `GET /v1/surges/stream` (server-sent events), all served from the
//! gateway's surge index (`crate::surges`).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use borderwatch_model::{Country, Direction, Period, Severity, SurgeEvent};
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, OpenApi};

use super::{parse_country, schema};
use crate::error::ApiError;
use crate::page::{self, ApiQuery, Format};
use crate::state::AppState;
use crate::streams::{Full, Slot};
use crate::surges::{Entry, Fields};

/// The surges' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(list_surges, stream_surges, get_surge),
    components(schemas(
        doc::SurgeList,
        schema::SurgeEvent,
        schema::Finding,
        schema::Baseline,
        schema::Severity,
        schema::Direction,
        schema::IncidentUpdate,
        schema::StoryRef,
        schema::StoryKind,
        Format,
    ))
)]
pub(crate) struct SurgesApi;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SurgeParams {
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
    /// `rise` (surges) or `fall` (significant drops); both when absent.
    direction: Option<String>,
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
pub(crate) struct StreamParams {
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
    /// `rise` (surges) or `fall` (significant drops); both when absent.
    direction: Option<String>,
    /// The kinds of event, comma-separated: `surge`, `revision` (`event: revision`), `missing`
    /// (`event: missing`); every kind when absent. `country`, `category` and `source` apply
    /// to all; the others to surges only.
    kinds: Option<String>,
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
    direction: Option<Direction>,
}

impl SurgeQuery {
    fn new(
        country: Option<&str>,
        category: Option<&str>,
        source: Option<&str>,
        since: Option<&str>,
        min_severity: Option<&str>,
        direction: Option<&str>,
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
        if let Some(d) = direction {
            q.direction = Some(d.parse().map_err(ApiError::bad_request)?);
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

    /// Whether a revision's or missing category's series passes the series parameters.
    fn series_matches(&self, source: &str, country: Country, category: &str) -> bool {
        self.country.is_none_or(|c| c == country)
            && self.category.as_deref().is_none_or(|c| c == category)
            && self.source.as_deref().is_none_or(|s| s == source)
    }

    fn matches(&self, e: &Fields<'_>) -> bool {
        self.country.is_none_or(|c| c == e.country)
            && self.category.as_deref().is_none_or(|c| c == e.category)
            && self.source.as_deref().is_none_or(|s| s == e.source)
            && self.since_period.is_none_or(|p| e.period >= p)
            && self
                .since_time
                .as_deref()
                .is_none_or(|t| e.detected_at >= t)
            && e.severity >= self.min_severity
            && self.direction.is_none_or(|d| d == e.direction)
    }
}

const SURGE_CSV_HEADER: [&str; 12] = [
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
    "direction",
];

fn surge_csv_row(e: &SurgeEvent) -> [String; 12] {
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
        e.direction.to_string(),
    ]
}

/// Surges, newest first, filtered by the query parameters; `format=csv` answers CSV (one
/// row per surge, detectors joined with `;`). The next page is at `next` (also the `Link`
/// header); new surges do not shift the pages. Each answer carries an `ETag`; a request whose
/// `If-None-Match` names it gets `304 Not Modified` without a body.
#[utoipa::path(get, path = "/v1/surges", tag = "surges", params(SurgeParams,
        ("If-None-Match" = Option<String>, Header, description = "the `ETag` of an earlier answer: `304` if the page is unchanged")),
    responses(
        (status = 200, description = "a page of surges (with `ETag` and `Cache-Control: no-cache`)", content(
            (doc::SurgeList = "application/json"),
            (String = "text/csv"),
        )),
        (status = 304, description = "the page is the one `If-None-Match` names: no body"),
        (status = 400, description = "a parameter is wrong: the message names it", body = schema::ErrorBody),
    ))]
pub(crate) async fn list_surges(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    // The answer depends on the query string alone (the next link echoes it, so it is the
    // key as sent) and on the index, whose generation the cache checks; access control has
    // run before, and no header changes the body. A query string that is cached parsed, so a
    // hit answers without parsing it again.
    let key = format!("/v1/surges?{}", request.uri().query().unwrap_or(""));
    let seq = state.surges.last_seq();
    let page = match state.surges.cache_get_as::<ListPage>(&key, b"") {
        Some(page) => page,
        None => {
            let page = Arc::new(render_list(&state, request.uri()).await?);
            let size = page.size();
            state
                .surges
                .cache_put_as(&key, b"", seq, page.clone(), size);
            page
        }
    };
    Ok(page.respond(request.headers()))
}

/// One page of the surge list as it is served, rendered once per query and index
/// generation: a cached page and a fresh one answer the same bytes and headers.
#[derive(Debug)]
struct ListPage {
    body: Bytes,
    content_type: HeaderValue,
    /// `Content-Disposition` (CSV: an attachment).
    disposition: Option<HeaderValue>,
    /// `Link: <next>; rel="next"` when there is a next page.
    link: Option<HeaderValue>,
    /// A strong validator: a digest of the body and the next link.
    etag: HeaderValue,
}

impl ListPage {
    fn new(body: Bytes, format: Format, next: Option<&str>) -> ListPage {
        let (content_type, disposition) = match format {
            Format::Json => (HeaderValue::from_static("application/json"), None),
            Format::Csv => (
                HeaderValue::from_static(page::CSV_TYPE),
                HeaderValue::from_str(&page::csv_disposition("surges.csv")).ok(),
            ),
        };
        let link = next.and_then(|n| HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")).ok());
        let etag = page::etag(&[&body, link.as_ref().map_or(&b""[..], |l| l.as_bytes())]);
        ListPage {
            body,
            content_type,
            disposition,
            link,
            etag,
        }
    }

    /// What the page holds, for the cache's bound.
    fn size(&self) -> usize {
        self.body.len() + self.link.as_ref().map_or(0, HeaderValue::len) + 128
    }

    /// The page, or `304` when `request` names its `ETag` in `If-None-Match`.
    fn respond(&self, request: &HeaderMap) -> Response {
        if page::none_match(request, &self.etag) {
            return page::not_modified(&self.etag);
        }
        let mut resp = self.body.clone().into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.content_type.clone());
        if let Some(d) = &self.disposition {
            headers.insert(header::CONTENT_DISPOSITION, d.clone());
        }
        if let Some(link) = &self.link {
            headers.insert(header::LINK, link.clone());
        }
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, page::NO_CACHE);
        resp
    }
}

/// Renders the page `uri` asks for from the index as it is now.
async fn render_list(state: &AppState, uri: &Uri) -> Result<ListPage, ApiError> {
    let ApiQuery(params) = ApiQuery::<SurgeParams>::from_uri(uri)?;
    let q = SurgeQuery::new(
        params.country.as_deref(),
        params.category.as_deref(),
        params.source.as_deref(),
        params.since.as_deref(),
        params.min_severity.as_deref(),
        params.direction.as_deref(),
    )?;
    let limit = page::limit(params.limit, 50, page::MAX_LIMIT)?;
    let before = page::seq_cursor(params.cursor.as_deref())?.unwrap_or(u64::MAX);
    // Newest first; the cursor is the stream sequence of the last surge returned. The page
    // is chosen on the index; only its events are read.
    let (seqs, more) = state.surges.with_rows(|rows| {
        let mut matching = rows
            .iter()
            .rev()
            .filter(|e| e.seq < before && q.matches(e))
            .map(|e| e.seq);
        let seqs: Vec<u64> = matching.by_ref().take(limit).collect();
        (seqs, matching.next().is_some())
    });
    let next_cursor = match (more, seqs.last()) {
        (true, Some(last)) => Some(last.to_string()),
        _ => None,
    };
    let next = next_cursor.as_deref().map(|c| page::next_link(uri, c));
    let entries = state.surges.entries(&seqs).await?;
    let format = params.format.unwrap_or_default();
    let body = match format {
        Format::Json => {
            let surges: Vec<Arc<SurgeEvent>> = entries.into_iter().map(|e| e.event).collect();
            serde_json::to_vec(
                &json!({ "surges": surges, "next_cursor": next_cursor, "next": next }),
            )
            .unwrap_or_default()
        }
        Format::Csv => page::csv_body(
            &SURGE_CSV_HEADER,
            entries.iter().map(|e| surge_csv_row(&e.event)),
        ),
    };
    Ok(ListPage::new(body.into(), format, next.as_deref()))
}

/// One surge by id.
#[utoipa::path(get, path = "/v1/surges/{id}", tag = "surges",
    params(("id" = String, Path, description = "the surge id (`sg-…`)")),
    responses(
        (status = 200, description = "the surge", body = schema::SurgeEvent),
        (status = 404, description = "no such surge", body = schema::ErrorBody),
    ))]
pub(crate) async fn get_surge(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Arc<SurgeEvent>>, ApiError> {
    state
        .surges
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no surge {id}")))
}

/// Server-sent events: every new surge as `event: surge` with the stream sequence as its id
/// and the surge event as data. A client reconnecting with `Last-Event-ID` gets what it
/// missed first. Revisions (`event: revision`) and missing categories (`event: missing`)
/// come as they are published, with no id (`kinds` picks the kinds). Streams open at once are capped per client address (429) and in all (503),
/// both with `Retry-After`.
#[utoipa::path(get, path = "/v1/surges/stream", tag = "surges", params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received")),
    responses(
        (status = 200, description = "an endless stream of `surge` events (id: the surge's stream sequence), and of `revision` and `missing` events (no id; live only)", content_type = "text/event-stream", body = String),
        (status = 400, description = "a parameter is wrong", body = schema::ErrorBody),
        (status = 429, description = "this client has as many streams open as it may (see Retry-After)", body = schema::ErrorBody),
        (status = 503, description = "the gateway serves as many streams as it may (see Retry-After)", body = schema::ErrorBody),
    ))]
pub(crate) async fn stream_surges(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StreamParams>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, ApiError> {
    let slot = match stream_slot(&state, &extensions) {
        Ok(slot) => slot,
        Err(full) => return Ok(streams_full(&state, full)),
    };
    let q = Arc::new(SurgeQuery::new(
        params.country.as_deref(),
        params.category.as_deref(),
        params.source.as_deref(),
        params.since.as_deref(),
        params.min_severity.as_deref(),
        params.direction.as_deref(),
    )?);
    let kinds =
        crate::live_kinds::parse_kinds(params.kinds.as_deref()).map_err(ApiError::bad_request)?;
    let qk = q.clone();
    let others = crate::live_kinds::live(
        &state.bus,
        &kinds,
        std::sync::Arc::new(move |s: &str, c: Country, k: &str| qk.series_matches(s, c, k)),
    )
    .await?;
    let surges_wanted = kinds.contains(&borderwatch_model::EventKind::Surge);
    let last_id: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX);
    // Subscribe before reading the backlog, so nothing falls between the two. The backlog
    // is chosen on the index and its events are read a chunk at a time as the client takes
    // them, so a client resuming from far back costs no more memory than one page.
    let live = state.surges.subscribe();
    let (backlog, high_water) = state.surges.with_rows(|rows| {
        if last_id == u64::MAX {
            return (Vec::new(), rows.iter().next_back().map_or(0, |e| e.seq));
        }
        let mut after = rows.after(last_id);
        let high_water = after.next_back().map_or(
            last_id.min(rows.iter().next_back().map_or(0, |e| e.seq)),
            |e| e.seq,
        );
        let matching: Vec<u64> = rows
            .after(last_id)
            .filter(|e| q.matches(e))
            .map(|e| e.seq)
            .collect();
        (matching, high_water)
    });
    let to_event = |e: &Entry| {
        Event::default()
            .event("surge")
            .id(e.seq.to_string())
            .json_data(&*e.event)
            .unwrap_or_default()
    };
    let index = state.surges.clone();
    // A chunk that cannot be read ends the stream (the client resumes with Last-Event-ID)
    // rather than skipping surges.
    let backlog = stream::iter(
        backlog
            .chunks(BACKLOG_CHUNK)
            .map(<[u64]>::to_vec)
            .collect::<Vec<_>>(),
    )
    .then(move |chunk| {
        let index = index.clone();
        async move { index.entries(&chunk).await }
    })
    .flat_map(move |read| {
        let events: Vec<Option<Event>> = match read {
            Ok(entries) => entries.iter().map(|e| Some(to_event(e))).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the surges a live stream missed; ending it");
                vec![None]
            }
        };
        stream::iter(events)
    });
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
    .filter(move |e| std::future::ready(q.matches(&Fields::of(e.seq, &e.event))))
    .map(move |e| Some(to_event(&e)));
    // The stream ends at shutdown, so open dashboards do not hold the server up; it holds
    // its slot until it is dropped.
    // Revisions and missing categories alongside; the end of the surges (an unreadable
    // chunk, shutdown of the index) ends the stream.
    let surges = if surges_wanted {
        backlog
            .chain(live)
            .chain(stream::once(std::future::ready(None)))
            .boxed()
    } else {
        stream::pending().boxed()
    };
    let events = stream::select(surges, others.map(Some))
        .take_while(|event| std::future::ready(event.is_some()))
        .filter_map(|event| std::future::ready(event.map(Ok::<_, Infallible>)))
        .take_until(state.cancel.clone().cancelled_owned())
        .map(move |event| {
            let _held: &Slot = &slot;
            event
        });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Missed surges a live stream reads from the index at once.
const BACKLOG_CHUNK: usize = 256;

/// A place for one more stream from this client, if there is one.
fn stream_slot(state: &AppState, extensions: &Extensions) -> Result<Slot, Full> {
    // Served without connect info (an embedding's own server), all clients share one count.
    let client = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    state.streams.acquire(client)
}

/// The answer when no stream place is left: 429 for this client, 503 for the gateway.
fn streams_full(state: &AppState, full: Full) -> Response {
    let cfg = &state.cfg;
    let error = match full {
        Full::Client => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!(
                "this address has {} live streams open, the most one client may: close one \
                 (each browser tab holds one) and retry",
                cfg.max_streams_per_client
            ),
        ),
        Full::Total => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "the gateway serves {} live streams, the most it takes at once: retry later",
                cfg.max_streams
            ),
        ),
    };
    let mut resp = error.into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    resp
}

/// This resource's bodies as schema-only mirrors of `borderwatch-model`'s JSON, for the
/// document only.
mod doc {
    use utoipa::ToSchema;

    use crate::api::schema::SurgeEvent;

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SurgeList {
        surges: Vec<SurgeEvent>,
        /// Pass as `cursor` for the next page; null on the last page.
        next_cursor: Option<String>,
        /// The next page's URL; null on the last page.
        next: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use borderwatch_bus::MemoryBus;

    use super::*;
    use crate::surges::SurgeIndex;

    fn state() -> AppState {
        AppState {
            bus: Arc::new(MemoryBus::ephemeral()),
            surges: SurgeIndex::new(None, None, 16),
            cfg: Arc::default(),
            cancel: Default::default(),
            sessions: Default::default(),
            streams: crate::streams::StreamSlots::new(1, 1),
            series_keys: Default::default(),
            loopback: true,
        }
    }

    async fn list(state: &AppState, path: &str) -> Bytes {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let resp = list_surges(State(state.clone()), request).await.unwrap();
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
    }

    fn event(id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": id, "source": "fsb", "country": "PRK", "category": "study",
            "period": "2024-Q3", "value": 3765, "severity": "critical", "explanation": "x",
            "findings": [], "release_id": "rel-1", "detected_at": "2025-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_repeated_query_is_answered_from_the_cache_until_the_index_changes() {
        let state = state();
        state.surges.push(1, &event("sg-1"));
        let first = list(&state, "/v1/surges?limit=5").await;
        assert!(first.starts_with(b"{"), "{first:?}");
        // What the cache holds under the query is what the next request gets: put something
        // else there and it is served.
        let key = "/v1/surges?limit=5";
        let cached = state
            .surges
            .cache_get_as::<ListPage>(key, b"")
            .expect("cached");
        assert_eq!(cached.body, first);
        let planted = ListPage::new(Bytes::from_static(b"planted"), Format::Json, None);
        let size = planted.size();
        state
            .surges
            .cache_put_as(key, b"", state.surges.last_seq(), Arc::new(planted), size);
        assert_eq!(list(&state, "/v1/surges?limit=5").await, "planted");
        // Another query is its own entry.
        assert_eq!(list(&state, "/v1/surges?limit=6").await, first);
        // A new surge is a new generation: rendered again, with it.
        state.surges.push(2, &event("sg-2"));
        let after = list(&state, "/v1/surges?limit=5").await;
        let ids: Vec<String> =
            serde_json::from_slice::<serde_json::Value>(&after).unwrap()["surges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect();
        assert_eq!(ids, ["sg-2", "sg-1"]);
    }
}
