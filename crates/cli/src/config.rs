//! The configuration file (`--config FILE`, `BORDERWATCH_CONFIG`): one TOML file for every
//! role, so that what is tuned by hand (`analyze --set`, the flags) can be deployed.
//!
//! Tables: `[ingest]` (the sources file), `[analytics]` (the keys of `analyze --set`, read by
//! [`AnalysisConfig::set`] so that there is one parser; nested tables such as
//! `[analytics.farrington]` are dotted keys), `[notify]` (concurrency, retries, digests) and
//! `[gateway]` (address, body limits, rate limit, live-stream caps). Tokens are not read from
//! the file: they come from the environment only, which secrets managers fill.
//!
//! Precedence: a flag given on the command line or by its environment variable wins over the
//! file, and the file over the defaults. Which flags were given is known from clap's value
//! sources ([`Given`]); an optional flag without a default (`--sources`, `--public-url`) is
//! simply given when it is set.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use borderwatch_analytics::AnalysisConfig;
use borderwatch_notify::{ChartImages, NotifyConfig};
use clap::parser::ValueSource;
use serde::{Deserialize, Serialize};

use crate::GatewayFlags;

/// The ids of the flags given on the command line or by their environment variable (not
/// taken from their defaults), across the command and its subcommands.
#[derive(Debug, Clone, Default)]
pub struct Given(BTreeSet<String>);

impl Given {
    /// Reads the value sources of a parsed command line, subcommands included.
    pub fn from_matches(matches: &clap::ArgMatches) -> Given {
        let mut given = BTreeSet::new();
        let mut level = Some(matches);
        while let Some(m) = level {
            for id in m.ids() {
                if matches!(
                    m.value_source(id.as_str()),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                ) {
                    given.insert(id.as_str().to_string());
                }
            }
            level = m.subcommand().map(|(_, sub)| sub);
        }
        Given(given)
    }

    /// Whether the flag with this id (its field name, e.g. `max_json_bytes`) was given.
    pub fn has(&self, id: &str) -> bool {
        self.0.contains(id)
    }
}

/// A configuration file as read: each table's settings, every one optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub ingest: IngestSection,
    pub analytics: AnalyticsSection,
    pub notify: NotifySection,
    pub gateway: GatewaySection,
}

/// `[ingest]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// The scheduled sources file (as `--sources`); a relative path is read from the
    /// configuration file's directory.
    pub sources: Option<PathBuf>,
    /// Bytes the figure store (`BW_OBS`) may hold (as `--obs-max-bytes`; 0: no limit).
    pub obs_max_bytes: Option<u64>,
}

/// `[analytics]`: the detectors and every `--set` key, in the order they are applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyticsSection {
    /// `detectors`, as `--detectors` takes them (comma-separated).
    pub detectors: Option<String>,
    /// Every other key, flattened to `--set`'s dotted names; shared keys first, so that a
    /// per-frequency key (`farrington.quarterly.b`) wins over the shared one
    /// (`farrington.b`) whatever their order in the file.
    pub settings: Vec<(String, String)>,
}

/// `[notify]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// The gateway's public base URL, for links in messages (as `--public-url`).
    pub public_url: Option<String>,
    /// The SMTP server of email subscriptions (as `--smtp-url`; no password: that is
    /// `BORDERWATCH_SMTP_PASSWORD`'s).
    pub smtp_url: Option<String>,
    /// The From of every email (as `--smtp-from`).
    pub smtp_from: Option<String>,
    /// Webhook POSTs in flight at once.
    pub concurrency: Option<usize>,
    /// Events handled at once, retrying ones included.
    pub max_events: Option<usize>,
    /// (subscription, event) deliveries under way at once.
    pub max_deliveries: Option<usize>,
    /// Timeout of one webhook POST.
    pub request_timeout_secs: Option<u64>,
    /// The surge consumer's ack wait.
    pub ack_wait_secs: Option<u64>,
    /// How old the cached subscriptions and silences may be.
    pub cache_max_age_ms: Option<u64>,
    /// Whether Slack and Teams surge messages carry the chart image: `auto`, `on` or `off`
    /// (as `--chart-images`). Unset: `auto`, or `off` for `up` with a read token.
    pub chart_images: Option<String>,
    #[serde(default)]
    pub retry: RetrySection,
    #[serde(default)]
    pub digest: DigestSection,
}

/// `[notify.retry]`: the backoff of a failing delivery and when it is given up.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    pub initial_ms: Option<u64>,
    pub max_secs: Option<u64>,
    pub max_age_secs: Option<u64>,
    pub max_attempts: Option<u32>,
}

/// `[notify.digest]`: how digests and history summaries are gathered.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSection {
    pub tick_ms: Option<u64>,
    pub claim_lease_secs: Option<u64>,
    pub history_wait_secs: Option<u64>,
}

/// `[gateway]`: the same names as the gateway's flags.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    pub http: Option<SocketAddr>,
    pub max_upload_bytes: Option<usize>,
    pub max_json_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub cors_origins: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub rate_limit: Option<u32>,
    pub rate_limit_burst: Option<u32>,
    pub max_streams_per_client: Option<usize>,
    pub max_streams: Option<usize>,
    pub surge_cache: Option<usize>,
}

/// The file's shape for serde: `[analytics]` is read as a table and flattened by hand.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    ingest: IngestSection,
    #[serde(default)]
    analytics: toml::Table,
    #[serde(default)]
    notify: NotifySection,
    #[serde(default)]
    gateway: GatewaySection,
}

impl Settings {
    /// Reads and checks `path`; `None` is an empty file (every default).
    pub fn load_opt(path: Option<&Path>) -> anyhow::Result<Settings> {
        match path {
            Some(path) => Settings::load(path),
            None => Ok(Settings::default()),
        }
    }

    /// Reads and checks a configuration file; errors name the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        let mut settings = Settings::parse(&text)
            .with_context(|| format!("in the configuration file {}", path.display()))?;
        if let Some(sources) = &mut settings.ingest.sources
            && sources.is_relative()
            && let Some(dir) = path.parent()
        {
            *sources = dir.join(&*sources);
        }
        Ok(settings)
    }

    /// Reads and checks a configuration file's text.
    pub fn parse(text: &str) -> anyhow::Result<Settings> {
        let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
        refuse_tokens(&table)?;
        let shape: FileShape = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let settings = Settings {
            ingest: shape.ingest,
            analytics: AnalyticsSection::read(&shape.analytics)?,
            notify: shape.notify,
            gateway: shape.gateway,
        };
        settings.analysis(None, &[])?;
        settings.check_notify()?;
        Ok(settings)
    }

    /// The analysis configuration: `--detectors` (else the file's `detectors`), then the
    /// file's `[analytics]` keys, then `--set` pairs, checked.
    pub fn analysis(
        &self,
        detectors_flag: Option<&str>,
        sets: &[String],
    ) -> anyhow::Result<AnalysisConfig> {
        let mut cfg = match (detectors_flag, &self.analytics.detectors) {
            (Some(list), _) => AnalysisConfig::only(list).context("--detectors")?,
            (None, Some(list)) => AnalysisConfig::only(list).context("[analytics] detectors")?,
            (None, None) => AnalysisConfig::default(),
        };
        for (key, value) in &self.analytics.settings {
            cfg.set(key, value).context("[analytics]")?;
        }
        for pair in sets {
            cfg.set_pair(pair).context("--set")?;
        }
        cfg.validate().context("[analytics]")?;
        Ok(cfg)
    }

    /// `base` (the defaults) with the file's `[notify]` settings over it.
    pub fn notify(&self, base: NotifyConfig) -> NotifyConfig {
        let n = &self.notify;
        let mut cfg = base;
        let secs = Duration::from_secs;
        let ms = Duration::from_millis;
        set(&mut cfg.public_url, n.public_url.clone().map(Some));
        set(&mut cfg.concurrency, n.concurrency);
        set(&mut cfg.max_events, n.max_events);
        set(&mut cfg.max_deliveries, n.max_deliveries);
        set(&mut cfg.request_timeout, n.request_timeout_secs.map(secs));
        set(&mut cfg.ack_wait, n.ack_wait_secs.map(secs));
        set(&mut cfg.cache_max_age, n.cache_max_age_ms.map(ms));
        set(&mut cfg.backoff.initial, n.retry.initial_ms.map(ms));
        set(&mut cfg.backoff.max, n.retry.max_secs.map(secs));
        set(&mut cfg.backoff.max_age, n.retry.max_age_secs.map(secs));
        set(&mut cfg.backoff.max_attempts, n.retry.max_attempts);
        set(&mut cfg.digest_tick, n.digest.tick_ms.map(ms));
        set(
            &mut cfg.digest_claim_lease,
            n.digest.claim_lease_secs.map(secs),
        );
        set(&mut cfg.history_wait, n.digest.history_wait_secs.map(secs));
        cfg.chart_images = self.chart_images(None, false);
        cfg
    }

    /// Whether chat messages carry chart images: the flag (or its variable), else the
    /// file's `chart_images`, else `off` when the gateway wants a read token (Slack and
    /// Teams could not fetch the image, and Slack refuses the whole message), else `auto`.
    /// The file's value was checked when the file was loaded; one that does not parse
    /// counts as unset.
    pub fn chart_images(&self, flag: Option<ChartImages>, read_token: bool) -> ChartImages {
        let file = self
            .notify
            .chart_images
            .as_deref()
            .and_then(|v| v.parse().ok());
        flag.or(file).unwrap_or(if read_token {
            ChartImages::Off
        } else {
            ChartImages::Auto
        })
    }

    /// Puts the file's `[gateway]` settings into the gateway's flags, where a flag was not
    /// given: `http` and `max_upload_bytes` live beside [`GatewayFlags`], so they come too.
    pub fn overlay_gateway(
        &self,
        given: &Given,
        http: &mut SocketAddr,
        max_upload_bytes: &mut usize,
        flags: &mut GatewayFlags,
    ) {
        let g = &self.gateway;
        let pick = |id: &str| !given.has(id);
        if pick("http") {
            set(http, g.http);
        }
        if pick("max_upload_bytes") {
            set(max_upload_bytes, g.max_upload_bytes);
        }
        if pick("max_json_bytes") {
            set(&mut flags.max_json_bytes, g.max_json_bytes);
        }
        if pick("request_timeout_secs") {
            set(&mut flags.request_timeout_secs, g.request_timeout_secs);
        }
        if pick("cors_origins") {
            set(&mut flags.cors_origins, g.cors_origins.clone());
        }
        if pick("allowed_hosts") {
            set(&mut flags.allowed_hosts, g.allowed_hosts.clone());
        }
        if pick("rate_limit") {
            set(&mut flags.rate_limit, g.rate_limit);
        }
        if pick("rate_limit_burst") {
            set(&mut flags.rate_limit_burst, g.rate_limit_burst);
        }
        if pick("max_streams_per_client") {
            set(&mut flags.max_streams_per_client, g.max_streams_per_client);
        }
        if pick("max_streams") {
            set(&mut flags.max_streams, g.max_streams);
        }
        if pick("surge_cache") {
            set(&mut flags.surge_cache, g.surge_cache);
        }
    }

    /// The sources file: `--sources` when given, else the file's.
    pub fn sources(&self, flag: Option<PathBuf>) -> Option<PathBuf> {
        flag.or_else(|| self.ingest.sources.clone())
    }

    /// The SMTP settings: the flags' (or their variables') over the file's, the password
    /// from `BORDERWATCH_SMTP_PASSWORD`; checked, so a role with bad ones does not start.
    pub fn smtp(
        &self,
        flags: &crate::SmtpFlags,
    ) -> anyhow::Result<Option<borderwatch_notify::SmtpConfig>> {
        let url = flags
            .smtp_url
            .clone()
            .or_else(|| self.notify.smtp_url.clone());
        let from = flags
            .smtp_from
            .clone()
            .or_else(|| self.notify.smtp_from.clone());
        let (url, from) = match (url, from) {
            (None, None) => return Ok(None),
            (Some(url), Some(from)) => (url, from),
            (Some(_), None) => bail!("--smtp-url needs --smtp-from, the From of every email"),
            (None, Some(_)) => {
                bail!("--smtp-from needs --smtp-url, the SMTP server to send through")
            }
        };
        let password = std::env::var("BORDERWATCH_SMTP_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        let smtp = borderwatch_notify::SmtpConfig {
            url,
            from,
            password,
        };
        borderwatch_notify::email::check(&smtp).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Some(smtp))
    }

    /// Bounds a zero would turn into a stall.
    fn check_notify(&self) -> anyhow::Result<()> {
        let n = &self.notify;
        for (key, value) in [
            ("concurrency", n.concurrency),
            ("max_events", n.max_events),
            ("max_deliveries", n.max_deliveries),
            (
                "retry.max_attempts",
                n.retry.max_attempts.map(|v| v as usize),
            ),
            (
                "request_timeout_secs",
                n.request_timeout_secs.map(|v| v as usize),
            ),
            ("ack_wait_secs", n.ack_wait_secs.map(|v| v as usize)),
            ("digest.tick_ms", n.digest.tick_ms.map(|v| v as usize)),
        ] {
            if value == Some(0) {
                bail!("[notify] {key} must be at least 1");
            }
        }
        if let Some(v) = &n.chart_images
            && let Err(e) = v.parse::<ChartImages>()
        {
            bail!("[notify] chart_images: {e}");
        }
        if let Some(url) = &n.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("[notify] public_url must start with http:// or https://, got {url:?}");
        }
        Ok(())
    }
}

/// `*target = value` when the file has a value.
fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

/// Tokens are secrets: a file is shown, copied and committed; the environment is where a
/// secrets manager puts them. Named apart from an unknown key so the way out is clear.
fn refuse_tokens(table: &toml::Table) -> anyhow::Result<()> {
    let gateway = table.get("gateway").and_then(toml::Value::as_table);
    for (key, var) in [
        ("api_token", "BORDERWATCH_API_TOKEN"),
        ("read_token", "BORDERWATCH_READ_TOKEN"),
    ] {
        if gateway.is_some_and(|g| g.contains_key(key)) {
            bail!(
                "[gateway] {key}: tokens are not read from the configuration file; set {var} in the environment (or --{})",
                key.replace('_', "-")
            );
        }
    }
    let notify = table.get("notify").and_then(toml::Value::as_table);
    if notify.is_some_and(|n| n.contains_key("smtp_password")) {
        bail!(
            "[notify] smtp_password: passwords are not read from the configuration file; set \
             BORDERWATCH_SMTP_PASSWORD in the environment"
        );
    }
    Ok(())
}

impl AnalyticsSection {
    /// Flattens `[analytics]` to `--set` keys and values (`detectors` apart).
    fn read(table: &toml::Table) -> anyhow::Result<AnalyticsSection> {
        let mut section = AnalyticsSection::default();
        let mut rest = table.clone();
        if let Some(d) = rest.remove("detectors") {
            section.detectors = Some(detector_list(&d)?);
        }
        flatten("", &rest, &mut section.settings)?;
        section
            .settings
            .sort_by_key(|(k, _)| k.matches('.').count());
        Ok(section)
    }
}

/// `detectors = "farrington,ears_c2"` or `detectors = ["farrington", "ears_c2"]`.
fn detector_list(value: &toml::Value) -> anyhow::Result<String> {
    let list = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .context("[analytics] detectors: a list of detector names, such as [\"farrington\", \"ears_c2\"]")?
            .join(","),
        _ => bail!("[analytics] detectors: a list of detector names, such as [\"farrington\", \"ears_c2\"]"),
    };
    if list.split(',').all(|d| d.trim().is_empty()) {
        bail!("[analytics] detectors: the list is empty; leave it out to run the default set");
    }
    Ok(list)
}

/// Nested tables become dotted keys; values become the text `--set` reads (an array is its
/// items joined by commas: `limit54 = [5, 4]` is `limit54=5,4`).
fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(t) => flatten(&key, t, out)?,
            toml::Value::Array(items) => {
                let parts = items
                    .iter()
                    .map(|v| scalar(&key, v))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                out.push((key, parts.join(",")));
            }
            v => {
                let text = scalar(&key, v)?;
                out.push((key, text));
            }
        }
    }
    Ok(())
}

/// A TOML scalar as `--set` text.
fn scalar(key: &str, value: &toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => bail!("[analytics] {key}: a number, true or false, or a string"),
    })
}

/// What `borderwatch config check FILE` prints: every setting the file leads to, its own
/// values over the defaults, as a TOML file that reads back to the same settings. Flags and
/// `BORDERWATCH_*` variables given to a role at start still win over these.
pub fn effective_toml(settings: &Settings) -> anyhow::Result<String> {
    let analysis = settings.analysis(None, &[])?;
    let mut up = default_up_args();
    settings.overlay_gateway(
        &Given::default(),
        &mut up.http,
        &mut up.max_upload_bytes,
        &mut up.gateway,
    );
    up.gateway
        .config(None, up.max_upload_bytes)
        .validate()
        .map_err(|e| anyhow::anyhow!("[gateway] {e}"))?;
    let mut notify = settings.notify(NotifyConfig::default());
    // Checked as a role would (the password, if any, stays out of what is printed).
    notify.smtp = settings.smtp(&crate::SmtpFlags::default())?;

    let mut out = String::from(
        "# The effective settings: this file's values over the defaults. Flags and their\n\
         # BORDERWATCH_* variables given to a role win over these; tokens come from the\n\
         # environment only.\n\n[analytics]\n",
    );
    let names: Vec<toml::Value> = analysis
        .enabled()
        .iter()
        .map(|d| toml::Value::String(d.name().to_string()))
        .collect();
    out.push_str(&format!("detectors = {}\n", toml::Value::Array(names)));
    for (key, value) in analysis.settings() {
        out.push_str(&format!("{key} = {}\n", typed(&value)));
    }
    let rest = Effective {
        ingest: settings.ingest.clone(),
        notify: notify_section(&notify),
        gateway: gateway_section(&up),
    };
    out.push('\n');
    out.push_str(&toml::to_string(&rest).context("writing the settings as TOML")?);
    Ok(out)
}

/// The tables [`effective_toml`] writes with serde.
#[derive(Serialize)]
struct Effective {
    ingest: IngestSection,
    notify: NotifySection,
    gateway: GatewaySection,
}

/// A `--set` value as the TOML value it was most likely written as.
fn typed(text: &str) -> toml::Value {
    if let Ok(i) = text.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        toml::Value::Float(f)
    } else if let Ok(b) = text.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(text.to_string())
    }
}

/// `up`'s flags at their defaults, environment not read: what a file is laid over.
fn default_up_args() -> crate::UpArgs {
    use clap::{Args, FromArgMatches};
    let cmd = crate::UpArgs::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None));
    let matches = cmd
        .try_get_matches_from(["defaults"])
        .expect("up's flags all have defaults");
    crate::UpArgs::from_arg_matches(&matches).expect("up's flags all have defaults")
}

/// `auto`, `on` or `off`, as the file and the flag spell it.
fn chart_images_name(c: ChartImages) -> &'static str {
    match c {
        ChartImages::Auto => "auto",
        ChartImages::On => "on",
        ChartImages::Off => "off",
    }
}

fn notify_section(n: &NotifyConfig) -> NotifySection {
    NotifySection {
        public_url: n.public_url.clone(),
        smtp_url: n.smtp.as_ref().map(|s| s.url.clone()),
        smtp_from: n.smtp.as_ref().map(|s| s.from.clone()),
        concurrency: Some(n.concurrency),
        max_events: Some(n.max_events),
        max_deliveries: Some(n.max_deliveries),
        request_timeout_secs: Some(n.request_timeout.as_secs()),
        ack_wait_secs: Some(n.ack_wait.as_secs()),
        cache_max_age_ms: Some(n.cache_max_age.as_millis() as u64),
        chart_images: Some(chart_images_name(n.chart_images).into()),
        retry: RetrySection {
            initial_ms: Some(n.backoff.initial.as_millis() as u64),
            max_secs: Some(n.backoff.max.as_secs()),
            max_age_secs: Some(n.backoff.max_age.as_secs()),
            max_attempts: Some(n.backoff.max_attempts),
        },
        digest: DigestSection {
            tick_ms: Some(n.digest_tick.as_millis() as u64),
            claim_lease_secs: Some(n.digest_claim_lease.as_secs()),
            history_wait_secs: Some(n.history_wait.as_secs()),
        },
    }
}

fn gateway_section(up: &crate::UpArgs) -> GatewaySection {
    let g = &up.gateway;
    GatewaySection {
        http: Some(up.http),
        max_upload_bytes: Some(up.max_upload_bytes),
        max_json_bytes: Some(g.max_json_bytes),
        request_timeout_secs: Some(g.request_timeout_secs),
        cors_origins: Some(g.cors_origins.clone()),
        allowed_hosts: Some(g.allowed_hosts.clone()),
        rate_limit: Some(g.rate_limit),
        rate_limit_burst: Some(g.rate_limit_burst),
        max_streams_per_client: Some(g.max_streams_per_client),
        max_streams: Some(g.max_streams),
        surge_cache: Some(g.surge_cache),
    }
}

/// `borderwatch config check FILE`: prints the effective settings, or fails naming the
/// problem.
pub(crate) fn check(path: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(path)?;
    let text = effective_toml(&settings)
        .with_context(|| format!("in the configuration file {}", path.display()))?;
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};

    fn parse(text: &str) -> Settings {
        Settings::parse(text).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", Settings::parse(text).unwrap_err())
    }

    /// Nested tables are dotted keys, read by `set`; a per-frequency key wins over the
    /// shared one whatever the order, and arrays are `set`'s comma lists.
    #[test]
    fn analytics_tables_flatten_to_set_keys() {
        let s = parse(
            "[analytics]\nfdr = 0.1\ndetectors = [\"farrington\", \"cusum\"]\n\
             alert.min_score = 60\n\
             [analytics.farrington]\nquarterly.b = 4\nb = 5\nlimit54 = [3, 2]\n\
             [analytics.fall]\nmin_expected = 50\n",
        );
        let cfg = s.analysis(None, &[]).unwrap();
        assert_eq!(cfg.fdr, 0.1);
        assert_eq!(cfg.enabled().len(), 2);
        assert_eq!(cfg.alert.min_score, 60.0);
        assert_eq!(
            (cfg.farrington.monthly.b, cfg.farrington.quarterly.b),
            (5, 4)
        );
        assert_eq!(cfg.farrington.quarterly.limit54, (3, 2));
        assert_eq!(cfg.fall.min_expected, 50.0);
        // An empty file is every default.
        assert_eq!(
            parse("").analysis(None, &[]).unwrap(),
            AnalysisConfig::default()
        );
    }

    /// `analyze --detectors` and `--set` win over the file; the file's other keys stay.
    #[test]
    fn analyze_flags_win_over_the_file() {
        let s = parse("[analytics]\ndetectors = \"cusum\"\nfdr = 0.1\nfarrington.b = 4\n");
        let cfg = s.analysis(Some("farrington"), &["fdr=0.2".into()]).unwrap();
        assert_eq!(cfg.enabled(), [borderwatch_analytics::Detector::Farrington]);
        assert_eq!(cfg.fdr, 0.2);
        assert_eq!(cfg.farrington.quarterly.b, 4);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_the_known_ones() {
        let e = error("[analytics]\nfarrington.bee = 3\n");
        assert!(e.contains("`farrington.bee` is not a setting"), "{e}");
        assert!(e.contains("farrington.b,"), "lists the known keys: {e}");
        let e = error("[notify]\nconcurrancy = 3\n");
        assert!(
            e.contains("`concurrancy`") && e.contains("`concurrency`"),
            "{e}"
        );
        let e = error("[notify.retry]\nmax_tries = 3\n");
        assert!(
            e.contains("`max_tries`") && e.contains("`max_attempts`"),
            "{e}"
        );
        let e = error("[gatway]\nhttp = \"127.0.0.1:1\"\n");
        assert!(e.contains("`gatway`") && e.contains("`gateway`"), "{e}");
        let e = error("[analytics]\ndetectors = [\"zscore\"]\n");
        assert!(e.contains("zscore") && e.contains("farrington"), "{e}");
    }

    #[test]
    fn bad_values_and_tokens_are_refused_clearly() {
        let e = error("[gateway]\napi_token = \"secret\"\n");
        assert!(
            e.contains("BORDERWATCH_API_TOKEN") && !e.contains("secret"),
            "{e}"
        );
        let e = error("[analytics]\nfdr = 2\n");
        assert!(e.contains("fdr must be in (0, 1]"), "{e}");
        let e = error("[analytics]\nfarrington.b = \"three\"\n");
        assert!(e.contains("farrington.b") && e.contains("three"), "{e}");
        let e = error("[notify]\nconcurrency = 0\n");
        assert!(e.contains("concurrency must be at least 1"), "{e}");
        let e = error("[gateway]\nmax_streams = -1\n");
        assert!(e.contains("max_streams"), "{e}");
        let e = error("[analytics]\ndetectors = []\n");
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn chart_images_come_from_the_flag_then_the_file_then_the_read_token() {
        let off = parse("[notify]\nchart_images = \"off\"\n");
        assert_eq!(
            off.notify(NotifyConfig::default()).chart_images,
            ChartImages::Off
        );
        assert_eq!(off.chart_images(None, false), ChartImages::Off);
        assert_eq!(
            off.chart_images(Some(ChartImages::On), false),
            ChartImages::On
        );
        let on = parse("[notify]\nchart_images = \"on\"\n");
        assert_eq!(
            on.chart_images(None, true),
            ChartImages::On,
            "the file wins over the default"
        );
        let none = parse("");
        assert_eq!(
            none.notify(NotifyConfig::default()).chart_images,
            ChartImages::Auto
        );
        assert_eq!(none.chart_images(None, false), ChartImages::Auto);
        assert_eq!(none.chart_images(None, true), ChartImages::Off);
        let e = error("[notify]\nchart_images = \"sometimes\"\n");
        assert!(
            e.contains("chart_images") && e.contains("auto, on or off") && e.contains("sometimes"),
            "{e}"
        );
    }

    #[test]
    fn notify_settings_lay_over_the_defaults() {
        let s = parse(
            "[notify]\nconcurrency = 8\npublic_url = \"https://bw.example.org\"\n\
             [notify.retry]\nmax_attempts = 5\ninitial_ms = 100\n\
             [notify.digest]\nhistory_wait_secs = 2\n",
        );
        let cfg = s.notify(NotifyConfig::default());
        assert_eq!(cfg.concurrency, 8);
        assert_eq!(cfg.public_url.as_deref(), Some("https://bw.example.org"));
        assert_eq!(cfg.backoff.max_attempts, 5);
        assert_eq!(cfg.backoff.initial, Duration::from_millis(100));
        assert_eq!(cfg.history_wait, Duration::from_secs(2));
        let untouched = NotifyConfig::default();
        assert_eq!(cfg.max_events, untouched.max_events);
        assert_eq!(cfg.backoff.max, untouched.backoff.max);
    }

    /// The SMTP server from the file, a flag over it; both halves needed, checked, and no
    /// password read from the file.
    #[test]
    fn smtp_settings_come_from_the_file_or_the_flags_never_a_password() {
        let s = parse(
            "[notify]\nsmtp_url = \"smtp://127.0.0.1:2525\"\nsmtp_from = \"alerts@example.org\"\n",
        );
        let none = crate::SmtpFlags::default();
        let smtp = s.smtp(&none).unwrap().expect("the file's");
        assert_eq!(smtp.url, "smtp://127.0.0.1:2525");
        assert_eq!(smtp.from, "alerts@example.org");
        let flags = crate::SmtpFlags {
            smtp_url: Some("smtps://mail.example.org".into()),
            smtp_from: None,
        };
        assert_eq!(
            s.smtp(&flags).unwrap().unwrap().url,
            "smtps://mail.example.org"
        );
        assert!(Settings::default().smtp(&none).unwrap().is_none());
        let half = parse("[notify]\nsmtp_url = \"smtp://127.0.0.1:2525\"\n");
        assert!(format!("{:#}", half.smtp(&none).unwrap_err()).contains("--smtp-from"));
        let in_url = parse(
            "[notify]\nsmtp_url = \"smtp://u:pw@127.0.0.1:2525\"\nsmtp_from = \"a@example.org\"\n",
        );
        assert!(
            format!("{:#}", in_url.smtp(&none).unwrap_err()).contains("BORDERWATCH_SMTP_PASSWORD")
        );
        let e = error("[notify]\nsmtp_password = \"secret\"\n");
        assert!(e.contains("BORDERWATCH_SMTP_PASSWORD"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let printed = effective_toml(&s).unwrap();
        assert!(
            printed.contains("smtp_url = \"smtp://127.0.0.1:2525\""),
            "{printed}"
        );
    }

    /// A flag given on the command line wins over the file, the file over a default.
    #[test]
    fn given_gateway_flags_win_over_the_file_and_the_file_over_defaults() {
        let s = parse(
            "[gateway]\nrate_limit = 9\nmax_streams = 3\nhttp = \"127.0.0.1:9999\"\n\
             max_upload_bytes = 1000\n",
        );
        let cli = Cli::try_parse_recording([
            "borderwatch",
            "up",
            "--rate-limit",
            "7",
            "--max-upload-bytes",
            "2000",
        ])
        .unwrap();
        assert!(cli.given.has("rate_limit") && cli.given.has("max_upload_bytes"));
        assert!(!cli.given.has("max_streams") && !cli.given.has("http"));
        let Command::Up(mut up) = cli.command else {
            panic!("not up")
        };
        s.overlay_gateway(
            &cli.given,
            &mut up.http,
            &mut up.max_upload_bytes,
            &mut up.gateway,
        );
        assert_eq!(up.gateway.rate_limit, 7, "given: the flag");
        assert_eq!(up.max_upload_bytes, 2000, "given: the flag");
        assert_eq!(up.gateway.max_streams, 3, "not given: the file");
        assert_eq!(up.http.port(), 9999, "not given: the file");
        assert_eq!(up.gateway.rate_limit_burst, 100, "in neither: the default");
    }

    /// A flag given at its default value still counts as given: precedence follows where
    /// a value came from, not what it is.
    #[test]
    fn a_flag_given_at_its_default_value_still_wins() {
        let s = parse("[gateway]\nrate_limit = 9\n");
        let cli = Cli::try_parse_recording([
            "borderwatch",
            "gateway",
            "--nats",
            "nats://127.0.0.1:4222",
            "--rate-limit",
            "50",
        ])
        .unwrap();
        let Command::Gateway(mut g) = cli.command else {
            panic!("not gateway")
        };
        s.overlay_gateway(
            &cli.given,
            &mut g.http,
            &mut g.max_upload_bytes,
            &mut g.gateway,
        );
        assert_eq!(g.gateway.rate_limit, 50);
    }

    #[test]
    fn a_relative_sources_path_is_read_from_the_files_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bw.toml");
        std::fs::write(&file, "[ingest]\nsources = \"sources.toml\"\n").unwrap();
        let s = Settings::load(&file).unwrap();
        assert_eq!(s.sources(None), Some(dir.path().join("sources.toml")));
        let flag = PathBuf::from("/elsewhere/s.toml");
        assert_eq!(s.sources(Some(flag.clone())), Some(flag));
        let e = format!(
            "{:#}",
            Settings::load(&dir.path().join("none.toml")).unwrap_err()
        );
        assert!(e.contains("none.toml"), "{e}");
    }

    /// `config check` prints a file that reads back to the same settings.
    #[test]
    fn the_effective_settings_read_back_to_themselves() {
        let s = parse(
            "[analytics]\nfarrington.quarterly.b = 4\nears.alpha = 0.01\n\
             [notify]\nconcurrency = 8\n[gateway]\ncors_origins = [\"https://a.example\"]\n",
        );
        let text = effective_toml(&s).unwrap();
        let again = parse(&text);
        assert_eq!(
            again.analysis(None, &[]).unwrap(),
            s.analysis(None, &[]).unwrap()
        );
        assert_eq!(effective_toml(&again).unwrap(), text);
        assert!(text.contains("farrington.quarterly.b = 4"), "{text}");
        assert!(text.contains("concurrency = 8"), "{text}");
    }
}
