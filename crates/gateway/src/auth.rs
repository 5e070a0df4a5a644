//! Access control. With `--api-token`, every request that changes state needs
//! `Authorization: Bearer <api token>`; with `--read-token`, every other request does too
//! (the read token or the API token), except the open paths: liveness, readiness, the API
//! document and the sign-in page. Subscriptions and their delivery logs are read with the API
//! token only (when there is one). A browser signed in at `/login` reads with its session
//! cookie instead, and a page load without one is sent to `/login` (API paths answer 401).
//! Tokens are compared in constant time and never logged.

use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::secret::constant_time_eq;
use crate::state::AppState;

/// Paths anyone may read, whatever the tokens: probes, the API's description and the sign-in
/// page.
const OPEN_PATHS: [&str; 5] = ["/healthz", "/readyz", "/openapi.json", "/docs", "/login"];

/// Posts anyone may send: signing in and out (they change only the browser's cookie).
const OPEN_POSTS: [&str; 2] = ["/login", "/logout"];

/// The answer refusing `request` for want of a token (or a session), if it is refused;
/// `None` lets it through. Synchronous: the router's access check (`router::access`) runs
/// it right after the host, origin and content-type checks, in the same middleware.
pub(crate) fn refusal(state: &AppState, request: &Request) -> Option<Response> {
    let cfg = &state.cfg;
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let given = bearer(request.headers());
    let path = request.uri().path();
    if changes_state && OPEN_POSTS.contains(&path) {
        return None;
    }
    if !changes_state
        && is_subscription_path(path)
        && let Some(token) = cfg.api_token.as_deref()
        && !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
    {
        return Some(
            ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "subscriptions and their delivery logs name webhooks: send `Authorization: Bearer <token>` with the API token",
            )
            .into_response(),
        );
    }
    if changes_state {
        if let Some(token) = cfg.api_token.as_deref()
            && !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
        {
            return Some(ApiError::unauthorized().into_response());
        }
    } else if let Some(read) = cfg.read_token.as_deref()
        && !OPEN_PATHS.contains(&path)
    {
        let ok = given.is_some_and(|g| {
            // Both comparisons always run, so timing does not say which token matched.
            let r = constant_time_eq(g.as_bytes(), read.as_bytes());
            let w = cfg
                .api_token
                .as_deref()
                .is_some_and(|t| constant_time_eq(g.as_bytes(), t.as_bytes()));
            r | w
        });
        if !ok && !crate::dashboard::has_session(request.headers(), &state.sessions) {
            if is_page_load(request) {
                let target = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                return Some(crate::dashboard::redirect_to_login(&target));
            }
            return Some(ApiError::unauthorized_read().into_response());
        }
    }
    None
}

/// Subscriptions and their delivery logs: with an API token, reading them needs it too (not
/// the read token, nor a session): they name webhooks, whose URLs are often secrets, and
/// their logs say what those receivers answered.
fn is_subscription_path(path: &str) -> bool {
    path == "/v1/subscriptions" || path.starts_with("/v1/subscriptions/")
}

/// A browser loading a dashboard page (not an API or metrics client): it asks for HTML.
fn is_page_load(request: &Request) -> bool {
    let path = request.uri().path();
    let api = path.starts_with("/v1/") || path == "/metrics";
    let wants_html = request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    request.method() == Method::GET && wants_html && !api
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive (RFC 9110).
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
}
