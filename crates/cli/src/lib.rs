//! The `borderwatch` binary: one executable, every role chosen by subcommand.
//!
//! `up` runs every role in one process (on the in-process bus unless `--nats` is given);
//! `ingest`, `analytics`, `notify` and `gateway` run one role against NATS; `import` sends a
//! file to a gateway; `analyze` runs the detectors on a file with no services at all.

mod analyze;
pub mod client;
mod commands;
pub mod config;
mod import;
pub mod migrate;
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
    /// Which flags were given (command line or variable) rather than left at their
    /// defaults: a flag given wins over the configuration file, a default does not. Filled by
    /// [`Cli::parse_recording`]; empty after clap's own `parse`, which treats every flag as
    /// a default.
    #[arg(skip)]
    pub given: config::Given,
}

impl Cli {
    /// Parses the process's arguments as `Parser::parse` does (exiting on an error or on
    /// `--help`), recording which flags were given.
    pub fn parse_recording() -> Cli {
        Cli::try_parse_recording(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args`, recording which flags were given (see [`Cli::given`]).
    pub fn try_parse_recording<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut cmd = Cli::command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
        cli.given = config::Given::from_matches(&matches);
        Ok(cli)
    }
}

/// `--config FILE`, on `up` and each role.
#[derive(Debug, Clone, Args)]
pub struct ConfigFlag {
    /// A configuration file (TOML): `[analytics]` (the keys of `analyze --set`),
    /// `[notify]`, `[gateway]`, `[ingest]`; flags given win over it. See
    /// deploy/borderwatch.toml.
    #[arg(long = "config", value_name = "FILE", env = "BORDERWATCH_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigFlag {
    /// The file's settings, or the defaults' when there is none.
    pub fn load(&self) -> anyhow::Result<config::Settings> {
        config::Settings::load_opt(self.config.as_deref())
    }
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
    /// Run the ingest role (serves uploads from gateways, polls scheduled sources).
    Ingest(IngestArgs),
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
    /// Ingest a release's kept bytes again: restores observations the streams lost; on an
    /// intact system it adds nothing.
    Replay(ReleaseReplayArgs),
    /// Move the stored figures from one subject per figure (the layout before) to one
    /// subject per series; roles refuse to start until this has run. Stop every role first.
    Migrate(MigrateArgs),
    /// GET a URL and exit 0 on a 2xx answer: a container health check (`/readyz`) that needs
    /// no curl in the image.
    Probe(ProbeArgs),
    /// Configuration files: `config check FILE` validates one and prints the effective
    /// settings.
    Config(ConfigArgs),
    /// List a gateway's surges, newest first (a client, as amtool is for Alertmanager).
    Surges(client::SurgesArgs),
    /// A gateway's webhook subscriptions: list, add, rm, test.
    Subscriptions(client::SubscriptionsArgs),
    /// A gateway's silences: list, add, expire.
    Silences(client::SilencesArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate FILE and print the settings it gives (its values over the defaults) as TOML;
    /// exit non-zero naming the problem.
    Check {
        /// The configuration file to check.
        file: PathBuf,
    },
}

/// `probe`'s flags. The URL is positional and has no variable: it is what the command is
/// about, and one process environment often serves several probes.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to ask, e.g. http://127.0.0.1:9090/readyz.
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, env = "BORDERWATCH_TIMEOUT", default_value_t = 3)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URLs, comma-separated.
    #[arg(long, env = "BORDERWATCH_NATS")]
    pub nats: String,
    /// Copies of each stream and bucket (3 in a cluster).
    #[arg(long, env = "BORDERWATCH_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Bytes the figure store (the `BW_OBS` stream) may hold; past it ingest refuses new
    /// figures (503 naming this setting) instead of dropping old ones. 0: no limit. Not
    /// given: the stream keeps its limit (new on the embedded bus: 64 GiB; over NATS none
    /// but the server's own).
    #[arg(long, env = "BORDERWATCH_OBS_MAX_BYTES")]
    pub obs_max_bytes: Option<u64>,
    /// Serve `/healthz` (alive) and `/readyz` (connected to NATS, not stopping) on this
    /// address, for container probes.
    #[arg(long, env = "BORDERWATCH_HEALTH")]
    pub health: Option<SocketAddr>,
    /// Seconds to keep retrying NATS at start (connecting, creating streams and buckets,
    /// opening consumers) before giving up: a cluster started with its services needs a moment.
    #[arg(long, env = "BORDERWATCH_STARTUP_TIMEOUT", default_value_t = 180)]
    pub startup_timeout: u64,
}

#[derive(Debug, Args)]
pub struct RoleArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub config: ConfigFlag,
    /// Serve this role's Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "BORDERWATCH_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub config: ConfigFlag,
    /// Serve this role's Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "BORDERWATCH_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// A sources file (TOML) listing URLs and directories to poll on a schedule.
    #[arg(long, env = "BORDERWATCH_SOURCES")]
    pub sources: Option<PathBuf>,
}

/// The SMTP server of email subscriptions (`"format": "email"`); its password comes from
/// `BORDERWATCH_SMTP_PASSWORD` only, never a flag or the configuration file.
#[derive(Debug, Clone, Default, Args)]
pub struct SmtpFlags {
    /// The SMTP server email subscriptions are sent through: smtp://HOST:PORT (plain; add
    /// ?tls=required for STARTTLS) or smtps://HOST:PORT (TLS), a user as smtps://USER@HOST;
    /// the password only in BORDERWATCH_SMTP_PASSWORD.
    #[arg(long, env = "BORDERWATCH_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The From of every email: alerts@example.org or "borderwatch <alerts@example.org>".
    #[arg(long, env = "BORDERWATCH_SMTP_FROM")]
    pub smtp_from: Option<String>,
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
    /// Bytes the figure store (the `BW_OBS` stream) may hold; past it ingest refuses new
    /// figures (503 naming this setting) instead of dropping old ones. 0: no limit. Not
    /// given: the stream keeps its limit (new on the embedded bus: 64 GiB; over NATS none
    /// but the server's own).
    #[arg(long, env = "BORDERWATCH_OBS_MAX_BYTES")]
    pub obs_max_bytes: Option<u64>,
    /// The gateway's public base URL (`https://borderwatch.example.org`): every surge sent
    /// links to its evidence, the dashboard page of its series, under it.
    #[arg(long, env = "BORDERWATCH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// An Alertmanager to push alerts to (its base URL: http://alertmanager:9093): surges
    /// that open or escalate an incident, and their closing, go to its /api/v2/alerts, so
    /// its routing, grouping, inhibition, silences and receivers apply.
    #[arg(long, env = "BORDERWATCH_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// Whether Slack and Teams surge messages carry the surge's chart as an image: auto
    /// (only when the public URL is not this machine or a private network), on, or off. Slack
    /// refuses a whole message whose image it cannot fetch, so behind a gateway that wants a
    /// read token use off (`up` with --read-token defaults to off).
    #[arg(long, env = "BORDERWATCH_CHART_IMAGES", value_name = "auto|on|off")]
    pub chart_images: Option<borderwatch_notify::ChartImages>,
    #[command(flatten)]
    pub smtp: SmtpFlags,
    /// Send webhooks to loopback, private, link-local and other non-public addresses: for
    /// local receivers and tests. Without it they are refused before any connection.
    #[arg(
        long,
        env = "BORDERWATCH_WEBHOOK_ALLOW_PRIVATE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub webhook_allow_private: bool,
    /// Serve this role's Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "BORDERWATCH_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Serve `/healthz` and `/readyz` on this address, for container probes.
    #[arg(long, env = "BORDERWATCH_HEALTH")]
    pub health: Option<SocketAddr>,
    /// Seconds to keep retrying NATS at start before giving up.
    #[arg(long, env = "BORDERWATCH_STARTUP_TIMEOUT", default_value_t = 180)]
    pub startup_timeout: u64,
    #[command(flatten)]
    pub config: ConfigFlag,
}

#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// Resend the dead letters (deliveries given up on), each once.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Only this subscription's dead letters.
    #[arg(long, env = "BORDERWATCH_SUBSCRIPTION")]
    pub subscription: Option<String>,
    /// NATS server URLs; without it, the data directory of the in-process bus.
    #[arg(long, env = "BORDERWATCH_NATS")]
    pub nats: Option<String>,
    /// The data directory of `borderwatch up`. Stop `up` first: two processes must not
    /// hold one data directory open.
    #[arg(long, env = "BORDERWATCH_DATA", default_value = "borderwatch-data")]
    pub data: PathBuf,
    /// The gateway's public base URL (`https://borderwatch.example.org`): every surge sent
    /// links to its evidence, the dashboard page of its series, under it.
    #[arg(long, env = "BORDERWATCH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Whether Slack and Teams surge messages carry the surge's chart as an image: auto
    /// (only when the public URL is not this machine or a private network), on, or off. Slack
    /// refuses a whole message whose image it cannot fetch, so behind a gateway that wants a
    /// read token use off (`up` with --read-token defaults to off).
    #[arg(long, env = "BORDERWATCH_CHART_IMAGES", value_name = "auto|on|off")]
    pub chart_images: Option<borderwatch_notify::ChartImages>,
    #[command(flatten)]
    pub smtp: SmtpFlags,
    /// Resend to loopback, private, link-local and other non-public addresses too.
    #[arg(
        long,
        env = "BORDERWATCH_WEBHOOK_ALLOW_PRIVATE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub webhook_allow_private: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// NATS server URLs; without it, the data directory of the in-process bus.
    #[arg(long, env = "BORDERWATCH_NATS")]
    pub nats: Option<String>,
    /// The data directory of `borderwatch up`. Stop `up` first: two processes must not
    /// hold one data directory open.
    #[arg(long, env = "BORDERWATCH_DATA", default_value = "borderwatch-data")]
    pub data: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReleaseReplayArgs {
    /// The release to replay (`rel-…`, as `import` and `POST /v1/ingest` answer).
    pub release_id: String,
    /// NATS server URLs; without it, the data directory of the in-process bus.
    #[arg(long, env = "BORDERWATCH_NATS")]
    pub nats: Option<String>,
    /// The data directory of `borderwatch up`. Stop `up` first: two processes must not
    /// hold one data directory open.
    #[arg(long, env = "BORDERWATCH_DATA", default_value = "borderwatch-data")]
    pub data: PathBuf,
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Address to listen on.
    #[arg(long, env = "BORDERWATCH_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Bearer token required for requests that change state. Required to listen on an
    /// address other machines can reach (or pass --insecure-no-auth).
    #[arg(long, env = "BORDERWATCH_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Largest upload accepted, in bytes; a bigger one is answered 413.
    #[arg(long, env = "BORDERWATCH_MAX_UPLOAD_BYTES", default_value_t = roles::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: usize,
    /// The gateway's public base URL (`https://borderwatch.example.org`): surges it serves
    /// carry `url`, their evidence under it. Default: http://<--http address>.
    #[arg(long, env = "BORDERWATCH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// For a subscription's test email and an email dead letter's redelivery.
    #[command(flatten)]
    pub smtp: SmtpFlags,
    #[command(flatten)]
    pub gateway: GatewayFlags,
    #[command(flatten)]
    pub config: ConfigFlag,
}

/// The gateway's HTTP settings (`up` and `gateway`).
#[derive(Debug, Clone, Args)]
pub struct GatewayFlags {
    /// Bearer token required for reads (the API token is accepted too); /healthz, /readyz,
    /// /openapi.json and /docs stay open. Unset: reads are open. Needs --api-token too.
    #[arg(long, env = "BORDERWATCH_READ_TOKEN", hide_env_values = true)]
    pub read_token: Option<String>,
    /// Seconds before an unanswered request gets 408 (the live stream is not cut).
    #[arg(long, env = "BORDERWATCH_REQUEST_TIMEOUT_SECS", default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// Origins allowed to call the API from a browser (CORS), comma-separated; `*` for any.
    /// Unset: same origin only.
    #[arg(long, env = "BORDERWATCH_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Requests per second per client IP address (answered 429 with Retry-After beyond);
    /// 0 turns the limit off.
    #[arg(long, env = "BORDERWATCH_RATE_LIMIT", default_value_t = 50)]
    pub rate_limit: u32,
    /// Requests a client may send at once before the per-second rate applies.
    #[arg(long, env = "BORDERWATCH_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,
    /// Largest body of every route but uploads (JSON, forms), in bytes; a bigger one is
    /// answered 413.
    #[arg(long, env = "BORDERWATCH_MAX_JSON_BYTES", default_value_t = 64 * 1024)]
    pub max_json_bytes: usize,
    /// Host names the gateway is reached by, besides localhost, 127.0.0.1 and `[::1]`,
    /// comma-separated. On a loopback address, or once set, requests for any other Host are
    /// refused (403), against DNS rebinding.
    #[arg(long, env = "BORDERWATCH_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Listen on an address other machines can reach without --api-token (anyone who reaches
    /// the port can write). Without it, such a start is refused.
    #[arg(
        long,
        env = "BORDERWATCH_INSECURE_NO_AUTH",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_no_auth: bool,
    /// Live streams (/v1/surges/stream) one client IP address may hold open; beyond, 429.
    #[arg(long, env = "BORDERWATCH_MAX_STREAMS_PER_CLIENT", default_value_t = 16)]
    pub max_streams_per_client: usize,
    /// Live streams the gateway holds open in all; beyond, 503.
    #[arg(long, env = "BORDERWATCH_MAX_STREAMS", default_value_t = 1024)]
    pub max_streams: usize,
    /// Surge events the gateway keeps whole in memory (the newest, and as many older ones
    /// read lately); others are read from the stream when an answer needs them. Every surge
    /// is indexed whatever this is (about 120 bytes each).
    #[arg(long, env = "BORDERWATCH_SURGE_CACHE", default_value_t = borderwatch_gateway::surges::DEFAULT_SURGE_CACHE)]
    pub surge_cache: usize,
    /// Accept (and with `up`, send) webhooks to loopback, private, link-local and other
    /// non-public addresses: for local receivers and tests. Without it such subscriptions are
    /// refused (422), so that nobody can make borderwatch call into its own network.
    #[arg(
        long,
        env = "BORDERWATCH_WEBHOOK_ALLOW_PRIVATE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub webhook_allow_private: bool,
}

impl GatewayFlags {
    /// The gateway's configuration from these flags, the API token and the upload limit
    /// (`--api-token` and `--max-upload-bytes` live beside these flags, not among them).
    pub fn config(
        &self,
        api_token: Option<String>,
        max_body_bytes: usize,
    ) -> borderwatch_gateway::GatewayConfig {
        borderwatch_gateway::GatewayConfig {
            api_token,
            read_token: self.read_token.clone(),
            max_body_bytes,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
            cors_origins: self.cors_origins.clone(),
            rate_limit: (self.rate_limit > 0).then_some(borderwatch_gateway::RateLimit {
                per_second: self.rate_limit,
                burst: self.rate_limit_burst,
            }),
            max_json_bytes: self.max_json_bytes,
            allowed_hosts: self.allowed_hosts.clone(),
            insecure_no_auth: self.insecure_no_auth,
            max_streams_per_client: self.max_streams_per_client,
            max_streams: self.max_streams,
            surge_cache: self.surge_cache,
            webhook_allow_private: self.webhook_allow_private,
            // `--public-url` is beside these flags: the caller sets it.
            public_url: None,
            // So is the SMTP server (`SmtpFlags`).
            smtp: None,
        }
    }
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
    /// Run every role but notify: nothing is sent to any webhook (the API fuzzing run uses it,
    /// so that no subscription the fuzzer makes is ever called).
    #[arg(long, env = "BORDERWATCH_WITHOUT_NOTIFY")]
    pub without_notify: bool,
    /// Bearer token required for requests that change state.
    #[arg(long, env = "BORDERWATCH_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Copies of each stream and bucket (with --nats; 3 in a cluster).
    #[arg(long, env = "BORDERWATCH_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Bytes the figure store (the `BW_OBS` stream) may hold; past it ingest refuses new
    /// figures (503 naming this setting) instead of dropping old ones. 0: no limit. Not
    /// given: the stream keeps its limit (new on the embedded bus: 64 GiB; over NATS none
    /// but the server's own).
    #[arg(long, env = "BORDERWATCH_OBS_MAX_BYTES")]
    pub obs_max_bytes: Option<u64>,
    /// The gateway's public base URL (`https://borderwatch.example.org`): every surge sent
    /// links to its evidence, the dashboard page of its series, under it.
    #[arg(long, env = "BORDERWATCH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// An Alertmanager to push alerts to (its base URL: http://alertmanager:9093): surges
    /// that open or escalate an incident, and their closing, go to its /api/v2/alerts, so
    /// its routing, grouping, inhibition, silences and receivers apply.
    #[arg(long, env = "BORDERWATCH_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// Whether Slack and Teams surge messages carry the surge's chart as an image: auto
    /// (only when the public URL is not this machine or a private network), on, or off. Slack
    /// refuses a whole message whose image it cannot fetch, so behind a gateway that wants a
    /// read token use off (`up` with --read-token defaults to off).
    #[arg(long, env = "BORDERWATCH_CHART_IMAGES", value_name = "auto|on|off")]
    pub chart_images: Option<borderwatch_notify::ChartImages>,
    #[command(flatten)]
    pub smtp: SmtpFlags,
    /// Largest upload the gateway accepts, in bytes; a bigger one is answered 413.
    #[arg(long, env = "BORDERWATCH_MAX_UPLOAD_BYTES", default_value_t = roles::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: usize,
    /// A sources file (TOML) listing URLs and directories for ingest to poll on a schedule.
    #[arg(long, env = "BORDERWATCH_SOURCES")]
    pub sources: Option<PathBuf>,
    #[command(flatten)]
    pub gateway: GatewayFlags,
    #[command(flatten)]
    pub config: ConfigFlag,
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

/// `analyze`'s flags. FILE is positional and has no variable: it is what the command reads.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The file to read.
    pub file: PathBuf,
    /// Input format (default: detected from the file's content; see docs/formats.md).
    #[arg(long, env = "BORDERWATCH_FORMAT")]
    pub format: Option<String>,
    /// Source name, where the file has no source column.
    #[arg(long, env = "BORDERWATCH_SOURCE")]
    pub source: Option<String>,
    /// Detectors to run, comma-separated: record_high, exceeds_prior_year, year_over_year,
    /// farrington, ears_c1, ears_c2, ears_c3, cusum (default: the evidence rules, farrington,
    /// ears_c2 and cusum).
    #[arg(long, env = "BORDERWATCH_DETECTORS")]
    pub detectors: Option<String>,
    /// A detector parameter, R's names in snake_case: farrington.b=3, farrington.limit54=5,4,
    /// ears.alpha=0.01, cusum.h=3, fdr=0.1 … (repeatable). In BORDERWATCH_SET, pairs are
    /// separated by `;` (values such as `limit54=5,4` hold commas).
    #[arg(
        long = "set",
        value_name = "KEY=VALUE",
        env = "BORDERWATCH_SET",
        value_delimiter = ';'
    )]
    pub set: Vec<String>,
    /// Print every evaluation (one JSON line per series, period and detector) instead of
    /// surge events.
    #[arg(long, env = "BORDERWATCH_ALL")]
    pub all: bool,
    /// Report as the live replay does: each series' newest period is the release's live
    /// edge, everything before it history already known, so only surges at each series'
    /// last period are printed (`historical: false`). No effect on `--all`.
    #[arg(long, env = "BORDERWATCH_LIVE")]
    pub live: bool,
    /// Output: one JSON line per surge, or a table.
    #[arg(long, env = "BORDERWATCH_OUTPUT", default_value = "table")]
    pub output: Output,
    /// Read the `[analytics]` table of this configuration file (as the analytics role does);
    /// --detectors and --set win over it.
    #[arg(long = "config", value_name = "FILE", env = "BORDERWATCH_CONFIG")]
    pub config: Option<PathBuf>,
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
    commands::run(cli.command, &cli.given).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// README: "every flag is also an environment variable". Positional arguments (a file, a
    /// URL, a release id) have none: they are what the command is about; nor have the
    /// client's per-call flags (filters, what `add` creates), for the same reason
    /// ([`client::takes_no_variable`]).
    #[test]
    fn every_flag_has_an_environment_variable() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_positional()
                    || id == "help"
                    || id == "version"
                    || client::takes_no_variable(path, id)
                {
                    continue;
                }
                if arg.get_env().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "borderwatch", &mut missing);
        assert!(missing.is_empty(), "flags without a variable: {missing:?}");
    }

    #[test]
    fn exposure_flags_land_in_the_gateway_config() {
        let cli = Cli::try_parse_from([
            "borderwatch",
            "gateway",
            "--nats",
            "nats://127.0.0.1:4222",
            "--insecure-no-auth",
            "--allowed-hosts",
            "bw.example.org,bw2.example.org",
            "--max-json-bytes",
            "1000",
            "--max-streams-per-client",
            "3",
            "--max-streams",
            "9",
        ])
        .unwrap();
        let Command::Gateway(a) = cli.command else {
            panic!("not gateway")
        };
        let cfg = a.gateway.config(None, 10);
        assert!(cfg.insecure_no_auth);
        assert_eq!(cfg.allowed_hosts, ["bw.example.org", "bw2.example.org"]);
        assert_eq!(cfg.max_json_bytes, 1000);
        assert_eq!((cfg.max_streams_per_client, cfg.max_streams), (3, 9));
        let cli = Cli::try_parse_from(["borderwatch", "up"]).unwrap();
        let Command::Up(u) = cli.command else {
            panic!("not up")
        };
        let cfg = u.gateway.config(None, 10);
        assert!(!cfg.insecure_no_auth, "off unless asked for");
        assert_eq!(cfg.max_json_bytes, 64 * 1024);
        assert_eq!((cfg.max_streams_per_client, cfg.max_streams), (16, 1024));
    }

    #[test]
    fn set_pairs_split_on_semicolons_as_borderwatch_set_does() {
        let cli = Cli::try_parse_from([
            "borderwatch",
            "analyze",
            "f.csv",
            "--set",
            "farrington.limit54=5,4;fdr=0.1",
        ])
        .unwrap();
        let Command::Analyze(a) = cli.command else {
            panic!("not analyze")
        };
        assert_eq!(a.set, ["farrington.limit54=5,4", "fdr=0.1"]);
    }

    #[test]
    fn webhook_allow_private_is_off_unless_asked_for() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().command;
        let Command::Gateway(g) =
            parse(&["borderwatch", "gateway", "--nats", "nats://127.0.0.1:4222"])
        else {
            panic!("not gateway")
        };
        assert!(!g.gateway.config(None, 1).webhook_allow_private);
        let Command::Up(u) = parse(&["borderwatch", "up", "--webhook-allow-private"]) else {
            panic!("not up")
        };
        assert!(u.gateway.config(None, 1).webhook_allow_private);
        let Command::Notify(n) = parse(&["borderwatch", "notify", "--webhook-allow-private"])
        else {
            panic!("not notify")
        };
        assert!(n.webhook_allow_private);
        let Command::Notify(n) =
            parse(&["borderwatch", "notify", "replay", "--webhook-allow-private"])
        else {
            panic!("not notify")
        };
        let Some(NotifyAction::Replay(r)) = n.action else {
            panic!("not replay")
        };
        assert!(r.webhook_allow_private);
    }
}
