//! The gateway: borderwatch's HTTP API, live event stream and dashboard (axum).
//!
//! It owns no state of its own: uploads go to the ingest service over `bw.ingest.submit`,
//! series come from the `bw_series` bucket that analytics writes, surges from the
//! `BW_SURGES` stream, subscriptions live in the `bw_subscriptions` bucket.
//!
//! Every route is described in the OpenAPI document ([`openapi`], served at `/openapi.json`
//! and rendered at `/docs`). Requests pass, outermost first: the request log, metrics, error
//! normalisation, CORS, the per-client rate limit, the timeout, the body limit and the token
//! check.
//!
//! Where things are: `api/` holds the handlers, one module per resource (ingest, series,
//! surges, subscriptions, deliveries, silences, health), each with its part of the OpenAPI
//! document; `router.rs` the route table and the layers; `config.rs` the settings;
//! `state.rs` what handlers share; `surges.rs` the gateway's index of the surge stream;
//! `dashboard/` the HTML pages; `openapi.rs` the merged document and `/docs`.

mod api;
pub mod auth;
mod config;
mod dashboard;
pub mod error;
mod guard;
mod live_kinds;
pub mod openapi;
mod page;
mod raster;
mod router;
mod secret;
mod series_keys;
mod session;
mod state;
mod streams;
pub mod surges;
pub mod telemetry;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use borderwatch_bus::Bus;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::{GatewayConfig, RateLimit};
pub use error::ApiError;
pub use router::routed_paths;
// The dashboard names these at the crate root.
pub(crate) use state::AppState;
use surges::SurgeIndex;

/// Builds the router over a surge index that is still catching up (`/readyz` says when it
/// is done; [`serve`] waits for it before answering), for a gateway listening on `addr`
/// (on loopback it answers only local host names). The rate limit and the live-stream caps
/// key on the peer address: serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(bus: Bus, cfg: GatewayConfig, addr: SocketAddr, cancel: CancellationToken) -> Router {
    let surges = SurgeIndex::follow(
        bus.clone(),
        cfg.public_url.as_deref(),
        cfg.surge_cache,
        cancel.clone(),
    );
    router::build(bus, surges, cfg, addr, cancel)
}

/// Serves the API on `listener` until `cancel` fires. Refuses settings that do not hold
/// together ([`GatewayConfig::validate`]) and an address other machines can reach without
/// an API token ([`GatewayConfig::check_exposure`]).
pub async fn serve(
    bus: Bus,
    listener: TcpListener,
    cfg: GatewayConfig,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    cfg.validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let addr: SocketAddr = listener.local_addr()?;
    cfg.check_exposure(addr)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))?;
    let surges = SurgeIndex::follow(
        bus.clone(),
        cfg.public_url.as_deref(),
        cfg.surge_cache,
        cancel.clone(),
    );
    // Answer only once the surges stored before start are indexed, so that a restarted
    // gateway never serves an empty list; connections wait in the listen backlog meanwhile.
    surges.wait_caught_up(Duration::from_secs(30)).await;
    info!(%addr, indexed = surges.last_seq(), "gateway listening");
    let app = router::build(bus, surges, cfg, addr, cancel.clone());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { cancel.cancelled().await })
    .await
}
