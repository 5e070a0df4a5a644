//! Access control. With `--api-token`, every request that changes state needs
//! `Authorization: Bearer <api token>`; with `--read-token`, every other request does too
//! (the read token or the API token), except the open paths: liveness, readiness and the API
//! document. Tokens are compared in constant time and never logged.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// Paths anyone may read, whatever the tokens: probes and the API's description.
const OPEN_PATHS: [&str; 4] = ["/healthz", "/readyz", "/openapi.json", "/docs"];

pub(crate) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let cfg = &state.cfg;
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let given = bearer(request.headers());
    if changes_state {
        if let Some(token) = cfg.api_token.as_deref()
            && !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
        {
            return ApiError::unauthorized().into_response();
        }
    } else if let Some(read) = cfg.read_token.as_deref()
        && !OPEN_PATHS.contains(&request.uri().path())
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
        if !ok {
            return ApiError::unauthorized_read().into_response();
        }
    }
    next.run(request).await
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

/// Compares without stopping at the first difference, so timing says nothing of the token.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
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
}
