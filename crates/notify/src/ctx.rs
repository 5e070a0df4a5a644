//! The context every delivery path shares (the surge consumer, the digest sender and the
//! dead-letter replay): the bus, the HTTP client, the SMTP client, the settings, the POST slots and the
//! cached subscriptions and silences.

use std::sync::Arc;

use borderwatch_bus::names;
use borderwatch_bus::{Bus, BusError};
use borderwatch_model::{Silence, Subscription};
use tokio::sync::Semaphore;

use crate::cache::Cached;
use crate::config::NotifyConfig;
use crate::email::{self, Mailer};
use crate::target::PublicOnly;

/// What every delivery path shares.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) bus: Bus,
    pub(crate) client: reqwest::Client,
    /// The client for the operator's own services (`--alertmanager-url`): private
    /// addresses allowed, since the operator named them, and still no redirects.
    pub(crate) operator_client: reqwest::Client,
    pub(crate) cfg: Arc<NotifyConfig>,
    /// The SMTP client of email subscriptions, when SMTP is configured.
    pub(crate) mailer: Option<Arc<Mailer>>,
    /// One per webhook POST in flight (`cfg.concurrency`): held around each attempt only,
    /// never while waiting to retry.
    pub(crate) posts: Arc<Semaphore>,
    /// This process, as the owner of delivery claims.
    pub(crate) owner: Arc<str>,
    pub(crate) subscriptions: Arc<Cached<Subscription>>,
    pub(crate) silences: Arc<Cached<Silence>>,
}

impl Ctx {
    pub(crate) fn new(bus: Bus, cfg: NotifyConfig) -> Result<Ctx, BusError> {
        let failed = |e: reqwest::Error| BusError::Nats {
            op: "http client",
            reason: e.to_string(),
        };
        let client = http_client(&cfg).map_err(failed)?;
        let operator_client = operator_client(&cfg).map_err(failed)?;
        let mailer = email::from_config(&cfg).map_err(|reason| BusError::Nats {
            op: "smtp settings",
            reason,
        })?;
        Ok(Ctx {
            bus,
            client,
            operator_client,
            mailer,
            posts: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            owner: format!("{:016x}", rand::random::<u64>()).into(),
            subscriptions: Arc::new(Cached::new(names::SUBSCRIPTIONS_BUCKET, cfg.cache_max_age)),
            silences: Arc::new(Cached::new(names::SILENCES_BUCKET, cfg.cache_max_age)),
            cfg: Arc::new(cfg),
        })
    }
}

/// The webhook client: it follows no redirect (a 3xx is a failed attempt: following one
/// would take a POST wherever the receiver says, inside our network too), and unless private
/// targets are allowed it connects only to the public addresses a name resolves to, with no
/// proxy from the environment (a proxy would resolve the name itself, unchecked).
fn http_client(cfg: &NotifyConfig) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .user_agent(concat!("borderwatch/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if cfg.allow_private_targets {
        builder.build()
    } else {
        builder
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnly))
            .build()
    }
}

/// The client for services the operator configured: no redirects, no proxy from the
/// environment (Alertmanager is usually next to borderwatch, not behind the proxy).
fn operator_client(cfg: &NotifyConfig) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .user_agent(concat!("borderwatch/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
}
