//! Speed against the reference implementation: series-periods evaluated per second by
//! borderwatch's `farrington_flexible` and `ears_c` and by R's `farringtonFlexible` and `earsC`
//! (surveillance package, through parity/parity.R) on the same generated series, in the same run,
//! with the alarms of both sides compared on every point R evaluated.
//!
//! Run: `cargo bench -p borderwatch-analytics --bench detectors_vs_r`
//! (`BENCH_SERIES`: series per setting for borderwatch, default 2,000; `BENCH_R_SERIES`: the
//! first that many of them also go to R, default 60). R's rate is reported twice: inside the
//! detector calls only (proc.time around each call, in parity.R) and for the whole Rscript
//! process (start-up, package loading and CSV I/O included). `BENCH_SETTINGS` (a comma list of
//! substrings, e.g. `nbplugin`) runs only the settings whose names contain one of them, for
//! profiling. Results are kept in BENCHMARKS.md.

#[path = "../parity/harness.rs"]
mod harness;

use std::time::Instant;

use borderwatch_analytics::surveillance::ears::{EarsConfig, EarsMethod, ears_c};
use borderwatch_analytics::surveillance::farrington::{
    FarringtonConfig, ThresholdMethod, farrington_flexible,
};
use harness::{Method, Series, Setting, Tally, compare, parity_series, run_r, run_rust};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn setting(name: &str, freq: usize, methods: Vec<Method>) -> Setting {
    Setting {
        name: name.into(),
        freq,
        methods,
        len: if freq == 4 { (40, 40) } else { (72, 72) },
        missing: 0.0,
    }
}

fn farrington(freq: usize, nb: bool) -> Method {
    let mut cfg = FarringtonConfig {
        b: 3,
        w: if freq == 4 { 1 } else { 2 },
        ..FarringtonConfig::default()
    };
    if nb {
        cfg.threshold_method = ThresholdMethod::NbPlugin;
        cfg.no_periods = 4;
        cfg.p_threshold_trend = 1.0;
        cfg.past_periods_not_included = Some(6);
    }
    Method::Farrington(cfg)
}

fn ears() -> Vec<Method> {
    [EarsMethod::C1, EarsMethod::C2, EarsMethod::C3]
        .into_iter()
        .map(|method| {
            Method::Ears(EarsConfig {
                method,
                ..EarsConfig::default()
            })
        })
        .collect()
}

/// Runs the detector itself (no bookkeeping) on one series; returns the points evaluated.
fn run_detector(s: &Series, method: &Method) -> usize {
    match method {
        Method::Farrington(cfg) => farrington_flexible(&s.counts, s.freq, None, cfg)
            .map(|p| std::hint::black_box(p).len())
            .unwrap_or(0),
        Method::Ears(cfg) => {
            let counts: Vec<f64> = s
                .counts
                .iter()
                .map(|c| c.map_or(f64::NAN, |v| v as f64))
                .collect();
            ears_c(&counts, None, cfg)
                .map(|p| std::hint::black_box(p).len())
                .unwrap_or(0)
        }
    }
}

/// Points per second of one method over all series on one thread, repeated until at least
/// half a second has passed.
fn rust_rate(series: &[Series], method: &Method) -> (f64, usize) {
    let mut points = 0;
    let mut rounds = 0;
    let started = Instant::now();
    while rounds == 0 || started.elapsed().as_secs_f64() < 0.5 {
        points = series.iter().map(|s| run_detector(s, method)).sum();
        rounds += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    ((points * rounds) as f64 / secs, points)
}

/// The same on every core (series split across threads).
fn rust_rate_parallel(series: &[Series], method: &Method) -> (f64, usize) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = series.len().div_ceil(threads);
    let started = Instant::now();
    let points: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = series
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|s| run_detector(s, method)).sum::<usize>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    (points as f64 / started.elapsed().as_secs_f64(), threads)
}

/// One row of the results table.
#[derive(Debug)]
struct Row {
    setting: String,
    method: &'static str,
    points: usize,
    one: f64,
    many: f64,
    threads: usize,
    /// R's points and seconds inside the calls, and its wall time shared out by call time.
    r_points: usize,
    r_inner: f64,
    r_wall: f64,
    tally: Tally,
}

fn main() {
    let per_setting = env("BENCH_SERIES", 2_000);
    let r_per_setting = env("BENCH_R_SERIES", 60).min(per_setting);
    let settings = [
        setting("quarterly_40_delta_b3w1", 4, vec![farrington(4, false)]),
        setting("monthly_72_delta_b3w2", 12, vec![farrington(12, false)]),
        setting("monthly_72_nbplugin_np4", 12, vec![farrington(12, true)]),
        setting("quarterly_40_ears", 4, ears()),
        setting("monthly_72_ears", 12, ears()),
    ];
    let only = std::env::var("BENCH_SETTINGS").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|s| name.contains(s.trim()));
    let mut rows = Vec::new();
    for (i, setting) in settings.iter().enumerate() {
        if !wanted(&setting.name) {
            continue;
        }
        let series = parity_series(setting, per_setting, 7 + i as u64);
        let sample = &series[..r_per_setting];
        // One R process per setting, so that its start-up belongs to this row alone.
        let r = run_r(sample, std::slice::from_ref(setting));
        let rust_sample = run_rust(sample, std::slice::from_ref(setting));
        let cmp = compare(sample, &rust_sample, &r.outcome);
        let inner_total: f64 = r.inner.values().map(|v| v.0).sum();
        let wall = r.wall.as_secs_f64();
        for method in &setting.methods {
            let name = method.name();
            let (one, points) = rust_rate(&series, method);
            let (many, threads) = rust_rate_parallel(&series, method);
            let (secs, r_points) = r.inner.get(name).copied().unwrap_or((f64::NAN, 0));
            rows.push(Row {
                setting: setting.name.clone(),
                method: name,
                points,
                one,
                many,
                threads,
                r_points,
                r_inner: secs,
                // The process time shared among the methods of the setting by time in calls.
                r_wall: wall * secs / inner_total,
                tally: cmp
                    .tallies
                    .get(&(setting.name.clone(), name))
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        eprintln!(
            "{}: R {} series, {:.2} s in calls, {:.2} s process; borderwatch {} series",
            setting.name,
            sample.len(),
            inner_total,
            wall,
            series.len()
        );
    }

    println!(
        "| setting | method | points (borderwatch) | borderwatch 1 core (points/s) | borderwatch all cores (points/s) | R points | R in calls (points/s) | R with start-up (points/s) | speed-up (in calls) | speed-up (with start-up) | alarm mismatches | max rel. bound diff |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all_identical = true;
    for row in &rows {
        let t = &row.tally;
        all_identical &= t.alarm_mismatches == 0
            && t.na_mismatches == 0
            && t.unmatched == 0
            && t.error_mismatches == 0;
        let r_rate = row.r_points as f64 / row.r_inner;
        let r_rate_wall = row.r_points as f64 / row.r_wall;
        println!(
            "| {} | {} | {} | {:.0} | {:.0} ({} threads) | {} | {:.0} | {:.0} | {:.0}× | {:.0}× | {} of {} | {:.1e} |",
            row.setting,
            row.method,
            row.points,
            row.one,
            row.many,
            row.threads,
            row.r_points,
            r_rate,
            r_rate_wall,
            row.one / r_rate,
            row.one / r_rate_wall,
            t.alarm_mismatches,
            t.points,
            t.max_rel_bound
        );
    }
    println!(
        "\nalarms identical on every point R evaluated: {}",
        if all_identical { "yes" } else { "NO" }
    );
}
