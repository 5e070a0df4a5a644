//! Analytics throughput on one big release: aggregation (polars) and every default detector
//! (evidence rules, farrington, EARS C2, CUSUM, then Benjamini–Hochberg) over every period of
//! 25,000 series × 40 quarters, on one core and on all of them.
//!
//! Run: `cargo bench -p borderwatch-analytics --bench analytics`
//! (`BENCH_SERIES`, default 25,000; `BENCH_DETECTORS`, a comma list, default all defaults).
//! Results are kept in BENCHMARKS.md.

use std::time::{Duration, Instant};

use borderwatch_analytics::{
    AnalysisConfig, Evaluation, SeriesFrame, aggregate, assess, decide, evaluate_frames,
};
use borderwatch_model::{Country, Observation, Period};

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

fn evaluate(jobs: &[(&SeriesFrame, Vec<Period>)], cfg: &AnalysisConfig) -> (Duration, usize) {
    let started = Instant::now();
    let evaluations: Vec<Vec<Evaluation>> = evaluate_frames(jobs, cfg);
    let assessments: Vec<_> = jobs
        .iter()
        .zip(&evaluations)
        .flat_map(|((frame, _), e)| assess(frame, e))
        .collect();
    let surges = decide(&assessments, cfg, "bench", "now").len();
    (started.elapsed(), surges)
}

fn main() {
    let series: usize = std::env::var("BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000);
    let quarters = 40;
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
                count: count(s, q),
                release_id: String::new(),
            });
        }
    }
    let started = Instant::now();
    let frames = aggregate(&obs).expect("aggregate");
    let aggregated = started.elapsed();
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
    let (single, surges_single) = one.install(|| evaluate(&jobs, &cfg));
    let (all, surges_all) = evaluate(&jobs, &cfg);
    assert_eq!(
        surges_single, surges_all,
        "the same surges on one core and on all"
    );

    let periods = obs.len() as f64;
    let per_core_thousand =
        |d: Duration, threads: usize| d.as_secs_f64() * threads as f64 / (series as f64 / 1000.0);
    println!(
        "{series} series × {quarters} quarters = {} series-periods; {cores} cores; {surges_all} surges",
        obs.len()
    );
    println!();
    println!("| step | threads | time | series-periods/s | s per core-thousand series |");
    println!("|---|---|---|---|---|");
    println!(
        "| aggregate (polars) | 1 | {:.3} s | {:.0} | {:.3} |",
        aggregated.as_secs_f64(),
        periods / aggregated.as_secs_f64(),
        per_core_thousand(aggregated, 1)
    );
    for (threads, d) in [(1, single), (cores, all)] {
        println!(
            "| all default detectors + BH | {threads} | {:.3} s | {:.0} | {:.3} |",
            d.as_secs_f64(),
            periods / d.as_secs_f64(),
            per_core_thousand(d, threads)
        );
    }
    println!();
    println!(
        "speed-up on {cores} cores: {:.2}×",
        single.as_secs_f64() / all.as_secs_f64()
    );
}
