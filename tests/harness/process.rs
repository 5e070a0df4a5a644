//! One role of the `borderwatch` binary as its own OS process, logging JSON to a file that
//! tests read (and that is kept for debugging when a test fails), killed with SIGKILL.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A running `borderwatch <role> --nats URL`.
#[derive(Debug)]
pub struct RoleProcess {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl RoleProcess {
    /// Starts `borderwatch notify --nats <nats>`, logging to `<dir>/<name>.log`.
    pub fn notify(nats: &str, dir: &Path, name: &str) -> RoleProcess {
        RoleProcess::start(&["notify", "--nats", nats], dir, name)
    }

    /// Starts `borderwatch <args…>` with JSON logs in `<dir>/<name>.log` (appended to, so a
    /// restarted process keeps the earlier run's lines above its own).
    pub fn start(args: &[&str], dir: &Path, name: &str) -> RoleProcess {
        RoleProcess::start_with_env(args, &[], dir, name)
    }

    /// As [`RoleProcess::start`], with extra environment variables.
    pub fn start_with_env(
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
        name: &str,
    ) -> RoleProcess {
        let log = dir.join(format!("{name}.log"));
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let child = Command::new(built_borderwatch_bin())
            .args(args)
            .env("BORDERWATCH_LOG_FORMAT", "json")
            .env("BORDERWATCH_LOG", "info")
            // The tests' webhook receivers are on loopback.
            .env("BORDERWATCH_WEBHOOK_ALLOW_PRIVATE", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start borderwatch {args:?}: {e}"));
        RoleProcess {
            name: name.to_string(),
            log,
            child: Some(child),
        }
    }

    /// SIGKILL: no drain, no acknowledgement, as a crash or an OOM kill.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as Kubernetes or Compose stop a container, then waits up to `timeout` for
    /// the process to exit by itself. Returns its exit status, or `None` if it was still
    /// running (it is then killed).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "could not send SIGTERM to {}",
            self.name
        );
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status, or `None`
    /// if it still runs (it is left running).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The log's lines so far, parsed (lines that are not JSON are skipped).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The process id, while it runs (for the benches' CPU and memory readings).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The event ids of the process's `delivered` log lines.
    pub fn delivered_events(&self) -> Vec<String> {
        self.log_lines()
            .iter()
            .filter(|l| l["fields"]["message"] == "delivered")
            .filter_map(|l| l["fields"]["event"].as_str().map(str::to_string))
            .collect()
    }

    /// Waits until the process logged its readiness line for `role` (`ingest`, `analytics`,
    /// `notify`, `gateway`) `times` times (a restarted process appends to the same log), and
    /// returns that line's fields; panics with the log after `timeout`. The readiness line is
    /// the event with the field `ready` set to the role, whatever its message says (see
    /// `borderwatch::roles::start`); the gateway's has `http`, the address it listens on.
    pub async fn wait_ready(
        &self,
        role: &str,
        times: usize,
        timeout: Duration,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ready: Vec<serde_json::Value> = self
                .log_lines()
                .into_iter()
                .filter(|l| l["fields"]["ready"] == role)
                .collect();
            if ready.len() >= times {
                return ready[times - 1]["fields"].clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{} was not ready as {role} ({times} times) within {timeout:?}; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `borderwatch` binary, rebuilt first if its sources changed: `cargo test -p
/// borderwatch-e2e` builds the library the tests link but not the binary they spawn, and a
/// stale binary would test old code. Falls back to whatever is there when cargo is not
/// available. `BENCH_BORDERWATCH_BIN` names another binary to run instead, unbuilt: a bench
/// comparing a build of an earlier commit with this one, run after run.
pub fn built_borderwatch_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("BENCH_BORDERWATCH_BIN") {
        return PathBuf::from(bin);
    }
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<test> (or target/<profile>/<bench>)
        let profile_dir = exe
            .ancestors()
            .find(|p| p.file_name().is_some_and(|n| n != "deps") && p != &exe)
            .expect("profile directory");
        let Some(target_dir) = profile_dir.parent() else {
            return;
        };
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => return,
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "borderwatch",
                "--bin",
                "borderwatch",
            ])
            .args(["--profile", &profile])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("building the borderwatch binary failed ({s})"),
            Err(e) => {
                eprintln!("cannot run cargo to build borderwatch ({e}); using the binary as is")
            }
        }
    });
    crate::borderwatch_bin()
}
