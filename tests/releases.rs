//! Releases end to end: uploads bigger than a NATS message through the gateway, revisions
//! that are never surges, categories a source stops publishing, and `borderwatch replay`.

use std::process::Command;
use std::time::Duration;

use borderwatch::roles::{Running, UpOptions, start, wait_analyzed};
use borderwatch_bus::{MemoryBus, Transport, names};
use borderwatch_e2e::{built_borderwatch_bin, headline_csv};
use borderwatch_ingest_client::{Submission, submit};
use borderwatch_model::{Period, Release, Revision, SeriesView, SurgeEvent};
use borderwatch_test_support::NatsServer;
use futures::StreamExt;

async fn start_embedded(dir: &std::path::Path) -> Running {
    start(UpOptions::embedded(dir.to_path_buf()))
        .await
        .expect("roles start")
}

async fn ingest(running: &Running, csv: String) -> Release {
    let release = submit(
        running.bus.as_ref(),
        Submission {
            format: Some("generic".into()),
            source: None,
            bytes: csv.into_bytes().into(),
        },
    )
    .await
    .expect("ingested");
    wait_analyzed(&running.bus, &release, Duration::from_secs(120))
        .await
        .expect("analysed");
    release
}

/// Every stored message of `stream` (not followed live).
async fn stored(bus: &dyn Transport, stream: &str) -> Vec<borderwatch_bus::Message> {
    let last = bus.last_seq(stream).await.unwrap();
    let mut out = Vec::new();
    if last == 0 {
        return out;
    }
    let mut all = bus.replay(stream, ">", 1).await.unwrap();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), all.next()).await {
        let msg = msg.unwrap();
        let seq = msg.seq;
        out.push(msg);
        if seq >= last {
            break;
        }
    }
    out
}

async fn surges(bus: &dyn Transport) -> Vec<SurgeEvent> {
    stored(bus, names::SURGE_STREAM)
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect()
}

async fn view(bus: &dyn Transport, category: &str) -> SeriesView {
    let raw = bus
        .kv_get(
            names::SERIES_BUCKET,
            &names::series_key("fsb", "PRK", category),
        )
        .await
        .unwrap()
        .expect("series view");
    SeriesView::from_stored(&raw).unwrap()
}

fn period(s: &str) -> Period {
    s.parse().unwrap()
}

const HEADER: &str = "source,period,country,category,count\n";

#[tokio::test]
async fn revising_an_old_quarter_upward_is_a_revision_never_a_surge() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_embedded(dir.path()).await;
    let first = ingest(&running, headline_csv()).await;
    let before: Vec<String> = surges(running.bus.as_ref())
        .await
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(!before.is_empty(), "the headline history has its surges");

    // 2019-Q1 study revised fiftyfold, plus an ordinary new quarter.
    let old = view(running.bus.as_ref(), "study").await;
    let q = old
        .observations
        .iter()
        .find(|p| p.period == period("2019-Q1"))
        .expect("2019-Q1 is in the history")
        .count;
    let last = old.observations.last().unwrap().count;
    let csv = format!(
        "{HEADER}fsb,2019-Q1,PRK,study,{}\nfsb,2025-Q1,PRK,study,{last}\n",
        q * 50 + 10_000
    );
    let second = ingest(&running, csv).await;
    assert_eq!(second.revisions, 1);

    let revisions = stored(running.bus.as_ref(), names::REVISION_STREAM).await;
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].subject, "bw.revision.fsb.PRK.study");
    let r: Revision = serde_json::from_slice(&revisions[0].payload).unwrap();
    assert_eq!(
        (r.period, r.old_count, r.new_count),
        (period("2019-Q1"), q, q * 50 + 10_000)
    );
    assert_eq!(
        (r.old_release_id, r.release_id),
        (first.id, second.id.clone())
    );

    // No surge for the revised quarter, in this release or ever.
    let after = surges(running.bus.as_ref()).await;
    assert!(
        after.iter().all(|s| s.period != period("2019-Q1")),
        "{:?}",
        after
            .iter()
            .map(|s| format!("{}/{}", s.category, s.period))
            .collect::<Vec<_>>()
    );
    // Analytics uses the revised figure.
    let now = view(running.bus.as_ref(), "study").await;
    let revised = now
        .observations
        .iter()
        .find(|p| p.period == period("2019-Q1"))
        .unwrap();
    assert_eq!(revised.count, q * 50 + 10_000);
    assert_eq!(now.release_id, second.id);
    running.shutdown().await;
}

#[tokio::test]
async fn a_2025_release_without_study_announces_it_missing_and_no_collapse() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_embedded(dir.path()).await;
    ingest(&running, headline_csv()).await;
    let study_before = view(running.bus.as_ref(), "study").await;
    let surges_before = surges(running.bus.as_ref()).await.len();

    // The FSB's 2025 release (the history has 2025-Q1): totals only, study is gone.
    let mut csv = String::from(HEADER);
    for (q, count) in [(2, 7_100), (3, 7_200), (4, 7_050)] {
        csv.push_str(&format!("fsb,2025-Q{q},PRK,total,{count}\n"));
    }
    let release = ingest(&running, csv).await;
    assert_eq!(release.missing.len(), 1, "{:?}", release.missing);
    let missing = &release.missing[0];
    assert_eq!(missing.category, "study");
    assert_eq!(
        missing
            .countries
            .iter()
            .map(|c| c.code())
            .collect::<Vec<_>>(),
        vec!["PRK"]
    );
    assert_eq!(
        missing.last_period,
        study_before.observations.last().unwrap().period
    );
    let events = stored(running.bus.as_ref(), names::MISSING_STREAM).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject, "bw.missing.fsb.study");

    // Analytics reads no zero: the study series is as it was (its 2025 year still only
    // 2025-Q1, incomplete), and nothing was announced about study.
    let study = view(running.bus.as_ref(), "study").await;
    assert_eq!(study.observations, study_before.observations);
    assert_eq!(study.yearly, study_before.yearly);
    let y2025 = study.yearly.iter().find(|y| y.year == 2025).unwrap();
    assert!(!y2025.complete);
    assert_eq!(release.revisions, 0);
    let new_surges = &surges(running.bus.as_ref()).await[surges_before..];
    assert!(
        new_surges.iter().all(|s| s.category != "study"),
        "{new_surges:?}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_five_mib_upload_through_the_gateway_over_nats() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = UpOptions::embedded(dir.path().to_path_buf());
    opts.nats = Some(server.url());
    let running = start(opts).await.expect("roles start");
    let base = running.gateway_url().unwrap();

    let source = "a-source-with-a-long-name-that-makes-every-row-of-the-file-wide";
    let mut csv = String::from(HEADER);
    let mut rows = 0u64;
    'fill: for year in 1950..2100 {
        for month in 1..=12 {
            for country in ["PRK", "CHN", "VNM", "KAZ", "UZB", "TJK", "KGZ", "IND"] {
                for category in ["study", "work", "tourism", "private", "business"] {
                    csv.push_str(&format!(
                        "{source},{year}-{month:02},{country},{category},{}\n",
                        rows % 977 + 10
                    ));
                    rows += 1;
                    if csv.len() >= 5 << 20 {
                        break 'fill;
                    }
                }
            }
        }
    }
    let size = csv.len() as u64;
    assert!(size >= 5 << 20);
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/ingest?format=generic"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let release: Release = resp.json().await.unwrap();
    assert_eq!(release.accepted, rows);
    assert_eq!(release.bytes, size);
    assert!(release.raw.is_some());
    running.shutdown().await;
}

#[tokio::test]
async fn replay_command_restores_lost_observations_then_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let release = {
        let running = start_embedded(dir.path()).await;
        let release = ingest(&running, headline_csv()).await;
        running.shutdown().await;
        release
    };
    let count = |dir: &std::path::Path| {
        let dir = dir.to_path_buf();
        async move {
            let bus = MemoryBus::open(&dir).await.unwrap();
            names::ensure_all(&bus, 1).await.unwrap();
            // Every stored figure: the series (one subject each) folded.
            borderwatch_bus::obs::figures_of(&bus, names::ALL_OBS_SERIES)
                .await
                .unwrap()
                .values()
                .map(|figures| figures.len() as u64)
                .sum::<u64>()
        }
    };
    assert_eq!(count(dir.path()).await, release.accepted);
    std::fs::remove_file(dir.path().join("streams").join("BW_OBS.log")).unwrap();
    assert_eq!(count(dir.path()).await, 0);

    let replay = || {
        let out = Command::new(built_borderwatch_bin())
            .args(["replay", &release.id, "--data"])
            .arg(dir.path())
            .output()
            .expect("borderwatch replay runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = replay();
    assert!(
        first.contains(&format!("{} restored", release.accepted)),
        "{first}"
    );
    assert_eq!(count(dir.path()).await, release.accepted);
    let second = replay();
    assert!(second.contains(" 0 restored"), "{second}");
    assert_eq!(count(dir.path()).await, release.accepted);

    let unknown = Command::new(built_borderwatch_bin())
        .args(["replay", "rel-0000000000000000", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no release `rel-0000000000000000`"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}
