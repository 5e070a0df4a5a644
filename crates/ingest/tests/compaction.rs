//! Ingest compacts a series once it holds more than `obs::COMPACT_ABOVE` messages (a
//! series grown a period per release): the series keeps few messages, every release's
//! markers still read the series as that release saw it, revisions are kept and
//! announced, and the same bytes twice add nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, MemoryBus, Message, Transport, names, obs};
use borderwatch_ingest::service::{self, Submission};
use borderwatch_model::ReleaseMarker;
use bytes::Bytes;
use futures::StreamExt;

fn submission(rows: &[(String, u64)]) -> Submission {
    let mut out = String::from("source,period,country,category,count\n");
    for (period, count) in rows {
        out.push_str(&format!("fsb,{period},PRK,study,{count}\n"));
    }
    Submission {
        format: Some("generic".into()),
        source: None,
        bytes: Bytes::from(out),
    }
}

fn quarter(i: usize) -> String {
    format!("{}-Q{}", 2000 + i / 4, i % 4 + 1)
}

async fn stored(bus: &dyn Transport, stream: &str, filter: &str) -> Vec<Message> {
    let last = bus.last_seq(stream).await.unwrap();
    let mut out = Vec::new();
    if last == 0 {
        return out;
    }
    let mut all = bus.replay(stream, filter, 1).await.unwrap();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), all.next()).await {
        out.push(msg.unwrap());
    }
    out
}

#[tokio::test]
async fn a_series_grown_release_by_release_is_compacted_and_reads_as_each_release_saw_it() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Bus = {
        let bus = MemoryBus::open(dir.path()).await.unwrap();
        names::ensure_all(&bus, 1).await.unwrap();
        Arc::new(bus)
    };
    let series = obs::Series::new("fsb", "PRK", "study");
    let releases = 2 * obs::COMPACT_ABOVE as usize + 3;
    // What each release saw: period → (count, release id).
    let mut seen: Vec<BTreeMap<String, (u64, String)>> = Vec::new();
    let mut figures: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut last_rows = Vec::new();
    for r in 0..releases {
        // Each release sends the whole series so far (as a statistics office does), one
        // quarter more than the last; release 5 revises quarter 2.
        let rows: Vec<(String, u64)> = (0..=r)
            .map(|q| {
                let count = if q == 2 && r >= 5 {
                    777
                } else {
                    100 + q as u64
                };
                (quarter(q), count)
            })
            .collect();
        let release = service::ingest(bus.as_ref(), submission(&rows))
            .await
            .expect("ingested");
        for (period, count) in &rows {
            if figures.get(period).is_none_or(|(c, _)| c != count) {
                figures.insert(period.clone(), (*count, release.id.clone()));
            }
        }
        seen.push(figures.clone());
        last_rows = rows;
    }
    let messages = stored(bus.as_ref(), names::OBS_STREAM, &series.subject()).await;
    assert!(
        messages.len() as u64 <= obs::COMPACT_ABOVE,
        "{} messages after {releases} releases",
        messages.len()
    );
    let markers: Vec<ReleaseMarker> = stored(bus.as_ref(), names::RELEASE_STREAM, "bw.release.>")
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    assert_eq!(markers.len(), releases);
    for (r, marker) in markers.iter().enumerate() {
        let (got, newer) =
            obs::series_as_of(bus.as_ref(), std::slice::from_ref(&series), marker.obs_seq)
                .await
                .unwrap();
        let got: BTreeMap<String, (u64, String)> = got[&series]
            .iter()
            .map(|(p, f)| (p.clone(), (f.count, f.release_id.clone())))
            .collect();
        assert_eq!(got, seen[r], "release {r} reads as it saw the series");
        assert_eq!(newer.contains(&series), r + 1 < releases, "release {r}");
    }
    // The revision was announced once, and is kept.
    let revisions = stored(bus.as_ref(), names::REVISION_STREAM, ">").await;
    assert_eq!(revisions.len(), 1);
    // The same bytes again add nothing.
    let before = bus.last_seq(names::OBS_STREAM).await.unwrap();
    let again = service::ingest(bus.as_ref(), submission(&last_rows))
        .await
        .expect("the same bytes");
    assert_eq!(again.id, markers.last().unwrap().release_id);
    assert_eq!(bus.last_seq(names::OBS_STREAM).await.unwrap(), before);
    let now = obs::figures_of(bus.as_ref(), names::ALL_OBS_SERIES)
        .await
        .unwrap();
    assert_eq!(now[&series].len(), releases);
}
