//! One attempt at a webhook: a single signed POST and its line in the delivery log
//! (`BW_ATTEMPTS`). Retrying is the caller's business (`send`, the dead-letter replay).

use std::time::{Duration, Instant};

use borderwatch_model::{
    EVENT_ID_HEADER, SIGNATURE_HEADER, Subscription, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER, now_rfc3339, sign_body, sign_standard,
};
use reqwest::StatusCode;

use crate::backoff::parse_retry_after;
use crate::ctx::Ctx;
use crate::record::{DeliveryAttempt, Outcome, log_attempt};
use crate::target::{refusal, refused_in};

/// The result of one POST.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) status: Option<u16>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) error: Option<String>,
    pub(crate) latency_ms: u64,
    /// The target is not a public address and private ones are not allowed: nothing was
    /// sent, and trying again will not help.
    pub(crate) refused: bool,
}

impl Attempt {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_some_and(|c| (200..300).contains(&c))
    }
}

/// POSTs `body` once, signed with the subscription's secret twice: the body alone
/// (`X-Borderwatch-Signature`) and, as Standard Webhooks does, `id.timestamp.body`
/// (`webhook-signature`), which a receiver can refuse to accept twice. Nothing is sent to
/// a target that is not a public address unless private targets are allowed.
pub(crate) async fn post(ctx: &Ctx, sub: &Subscription, id: &str, body: &[u8]) -> Attempt {
    if !ctx.cfg.allow_private_targets
        && let Some(refused) = refusal(&sub.webhook.url)
    {
        return Attempt::refused(refused.to_string());
    }
    let secret = sub.webhook.secret.as_deref().unwrap_or_default().as_bytes();
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let sent = Instant::now();
    let result = ctx
        .client
        .post(&sub.webhook.url)
        .header("content-type", "application/json")
        .header(EVENT_ID_HEADER, id)
        .header(SIGNATURE_HEADER, sign_body(secret, body))
        .header(WEBHOOK_ID_HEADER, id)
        .header(WEBHOOK_TIMESTAMP_HEADER, timestamp)
        .header(
            WEBHOOK_SIGNATURE_HEADER,
            sign_standard(secret, id, timestamp, body),
        )
        .body(body.to_vec())
        .send()
        .await;
    let latency_ms = sent.elapsed().as_millis() as u64;
    match result {
        // The answer's body is never read: a receiver could send gigabytes, and what it
        // says (an internal page behind a redirect) is not for the public delivery log.
        Ok(resp) => Attempt {
            status: Some(resp.status().as_u16()),
            retry_after: resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
            error: failure_reason(resp.status()),
            latency_ms,
            refused: false,
        },
        Err(e) => match refused_in(&e) {
            Some(refused) => Attempt {
                latency_ms,
                ..Attempt::refused(refused.to_string())
            },
            None => Attempt {
                status: None,
                retry_after: None,
                error: Some(network_reason(&e)),
                latency_ms,
                refused: false,
            },
        },
    }
}

impl Attempt {
    /// An attempt not made: the target is refused.
    pub(crate) fn refused(error: String) -> Attempt {
        Attempt {
            status: None,
            retry_after: None,
            error: Some(error),
            latency_ms: 0,
            refused: true,
        }
    }
}

/// What the delivery log says of a request that got no answer: what failed and its root
/// cause (`could not connect: Connection refused (os error 111)`), never the URL, whose
/// userinfo, path and query are often the secret.
fn network_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut root = None;
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        root = Some(c);
        cause = c.source();
    }
    match root {
        Some(root) => format!("{what}: {root}"),
        // No cause: the error's own words, without its URL.
        None => {
            let own = e.to_string();
            format!(
                "{what}: {}",
                own.split(" for url (").next().unwrap_or_default()
            )
        }
    }
}

/// What the delivery log says of a non-2xx answer: its status and reason phrase only.
fn failure_reason(status: StatusCode) -> Option<String> {
    if status.is_success() {
        None
    } else if status.is_redirection() {
        Some(format!("HTTP {status}: redirects are not followed"))
    } else {
        Some(format!("HTTP {status}"))
    }
}

/// Logs one attempt.
pub(crate) async fn log(ctx: &Ctx, sub: &str, id: &str, n: u32, a: &Attempt, outcome: Outcome) {
    log_attempt(
        &ctx.bus,
        &DeliveryAttempt {
            subscription: sub.into(),
            event_id: id.into(),
            attempt: n,
            at: now_rfc3339(),
            outcome,
            status: a.status,
            latency_ms: Some(a.latency_ms),
            error: a.error.clone(),
        },
    )
    .await;
}
