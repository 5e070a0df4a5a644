//! Uploads: `POST /v1/ingest` streams the body to the ingest service over
//! `bw.ingest.submit` (through the object store) and maps its answer to HTTP.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

// The ingest service's client (its own crate: the gateway does not link the service).
use borderwatch_ingest_client::{ErrorCode, SubmitError, submit_reader};

use super::schema;
use crate::error::ApiError;
use crate::page::ApiQuery;
use crate::state::AppState;

/// The uploads' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(ingest),
    components(schemas(doc::Release, doc::RejectedRow, schema::ErrorBody, schema::ErrorDetail))
)]
pub(crate) struct IngestApi;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestParams {
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
        (status = 201, description = "a new release", body = doc::Release),
        (status = 200, description = "the same bytes came before: nothing new", body = doc::Release),
        (status = 400, description = "empty body or bad parameters", body = schema::ErrorBody),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
        (status = 413, description = "the body is too large", body = schema::ErrorBody),
        (status = 422, description = "the file could not be read, or no row of it was accepted (`nothing_accepted`: nothing is stored; `details` lists the first 1,000 rejected rows)", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn ingest(
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
            status: match ErrorCode::of(&body) {
                Some(ErrorCode::TooManyRows) => StatusCode::PAYLOAD_TOO_LARGE,
                Some(ErrorCode::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
                Some(ErrorCode::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
                // No row accepted (`nothing_accepted`, nothing stored) and every other fault
                // of the file.
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

/// This resource's bodies as schema-only mirrors of `borderwatch-model`'s JSON, for the
/// document only.
mod doc {
    use utoipa::ToSchema;

    /// A row of an upload that could not be read.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct RejectedRow {
        /// 1-based line of the file (the header is line 1 in CSV).
        row: u64,
        column: String,
        value: String,
        reason: String,
    }

    /// What one upload produced.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Release {
        id: String,
        source: String,
        format: String,
        content_sha256: String,
        bytes: u64,
        accepted: u64,
        rejected: Vec<RejectedRow>,
        new_observations: u64,
        first_period: Option<String>,
        last_period: Option<String>,
        /// True when these exact bytes came before.
        duplicate: bool,
        analyses: Vec<String>,
        received_at: String,
    }
}
