//! Releases: `GET /v1/releases` (every ingested file's record, newest first) and
//! `GET /v1/releases/{id}` (one, with its rejected rows, missing categories and the figures
//! it revised), read from what ingest keeps: the `bw_releases` bucket (one record per file
//! and source) and the `BW_REVISIONS` stream (one event per changed figure).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use borderwatch_bus::{Bus, names};
use borderwatch_model::{Release, Revision};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, OpenApi};

use super::schema;
use crate::error::ApiError;
use crate::page::{self, ApiQuery};
use crate::state::AppState;

/// The releases' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(list_releases, get_release),
    components(schemas(
        doc::ReleaseSummary,
        doc::ReleaseList,
        doc::ReleaseDetail,
        doc::Revision,
        doc::MissingCategory,
        doc::ReleaseRejectedRow,
    ))
)]
pub(crate) struct ReleasesApi;

/// Revision events listed with one release, at most.
const MAX_REVISIONS_LISTED: usize = 1000;
/// Reading the revisions stream stops here whatever it has left.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page: older releases.
    cursor: Option<String>,
}

/// Every release record, newest first (by the time ingest received it).
async fn all_releases(bus: &Bus) -> Result<Vec<Release>, ApiError> {
    let mut out = Vec::new();
    for key in bus.kv_keys(names::RELEASES_BUCKET).await? {
        if let Some(raw) = bus.kv_get(names::RELEASES_BUCKET, &key).await?
            && let Ok(r) = serde_json::from_slice::<Release>(&raw)
        {
            out.push(r);
        }
    }
    out.sort_by(|a, b| {
        (b.received_at_ms, &b.received_at, &b.id).cmp(&(a.received_at_ms, &a.received_at, &a.id))
    });
    Ok(out)
}

/// The rows a release rejected in all: records from before `rejected_total` count their list.
fn rejected_total(r: &Release) -> u64 {
    r.rejected_total.max(r.rejected.len() as u64)
}

fn summary(r: &Release) -> Value {
    json!({
        "id": r.id,
        "source": r.source,
        "format": r.format,
        "content_sha256": r.content_sha256,
        "bytes": r.bytes,
        "received_at": r.received_at,
        "accepted": r.accepted,
        "rejected_total": rejected_total(r),
        "new_observations": r.new_observations,
        "revisions": r.revisions,
        "missing_categories": r.missing.len(),
        "first_period": r.first_period,
        "last_period": r.last_period,
    })
}

/// Ingested releases, newest first: what each file brought (rows accepted and rejected, new
/// figures, revisions, categories it left out). `GET /v1/releases/{id}` has the rows.
#[utoipa::path(get, path = "/v1/releases", tag = "ingest", params(ReleaseParams),
    responses(
        (status = 200, description = "a page of releases", body = doc::ReleaseList),
        (status = 400, description = "a parameter is wrong", body = schema::ErrorBody),
    ))]
pub(crate) async fn list_releases(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(params): ApiQuery<ReleaseParams>,
) -> Result<Response, ApiError> {
    let limit = page::limit(params.limit, 100, 1000)?;
    let cursor = page::key_cursor(params.cursor.as_deref())?;
    let all = all_releases(&state.bus).await?;
    let start = match cursor {
        None => 0,
        Some(c) => all
            .iter()
            .position(|r| r.id == c)
            .map(|i| i + 1)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`cursor={c}` is not a cursor: pass the `next_cursor` of the previous page"
                ))
            })?,
    };
    let page_items: Vec<&Release> = all.iter().skip(start).take(limit).collect();
    let next_cursor = (start + page_items.len() < all.len())
        .then(|| page_items.last().map(|r| r.id.clone()))
        .flatten();
    let next = next_cursor.as_deref().map(|c| page::next_link(&uri, c));
    let releases: Vec<Value> = page_items.into_iter().map(summary).collect();
    let resp = Json(json!({ "releases": releases, "next_cursor": next_cursor, "next": next }))
        .into_response();
    Ok(page::with_next(resp, next.as_deref()))
}

/// One release: its record as ingest keeps it (the first 1,000 rejected rows, with
/// `rejected_total` counting all; each category it left out) and the figures it revised
/// (the first 1,000 revision events, old and new count).
#[utoipa::path(get, path = "/v1/releases/{id}", tag = "ingest",
    params(("id" = String, Path, description = "the release id (`rel-…`)")),
    responses(
        (status = 200, description = "the release", body = doc::ReleaseDetail),
        (status = 404, description = "no such release", body = schema::ErrorBody),
    ))]
pub(crate) async fn get_release(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let missing = || ApiError::not_found(format!("no release {id}"));
    if !borderwatch_bus::valid_key(&id) {
        return Err(missing());
    }
    let release = all_releases(&state.bus)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(missing)?;
    let (revised, complete) = if release.revisions == 0 {
        (Vec::new(), true)
    } else {
        revisions_of(&state.bus, &release).await?
    };
    let mut v = serde_json::to_value(&release).unwrap_or_default();
    v["rejected_total"] = json!(rejected_total(&release));
    v["revised"] = json!(revised);
    v["revised_complete"] = json!(complete);
    Ok(Json(v))
}

/// The revision events `release` published, from `BW_REVISIONS` (its source's subjects), at
/// most [`MAX_REVISIONS_LISTED`]; false when more were left out or reading timed out.
async fn revisions_of(bus: &Bus, release: &Release) -> Result<(Vec<Revision>, bool), ApiError> {
    let filter = if borderwatch_model::is_token(&release.source) && release.source != "mixed" {
        format!("{}>", names::revisions_of(&release.source))
    } else {
        names::ALL_REVISIONS.to_string()
    };
    // The replay does not end by itself: stop at the filter's last message now.
    let last = bus
        .last_per_subject(names::REVISION_STREAM, &[&filter])
        .await?
        .iter()
        .map(|m| m.seq)
        .max();
    let Some(last) = last else {
        return Ok((Vec::new(), true));
    };
    let mut out = Vec::new();
    let mut complete = true;
    let mut replay = bus.replay(names::REVISION_STREAM, &filter, 1).await?;
    let read = async {
        while let Some(msg) = replay.next().await {
            let msg = msg?;
            if let Ok(r) = serde_json::from_slice::<Revision>(&msg.payload)
                && r.release_id == release.id
            {
                if out.len() == MAX_REVISIONS_LISTED {
                    complete = false;
                    break;
                }
                out.push(r);
            }
            if msg.seq >= last {
                break;
            }
        }
        Ok::<(), borderwatch_bus::BusError>(())
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(result) => result?,
        Err(_) => {
            tracing::warn!(release = %release.id, "reading a release's revisions timed out");
            complete = false;
        }
    }
    Ok((out, complete))
}

/// This resource's bodies as schema-only mirrors of `borderwatch-model`'s JSON, for the
/// document only.
mod doc {
    use utoipa::ToSchema;

    /// A row of an upload that could not be read.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct ReleaseRejectedRow {
        row: u64,
        column: String,
        value: String,
        reason: String,
    }

    /// One release in the list.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct ReleaseSummary {
        id: String,
        source: String,
        format: String,
        content_sha256: String,
        bytes: u64,
        received_at: String,
        accepted: u64,
        rejected_total: u64,
        /// Figures new or changed.
        new_observations: u64,
        /// Figures of known periods this release changed.
        revisions: u64,
        /// Categories earlier releases published and this one left out.
        missing_categories: u64,
        first_period: Option<String>,
        last_period: Option<String>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct ReleaseList {
        releases: Vec<ReleaseSummary>,
        next_cursor: Option<String>,
        next: Option<String>,
    }

    /// A figure of a known period that a release changed.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Revision {
        source: String,
        country: String,
        category: String,
        period: String,
        old_count: u64,
        new_count: u64,
        /// The release the old figure came from (empty if unknown).
        old_release_id: String,
        release_id: String,
    }

    /// A category a source published for these countries up to `last_period` and this
    /// release left out (not a fall to zero).
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct MissingCategory {
        source: String,
        category: String,
        countries: Vec<String>,
        last_period: String,
        release_first_period: String,
        release_last_period: String,
        release_id: String,
    }

    /// One release as ingest keeps it, with the figures it revised.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct ReleaseDetail {
        id: String,
        source: String,
        format: String,
        content_sha256: String,
        bytes: u64,
        accepted: u64,
        /// The first 1,000 rejected rows.
        rejected: Vec<ReleaseRejectedRow>,
        rejected_total: u64,
        new_observations: u64,
        first_period: Option<String>,
        last_period: Option<String>,
        duplicate: bool,
        received_at: String,
        /// How many figures it revised.
        revisions: u64,
        #[schema(required = false)]
        missing: Vec<MissingCategory>,
        /// The revision events, at most 1,000.
        revised: Vec<Revision>,
        /// False when `revised` is not all of them.
        revised_complete: bool,
    }
}
