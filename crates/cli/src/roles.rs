//! Starting roles: all of them in one process (`up`), or one at a time against NATS.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use borderwatch_analytics::AnalysisConfig;
use borderwatch_bus::{Bus, MemoryBus, NatsBus, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_model::{AnalyzedRelease, Release};
use borderwatch_notify::NotifyConfig;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// The roles a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Analytics,
    Notify,
    Gateway,
}

/// How long a role keeps trying, at start, to reach NATS and create its streams and buckets
/// (and to open its consumer) before it gives up: long enough for a cluster started together
/// with its services to form and elect its leaders.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(180);
/// The longest pause between two start-up attempts.
const MAX_STARTUP_BACKOFF: Duration = Duration::from_secs(5);

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
    /// The gateway's settings, as given: its `api_token` and `max_body_bytes` too (the
    /// latter also bounds what the ingest role's source poller fetches).
    pub gateway: GatewayConfig,
    pub stream_replicas: usize,
    /// Limits set on the streams (`--obs-max-bytes`); unset ones keep what the streams have.
    pub limits: names::StreamLimits,
    pub roles: Vec<Role>,
    pub notify: NotifyConfig,
    /// The analytics role's detectors and their settings (`[analytics]` of `--config`).
    pub analysis: AnalysisConfig,
    /// The scheduled sources file the ingest role polls (TOML), if any.
    pub sources: Option<PathBuf>,
    /// Where to serve `/healthz` and `/readyz` for container probes (roles without HTTP).
    pub health: Option<SocketAddr>,
    /// How long to keep retrying JetStream at start (see [`DEFAULT_STARTUP_TIMEOUT`]).
    pub startup_timeout: Duration,
}

impl UpOptions {
    pub fn embedded(data: PathBuf) -> UpOptions {
        UpOptions {
            nats: None,
            data,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            gateway: GatewayConfig {
                max_body_bytes: DEFAULT_MAX_UPLOAD_BYTES,
                ..GatewayConfig::default()
            },
            stream_replicas: 1,
            limits: names::StreamLimits::default(),
            roles: ALL_ROLES.to_vec(),
            notify: NotifyConfig::default(),
            analysis: AnalysisConfig::default(),
            sources: None,
            health: None,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

impl UpOptions {
    /// Lets webhooks go to loopback and other private addresses, in the gateway (at
    /// subscription time) and in notify (at connect time), as `--webhook-allow-private`
    /// does: for local receivers and tests.
    pub fn allow_private_webhooks(&mut self) {
        self.gateway.webhook_allow_private = true;
        self.notify.allow_private_targets = true;
    }
}

/// A running set of roles.
#[derive(Debug)]
pub struct Running {
    pub bus: Bus,
    /// Where the gateway listens, if it runs here.
    pub http: Option<SocketAddr>,
    /// Where `/healthz` and `/readyz` are served, if asked for.
    pub health: Option<SocketAddr>,
    /// Every role is running and none is stopping (what `/readyz` reports, with the bus).
    ready: Arc<AtomicBool>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    pub fn gateway_url(&self) -> Option<String> {
        self.http.map(|a| format!("http://{a}"))
    }

    /// Stops every role and waits for them: each finishes (and acknowledges) the work in
    /// hand and leaves the rest unacknowledged for another replica. `/readyz` turns 503 at
    /// once.
    pub async fn shutdown(mut self) {
        self.ready.store(false, Ordering::SeqCst);
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        info!("every role stopped");
    }

    /// Waits until `cancel` fires (SIGTERM, Ctrl-C), then shuts down. If a role stops by
    /// itself first (an error it could not outlive), the others are shut down too and the
    /// error says so, so that the process exits non-zero and its supervisor restarts it.
    pub async fn wait(mut self, cancel: CancellationToken) -> anyhow::Result<()> {
        let failed = tokio::select! {
            _ = cancel.cancelled() => false,
            _ = self.tasks.join_next() => { error!("a role stopped; shutting down"); true }
        };
        self.shutdown().await;
        if failed {
            bail!("a role stopped unexpectedly (see the log above)");
        }
        Ok(())
    }
}

/// Connects to the bus the options name and creates every stream and bucket, retrying a
/// NATS bus for up to [`DEFAULT_STARTUP_TIMEOUT`] (see [`connect_within`]).
pub async fn connect(
    nats: Option<&str>,
    data: &std::path::Path,
    replicas: usize,
) -> anyhow::Result<Bus> {
    let limits = names::StreamLimits::default();
    connect_within(nats, data, replicas, limits, DEFAULT_STARTUP_TIMEOUT).await
}

/// Connects to the bus the options name and creates every stream and bucket.
///
/// Against NATS both steps are retried with backoff until `timeout` has passed, with a
/// warning per failed attempt (its number and error): a cluster started together with its
/// services answers JetStream requests only once it has formed, and several roles creating
/// the same streams at once can time each other out. The embedded bus is not retried (a data
/// directory that does not open will not open later).
pub async fn connect_within(
    nats: Option<&str>,
    data: &std::path::Path,
    replicas: usize,
    limits: names::StreamLimits,
    timeout: Duration,
) -> anyhow::Result<Bus> {
    let bus: Bus = match nats {
        Some(urls) => {
            let deadline = tokio::time::Instant::now() + timeout;
            let what = format!("connecting to NATS at {urls}");
            let nats = retry_at_start(&what, deadline, timeout, || {
                NatsBus::connect(urls, "borderwatch")
            })
            .await?;
            let bus: Bus = Arc::new(nats);
            retry_at_start("creating streams and buckets", deadline, timeout, || {
                names::ensure_all_with(bus.as_ref(), replicas, limits)
            })
            .await?;
            bus
        }
        None => {
            let bus: Bus = Arc::new(
                MemoryBus::open(data)
                    .await
                    .with_context(|| format!("opening the data directory {}", data.display()))?,
            );
            names::ensure_all_with(bus.as_ref(), replicas, limits)
                .await
                .context("creating streams and buckets")?;
            bus
        }
    };
    if borderwatch_bus::obs::holds_legacy_figures(bus.as_ref())
        .await
        .context("reading the layout of the stored figures")?
    {
        anyhow::bail!(borderwatch_bus::obs::legacy_layout_error());
    }
    info!(transport = bus.kind(), "bus ready");
    Ok(bus)
}

/// The pause before start-up attempt `attempt + 1`: 250 ms, doubling, at most
/// [`MAX_STARTUP_BACKOFF`].
fn startup_backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64 << attempt.saturating_sub(1).min(5)).min(MAX_STARTUP_BACKOFF)
}

/// Runs `op` until it succeeds or `deadline` passes, logging every failed attempt; the
/// error after the deadline names the step, the attempts and the last error.
async fn retry_at_start<T, E, F, Fut>(
    what: &str,
    deadline: tokio::time::Instant,
    timeout: Duration,
    mut op: F,
) -> anyhow::Result<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1u32;
    loop {
        match op().await {
            Ok(v) => {
                if attempt > 1 {
                    info!(attempt, "{what}: succeeded after retrying");
                }
                return Ok(v);
            }
            Err(e) => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    bail!(
                        "{what}: gave up after {attempt} attempts in {timeout:?} (--startup-timeout): {e}"
                    );
                }
                let pause = startup_backoff(attempt).min(deadline - now);
                warn!(attempt, error = %e, retry_in_ms = pause.as_millis() as u64, "{what} failed at start; trying again");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
        }
    }
}

/// Runs a worker role, starting it again if it stops with an error before `deadline` (its
/// first consumer request can time out on a cluster that is still forming), with a warning
/// per attempt. After the deadline an error stops the role, and with it the process.
async fn run_role<E, F, Fut>(
    role: &'static str,
    deadline: tokio::time::Instant,
    cancel: CancellationToken,
    mut run: F,
) where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut attempt = 1u32;
    loop {
        match run().await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() < deadline && !cancel.is_cancelled() => {
                warn!(role, attempt, error = %e, "{role} failed at start; starting it again");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(startup_backoff(attempt)) => {}
                }
                attempt += 1;
            }
            Err(e) => {
                error!(role, error = %e, "{role} stopped");
                return;
            }
        }
    }
}

/// Starts the roles in `opts` and returns once they are serving.
///
/// Readiness: each role logs one event with the field `ready` set to its name once it
/// serves, for tests and scripts to wait for instead of a message's wording (in JSON logs
/// `{"fields":{"ready":"gateway","http":"127.0.0.1:PORT",…}}`): ingest (its request
/// subscription is bound) and the gateway (listening; `http` is its address) below, analytics
/// and notify in their services once their durable consumer is up.
pub async fn start(opts: UpOptions) -> anyhow::Result<Running> {
    // One metrics registry per process: every role here counts into it, /metrics shows it.
    borderwatch_gateway::telemetry::install();
    if opts.roles.contains(&Role::Gateway) {
        opts.gateway
            .validate()
            .and_then(|()| opts.gateway.check_exposure(opts.http))
            .map_err(|e| anyhow::anyhow!("gateway settings: {e}"))?;
    }
    if opts.roles.contains(&Role::Analytics) {
        opts.analysis.validate().context("analytics settings")?;
    }
    let started = tokio::time::Instant::now();
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    // Health probes first: `/readyz` answers 503 while the bus is still being reached.
    let ready = Arc::new(AtomicBool::new(false));
    let bus_slot = Arc::new(OnceLock::new());
    let health = match opts.health {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening for health probes on {addr}"))?;
            let bound = listener.local_addr()?;
            info!(addr = %bound, "health probes served");
            let (slot, ready, cancel) = (bus_slot.clone(), ready.clone(), cancel.clone());
            tasks.spawn(serve_health(listener, slot, ready, cancel));
            Some(bound)
        }
        None => None,
    };
    let bus = connect_within(
        opts.nats.as_deref(),
        &opts.data,
        opts.stream_replicas,
        opts.limits,
        opts.startup_timeout,
    )
    .await?;
    let _ = bus_slot.set(bus.clone());
    let deadline = started + opts.startup_timeout;
    // The gateway's listener before any role starts: its address is the default public URL,
    // which notify links to as well.
    let mut listener = if opts.roles.contains(&Role::Gateway) {
        Some(
            tokio::net::TcpListener::bind(opts.http)
                .await
                .with_context(|| format!("listening on {}", opts.http))?,
        )
    } else {
        None
    };
    let mut opts = opts;
    if let Some(l) = &listener {
        default_public_url(&mut opts, l.local_addr()?);
    }
    if let Some(url) = &opts.notify.public_url {
        borderwatch_model::check_public_url(url).map_err(|e| anyhow::anyhow!(e))?;
    }
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
                        max_bytes: opts.gateway.max_body_bytes as u64,
                        ..Default::default()
                    };
                    tasks.spawn(borderwatch_ingest::sources::run(bus, sources, cfg, cancel));
                }
                tasks.spawn(borderwatch_ingest::service::sweep_loop(
                    bus.clone(),
                    cancel.clone(),
                ));
                // Bound before start returns, so an upload right after start is served.
                let server = borderwatch_ingest::service::Server::bind(bus).await?;
                tasks.spawn(async move {
                    if let Err(e) = server.run(cancel).await {
                        error!(error = %e, "ingest stopped");
                    }
                });
            }
            Role::Analytics => {
                let cfg = Arc::new(opts.analysis.clone());
                tasks.spawn(run_role("analytics", deadline, cancel.clone(), move || {
                    borderwatch_analytics::service::run(bus.clone(), cfg.clone(), cancel.clone())
                }));
            }
            Role::Notify => {
                let cfg = opts.notify.clone();
                tasks.spawn(run_role("notify", deadline, cancel.clone(), move || {
                    borderwatch_notify::run(bus.clone(), cfg.clone(), cancel.clone())
                }));
            }
            Role::Gateway => {
                let Some(listener) = listener.take() else {
                    continue;
                };
                http = Some(listener.local_addr()?);
                let cfg = opts.gateway.clone();
                tasks.spawn(async move {
                    if let Err(e) = borderwatch_gateway::serve(bus, listener, cfg, cancel).await {
                        error!(error = %e, "gateway stopped");
                    }
                });
            }
        }
    }
    ready.store(true, Ordering::SeqCst);
    // Readiness lines (see the doc comment): everything above is bound, health probes too.
    if opts.roles.contains(&Role::Ingest) {
        info!(ready = "ingest", "ingest ready");
    }
    if let Some(addr) = http {
        info!(ready = "gateway", http = %addr, "gateway ready");
    }
    Ok(Running {
        bus,
        http,
        health,
        ready,
        cancel,
        tasks,
    })
}

/// Without `--public-url`, the gateway's own address is the public URL (a wildcard address
/// as loopback): the links notify sends and the gateway serves then work on this machine.
/// Whoever reads alerts elsewhere needs `--public-url`.
fn default_public_url(opts: &mut UpOptions, addr: SocketAddr) {
    let public = opts
        .gateway
        .public_url
        .clone()
        .or_else(|| opts.notify.public_url.clone())
        .unwrap_or_else(|| {
            let mut addr = addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}")
        });
    opts.gateway
        .public_url
        .get_or_insert_with(|| public.clone());
    if opts.roles.contains(&Role::Notify) {
        opts.notify.public_url.get_or_insert(public);
    }
}

/// `/healthz`: the process answers. `/readyz`: 200 while the bus is connected and the roles
/// run, 503 while the process is still reaching the bus at start (`starting`), while NATS is
/// unreachable (the client is reconnecting) or while the process is stopping. A few lines of
/// HTTP/1.1 by hand: probes send one GET and close.
async fn serve_health(
    listener: tokio::net::TcpListener,
    bus: Arc<OnceLock<Bus>>,
    ready: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let mut conn = match accepted {
            Ok((conn, _)) => conn,
            Err(e) => {
                warn!(error = %e, "health probe connection failed");
                continue;
            }
        };
        let (bus, ready) = (bus.clone(), ready.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
            let Ok(Ok(n)) = read else { return };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let starting = bus.get().is_none();
            let connected = bus.get().is_some_and(|b| b.is_connected());
            let running = ready.load(Ordering::SeqCst);
            let (status, body) = match path {
                "/healthz" => ("200 OK", serde_json::json!({"status": "ok"})),
                "/readyz" => {
                    let body = serde_json::json!({
                        "ready": connected && running,
                        "transport": bus.get().map(|b| b.kind()),
                        "connected": connected,
                        "starting": starting,
                        "stopping": !running && !starting,
                    });
                    if connected && running {
                        ("200 OK", body)
                    } else {
                        ("503 Service Unavailable", body)
                    }
                }
                _ => (
                    "404 Not Found",
                    serde_json::json!({"error": {"code": "not_found", "message": format!("no route for {path}"), "details": []}}),
                ),
            };
            let body = body.to_string();
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
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
            // A read that fails (a NATS node lost, a bucket leader being elected) is asked
            // again until the deadline, like a record not written yet.
            match bus.kv_get(names::ANALYZED_BUCKET, key).await {
                Ok(Some(raw)) => {
                    done.push(serde_json::from_slice(&raw)?);
                    break;
                }
                Ok(None) => {}
                Err(e) if tokio::time::Instant::now() > deadline => {
                    bail!("analytics did not finish {key} within {timeout:?}: {e}")
                }
                Err(e) => {
                    warn!(error = %e, key, "reading the analysis record failed; trying again")
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("analytics did not finish {key} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller's `gateway.api_token` and `gateway.max_body_bytes` are what the gateway
    /// enforces (`start` used to overwrite both from two other fields).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_honours_the_gateway_token_and_upload_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = UpOptions::embedded(dir.path().join("data"));
        opts.roles = vec![Role::Gateway];
        opts.gateway.api_token = Some("tok".into());
        opts.gateway.max_body_bytes = 1000;
        let running = start(opts).await.unwrap();
        let url = format!("{}/v1/ingest", running.gateway_url().unwrap());
        let client = reqwest::Client::new();
        let unauthorised = client.post(&url).body("x").send().await.unwrap();
        assert_eq!(unauthorised.status(), 401);
        let too_large = client
            .post(&url)
            .bearer_auth("tok")
            .body(vec![b'x'; 1001])
            .send()
            .await
            .unwrap();
        assert_eq!(too_large.status(), 413);
        running.shutdown().await;
    }

    /// Issue 13: a gateway on an address other machines reach, without a token, is refused
    /// before it binds (nothing is opened), naming both ways out; so is a read token alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_refuses_an_open_gateway_on_a_reachable_address_and_a_lone_read_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = UpOptions::embedded(dir.path().join("data"));
        opts.roles = vec![Role::Gateway];
        opts.http = SocketAddr::from(([0, 0, 0, 0], 0));
        let e = start(opts.clone()).await.unwrap_err().to_string();
        for named in [
            "--api-token",
            "--insecure-no-auth",
            "BORDERWATCH_INSECURE_NO_AUTH=1",
        ] {
            assert!(e.contains(named), "{e}");
        }
        let mut lone = UpOptions::embedded(dir.path().join("data"));
        lone.roles = vec![Role::Gateway];
        lone.gateway.read_token = Some("r".into());
        let e = start(lone).await.unwrap_err().to_string();
        assert!(
            e.contains("--read-token") && e.contains("--api-token"),
            "{e}"
        );
    }

    /// Issue 15: without `--public-url`, links go to the gateway's own address (a wildcard
    /// address as loopback), for the gateway and notify alike; a given one is kept for both.
    #[test]
    fn the_public_url_defaults_to_the_gateways_address() {
        let mut opts = UpOptions::embedded("unused".into());
        default_public_url(&mut opts, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert_eq!(
            opts.gateway.public_url.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            opts.notify.public_url.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        let mut given = UpOptions::embedded("unused".into());
        given.notify.public_url = Some("https://bw.example.org".into());
        default_public_url(&mut given, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(
            given.gateway.public_url.as_deref(),
            Some("https://bw.example.org")
        );
        assert_eq!(
            given.notify.public_url.as_deref(),
            Some("https://bw.example.org")
        );
    }
}
