//! The configuration file as a user and an operator meet it: `borderwatch config check`, the
//! example in deploy/, `analyze --config`, the analytics role started with a file on a real
//! nats-server, and a variable winning over the file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use borderwatch_ingest_client::{Submission, submit};
use borderwatch_model::Severity;

const BIN: &str = env!("CARGO_BIN_EXE_borderwatch");

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/borderwatch.toml")
}

fn check(file: &Path) -> Output {
    Command::new(BIN)
        .args(["config", "check"])
        .arg(file)
        .env_remove("BORDERWATCH_CONFIG")
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The example checks, and (as its header says) every value it writes is the default: its
/// effective settings are those of an empty file.
#[test]
fn config_check_accepts_the_example_which_writes_the_defaults() {
    let out = check(&example());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    for line in [
        "[analytics]",
        "fdr = 0.05",
        "farrington.quarterly.b = 3",
        "[notify.retry]",
        "max_attempts = 50",
        "[gateway]",
        "rate_limit = 50",
    ] {
        assert!(printed.contains(line), "{line} missing from:\n{printed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = check(&write(dir.path(), "empty.toml", ""));
    assert!(empty.status.success(), "{}", text(&empty.stderr));
    assert_eq!(printed, text(&empty.stdout));
}

#[test]
fn config_check_fails_naming_a_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    for (file, named) in [
        ("[analytics]\nfarrington.bee = 3\n", "farrington.bee"),
        ("[notify]\nconcurrancy = 3\n", "concurrancy"),
        (
            "[gateway]\nmax_json_bytes = 1\nrate_limitt = 3\n",
            "rate_limitt",
        ),
    ] {
        let path = write(dir.path(), "bad.toml", file);
        let out = check(&path);
        assert!(!out.status.success(), "{file} was accepted");
        let err = text(&out.stderr);
        assert!(err.contains(named), "{file}: {err}");
        assert!(err.contains("bad.toml"), "names the file: {err}");
        assert!(out.stdout.is_empty(), "nothing printed on an error");
    }
}

/// The detectors the tests' files keep: the evidence rules and farrington (by default
/// `ears_c2`, `cusum` and `fall` run too, and the demo's headline is critical).
const KEPT: [&str; 4] = [
    "record_high",
    "exceeds_prior_year",
    "year_over_year",
    "farrington",
];

/// `analyze --config` reads `[analytics]`; `--set` wins over it.
#[test]
fn analyze_reads_the_file_and_set_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "nk.csv",
        &borderwatch_ingest::demo::demo_nk_only_csv(),
    );
    let cfg = write(
        dir.path(),
        "bw.toml",
        "[analytics]\ndetectors = [\"record_high\", \"exceeds_prior_year\", \"year_over_year\", \"farrington\"]\n\
         [analytics.alert]\ncritical_score = 100\n",
    );
    let headline = |extra: &[&str]| -> serde_json::Value {
        let out = Command::new(BIN)
            .arg("analyze")
            .arg(&data)
            .arg("--config")
            .arg(&cfg)
            .args(["--output", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let events: Vec<serde_json::Value> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for e in &events {
            for f in e["findings"].as_array().unwrap() {
                let d = f["detector"].as_str().unwrap();
                assert!(KEPT.contains(&d), "the file's detectors only: {e}");
            }
        }
        events
            .into_iter()
            .find(|e| e["category"] == "study" && e["period"] == "2024-Q3")
            .expect("the headline surge")
    };
    // Critical by default (tests/cli.rs); not with the file's critical_score = 100.
    assert_eq!(headline(&[])["severity"], "high");
    assert_eq!(
        headline(&["--set", "alert.critical_score=78"])["severity"],
        "critical"
    );
}

/// Kills the child when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The analytics role started with `--config` on a real nats-server runs the file's
/// detectors and alert thresholds: the demo's headline, critical by default, is announced
/// as high, and no finding comes from a detector the file left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_role_runs_with_its_config_file() {
    let nats = borderwatch_test_support::nats_server::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "bw.toml",
        "[analytics]\ndetectors = \"record_high,exceeds_prior_year,year_over_year,farrington\"\n\
         alert.critical_score = 100\n",
    );
    let log = std::fs::File::create(dir.path().join("analytics.log")).unwrap();
    let _analytics = Killed(
        Command::new(BIN)
            .args(["analytics", "--nats", &nats.url(), "--config"])
            .arg(&cfg)
            .env("BORDERWATCH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let mut opts = borderwatch::UpOptions::embedded(dir.path().join("unused"));
    opts.nats = Some(nats.url());
    opts.roles = vec![borderwatch::roles::Role::Ingest];
    let ingest = borderwatch::start(opts).await.unwrap();
    let release = submit(
        ingest.bus.as_ref(),
        Submission {
            format: Some("generic".into()),
            source: None,
            bytes: borderwatch_ingest::demo::demo_nk_only_csv()
                .into_bytes()
                .into(),
        },
    )
    .await
    .unwrap();
    let analyzed =
        borderwatch::roles::wait_analyzed(&ingest.bus, &release, Duration::from_secs(120)).await;
    let analyzed = analyzed.unwrap_or_else(|e| {
        let log = std::fs::read_to_string(dir.path().join("analytics.log")).unwrap_or_default();
        panic!("{e:#}\nanalytics log:\n{log}")
    });
    ingest.shutdown().await;
    let surges: Vec<_> = analyzed.into_iter().flat_map(|a| a.surges).collect();
    let headline = surges
        .iter()
        .find(|s| s.category == "study" && s.period.to_string() == "2024-Q3")
        .expect("the headline surge");
    assert_eq!(headline.severity, Severity::High);
    for s in &surges {
        assert_ne!(s.severity, Severity::Critical, "{}", s.id);
        for f in &s.findings {
            assert!(
                KEPT.contains(&f.detector.as_str()),
                "{} has a {} finding",
                s.id,
                f.detector
            );
        }
    }
}

/// Waits for a line containing `needle` on the child's stdout; `None` if it exits first
/// or `timeout` passes.
fn wait_for_line(child: &mut Child, needle: &str, timeout: Duration) -> Option<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&needle) {
                let _ = tx.send(line);
                return;
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}

/// A flag's environment variable wins over the file: a file with a zero body limit stops
/// `up`, naming the limit, unless BORDERWATCH_MAX_JSON_BYTES gives one.
#[test]
fn a_variable_given_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "bw.toml", "[gateway]\nmax_json_bytes = 0\n");
    let up = |env: &[(&str, &str)]| {
        Command::new(BIN)
            .args(["up", "--http", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&cfg)
            .env("BORDERWATCH_LOG", "warn")
            .env_remove("BORDERWATCH_MAX_JSON_BYTES")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let refused = up(&[]).wait_with_output().unwrap();
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(err.contains("max-json-bytes must be at least 1"), "{err}");

    let mut child = Killed(up(&[("BORDERWATCH_MAX_JSON_BYTES", "1000")]));
    let line = wait_for_line(&mut child.0, "borderwatch is up", Duration::from_secs(60));
    assert!(line.is_some(), "up did not start with the variable set");
}
