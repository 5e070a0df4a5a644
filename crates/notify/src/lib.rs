//! The notify service: matches surge events against subscriptions and delivers each one to
//! each matching webhook once, signed, retrying with backoff until it is taken or given up
//! to the dead-letter stream.
//!
//! Pure cores: `backoff` (when to try again), `template` (the body each format gets),
//! `alert` (surges as Alertmanager alerts), `silence` (what a silence mutes). `service` (the surge consumer), `digest` (one message
//! per release), `send`, `record` and `deadletter` connect them to the bus and to HTTP.
//!
//! Imports run one way: `target` (which webhook addresses may be connected to) imports
//! none; `config` and `ctx` (the settings and the context every path
//! shares), `attempt` (one POST) and `digest_claim` import none of the paths; `deadletter`
//! imports those; `send` imports `deadletter`; `digest` imports `send`; `alertmanager`
//! (the push to `--alertmanager-url`) imports `ctx` and `alert`; `settle` (keeping an event
//! ours, delivering one notice under a claim) imports `send` and `record`; `kinds` (the
//! consumers of revisions and missing categories) imports `settle` and `digest` (revisions
//! go out in batches, one per subscription and release); `service` imports
//! `digest`, `settle`, `kinds` and `alertmanager`; `template` imports `alert`, which imports none, and `config` (whether chat messages carry chart images); `test_event` (the API's test POST) imports `channel` and
//! `template`. `email` (a subscription's email, over SMTP) imports `attempt`, `config`,
//! `notice` and `template`; `channel` (one attempt: a POST or an email) imports `attempt`,
//! `ctx` and `email`; `send` and `deadletter` import `channel`. `telemetry` (the latency histogram and the gauges of
//! `/metrics`) imports `ctx`, `deadletter`, `notice` and `silence`; `send` and `service` import it. The record and log types themselves live in `borderwatch-model`.

pub mod alert;
mod alertmanager;
mod attempt;
pub mod backoff;
mod cache;
mod channel;
mod config;
mod ctx;
pub mod deadletter;
mod digest;
mod digest_claim;
pub mod email;
mod kinds;
pub mod notice;
pub mod record;
mod send;
pub mod service;
mod settle;
pub mod silence;
mod target;
pub mod telemetry;
pub mod template;
pub mod test_event;

pub use config::{ChartImages, NotifyConfig, SmtpConfig};
pub use deadletter::{DeadLetter, ReplayReport, Resent, replay, resend_one};
pub use service::run;
pub use test_event::{TestSent, send_test};
