//! `borderwatch import FILE`: streams a file to a gateway and sums up the release.
//!
//! The file is sent in chunks as it is read (never held in memory whole), with its length
//! up front so an oversized file is refused before it is sent. On a terminal, an upload that
//! takes more than a moment shows a progress bar: bytes sent, then waiting for ingest.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use borderwatch_model::Release;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ImportArgs;

/// How long an import runs before its progress bar appears.
const SHOW_AFTER: Duration = Duration::from_millis(700);

/// Rejected rows listed in the summary; the rest are counted.
pub(crate) const REJECTED_SHOWN: usize = 5;

/// Bytes read from the file per chunk sent.
const CHUNK: usize = 256 * 1024;

pub(crate) async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    let size = file
        .metadata()
        .await
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let url = ingest_url(&args);

    let bar = Progress::start(size);
    let sent = bar.bar.clone();
    let body = tokio_util::io::ReaderStream::with_capacity(file, CHUNK).map(move |chunk| {
        if let Ok(c) = &chunk {
            sent.inc(c.len() as u64);
            if sent.position() >= size {
                sent.set_style(waiting_style());
                sent.set_message("sent; waiting for ingest to store the release");
            }
        }
        chunk
    });
    let mut req = reqwest::Client::new()
        .post(&url)
        .header(reqwest::header::CONTENT_LENGTH, size)
        // An explicit file type: a gateway without an API token refuses uploads typed as
        // text or forms (or not at all), which any web page could send.
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body));
    if let Some(t) = &args.api_token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await;
    bar.finish();
    let resp = resp.with_context(|| format!("sending {} to {url}", args.file.display()))?;
    let status = resp.status();
    let text = resp.text().await.context("reading the gateway's answer")?;
    let body: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "the gateway answered {status} with a body that is not JSON: {}",
            text.chars().take(200).collect::<String>()
        )
    })?;
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        bail!(
            "{} refused by the gateway ({status}): {msg}",
            args.file.display()
        );
    }
    let release: Release = serde_json::from_value(body)?;
    print!("{}", summary(&args.file, &release));
    Ok(())
}

fn ingest_url(args: &ImportArgs) -> String {
    let mut url = format!("{}/v1/ingest", args.gateway.trim_end_matches('/'));
    let mut params = Vec::new();
    if let Some(f) = &args.format {
        params.push(format!("format={}", encode(f)));
    }
    if let Some(s) = &args.source {
        params.push(format!("source={}", encode(s)));
    }
    if !params.is_empty() {
        url = format!("{url}?{}", params.join("&"));
    }
    url
}

/// Percent-encodes a query value (names are short: no need for a crate).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The end-of-import report: the release, its counts and the first rejected rows.
pub(crate) fn summary(file: &Path, release: &Release) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: release {} — {} rows accepted, {} rejected, {} new observations{}",
        file.display(),
        release.id,
        release.accepted,
        rejected_total(release),
        release.new_observations,
        if release.duplicate {
            " (the same file was ingested before: nothing new was stored)"
        } else {
            ""
        }
    );
    let periods = match (&release.first_period, &release.last_period) {
        (Some(a), Some(b)) if a == b => format!(", period {a}"),
        (Some(a), Some(b)) => format!(", periods {a} to {b}"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "  source {}, format {}, {} bytes{periods}",
        release.source, release.format, release.bytes
    );
    if release.revisions > 0 {
        let _ = writeln!(
            out,
            "  {} figures of known periods revised (announced as revisions, never as surges)",
            release.revisions
        );
    }
    for m in &release.missing {
        let _ = writeln!(
            out,
            "  category `{}` missing for {} countries (last published for {}): announced, not read as zero",
            m.category,
            m.countries.len(),
            m.last_period
        );
    }
    if !release.rejected.is_empty() {
        let shown = release.rejected.len().min(REJECTED_SHOWN);
        let _ = writeln!(
            out,
            "  rejected rows (first {shown} of {}):",
            rejected_total(release)
        );
        for r in release.rejected.iter().take(REJECTED_SHOWN) {
            let column = if r.column.is_empty() {
                "(whole row)"
            } else {
                r.column.as_str()
            };
            let _ = writeln!(
                out,
                "    row {} column {column} value {:?}: {}",
                r.row, r.value, r.reason
            );
        }
        if rejected_total(release) > REJECTED_SHOWN as u64 {
            let _ = writeln!(
                out,
                "    … and {} more rejected rows (GET the release or fix these and send again)",
                rejected_total(release) - REJECTED_SHOWN as u64
            );
        }
    }
    out
}

/// Rows rejected in all: an answer lists them all, a stored record only the first.
fn rejected_total(release: &Release) -> u64 {
    release.rejected_total.max(release.rejected.len() as u64)
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} sending [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn waiting_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A progress bar that stays hidden unless stderr is a terminal and the import takes
/// longer than [`SHOW_AFTER`].
struct Progress {
    bar: ProgressBar,
    reveal: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(size: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::hidden());
        bar.set_style(bytes_style());
        let shown = bar.clone();
        let terminal = std::io::stderr().is_terminal();
        let reveal = tokio::spawn(async move {
            if !terminal {
                return;
            }
            tokio::time::sleep(SHOW_AFTER).await;
            shown.set_draw_target(ProgressDrawTarget::stderr());
            shown.enable_steady_tick(Duration::from_millis(120));
        });
        Progress { bar, reveal }
    }

    fn finish(self) {
        self.reveal.abort();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::{Period, RejectedRow};

    fn release(rejected: usize, duplicate: bool) -> Release {
        Release {
            id: "rel-0123456789abcdef".into(),
            source: "fsb".into(),
            format: "generic".into(),
            content_sha256: "00".into(),
            bytes: 1234,
            accepted: 40,
            rejected: (0..rejected as u64)
                .map(|i| RejectedRow {
                    row: i + 2,
                    column: if i == 0 {
                        String::new()
                    } else {
                        "country".into()
                    },
                    value: format!("v{i}"),
                    reason: "not a known country".into(),
                })
                .collect(),
            new_observations: if duplicate { 0 } else { 38 },
            first_period: Some(Period::Quarter(2015, 1)),
            last_period: Some(Period::Quarter(2024, 4)),
            duplicate,
            analyses: Vec::new(),
            received_at: "2026-11-28T00:00:00Z".into(),
            rejected_total: rejected as u64,
            received_at_ms: 0,
            raw: None,
            submitted_source: None,
            revisions: 0,
            missing: Vec::new(),
        }
    }

    #[test]
    fn summary_lists_counts_and_the_first_rejected_rows() {
        let s = summary(Path::new("up.csv"), &release(7, false));
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "up.csv: release rel-0123456789abcdef — 40 rows accepted, 7 rejected, 38 new observations"
        );
        assert_eq!(
            lines[1],
            "  source fsb, format generic, 1234 bytes, periods 2015-Q1 to 2024-Q4"
        );
        assert_eq!(lines[2], "  rejected rows (first 5 of 7):");
        assert_eq!(
            lines[3],
            "    row 2 column (whole row) value \"v0\": not a known country"
        );
        assert_eq!(
            lines[4],
            "    row 3 column country value \"v1\": not a known country"
        );
        assert!(lines[8].contains("… and 2 more rejected rows"), "{s}");
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn summary_says_when_the_file_came_before() {
        let s = summary(Path::new("up.csv"), &release(0, true));
        assert!(
            s.contains("0 new observations (the same file was ingested before"),
            "{s}"
        );
        assert!(!s.contains("rejected rows"), "{s}");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("fsb"), "fsb");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
