//! What the tests and benchmarks of every crate share, and nothing ships: a real
//! `nats-server` with JetStream (`nats_server`), a scripted webhook receiver that records
//! every POST (`webhook`) and a real Alertmanager (`alertmanager`). Nothing here is mocked.

pub mod alertmanager;
pub mod nats_server;
pub mod webhook;

pub use alertmanager::Alertmanager;
pub use nats_server::NatsServer;
pub use webhook::{Attempt, Behaviour, ScriptedReceiver};
