//! What the gateway's test files share: a real gateway serving on a random loopback port
//! over a real bus (the embedded one, or a nats-server the test started), stopped when the
//! handle is dropped. Each file adds the requests it needs as methods of [`Gateway`].

#![allow(dead_code)]

use std::sync::Arc;

use borderwatch_bus::{Bus, MemoryBus, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_test_support::NatsServer;
use tokio_util::sync::CancellationToken;

pub(crate) struct Gateway {
    pub(crate) bus: Bus,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    /// A client that uses no proxy from the environment: requests stay on loopback.
    pub(crate) http: reqwest::Client,
    /// The API token the gateway was started with, if any.
    pub(crate) token: Option<String>,
    cancel: CancellationToken,
    _nats: Option<NatsServer>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Gateway {
    /// Keeps `nats` running as long as the gateway.
    pub(crate) fn holding(mut self, nats: NatsServer) -> Gateway {
        self._nats = Some(nats);
        self
    }
}

/// An embedded bus in memory with every stream and bucket made.
pub(crate) async fn memory_bus() -> Bus {
    let bus: Bus = Arc::new(MemoryBus::ephemeral());
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    bus
}

/// Serves `cfg` exactly over `bus`. The listener is bound before this returns, so requests
/// wait in its backlog until the gateway is ready.
pub(crate) async fn start_on(bus: Bus, cfg: GatewayConfig) -> Gateway {
    let cancel = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let token = cfg.api_token.clone();
    let (b, c) = (bus.clone(), cancel.clone());
    tokio::spawn(async move {
        borderwatch_gateway::serve(b, listener, cfg, c)
            .await
            .unwrap()
    });
    Gateway {
        bus,
        base,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        token,
        cancel,
        _nats: None,
    }
}

/// Serves `cfg` over a fresh embedded bus.
pub(crate) async fn start(cfg: GatewayConfig) -> Gateway {
    start_on(memory_bus().await, cfg).await
}
