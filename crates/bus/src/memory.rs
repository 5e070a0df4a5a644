//! In-process transport (placeholder, being written).
#[derive(Debug)]
pub struct MemoryBus;
