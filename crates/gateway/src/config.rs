//! The gateway's settings: tokens, the body limit, the request timeout, CORS origins and the
//! rate limit, with the checks types cannot make ([`GatewayConfig::validate`]). The router
//! turns them into layers (`router.rs`).

use std::time::Duration;

use axum::http::{HeaderValue, Uri};
use tower_http::cors::AllowOrigin;

/// Settings of the gateway.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Required as `Authorization: Bearer …` on every request that changes state.
    pub api_token: Option<String>,
    /// When set, required (or the API token) on every read but `/healthz`, `/readyz`,
    /// `/openapi.json` and `/docs`.
    pub read_token: Option<String>,
    /// Largest accepted request body (uploads).
    pub max_body_bytes: usize,
    /// A request not answered within this gets `408` (the live stream, once started, is not
    /// cut).
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser (CORS); `*` allows any; empty: none.
    pub cors_origins: Vec<String>,
    /// Requests per client IP address; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
}

/// A token bucket per client IP: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 50,
            burst: 100,
        }
    }
}

// By hand, so that a logged configuration never shows a token.
impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |t: &Option<String>| if t.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("GatewayConfig")
            .field("api_token", &set(&self.api_token))
            .field("read_token", &set(&self.read_token))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            api_token: None,
            read_token: None,
            max_body_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            cors_origins: Vec::new(),
            rate_limit: Some(RateLimit::default()),
        }
    }
}

impl GatewayConfig {
    /// Checks what cannot be checked by types: CORS origins are origins, limits are not zero.
    pub fn validate(&self) -> Result<(), String> {
        allowed_origins(&self.cors_origins)?;
        if let Some(rl) = self.rate_limit
            && (rl.per_second == 0 || rl.burst == 0)
        {
            return Err(format!(
                "rate limit {} per second, burst {}: both must be at least 1 (or turn the limit off)",
                rl.per_second, rl.burst
            ));
        }
        if self.request_timeout.is_zero() {
            return Err("the request timeout must be longer than zero".into());
        }
        Ok(())
    }
}

/// The CORS origins as the layer takes them: `None` when there are none (same origin only).
pub(crate) fn allowed_origins(origins: &[String]) -> Result<Option<AllowOrigin>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    if origins.iter().any(|o| o == "*") {
        return Ok(Some(AllowOrigin::any()));
    }
    let mut list = Vec::new();
    for o in origins {
        let uri: Uri = o.parse().map_err(|_| {
            format!("CORS origin `{o}` is not an origin such as https://example.org")
        })?;
        if uri.scheme().is_none() || uri.host().is_none() || uri.path().len() > 1 {
            return Err(format!(
                "CORS origin `{o}` is not an origin such as https://example.org (scheme and host, no path)"
            ));
        }
        list.push(
            HeaderValue::from_str(o.trim_end_matches('/'))
                .map_err(|_| format!("CORS origin `{o}` is not a valid header value"))?,
        );
    }
    Ok(Some(AllowOrigin::list(list)))
}
