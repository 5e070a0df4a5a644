//! What every handler shares: the bus, the surge index, the settings and the shutdown token.
//! A leaf: the API, the dashboard, access control and telemetry read it, it reads none of
//! them.

use std::sync::Arc;

use borderwatch_bus::Bus;
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::surges::SurgeIndex;

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) bus: Bus,
    pub(crate) surges: SurgeIndex,
    pub(crate) cfg: Arc<GatewayConfig>,
    /// Fires at shutdown: long-lived responses (the live stream) end with it.
    pub(crate) cancel: CancellationToken,
}
