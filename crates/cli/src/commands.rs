//! The subcommands.

use std::time::Duration;

use anyhow::{Context, bail};
use borderwatch_bus::Bus;
use borderwatch_ingest::service::{Submission, SubmitError, submit};
use borderwatch_model::{Release, SurgeEvent};

use borderwatch_notify::NotifyConfig;

use crate::roles::{self, ALL_ROLES, Role, UpOptions};
use crate::{Command, ImportArgs, NotifyAction, ReplayArgs};

pub(crate) async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(args) => {
            let opts = UpOptions {
                nats: args.nats,
                data: args.data,
                http: args.http,
                api_token: args.api_token,
                stream_replicas: args.stream_replicas,
                roles: ALL_ROLES.to_vec(),
                health: None,
                notify: NotifyConfig {
                    public_url: args.public_url,
                    ..Default::default()
                },
            };
            let signal = roles::shutdown_signal();
            let running = roles::start(opts).await?;
            if args.demo {
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
        Command::Ingest(a) => one_role(Role::Ingest, &a.nats, None, None, None).await,
        Command::Analytics(a) => one_role(Role::Analytics, &a.nats, None, None, None).await,
        Command::Notify(a) => match a.action {
            Some(NotifyAction::Replay(r)) => replay(r).await,
            None => {
                let Some(nats) = a.nats else {
                    bail!(
                        "borderwatch notify needs --nats URL (or BORDERWATCH_NATS); `borderwatch up` runs notify on the in-process bus"
                    );
                };
                let nats = crate::NatsArgs {
                    nats,
                    stream_replicas: a.stream_replicas,
                    health: a.health,
                };
                one_role(Role::Notify, &nats, None, None, a.public_url).await
            }
        },
        Command::Gateway(a) => {
            one_role(Role::Gateway, &a.nats, Some(a.http), a.api_token, None).await
        }
        Command::Import(a) => import(a).await,
        Command::Analyze(a) => crate::analyze::run(a).await,
        Command::Probe(a) => probe(a).await,
    }
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

async fn one_role(
    role: Role,
    nats: &crate::NatsArgs,
    http: Option<std::net::SocketAddr>,
    api_token: Option<String>,
    public_url: Option<String>,
) -> anyhow::Result<()> {
    let mut opts = UpOptions::embedded(Default::default());
    opts.notify.public_url = public_url;
    opts.nats = Some(nats.nats.clone());
    opts.stream_replicas = nats.stream_replicas;
    opts.roles = vec![role];
    opts.health = nats.health;
    opts.api_token = api_token;
    if let Some(http) = http {
        opts.http = http;
    }
    let signal = roles::shutdown_signal();
    let running = roles::start(opts).await?;
    if let Some(url) = running.gateway_url() {
        println!("gateway listening on {url}");
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

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    let mut url = format!("{}/v1/ingest", args.gateway.trim_end_matches('/'));
    let mut params = Vec::new();
    if let Some(f) = &args.format {
        params.push(format!("format={f}"));
    }
    if let Some(s) = &args.source {
        params.push(format!("source={s}"));
    }
    if !params.is_empty() {
        url = format!("{url}?{}", params.join("&"));
    }
    let client = reqwest::Client::new();
    let mut req = client.post(&url).body(bytes);
    if let Some(t) = &args.api_token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("sending {} to {url}", args.file.display()))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("reading the gateway's answer")?;
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        bail!(
            "{} refused by the gateway ({status}): {msg}",
            args.file.display()
        );
    }
    let release: Release = serde_json::from_value(body)?;
    println!(
        "{}: release {} — {} rows accepted, {} rejected, {} new observations{}",
        args.file.display(),
        release.id,
        release.accepted,
        release.rejected.len(),
        release.new_observations,
        if release.duplicate {
            " (the same file was ingested before)"
        } else {
            ""
        }
    );
    for r in release.rejected.iter().take(20) {
        println!(
            "  row {} column {} value {:?}: {}",
            r.row, r.column, r.value, r.reason
        );
    }
    if release.rejected.len() > 20 {
        println!("  … and {} more rejected rows", release.rejected.len() - 20);
    }
    Ok(())
}
