//! The ingest service: file bytes in, durable observations and a release marker out.
//!
//! It serves `bw.ingest.submit` (queue group `ingest`) so that any gateway replica can hand
//! it an upload; an upload too big for one request travels through the object store and the
//! request carries its name. Every accepted file's exact bytes are kept in the object store
//! `bw_raw` before anything is published, so `borderwatch replay` can ingest them again.
//! Only figures that are new or changed against the stream's current values are published,
//! each with a `Nats-Msg-Id`, so the same file twice adds nothing. A changed figure is a
//! revision (announced on `bw.revision.…`, never tested for a surge); a category that earlier
//! releases had and this one leaves out is announced missing (`bw.missing.…`).
//!
//! The service's rooms: serving requests and sweeping the store (`serve.rs`), ingesting
//! one file (`ingest.rs`), release records (`release.rs`), replay (`replay.rs`), batch
//! publishing (`publish.rs`) and reading staged files (`staged.rs`). The client that sends
//! uploads is the `borderwatch-ingest-client` crate.

mod budget;
mod ingest;
mod lease;
mod locks;
mod publish;
mod release;
mod replay;
mod serve;
mod staged;
mod stored;

use borderwatch_bus::BusError;

use crate::error::IngestError;

pub use self::budget::{DEFAULT_PARSE_TIMEOUT, parse_timeout};
pub use self::ingest::{StagedUpload, Submission, ingest, ingest_object};
pub use self::release::releases;
pub use self::replay::{ReplayError, ReplayReport, replay};
pub use self::serve::{MAX_UPLOADS_IN_FLIGHT, Server, run, sweep_loop};

impl From<BusError> for IngestError {
    fn from(e: BusError) -> IngestError {
        IngestError::Unavailable(e.to_string())
    }
}
