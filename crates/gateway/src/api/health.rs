//! Probes: `GET /healthz` (the process answers) and `GET /readyz` (the bus is connected and
//! the surge index caught up).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::state::AppState;

/// The probes' part of the OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(paths(healthz, readyz), components(schemas(Health, Readiness)))]
pub(crate) struct HealthApi;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `connected` and `surges_followed`.
    ready: bool,
    /// `memory` (embedded bus) or `nats`.
    transport: String,
    /// The bus connection is up.
    connected: bool,
    /// The surge index has read what the surge stream held at start.
    surges_followed: bool,
}

/// Readiness: 200 while the bus is connected and the surge index caught up, 503 otherwise
/// (for instance while NATS is unreachable).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "not ready: the body says why", body = Readiness),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let connected = state.bus.is_connected();
    let following = state.surges.is_following();
    let body = Readiness {
        ready: connected && following,
        transport: state.bus.kind().to_string(),
        connected,
        surges_followed: following,
    };
    let status = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
