//! Starting roles: all of them in one process (`up`), or one at a time against NATS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use borderwatch_analytics::AnalysisConfig;
use borderwatch_bus::{Bus, MemoryBus, NatsBus, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_model::{AnalyzedRelease, Release};
use borderwatch_notify::NotifyConfig;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// The roles a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Analytics,
    Notify,
    Gateway,
}

/// The gateway's default upload limit: 64 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

pub const ALL_ROLES: [Role; 4] = [Role::Ingest, Role::Analytics, Role::Notify, Role::Gateway];

/// What `borderwatch up` (and tests) start.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// NATS URLs; `None` runs on the in-process bus kept in `data`.
    pub nats: Option<String>,
    pub data: PathBuf,
    pub http: SocketAddr,
    /// The API token (kept apart from `gateway` for callers that only set it).
    pub api_token: Option<String>,
    /// The gateway's other settings (its `api_token` is taken from the field above).
    pub gateway: GatewayConfig,
    pub stream_replicas: usize,
    pub roles: Vec<Role>,
    pub notify: NotifyConfig,
    /// Largest upload the gateway takes (bytes).
    pub max_upload_bytes: usize,
    /// The scheduled sources file the ingest role polls (TOML), if any.
    pub sources: Option<PathBuf>,
}

impl UpOptions {
    pub fn embedded(data: PathBuf) -> UpOptions {
        UpOptions {
            nats: None,
            data,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_token: None,
            gateway: GatewayConfig::default(),
            stream_replicas: 1,
            roles: ALL_ROLES.to_vec(),
            notify: NotifyConfig::default(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            sources: None,
        }
    }
}

/// A running set of roles.
#[derive(Debug)]
pub struct Running {
    pub bus: Bus,
    /// Where the gateway listens, if it runs here.
    pub http: Option<SocketAddr>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    pub fn gateway_url(&self) -> Option<String> {
        self.http.map(|a| format!("http://{a}"))
    }

    /// Stops every role: in-flight work is finished or left unacknowledged for redelivery.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Waits until a role stops by itself (an error) or `cancel` fires.
    pub async fn wait(mut self, cancel: CancellationToken) {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = self.tasks.join_next() => { error!("a role stopped; shutting down"); }
        }
        self.shutdown().await;
    }
}

/// Connects to the bus the options name and creates every stream and bucket.
pub async fn connect(
    nats: Option<&str>,
    data: &std::path::Path,
    replicas: usize,
) -> anyhow::Result<Bus> {
    let bus: Bus = match nats {
        Some(urls) => Arc::new(
            NatsBus::connect(urls, "borderwatch")
                .await
                .with_context(|| format!("connecting to NATS at {urls}"))?,
        ),
        None => Arc::new(
            MemoryBus::open(data)
                .await
                .with_context(|| format!("opening the data directory {}", data.display()))?,
        ),
    };
    names::ensure_all(bus.as_ref(), replicas)
        .await
        .context("creating streams and buckets")?;
    info!(transport = bus.kind(), "bus ready");
    Ok(bus)
}

/// Starts the roles in `opts` and returns once they are serving.
pub async fn start(opts: UpOptions) -> anyhow::Result<Running> {
    // One metrics registry per process: every role here counts into it, /metrics shows it.
    borderwatch_gateway::telemetry::install();
    if opts.roles.contains(&Role::Gateway) {
        opts.gateway
            .validate()
            .map_err(|e| anyhow::anyhow!("gateway settings: {e}"))?;
    }
    let bus = connect(opts.nats.as_deref(), &opts.data, opts.stream_replicas).await?;
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut http = None;
    for role in &opts.roles {
        let (bus, cancel) = (bus.clone(), cancel.clone());
        match role {
            Role::Ingest => {
                if let Some(path) = &opts.sources {
                    let sources = borderwatch_ingest::sources::load(path)
                        .with_context(|| format!("reading the sources file {}", path.display()))?;
                    info!(sources = sources.len(), file = %path.display(), "polling scheduled sources");
                    let (bus, cancel) = (bus.clone(), cancel.clone());
                    let cfg = borderwatch_ingest::sources::PollConfig {
                        max_bytes: opts.max_upload_bytes as u64,
                        ..Default::default()
                    };
                    tasks.spawn(borderwatch_ingest::sources::run(bus, sources, cfg, cancel));
                }
                // Bound before start returns, so an upload right after start is served.
                let server = borderwatch_ingest::service::Server::bind(bus).await?;
                tasks.spawn(async move {
                    if let Err(e) = server.run(cancel).await {
                        error!(error = %e, "ingest stopped");
                    }
                });
            }
            Role::Analytics => {
                tasks.spawn(async move {
                    let cfg = Arc::new(AnalysisConfig::default());
                    if let Err(e) = borderwatch_analytics::service::run(bus, cfg, cancel).await {
                        error!(error = %e, "analytics stopped");
                    }
                });
            }
            Role::Notify => {
                let cfg = opts.notify.clone();
                tasks.spawn(async move {
                    if let Err(e) = borderwatch_notify::run(bus, cfg, cancel).await {
                        error!(error = %e, "notify stopped");
                    }
                });
            }
            Role::Gateway => {
                let listener = tokio::net::TcpListener::bind(opts.http)
                    .await
                    .with_context(|| format!("listening on {}", opts.http))?;
                http = Some(listener.local_addr()?);
                let cfg = GatewayConfig {
                    api_token: opts.api_token.clone(),
                    max_body_bytes: opts.max_upload_bytes,
                    ..opts.gateway.clone()
                };
                tasks.spawn(async move {
                    if let Err(e) = borderwatch_gateway::serve(bus, listener, cfg, cancel).await {
                        error!(error = %e, "gateway stopped");
                    }
                });
            }
        }
    }
    Ok(Running {
        bus,
        http,
        cancel,
        tasks,
    })
}

/// A token that fires on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        info!("shutting down");
        t.cancel();
    });
    token
}

/// Waits until analytics has finished every source of `release` (or finds it finished
/// before), and returns the surges found, across sources.
pub async fn wait_analyzed(
    bus: &Bus,
    release: &Release,
    timeout: Duration,
) -> anyhow::Result<Vec<AnalyzedRelease>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut done = Vec::new();
    for key in &release.analyses {
        loop {
            if let Some(raw) = bus.kv_get(names::ANALYZED_BUCKET, key).await? {
                done.push(serde_json::from_slice(&raw)?);
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("analytics did not finish {key} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(done)
}
