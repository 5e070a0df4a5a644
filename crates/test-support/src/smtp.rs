//! A real SMTP server for tests: aiosmtpd (PyPI, pinned in `.ci/run`), started as
//! `python3 -m aiosmtpd` on a loopback port with its `Mailbox` handler, which writes every
//! message it accepts to a Maildir. Messages are read back through Python's own `email`
//! parser, so a test sees the headers and the decoded text and HTML parts as a mail reader
//! would. Killed on drop.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;

/// How long aiosmtpd may take to greet on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The aiosmtpd version `.ci/run` installs.
pub const AIOSMTPD_VERSION: &str = "1.4.6";

/// One running aiosmtpd. Its Maildir and log live as long as it does.
#[derive(Debug)]
pub struct SmtpServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

/// One message the server accepted, as Python's `email` package reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    /// Every header, in order (aiosmtpd adds `X-Peer`, `X-MailFrom` and `X-RcptTo`).
    pub headers: Vec<(String, String)>,
    /// The decoded `text/plain` part ("" if none).
    pub text: String,
    /// The decoded `text/html` part ("" if none).
    pub html: String,
}

impl Mail {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a Maildir's messages (oldest first) as JSON lines.
const READ_MAILDIR: &str = r#"
import email, email.policy, json, os, sys
files = [os.path.join(sys.argv[1], sub, name) for sub in ("new", "cur")
         for name in os.listdir(os.path.join(sys.argv[1], sub))]
for path in sorted(files, key=lambda p: (os.stat(p).st_mtime_ns, p)):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    def part(kind):
        p = msg.get_body(preferencelist=(kind,))
        return p.get_content() if p is not None else ""
    print(json.dumps({"headers": [[k, str(v)] for k, v in msg.items()],
                      "text": part("plain"), "html": part("html")}))
"#;

impl SmtpServer {
    /// Starts aiosmtpd on a free loopback port.
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(crate::nats_server::free_port())
    }

    /// Starts aiosmtpd on `port` of 127.0.0.1 and waits until it greets.
    ///
    /// # Panics
    /// If Python or aiosmtpd is missing (the message says how to install it), or the server
    /// does not greet in time.
    pub fn start_on(port: u16) -> SmtpServer {
        let python = python();
        let dir = tempfile::Builder::new()
            .prefix("bw-smtp-")
            .tempdir()
            .expect("a temporary directory for the SMTP server");
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log"))
            .expect("a log file for aiosmtpd");
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "--nosetuid", "--debug", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--class", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} -m aiosmtpd: {e}", python.display()));
        let mut server = SmtpServer { child, port, dir };
        server.wait_greeting();
        server
    }

    /// Its address, `127.0.0.1:PORT`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL notify takes as `--smtp-url`: `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// What it logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let maildir = self.dir.path().join("maildir");
        if !maildir.join("new").is_dir() {
            return Vec::new();
        }
        let out = Command::new(python())
            .args(["-c", READ_MAILDIR])
            .arg(&maildir)
            .output()
            .expect("running python to read the Maildir");
        assert!(
            out.status.success(),
            "reading the Maildir failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a message as JSON"))
            .collect()
    }

    /// Waits until at least `n` messages arrived, and returns them all.
    ///
    /// # Panics
    /// After `timeout`, with what arrived and the server's log.
    pub async fn wait_messages(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} messages after {timeout:?}: {got:#?}\n{}",
                got.len(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn wait_greeting(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "aiosmtpd exited with {status} before it greeted:\n{}",
                    self.log()
                );
            }
            if self.greets() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd on port {} did not greet after {START_TIMEOUT:?}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether a connection gets the `220` greeting.
    fn greets(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let mut greeting = [0u8; 3];
        conn.read_exact(&mut greeting).is_ok() && &greeting == b"220"
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `AIOSMTPD_PYTHON`, else `python3`; panics, saying how to install it, when that Python
/// has no aiosmtpd.
fn python() -> PathBuf {
    let python = std::env::var_os("AIOSMTPD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let has = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has,
        "aiosmtpd not found for {}: install it with `python3 -m pip install \
         aiosmtpd=={AIOSMTPD_VERSION}` (.ci/run does), or set AIOSMTPD_PYTHON to a Python \
         that has it",
        python.display()
    );
    python
}

/// A loopback port nothing listens on now: for a server started later on it
/// ([`SmtpServer::start_on`]), to test a client that finds it down first.
pub fn free_port() -> u16 {
    crate::nats_server::free_port()
}
