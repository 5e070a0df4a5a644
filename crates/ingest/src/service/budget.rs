//! How long one file may take to read, and how many are read at once: a leaf that both the
//! whole-file path (`ingest.rs`) and the streamed one (`staged.rs`) draw on.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::IngestError;

/// How long one file may take to read when `BORDERWATCH_PARSE_TIMEOUT` (seconds) does not
/// say: far beyond an agency's largest file, short enough that a file built to be slow is
/// refused instead of holding a reader.
pub const DEFAULT_PARSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The time one file may take to read: `BORDERWATCH_PARSE_TIMEOUT` seconds (at least 1), else
/// [`DEFAULT_PARSE_TIMEOUT`].
pub fn parse_timeout() -> Duration {
    static TIMEOUT: LazyLock<Duration> = LazyLock::new(|| {
        std::env::var("BORDERWATCH_PARSE_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_PARSE_TIMEOUT, |s| Duration::from_secs(s.max(1)))
    });
    *TIMEOUT
}

/// The refusal of a file not read within `timeout`.
pub(super) fn timed_out(timeout: Duration) -> IngestError {
    IngestError::ParseTimeout {
        seconds: timeout.as_secs().max(1),
    }
}

/// Files read at once: each on a blocking thread, so that one slow file leaves the others
/// their turn; a file past its deadline keeps its slot until its reader stops.
static PARSERS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Semaphore::new(cores.clamp(2, 8)))
});

/// A reader's slot, held by the blocking thread that reads one file. The deadline of a file
/// starts once it has its slot: waiting for one is queueing behind other files, not reading.
pub(super) async fn parser_slot() -> Result<OwnedSemaphorePermit, IngestError> {
    PARSERS
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))
}
