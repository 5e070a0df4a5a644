//! Scheduled sources: URLs and directories that ingest polls on a schedule.
//!
//! A sources file (TOML) lists them; each source is polled by its own task, so a source that
//! is down (or slow) delays nobody else. A URL is fetched with `If-None-Match` /
//! `If-Modified-Since`, and what it answered (ETag, Last-Modified, content hash) is kept in
//! the `bw_sources` bucket, so a restarted ingest does not fetch again what it has. New
//! content goes to ingest through [`borderwatch_ingest_client::submit`], like any upload.
//!
//! ```toml
//! [[source]]
//! name = "fsb"            # the source of rows that name none, and the key of its state
//! url = "https://example.org/fsb/nk.csv"
//! format = "generic"      # optional: detected when left out
//! every = "6h"            # s, m, h or d
//!
//! [[source]]
//! name = "cbp"
//! dir = "/srv/incoming/cbp"   # every file in it, each ingested when new or changed
//! every = "10m"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use borderwatch_bus::{Bus, BusError, names};
use borderwatch_ingest_client::{
    ErrorCode, Prepared, SubmitError, discard, prepare, send_prepared,
};
use borderwatch_model::{Release, tokenize};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What a sources file lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub location: Location,
    /// `None`: detected from the content.
    pub format: Option<String>,
    pub every: Duration,
}

/// Where a source's releases appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Url(String),
    Dir(PathBuf),
}

/// A sources file that cannot be used, with what to change.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("cannot read the sources file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("the sources file is not valid TOML: {0}")]
    Toml(String),
    #[error("source {index} (`{name}`): {reason}")]
    Invalid {
        /// 1-based position in the file.
        index: usize,
        name: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    source: Vec<SourceToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceToml {
    name: String,
    url: Option<String>,
    dir: Option<PathBuf>,
    format: Option<String>,
    every: String,
}

/// Reads a sources file.
pub fn load(path: &Path) -> Result<Vec<Source>, SourcesError> {
    let text = std::fs::read_to_string(path).map_err(|error| SourcesError::Read {
        path: path.display().to_string(),
        error,
    })?;
    parse_sources(&text)
}

/// Reads a sources file's text: every `[[source]]` needs a name, a `url` or a `dir`, and
/// `every`; names are unique.
pub fn parse_sources(text: &str) -> Result<Vec<Source>, SourcesError> {
    let file: FileToml = toml::from_str(text).map_err(|e| SourcesError::Toml(e.to_string()))?;
    let mut out: Vec<Source> = Vec::new();
    for (i, s) in file.source.into_iter().enumerate() {
        let invalid = |reason: String| SourcesError::Invalid {
            index: i + 1,
            name: s.name.clone(),
            reason,
        };
        let name = tokenize(&s.name).filter(|t| *t == s.name).ok_or_else(|| {
            invalid(
                "the name must be lowercase Latin letters, digits, `-` or `_` (at most 64), \
                 e.g. `fsb`"
                    .into(),
            )
        })?;
        if out.iter().any(|o| o.name == name) {
            return Err(invalid("another source has the same name".into()));
        }
        let location = match (s.url.as_deref(), s.dir.as_ref()) {
            (Some(url), None) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid(format!(
                        "`{url}` is not an http:// or https:// URL"
                    )));
                }
                Location::Url(url.to_string())
            }
            (None, Some(dir)) => Location::Dir(dir.clone()),
            _ => return Err(invalid("give exactly one of `url` and `dir`".into())),
        };
        let every = parse_interval(&s.every).map_err(invalid)?;
        if let Some(f) = &s.format {
            crate::formats::by_name(f).map_err(|e| invalid(e.to_string()))?;
        }
        out.push(Source {
            name,
            location,
            format: s.format.clone(),
            every,
        });
    }
    Ok(out)
}

/// An interval like `90s`, `10m`, `6h`, `1d` or `250ms`.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || {
        format!(
            "`every = \"{text}\"` is not an interval: write a whole number and a unit, \
             e.g. \"30s\", \"10m\", \"6h\" or \"1d\""
        )
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
    if ms == 0 {
        return Err(format!("`every = \"{text}\"` must be longer than zero"));
    }
    Ok(Duration::from_millis(ms))
}

/// What the poller remembers of a source between polls and restarts (`bw_sources`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// For a URL: its last ETag and Last-Modified, and the hash of the content they belong to.
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// For a directory: each file seen, by name.
    #[serde(default)]
    pub files: BTreeMap<String, FileState>,
    /// The release the newest content made (or the reason it was refused).
    #[serde(default)]
    pub last_release: Option<String>,
}

/// A file of a directory source as last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    pub sha256: String,
    pub size: u64,
    /// Modification time, ms since the epoch.
    pub modified_ms: u64,
}

/// What one poll of a source did.
#[derive(Debug, Clone, PartialEq)]
pub enum Polled {
    /// Nothing new (a 304, the same bytes again, or no changed file).
    Unchanged,
    /// New content, ingested: one release per new file or fetch.
    Ingested(Vec<Release>),
    /// New content that ingest refused (a bad file): remembered, so it is not sent again
    /// until it changes.
    Refused(Vec<String>),
}

/// Why a poll failed; the source is tried again after a back-off.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("fetching {url}: {error}")]
    Fetch { url: String, error: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("reading {path}: {error}")]
    Dir { path: String, error: std::io::Error },
    #[error("ingest is unavailable: {0}")]
    Bus(#[from] BusError),
    #[error("ingest did not answer properly: {0}")]
    Ingest(String),
}

/// How the poller behaves beyond what the sources file says.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// The first retry after a failure; each further failure doubles it, up to the
    /// source's own interval.
    pub retry_first: Duration,
    /// The longest one HTTP fetch may take.
    pub fetch_timeout: Duration,
    /// The largest file fetched or read; a bigger one is a failure, retried later.
    pub max_bytes: u64,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            retry_first: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(300),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// When to poll again after `failures` failures in a row (0: the regular interval).
pub fn next_delay(every: Duration, failures: u32, cfg: &PollConfig) -> Duration {
    if failures == 0 {
        return every;
    }
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    cfg.retry_first.saturating_mul(factor).min(every)
}

/// Polls every source on its schedule until `cancel` fires: one task per source. Returns
/// only then, also when there is nothing to poll (its caller takes a return for a failure).
pub async fn run(bus: Bus, sources: Vec<Source>, cfg: PollConfig, cancel: CancellationToken) {
    let client = match http_client(&cfg) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "scheduled sources disabled: no HTTP client");
            cancel.cancelled().await;
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let (bus, client, cfg, cancel) = (bus.clone(), client.clone(), cfg.clone(), cancel.clone());
        tasks.spawn(async move { poll_forever(&bus, &client, &source, &cfg, &cancel).await });
    }
    while tasks.join_next().await.is_some() {}
    cancel.cancelled().await;
}

/// The HTTP client the poller uses.
pub fn http_client(cfg: &PollConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(cfg.fetch_timeout)
        .user_agent(concat!("borderwatch/", env!("CARGO_PKG_VERSION")))
        .build()
}

async fn poll_forever(
    bus: &Bus,
    client: &reqwest::Client,
    source: &Source,
    cfg: &PollConfig,
    cancel: &CancellationToken,
) {
    let mut failures = 0u32;
    metrics::gauge!("borderwatch_source_interval_seconds", "source" => source.name.clone())
        .set(source.every.as_secs_f64());
    loop {
        match poll_once(bus, client, source, cfg).await {
            Ok(Polled::Unchanged) => {
                failures = 0;
                fetched(source);
            }
            Ok(Polled::Ingested(releases)) => {
                failures = 0;
                fetched(source);
                for r in releases {
                    info!(source = %source.name, release = %r.id, accepted = r.accepted,
                          rejected = r.rejected.len(), new = r.new_observations,
                          "scheduled source ingested");
                }
            }
            Ok(Polled::Refused(reasons)) => {
                failures = 0;
                for reason in reasons {
                    warn!(source = %source.name, %reason, "scheduled source sent a file ingest refused");
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let retry = next_delay(source.every, failures, cfg);
                warn!(source = %source.name, error = %e, failures,
                      retry_in_ms = retry.as_millis() as u64, "scheduled source failed");
            }
        }
        let wait = next_delay(source.every, failures, cfg);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sets `borderwatch_source_last_success_timestamp_seconds{source}` to now: the source was
/// fetched (or listed) and what it holds is ingested or known. A file ingest refused is not
/// a success: nothing of it gets in, however often it is fetched.
fn fetched(source: &Source) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!(
        "borderwatch_source_last_success_timestamp_seconds",
        "source" => source.name.clone()
    )
    .set(now);
}

async fn load_state(bus: &Bus, name: &str) -> Result<SourceState, BusError> {
    Ok(bus
        .kv_get(names::SOURCES_BUCKET, name)
        .await?
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default())
}

async fn save_state(bus: &Bus, name: &str, state: &SourceState) -> Result<(), BusError> {
    let raw = serde_json::to_vec(state).unwrap_or_default();
    bus.kv_put(names::SOURCES_BUCKET, name, raw.into()).await
}

/// Polls one source once: fetches or lists it, sends what is new to ingest and records
/// what it saw.
pub async fn poll_once(
    bus: &Bus,
    client: &reqwest::Client,
    source: &Source,
    cfg: &PollConfig,
) -> Result<Polled, PollError> {
    let mut state = load_state(bus, &source.name).await?;
    let polled = match &source.location {
        Location::Url(url) => poll_url(bus, client, source, url, cfg, &mut state).await?,
        Location::Dir(dir) => poll_dir(bus, source, dir, cfg, &mut state).await?,
    };
    Ok(polled)
}

/// What sending one piece of content to ingest gave.
enum Sent {
    Release(Box<Release>),
    Refused(String),
}

async fn send(bus: &Bus, source: &Source, upload: Prepared) -> Result<Sent, PollError> {
    let sent = send_prepared(
        bus.as_ref(),
        source.format.clone(),
        Some(source.name.clone()),
        upload,
    )
    .await;
    match sent {
        Ok(release) => Ok(Sent::Release(Box::new(release))),
        Err(SubmitError::Rejected(body))
            if ErrorCode::of(&body) != Some(ErrorCode::Unavailable) =>
        {
            Ok(Sent::Refused(body.error.message))
        }
        Err(SubmitError::Rejected(body)) => Err(PollError::Ingest(body.error.message)),
        Err(SubmitError::Bus(e)) => Err(PollError::Bus(e)),
        Err(
            e @ (SubmitError::BadReply(_) | SubmitError::Read(_) | SubmitError::TooLarge { .. }),
        ) => Err(PollError::Ingest(e.to_string())),
    }
}

async fn poll_url(
    bus: &Bus,
    client: &reqwest::Client,
    source: &Source,
    url: &str,
    cfg: &PollConfig,
    state: &mut SourceState,
) -> Result<Polled, PollError> {
    let fetch_error = |e: reqwest::Error| PollError::Fetch {
        url: url.to_string(),
        error: e.to_string(),
    };
    let mut req = client.get(url);
    if let Some(etag) = &state.etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &state.last_modified {
        req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
    }
    let resp = req.send().await.map_err(fetch_error)?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Polled::Unchanged);
    }
    if !status.is_success() {
        return Err(PollError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let header = |name: reqwest::header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, last_modified) = (
        header(reqwest::header::ETAG),
        header(reqwest::header::LAST_MODIFIED),
    );
    if resp.content_length().is_some_and(|n| n > cfg.max_bytes) {
        return Err(too_big(url, cfg));
    }
    // Read as it arrives: a big file goes to the object store piece by piece (hashed on the
    // way), never whole into memory, and stops at the size limit.
    let body = resp
        .bytes_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let body = tokio_util::io::StreamReader::new(body);
    let upload = match prepare(bus.as_ref(), body, Some(cfg.max_bytes)).await {
        Ok(upload) => upload,
        Err(SubmitError::TooLarge { .. }) => return Err(too_big(url, cfg)),
        Err(SubmitError::Read(error)) => {
            return Err(PollError::Fetch {
                url: url.to_string(),
                error,
            });
        }
        Err(SubmitError::Bus(e)) => return Err(PollError::Bus(e)),
        Err(e) => return Err(PollError::Ingest(e.to_string())),
    };
    let sha = upload.sha256.clone();
    let polled = if state.sha256.as_deref() == Some(sha.as_str()) {
        // The server ignored the conditional request but the content is what we have.
        discard(bus.as_ref(), upload).await;
        Polled::Unchanged
    } else {
        match send(bus, source, upload).await? {
            Sent::Release(r) => {
                state.last_release = Some(r.id.clone());
                Polled::Ingested(vec![*r])
            }
            Sent::Refused(reason) => {
                state.last_release = Some(format!("refused: {reason}"));
                Polled::Refused(vec![reason])
            }
        }
    };
    state.etag = etag;
    state.last_modified = last_modified;
    state.sha256 = Some(sha);
    save_state(bus, &source.name, state).await?;
    Ok(polled)
}

fn too_big(url: &str, cfg: &PollConfig) -> PollError {
    PollError::Fetch {
        url: url.to_string(),
        error: format!("the file is larger than {} bytes", cfg.max_bytes),
    }
}

async fn poll_dir(
    bus: &Bus,
    source: &Source,
    dir: &Path,
    cfg: &PollConfig,
    state: &mut SourceState,
) -> Result<Polled, PollError> {
    let dir_error = |error| PollError::Dir {
        path: dir.display().to_string(),
        error,
    };
    let mut entries = tokio::fs::read_dir(dir).await.map_err(dir_error)?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(dir_error)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden files and files still being written by convention are not releases yet.
        if name.starts_with('.') || name.ends_with(".part") || name.ends_with(".tmp") {
            continue;
        }
        let meta = entry.metadata().await.map_err(dir_error)?;
        if meta.is_file() {
            files.push((name, entry.path(), meta));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut releases, mut refused) = (Vec::new(), Vec::new());
    for (name, path, meta) in files {
        let modified_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        let seen = state.files.get(&name);
        if seen.is_some_and(|f| f.size == meta.len() && f.modified_ms == modified_ms) {
            continue;
        }
        if meta.len() > cfg.max_bytes {
            refused.push(format!(
                "{name}: larger than {} bytes; split it into smaller files",
                cfg.max_bytes
            ));
            continue;
        }
        let file_error = |error| PollError::Dir {
            path: path.display().to_string(),
            error,
        };
        let file = tokio::fs::File::open(&path).await.map_err(file_error)?;
        let upload = match prepare(bus.as_ref(), file, Some(cfg.max_bytes)).await {
            Ok(upload) => upload,
            Err(SubmitError::Read(error)) => {
                return Err(PollError::Dir {
                    path: path.display().to_string(),
                    error: std::io::Error::other(error),
                });
            }
            Err(SubmitError::Bus(e)) => return Err(PollError::Bus(e)),
            Err(e) => return Err(PollError::Ingest(e.to_string())),
        };
        let sha = upload.sha256.clone();
        if seen.is_none_or(|f| f.sha256 != sha) {
            match send(bus, source, upload).await? {
                Sent::Release(r) => {
                    state.last_release = Some(r.id.clone());
                    releases.push(*r);
                }
                Sent::Refused(reason) => refused.push(format!("{name}: {reason}")),
            }
        } else {
            discard(bus.as_ref(), upload).await;
        }
        state.files.insert(
            name,
            FileState {
                sha256: sha,
                size: meta.len(),
                modified_ms,
            },
        );
        // Recorded file by file, so a failure later in the directory does not resend this one.
        save_state(bus, &source.name, state).await?;
    }
    Ok(match (releases.is_empty(), refused.is_empty()) {
        (true, true) => Polled::Unchanged,
        (false, _) => {
            for reason in refused {
                warn!(source = %source.name, %reason, "scheduled source sent a file ingest refused");
            }
            Polled::Ingested(releases)
        }
        (true, false) => Polled::Refused(refused),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_file_reads_urls_directories_formats_and_intervals() {
        let s = parse_sources(
            r#"
            [[source]]
            name = "fsb"
            url = "https://example.org/fsb.csv"
            format = "generic"
            every = "6h"

            [[source]]
            name = "cbp"
            dir = "/srv/cbp"
            every = "90s"
            "#,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].location,
            Location::Url("https://example.org/fsb.csv".into())
        );
        assert_eq!(s[0].every, Duration::from_secs(6 * 3600));
        assert_eq!(s[0].format.as_deref(), Some("generic"));
        assert_eq!(s[1].location, Location::Dir("/srv/cbp".into()));
        assert_eq!(s[1].every, Duration::from_secs(90));
        assert_eq!(s[1].format, None);
    }

    #[test]
    fn bad_sources_say_which_and_why() {
        let cases = [
            (
                "[[source]]\nname = \"a\"\nevery = \"1h\"\n",
                "exactly one of `url` and `dir`",
            ),
            (
                "[[source]]\nname = \"a\"\nurl = \"ftp://x\"\nevery = \"1h\"\n",
                "not an http",
            ),
            (
                "[[source]]\nname = \"a\"\ndir = \"/x\"\nevery = \"soon\"\n",
                "not an interval",
            ),
            (
                "[[source]]\nname = \"A b\"\ndir = \"/x\"\nevery = \"1h\"\n",
                "lowercase",
            ),
            (
                "[[source]]\nname = \"a\"\ndir = \"/x\"\nevery = \"1h\"\nformat = \"pdf\"\n",
                "not a known input format",
            ),
            (
                "[[source]]\nname = \"a\"\ndir = \"/x\"\nevery = \"1h\"\n[[source]]\nname = \"a\"\ndir = \"/y\"\nevery = \"1h\"\n",
                "same name",
            ),
            (
                "[[source]]\nname = \"a\"\ndir = \"/x\"\nevery = \"1h\"\nevry = 3\n",
                "unknown field",
            ),
        ];
        for (text, wanted) in cases {
            let e = parse_sources(text).unwrap_err().to_string();
            assert!(e.contains(wanted), "{text}: {e}");
        }
    }

    #[test]
    fn the_example_sources_file_is_valid() {
        let s = parse_sources(include_str!("../../../deploy/sources.example.toml")).unwrap();
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5").is_err());
        assert!(parse_interval("99999999999999999d").is_err());
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_interval() {
        let cfg = PollConfig {
            retry_first: Duration::from_secs(30),
            ..PollConfig::default()
        };
        let every = Duration::from_secs(600);
        let delays: Vec<u64> = (0..7)
            .map(|f| next_delay(every, f, &cfg).as_secs())
            .collect();
        assert_eq!(delays, vec![600, 30, 60, 120, 240, 480, 600]);
        assert_eq!(next_delay(every, u32::MAX, &cfg).as_secs(), 600);
    }
}
