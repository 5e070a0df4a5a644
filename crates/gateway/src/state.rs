//! What every handler shares: the bus, the surge index, the settings and the shutdown token.
//! A leaf: the API, the dashboard, access control and telemetry read it, it reads none of
//! them.

use std::sync::Arc;

use borderwatch_bus::Bus;
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::series_keys::SeriesKeys;
use crate::session::Sessions;
use crate::streams::StreamSlots;
use crate::surges::SurgeIndex;

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) bus: Bus,
    pub(crate) surges: SurgeIndex,
    pub(crate) cfg: Arc<GatewayConfig>,
    /// Fires at shutdown: long-lived responses (the live stream) end with it.
    pub(crate) cancel: CancellationToken,
    /// The dashboard's signed-in browsers.
    pub(crate) sessions: Sessions,
    /// The live streams open now, capped per client and in all.
    pub(crate) streams: StreamSlots,
    /// The series keys, sorted, shared by the list requests.
    pub(crate) series_keys: SeriesKeys,
    /// Listening on a loopback address: only local host names are answered (`guard.rs`).
    pub(crate) loopback: bool,
}
