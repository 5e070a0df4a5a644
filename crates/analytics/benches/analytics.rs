//! Analytics throughput on one big release: aggregation (polars) and every default detector
//! (evidence rules, farrington, EARS C2, CUSUM, then Benjamini–Hochberg) over every period of
//! 25,000 series × 40 quarters, on one core and on all of them, step by step.
//!
//! Run: `cargo bench -p borderwatch-analytics --bench analytics`
//! (`BENCH_SERIES`, default 25,000; `BENCH_DETECTORS`, a comma list, default all defaults).
//! Results are kept in BENCHMARKS.md.
//!
//! The steps are the service's (`analyse`, then the release-wide decision): the detectors
//! (`evaluate_frames`), the per-series assessment with live edge and chart bands
//! (`assess_frames`), then across the release Benjamini–Hochberg and the surge events
//! (`decide`). BH alone is timed apart as well, being the one step that cannot be split by
//! series. Both runs must give the same surges and bands, to the last field; every 100th
//! series triples in its last two quarters so that there are surges to compare.

use std::time::{Duration, Instant};

use borderwatch_analytics::{
    AnalysisConfig, Assessment, SeriesFrame, aggregate, assess_frames, decide, evaluate_frames,
    fall_survivors, fdr_survivors, tested, tested_falls,
};
use borderwatch_model::{Band, Country, Observation, Period, SurgeEvent};

/// A seeded, seasonal, noisy count: reproducible without a random-number crate.
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

/// Every `SURGE_EVERY`th series triples in its last two quarters, so that the comparison
/// of one core with all has surges to compare (seasonal noise alone makes none).
const SURGE_EVERY: usize = 100;

/// [`count`], with the injected surges.
fn figure(series: usize, q: usize, quarters: usize) -> u64 {
    let surging = series.is_multiple_of(SURGE_EVERY) && q + 2 >= quarters;
    count(series, q) * if surging { 3 } else { 1 }
}

/// One run's step times and what it found.
struct Run {
    detectors: Duration,
    assessment: Duration,
    bh: Duration,
    decide: Duration,
    bands: Vec<Vec<Band>>,
    surges: Vec<SurgeEvent>,
}

impl Run {
    /// Detectors, assessment and decision: the work between aggregation and the bus.
    fn total(&self) -> Duration {
        self.detectors + self.assessment + self.decide
    }
}

/// Times `f` and returns its result with the time.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

fn evaluate(jobs: &[(&SeriesFrame, Vec<Period>)], cfg: &AnalysisConfig) -> Run {
    let (evaluations, detectors) = timed(|| evaluate_frames(jobs, cfg));
    let (assessed, assessment) = timed(|| assess_frames(jobs, &evaluations, cfg.alert.live_window));
    drop(evaluations);
    let mut bands = Vec::with_capacity(assessed.len());
    let mut release: Vec<Assessment> = Vec::new();
    for s in assessed {
        bands.push(s.bands);
        release.extend(s.assessments);
    }
    // BH alone (rises and falls, each its own family), as `decide` runs it.
    let (_, bh) = timed(|| {
        let rises = fdr_survivors(&release, tested(&release), cfg.fdr);
        let falls = fall_survivors(&release, tested_falls(&release), cfg.fdr);
        (rises, falls)
    });
    let (surges, decide) = timed(|| decide(&release, cfg, "bench", "now"));
    Run {
        detectors,
        assessment,
        bh,
        decide,
        bands,
        surges,
    }
}

fn observations(series: usize, quarters: usize) -> Vec<Observation> {
    let countries: Vec<Country> = ["PRK", "CHN", "VNM", "IND", "KAZ", "UZB", "TJK", "KGZ"]
        .iter()
        .map(|c| Country::parse(c).expect("known country"))
        .collect();
    let mut obs = Vec::with_capacity(series * quarters);
    for s in 0..series {
        for q in 0..quarters {
            obs.push(Observation {
                source: "bench".into(),
                country: countries[s % countries.len()],
                category: format!("c{}", s / countries.len()),
                period: Period::Quarter(2015, 1).offset(q as i64),
                count: figure(s, q, quarters),
                release_id: String::new(),
            });
        }
    }
    obs
}

fn main() {
    let series: usize = std::env::var("BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000);
    let quarters = 40;
    let obs = observations(series, quarters);
    let (frames, aggregated) = timed(|| aggregate(&obs).expect("aggregate"));
    assert_eq!(frames.len(), series);

    // `BENCH_DETECTORS=farrington` (a comma list) times some detectors alone.
    let detectors = std::env::var("BENCH_DETECTORS").unwrap_or_default();
    let cfg = AnalysisConfig::only(&detectors).expect("known detectors");
    let jobs: Vec<(&SeriesFrame, Vec<Period>)> = frames
        .iter()
        .map(|f| (f, f.points.iter().map(|(p, _)| *p).collect()))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread pool");
    let single = one.install(|| evaluate(&jobs, &cfg));
    let all = evaluate(&jobs, &cfg);
    assert!(
        single.surges == all.surges,
        "the same surges on one core and on all"
    );
    assert!(
        single.bands == all.bands,
        "the same bands on one core and on all"
    );

    let periods = obs.len() as f64;
    let per_core_thousand =
        |d: Duration, threads: usize| d.as_secs_f64() * threads as f64 / (series as f64 / 1000.0);
    let row = |step: &str, threads: usize, d: Duration| {
        println!(
            "| {step} | {threads} | {:.3} s | {:.0} | {:.3} |",
            d.as_secs_f64(),
            periods / d.as_secs_f64(),
            per_core_thousand(d, threads)
        );
    };
    println!(
        "{series} series × {quarters} quarters = {} series-periods; {cores} cores; {} surges; {} bands",
        obs.len(),
        all.surges.len(),
        all.bands.iter().map(Vec::len).sum::<usize>()
    );
    println!();
    println!("| step | threads | time | series-periods/s | s per core-thousand series |");
    println!("|---|---|---|---|---|");
    row("aggregate (polars)", 1, aggregated);
    let runs = [(1, &single), (cores, &all)];
    for (threads, r) in runs {
        row("detectors (`evaluate_frames`)", threads, r.detectors);
    }
    for (threads, r) in runs {
        row(
            "assessment, live edge, bands (`assess_frames`)",
            threads,
            r.assessment,
        );
    }
    for (threads, r) in runs {
        row("BH alone, rises and falls (serial)", threads, r.bh);
    }
    for (threads, r) in runs {
        row("BH + surge events (`decide`, serial)", threads, r.decide);
    }
    for (threads, r) in runs {
        row("all default detectors + BH", threads, r.total());
    }
    println!();
    println!(
        "speed-up on {cores} cores: {:.2}× (detectors {:.2}×, assessment {:.2}×)",
        single.total().as_secs_f64() / all.total().as_secs_f64(),
        single.detectors.as_secs_f64() / all.detectors.as_secs_f64(),
        single.assessment.as_secs_f64() / all.assessment.as_secs_f64(),
    );
}
