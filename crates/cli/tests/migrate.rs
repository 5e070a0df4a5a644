//! `borderwatch migrate`: figures stored one subject per figure (the layout before) are
//! moved to one subject per series, on both transports; roles refuse to start before it;
//! and a release analysed on the migrated figures gives what it gives on figures stored in
//! the series layout from the start.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use borderwatch::roles;
use borderwatch_analytics::AnalysisConfig;
use borderwatch_analytics::service::process;
use borderwatch_bus::obs::{self, Series};
use borderwatch_bus::{Bus, MemoryBus, NatsBus, Outgoing, Transport, names};
use borderwatch_model::{Country, Observation, ReleaseMarker, SeriesChange};
use borderwatch_test_support::NatsServer;

const BIN: &str = env!("CARGO_BIN_EXE_borderwatch");

/// The figures of two releases: rel-a brings 24 quarters of two series (the last quarter of
/// PRK/study a surge), rel-b revises two of its figures.
fn versions() -> Vec<Observation> {
    let mut out = Vec::new();
    let first: borderwatch_model::Period = "2019-Q1".parse().unwrap();
    for (country, level) in [("PRK", 100u64), ("CHN", 5000)] {
        for i in 0..24i64 {
            let count = if country == "PRK" && i == 23 {
                3765
            } else {
                level + (i as u64 * 37 % 23) * level / 100
            };
            out.push(obs(country, first.offset(i), count, "rel-a"));
        }
    }
    out.push(obs("PRK", first.offset(3), 90, "rel-b"));
    out.push(obs("CHN", first.offset(5), 4000, "rel-b"));
    out
}

fn obs(country: &str, period: borderwatch_model::Period, count: u64, release: &str) -> Observation {
    Observation {
        source: "fsb".into(),
        country: Country::parse(country).unwrap(),
        category: "study".into(),
        period,
        count,
        release_id: release.into(),
    }
}

/// Stores `versions` as ingest did before: one message per figure, on its own subject.
async fn store_per_figure(bus: &dyn Transport, versions: &[Observation]) {
    let msgs = versions
        .iter()
        .map(|o| {
            Outgoing::new(
                names::obs_subject(
                    &o.source,
                    o.country.code(),
                    &o.category,
                    &o.period.to_string(),
                ),
                serde_json::to_vec(o).unwrap(),
            )
        })
        .collect();
    bus.publish_all(msgs).await.unwrap();
}

/// Stores `versions` in the series layout: per release, one message per series.
async fn store_per_series(bus: &dyn Transport, versions: &[Observation]) {
    let mut by_release: BTreeMap<(String, String), Vec<(String, u64)>> = BTreeMap::new();
    for o in versions {
        by_release
            .entry((o.release_id.clone(), o.country.code().to_string()))
            .or_default()
            .push((o.period.to_string(), o.count));
    }
    for ((release, country), figures) in by_release {
        let series = Series::new("fsb", &country, "study");
        bus.publish_all(obs::series_messages(&series, &release, &figures, true))
            .await
            .unwrap();
    }
}

/// Every current figure: (series subject, period) → (count, release).
async fn current(bus: &dyn Transport) -> BTreeMap<(String, String), (u64, String)> {
    let mut out = BTreeMap::new();
    for (series, figures) in obs::figures_of(bus, names::ALL_OBS_SERIES).await.unwrap() {
        for (period, f) in figures {
            out.insert((series.subject(), period), (f.count, f.release_id));
        }
    }
    out
}

/// What analysing rel-a's marker (every period of both series) finds: series, periods
/// evaluated and the surges' ids.
async fn analysed(bus: &dyn Transport) -> (u64, u64, Vec<String>) {
    let first: borderwatch_model::Period = "2019-Q1".parse().unwrap();
    let periods: Vec<_> = (0..24).map(|i| first.offset(i)).collect();
    let marker = ReleaseMarker {
        release_id: "rel-a".into(),
        source: "fsb".into(),
        part: 0,
        parts: 1,
        changes: ["CHN", "PRK"]
            .iter()
            .map(|c| SeriesChange {
                country: Country::parse(c).unwrap(),
                category: "study".into(),
                periods: periods.clone(),
                revised: Vec::new(),
            })
            .collect(),
        obs_seq: None,
    };
    let done = process(bus, &AnalysisConfig::default(), &marker)
        .await
        .expect("analysed");
    let mut ids: Vec<String> = done.surges.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    (done.series, done.periods_evaluated, ids)
}

fn migrate(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("migrate")
        .args(args)
        .output()
        .expect("borderwatch migrate runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "migrate failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// What the figures are and what the analysis finds with the series layout from the start.
async fn expected() -> (
    BTreeMap<(String, String), (u64, String)>,
    (u64, u64, Vec<String>),
) {
    let bus: Bus = Arc::new(MemoryBus::ephemeral());
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    store_per_series(bus.as_ref(), &versions()).await;
    (current(bus.as_ref()).await, analysed(bus.as_ref()).await)
}

#[tokio::test]
async fn a_data_directory_is_migrated_and_analyses_as_the_series_layout_does() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        store_per_figure(&bus, &versions()).await;
    }
    let refused = roles::connect(None, dir.path(), 1)
        .await
        .expect_err("a role refuses the layout before");
    assert!(
        format!("{refused:#}").contains("borderwatch migrate"),
        "{refused:#}"
    );

    let said = migrate(&["--data", dir.path().to_str().unwrap()]);
    assert!(
        said.contains("50 stored figure versions moved into 4 messages of 2 series"),
        "{said}"
    );
    assert!(
        dir.path()
            .join("streams/BW_OBS.log.before-migrate")
            .exists()
    );
    check_migrated(dir.path(), None).await;
    // Run again: nothing to do.
    assert!(migrate(&["--data", dir.path().to_str().unwrap()]).contains("nothing to migrate"));
    check_migrated(dir.path(), None).await;
}

#[tokio::test]
async fn a_nats_stream_is_migrated_and_analyses_as_the_series_layout_does() {
    let server = NatsServer::start();
    let bus: Bus = Arc::new(NatsBus::connect(&server.url(), "test").await.unwrap());
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    // BW_OBS as it was made before: 16 versions per subject.
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let per_subject = || async {
        let mut stream = js.get_stream(names::OBS_STREAM).await.unwrap();
        stream.info().await.unwrap().config.max_messages_per_subject
    };
    let mut config = js
        .get_stream(names::OBS_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    config.max_messages_per_subject = 16;
    js.update_stream(&config).await.unwrap();
    assert_eq!(per_subject().await, 16);
    store_per_figure(bus.as_ref(), &versions()).await;
    // A release marker analytics has not finished: migrate refuses, and moves nothing.
    bus.publish(Outgoing::new(names::release_subject("fsb"), "{}"))
        .await
        .unwrap();
    let mut deliveries = bus
        .consume(
            names::RELEASE_STREAM,
            names::ANALYTICS_CONSUMER,
            names::ALL_RELEASES,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let marker = futures::StreamExt::next(&mut deliveries)
        .await
        .unwrap()
        .unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--nats", &server.url()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("analytics has 1 release markers left"),
        "{stderr}"
    );
    assert_eq!(per_subject().await, 16, "nothing changed");
    assert!(
        !bus.last_per_subject(names::OBS_STREAM, &[obs::LEGACY_FILTER])
            .await
            .unwrap()
            .is_empty()
    );
    marker.ack().await.unwrap();
    drop(deliveries);
    // The ack lands before the next migrate reads the consumer.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let dir = tempfile::tempdir().unwrap();
    let refused = roles::connect(Some(&server.url()), dir.path(), 1)
        .await
        .expect_err("a role refuses the layout before");
    assert!(
        format!("{refused:#}").contains("borderwatch migrate"),
        "{refused:#}"
    );

    // The role ensured the streams (every message per subject) before refusing: back to the
    // old setting, so that migrate is seen to change it.
    js.update_stream(&config).await.unwrap();
    assert_eq!(per_subject().await, 16);
    let said = migrate(&["--nats", &server.url()]);
    assert!(
        said.contains("50 stored figure versions moved into 4 messages of 2 series"),
        "{said}"
    );
    assert_eq!(per_subject().await, -1, "a series keeps every message");
    // The per-figure subjects are gone from the server.
    assert!(
        bus.last_per_subject(names::OBS_STREAM, &[obs::LEGACY_FILTER])
            .await
            .unwrap()
            .is_empty()
    );
    check_migrated(dir.path(), Some(&server.url())).await;
}

async fn check_migrated(dir: &Path, nats: Option<&str>) {
    let bus = roles::connect(nats, dir, 1)
        .await
        .expect("a role starts on the migrated figures");
    let (figures, analysis) = expected().await;
    assert_eq!(current(bus.as_ref()).await, figures);
    assert_eq!(
        figures[&("bw.obs.fsb.PRK.study".to_string(), "2019-Q4".to_string())],
        (90, "rel-b".to_string())
    );
    let found = analysed(bus.as_ref()).await;
    assert_eq!(found, analysis);
    assert_eq!((found.0, found.1), (2, 48));
    assert!(!found.2.is_empty(), "the surge of 2024-Q4 is found");
}
