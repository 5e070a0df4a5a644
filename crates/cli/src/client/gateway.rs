//! The HTTP side of the client: one gateway, its tokens, and the two ways a request fails
//! that a user must tell apart: the gateway could not be reached ([`Unreachable`], exit 2)
//! or it answered with an error (its `{"error": {"message"}}`, exit 1).

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The variable holding the API token: tokens never travel on the command line, where other
/// users of the machine can read them (`ps`) and shells keep them (history).
pub(crate) const API_TOKEN_VAR: &str = "BORDERWATCH_API_TOKEN";
/// The variable holding the read token, sent on reads when there is no API token.
pub(crate) const READ_TOKEN_VAR: &str = "BORDERWATCH_READ_TOKEN";

/// The gateway could not be reached: no connection, no answer in time. Its own type so that
/// `main` can exit 2 for it, apart from the gateway's refusals (exit 1): a script can then
/// retry the one and not the other.
#[derive(Debug)]
pub(crate) struct Unreachable {
    pub(crate) url: String,
    pub(crate) cause: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot reach the gateway at {}: {}",
            self.url, self.cause
        )
    }
}

impl std::error::Error for Unreachable {}

/// What a request needs: a read takes the API token or the read token, a write (and
/// reading subscriptions, which hold webhook URLs) the API token only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A gateway at a base URL, with the tokens from the environment.
#[derive(Debug)]
pub(crate) struct Gateway {
    base: String,
    http: reqwest::Client,
    api_token: Option<String>,
    read_token: Option<String>,
    timeout: Duration,
}

impl Gateway {
    /// A client of the gateway at `base` (`http://host:port`), with the tokens read from
    /// the environment (an empty variable counts as unset).
    pub(crate) fn new(base: &str, timeout: Duration) -> anyhow::Result<Gateway> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--gateway `{base}` is not an http:// or https:// URL");
        }
        let token = |var: &str| std::env::var(var).ok().filter(|t| !t.trim().is_empty());
        Ok(Gateway {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .context("starting the HTTP client")?,
            base,
            api_token: token(API_TOKEN_VAR),
            read_token: token(READ_TOKEN_VAR),
            timeout,
        })
    }

    /// Sends one request and returns the answer's JSON (`Value::Null` for an empty body,
    /// as `204` has). A 4xx or 5xx is an error carrying the API's message.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        access: Access,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url).query(query);
        let token = match access {
            Access::Write => self.api_token.as_ref(),
            Access::Read => self.api_token.as_ref().or(self.read_token.as_ref()),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&url, &e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(&url, &e))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).with_context(|| {
                format!(
                    "{method} {url}: the gateway answered {status} with a body that is not JSON"
                )
            });
        }
        bail!("{method} {path}: {}", refusal(status, &text, access))
    }

    /// [`Unreachable`] for a transport error: its innermost cause is the one a user can act
    /// on ("Connection refused"), the outer ones only say a request failed.
    fn unreachable(&self, url: &str, e: &reqwest::Error) -> anyhow::Error {
        let cause = if e.is_timeout() {
            format!(
                "no answer within {} s (--timeout)",
                self.timeout.as_secs_f64()
            )
        } else {
            let mut inner: &dyn std::error::Error = e;
            while let Some(next) = inner.source() {
                inner = next;
            }
            inner.to_string()
        };
        let url = url.split('?').next().unwrap_or(url).to_string();
        Unreachable { url, cause }.into()
    }
}

/// What an error answer says: the API's message, with a hint on which variable holds the
/// token when the answer is 401.
fn refusal(status: StatusCode, text: &str, access: Access) -> String {
    let message = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect());
    let hint = match (status, access) {
        (StatusCode::UNAUTHORIZED, Access::Write) => {
            format!(" (the token is read from {API_TOKEN_VAR})")
        }
        (StatusCode::UNAUTHORIZED, Access::Read) => {
            format!(" (the token is read from {API_TOKEN_VAR}, or {READ_TOKEN_VAR} for reads)")
        }
        _ => String::new(),
    };
    format!("the gateway answered {status}: {message}{hint}")
}

/// Whether `e` is (or wraps) [`Unreachable`].
pub(crate) fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Unreachable>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_the_api_message_and_the_token_variable() {
        let body = r#"{"error": {"code": "unauthorized", "message": "missing or wrong bearer token", "details": []}}"#;
        let msg = refusal(StatusCode::UNAUTHORIZED, body, Access::Write);
        assert_eq!(
            msg,
            "the gateway answered 401 Unauthorized: missing or wrong bearer token (the token is read from BORDERWATCH_API_TOKEN)"
        );
        let msg = refusal(
            StatusCode::BAD_GATEWAY,
            "<html>proxy down</html>",
            Access::Read,
        );
        assert_eq!(
            msg,
            "the gateway answered 502 Bad Gateway: <html>proxy down</html>"
        );
    }

    #[test]
    fn unreachable_is_found_through_context() {
        let e: anyhow::Error = Unreachable {
            url: "http://127.0.0.1:1/v1/surges".into(),
            cause: "Connection refused (os error 111)".into(),
        }
        .into();
        let e = e.context("listing surges");
        assert!(is_unreachable(&e));
        assert!(!is_unreachable(&anyhow::anyhow!("a 404")));
    }
}
