//! nats-server's memory and disk per stored figure, in the layout before (one subject per
//! figure, `bw.obs.<source>.<country>.<category>.<period>`, one message each, as ingest
//! published them) and in the series layout (`borderwatch_bus::obs`: one subject per
//! series, one message per release and series), side by side in one run. nats-server keeps
//! every subject's state in memory, so the layout sets what a stored figure costs.
//!
//! Each case stores the same `BENCH_SERIES` × `BENCH_PERIODS` figures (default 10,000 ×
//! 100 = 1,000,000) in the `BW_OBS` stream (borderwatch's own configuration,
//! `names::streams`) of a nats-server of its own, and prints the server's resident memory
//! (VmRSS) growth per figure (right after publishing, 30 s later, and 30 s after a graceful
//! restart on the same store, against the empty server: what it keeps for the stored
//! figures without the publishing's buffers and caches) and the stream's bytes (as JetStream counts them: payload,
//! subject, headers and its per-message overhead) and the store directory's size per figure.
//! Cases: `per-figure` (the layout before); `series, 1 release` (every series brought whole
//! by one release); `series, 10 releases` (each series brought by 10 releases of a tenth of
//! its periods: 10 messages a series, as a series grows release by release); `grown, N
//! releases` (each series grown one period per release: one message per figure) and the
//! same `compacted above K` (after each release in which the series hold more than K
//! messages, the source compacted with `obs::compact_source` over the NATS transport, as
//! ingest does after a release's markers; `BENCH_COMPACT_ABOVE`, default 8, may list several
//! K). `profile` times a compaction step by step as it was done series by series before;
//! `replace` compares ways of storing snapshots in place of a source's messages (rollups,
//! one purge of the source, deletes by sequence).
//!
//! Run: `cargo bench -p borderwatch-bus --bench subjects` (needs `nats-server` on PATH or in
//! NATS_SERVER_BIN); `BENCH_CASES` (e.g. `1,grown,compacted`) picks cases by name;
//! `BENCH_SETTLE_SECS` sets the wait after the restart (default 30). Results
//! are kept in BENCHMARKS.md.

use std::path::Path;
use std::time::Instant;

use async_nats::jetstream;
use borderwatch_bus::obs::{self, Series};
use borderwatch_bus::{NatsBus, names};
use borderwatch_test_support::NatsServer;
use borderwatch_test_support::measure::{dir_bytes as du, rss};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy)]
enum Layout {
    PerFigure,
    Series {
        releases: usize,
    },
    /// One period per release; with `Some(k)`, series holding more than k messages are
    /// compacted after each release.
    Grown {
        compact_above: Option<u64>,
    },
}

/// The series' names and periods: shaped like borderwatch's (200 countries, categories,
/// quarters from 1900).
fn series(i: usize) -> Series {
    Series::new(
        "bench",
        &format!("C{:03}", i % 200),
        &format!("k{}", i / 200),
    )
}

fn period(p: usize) -> String {
    format!("{}-Q{}", 1900 + p / 4, p % 4 + 1)
}

/// The messages of one case, in publishing order.
fn messages(layout: Layout, n_series: usize, n_periods: usize) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    match layout {
        Layout::PerFigure => {
            for s in 0..n_series {
                let series = series(s);
                for p in 0..n_periods {
                    let period = period(p);
                    let count = 1000 + (s * 7 + p * 13) % 5000;
                    let subject = names::obs_subject(
                        &series.source,
                        &series.country,
                        &series.category,
                        &period,
                    );
                    // The observation's JSON and message id as ingest published them.
                    let payload = format!(
                        r#"{{"source":"{}","country":"{}","category":"{}","period":"{period}","count":{count},"release_id":"rel-0123456789abcdef"}}"#,
                        series.source, series.country, series.category
                    );
                    let id = format!("{subject}:{count}");
                    out.push((subject, id, payload.into_bytes()));
                }
            }
        }
        Layout::Grown { .. } => {
            return messages(
                Layout::Series {
                    releases: n_periods,
                },
                n_series,
                n_periods,
            );
        }
        Layout::Series { releases } => {
            let per_release = n_periods.div_ceil(releases);
            for r in 0..releases {
                let release = format!("rel-{r:016x}");
                for s in 0..n_series {
                    let series = series(s);
                    let figures: Vec<(String, u64)> = (r * per_release
                        ..((r + 1) * per_release).min(n_periods))
                        .map(|p| (period(p), (1000 + (s * 7 + p * 13) % 5000) as u64))
                        .collect();
                    for msg in obs::series_messages(&series, &release, &figures, true) {
                        out.push((msg.subject, msg.msg_id.unwrap(), msg.payload.to_vec()));
                    }
                }
            }
        }
    }
    out
}

struct Measured {
    figures: usize,
    messages: usize,
    subjects: u64,
    rss_growth: f64,
    settled_growth: f64,
    restarted: f64,
    stream_bytes: u64,
    dir_bytes: u64,
    secs: f64,
    /// Each compaction's time.
    compactions: Vec<f64>,
}

async fn measure(layout: Layout, n_series: usize, n_periods: usize) -> Measured {
    let msgs = messages(layout, n_series, n_periods);
    let mut server = NatsServer::start();
    let pid = server.pid().expect("the server runs");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let empty = rss(pid);
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = jetstream::new(client);
    let spec = names::streams(1)
        .into_iter()
        .find(|s| s.name == names::OBS_STREAM)
        .expect("BW_OBS");
    let max_per_subject = match layout {
        // The layout before kept 16 versions per figure.
        Layout::PerFigure => 16,
        Layout::Series { .. } | Layout::Grown { .. } => spec.max_msgs_per_subject,
    };
    js.create_stream(jetstream::stream::Config {
        name: spec.name.clone(),
        subjects: spec.subjects.clone(),
        max_messages_per_subject: max_per_subject,
        duplicate_window: spec.duplicate_window,
        storage: jetstream::stream::StorageType::File,
        // As `NatsBus::ensure_stream` makes it: compaction stores snapshots as rollups.
        allow_rollup: true,
        ..Default::default()
    })
    .await
    .expect("stream");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = rss(pid);
    let t = Instant::now();
    // Compaction goes through borderwatch's own transport, as ingest's does.
    let compact_above = match layout {
        Layout::Grown { compact_above } => compact_above,
        _ => None,
    };
    let bus = match compact_above {
        Some(_) => Some(
            NatsBus::connect(&server.url(), "bench-compaction")
                .await
                .expect("connect"),
        ),
        None => None,
    };
    let mut held: u64 = 0;
    let mut compactions: Vec<f64> = Vec::new();
    let mut msgs = msgs.into_iter().peekable();
    let mut in_release = 0;
    while msgs.peek().is_some() {
        // One release (one message per series) at a time, so compaction can follow each.
        let take = if compact_above.is_some() {
            512.min(n_series - in_release)
        } else {
            512
        };
        let mut acks = Vec::with_capacity(512);
        for (subject, id, payload) in msgs.by_ref().take(take) {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            acks.push(
                js.publish_with_headers(subject, headers, payload.into())
                    .await
                    .expect("sent"),
            );
        }
        for ack in acks {
            ack.await.expect("stored");
        }
        in_release += take;
        if let (Some(k), Some(bus)) = (compact_above, bus.as_ref())
            && in_release == n_series
        {
            in_release = 0;
            held += 1;
            if held > k {
                let c = Instant::now();
                obs::compact_source(bus, "bench").await.expect("compacted");
                compactions.push(c.elapsed().as_secs_f64());
                held = 1;
            }
        }
    }
    drop(bus);
    let secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = rss(pid);
    // Again once the server has dropped the caches of the blocks just written.
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    let settled = rss(pid);
    let info = js
        .get_stream(names::OBS_STREAM)
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();
    // What the server keeps for the stored stream: started again on the same store, it
    // holds the stream's state and none of the publishing's buffers.
    // Stopped gracefully (it writes its index, so it starts again without reading every
    // block back into its caches), started again, and left for 30 s.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    while Path::new(&format!("/proc/{pid}/status")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.restart();
    let pid = server.pid().expect("the server runs again");
    let client = async_nats::connect(server.url())
        .await
        .expect("connect again");
    let js = jetstream::new(client);
    loop {
        if let Ok(mut stream) = js.get_stream(names::OBS_STREAM).await
            && let Ok(again) = stream.info().await
            && again.state.messages == info.state.messages
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // `BENCH_SETTLE_SECS` (default 30): past 120 s, the Go runtime's forced collection
    // has run and handed back what loading the store left behind.
    tokio::time::sleep(std::time::Duration::from_secs(
        env("BENCH_SETTLE_SECS", 30) as u64
    ))
    .await;
    let restarted = rss(pid) - empty;
    Measured {
        restarted,
        figures: n_series * n_periods,
        messages: info.state.messages as usize,
        subjects: info.state.subjects_count,
        rss_growth: after - before,
        settled_growth: settled - before,
        stream_bytes: info.state.bytes,
        dir_bytes: du(&server.store_dir()),
        secs,
        compactions,
    }
}

/// Where one compaction's time goes (`BENCH_CASES=profile`): `n_series` series grown one
/// period a release for `held` releases, then compacted step by step as
/// compaction did series by series before rollups (last message of each 1,000 series, their
/// histories, the snapshots published, one purge per series, 64 in flight), each step timed
/// over all the series; then grown `held` releases more and compacted with
/// `obs::compact_source` as it is now, timed whole.
async fn profile(n_series: usize, held: usize) {
    use borderwatch_bus::Transport;
    use futures::StreamExt;
    let server = NatsServer::start();
    let bus = NatsBus::connect(&server.url(), "bench-profile")
        .await
        .expect("connect");
    let spec = names::streams(1)
        .into_iter()
        .find(|s| s.name == names::OBS_STREAM)
        .expect("BW_OBS");
    bus.ensure_stream(&spec).await.expect("stream");
    let all: Vec<Series> = (0..n_series).map(series).collect();
    let grow = |from: usize| {
        let (bus, all) = (&bus, &all);
        async move {
            for r in from..from + held {
                let release = format!("rel-{r:016x}");
                let msgs: Vec<_> = all
                    .iter()
                    .enumerate()
                    .flat_map(|(s, series)| {
                        let figures = vec![(period(r), (1000 + (s * 7 + r * 13) % 5000) as u64)];
                        obs::series_messages(series, &release, &figures, true)
                    })
                    .collect();
                bus.publish_all(msgs).await.expect("published");
            }
        }
    };
    grow(0).await;
    let (mut t_last, mut t_read, mut t_encode, mut t_publish, mut t_purge) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut read, mut purged) = (0usize, 0u64);
    let per_read = env("BENCH_READ_CHUNK", 1_000);
    for chunk in all.chunks(per_read) {
        let subjects: Vec<String> = chunk.iter().map(Series::subject).collect();
        let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let t = Instant::now();
        let last = bus
            .last_per_subject(names::OBS_STREAM, &subjects)
            .await
            .expect("last");
        t_last += t.elapsed().as_secs_f64();
        let end = last.iter().map(|m| m.seq).max().unwrap_or(0);
        let t = Instant::now();
        let mut histories: std::collections::BTreeMap<String, obs::History> = Default::default();
        let mut stored = bus
            .read_subjects(names::OBS_STREAM, &subjects, end)
            .await
            .expect("read");
        while let Some(msg) = stored.next().await {
            let msg = msg.expect("message");
            read += 1;
            obs::add_to_history(histories.entry(msg.subject.clone()).or_default(), &msg);
        }
        t_read += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let snapshots: Vec<_> = chunk
            .iter()
            .map(|s| obs::snapshot_message(s, &histories[&s.subject()]))
            .collect();
        t_encode += t.elapsed().as_secs_f64();
        let t = Instant::now();
        bus.publish_all(snapshots).await.expect("snapshots");
        t_publish += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let counts: Vec<u64> = futures::stream::iter(&last)
            .map(|m| bus.purge_subject_below(names::OBS_STREAM, &m.subject, m.seq + 1))
            .buffer_unordered(64)
            .map(|n| n.expect("purged"))
            .collect()
            .await;
        purged += counts.iter().sum::<u64>();
        t_purge += t.elapsed().as_secs_f64();
    }
    let total = t_last + t_read + t_encode + t_publish + t_purge;
    println!(
        "{n_series} series, {held} messages each, compacted step by step, {per_read} series a read ({read} messages read, {purged} purged):"
    );
    println!();
    println!("| step | time | per series |");
    println!("|---|---|---|");
    for (step, secs) in [
        (
            "last message of each series (last_per_subject, 1,000 a call)",
            t_last,
        ),
        ("histories (read_subjects)", t_read),
        ("snapshots encoded", t_encode),
        ("snapshots published (publish_all)", t_publish),
        ("purges (purge_subject_below, 64 in flight)", t_purge),
        ("all", total),
    ] {
        println!(
            "| {step} | {secs:.2} s | {:.3} ms |",
            secs * 1000.0 / n_series as f64
        );
    }
    grow(held).await;
    let t = Instant::now();
    let done = obs::compact_source(&bus, "bench").await.expect("compacted");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "| obs::compact_source, {held} more messages a series ({} series, {} removed) | {secs:.2} s | {:.3} ms |",
        done.series,
        done.purged,
        secs * 1000.0 / n_series as f64
    );
    println!();
}

/// What replacing a series' messages by one snapshot costs the server, two ways side by
/// side (`BENCH_CASES=replace`): `n_series` series grown one message a release for `held`
/// releases (interleaved, as releases store them), then one snapshot a series stored
/// (`BENCH_REPLACE_WAYS`, default `rollup,source`): `rollup`, each snapshot a rollup
/// (`Nats-Rollup: sub`: the server purges the subject's earlier messages, what compaction
/// did before); `source`, the snapshots published, then one purge of the source's filter
/// below them (what `obs::compact_source` does); `delete`, the snapshots published, then
/// each replaced message deleted by its sequence (256 in flight). Each way on a
/// nats-server of its own; the snapshots are published conditionally
/// (`Nats-Expected-Last-Subject-Sequence`) in all three.
async fn replace(n_series: usize, held: usize) {
    use futures::StreamExt;
    println!(
        "{n_series} series of {held} messages each, one snapshot a series stored in their place:"
    );
    println!();
    println!("| way | snapshots stored | messages removed | time | per series |");
    println!("|---|---|---|---|---|");
    let ways: Vec<&str> = std::env::var("BENCH_REPLACE_WAYS")
        .unwrap_or_else(|_| "rollup,source".into())
        .leak()
        .split(',')
        .collect();
    for way in ways {
        let server = NatsServer::start();
        let client = async_nats::connect(server.url()).await.expect("connect");
        let js = jetstream::new(client);
        js.create_stream(jetstream::stream::Config {
            name: names::OBS_STREAM.to_string(),
            subjects: vec![names::ALL_OBS.to_string()],
            storage: jetstream::stream::StorageType::File,
            allow_rollup: true,
            ..Default::default()
        })
        .await
        .expect("stream");
        let all: Vec<String> = (0..n_series).map(|i| series(i).subject()).collect();
        let mut seqs: Vec<Vec<u64>> = vec![Vec::new(); n_series];
        for r in 0..held {
            for (c, chunk) in all.chunks(512).enumerate() {
                let mut acks = Vec::with_capacity(512);
                for subject in chunk {
                    let payload = format!(
                        r#"{{"r":"rel-{r:016x}","f":[["{}",{}]]}}"#,
                        period(r),
                        1000 + r
                    );
                    acks.push(
                        js.publish(subject.clone(), payload.into())
                            .await
                            .expect("sent"),
                    );
                }
                for (i, ack) in acks.into_iter().enumerate() {
                    seqs[c * 512 + i].push(ack.await.expect("stored").sequence);
                }
            }
        }
        let snapshot = bytes::Bytes::from(vec![b'x'; 40 + 8 * held]);
        let t = Instant::now();
        let rollup = way == "rollup";
        let mut acks = Vec::with_capacity(512);
        for (subject, held) in all.iter().zip(&seqs) {
            let mut headers = async_nats::HeaderMap::new();
            if rollup {
                headers.insert("Nats-Rollup", "sub");
            }
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                held.last().expect("held").to_string().as_str(),
            );
            acks.push(
                js.publish_with_headers(subject.clone(), headers, snapshot.clone())
                    .await
                    .expect("sent"),
            );
            if acks.len() == 512 {
                for ack in acks.drain(..) {
                    ack.await.expect("stored");
                }
            }
        }
        for ack in acks {
            ack.await.expect("stored");
        }
        let mut removed = 0u64;
        if way == "source" {
            // One purge of the source's series below the first snapshot.
            let first = seqs.iter().flatten().max().copied().unwrap_or(0) + 1;
            let stream = js
                .get_stream_no_info(names::OBS_STREAM)
                .await
                .expect("stream");
            removed = stream
                .purge()
                .filter(names::obs_series_of_source("bench"))
                .sequence(first)
                .await
                .expect("purged")
                .purged;
        } else if way == "delete" {
            let stream = js
                .get_stream_no_info(names::OBS_STREAM)
                .await
                .expect("stream");
            let stream = &stream;
            removed = futures::stream::iter(seqs.iter().flatten().copied())
                .map(|seq| async move { stream.delete_message(seq).await.expect("deleted") })
                .buffer_unordered(256)
                .filter(|deleted| futures::future::ready(*deleted))
                .count()
                .await as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        let mut stream = js.get_stream(names::OBS_STREAM).await.expect("stream");
        let messages = stream.info().await.expect("info").state.messages;
        if rollup {
            removed = (n_series * held) as u64 + n_series as u64 - messages;
        }
        println!(
            "| {way} | {n_series} | {removed} (stream holds {messages}) | {secs:.2} s | {:.3} ms |",
            secs * 1000.0 / n_series as f64
        );
    }
    println!();
}

#[tokio::main]
async fn main() {
    let n_series = env("BENCH_SERIES", 10_000);
    let n_periods = env("BENCH_PERIODS", 100);
    if std::env::var("BENCH_CASES").is_ok_and(|c| c.split(',').any(|c| c == "profile")) {
        profile(n_series, env("BENCH_HELD", 9)).await;
    }
    if std::env::var("BENCH_CASES").is_ok_and(|c| c.split(',').any(|c| c == "replace")) {
        replace(n_series, env("BENCH_HELD", 9)).await;
    }
    println!(
        "{n_series} series × {n_periods} periods = {} figures per case; one nats-server per case",
        n_series * n_periods
    );
    println!();
    println!(
        "| layout | messages | subjects | nats-server VmRSS growth | per figure | 30 s later, per figure | after a restart, per figure | stream bytes per figure | store directory per figure | publish time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let releases = 10.min(n_periods).max(1);
    let wanted = std::env::var("BENCH_CASES").unwrap_or_default();
    let wanted: Vec<&str> = wanted.split(',').filter(|c| !c.is_empty()).collect();
    let compact_above: Vec<u64> = std::env::var("BENCH_COMPACT_ABOVE")
        .unwrap_or_else(|_| "8".into())
        .split(',')
        .filter_map(|k| k.trim().parse().ok())
        .collect();
    let mut cases: Vec<(String, &str, Layout)> = vec![
        ("per figure (before)".into(), "before", Layout::PerFigure),
        (
            "series, 1 release".into(),
            "1",
            Layout::Series { releases: 1 },
        ),
        (
            format!("series, {releases} releases"),
            "10",
            Layout::Series { releases },
        ),
        (
            format!("grown, {n_periods} releases of 1 period"),
            "grown",
            Layout::Grown {
                compact_above: None,
            },
        ),
    ];
    for k in compact_above {
        cases.push((
            format!("grown, {n_periods} releases of 1 period, compacted above {k}"),
            "compacted",
            Layout::Grown {
                compact_above: Some(k),
            },
        ));
    }
    for (name, short, layout) in cases {
        if !wanted.is_empty() && !wanted.contains(&short) {
            continue;
        }
        let m = measure(layout, n_series, n_periods).await;
        let f = m.figures as f64;
        println!(
            "| {name} | {} | {} | {:.0} MiB | {:.1} B | {:.1} B | {:.1} B | {:.1} B | {:.1} B | {:.1} s |",
            m.messages,
            m.subjects,
            m.rss_growth / 1048576.0,
            m.rss_growth / f,
            m.settled_growth / f,
            m.restarted / f,
            m.stream_bytes as f64 / f,
            m.dir_bytes as f64 / f,
            m.secs
        );
        if !m.compactions.is_empty() {
            let mut c = m.compactions.clone();
            c.sort_by(f64::total_cmp);
            eprintln!(
                "{name}: {} compactions of {n_series} series, {:.1} s in all, median {:.2} s, \
                 longest {:.2} s",
                c.len(),
                c.iter().sum::<f64>(),
                c[c.len() / 2],
                c[c.len() - 1]
            );
        }
    }
}
