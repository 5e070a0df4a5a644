//! What the tests and benchmarks of every crate share, and nothing ships: a real
//! `nats-server` with JetStream (`nats_server`), a scripted webhook receiver that records
//! every POST (`webhook`), a real Alertmanager (`alertmanager`) and a real SMTP server
//! (`smtp`, aiosmtpd). Nothing here is mocked.

pub mod alertmanager;
pub mod measure;
pub mod nats_server;
pub mod smtp;
pub mod webhook;

pub use alertmanager::Alertmanager;
pub use nats_server::NatsServer;
pub use smtp::{Mail, SmtpServer};
pub use webhook::{Attempt, Behaviour, ScriptedReceiver};
