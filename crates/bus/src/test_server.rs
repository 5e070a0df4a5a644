//! nats-server for tests (placeholder, being written).
