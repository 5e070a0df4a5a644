//! NATS transport (placeholder, being written).
#[derive(Debug)]
pub struct NatsBus;
