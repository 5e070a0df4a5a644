//! The parity command: generates quarterly and monthly series over every parity setting, runs
//! R's `farringtonFlexible` and `earsC` (parity/parity.R) and borderwatch's detectors on them,
//! and prints, per setting and method, the points compared, alarm mismatches and the largest
//! relative difference of the upper bounds.
//!
//! `cargo run --release -p borderwatch-analytics --example r_parity -- --series 500 [--seed N]`
//! (`--series`: series per setting, default 100). Exits 1 on any mismatch.
//! Needs `Rscript` with the `surveillance` package (`apt-get install -y r-cran-surveillance`).

#[path = "../parity/harness.rs"]
mod harness;

use std::time::Instant;

use harness::{compare, parity_series, parity_settings, run_r, run_rust};

fn main() {
    let mut per_setting = 100usize;
    let mut seed = 20_261_128u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let parsed = value.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), parsed) {
            ("--series", Some(v)) => per_setting = v as usize,
            ("--seed", Some(v)) => seed = v,
            _ => {
                eprintln!("usage: r_parity [--series N] [--seed N]");
                std::process::exit(2);
            }
        }
    }
    let settings = parity_settings();
    let series: Vec<_> = settings
        .iter()
        .enumerate()
        .flat_map(|(i, s)| parity_series(s, per_setting, seed + i as u64))
        .collect();
    println!(
        "{} series ({} per setting, seed {seed}), {} settings",
        series.len(),
        per_setting,
        settings.len()
    );
    let r = run_r(&series, &settings);
    let started = Instant::now();
    let rust = run_rust(&series, &settings);
    let rust_time = started.elapsed();
    let cmp = compare(&series, &rust, &r.outcome);
    println!("{}", cmp.table());
    let total = cmp.total();
    println!(
        "R: {:.1} s wall (with start-up), {:.1} s inside the detector calls; borderwatch: {:.3} s",
        r.wall.as_secs_f64(),
        r.inner.values().map(|v| v.0).sum::<f64>(),
        rust_time.as_secs_f64()
    );
    for p in &cmp.problems {
        println!("{p}");
    }
    if total.r_point_errors > 0 {
        println!(
            "R stopped at {} points where borderwatch gave a result; R's messages: {:?}",
            total.r_point_errors, cmp.r_error_messages
        );
    }
    let ok = total.alarm_mismatches == 0
        && total.na_mismatches == 0
        && total.unmatched == 0
        && total.error_mismatches == 0
        && total.rust_call_failed == 0
        && total.max_rel_bound <= 1e-6;
    println!(
        "{}: {} points, {} R alarms, {} alarm mismatches, max relative bound difference {:.3e}",
        if ok { "PARITY" } else { "MISMATCH" },
        total.points,
        total.r_alarms,
        total.alarm_mismatches,
        total.max_rel_bound
    );
    if !ok {
        std::process::exit(1);
    }
}
