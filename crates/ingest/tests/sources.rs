//! Scheduled sources against a local HTTP server the test starts: a file, then 304 (not
//! modified), then a changed file, then errors; exactly the new releases are ingested, a
//! source that is down does not hold up the others, and a restart does not fetch again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use borderwatch_bus::{Bus, MemoryBus, names};
use borderwatch_ingest::service::Server;
use borderwatch_ingest::sources::{
    Location, PollConfig, Polled, Source, SourceState, http_client, parse_sources, poll_once, run,
};
use tokio_util::sync::CancellationToken;

const V1: &str = "period,country,category,count\n2024-Q1,PRK,study,10\n2024-Q2,PRK,study,20\n";
const V2: &str = "period,country,category,count\n2024-Q1,PRK,study,10\n2024-Q2,PRK,study,20\n\
                  2024-Q3,PRK,study,3765\n";
const OTHER: &str = "period,country,category,count\n2024,CHN,work,5\n";
const DROPPED: &str = "period,country,category,count\n2025,CHN,work,7\n";

/// What the test server has seen and answers.
#[derive(Debug, Default)]
struct Site {
    /// Every request to `/fsb.csv`: the If-None-Match it carried.
    fsb: Vec<Option<String>>,
    /// Times of the requests to `/down.csv`.
    down: Vec<Instant>,
    other: usize,
}

type Shared = Arc<Mutex<Site>>;

/// `/fsb.csv`: V1 (ETag "v1"), then 304 while asked with "v1" until the 3rd request, then
/// V2 (ETag "v2"), then 304 for "v2" twice, then 500 forever.
async fn fsb(State(site): State<Shared>, headers: HeaderMap) -> Response {
    let inm = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let n = {
        let mut s = site.lock().unwrap();
        s.fsb.push(inm.clone());
        s.fsb.len()
    };
    let body = |etag: &'static str, text: &'static str| {
        ([(header::ETAG, etag)], text.to_string()).into_response()
    };
    match (n, inm.as_deref()) {
        (1, _) => body("\"v1\"", V1),
        (2, Some("\"v1\"")) => StatusCode::NOT_MODIFIED.into_response(),
        (3, _) => body("\"v2\"", V2),
        (4 | 5, Some("\"v2\"")) => StatusCode::NOT_MODIFIED.into_response(),
        (4 | 5, _) => body("\"v2\"", V2),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response(),
    }
}

async fn down(State(site): State<Shared>) -> Response {
    site.lock().unwrap().down.push(Instant::now());
    (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response()
}

async fn other(State(site): State<Shared>) -> Response {
    site.lock().unwrap().other += 1;
    // No validators at all: the poller must tell "same bytes" by their hash.
    OTHER.into_response()
}

async fn serve_site() -> (String, Shared) {
    let site: Shared = Arc::default();
    let app = Router::new()
        .route("/fsb.csv", get(fsb))
        .route("/down.csv", get(down))
        .route("/other.csv", get(other))
        .with_state(site.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), site)
}

async fn bus_with_ingest(dir: &std::path::Path, cancel: &CancellationToken) -> Bus {
    let bus: Bus = Arc::new(MemoryBus::open(dir).await.unwrap());
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let server = Server::bind(bus.clone()).await.unwrap();
    tokio::spawn(server.run(cancel.clone()));
    bus
}

fn url_source(name: &str, url: String, every_ms: u64) -> Source {
    Source {
        name: name.into(),
        location: Location::Url(url),
        format: Some("generic".into()),
        every: Duration::from_millis(every_ms),
    }
}

async fn state_of(bus: &Bus, name: &str) -> SourceState {
    let raw = bus
        .kv_get(names::SOURCES_BUCKET, name)
        .await
        .unwrap()
        .expect("the source's state is kept");
    serde_json::from_slice(&raw).unwrap()
}

async fn releases(bus: &Bus) -> usize {
    bus.kv_keys(names::RELEASES_BUCKET).await.unwrap().len()
}

fn test_config() -> PollConfig {
    PollConfig {
        retry_first: Duration::from_millis(40),
        fetch_timeout: Duration::from_secs(5),
        ..PollConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_is_ingested_once_per_new_release_with_conditional_requests() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let bus = bus_with_ingest(dir.path(), &cancel).await;
    let (base, site) = serve_site().await;
    let cfg = test_config();
    let client = http_client(&cfg).unwrap();
    let source = url_source("fsb", format!("{base}/fsb.csv"), 1000);

    // 1: the first release.
    let Polled::Ingested(r) = poll_once(&bus, &client, &source, &cfg).await.unwrap() else {
        panic!("the first fetch is ingested");
    };
    assert_eq!((r.len(), r[0].accepted, r[0].new_observations), (1, 2, 2));
    assert_eq!(r[0].source, "fsb");
    let st = state_of(&bus, "fsb").await;
    assert_eq!(st.etag.as_deref(), Some("\"v1\""));
    assert_eq!(st.last_release.as_deref(), Some(r[0].id.as_str()));
    // 2: not modified.
    let polled = poll_once(&bus, &client, &source, &cfg).await.unwrap();
    assert_eq!(polled, Polled::Unchanged);
    // 3: a changed file: one more release, with only the new figure new.
    let Polled::Ingested(r) = poll_once(&bus, &client, &source, &cfg).await.unwrap() else {
        panic!("the changed file is ingested");
    };
    assert_eq!((r[0].accepted, r[0].new_observations), (3, 1));
    assert_eq!(state_of(&bus, "fsb").await.etag.as_deref(), Some("\"v2\""));
    // 4: a restart: a new client and poller, state from the bucket, so no refetch.
    let client = http_client(&cfg).unwrap();
    assert_eq!(
        poll_once(&bus, &client, &source, &cfg).await.unwrap(),
        Polled::Unchanged
    );
    assert_eq!(releases(&bus).await, 2);
    // 6 and on: the server fails; the error names the URL and status, nothing is stored.
    assert_eq!(
        poll_once(&bus, &client, &source, &cfg).await.unwrap(),
        Polled::Unchanged
    );
    let e = poll_once(&bus, &client, &source, &cfg).await.unwrap_err();
    assert!(e.to_string().contains("/fsb.csv answered 500"), "{e}");
    assert_eq!(releases(&bus).await, 2);
    assert_eq!(state_of(&bus, "fsb").await.etag.as_deref(), Some("\"v2\""));

    let asked: Vec<Option<String>> = site.lock().unwrap().fsb.clone();
    let v1 = Some("\"v1\"".to_string());
    let v2 = Some("\"v2\"".to_string());
    assert_eq!(&asked[..5], &[None, v1.clone(), v1, v2.clone(), v2]);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_bytes_without_validators_are_not_ingested_again() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let bus = bus_with_ingest(dir.path(), &cancel).await;
    let (base, site) = serve_site().await;
    let cfg = test_config();
    let client = http_client(&cfg).unwrap();
    let source = url_source("other", format!("{base}/other.csv"), 1000);
    assert!(matches!(
        poll_once(&bus, &client, &source, &cfg).await.unwrap(),
        Polled::Ingested(_)
    ));
    for _ in 0..3 {
        assert_eq!(
            poll_once(&bus, &client, &source, &cfg).await.unwrap(),
            Polled::Unchanged
        );
    }
    assert_eq!(site.lock().unwrap().other, 4);
    assert_eq!(releases(&bus).await, 1);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_source_backs_off_and_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let bus = bus_with_ingest(dir.path(), &cancel).await;
    let (base, site) = serve_site().await;
    let drop_dir = tempfile::tempdir().unwrap();
    std::fs::write(drop_dir.path().join("2024.csv"), OTHER).unwrap();
    let sources = parse_sources(&format!(
        r#"
        [[source]]
        name = "down"
        url = "{base}/down.csv"
        every = "2s"

        [[source]]
        name = "fsb"
        url = "{base}/fsb.csv"
        format = "generic"
        every = "60ms"

        [[source]]
        name = "drop"
        dir = "{}"
        every = "60ms"
        "#,
        drop_dir.path().display()
    ))
    .unwrap();
    let poller = tokio::spawn(run(bus.clone(), sources, test_config(), cancel.clone()));

    // fsb goes through its whole script (v1, 304, v2, 304, 304, 500s) meanwhile.
    let deadline = Instant::now() + Duration::from_secs(20);
    while site.lock().unwrap().fsb.len() < 7 {
        assert!(Instant::now() < deadline, "fsb was not polled on schedule");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new file dropped into the directory is picked up; the old one is not sent again.
    std::fs::write(drop_dir.path().join("2025.csv"), DROPPED).unwrap();
    std::fs::write(drop_dir.path().join("2026.csv.part"), "half written").unwrap();
    while state_of(&bus, "drop").await.files.len() < 2 {
        assert!(Instant::now() < deadline, "the new file was not picked up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    poller.await.unwrap();

    // fsb: v1 and v2; drop: 2024.csv and 2025.csv -- four releases, nothing from the source
    // that is down.
    let mut keys = bus.kv_keys(names::RELEASES_BUCKET).await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 4, "{keys:?}");
    let drop = state_of(&bus, "drop").await;
    assert_eq!(
        drop.files.keys().collect::<Vec<_>>(),
        vec!["2024.csv", "2025.csv"]
    );
    assert!(
        bus.kv_get(names::SOURCES_BUCKET, "down")
            .await
            .unwrap()
            .is_none()
    );
    // The down source was retried, each wait at least as long as the one before.
    let times = site.lock().unwrap().down.clone();
    assert!(times.len() >= 3, "retried {} times", times.len());
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2)
            .all(|g| g[1] + Duration::from_millis(15) >= g[0]),
        "{gaps:?}"
    );
    assert!(gaps[gaps.len() - 1] > gaps[0], "{gaps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_file_is_remembered_and_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let bus = bus_with_ingest(dir.path(), &cancel).await;
    let drop_dir = tempfile::tempdir().unwrap();
    std::fs::write(drop_dir.path().join("sheet.xlsx"), b"PK\x03\x04 not csv").unwrap();
    let source = Source {
        name: "drop".into(),
        location: Location::Dir(drop_dir.path().to_path_buf()),
        format: Some("generic".into()),
        every: Duration::from_secs(1),
    };
    let cfg = test_config();
    let client = http_client(&cfg).unwrap();
    let Polled::Refused(reasons) = poll_once(&bus, &client, &source, &cfg).await.unwrap() else {
        panic!("the spreadsheet is refused");
    };
    assert!(
        reasons[0].starts_with("sheet.xlsx: ") && reasons[0].contains("export it as CSV"),
        "{reasons:?}"
    );
    assert_eq!(
        poll_once(&bus, &client, &source, &cfg).await.unwrap(),
        Polled::Unchanged
    );
    assert_eq!(releases(&bus).await, 0);
    cancel.cancel();
}

/// A generic file of `rows` rows padded to about 230 bytes each by a column ingest ignores.
fn padded_csv(rows: usize) -> String {
    let mut out = String::from("period,country,category,count,note\n");
    let pad = "x".repeat(200);
    for i in 0..rows {
        let month = i / 100;
        out.push_str(&format!(
            "{}-{:02},PRK,c{},{},{pad}\n",
            1900 + month / 12,
            month % 12 + 1,
            i % 100,
            i % 997
        ));
    }
    out
}

/// Serves `text` in 64 KiB pieces without a Content-Length, as a generated export would.
async fn serve_streamed(text: String) -> String {
    let app = Router::new().route(
        "/big.csv",
        get(move || {
            let text = text.clone();
            async move {
                let pieces: Vec<Result<Vec<u8>, std::io::Error>> = text
                    .into_bytes()
                    .chunks(64 * 1024)
                    .map(|c| Ok(c.to_vec()))
                    .collect();
                axum::body::Body::from_stream(futures::stream::iter(pieces))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/big.csv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_file_without_a_length_is_staged_as_it_arrives_and_stopped_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let bus = bus_with_ingest(dir.path(), &cancel).await;
    let rows = 40_000;
    let text = padded_csv(rows);
    assert!(text.len() > 8 << 20, "bigger than what goes in a request");
    let url = serve_streamed(text).await;
    let cfg = test_config();
    let client = http_client(&cfg).unwrap();
    let source = url_source("big", url, 1000);
    let Polled::Ingested(released) = poll_once(&bus, &client, &source, &cfg).await.unwrap() else {
        panic!("the big file is ingested");
    };
    assert_eq!(released[0].accepted, rows as u64);
    // Fetched again, the same bytes (known by the hash taken while staging) are not sent.
    assert_eq!(
        poll_once(&bus, &client, &source, &cfg).await.unwrap(),
        Polled::Unchanged
    );
    let staged = |objects: Vec<borderwatch_bus::ObjectInfo>| {
        objects
            .into_iter()
            .filter(|o| o.name.starts_with("upload-"))
            .count()
    };
    let objects = bus.object_list(names::RAW_OBJECT_STORE).await.unwrap();
    assert_eq!(staged(objects), 0, "no upload is left staged");

    // The same file with a limit below its size, which it does not announce: stopped.
    let small = PollConfig {
        max_bytes: 4 << 20,
        ..test_config()
    };
    let err = poll_once(
        &bus,
        &client,
        &url_source("capped", source_url(&source), 1000),
        &small,
    )
    .await
    .expect_err("over the limit");
    assert!(err.to_string().contains("larger than"), "{err}");
    let objects = bus.object_list(names::RAW_OBJECT_STORE).await.unwrap();
    assert_eq!(staged(objects), 0, "nothing is left staged");
    cancel.cancel();
}

fn source_url(source: &Source) -> String {
    match &source.location {
        Location::Url(url) => url.clone(),
        other => panic!("not a URL: {other:?}"),
    }
}
