//! The notify service: matches surge events against subscriptions and delivers each one to
//! each matching webhook once, signed, retrying with backoff until it is taken.
//!
//! `backoff` is the pure core (when to try again); `service` connects it to the bus and
//! to HTTP.

pub mod backoff;
pub mod service;

pub use service::{NotifyConfig, run};
