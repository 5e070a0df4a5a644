//! The subcommands.

use std::time::Duration;

use anyhow::{Context, bail};
use borderwatch_bus::{Bus, names};
use borderwatch_ingest_client::{Submission, SubmitError, submit};
use borderwatch_model::SurgeEvent;

use borderwatch_notify::NotifyConfig;

use crate::config::{Given, Settings};
use crate::roles::{self, ALL_ROLES, Role, UpOptions};
use crate::{Command, ConfigAction, NotifyAction, ReleaseReplayArgs, ReplayArgs};

/// Runs a command; `given` says which flags were given, so that they win over `--config`.
pub(crate) async fn run(command: Command, given: &Given) -> anyhow::Result<()> {
    match command {
        Command::Up(args) => {
            let demo = args.demo;
            let settings = args.config.load()?;
            let opts = up_options(args, &settings, given)?;
            let signal = roles::shutdown_signal();
            let running = roles::start(opts).await?;
            if demo {
                load_demo(&running.bus).await?;
            }
            if let Some(url) = running.gateway_url() {
                println!("borderwatch is up on the {} bus", running.bus.kind());
                println!("  dashboard  {url}/");
                println!("  surges     {url}/v1/surges");
                println!("  live       {url}/v1/surges/stream");
                println!("Ctrl-C stops it.");
            }
            running.wait(signal).await
        }
        Command::Ingest(a) => {
            let settings = a.config.load()?;
            one_role(Role::Ingest, &a.nats, a.metrics_addr, |o| {
                if o.limits.obs_max_bytes.is_none() {
                    o.limits.obs_max_bytes = settings.ingest.obs_max_bytes;
                }
                o.sources = settings.sources(a.sources)
            })
            .await
        }
        Command::Analytics(a) => {
            let analysis = a.config.load()?.analysis(None, &[])?;
            one_role(Role::Analytics, &a.nats, a.metrics_addr, |o| {
                o.analysis = analysis
            })
            .await
        }
        Command::Notify(a) => match a.action {
            Some(NotifyAction::Replay(r)) => replay(r).await,
            None => {
                let Some(nats) = a.nats else {
                    bail!(
                        "borderwatch notify needs --nats URL (or BORDERWATCH_NATS); `borderwatch up` runs notify on the in-process bus"
                    );
                };
                let settings = a.config.load()?;
                let smtp = settings.smtp(&a.smtp)?;
                let nats = crate::NatsArgs {
                    nats,
                    stream_replicas: a.stream_replicas,
                    obs_max_bytes: a.obs_max_bytes,
                    health: a.health,
                    startup_timeout: a.startup_timeout,
                };
                one_role(Role::Notify, &nats, a.metrics_addr, |o| {
                    o.notify = notify_config(&settings, a.public_url, a.webhook_allow_private);
                    o.notify.chart_images = settings.chart_images(a.chart_images, false);
                    o.notify.alertmanager_url = a.alertmanager_url;
                    o.notify.smtp = smtp;
                })
                .await
            }
        },
        Command::Gateway(a) => {
            let nats = a.nats.clone();
            let settings = a.config.load()?;
            let smtp = settings.smtp(&a.smtp)?;
            one_role(Role::Gateway, &nats, None, |o| {
                gateway_options(o, a, &settings, given);
                o.gateway.smtp = smtp;
            })
            .await
        }
        Command::Import(a) => crate::import::run(a).await,
        Command::Analyze(a) => crate::analyze::run(a).await,
        Command::Replay(a) => replay_release(a).await,
        Command::Migrate(a) => crate::migrate::run(a).await,
        Command::Probe(a) => probe(a).await,
        Command::Config(a) => match a.action {
            ConfigAction::Check { file } => crate::config::check(&file),
        },
        Command::Surges(a) => crate::client::surges(a).await,
        Command::Subscriptions(a) => crate::client::subscriptions(a).await,
        Command::Silences(a) => crate::client::silences(a).await,
    }
}

/// What `up` starts: every role, with the flags' values over the configuration file's.
fn up_options(
    mut args: crate::UpArgs,
    settings: &Settings,
    given: &Given,
) -> anyhow::Result<UpOptions> {
    settings.overlay_gateway(
        given,
        &mut args.http,
        &mut args.max_upload_bytes,
        &mut args.gateway,
    );
    let mut notify = notify_config(
        settings,
        args.public_url,
        args.gateway.webhook_allow_private,
    );
    notify.alertmanager_url = args.alertmanager_url;
    // Behind a read token the chart images are not fetchable by Slack: off unless asked for.
    notify.chart_images =
        settings.chart_images(args.chart_images, args.gateway.read_token.is_some());
    notify.smtp = settings.smtp(&args.smtp)?;
    // One public URL for both: the links notify sends are the ones the gateway serves
    // (`roles::start` makes it the gateway's own address when none is given).
    let mut gateway = args.gateway.config(args.api_token, args.max_upload_bytes);
    gateway.public_url = notify.public_url.clone();
    gateway.smtp = notify.smtp.clone();
    Ok(UpOptions {
        nats: args.nats,
        data: args.data,
        http: args.http,
        gateway,
        stream_replicas: args.stream_replicas,
        limits: names::StreamLimits {
            obs_max_bytes: args.obs_max_bytes.or(settings.ingest.obs_max_bytes),
        },
        roles: ALL_ROLES
            .into_iter()
            .filter(|r| !(args.without_notify && *r == Role::Notify))
            .collect(),
        health: None,
        startup_timeout: roles::DEFAULT_STARTUP_TIMEOUT,
        notify,
        analysis: settings.analysis(None, &[])?,
        sources: settings.sources(args.sources),
    })
}

/// Notify's settings: the defaults, the file's `[notify]` over them, the flags over both.
fn notify_config(
    settings: &Settings,
    public_url: Option<String>,
    allow_private_targets: bool,
) -> NotifyConfig {
    let mut cfg = settings.notify(NotifyConfig::default());
    if public_url.is_some() {
        cfg.public_url = public_url;
    }
    cfg.allow_private_targets = allow_private_targets;
    cfg
}

/// The gateway role's own options from its flags, over the configuration file's.
fn gateway_options(
    opts: &mut UpOptions,
    mut args: crate::GatewayArgs,
    settings: &Settings,
    given: &Given,
) {
    settings.overlay_gateway(
        given,
        &mut args.http,
        &mut args.max_upload_bytes,
        &mut args.gateway,
    );
    opts.http = args.http;
    opts.gateway = args.gateway.config(args.api_token, args.max_upload_bytes);
    opts.gateway.public_url = args.public_url;
}

/// `probe URL`: 2xx → Ok; anything else, or no answer in time, → an error (exit 1).
async fn probe(args: crate::ProbeArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let resp = client
        .get(&args.url)
        .send()
        .await
        .with_context(|| format!("probing {}", args.url))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{} answered {status}: {body}", args.url);
    }
    println!("{body}");
    Ok(())
}

/// Runs one role against NATS; `configure` sets the role's own options.
async fn one_role(
    role: Role,
    nats: &crate::NatsArgs,
    metrics_addr: Option<std::net::SocketAddr>,
    configure: impl FnOnce(&mut UpOptions),
) -> anyhow::Result<()> {
    let mut opts = UpOptions::embedded(Default::default());
    opts.nats = Some(nats.nats.clone());
    opts.stream_replicas = nats.stream_replicas;
    opts.limits.obs_max_bytes = nats.obs_max_bytes;
    opts.roles = vec![role];
    opts.health = nats.health;
    opts.startup_timeout = Duration::from_secs(nats.startup_timeout);
    configure(&mut opts);
    let signal = roles::shutdown_signal();
    let running = roles::start(opts).await?;
    if let Some(url) = running.gateway_url() {
        println!("gateway listening on {url}");
    }
    if let Some(addr) = metrics_addr {
        // The gateway serves /metrics itself; the other roles on their own address.
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        println!("metrics on http://{}/metrics", listener.local_addr()?);
        let (bus, cancel) = (running.bus.clone(), signal.clone());
        tokio::spawn(async move {
            if let Err(e) =
                borderwatch_gateway::telemetry::serve_metrics(bus, listener, cancel).await
            {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
    }
    running.wait(signal).await
}

/// `notify replay`: resends dead letters once each and says what happened.
async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    // For the in-process bus this opens the data directory itself: `up` must not be
    // running on it (both would append to the same logs).
    let bus = roles::connect(args.nats.as_deref(), &args.data, 1).await?;
    let cfg = NotifyConfig {
        public_url: args.public_url,
        smtp: Settings::default().smtp(&args.smtp)?,
        allow_private_targets: args.webhook_allow_private,
        chart_images: args.chart_images.unwrap_or_default(),
        ..Default::default()
    };
    let report = borderwatch_notify::replay(bus, cfg, args.subscription.as_deref())
        .await
        .context("replaying dead letters")?;
    for key in &report.resent {
        println!("resent   {key}");
    }
    for key in &report.failed {
        println!("refused  {key} (still dead: run replay again later)");
    }
    for key in &report.orphaned {
        println!("skipped  {key} (its subscription was deleted)");
    }
    println!(
        "{} resent, {} refused again, {} resent before, {} without a subscription",
        report.resent.len(),
        report.failed.len(),
        report.already_done,
        report.orphaned.len()
    );
    if !report.failed.is_empty() {
        bail!("{} dead letters were refused again", report.failed.len());
    }
    Ok(())
}

/// `replay RELEASE_ID`: ingests a release's kept bytes again and says what it restored.
async fn replay_release(args: ReleaseReplayArgs) -> anyhow::Result<()> {
    // For the in-process bus this opens the data directory itself: `up` must not be
    // running on it (both would append to the same logs).
    let bus = roles::connect(args.nats.as_deref(), &args.data, 1).await?;
    let report = borderwatch_ingest::service::replay(bus.as_ref(), &args.release_id)
        .await
        .with_context(|| format!("replaying release {}", args.release_id))?;
    println!(
        "release {}: {} figures, {} restored, {} left as a later release revised them{}",
        report.release_id,
        report.accepted,
        report.restored,
        report.superseded,
        if report.restored == 0 {
            " (nothing was missing)"
        } else {
            ""
        }
    );
    Ok(())
}

/// Ingests the demo data and prints the surges analytics finds in it.
async fn load_demo(bus: &Bus) -> anyhow::Result<()> {
    let csv = borderwatch_ingest::demo::demo_csv();
    let release = match submit(
        bus.as_ref(),
        Submission {
            format: Some("generic".into()),
            source: None,
            bytes: csv.into_bytes().into(),
        },
    )
    .await
    {
        Ok(r) => r,
        Err(SubmitError::Rejected(body)) => {
            bail!("the demo data was refused: {}", body.error.message)
        }
        Err(e) => return Err(e).context("ingesting the demo data"),
    };
    println!(
        "demo release {}: {} rows accepted, {} new (FSB figures for North Korea as published, plus series labelled `synthetic`)",
        release.id, release.accepted, release.new_observations
    );
    let analyzed = roles::wait_analyzed(bus, &release, Duration::from_secs(120)).await?;
    let surges: Vec<SurgeEvent> = analyzed.into_iter().flat_map(|a| a.surges).collect();
    print_surges(&surges);
    Ok(())
}

fn print_surges(surges: &[SurgeEvent]) {
    let mut sorted: Vec<&SurgeEvent> = surges.iter().collect();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.period.cmp(&a.period)));
    println!("{} surges found:", sorted.len());
    for s in sorted {
        println!(
            "  {:<8} {}/{}/{} {}\n           {}",
            s.severity.to_string().to_uppercase(),
            s.source,
            s.country,
            s.category,
            s.period,
            s.explanation
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Cli;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(args).unwrap().command
    }

    /// `--max-upload-bytes` once reached the gateway only through a second field that
    /// `start` copied over `gateway.max_body_bytes`; the options now carry it themselves.
    #[test]
    fn up_flags_land_in_the_gateway_config() {
        let Command::Up(a) = parse(&[
            "borderwatch",
            "up",
            "--api-token",
            "tok",
            "--max-upload-bytes",
            "1000",
        ]) else {
            panic!("not up")
        };
        let opts = up_options(a, &Settings::default(), &Given::default()).unwrap();
        assert_eq!(opts.gateway.max_body_bytes, 1000);
        assert_eq!(opts.gateway.api_token.as_deref(), Some("tok"));
    }

    #[test]
    fn up_with_a_read_token_sends_no_chart_images_unless_asked() {
        use borderwatch_notify::ChartImages;
        let up = |args: &[&str]| {
            let mut all = vec!["borderwatch", "up"];
            all.extend_from_slice(args);
            let Command::Up(a) = parse(&all) else {
                panic!("not up")
            };
            up_options(a, &Settings::default(), &Given::default())
                .unwrap()
                .notify
                .chart_images
        };
        assert_eq!(up(&[]), ChartImages::Auto);
        assert_eq!(up(&["--read-token", "r"]), ChartImages::Off);
        assert_eq!(
            up(&["--read-token", "r", "--chart-images", "on"]),
            ChartImages::On
        );
        assert_eq!(up(&["--chart-images", "off"]), ChartImages::Off);
        let e = Cli::try_parse_from(["borderwatch", "up", "--chart-images", "maybe"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("auto, on or off"), "{e}");
        let Command::Notify(n) = parse(&["borderwatch", "notify", "--chart-images", "off"]) else {
            panic!("not notify")
        };
        assert_eq!(n.chart_images, Some(ChartImages::Off));
    }

    #[test]
    fn up_without_notify_runs_every_other_role() {
        let Command::Up(a) = parse(&["borderwatch", "up", "--without-notify"]) else {
            panic!("not up")
        };
        let opts = up_options(a, &Settings::default(), &Given::default()).unwrap();
        assert_eq!(opts.roles, [Role::Ingest, Role::Analytics, Role::Gateway]);
        let Command::Up(a) = parse(&["borderwatch", "up"]) else {
            panic!("not up")
        };
        let opts = up_options(a, &Settings::default(), &Given::default()).unwrap();
        assert_eq!(opts.roles, ALL_ROLES);
    }

    #[test]
    fn gateway_flags_land_in_the_gateway_config() {
        let Command::Gateway(a) = parse(&[
            "borderwatch",
            "gateway",
            "--nats",
            "nats://127.0.0.1:4222",
            "--api-token",
            "tok",
            "--max-upload-bytes",
            "1000",
        ]) else {
            panic!("not gateway")
        };
        let mut opts = UpOptions::embedded(Default::default());
        gateway_options(&mut opts, a, &Settings::default(), &Given::default());
        assert_eq!(opts.gateway.max_body_bytes, 1000);
        assert_eq!(opts.gateway.api_token.as_deref(), Some("tok"));
    }
}
