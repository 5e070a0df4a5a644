//! The `borderwatch` binary: one executable, every role chosen by subcommand.
//!
//! `up` runs every role in one process (on the in-process bus unless `--nats` is given);
//! `ingest`, `analytics`, `notify` and `gateway` run one role against NATS; `import` sends a
//! file to a gateway; `analyze` runs the detectors on a file with no services at all.

mod analyze;
mod commands;
pub mod roles;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use roles::{Running, UpOptions, start};

#[derive(Debug, Parser)]
#[command(
    name = "borderwatch",
    version,
    about = "Catch surges in border statistics"
)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "BORDERWATCH_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long, global = true, env = "BORDERWATCH_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process: on the in-process bus, or over NATS with --nats.
    Up(UpArgs),
    /// Run the ingest role (serves uploads from gateways).
    Ingest(RoleArgs),
    /// Run the analytics role (one of any number of replicas).
    Analytics(RoleArgs),
    /// Run the notify role (webhook delivery), or `notify replay` to resend dead letters.
    Notify(NotifyArgs),
    /// Run the gateway role (HTTP API, live stream, dashboard).
    Gateway(GatewayArgs),
    /// Send a file to a running gateway.
    Import(ImportArgs),
    /// Read a file and print the surges the detectors find; no services needed.
    Analyze(AnalyzeArgs),
    /// GET a URL and exit 0 on a 2xx answer: a container health check (`/readyz`) that needs
    /// no curl in the image.
    Probe(ProbeArgs),
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to ask, e.g. http://127.0.0.1:9090/readyz.
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct NatsArgs {
    /// NATS server URLs, comma-separated.
    #[arg(long, env = "BORDERWATCH_NATS")]
    pub nats: String,
    /// Copies of each stream and bucket (3 in a cluster).
    #[arg(long, env = "BORDERWATCH_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Serve `/healthz` (alive) and `/readyz` (connected to NATS, not stopping) on this
    /// address, for container probes.
    #[arg(long, env = "BORDERWATCH_HEALTH")]
    pub health: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct RoleArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub action: Option<NotifyAction>,
    /// NATS server URLs, comma-separated (required to run the role).
    #[arg(long, env = "BORDERWATCH_NATS")]
    pub nats: Option<String>,
    /// Copies of each stream and bucket (3 in a cluster).
    #[arg(long, env = "BORDERWATCH_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// The gateway's public base URL, for links in Slack and Teams messages.
    #[arg(long, env = "BORDERWATCH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Serve `/healthz` and `/readyz` on this address, for container probes.
    #[arg(long, env = "BORDERWATCH_HEALTH")]
    pub health: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// Resend the dead letters (deliveries given up on), each once.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Only this subscription's dead letters.
    #[arg(long)]
    pub subscription: Option<String>,
    /// NATS server URLs; without it, the data directory of the in-process bus.
    #[arg(long, env = "BORDERWATCH_NATS")]
    pub nats: Option<String>,
    /// The data directory of `borderwatch up`. Stop `up` first: two processes must not
    /// hold one data directory open.
    #[arg(long, env = "BORDERWATCH_DATA", default_value = "borderwatch-data")]
    pub data: PathBuf,
    /// The gateway's public base URL, for links in Slack and Teams messages.
    #[arg(long, env = "BORDERWATCH_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Address to listen on.
    #[arg(long, env = "BORDERWATCH_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Bearer token required for requests that change state.
    #[arg(long, env = "BORDERWATCH_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// NATS server URLs; without it every role runs on the in-process bus.
    #[arg(long, env = "BORDERWATCH_NATS")]
    pub nats: Option<String>,
    /// Address the gateway listens on.
    #[arg(long, env = "BORDERWATCH_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Where the in-process bus keeps its state.
    #[arg(long, env = "BORDERWATCH_DATA", default_value = "borderwatch-data")]
    pub data: PathBuf,
    /// Ingest the demo data at start and print the surges it holds.
    #[arg(long, env = "BORDERWATCH_DEMO")]
    pub demo: bool,
    /// Bearer token required for requests that change state.
    #[arg(long, env = "BORDERWATCH_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Copies of each stream and bucket (with --nats; 3 in a cluster).
    #[arg(long, env = "BORDERWATCH_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// The gateway's public base URL, for links in Slack and Teams messages.
    #[arg(long, env = "BORDERWATCH_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to send.
    pub file: PathBuf,
    /// Input format (default: generic).
    #[arg(long, env = "BORDERWATCH_FORMAT")]
    pub format: Option<String>,
    /// Source name, where the file has no source column.
    #[arg(long, env = "BORDERWATCH_SOURCE")]
    pub source: Option<String>,
    /// The gateway to send it to.
    #[arg(
        long,
        env = "BORDERWATCH_GATEWAY",
        default_value = "http://127.0.0.1:8080"
    )]
    pub gateway: String,
    #[arg(long, env = "BORDERWATCH_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The file to read.
    pub file: PathBuf,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long)]
    pub source: Option<String>,
    /// Detectors to run, comma-separated: record_high, exceeds_prior_year, year_over_year,
    /// farrington, ears_c1, ears_c2, ears_c3, cusum (default: the evidence rules, farrington,
    /// ears_c2 and cusum).
    #[arg(long, env = "BORDERWATCH_DETECTORS")]
    pub detectors: Option<String>,
    /// A detector parameter, R's names in snake_case: farrington.b=3, farrington.limit54=5,4,
    /// ears.alpha=0.01, cusum.h=3, fdr=0.1 … (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print every evaluation (one JSON line per series, period and detector) instead of
    /// surge events.
    #[arg(long)]
    pub all: bool,
    /// Output: one JSON line per surge, or a table.
    #[arg(long, default_value = "table")]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Json,
    Table,
}

/// Sets up tracing as the flags ask.
pub fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    commands::run(cli.command).await
}
