//! The notify service: matches surge events against subscriptions and delivers each one to
//! each matching webhook once, signed, retrying with backoff until it is taken or given up
//! to the dead-letter stream.
//!
//! Pure cores: `backoff` (when to try again), `template` (the body each format gets),
//! `silence` (what a silence mutes). `service` (the surge consumer), `digest` (one message
//! per release), `send`, `record` and `deadletter` connect them to the bus and to HTTP.

pub mod backoff;
mod cache;
pub mod deadletter;
mod digest;
pub mod notice;
pub mod record;
mod send;
pub mod service;
pub mod silence;
pub mod template;

pub use deadletter::{DeadLetter, ReplayReport, replay};
pub use service::{NotifyConfig, run};
