//! The gateway's settings: tokens, the body limits, the request timeout, CORS origins, the
//! host names it answers to, the rate limit and the live-stream caps, with the checks types
//! cannot make ([`GatewayConfig::validate`], [`GatewayConfig::check_exposure`]). The router
//! turns them into layers (`router.rs`, `guard.rs`).

use std::net::SocketAddr;
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
    /// Largest accepted upload (`POST /v1/ingest`).
    pub max_body_bytes: usize,
    /// Largest accepted body on every other route (JSON and forms): small, so that only the
    /// upload route can be made to buffer much.
    pub max_json_bytes: usize,
    /// A request not answered within this gets `408` (the live stream, once started, is not
    /// cut).
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser (CORS); `*` allows any; empty: none.
    pub cors_origins: Vec<String>,
    /// Requests per client IP address; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Host names (without port) this gateway answers to besides `localhost`, `127.0.0.1`
    /// and `[::1]`. When it listens on loopback, or when this list is not empty, a request
    /// whose `Host` is none of them is refused (403): a DNS-rebinding page cannot reach it.
    pub allowed_hosts: Vec<String>,
    /// Serve on an address other machines can reach without an API token (writes open to
    /// anyone who reaches the port). Off: such a start is refused.
    pub insecure_no_auth: bool,
    /// Live streams (`/v1/surges/stream`) open at once from one client IP address; beyond,
    /// `429`.
    pub max_streams_per_client: usize,
    /// Live streams open at once in all; beyond, `503`.
    pub max_streams: usize,
    /// Accept webhook URLs whose host is (or resolves to) a loopback, private, link-local or
    /// other non-public address (`--webhook-allow-private`): for local receivers and tests.
    /// Off, such subscriptions are refused (422), so that a subscription cannot make notify
    /// call into the network it runs in.
    pub webhook_allow_private: bool,
    /// The gateway's public base URL (`--public-url`): surges it serves carry `url`, the
    /// dashboard page of their evidence under it. `None`: no `url`.
    pub public_url: Option<String>,
    /// Surge events kept whole in memory (`--surge-cache`): the newest this many, and as
    /// many older ones read lately; any other is read from `BW_SURGES` when an answer needs
    /// it. Every surge is indexed whatever this is (about 120 bytes each): see
    /// `crate::surges`.
    pub surge_cache: usize,
    /// The SMTP server of email subscriptions (`--smtp-url`, `--smtp-from`), for a
    /// subscription's test email and an email dead letter's redelivery, which the gateway
    /// sends itself. `None`: those fail, saying so.
    pub smtp: Option<borderwatch_notify::SmtpConfig>,
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
            .field("max_json_bytes", &self.max_json_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limit", &self.rate_limit)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("insecure_no_auth", &self.insecure_no_auth)
            .field("max_streams_per_client", &self.max_streams_per_client)
            .field("max_streams", &self.max_streams)
            .field("webhook_allow_private", &self.webhook_allow_private)
            .field("public_url", &self.public_url)
            .field("surge_cache", &self.surge_cache)
            .field("smtp", &self.smtp)
            .finish()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            api_token: None,
            read_token: None,
            max_body_bytes: 64 * 1024 * 1024,
            max_json_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(120),
            cors_origins: Vec::new(),
            rate_limit: Some(RateLimit::default()),
            allowed_hosts: Vec::new(),
            insecure_no_auth: false,
            max_streams_per_client: 16,
            max_streams: 1024,
            webhook_allow_private: false,
            public_url: None,
            surge_cache: crate::surges::DEFAULT_SURGE_CACHE,
            smtp: None,
        }
    }
}

impl GatewayConfig {
    /// Checks what cannot be checked by types: CORS origins are origins, limits are not zero,
    /// and a read token never stands alone (reads guarded while writes are open would be a
    /// trap: anyone could still upload and subscribe).
    pub fn validate(&self) -> Result<(), String> {
        allowed_origins(&self.cors_origins)?;
        if self.read_token.is_some() && self.api_token.is_none() {
            return Err(
                "--read-token (BORDERWATCH_READ_TOKEN) is set but --api-token \
                 (BORDERWATCH_API_TOKEN) is not: reads would need a token while anyone could \
                 still write. Set --api-token too"
                    .into(),
            );
        }
        for (what, value) in [
            ("--max-json-bytes", self.max_json_bytes),
            ("--max-upload-bytes", self.max_body_bytes),
            ("--max-streams-per-client", self.max_streams_per_client),
            ("--max-streams", self.max_streams),
        ] {
            if value == 0 {
                return Err(format!("{what} must be at least 1"));
            }
        }
        for host in &self.allowed_hosts {
            if host.is_empty() || host.contains(['/', '@', ' ']) {
                return Err(format!(
                    "allowed host `{host}` is not a host name such as borderwatch.example.org"
                ));
            }
        }
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
        if let Some(url) = &self.public_url {
            borderwatch_model::check_public_url(url)?;
        }
        Ok(())
    }
}

impl GatewayConfig {
    /// Refuses to serve on `addr` when other machines can reach it and nothing guards
    /// writes: no API token and no explicit `--insecure-no-auth`.
    pub fn check_exposure(&self, addr: SocketAddr) -> Result<(), String> {
        if addr.ip().is_loopback() || self.api_token.is_some() || self.insecure_no_auth {
            return Ok(());
        }
        Err(format!(
            "refusing to listen on {addr} without an API token: other machines can reach \
             that address, and anyone who does could upload figures and create webhooks. Set \
             --api-token (BORDERWATCH_API_TOKEN), or, if something in front of the gateway \
             guards it (a proxy with its own sign-in, a firewall), pass --insecure-no-auth \
             (BORDERWATCH_INSECURE_NO_AUTH=1)"
        ))
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
