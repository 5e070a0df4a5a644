//! A client of a running gateway in the binary, as `amtool` is for Alertmanager:
//! `borderwatch surges`, `borderwatch subscriptions list|add|rm|test` and `borderwatch
//! silences list|add|expire`, over the HTTP API (the same calls `/openapi.json` documents).
//!
//! Tokens come from the environment only (`BORDERWATCH_API_TOKEN`, and
//! `BORDERWATCH_READ_TOKEN` for reads): a token on a command line is visible to every user
//! of the machine and kept in shell histories. Output is a table on a terminal and JSON
//! otherwise (`-o` chooses). A gateway that cannot be reached exits 2, an error answer 1
//! with the API's message ([`exit_code`]).
//!
//! Only the flags of [`ClientFlags`] (where the gateway is, how to print) are also
//! environment variables. The filters and what `add` creates are not: they are what one
//! call is about, like a positional argument, and a variable would carry them into every
//! later call (a `BORDERWATCH_SEVERITY` left set for `surges` would quietly narrow a
//! subscription made afterwards), or collide with another command's flag of the same name
//! (`import --format`). See `takes_no_variable`.

mod gateway;
mod table;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Output;
use gateway::{Access, Gateway};

/// The exit status for an error: 2 when the gateway could not be reached, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if gateway::is_unreachable(e) { 2 } else { 1 }
}

/// Where the gateway is and how to print what it answers.
#[derive(Debug, Clone, Args)]
pub struct ClientFlags {
    /// The gateway's base URL. The token is read from BORDERWATCH_API_TOKEN (reads also take
    /// BORDERWATCH_READ_TOKEN), never from the command line.
    #[arg(
        long,
        env = "BORDERWATCH_GATEWAY",
        default_value = "http://127.0.0.1:8080"
    )]
    pub gateway: String,
    /// `table` (aligned columns) or `json` (one JSON object per line). Default: table when
    /// stdout is a terminal, json otherwise (a pipe, a file).
    #[arg(short = 'o', long, env = "BORDERWATCH_OUTPUT")]
    pub output: Option<Output>,
    /// Seconds to wait for each answer. Its variable is not BORDERWATCH_TIMEOUT, which is
    /// `probe`'s (3 s, for health checks).
    #[arg(long, env = "BORDERWATCH_CLIENT_TIMEOUT", default_value_t = 30)]
    pub timeout: u64,
    /// Items asked for per request while following a list's pages (1 to 1000).
    #[arg(
        long,
        env = "BORDERWATCH_PAGE_SIZE",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u16).range(1..=1000)
    )]
    pub page_size: u16,
}

impl ClientFlags {
    fn connect(&self) -> anyhow::Result<Gateway> {
        Gateway::new(&self.gateway, Duration::from_secs(self.timeout))
    }
}

/// The client's commands. Their own flags take no environment variable (see the module's
/// doc); only [`ClientFlags`]' do.
#[cfg(test)]
const COMMANDS: [&str; 3] = ["surges", "subscriptions", "silences"];

/// Whether flag `id` of the command at `path` (`borderwatch subscriptions add`) is one of
/// the client's per-call flags, which have no variable by design: the test that every
/// other flag has one leaves these out.
#[cfg(test)]
pub(crate) fn takes_no_variable(path: &str, id: &str) -> bool {
    let client_command = path
        .split_whitespace()
        .nth(1)
        .is_some_and(|c| COMMANDS.contains(&c));
    let connection = ClientFlags::augment_args(clap::Command::new("client"));
    client_command && connection.get_arguments().all(|a| a.get_id() != id)
}

/// `surges`: the gateway's surges, newest first, with the list's filters.
#[derive(Debug, Args)]
pub struct SurgesArgs {
    #[command(flatten)]
    pub client: ClientFlags,
    /// Only this source, e.g. `fsb`.
    #[arg(long)]
    pub source: Option<String>,
    /// Only this country: ISO alpha-2, alpha-3 or a name.
    #[arg(long)]
    pub country: Option<String>,
    /// Only this category, e.g. `study`.
    #[arg(long)]
    pub category: Option<String>,
    /// That severity or higher.
    #[arg(long, value_parser = ["low", "medium", "high", "critical"])]
    pub severity: Option<String>,
    /// `rise` (surges) or `fall` (significant drops); both when not given.
    #[arg(long, value_parser = ["rise", "fall"])]
    pub direction: Option<String>,
    /// A period (`2024-Q1`: surges for it or later) or an RFC 3339 time (detected then or
    /// later).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many surges, the newest. Default: every one, page after page.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// `subscriptions`: webhook subscriptions.
#[derive(Debug, Args)]
pub struct SubscriptionsArgs {
    #[command(subcommand)]
    pub action: SubscriptionsAction,
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionsAction {
    /// List the subscriptions (their URLs masked, never their secrets).
    #[command(alias = "ls")]
    List(ClientFlags),
    /// Subscribe a webhook. Its secret is BORDERWATCH_WEBHOOK_SECRET, or generated and
    /// printed once.
    Add(Box<SubscriptionAddArgs>),
    /// Delete subscriptions (`sub-…`): nothing more is sent to their webhooks.
    #[command(alias = "delete")]
    Rm(IdsArgs),
    /// Send a subscription (`sub-…`) a signed test event now and say what its receiver
    /// answered (exit 1 unless it took it).
    Test(IdArgs),
}

impl SubscriptionsAction {
    fn client(&self) -> &ClientFlags {
        match self {
            SubscriptionsAction::List(c) => c,
            SubscriptionsAction::Add(a) => &a.client,
            SubscriptionsAction::Rm(a) => &a.client,
            SubscriptionsAction::Test(a) => &a.client,
        }
    }
}

/// Ids to act on, and the gateway.
#[derive(Debug, Args)]
pub struct IdsArgs {
    /// The ids, as `list` shows them.
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub client: ClientFlags,
}

/// One id to act on, and the gateway.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The id, as `list` shows it.
    pub id: String,
    #[command(flatten)]
    pub client: ClientFlags,
}

/// The variable holding a new subscription's secret; without it one is generated.
const WEBHOOK_SECRET_VAR: &str = "BORDERWATCH_WEBHOOK_SECRET";

#[derive(Debug, Args)]
pub struct SubscriptionAddArgs {
    #[command(flatten)]
    pub client: ClientFlags,
    /// The webhook's URL (http:// or https://).
    #[arg(long, required_unless_present = "email", conflicts_with = "email")]
    pub url: Option<String>,
    /// Email these addresses instead of calling a webhook (comma-separated or repeated):
    /// the gateway's operator's SMTP server sends them (`up --smtp-url`).
    #[arg(
        long,
        value_name = "ADDRESS",
        value_delimiter = ',',
        conflicts_with = "format"
    )]
    pub email: Vec<String>,
    /// The body it is sent.
    #[arg(long, value_parser = ["json", "slack", "teams", "alertmanager"])]
    pub format: Option<String>,
    /// What it is sent: `surge` (the default), `revision` (a changed figure of a known
    /// period), `missing` (a category a source stopped publishing). Comma-separated or
    /// repeated.
    #[arg(long, value_delimiter = ',', value_parser = ["surge", "revision", "missing"])]
    pub kind: Vec<String>,
    /// Only events every matcher matches, as amtool takes them (repeated, not
    /// comma-separated: a regex may hold commas): `--matcher 'country=~"PRK|CHN"'
    /// --matcher severity!=low`. Checked here before anything is sent.
    #[arg(long, value_name = "MATCHER")]
    pub matcher: Vec<String>,
    /// Only these countries (comma-separated or repeated): ISO alpha-2, alpha-3 or names.
    #[arg(long, value_delimiter = ',')]
    pub country: Vec<String>,
    /// Only these categories.
    #[arg(long, value_delimiter = ',')]
    pub category: Vec<String>,
    /// Only these sources.
    #[arg(long, value_delimiter = ',')]
    pub source: Vec<String>,
    /// Only surges with a finding of one of these detectors.
    #[arg(long, value_delimiter = ',')]
    pub detector: Vec<String>,
    /// Only surges of this severity or higher.
    #[arg(long, value_parser = ["low", "medium", "high", "critical"])]
    pub severity: Option<String>,
    /// Also falls (significant drops).
    #[arg(long)]
    pub falls: bool,
    /// Also an incident's closing notice.
    #[arg(long)]
    pub resolved: bool,
    /// One message per release, this many seconds after its first matching surge.
    #[arg(long, value_name = "SECS")]
    pub digest: Option<u64>,
    /// Historical surges: one `summary` per release, or `each` on its own.
    #[arg(long, value_parser = ["summary", "each"])]
    pub history: Option<String>,
    /// At most this many live surges of a release, in one message.
    #[arg(long)]
    pub max_per_release: Option<u32>,
}

/// `silences`: mute matching surges for a while.
#[derive(Debug, Args)]
pub struct SilencesArgs {
    #[command(subcommand)]
    pub action: SilencesAction,
}

#[derive(Debug, Subcommand)]
pub enum SilencesAction {
    /// List the silences, in force or ended.
    #[command(alias = "ls")]
    List(ClientFlags),
    /// Mute surges matching every matcher, as amtool takes them: `country=PRK
    /// category=~"study|work"` (=, !=, =~, !~ on source, country, category, severity).
    Add(SilenceAddArgs),
    /// End silences (`sil-…`) now. The gateway deletes them (it keeps no ended-early
    /// silences); what they muted is not sent later.
    Expire(IdsArgs),
}

impl SilencesAction {
    fn client(&self) -> &ClientFlags {
        match self {
            SilencesAction::List(c) => c,
            SilencesAction::Add(a) => &a.client,
            SilencesAction::Expire(a) => &a.client,
        }
    }
}

#[derive(Debug, Args)]
pub struct SilenceAddArgs {
    #[command(flatten)]
    pub client: ClientFlags,
    /// Matchers, every one of which must match: `country=PRK`, `category=~"study|work"`,
    /// `severity!=low`.
    #[arg(required = true, value_name = "MATCHER")]
    pub matchers: Vec<String>,
    /// How long it lasts: `90m`, `2h`, `1d`, `1w`, `1h30m`.
    #[arg(long, default_value = "1h", conflicts_with = "ends")]
    pub duration: String,
    /// When it ends instead, an RFC 3339 time (`2025-01-31T18:00:00Z`).
    #[arg(long)]
    pub ends: Option<String>,
    /// Why: shown in the list.
    #[arg(long)]
    pub comment: Option<String>,
}

/// `surges`.
pub(crate) async fn surges(args: SurgesArgs) -> anyhow::Result<()> {
    let gw = args.client.connect()?;
    let json = table::wants_json(args.client.output);
    let page_size = usize::from(args.client.page_size);
    let query: Vec<(&str, String)> = [
        ("source", args.source),
        ("country", args.country),
        ("category", args.category),
        ("min_severity", args.severity),
        ("direction", args.direction),
        ("since", args.since),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let mut left = args.limit.unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    while left > 0 {
        let mut q = query.clone();
        q.push(("limit", left.min(page_size).to_string()));
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page = gw
            .call(Method::GET, "/v1/surges", &q, None, Access::Read)
            .await?;
        let surges = page["surges"].as_array().cloned().unwrap_or_default();
        left = left.saturating_sub(surges.len());
        for s in surges {
            if json {
                println!("{s}");
            } else {
                rows.push(surge_row(&s));
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    if !json {
        print!(
            "{}",
            table::render(
                &[
                    "ID",
                    "SEVERITY",
                    "DIRECTION",
                    "SERIES",
                    "PERIOD",
                    "VALUE",
                    "EXPLANATION"
                ],
                &rows
            )
        );
    }
    Ok(())
}

fn surge_row(s: &Value) -> Vec<String> {
    vec![
        text(&s["id"]),
        text(&s["severity"]),
        text(&s["direction"]),
        format!(
            "{}/{}/{}",
            text(&s["source"]),
            text(&s["country"]),
            text(&s["category"])
        ),
        text(&s["period"]),
        text(&s["value"]),
        text(&s["explanation"]),
    ]
}

/// A JSON value as a cell: a string without quotes, null as empty, anything else as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Every item of a list endpoint (`/v1/subscriptions`, `/v1/silences`), page after page.
async fn list_all(
    gw: &Gateway,
    path: &str,
    key: &str,
    access: Access,
    page_size: u16,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("limit", page_size.to_string())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page = gw.call(Method::GET, path, &q, None, access).await?;
        out.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => return Ok(out),
        }
    }
}

/// `subscriptions …`.
pub(crate) async fn subscriptions(args: SubscriptionsArgs) -> anyhow::Result<()> {
    let client = args.action.client();
    let gw = client.connect()?;
    let json = table::wants_json(client.output);
    let page_size = client.page_size;
    match args.action {
        SubscriptionsAction::List(_) => {
            // Subscriptions hold webhook URLs: reading them needs the API token.
            let subs = list_all(
                &gw,
                "/v1/subscriptions",
                "subscriptions",
                Access::Write,
                page_size,
            )
            .await?;
            if json {
                subs.iter().for_each(|s| println!("{s}"));
            } else {
                let rows: Vec<Vec<String>> = subs.iter().map(subscription_row).collect();
                print!(
                    "{}",
                    table::render(&["ID", "URL", "FORMAT", "FILTER", "CREATED"], &rows)
                );
            }
            Ok(())
        }
        SubscriptionsAction::Add(a) => add_subscription(&gw, *a, json).await,
        SubscriptionsAction::Rm(a) => {
            for id in a.ids {
                let path = format!("/v1/subscriptions/{}", segment(&id));
                gw.call(Method::DELETE, &path, &[], None, Access::Write)
                    .await?;
                if json {
                    println!("{}", json!({ "id": id, "deleted": true }));
                } else {
                    println!("deleted {id}");
                }
            }
            Ok(())
        }
        SubscriptionsAction::Test(IdArgs { id, .. }) => {
            let path = format!("/v1/subscriptions/{}/test", segment(&id));
            let r = gw
                .call(Method::POST, &path, &[], None, Access::Write)
                .await?;
            let delivered = r["outcome"] == "delivered";
            let how = match (r["status"].as_u64(), r["error"].as_str()) {
                (Some(s), _) => format!("the receiver answered {s}"),
                (None, Some(e)) => e.to_string(),
                (None, None) => String::new(),
            };
            if json {
                println!("{r}");
            } else {
                println!(
                    "test event {} {}: {how} ({} ms)",
                    text(&r["event_id"]),
                    text(&r["outcome"]),
                    text(&r["latency_ms"])
                );
            }
            if !delivered {
                bail!("the test event to {id} was not delivered: {how}");
            }
            Ok(())
        }
    }
}

/// A subscription as a table row. FILTER sums up what narrows or widens what it is sent:
/// filters, matchers, kinds other than surges, digest and the like; `everything` when
/// nothing does.
fn subscription_row(s: &Value) -> Vec<String> {
    let f = &s["filter"];
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    for (name, key) in [
        ("source", "sources"),
        ("country", "countries"),
        ("category", "categories"),
        ("detector", "detectors"),
    ] {
        let l = list(&f[key]);
        if !l.is_empty() {
            parts.push(format!("{name}={l}"));
        }
    }
    if let Some(sev) = f["min_severity"].as_str().filter(|s| *s != "low") {
        parts.push(format!("severity>={sev}"));
    }
    // Matchers as amtool writes them (the API gives their text form).
    if let Some(ms) = s["matchers"].as_array() {
        parts.extend(ms.iter().map(text));
    }
    // Kinds other than the default, surges only.
    let kinds = list(&s["kinds"]);
    if !kinds.is_empty() && kinds != "surge" {
        parts.push(format!("kinds={kinds}"));
    }
    if let Some(secs) = s["digest"]["group_wait_secs"].as_u64() {
        parts.push(format!("digest={secs}s"));
    }
    if let Some(n) = s["max_per_release"].as_u64() {
        parts.push(format!("max_per_release={n}"));
    }
    for flag in ["falls", "resolved"] {
        if s[flag] == true {
            parts.push(flag.to_string());
        }
    }
    vec![
        text(&s["id"]),
        text(&s["webhook"]["url"]),
        text(&s["format"]),
        if parts.is_empty() {
            "everything".into()
        } else {
            parts.join(" ")
        },
        text(&s["created_at"]),
    ]
}

/// `subscriptions add`: the secret is the variable's, or a new random one printed once (the
/// gateway never shows it again). An email subscription has none: an email is not signed.
async fn add_subscription(gw: &Gateway, a: SubscriptionAddArgs, json: bool) -> anyhow::Result<()> {
    let target = subscription_target(&a)?;
    let given = std::env::var(WEBHOOK_SECRET_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty());
    let generated = given.is_none() && !target.is_email();
    let secret = match target {
        Target::Email(_) => None,
        Target::Webhook(_) => Some(given.unwrap_or_else(new_secret)),
    };
    let body = subscription_body(&a, &target, secret.as_deref())?;
    let mut sub = gw
        .call(
            Method::POST,
            "/v1/subscriptions",
            &[],
            Some(&body),
            Access::Write,
        )
        .await?;
    let shown_secret = secret.filter(|_| generated);
    if json {
        if let Some(secret) = &shown_secret {
            sub["webhook"]["secret"] = json!(secret);
        }
        println!("{sub}");
    } else {
        println!(
            "added {} for {}",
            text(&sub["id"]),
            text(&sub["webhook"]["url"])
        );
        if let Some(secret) = shown_secret {
            println!(
                "secret {secret}\n  (generated; shown only now: the receiver checks signatures with it. Set {WEBHOOK_SECRET_VAR} to choose one.)"
            );
        }
    }
    Ok(())
}

/// Where a new subscription's events go: a webhook URL, or (`--email`) a `mailto:` target
/// of the addresses, as the gateway takes it (`mailto:a@example.org,b@example.org`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Webhook(String),
    Email(String),
}

impl Target {
    fn is_email(&self) -> bool {
        matches!(self, Target::Email(_))
    }

    fn url(&self) -> &str {
        match self {
            Target::Webhook(u) | Target::Email(u) => u,
        }
    }
}

/// The target from `--url` or `--email`, the addresses checked here as notify will read
/// them (bare addresses, no header fields), so a typo is named before anything is sent.
fn subscription_target(a: &SubscriptionAddArgs) -> anyhow::Result<Target> {
    if a.email.is_empty() {
        let url = a
            .url
            .clone()
            .context("give --url URL (a webhook) or --email ADDRESS")?;
        return Ok(Target::Webhook(url));
    }
    let target = format!("mailto:{}", a.email.join(","));
    borderwatch_notify::email::recipients(&target).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    Ok(Target::Email(target))
}

/// `POST /v1/subscriptions`' body from the flags; what is not given is left to the gateway's
/// defaults (kinds: surges only). The matchers are checked here first, as `silences add`'s
/// are.
fn subscription_body(
    a: &SubscriptionAddArgs,
    target: &Target,
    secret: Option<&str>,
) -> anyhow::Result<Value> {
    let mut filter = json!({
        "countries": a.country,
        "categories": a.category,
        "sources": a.source,
        "detectors": a.detector,
    });
    if let Some(s) = &a.severity {
        filter["min_severity"] = json!(s);
    }
    let mut webhook = json!({ "url": target.url() });
    if let Some(secret) = secret {
        webhook["secret"] = json!(secret);
    }
    let mut body = json!({
        "webhook": webhook,
        "filter": filter,
        "falls": a.falls,
        "resolved": a.resolved,
    });
    match (&a.format, target) {
        (_, Target::Email(_)) => body["format"] = json!("email"),
        (Some(f), Target::Webhook(_)) => body["format"] = json!(f),
        (None, Target::Webhook(_)) => {}
    }
    if !a.kind.is_empty() {
        body["kinds"] = json!(a.kind);
    }
    if !a.matcher.is_empty() {
        body["matchers"] = json!(checked_matchers(&a.matcher)?);
    }
    if let Some(h) = &a.history {
        body["history"] = json!(h);
    }
    if let Some(secs) = a.digest {
        body["digest"] = json!({ "group_wait_secs": secs });
    }
    if let Some(n) = a.max_per_release {
        body["max_per_release"] = json!(n);
    }
    Ok(body)
}

/// Matchers in Alertmanager's text form, each read with the model's parser (the one the
/// gateway uses), so that a typo is named before anything is sent; written back in their
/// canonical form (`country="PRK"`).
fn checked_matchers(matchers: &[String]) -> anyhow::Result<Vec<String>> {
    let max = borderwatch_model::MAX_MATCHERS;
    if matchers.len() > max {
        bail!("{} matchers: at most {max}", matchers.len());
    }
    matchers
        .iter()
        .map(|m| {
            borderwatch_model::Matcher::parse(m)
                .map(|m| m.to_string())
                .map_err(|e| anyhow::anyhow!("matcher {e}"))
        })
        .collect()
}

/// 32 random bytes as hex: an HMAC key as strong as its SHA-256.
fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `silences …`.
pub(crate) async fn silences(args: SilencesArgs) -> anyhow::Result<()> {
    let client = args.action.client();
    let gw = client.connect()?;
    let json = table::wants_json(client.output);
    let page_size = client.page_size;
    match args.action {
        SilencesAction::List(_) => {
            let all = list_all(&gw, "/v1/silences", "silences", Access::Read, page_size).await?;
            if json {
                all.iter().for_each(|s| println!("{s}"));
            } else {
                let rows: Vec<Vec<String>> = all.iter().map(silence_row).collect();
                print!(
                    "{}",
                    table::render(&["ID", "MATCHERS", "ENDS", "STATE", "COMMENT"], &rows)
                );
            }
            Ok(())
        }
        SilencesAction::Add(a) => {
            let body = silence_body(&a, time::OffsetDateTime::now_utc())?;
            let s = gw
                .call(
                    Method::POST,
                    "/v1/silences",
                    &[],
                    Some(&body),
                    Access::Write,
                )
                .await?;
            if json {
                println!("{s}");
            } else {
                println!(
                    "added {} until {}: {}",
                    text(&s["id"]),
                    text(&s["until"]),
                    matchers_text(&s["matchers"])
                );
            }
            Ok(())
        }
        SilencesAction::Expire(a) => {
            for id in a.ids {
                let path = format!("/v1/silences/{}", segment(&id));
                gw.call(Method::DELETE, &path, &[], None, Access::Write)
                    .await?;
                if json {
                    println!("{}", json!({ "id": id, "expired": true }));
                } else {
                    println!("expired {id}");
                }
            }
            Ok(())
        }
    }
}

/// `POST /v1/silences`' body: the matchers checked here first (the gateway checks them
/// again), so a typo is named before anything is sent; `until` from `--ends` or now plus
/// `--duration`.
fn silence_body(a: &SilenceAddArgs, now: time::OffsetDateTime) -> anyhow::Result<Value> {
    let matchers = checked_matchers(&a.matchers)?;
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let until = match &a.ends {
        Some(ends) => {
            time::OffsetDateTime::parse(ends, rfc3339).with_context(|| {
                format!("--ends `{ends}` is not an RFC 3339 time such as 2025-01-31T18:00:00Z")
            })?;
            ends.clone()
        }
        None => {
            let d = parse_duration(&a.duration)?;
            (now.replace_nanosecond(0).unwrap_or(now) + d)
                .format(rfc3339)
                .context("formatting the end time")?
        }
    };
    let mut body = json!({ "matchers": matchers, "until": until });
    if let Some(c) = &a.comment {
        body["comment"] = json!(c);
    }
    Ok(body)
}

/// A duration as amtool writes them: whole numbers with units, `90m`, `2h`, `1h30m`, `1d`,
/// `1w` (`s` too).
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let bad = || {
        anyhow::anyhow!(
            "--duration `{text}` is not a duration: write numbers with units, e.g. 90m, 2h, 1h30m, 1d, 1w"
        )
    };
    let mut rest = text.trim();
    let mut secs: u64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let per = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        secs = n
            .checked_mul(per)
            .and_then(|s| secs.checked_add(s))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    if secs == 0 {
        bail!("--duration `{text}` must be longer than zero");
    }
    Ok(Duration::from_secs(secs))
}

fn silence_row(s: &Value) -> Vec<String> {
    vec![
        text(&s["id"]),
        matchers_text(&s["matchers"]),
        text(&s["until"]),
        if s["active"] == true {
            "active"
        } else {
            "expired"
        }
        .into(),
        text(&s["comment"]),
    ]
}

/// A silence's matchers in amtool's text form, whichever shape the gateway answered: the
/// object (`{"country": "PRK"}`) or a list of Alertmanager objects.
fn matchers_text(m: &Value) -> String {
    let quoted = |v: &Value| Value::String(text(v)).to_string();
    match m {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", quoted(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let op = match (i["isRegex"] == true, i["isEqual"] != false) {
                    (false, true) => "=",
                    (false, false) => "!=",
                    (true, true) => "=~",
                    (true, false) => "!~",
                };
                format!("{}{op}{}", text(&i["name"]), quoted(&i["value"]))
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => text(other),
    }
}

/// An id as one path segment: anything but unreserved characters percent-encoded, so an id
/// cannot reach another route.
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn durations_read_as_amtool_writes_them() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "2", "h", "2x", "0h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_silence_is_sent_with_checked_matchers_and_its_end() {
        let now = time::macros::datetime!(2026-01-01 10:00:00.5 UTC);
        let args = SilenceAddArgs {
            client: ClientFlags {
                gateway: "http://127.0.0.1:8080".into(),
                output: None,
                timeout: 30,
                page_size: 1000,
            },
            matchers: vec!["country=PRK".into(), "category=~\"study|work\"".into()],
            duration: "2h".into(),
            ends: None,
            comment: Some("known".into()),
        };
        let body = silence_body(&args, now).unwrap();
        assert_eq!(
            body,
            json!({
                "matchers": ["country=\"PRK\"", "category=~\"study|work\""],
                "until": "2026-01-01T12:00:00Z",
                "comment": "known",
            })
        );
        let bad = SilenceAddArgs {
            matchers: vec!["colour=red".into()],
            ..args
        };
        let e = silence_body(&bad, now).unwrap_err().to_string();
        assert!(e.contains("`colour` is not a matcher name"), "{e}");
    }

    fn add_args(args: &[&str]) -> SubscriptionAddArgs {
        let cli = crate::Cli::try_parse_from(
            ["borderwatch", "subscriptions", "add"]
                .iter()
                .chain(args)
                .copied(),
        )
        .unwrap();
        match cli.command {
            crate::Command::Subscriptions(SubscriptionsArgs {
                action: SubscriptionsAction::Add(a),
            }) => *a,
            other => panic!("not subscriptions add: {other:?}"),
        }
    }

    #[test]
    fn a_subscription_is_sent_with_checked_matchers_and_its_kinds() {
        let a = add_args(&[
            "--url",
            "https://hooks.example.org/bw",
            "--matcher",
            "country=~\"PRK|CHN\"",
            "--matcher",
            "severity!=low",
            "--kind",
            "surge,revision",
            "--kind",
            "missing",
        ]);
        let target = subscription_target(&a).unwrap();
        let body = subscription_body(&a, &target, Some("s")).unwrap();
        assert_eq!(
            body["matchers"],
            json!(["country=~\"PRK|CHN\"", "severity!=\"low\""])
        );
        assert_eq!(body["kinds"], json!(["surge", "revision", "missing"]));
        assert_eq!(
            body["webhook"],
            json!({"url": "https://hooks.example.org/bw", "secret": "s"})
        );
        assert!(body.get("format").is_none(), "left to the gateway: {body}");

        let plain = add_args(&["--url", "https://hooks.example.org/bw"]);
        let body = subscription_body(&plain, &subscription_target(&plain).unwrap(), None).unwrap();
        assert!(
            body.get("kinds").is_none() && body.get("matchers").is_none(),
            "{body}"
        );

        let bad = add_args(&["--url", "https://h.example.org/", "--matcher", "colour=red"]);
        let e = subscription_body(&bad, &subscription_target(&bad).unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`colour` is not a matcher name"), "{e}");
        // A comma inside a regex stays in its matcher.
        let comma = add_args(&[
            "--url",
            "https://h.example.org/",
            "--matcher",
            "category=~\"a,b\"",
        ]);
        assert_eq!(comma.matcher, ["category=~\"a,b\""]);
    }

    #[test]
    fn an_email_subscription_is_a_mailto_target_with_format_email_and_no_secret() {
        let a = add_args(&[
            "--email",
            "ops@example.org,desk@example.org",
            "--email",
            "x@example.org",
        ]);
        let target = subscription_target(&a).unwrap();
        assert_eq!(
            target,
            Target::Email("mailto:ops@example.org,desk@example.org,x@example.org".into())
        );
        let body = subscription_body(&a, &target, None).unwrap();
        assert_eq!(body["format"], "email");
        assert_eq!(
            body["webhook"],
            json!({"url": "mailto:ops@example.org,desk@example.org,x@example.org"})
        );
        let bad = add_args(&["--email", "ops@example.org?cc=x@example.org"]);
        let e = subscription_target(&bad).unwrap_err().to_string();
        assert!(e.starts_with("--email "), "{e}");
        // One target or the other, and a format only for a webhook.
        for args in [
            &["subscriptions", "add"][..],
            &[
                "subscriptions",
                "add",
                "--url",
                "https://h.example.org/",
                "--email",
                "a@example.org",
            ],
            &[
                "subscriptions",
                "add",
                "--email",
                "a@example.org",
                "--format",
                "slack",
            ],
        ] {
            let args = std::iter::once("borderwatch").chain(args.iter().copied());
            assert!(crate::Cli::try_parse_from(args).is_err());
        }
    }

    /// The exemption [`takes_no_variable`] grants is what the flags are: no per-call flag
    /// has a variable (one would outlive the call it was set for), every connection flag has.
    #[test]
    fn per_call_flags_have_no_variable_and_connection_flags_have() {
        fn walk(cmd: &clap::Command, path: &str, seen: &mut usize) {
            for arg in cmd.get_arguments().filter(|a| !a.is_positional()) {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if takes_no_variable(path, id) {
                    *seen += 1;
                    assert!(arg.get_env().is_none(), "{path} --{id} has a variable");
                } else if COMMANDS
                    .iter()
                    .any(|c| path.split_whitespace().nth(1) == Some(c))
                {
                    assert!(arg.get_env().is_some(), "{path} --{id} has none");
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), seen);
            }
        }
        use clap::CommandFactory;
        let mut seen = 0;
        walk(&crate::Cli::command(), "borderwatch", &mut seen);
        assert!(seen > 20, "only {seen} per-call flags found");
    }

    #[test]
    fn both_shapes_of_matchers_read_back_as_text() {
        assert_eq!(
            matchers_text(&json!({"country": "PRK", "category": "study"})),
            "category=\"study\" country=\"PRK\""
        );
        assert_eq!(
            matchers_text(&json!([
                {"name": "category", "value": "study|work", "isRegex": true, "isEqual": true},
                {"name": "severity", "value": "low", "isRegex": false, "isEqual": false},
            ])),
            "category=~\"study|work\" severity!=\"low\""
        );
    }

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(segment("sub-abc_1"), "sub-abc_1");
        assert_eq!(segment("../x?y"), "..%2Fx%3Fy");
    }
}
