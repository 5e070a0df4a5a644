//! A real Alertmanager for tests (Debian's `prometheus-alertmanager`, or `alertmanager` from
//! the Prometheus releases): on a random loopback port, clustering off, with a temporary
//! store and a configuration that routes every alert to one webhook receiver after a
//! second's `group_wait`. Killed on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::nats_server::free_port;

/// How long Alertmanager may take to answer `/-/ready` on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One running Alertmanager. Its store and log live as long as it does.
#[derive(Debug)]
pub struct Alertmanager {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager routing every alert, grouped by `group_by`, to the webhook
    /// `receiver_url` (resolved alerts too), and waits until it is ready.
    ///
    /// # Panics
    /// If the binary cannot be found (the message says how to install it) or started, or is
    /// not ready in time.
    pub fn start(receiver_url: &str, group_by: &[&str]) -> Alertmanager {
        let bin = binary();
        let dir = tempfile::Builder::new()
            .prefix("bw-alertmanager-")
            .tempdir()
            .expect("a temporary directory for Alertmanager");
        let group_by: Vec<String> = group_by.iter().map(|l| format!("{l:?}")).collect();
        let config = format!(
            "route:\n  receiver: hook\n  group_by: [{}]\n  group_wait: 1s\n  group_interval: 1s\n  \
             repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: \
             {receiver_url:?}\n        send_resolved: true\n",
            group_by.join(", ")
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).expect("writing the Alertmanager configuration");
        let log = std::fs::File::create(dir.path().join("alertmanager.log"))
            .expect("a log file for Alertmanager");
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip: it would listen on every interface and look for peers.
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut am = Alertmanager { child, port, dir };
        am.wait_ready();
        am
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Alertmanager exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            if self.ready() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "Alertmanager on port {} not ready after {START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `/-/ready` answers 200.
    fn ready(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        if conn
            .write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut response = String::new();
        let _ = conn.read_to_string(&mut response);
        response
            .lines()
            .next()
            .is_some_and(|status| status.contains(" 200 "))
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ALERTMANAGER_BIN`, else `prometheus-alertmanager` (Debian's name) or `alertmanager` on
/// the PATH.
fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("ALERTMANAGER_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["prometheus-alertmanager", "alertmanager"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "Alertmanager not found: install it with `apt-get install -y \
             prometheus-alertmanager` (Debian, Ubuntu; .ci/run does), or download it from \
             https://github.com/prometheus/alertmanager/releases, or set ALERTMANAGER_BIN to \
             its path"
        )
    })
}
