//! borderwatch at scale (issue 16 item 3): a history of `BENCH_FIGURES` figures (default
//! 10,000,000: 100,000 series × 100 quarters, in sources of 10,000 series each, one release
//! per source, as the generic format reads them), then one new quarter for every series.
//!
//! In one run, over a real nats-server on loopback (crates/test-support):
//!
//! 1. **raw**: the same figures published with async-nats straight to JetStream, in the
//!    series layout (`borderwatch_bus::obs::series_messages`, the messages ingest sends, to a
//!    stream `RAW` of the same configuration), 512 in flight; timed is the publish alone;
//! 2. **ingest over NATS**: each source's CSV through `borderwatch_ingest::service::ingest`
//!    (decode, parse, fold the source's series, publish, marker, release record), one
//!    release after another; then nats-server's resident memory and store per figure, after
//!    a graceful restart (what it keeps for the stored figures, none of the publishing's
//!    buffers);
//! 3. **analytics over everything**: the analytics and notify roles start in this process
//!    (`borderwatch::roles::start`, as `borderwatch up --nats` wires them) and work through
//!    the history's release markers; timed from their start to the last analysis record;
//! 4. **one new quarter**: a release per source with one figure per series (1% of the series
//!    jump five-fold, so that there are surges), with a subscription matching everything
//!    whose webhook is a loopback receiver: timed from the first upload to every release
//!    analysed, and to every surge's webhook received; then nats-server's memory and the
//!    stream's bytes per figure again (this is where the cost per message shows: each of
//!    these releases writes one message per series for one figure), and the store directory
//!    by stream and bucket (what each costs on disk per series);
//! 5. **ingest embedded**: the same history into the in-process bus's data directory.
//!
//! Peak memory of this process (VmHWM) is reset before each phase (`/proc/self/clear_refs`),
//! so each phase's peak is its own.
//!
//! Run: `cargo bench -p borderwatch-e2e --bench scale` (needs `nats-server` on PATH or in
//! NATS_SERVER_BIN). `BENCH_FIGURES` sizes it (default 10,000,000), `BENCH_QUARTERS` the
//! history's length (default 100), `BENCH_SERIES_PER_SOURCE` (default 10,000), `BENCH_EMBEDDED=0`
//! skips phase 5. Results are kept in BENCHMARKS.md and docs/scaling.md.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use borderwatch::roles::{Role, UpOptions, start, wait_analyzed};
use borderwatch_bus::{Bus, MemoryBus, NatsBus, Transport, names};
use borderwatch_e2e::surges::put_subscription;
use borderwatch_e2e::{Behaviour, ScriptedReceiver};
use borderwatch_ingest::service::{Submission, ingest};
use borderwatch_model::{Period, Release, SurgeEvent};
use borderwatch_test_support::NatsServer;
use borderwatch_test_support::measure::{dir_bytes as du, rss, status_bytes};

/// The raw JetStream baseline, shared with the ingest bench.
#[path = "../../crates/ingest/benches/support/raw_publish.rs"]
mod raw_publish;
use raw_publish::{raw_messages, raw_publish};

const COUNTRIES: &[&str] = &[
    "AFG", "ARM", "AZE", "BLR", "BRA", "CHN", "COL", "CUB", "DEU", "ECU", "EST", "FIN", "FRA",
    "GBR", "GEO", "GTM", "HND", "HTI", "IND", "IRN", "ISR", "ITA", "JPN", "KAZ", "KGZ", "KOR",
    "LTU", "LVA", "MDA", "MEX", "MNG", "NIC", "POL", "PRK", "RUS", "SLV", "SYR", "TJK", "TKM",
    "TUR", "UKR", "USA", "UZB", "VEN", "VNM", "EGY", "ETH", "NGA", "PAK", "BGD",
];

/// Each stream's directory in a nats-server store (`…/streams/<name>`) and its bytes,
/// largest first.
fn stream_dirs(store: &std::path::Path) -> Vec<(String, u64)> {
    fn find(dir: &std::path::Path, out: &mut Vec<(String, u64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten().filter(|e| e.path().is_dir()) {
            if e.file_name() == "streams" {
                for s in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                    out.push((s.file_name().to_string_lossy().into_owned(), du(&s.path())));
                }
            } else {
                find(&e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    find(store, &mut out);
    out.sort_by_key(|s| std::cmp::Reverse(s.1));
    out
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The run's shape: how many sources, series per source, quarters of history.
#[derive(Clone, Copy)]
struct Shape {
    sources: usize,
    per_source: usize,
    quarters: usize,
}

impl Shape {
    fn from_env() -> Shape {
        let figures = env_usize("BENCH_FIGURES", 10_000_000);
        let quarters = env_usize("BENCH_QUARTERS", 100).max(1);
        let per_source = env_usize("BENCH_SERIES_PER_SOURCE", 10_000).max(1);
        let series = (figures / quarters).max(1);
        Shape {
            sources: series.div_ceil(per_source),
            per_source,
            quarters,
        }
    }
    fn series(&self) -> usize {
        self.sources * self.per_source
    }
    fn figures(&self) -> usize {
        self.series() * self.quarters
    }
}

/// A seeded, seasonal, noisy count (the analytics bench's): reproducible without a
/// random-number crate.
fn count(series: usize, q: usize) -> u64 {
    let mut x = (series as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (q as u64 + 1);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let level = 50 + (series % 200) as u64 * 25;
    let season = [0.8, 1.1, 1.3, 0.9][q % 4];
    let noise = 0.85 + (x % 300) as f64 / 1000.0;
    (level as f64 * season * noise) as u64
}

/// Source `i`'s generic CSV for quarters `from..to` (quarter 0 is 2000-Q1). In the quarter
/// after the history, every hundredth series jumps five-fold.
fn source_csv(shape: Shape, i: usize, from: usize, to: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(shape.per_source * (to - from) * 34 + 64);
    out.push_str("source,period,country,category,count\n");
    let periods: Vec<String> = (from..to)
        .map(|q| Period::Quarter(2000, 1).offset(q as i64).to_string())
        .collect();
    for j in 0..shape.per_source {
        let s = i * shape.per_source + j;
        let country = COUNTRIES[j % COUNTRIES.len()];
        let category = format!("c{:04}", j / COUNTRIES.len());
        for (k, period) in periods.iter().enumerate() {
            let q = from + k;
            let mut n = count(s, q);
            if q >= shape.quarters && s.is_multiple_of(100) {
                n *= 5;
            }
            let _ = writeln!(out, "src{i:03},{period},{country},{category},{n}");
        }
    }
    out
}

/// Resets this process's peak resident memory to its current size, so that the next
/// [`peak_mib`] is the peak of what follows (Linux 4.0+: `5` to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> f64 {
    status_bytes("self", "VmHWM:") / 1048576.0
}

fn mib(b: f64) -> f64 {
    b / 1048576.0
}

/// Ingests each source's CSV for quarters `from..to`, one release after another; the
/// releases and the time spent in `ingest` (generating the CSVs is not timed).
async fn ingest_all(
    bus: &dyn Transport,
    shape: Shape,
    from: usize,
    to: usize,
) -> (Vec<Release>, Duration) {
    let mut releases = Vec::with_capacity(shape.sources);
    let mut spent = Duration::ZERO;
    for i in 0..shape.sources {
        let bytes = bytes::Bytes::from(source_csv(shape, i, from, to).into_bytes());
        let t = Instant::now();
        let release = ingest(
            bus,
            Submission {
                format: Some("generic".into()),
                source: None,
                bytes,
            },
        )
        .await
        .expect("ingest");
        spent += t.elapsed();
        assert_eq!(
            release.new_observations as usize,
            shape.per_source * (to - from),
            "every figure of source {i} is new"
        );
        releases.push(release);
    }
    (releases, spent)
}

/// The raw baseline: each source's figures in the series layout, published to `RAW`; the
/// publish time (building the messages is not timed).
async fn raw_all(js: &jetstream::Context, shape: Shape) -> Duration {
    let mut spent = Duration::ZERO;
    for i in 0..shape.sources {
        let msgs = raw_messages(&source_csv(shape, i, 0, shape.quarters));
        let t = Instant::now();
        raw_publish(js, &msgs).await;
        spent += t.elapsed();
    }
    spent
}

/// Stops nats-server gracefully (it writes its index), starts it again on the same store,
/// waits until `BW_OBS` holds `messages` again and then `settle`; its resident memory then.
async fn restarted_rss(server: &mut NatsServer, messages: u64, settle: Duration) -> f64 {
    let pid = server.pid().expect("nats-server runs");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    while std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| !s.contains("State:\tZ"))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.restart();
    let js = jetstream::new(async_nats::connect(server.url()).await.expect("connect"));
    loop {
        if let Ok(mut stream) = js.get_stream(names::OBS_STREAM).await
            && let Ok(info) = stream.info().await
            && info.state.messages == messages
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(settle).await;
    rss(server.pid().expect("nats-server runs again"))
}

async fn obs_state(js: &jetstream::Context) -> (u64, u64, usize) {
    let info = js
        .get_stream(names::OBS_STREAM)
        .await
        .expect("BW_OBS")
        .info()
        .await
        .expect("info")
        .clone();
    (
        info.state.messages,
        info.state.bytes,
        info.state.subjects_count as usize,
    )
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Waits for every release's analysis records; the surges they hold.
async fn analysed(bus: &Bus, releases: &[Release], timeout: Duration) -> Vec<SurgeEvent> {
    let mut surges = Vec::new();
    for release in releases {
        for a in wait_analyzed(bus, release, timeout)
            .await
            .expect("release analysed")
        {
            surges.extend(a.surges);
        }
    }
    surges
}

/// The surges as announced on `BW_SURGES` (from sequence `from`): an analysis record holds
/// its part's surges as that part found them, and only the release's last part sees the
/// release's stories.
async fn announced(bus: &dyn Transport, found: &[SurgeEvent], from: u64) -> Vec<SurgeEvent> {
    use futures::StreamExt;
    let mut want: std::collections::HashSet<&str> = found.iter().map(|s| s.id.as_str()).collect();
    let mut out = Vec::with_capacity(found.len());
    let mut stream = bus
        .replay(names::SURGE_STREAM, ">", from)
        .await
        .expect("BW_SURGES");
    while !want.is_empty() {
        let msg = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .expect("every surge announced within a minute")
            .expect("the stream goes on")
            .expect("a message");
        let Ok(event) = serde_json::from_slice::<SurgeEvent>(&msg.payload) else {
            continue;
        };
        if want.remove(event.id.as_str()) {
            out.push(event);
        }
    }
    out
}

/// The id of the message that tells `subscription` of `surge`: its story's message when it
/// is one of several surges of its release told together (issue 12: a wide rise is one
/// alert, not one per series), else its own.
fn notice_id(subscription: &str, surge: &SurgeEvent) -> String {
    match &surge.story {
        Some(story) => borderwatch_notify::notice::story_digest_id(subscription, &story.id),
        None => surge.id.clone(),
    }
}

#[tokio::main]
async fn main() {
    // `RUST_LOG=info` shows what the roles log while they work (off by default: the
    // bench's output is its tables).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let shape = Shape::from_env();
    let (series, figures) = (shape.series(), shape.figures());
    let settle = Duration::from_secs(env_usize("BENCH_SETTLE_S", 10) as u64);
    println!(
        "## scale: {figures} figures = {} sources × {} series × {} quarters ({series} series); then one quarter more",
        shape.sources, shape.per_source, shape.quarters
    );
    println!();

    let mut server = NatsServer::start();
    let bus = NatsBus::connect(&server.url(), "bench-scale")
        .await
        .expect("connect");
    names::ensure_all(&bus, 1).await.expect("streams");
    let js = jetstream::new(
        async_nats::connect(server.url())
            .await
            .expect("raw connect"),
    );
    js.create_stream(jetstream::stream::Config {
        name: "RAW".into(),
        subjects: vec!["raw.>".into()],
        max_messages_per_subject: -1,
        duplicate_window: Duration::from_secs(3600),
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("raw stream");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let empty = rss(server.pid().expect("runs"));

    // 1. Raw publish.
    reset_peak();
    let raw_t = raw_all(&js, shape).await;
    let raw_peak = peak_mib();
    let raw_rss = rss(server.pid().expect("runs")) - empty;
    js.get_stream("RAW")
        .await
        .expect("RAW")
        .purge()
        .await
        .expect("RAW purged");
    eprintln!("raw publish: {:.1} s", raw_t.as_secs_f64());

    // 2. Ingest over NATS.
    reset_peak();
    let (history, nats_t) = ingest_all(&bus, shape, 0, shape.quarters).await;
    let ingest_peak = peak_mib();
    let after_ingest = rss(server.pid().expect("runs")) - empty;
    let (msgs, bytes, subjects) = obs_state(&js).await;
    let store = du(&server.store_dir());
    eprintln!("ingest over NATS: {:.1} s", nats_t.as_secs_f64());
    drop(bus);
    let restarted = restarted_rss(&mut server, msgs, settle).await - empty;
    let js = jetstream::new(async_nats::connect(server.url()).await.expect("connect"));

    println!(
        "### ingest: {figures} figures, {} releases of {} figures",
        shape.sources,
        shape.per_source * shape.quarters
    );
    println!();
    println!(
        "| case | time | figures/s | vs raw JetStream publish | peak memory of this process (VmHWM, the phase's own) |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| raw async-nats JetStream publish, series layout (same messages and ids; 512 in flight; publish only) | {:.1} s | {:.0} | 1.00× | {raw_peak:.0} MiB |",
        raw_t.as_secs_f64(),
        rate(figures, raw_t)
    );
    println!(
        "| borderwatch ingest over NATS (decode, parse, fold, publish, marker, release record) | {:.1} s | {:.0} | {:.2}× | {ingest_peak:.0} MiB |",
        nats_t.as_secs_f64(),
        rate(figures, nats_t),
        rate(figures, nats_t) / rate(figures, raw_t)
    );
    println!();
    println!("### nats-server after the history");
    println!();
    println!("| measure | total | per figure | per series |");
    println!("|---|---|---|---|");
    println!("| BW_OBS messages / subjects | {msgs} / {subjects} | | |");
    println!(
        "| VmRSS growth over the empty server, right after ingest (raw stream purged) | {:.0} MiB | {:.1} B | {:.0} B |",
        mib(after_ingest),
        after_ingest / figures as f64,
        after_ingest / series as f64
    );
    println!(
        "| VmRSS growth after a graceful restart and {} s | {:.0} MiB | {:.1} B | {:.0} B |",
        settle.as_secs(),
        mib(restarted),
        restarted / figures as f64,
        restarted / series as f64
    );
    println!(
        "| (raw publish alone, growth right after) | {:.0} MiB | {:.1} B | |",
        mib(raw_rss),
        raw_rss / figures as f64
    );
    println!(
        "| BW_OBS bytes (JetStream's count) | {:.0} MiB | {:.1} B | {:.0} B |",
        mib(bytes as f64),
        bytes as f64 / figures as f64,
        bytes as f64 / series as f64
    );
    println!(
        "| store directory (every stream) | {:.0} MiB | {:.1} B | |",
        mib(store as f64),
        store as f64 / figures as f64
    );
    println!();

    // 3. Analytics over everything: the roles start with the history's markers waiting.
    reset_peak();
    let data = tempfile::tempdir().expect("tempdir");
    let mut opts = UpOptions::embedded(data.path().to_path_buf());
    opts.nats = Some(server.url());
    opts.roles = vec![Role::Analytics, Role::Notify];
    opts.allow_private_webhooks();
    let t = Instant::now();
    let running = start(opts).await.expect("roles start");
    let bus = running.bus.clone();
    let history_surges = analysed(&bus, &history, Duration::from_secs(3600)).await;
    let analytics_t = t.elapsed();
    let analytics_peak = peak_mib();
    println!(
        "### analytics over the whole history (every period of every series, one process, both cores)"
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| roles started → every part of the {} releases analysed | {:.1} s |",
        history.len(),
        analytics_t.as_secs_f64()
    );
    println!(
        "| series-periods per second | {:.0} |",
        rate(figures, analytics_t)
    );
    println!(
        "| seconds per thousand series ({} quarters each) | {:.3} |",
        shape.quarters,
        analytics_t.as_secs_f64() / (series as f64 / 1000.0)
    );
    println!("| surges found | {} |", history_surges.len());
    println!(
        "| peak memory of this process during it (VmHWM, analytics + notify) | {analytics_peak:.0} MiB |"
    );
    println!();

    // 4. One new quarter for every series, to webhooks.
    let receiver = ScriptedReceiver::start(Behaviour::default()).await;
    put_subscription(
        bus.as_ref(),
        "scale",
        &receiver.url("scale"),
        "bench-secret",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (msgs_before, bytes_before, _) = obs_state(&js).await;
    let surges_from = bus.last_seq(names::SURGE_STREAM).await.expect("BW_SURGES") + 1;
    let rss_before = rss(server.pid().expect("runs"));
    reset_peak();
    let t = Instant::now();
    let (quarter, quarter_ingest_t) =
        ingest_all(bus.as_ref(), shape, shape.quarters, shape.quarters + 1).await;
    let ingested_at = t.elapsed();
    let surges = analysed(&bus, &quarter, Duration::from_secs(3600)).await;
    let analysed_at = t.elapsed();
    let mut delivered_at = None;
    let surges = announced(bus.as_ref(), &surges, surges_from).await;
    let want: std::collections::HashSet<String> =
        surges.iter().map(|s| notice_id("scale", s)).collect();
    let deadline =
        Instant::now() + Duration::from_secs(env_usize("BENCH_WEBHOOK_WAIT_S", 600) as u64);
    while Instant::now() < deadline {
        let got = receiver.accepted_per_event();
        if want.iter().all(|id| got.contains_key(id)) {
            delivered_at = Some(t.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = {
        let got = receiver.accepted_per_event();
        want.iter().filter(|id| got.contains_key(*id)).count()
    };
    let quarter_peak = peak_mib();
    let rss_after_quarter = rss(server.pid().expect("runs"));
    let (msgs_after, bytes_after, _) = obs_state(&js).await;
    running.shutdown().await;
    drop(bus);
    let restarted_after_quarter = restarted_rss(&mut server, msgs_after, settle).await - empty;
    let store_after = du(&server.store_dir());

    println!(
        "### one new quarter for every series ({series} figures in {} releases, one per source; every hundredth series five-fold)",
        quarter.len()
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| ingest of the {} releases (time in `ingest`) | {:.1} s ({:.0} figures/s) |",
        quarter.len(),
        quarter_ingest_t.as_secs_f64(),
        rate(series, quarter_ingest_t)
    );
    println!(
        "| first upload → last release acknowledged | {:.1} s |",
        ingested_at.as_secs_f64()
    );
    println!(
        "| first upload → every release analysed | {:.1} s |",
        analysed_at.as_secs_f64()
    );
    match delivered_at {
        Some(d) => println!(
            "| first upload → every surge's webhook received ({} surges in {} messages: a story's surges are one message; 1 subscription) | {:.1} s |",
            surges.len(),
            want.len(),
            d.as_secs_f64()
        ),
        None => {
            println!(
                "| first upload → webhooks: only {delivered} of the {} messages telling the {} surges, within the wait | — |",
                want.len(),
                surges.len()
            );
            let got = receiver.accepted_per_event();
            eprintln!(
                "webhooks missing: the receiver accepted {} POSTs for {} event ids (first: {:?}); the surges: {:?}",
                receiver.accepted_count(),
                got.len(),
                got.keys().take(5).collect::<Vec<_>>(),
                want.iter().take(5).collect::<Vec<_>>()
            );
        }
    }
    println!(
        "| peak memory of this process (ingest + analytics + notify, VmHWM) | {quarter_peak:.0} MiB |"
    );
    let (dm, db) = (msgs_after - msgs_before, bytes_after - bytes_before);
    println!(
        "| BW_OBS: messages added / bytes added per new figure | {dm} / {:.1} B |",
        db as f64 / series as f64
    );
    println!(
        "| nats-server VmRSS growth during the quarter, per new figure (everything the roles wrote too) | {:.1} B |",
        (rss_after_quarter - rss_before) / series as f64
    );
    println!(
        "| nats-server VmRSS growth over the empty server after a graceful restart, per stored figure ({} stored) | {:.1} B (history alone: {:.1} B) |",
        figures + series,
        restarted_after_quarter / (figures + series) as f64,
        restarted / figures as f64
    );
    println!(
        "| … the quarter's own share, per new figure ((after − history) ÷ {series}) | {:.1} B |",
        (restarted_after_quarter - restarted) / series as f64
    );
    println!(
        "| store directory per stored figure | {:.1} B |",
        store_after as f64 / (figures + series) as f64
    );
    println!();
    println!("### store directory by stream, after the history's analysis and the quarter");
    println!();
    println!("| stream (KV_… a bucket) | on disk | per series |");
    println!("|---|---|---|");
    for (name, bytes) in stream_dirs(&server.store_dir()) {
        if bytes >= 1 << 20 {
            println!(
                "| {name} | {:.0} MiB | {:.0} B |",
                mib(bytes as f64),
                bytes as f64 / series as f64
            );
        }
    }
    println!();
    drop(server);

    // 5. Ingest embedded.
    if env_usize("BENCH_EMBEDDED", 1) == 0 {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mem = MemoryBus::open(dir.path()).await.expect("memory bus");
    names::ensure_all(&mem, 1).await.expect("streams");
    reset_peak();
    let (_, mem_t) = ingest_all(&mem, shape, 0, shape.quarters).await;
    let mem_peak = peak_mib();
    let mem_disk = du(dir.path());
    drop(mem);
    println!("### ingest embedded (in-process bus, data directory)");
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| time / figures per second / vs raw JetStream publish above | {:.1} s / {:.0} / {:.2}× |",
        mem_t.as_secs_f64(),
        rate(figures, mem_t),
        rate(figures, mem_t) / rate(figures, raw_t)
    );
    println!("| peak memory of this process (VmHWM, the phase's own) | {mem_peak:.0} MiB |");
    println!(
        "| data directory per figure | {:.1} B |",
        mem_disk as f64 / figures as f64
    );
}
