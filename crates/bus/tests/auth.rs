//! NATS with users and passwords, as the deployment's accounts configure it: the
//! credentials in the `--nats` URLs authenticate, and the password never shows in an error.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use borderwatch_bus::{BusError, NatsBus, names};

/// A nats-server with JetStream that requires `user`/`pass`, killed on drop (its store
/// directory with it).
struct AuthServer {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl AuthServer {
    fn start(user: &str, pass: &str) -> AuthServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let store = tempfile::tempdir().expect("store dir");
        let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["--user", user, "--pass", pass, "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        AuthServer {
            child,
            port,
            _store: store,
        }
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn credentials_in_the_server_urls_authenticate_and_stay_secret() {
    let server = AuthServer::start("borderwatch", "s3cret-pw");
    let port = server.port;

    let bus = NatsBus::connect(
        &format!("nats://borderwatch:s3cret-pw@127.0.0.1:{port}"),
        "auth-test",
    )
    .await
    .expect("the URL's user and password are accepted");
    names::ensure_all(&bus, 1).await.expect("JetStream usable");
    assert!(format!("{bus:?}").contains("borderwatch:***@"), "{bus:?}");
    assert!(!format!("{bus:?}").contains("s3cret-pw"));

    let err = NatsBus::connect(
        &format!("nats://borderwatch:wrong-pw@127.0.0.1:{port}"),
        "auth-test",
    )
    .await
    .expect_err("a wrong password is refused");
    assert!(matches!(err, BusError::Connect { .. }), "{err:?}");
    assert!(!err.to_string().contains("wrong-pw"), "{err}");

    let err = NatsBus::connect(&format!("nats://127.0.0.1:{port}"), "auth-test")
        .await
        .expect_err("no credentials are refused");
    assert!(matches!(err, BusError::Connect { .. }), "{err:?}");
}
