//! Detection quality after Noufaily et al. (2013), adapted to quarterly and monthly statistics
//! (docs/detection.md, "Quality benchmark design"): negative-binomial baselines with
//! seasonality and trend, 20-80 periods, surges injected into the last year, persistent level
//! shifts as nuisance. Per detector, for borderwatch's default combination and for R's
//! `farringtonFlexible` (run on the same series in the same run, through parity/parity.R):
//! probability of detection, false-positive rate and time to detection. Then real, known
//! events in `testdata/borders/` and which detectors catch them.
//!
//! Run: `cargo bench -p borderwatch-analytics --bench quality`
//! (`BENCH_REPS`: replicates per scenario, default 12; needs Rscript with `surveillance`).
//! Results are kept in BENCHMARKS.md.
//!
//! SD convention: a surge of k·SD adds Poisson(k·SD) cases with SD = sqrt(φ·μ_s), the
//! standard deviation of the baseline count at the period the surge starts (the convention
//! Noufaily et al. reportedly use), not the SD of the whole simulated series.

#[path = "../parity/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::ops::Range;

use borderwatch_analytics::surveillance::ears::{EarsConfig, EarsMethod, ears_c};
use borderwatch_analytics::surveillance::farrington::{FarringtonConfig, farrington_flexible};
use borderwatch_analytics::{
    AnalysisConfig, Assessment, Detector, SeriesFrame, aggregate, assess, evaluate_all,
    fdr_survivors,
};
use borderwatch_model::{Country, Freq, Observation, Period};
use harness::{Baseline, Method, Rng, Series, Setting, run_r};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What was done to a copy of a baseline series.
#[derive(Debug, Clone, PartialEq)]
enum Variant {
    Clean,
    /// A persistent ×2 level shift that started in the history (nuisance).
    Shifted,
    /// Spike of k·SD at one period.
    SpikeSd(u32),
    /// Spike of ×m the baseline mean (10..30).
    SpikeTimes,
    /// k·SD spread as a 2-3 period ramp.
    Ramp(u32),
}

impl Variant {
    fn group(&self) -> String {
        match self {
            Variant::Clean => "clean".into(),
            Variant::Shifted => "after level shift".into(),
            Variant::SpikeSd(k) => format!("spike {k}·SD"),
            Variant::SpikeTimes => "spike ×10-30".into(),
            Variant::Ramp(k) => format!("ramp {k}·SD, 2-3 periods"),
        }
    }
}

/// One simulated series and where to score it.
#[derive(Debug, Clone)]
struct Case {
    series: Series,
    variant: Variant,
    /// The scored periods: the last year for clean and shifted series, the surge periods
    /// otherwise.
    scored: Range<usize>,
    /// The evaluated periods (the last year) for borderwatch; R evaluates `scored` only.
    window: Range<usize>,
}

/// The detectors scored, in table order.
const DETECTORS: [&str; 8] = [
    "R farringtonFlexible",
    "farrington",
    "ears_c1",
    "ears_c2",
    "ears_c3",
    "cusum (as in the combination)",
    "evidence rules (any)",
    "default combination (BH 5%)",
];

fn period0(freq: usize) -> Period {
    if freq == 4 {
        Period::Quarter(2000, 1)
    } else {
        Period::Month(2000, 1)
    }
}

fn farrington_cfg(freq: usize) -> FarringtonConfig {
    let f = if freq == 4 {
        Freq::Quarter
    } else {
        Freq::Month
    };
    AnalysisConfig::default()
        .farrington
        .for_freq(f)
        .expect("monthly and quarterly settings")
        .clone()
}

fn simulate(reps: usize) -> (Vec<Case>, Vec<Setting>) {
    let mut cases = Vec::new();
    let mut rng = Rng::new(2013);
    let mut settings = Vec::new();
    for freq in [4usize, 12] {
        settings.push(Setting {
            name: format!("f{freq}"),
            freq,
            methods: vec![Method::Farrington(farrington_cfg(freq))],
            len: (0, 0),
            missing: 0.0,
        });
        for level in [5.0, 50.0, 500.0, 5000.0] {
            for phi in [1.5, 5.0] {
                for (trend, season) in [(false, false), (false, true), (true, true)] {
                    for rep in 0..reps {
                        let n = if freq == 4 {
                            rng.int(20, 40)
                        } else {
                            rng.int(52, 80)
                        };
                        let base = Baseline {
                            level,
                            slope: if trend { 0.1 / freq as f64 } else { 0.0 },
                            season: if season { 0.4 } else { 0.0 },
                            phase: rng.range(0.0, 2.0 * std::f64::consts::PI),
                            phi,
                        };
                        let mut y: Vec<u64> = (0..n)
                            .map(|t| rng.neg_binomial(base.mean(t, freq), phi))
                            .collect();
                        let window = n - freq..n;
                        // A past outbreak in half of the histories (reweighting's job).
                        if rng.chance(0.5) {
                            let t = rng.int(0, window.start - 2);
                            let k = [3.0, 5.0, 10.0][rng.int(0, 2)];
                            y[t] += rng.poisson(k * base.sd(t, freq));
                        }
                        let id = |v: &str| {
                            format!("f{freq}_l{level}_p{phi}_t{trend}_s{season}_{rep}_{v}")
                        };
                        let series = |y: Vec<u64>, v: &str| Series {
                            id: id(v),
                            setting: format!("f{freq}"),
                            freq,
                            counts: y.into_iter().map(Some).collect(),
                            evaluate: None,
                        };
                        let mut push = |y: Vec<u64>, variant: Variant, scored: Range<usize>| {
                            let mut s = series(y, &format!("{}", cases.len()));
                            s.evaluate = Some(scored.clone());
                            cases.push(Case {
                                series: s,
                                variant,
                                scored,
                                window: window.clone(),
                            });
                        };
                        push(y.clone(), Variant::Clean, window.clone());
                        // Level shift ×2 starting 2-8 periods before the last year.
                        let start = window.start - rng.int(2, 8.min(window.start - 1));
                        let mut shifted = y.clone();
                        for (t, v) in shifted.iter_mut().enumerate().skip(start) {
                            *v = rng.neg_binomial(2.0 * base.mean(t, freq), phi);
                        }
                        push(shifted, Variant::Shifted, window.clone());
                        let k = [2u32, 3, 5, 10][rep % 4];
                        let s = rng.int(window.start, window.end - 1);
                        let mut spike = y.clone();
                        spike[s] += rng.poisson(f64::from(k) * base.sd(s, freq));
                        push(spike, Variant::SpikeSd(k), s..s + 1);
                        let m = rng.range(10.0, 30.0);
                        let mut times = y.clone();
                        times[s] += rng.poisson((m - 1.0) * base.mean(s, freq));
                        push(times, Variant::SpikeTimes, s..s + 1);
                        let len = rng.int(2, 3);
                        let s = rng.int(window.start, window.end - len);
                        let mut ramp = y;
                        for j in 0..len {
                            let share = (j + 1) as f64 / len as f64;
                            ramp[s + j] += rng.poisson(f64::from(k) * base.sd(s + j, freq) * share);
                        }
                        push(ramp, Variant::Ramp(k), s..s + len);
                    }
                }
            }
        }
    }
    (cases, settings)
}

/// Alarms per detector and case, over the case's evaluated window (index → alarm).
type Alarms = HashMap<&'static str, Vec<bool>>;

fn frames(cases: &[Case]) -> Vec<SeriesFrame> {
    let country = Country::parse("PRK").expect("country");
    let mut obs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        for (t, v) in c.series.counts.iter().enumerate() {
            obs.push(Observation {
                source: "sim".into(),
                country,
                category: format!("{i:06}"),
                period: period0(c.series.freq).offset(t as i64),
                count: v.expect("simulated counts are complete"),
                release_id: String::new(),
            });
        }
    }
    let mut frames = aggregate(&obs).expect("aggregate");
    frames.sort_by(|a, b| a.key.category.cmp(&b.key.category));
    assert_eq!(frames.len(), cases.len());
    frames
}

fn main() {
    let reps = env("BENCH_REPS", 12);
    let (cases, settings) = simulate(reps);
    eprintln!("{} simulated series; running R", cases.len());
    let all: Vec<Series> = cases.iter().map(|c| c.series.clone()).collect();
    let r = run_r(&all, &settings);
    eprintln!(
        "R: {:.1} s ({} points)",
        r.wall.as_secs_f64(),
        r.outcome.points.len()
    );

    let cfg = AnalysisConfig::default();
    let frames = frames(&cases);
    let mut alarms: Vec<Alarms> = Vec::with_capacity(cases.len());
    let mut assessments: Vec<Vec<Assessment>> = Vec::with_capacity(cases.len());
    let mut r_pvalues: Vec<Vec<Option<f64>>> = Vec::with_capacity(cases.len());
    let mut agree = (0usize, 0usize);
    for (c, frame) in cases.iter().zip(&frames) {
        let w = c.window.clone();
        let counts: Vec<f64> = c.series.counts.iter().map(|v| v.unwrap() as f64).collect();
        let mut a: Alarms = HashMap::new();
        let far = farrington_flexible(
            &c.series.counts,
            c.series.freq,
            Some(w.clone()),
            &farrington_cfg(c.series.freq),
        )
        .map(|p| p.into_iter().map(|p| p.alarm).collect())
        .unwrap_or_else(|_| vec![false; w.len()]);
        a.insert("farrington", far.clone());
        for (name, method) in [
            ("ears_c1", EarsMethod::C1),
            ("ears_c2", EarsMethod::C2),
            ("ears_c3", EarsMethod::C3),
        ] {
            let e = EarsConfig {
                method,
                ..EarsConfig::default()
            };
            let v = ears_c(&counts, Some(w.clone()), &e)
                .map(|p| p.into_iter().map(|p| p.alarm).collect())
                .unwrap_or_else(|_| vec![false; w.len()]);
            a.insert(name, v);
        }
        // R: evaluated on the scored periods only; its p-values allow a matched-FPR comparison.
        let mut r_alarm = vec![false; w.len()];
        let mut r_p = vec![None; w.len()];
        for t in c.scored.clone() {
            if let Some(p) = r
                .outcome
                .points
                .get(&(c.series.id.clone(), "farrington", t + 1))
            {
                r_alarm[t - w.start] = p.alarm;
                // alarm(α) = bound defined, y > 0 and p < α (the delta threshold).
                let y = c.series.counts[t].unwrap();
                r_p[t - w.start] =
                    (p.upper_bound.is_some() && y > 0).then_some(p.p_value.unwrap_or(1.0));
                agree.0 += 1;
                agree.1 += usize::from(p.alarm != far[t - w.start]);
            }
        }
        a.insert("R farringtonFlexible", r_alarm);
        r_pvalues.push(r_p);
        // The combination, as the analytics service runs it.
        let periods: Vec<Period> = w.clone().map(|t| frame.points[t].0).collect();
        let evals = evaluate_all(frame, &periods, &cfg);
        let mut cusum = vec![false; w.len()];
        let mut evidence = vec![false; w.len()];
        for e in &evals {
            let i = frame.position(e.period).unwrap() - w.start;
            if e.detector == Detector::Cusum {
                cusum[i] |= e.alarm;
            }
            if e.detector.is_evidence() {
                evidence[i] |= e.alarm;
            }
        }
        a.insert("cusum (as in the combination)", cusum);
        a.insert("evidence rules (any)", evidence);
        assessments.push(assess(frame, &evals));
        alarms.push(a);
    }

    // Benjamini–Hochberg across a release: every clean and shifted series (the null release)
    // plus injected surges at a prevalence of 1% of its tests, batch by batch.
    let null: Vec<usize> = (0..cases.len())
        .filter(|&i| matches!(cases[i].variant, Variant::Clean | Variant::Shifted))
        .collect();
    let surged: Vec<usize> = (0..cases.len())
        .filter(|&i| !matches!(cases[i].variant, Variant::Clean | Variant::Shifted))
        .collect();
    let null_tests: Vec<(usize, usize)> = null
        .iter()
        .flat_map(|&i| (0..assessments[i].len()).map(move |j| (i, j)))
        .collect();
    let batch = (null_tests.len() / 100).max(1);
    let mut combo: Vec<Vec<f64>> = cases.iter().map(|c| vec![0.0; c.window.len()]).collect();
    let mut surged_tests: Vec<(usize, usize)> = surged
        .iter()
        .flat_map(|&i| {
            let c = &cases[i];
            c.scored.clone().map(move |t| (i, t - c.window.start))
        })
        .collect();
    surged_tests.sort_unstable();
    let mut batches = 0usize;
    let mut start = 0;
    while start < surged_tests.len() {
        // Whole cases per batch, so that a ramp's periods are judged in one release.
        let mut end = (start + batch).min(surged_tests.len());
        while end < surged_tests.len() && surged_tests[end].0 == surged_tests[end - 1].0 {
            end += 1;
        }
        let members: Vec<(usize, usize)> = null_tests
            .iter()
            .chain(&surged_tests[start..end])
            .copied()
            .collect();
        let list: Vec<Assessment> = members
            .iter()
            .map(|&(i, j)| assessments[i][j].clone())
            .collect();
        let survivors = fdr_survivors(&list, list.len(), cfg.fdr);
        for (k, &(i, j)) in members.iter().enumerate() {
            let a = &list[k];
            let statistical = survivors[k] && a.statistical.iter().any(|f| f.p_value.is_some());
            if !a.evidence.is_empty() || statistical {
                // Null periods: summed over batches (averaged below); surged: flagged or not.
                combo[i][j] += 1.0;
            }
        }
        batches += 1;
        start = end;
    }
    for &i in &null {
        for v in combo[i].iter_mut() {
            *v /= batches.max(1) as f64;
        }
    }

    // Scoring.
    #[derive(Default, Clone)]
    struct Score {
        null_periods: f64,
        null_alarms: f64,
        surges: f64,
        detected: f64,
        first: f64,
        delay_sum: f64,
    }
    let mut table: HashMap<(usize, String, &'static str), Score> = HashMap::new();
    for (i, c) in cases.iter().enumerate() {
        for &d in &DETECTORS {
            // Alarm weight per evaluated period (the combination's null periods: the share
            // of batches that flagged them).
            let flags: Vec<f64> = if d == "default combination (BH 5%)" {
                combo[i].clone()
            } else {
                alarms[i][d]
                    .iter()
                    .map(|&b| f64::from(u8::from(b)))
                    .collect()
            };
            let s = table
                .entry((c.series.freq, c.variant.group(), d))
                .or_default();
            let scored: Vec<f64> = c
                .scored
                .clone()
                .map(|t| flags[t - c.window.start])
                .collect();
            match c.variant {
                Variant::Clean | Variant::Shifted => {
                    s.null_periods += scored.len() as f64;
                    s.null_alarms += scored.iter().sum::<f64>();
                }
                _ => {
                    s.surges += 1.0;
                    if let Some(first) = scored.iter().position(|&b| b > 0.0) {
                        s.detected += 1.0;
                        s.delay_sum += first as f64;
                        s.first += f64::from(u8::from(first == 0));
                    }
                }
            }
        }
    }

    println!(
        "{} scenarios × {reps} replicates = {} baselines, {} simulated series; R and borderwatch farrington \
         alarms differ at {} of {} points R evaluated\n",
        2 * 4 * 2 * 3,
        null.len() / 2,
        cases.len(),
        agree.1,
        agree.0
    );
    for freq in [4usize, 12] {
        println!(
            "### {} (last {} periods scored)\n",
            if freq == 4 { "Quarterly" } else { "Monthly" },
            freq
        );
        let mut groups: Vec<String> = cases
            .iter()
            .filter(|c| c.series.freq == freq)
            .map(|c| c.variant.group())
            .collect();
        groups.sort();
        groups.dedup();
        let surge_groups: Vec<&String> = groups
            .iter()
            .filter(|g| !g.starts_with("clean") && !g.starts_with("after"))
            .collect();
        print!("| detector | FPR clean | FPR after level shift |");
        for g in &surge_groups {
            print!(" POD {g} |");
        }
        println!(" POD all surges | POD first period | mean delay (ramps, periods) |");
        print!("|---|---|---|");
        for _ in &surge_groups {
            print!("---|");
        }
        println!("---|---|---|");
        for &d in &DETECTORS {
            let get = |g: &str| {
                table
                    .get(&(freq, g.to_string(), d))
                    .cloned()
                    .unwrap_or_default()
            };
            let clean = get("clean");
            let shifted = get("after level shift");
            print!(
                "| {d} | {:.3} | {:.3} |",
                clean.null_alarms / clean.null_periods,
                shifted.null_alarms / shifted.null_periods
            );
            let mut total = Score::default();
            let mut ramps = Score::default();
            for g in &surge_groups {
                let s = get(g);
                print!(" {:.2} |", s.detected / s.surges);
                total.surges += s.surges;
                total.detected += s.detected;
                total.first += s.first;
                if g.starts_with("ramp") {
                    ramps.detected += s.detected;
                    ramps.delay_sum += s.delay_sum;
                }
            }
            println!(
                " {:.3} | {:.3} | {:.2} |",
                total.detected / total.surges,
                total.first / total.surges,
                ramps.delay_sum / ramps.detected.max(1.0)
            );
        }
        // R at the combination's false-positive rate (p-value threshold, clean series).
        let combo_clean = table
            .get(&(freq, "clean".to_string(), "default combination (BH 5%)"))
            .cloned()
            .unwrap_or_default();
        let target = combo_clean.null_alarms / combo_clean.null_periods;
        let mut clean_p: Vec<f64> = Vec::new();
        let mut clean_n = 0usize;
        for (i, c) in cases.iter().enumerate() {
            if c.series.freq == freq && c.variant == Variant::Clean {
                clean_n += r_pvalues[i].len();
                clean_p.extend(r_pvalues[i].iter().flatten());
            }
        }
        clean_p.sort_by(f64::total_cmp);
        let allowed = (target * clean_n as f64).floor() as usize;
        let alpha = clean_p.get(allowed).copied().unwrap_or(1.0);
        let (mut surges, mut detected) = (0.0, 0.0);
        for (i, c) in cases.iter().enumerate() {
            if c.series.freq == freq && !matches!(c.variant, Variant::Clean | Variant::Shifted) {
                surges += 1.0;
                if r_pvalues[i].iter().flatten().any(|&p| p < alpha) {
                    detected += 1.0;
                }
            }
        }
        let fpr = clean_p.iter().filter(|&&p| p < alpha).count() as f64 / clean_n as f64;
        println!(
            "\nR farringtonFlexible at the combination's FPR ({target:.4}): p-value threshold {alpha:.2e}, \
             FPR {fpr:.4}, POD all surges {:.3}\n",
            detected / surges
        );
    }

    real_events(&cfg);
}

// ---------------------------------------------------------------------------------------------
// Real, known events.

#[path = "../tests/support/testdata.rs"]
mod testdata;

/// The rows of a CSV in `testdata/borders/`.
fn rows(name: &str) -> Vec<Vec<String>> {
    testdata::read_csv("borders", name).1
}

/// OHSS USBP encounters by citizenship, monthly, calendar months.
fn ohss() -> HashMap<String, Vec<(Period, u64)>> {
    let mut out: HashMap<String, Vec<(Period, u64)>> = HashMap::new();
    for f in rows("ohss_usbp_encounters_monthly_citizenship_fy2000-fy2025m11.csv") {
        let fy: i32 = f[0].parse().expect("fiscal year");
        let m: u8 = f[1][..2].parse().expect("month number");
        // Fiscal month 1 is October of the previous calendar year.
        let cal_m = (m + 8) % 12 + 1;
        let cal_y = if m <= 3 { fy - 1 } else { fy };
        let q: u64 = f[3].replace(',', "").parse().expect("quantity");
        out.entry(f[2].clone())
            .or_default()
            .push((Period::Month(cal_y, cal_m), q));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// FSB entries to Russia by citizenship (all transport modes), quarterly.
fn fsb() -> HashMap<String, Vec<(Period, u64)>> {
    let mut sums: HashMap<String, HashMap<Period, u64>> = HashMap::new();
    for f in rows("fsb_russia_entries_by_country_transport_2010q1-2020q1.csv") {
        let v: u64 = f[3].replace(',', "").parse().unwrap_or(0);
        let d: Vec<&str> = f[7].split('/').collect();
        let (m, y): (u8, i32) = (d[0].parse().expect("month"), d[2].parse().expect("year"));
        *sums
            .entry(f[0].clone())
            .or_default()
            .entry(Period::Quarter(y, m.div_ceil(3)))
            .or_default() += v;
    }
    sums.into_iter()
        .map(|(k, v)| {
            let mut v: Vec<(Period, u64)> = v.into_iter().collect();
            v.sort();
            (k, v)
        })
        .collect()
}

/// A known event: the series, its onset and how many periods from the onset count as caught.
#[derive(Debug)]
struct Event {
    label: &'static str,
    source: &'static str,
    series: &'static str,
    onset: Period,
    periods: usize,
    /// false for collapses: an upward detector should stay quiet.
    surge: bool,
}

fn events() -> Vec<Event> {
    let m = |y, mo| Period::Month(y, mo);
    let q = |y, qq| Period::Quarter(y, qq);
    let ev = |label, source, series, onset, periods, surge| Event {
        label,
        source,
        series,
        onset,
        periods,
        surge,
    };
    vec![
        ev(
            "2018 FIFA World Cup in Russia",
            "fsb",
            "Peru",
            q(2018, 2),
            1,
            true,
        ),
        ev(
            "2018 FIFA World Cup in Russia",
            "fsb",
            "Argentina",
            q(2018, 2),
            1,
            true,
        ),
        ev(
            "2018 FIFA World Cup in Russia",
            "fsb",
            "Mexico",
            q(2018, 2),
            1,
            true,
        ),
        ev(
            "2018 FIFA World Cup in Russia",
            "fsb",
            "Colombia",
            q(2018, 2),
            1,
            true,
        ),
        ev(
            "2018 FIFA World Cup in Russia",
            "fsb",
            "Brazil",
            q(2018, 2),
            1,
            true,
        ),
        ev(
            "COVID-19 border closure (collapse)",
            "fsb",
            "China",
            q(2020, 1),
            1,
            false,
        ),
        ev(
            "DPRK entries 2024-Q3 (study surge; reported figures)",
            "nk",
            "North Korea",
            q(2024, 3),
            1,
            true,
        ),
        ev(
            "COVID-19 collapse, April 2020",
            "ohss",
            "Mexico",
            m(2020, 4),
            1,
            false,
        ),
        ev(
            "Title 42 rebound, mid-2020",
            "ohss",
            "Mexico",
            m(2020, 6),
            3,
            true,
        ),
        ev("2021 spring surge", "ohss", "Honduras", m(2021, 3), 3, true),
        ev(
            "2021 spring surge",
            "ohss",
            "Venezuela",
            m(2021, 3),
            3,
            true,
        ),
        ev("2021 spring surge", "ohss", "Brazil", m(2021, 3), 3, true),
        ev(
            "2021 spring surge",
            "ohss",
            "Nicaragua",
            m(2021, 3),
            3,
            true,
        ),
        ev(
            "2021 Colombian arrivals",
            "ohss",
            "Colombia",
            m(2021, 8),
            3,
            true,
        ),
        ev(
            "Del Rio camp, Sept 2021",
            "ohss",
            "Haiti",
            m(2021, 9),
            1,
            true,
        ),
        ev(
            "Turkish arrivals 2022",
            "ohss",
            "Turkey",
            m(2022, 3),
            3,
            true,
        ),
        ev(
            "Senegalese one-month spike",
            "ohss",
            "Senegal",
            m(2022, 3),
            1,
            true,
        ),
        ev(
            "Russian arrivals after the invasion of Ukraine",
            "ohss",
            "Russia",
            m(2022, 5),
            3,
            true,
        ),
        ev(
            "Peruvian arrivals 2022",
            "ohss",
            "Peru",
            m(2022, 5),
            3,
            true,
        ),
        ev(
            "Mauritanian arrivals 2023",
            "ohss",
            "Mauritania",
            m(2023, 3),
            3,
            true,
        ),
        ev(
            "Guinean arrivals 2023",
            "ohss",
            "Guinea",
            m(2023, 8),
            3,
            true,
        ),
    ]
}

/// North Korean entries to Russia, quarterly: FSB 2010-Q1..2020-Q1, then the reported figures
/// (2023 quarters, 2024-Q3) with the unreported quarters missing.
fn north_korea(fsb: &HashMap<String, Vec<(Period, u64)>>) -> Vec<(Period, u64)> {
    let mut v = fsb["North Korea"].clone();
    for f in rows("nk_entries_to_russia_reported_figures.csv") {
        if f[3] != "total" || !f[1].starts_with('Q') {
            continue;
        }
        let p = Period::Quarter(f[0].parse().expect("year"), f[1][1..].parse().expect("q"));
        if p > Period::Quarter(2020, 1) {
            v.push((p, f[4].parse().expect("value")));
        }
    }
    v.sort();
    v
}

fn real_events(cfg: &AnalysisConfig) {
    let ohss = ohss();
    let fsb = fsb();
    let nk = north_korea(&fsb);
    let country = Country::parse("USA").expect("country");
    let list = events();
    let mut obs = Vec::new();
    let mut series_for: Vec<Vec<(Period, u64)>> = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let s = match e.source {
            "ohss" => ohss[e.series].clone(),
            "fsb" => fsb[e.series].clone(),
            _ => nk.clone(),
        };
        for &(period, count) in &s {
            obs.push(Observation {
                source: "real".into(),
                country,
                category: format!("{i:03}"),
                period,
                count,
                release_id: String::new(),
            });
        }
        series_for.push(s);
    }
    let mut frames = aggregate(&obs).expect("aggregate");
    frames.sort_by(|a, b| a.key.category.cmp(&b.key.category));

    // The raw detectors and R see a complete index with gaps as missing counts.
    let mut r_series = Vec::new();
    let mut dense: Vec<(Vec<Option<u64>>, Period, usize)> = Vec::new();
    for (i, (e, s)) in list.iter().zip(&series_for).enumerate() {
        let first = s[0].0;
        let n = (s.last().unwrap().0.index() - first.index() + 1) as usize;
        let mut counts = vec![None; n];
        for &(p, v) in s {
            counts[(p.index() - first.index()) as usize] = Some(v);
        }
        let at = (e.onset.index() - first.index()) as usize;
        let freq = if matches!(first, Period::Month(..)) {
            12
        } else {
            4
        };
        let end = (at + e.periods).min(n);
        r_series.push(Series {
            id: format!("event{i:03}"),
            setting: format!("f{freq}"),
            freq,
            counts: counts.clone(),
            evaluate: Some(at..end),
        });
        dense.push((counts, first, freq));
    }
    let settings: Vec<Setting> = [4usize, 12]
        .into_iter()
        .map(|freq| Setting {
            name: format!("f{freq}"),
            freq,
            methods: vec![Method::Farrington(farrington_cfg(freq))],
            len: (0, 0),
            missing: 0.0,
        })
        .collect();
    let r = run_r(&r_series, &settings);

    println!("### Real events\n");
    println!(
        "| event | series | onset | value at onset | same period a year earlier | R farringtonFlexible | farrington | ears_c1 | ears_c2 | ears_c3 | combination (one series) | caught? |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, e) in list.iter().enumerate() {
        let (counts, first, freq) = &dense[i];
        let at = (e.onset.index() - first.index()) as usize;
        let window = at..(at + e.periods).min(counts.len());
        let periods: Vec<Period> = window.clone().map(|t| first.offset(t as i64)).collect();
        let mark = |hits: Vec<bool>| -> String {
            let hit: Vec<String> = hits
                .iter()
                .zip(&periods)
                .filter(|(h, _)| **h)
                .map(|(_, p)| p.to_string())
                .collect();
            if hit.is_empty() {
                "–".into()
            } else {
                hit.join(", ")
            }
        };
        let r_hits: Vec<bool> = window
            .clone()
            .map(|t| {
                r.outcome
                    .points
                    .get(&(format!("event{i:03}"), "farrington", t + 1))
                    .is_some_and(|p| p.alarm)
            })
            .collect();
        let r_failed = r
            .outcome
            .errors
            .contains_key(&(format!("event{i:03}"), "farrington"));
        let far = farrington_flexible(counts, *freq, Some(window.clone()), &farrington_cfg(*freq));
        let far_cell = match &far {
            Ok(p) => mark(p.iter().map(|p| p.alarm).collect()),
            Err(_) => "error (history)".into(),
        };
        let ears_cell = |method| {
            let c: Vec<f64> = counts
                .iter()
                .map(|v| v.map_or(f64::NAN, |v| v as f64))
                .collect();
            match ears_c(
                &c,
                Some(window.clone()),
                &EarsConfig {
                    method,
                    ..EarsConfig::default()
                },
            ) {
                Ok(p) => mark(p.iter().map(|p| p.alarm).collect()),
                Err(_) => "n/a (gap)".into(),
            }
        };
        let frame = &frames[i];
        let evals = evaluate_all(frame, &periods, cfg);
        let assessed = assess(frame, &evals);
        // One series alone: BH over its own tested periods is the per-series threshold.
        let survivors = fdr_survivors(&assessed, assessed.len(), cfg.fdr);
        let combo: Vec<bool> = periods
            .iter()
            .map(|p| {
                assessed.iter().zip(&survivors).any(|(a, s)| {
                    a.period == *p
                        && (!a.evidence.is_empty()
                            || (*s && a.statistical.iter().any(|f| f.p_value.is_some())))
                })
            })
            .collect();
        let caught = combo.iter().any(|&b| b);
        let verdict = match (e.surge, caught) {
            (true, true) => "caught",
            (true, false) => "missed",
            (false, false) => "quiet (correct)",
            (false, true) => "false alarm",
        };
        let value = counts[at].map_or("–".into(), |v| v.to_string());
        let prior = at
            .checked_sub(*freq)
            .and_then(|t| counts[t])
            .map_or("–".into(), |v| v.to_string());
        let onset = if e.periods > 1 {
            format!("{} (+{})", e.onset, e.periods - 1)
        } else {
            e.onset.to_string()
        };
        println!(
            "| {} | {} {} | {onset} | {value} | {prior} | {} | {far_cell} | {} | {} | {} | {} | {verdict} |",
            e.label,
            e.source.to_uppercase(),
            e.series,
            if r_failed {
                "error".into()
            } else {
                mark(r_hits)
            },
            ears_cell(EarsMethod::C1),
            ears_cell(EarsMethod::C2),
            ears_cell(EarsMethod::C3),
            mark(combo),
        );
    }
}
