//! Analytics throughput on one big release: aggregation (polars) and the evidence
//! detectors over every period of 25,000 series × 40 quarters.
//!
//! Run: `cargo bench -p borderwatch-analytics --bench analytics`
//! (`BENCH_SERIES`, default 25,000). Results are kept in BENCHMARKS.md.

use std::time::Instant;

use borderwatch_analytics::{DetectorConfig, aggregate, evaluate};
use borderwatch_model::{Country, Observation, Period};

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
                count: (s as u64 * 7 + q as u64 * 13) % 997 + 20,
                release_id: String::new(),
            });
        }
    }
    let started = Instant::now();
    let frames = aggregate(&obs).expect("aggregate");
    let aggregated = started.elapsed();
    assert_eq!(frames.len(), series);

    let cfg = DetectorConfig::default();
    let started = Instant::now();
    let mut surges = 0usize;
    for frame in &frames {
        let periods: Vec<Period> = frame.points.iter().map(|(p, _)| *p).collect();
        surges += evaluate(frame, &periods, &cfg, "bench", "now").len();
    }
    let detected = started.elapsed();
    let figures = obs.len() as f64;
    println!(
        "{series} series × {quarters} quarters = {} figures, one thread",
        obs.len()
    );
    println!();
    println!("| step | time | figures/s |");
    println!("|---|---|---|");
    println!(
        "| aggregate (polars: yearly totals, year over year) | {:.3} s | {:.0} |",
        aggregated.as_secs_f64(),
        figures / aggregated.as_secs_f64()
    );
    println!(
        "| evidence detectors on every period ({surges} surges) | {:.3} s | {:.0} |",
        detected.as_secs_f64(),
        figures / detected.as_secs_f64()
    );
}
