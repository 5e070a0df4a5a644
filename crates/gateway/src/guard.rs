//! What a request must look like before the token check sees it, against browsers used as
//! weapons (cross-site writes, DNS rebinding) and oversized bodies:
//!
//! - **Host.** When the gateway listens on loopback, or when `allowed_hosts` is set, the
//!   `Host` must be `localhost`, `127.0.0.1`, `[::1]` (any port) or an allowed host: a page
//!   whose name was rebound to 127.0.0.1 sends its own name and is refused (403). The probes
//!   (`/healthz`, `/readyz`) answer any Host.
//! - **Origin.** A write (any method but GET, HEAD, OPTIONS) that carries an `Origin` must
//!   come from the gateway's own origin (the `Host` it was sent to), an allowed host or a
//!   configured CORS origin; another site's page is refused (403).
//! - **Content type.** JSON routes take `application/json` only (415 otherwise), `PATCH` also
//!   `application/merge-patch+json`: the types a page can send cross-site without asking
//!   (`text/plain`, forms) are refused. A `POST` without a body (an action) needs none. Uploads take
//!   any explicit type but those; on a gateway with an API token, any type (the token check
//!   stops pages, which cannot send the token).
//! - **Body size.** Every route but the upload takes at most `max_json_bytes` (413).

use std::borrow::Cow;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};

use crate::error::ApiError;
use crate::state::AppState;

/// The upload route: its own body limit and content-type rule.
pub(crate) const UPLOAD_PATH: &str = "/v1/ingest";

/// Routes that take a form (the dashboard's sign-in), not JSON.
const FORM_POSTS: [&str; 2] = ["/login", "/logout"];

/// Media types a browser sends cross-site without a CORS preflight.
const SIMPLE_TYPES: [&str; 3] = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
];

/// Host names always answered: this machine.
const LOCAL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Why `request` is refused, if it is.
pub(crate) fn refusal(state: &AppState, request: &Request) -> Option<ApiError> {
    let headers = request.headers();
    let host = request_host(request);
    if let Some(e) = host_refusal(state, request.uri().path(), host) {
        return Some(e);
    }
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !writes {
        return None;
    }
    if let Some(e) = origin_refusal(state, headers, host) {
        return Some(e);
    }
    let path = request.uri().path();
    if path == UPLOAD_PATH {
        return upload_type_refusal(state, headers);
    }
    if let Some(e) = size_refusal(state, headers) {
        return Some(e);
    }
    if FORM_POSTS.contains(&path) {
        return None;
    }
    match *request.method() {
        Method::POST if has_no_body(headers) => None,
        Method::POST => json_type_refusal(headers, &["application/json"]),
        Method::PATCH => json_type_refusal(headers, &["application/json", MERGE_PATCH]),
        _ => None,
    }
}

/// The media type of a JSON merge patch (RFC 7396), which `PATCH` takes besides JSON.
pub(crate) const MERGE_PATCH: &str = "application/merge-patch+json";

/// A request that declares no body (`Content-Length: 0`, or neither a length nor chunks):
/// an action such as `POST …/test` needs no content type. A page that sends one cross-site
/// still carries its `Origin` and is refused above.
fn has_no_body(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_LENGTH) {
        Some(len) => len.to_str().is_ok_and(|l| l.trim() == "0"),
        None => !headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// The host the request was sent to: `Host`, or the URI's authority (HTTP/2).
fn request_host(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
}

/// `host[:port]` without the port, lowercased; `[v6]` keeps its brackets. Borrowed when
/// already lowercase (every GET asks: no allocation for the usual `localhost:port`).
fn host_name(authority: &str) -> Cow<'_, str> {
    let a = authority.trim();
    let name = if a.starts_with('[') {
        a.split_once(']').map_or(a, |(h, _)| &a[..=h.len()])
    } else {
        match a.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => a,
        }
    };
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn is_allowed_host(state: &AppState, name: &str) -> bool {
    LOCAL_HOSTS.contains(&name)
        || state
            .cfg
            .allowed_hosts
            .iter()
            .any(|h| *host_name(h) == *name)
}

/// Probes answer whatever the Host: they show nothing, and a platform's probe (Kubernetes,
/// a load balancer) asks by address.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];

fn host_refusal(state: &AppState, path: &str, host: Option<&str>) -> Option<ApiError> {
    if (!state.loopback && state.cfg.allowed_hosts.is_empty()) || PROBES.contains(&path) {
        return None;
    }
    let name = host.map(host_name).unwrap_or_default();
    if is_allowed_host(state, name.as_ref()) {
        return None;
    }
    Some(ApiError::new(
        StatusCode::FORBIDDEN,
        "host_not_allowed",
        format!(
            "this gateway does not answer to the host name `{name}`: use localhost, 127.0.0.1 \
             or [::1], or start it with --allowed-hosts (BORDERWATCH_ALLOWED_HOSTS) naming the \
             host it is reached by"
        ),
    ))
}

fn origin_refusal(state: &AppState, headers: &HeaderMap, host: Option<&str>) -> Option<ApiError> {
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("null").trim();
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/').to_ascii_lowercase());
    let own = match (&authority, host) {
        (Some(a), Some(h)) => *a == h.trim().to_ascii_lowercase(),
        _ => false,
    };
    let allowed_host = authority.as_deref().is_some_and(|a| {
        state
            .cfg
            .allowed_hosts
            .iter()
            .any(|h| host_name(h) == host_name(a))
    });
    let cors = state
        .cfg
        .cors_origins
        .iter()
        .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if own || allowed_host || cors {
        return None;
    }
    Some(ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_origin",
        format!(
            "a page at `{origin}` may not change anything here: writes from a browser must \
             come from this gateway's own pages, or from an origin listed in --cors-origins \
             (BORDERWATCH_CORS_ORIGINS)"
        ),
    ))
}

/// The media type of the body, lowercased, without parameters; `None` when there is none.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let t = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (!t.is_empty()).then_some(t)
}

fn unsupported(message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        message,
    )
}

/// With an API token the token check guards uploads (a page cannot send the token); without
/// one, the content type must be one a page cannot send cross-site unasked.
fn upload_type_refusal(state: &AppState, headers: &HeaderMap) -> Option<ApiError> {
    if state.cfg.api_token.is_some() {
        return None;
    }
    match media_type(headers) {
        Some(t) if !SIMPLE_TYPES.contains(&t.as_str()) => None,
        given => Some(unsupported(format!(
            "an upload needs a Content-Type naming the file, such as text/csv, \
             application/x-ndjson or application/octet-stream (got {}); text/plain and form \
             types are refused without the API token, because any web page can send them",
            given.map_or("none".to_string(), |t| format!("`{t}`"))
        ))),
    }
}

fn json_type_refusal(headers: &HeaderMap, types: &[&str]) -> Option<ApiError> {
    match media_type(headers) {
        Some(t) if types.contains(&t.as_str()) => None,
        given => Some(unsupported(format!(
            "this route takes a JSON body: send it with Content-Type: {} (got {})",
            types.join(" or "),
            given.map_or("none".to_string(), |t| format!("`{t}`"))
        ))),
    }
}

/// A declared length over the small limit; a body without a length is stopped by the
/// extractor's limit (`DefaultBodyLimit`, also 413).
fn size_refusal(state: &AppState, headers: &HeaderMap) -> Option<ApiError> {
    let limit = state.cfg.max_json_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    (declared > limit as u64).then(|| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is {declared} bytes; this route takes at most {limit} \
                 (--max-json-bytes, BORDERWATCH_MAX_JSON_BYTES); only uploads to {UPLOAD_PATH} \
                 may be larger"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port_and_case() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:9"), "[::1]");
        assert_eq!(host_name("evil.example:80"), "evil.example");
    }

    #[test]
    fn the_media_type_is_read_without_parameters() {
        let mut h = HeaderMap::new();
        assert_eq!(media_type(&h), None);
        h.insert(
            header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(media_type(&h).as_deref(), Some("application/json"));
    }
}
