//! The notify service's settings: retry policy, timeouts, bounds on work in flight, and
//! how often digests are looked at. Every delivery path reads them through its context.

use std::time::Duration;

use crate::backoff::Backoff;

/// Settings of the notify service.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub backoff: Backoff,
    /// Timeout of one webhook POST.
    pub request_timeout: Duration,
    /// Webhook POSTs in flight at once (surges and digests together). A delivery waiting
    /// to retry holds none.
    pub concurrency: usize,
    /// Events handled at once, retrying ones included. NATS's default limit of
    /// unacknowledged messages per consumer (1,000) is the useful maximum.
    pub max_events: usize,
    /// (subscription, event) deliveries under way at once, retrying ones included: what
    /// bounds memory when an event matches many subscriptions.
    pub max_deliveries: usize,
    /// The surge consumer's ack wait: an event not marked in progress for this long is
    /// redelivered. Events in hand are marked every third of it.
    pub ack_wait: Duration,
    /// How old the shared copy of the subscriptions and silences may be when an event
    /// uses it; an older one is reloaded first.
    pub cache_max_age: Duration,
    /// The gateway's public base URL: every surge sent carries `url`, the dashboard page of
    /// its evidence under it, and the messages link to it.
    pub public_url: Option<String>,
    /// An Alertmanager (its base URL, or its `/api/v2/alerts`) that every surge which opens
    /// or escalates an incident is pushed to as an alert, and every closing notice as its
    /// end, retried with `backoff` (`--alertmanager-url`).
    pub alertmanager_url: Option<String>,
    /// How often the digest sender looks for due digests.
    pub digest_tick: Duration,
    /// A digest claim not refreshed for this long belongs to a dead sender.
    pub digest_claim_lease: Duration,
    /// How long a history summary waits after its release's first historical surge arrived
    /// (for subscriptions without a digest, which wait their own `group_wait_secs`):
    /// analytics announces a release's surges together, so a few seconds gather them all.
    pub history_wait: Duration,
    /// The SMTP server email subscriptions are sent through (`--smtp-url`, `--smtp-from`,
    /// the password from `BORDERWATCH_SMTP_PASSWORD`); `None`: an email subscription's
    /// messages are given up at once, to the dead-letter stream, for a replay once it is set.
    pub smtp: Option<SmtpConfig>,
    /// Send webhooks to loopback, private, link-local and other non-public addresses
    /// (`--webhook-allow-private`): for local receivers and tests only. Off, such targets
    /// are refused before any connection, whatever a name resolves to.
    pub allow_private_targets: bool,
    /// Whether Slack and Teams messages of a surge carry its chart as an image
    /// (`--chart-images`).
    pub chart_images: ChartImages,
}

/// Whether chat messages carry a surge's chart image. Slack and Teams fetch the image from
/// their own servers, and Slack refuses a whole message whose image it cannot download:
/// behind a gateway that wants a read token (`up --read-token`), every such message would
/// fail and be dead-lettered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChartImages {
    /// Only when the public URL is not this machine or a private network.
    #[default]
    Auto,
    /// Whenever a public URL is set (the operator says the chat tool can fetch it).
    On,
    /// Never: the messages link to the evidence only.
    Off,
}

impl std::str::FromStr for ChartImages {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ChartImages::Auto),
            "on" => Ok(ChartImages::On),
            "off" => Ok(ChartImages::Off),
            other => Err(format!(
                "chart images must be auto, on or off, not {other:?}"
            )),
        }
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(10),
            concurrency: 64,
            max_events: 1000,
            max_deliveries: 10_000,
            cache_max_age: Duration::from_secs(1),
            ack_wait: Duration::from_secs(30),
            public_url: None,
            alertmanager_url: None,
            digest_tick: default_digest_tick(),
            digest_claim_lease: Duration::from_secs(60),
            history_wait: Duration::from_secs(5),
            smtp: None,
            allow_private_targets: false,
            chart_images: ChartImages::Auto,
        }
    }
}

/// How often a sender looks for due digests, at least.
const fn default_digest_tick() -> Duration {
    Duration::from_secs(1)
}

/// The operator's SMTP server. Its host is the operator's choice, so no address rule applies
/// to it (unlike webhooks, whose targets subscribers choose).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `smtp://host:port` (plain; `?tls=required` for STARTTLS) or `smtps://host:port`
    /// (TLS from the start), with the user name, if any, as the URL's user
    /// (`smtps://alerts@mail.example.org`); never a password.
    pub url: String,
    /// The `From` of every email: `alerts@example.org` or `borderwatch
    /// <alerts@example.org>`.
    pub from: String,
    /// The SMTP password, from the environment only (`BORDERWATCH_SMTP_PASSWORD`).
    pub password: Option<String>,
}

impl std::fmt::Debug for SmtpConfig {
    /// The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &self.url)
            .field("from", &self.from)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish()
    }
}
