//! Pieces of the ingest bench that the workspace's scale bench (`tests/benches/scale.rs`)
//! uses too.

pub(crate) mod raw_publish;
