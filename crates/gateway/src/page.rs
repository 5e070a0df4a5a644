//! What the list endpoints share: `limit` and `cursor` pagination with a next link, the
//! `format=json|csv` choice, and query strings that answer a clear 400 when they do not parse.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::ApiError;

/// The largest page any list serves.
pub(crate) const MAX_LIMIT: usize = 10_000;

/// The query string as `T`, or a 400 in the API's error body naming what did not parse.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned> ApiQuery<T> {
    /// The query string of `uri` as `T`: for a handler that reads it only when it must (one
    /// that answers from a cache first), with the extractor's 400.
    pub(crate) fn from_uri(uri: &Uri) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(uri)
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        ApiQuery::from_uri(&parts.uri)
    }
}

/// The page size: `given`, or `default`, at most `max`.
pub(crate) fn limit(given: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match given {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "`limit={n}` must be a whole number from 1 to {max}"
        ))),
    }
}

/// A sequence cursor (surges, deliveries): the stream sequence of the last item returned.
pub(crate) fn seq_cursor(cursor: Option<&str>) -> Result<Option<u64>, ApiError> {
    cursor
        .map(|c| {
            c.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "`cursor={c}` is not a cursor: pass the `next_cursor` of the previous page"
                ))
            })
        })
        .transpose()
}

/// A key cursor (series, subscriptions, silences): the key of the last item returned.
pub(crate) fn key_cursor(cursor: Option<&str>) -> Result<Option<&str>, ApiError> {
    match cursor {
        Some(c) if !borderwatch_bus::valid_key(c) => Err(ApiError::bad_request(format!(
            "`cursor={c}` is not a cursor: pass the `next_cursor` of the previous page"
        ))),
        other => Ok(other),
    }
}

/// How a list or series is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// JSON (the default).
    #[default]
    Json,
    /// CSV with a header row (`text/csv`).
    Csv,
}

/// The request's own path and query with `cursor` set to `cursor`: the next page.
pub(crate) fn next_link(uri: &Uri, cursor: &str) -> String {
    let query = uri.query().unwrap_or("");
    let path = format!("{}?", uri.path());
    let start = path.len();
    let mut next = form_urlencoded::Serializer::for_suffix(path, start);
    next.extend_pairs(form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "cursor"));
    next.append_pair("cursor", cursor);
    next.finish()
}

/// Everything but the unreserved characters of RFC 3986 (`A-Z a-z 0-9 - _ . ~`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes everything but unreserved characters: a query value or a path segment.
pub(crate) fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// `Cache-Control` of answers that change whenever a surge arrives: a cache may keep them
/// but must ask again (with `If-None-Match`) before reusing one.
pub(crate) const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// A strong `ETag` for an answer made of `parts`: the first 128 bits of their SHA-256, so
/// that it stays the same across restarts and versions for the same bytes.
pub(crate) fn etag(parts: &[&[u8]]) -> HeaderValue {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether `If-None-Match` in `request` names `etag` (or is `*`): compared weakly, as
/// RFC 9110 has it for this header, so `W/"x"` matches `"x"`.
pub(crate) fn none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|tag| tag.trim_ascii())
        .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == etag)
}

/// `304 Not Modified` for an answer whose validator is `etag`: no body, its `ETag` and
/// `Cache-Control`.
pub(crate) fn not_modified(etag: &HeaderValue) -> Response {
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    resp.headers_mut().insert(header::ETAG, etag.clone());
    resp.headers_mut().insert(header::CACHE_CONTROL, NO_CACHE);
    resp
}

/// Adds `Link: <next>; rel="next"` when there is a next page.
pub(crate) fn with_next(mut resp: Response, next: Option<&str>) -> Response {
    if let Some(v) = next.and_then(|n| HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")).ok())
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}

/// The `Content-Type` of CSV answers.
pub(crate) const CSV_TYPE: &str = "text/csv; charset=utf-8";

/// The `Content-Disposition` of a CSV answer: an attachment named `name`.
pub(crate) fn csv_disposition(name: &str) -> String {
    format!("attachment; filename=\"{name}\"")
}

/// CSV text: `header` then `rows`.
pub(crate) fn csv_body<I, R>(header: &[&str], rows: I) -> Vec<u8>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail; a row that somehow does is skipped rather than panicking.
    let _ = w.write_record(header);
    for row in rows {
        let row: Vec<String> = row.into_iter().collect();
        let _ = w.write_record(&row);
    }
    w.into_inner().unwrap_or_default()
}

/// A CSV answer: `header` then `rows`, served as an attachment named `name`.
pub(crate) fn csv<I, R>(name: &str, header: &[&str], rows: I) -> Response
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    (
        [
            (header::CONTENT_TYPE, CSV_TYPE.to_string()),
            (header::CONTENT_DISPOSITION, csv_disposition(name)),
        ],
        csv_body(header, rows),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_replaces_the_cursor_and_keeps_the_filters() {
        let uri: Uri = "/v1/surges?country=PRK&cursor=9&limit=2".parse().unwrap();
        assert_eq!(
            next_link(&uri, "5"),
            "/v1/surges?country=PRK&limit=2&cursor=5"
        );
        let uri: Uri = "/v1/series".parse().unwrap();
        // Values are written as a form encodes them: a space is `+`.
        assert_eq!(next_link(&uri, "a b"), "/v1/series?cursor=a+b");
        let uri: Uri = "/v1/series?q=x%20y&cursor=1".parse().unwrap();
        assert_eq!(next_link(&uri, "a/b"), "/v1/series?q=x+y&cursor=a%2Fb");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(
            percent_encode("/series/x?surge=a b&é"),
            "%2Fseries%2Fx%3Fsurge%3Da%20b%26%C3%A9"
        );
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert_eq!(limit(None, 100, 1000).unwrap(), 100);
        assert_eq!(limit(Some(1000), 100, 1000).unwrap(), 1000);
        assert!(limit(Some(0), 100, 1000).is_err());
        assert!(limit(Some(1001), 100, 1000).is_err());
        assert!(seq_cursor(Some("x")).is_err());
        assert_eq!(seq_cursor(Some("12")).unwrap(), Some(12));
    }
}
