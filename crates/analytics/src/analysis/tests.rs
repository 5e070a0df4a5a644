use super::evaluate::finite;
use super::*;
use crate::aggregate::{SeriesFrame, aggregate};
use crate::alert::AlertConfig;
use crate::surveillance::ears::{EarsConfig, EarsMethod, ears_c};
use crate::surveillance::farrington::{PowerTrans, ThresholdMethod};
use crate::testutil::{PRK_STUDY, consecutive, frame, quarters};
use borderwatch_model::{Country, Observation, Severity};
use borderwatch_model::{Finding, Freq, Period, SeriesKey, SurgeEvent, surge_id};

fn q(s: &str) -> Period {
    s.parse().unwrap()
}

fn all_periods(f: &SeriesFrame) -> Vec<Period> {
    f.points.iter().map(|p| p.0).collect()
}

fn everything() -> AnalysisConfig {
    AnalysisConfig {
        detectors: Detector::ALL.to_vec(),
        ..AnalysisConfig::default()
    }
}

/// A deterministic, Poisson-like wobble of about ±10% around `level`.
fn noisy(level: u64, n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 33) as f64 / (1u64 << 31) as f64; // [0, 1)
            let spread = (level as f64).sqrt() * 1.5;
            (level as f64 + (u - 0.5) * 2.0 * spread).round().max(0.0) as u64
        })
        .collect()
}

fn series(country: &str, category: &str, first: &str, values: &[u64]) -> SeriesFrame {
    let mut obs: Vec<Observation> = consecutive(category, first, values);
    for o in &mut obs {
        o.country = Country::parse(country).unwrap();
    }
    aggregate(&obs).unwrap().remove(0)
}

fn alarms(rows: &[Evaluation], d: Detector) -> Vec<Period> {
    rows.iter()
        .filter(|r| r.detector == d && r.alarm)
        .map(|r| r.period)
        .collect()
}

fn events(f: &SeriesFrame, cfg: &AnalysisConfig) -> Vec<SurgeEvent> {
    let rows = evaluate_all(f, &all_periods(f), cfg);
    decide(&assess(f, &rows), cfg, "rel", "now")
}

// --- rows ------------------------------------------------------------------------------------

#[test]
fn evaluate_all_gives_one_row_per_period_and_detector() {
    let f = quarters("2015-Q1", &noisy(500, 40, 1));
    let rows = evaluate_all(&f, &all_periods(&f), &everything());
    let n = Detector::ALL.len();
    assert_eq!(rows.len(), 40 * n);
    for (i, chunk) in rows.chunks(n).enumerate() {
        let names: Vec<Detector> = chunk.iter().map(|r| r.detector).collect();
        assert_eq!(names, Detector::ALL);
        assert!(chunk.iter().all(|r| r.period == f.points[i].0));
        assert!(chunk.iter().all(|r| r.value == f.points[i].1));
    }
    // Farrington runs from 3 years and a quarter of history on (b = 3, w = 1).
    let farr: Vec<&Evaluation> = rows
        .iter()
        .filter(|r| r.detector == Detector::Farrington)
        .collect();
    assert!(farr[..13].iter().all(|r| r.upper_bound.is_none()));
    assert!(farr[13..].iter().all(|r| r.upper_bound.is_some()));
}

#[test]
fn evaluate_all_skips_missing_and_repeated_periods() {
    let f = quarters("2015-Q1", &noisy(500, 20, 2));
    let rows = evaluate_all(
        &f,
        &[q("2019-Q4"), q("2030-Q1"), q("2019-Q4"), q("2019-10")],
        &AnalysisConfig::default(),
    );
    assert_eq!(rows.len(), AnalysisConfig::default().enabled().len());
    assert!(rows.iter().all(|r| r.period == q("2019-Q4")));
}

#[test]
fn short_series_give_quiet_rows_without_bounds() {
    let f = quarters("2024-Q1", &[10, 400, 9000]);
    let rows = evaluate_all(&f, &all_periods(&f), &everything());
    assert_eq!(rows.len(), 3 * Detector::ALL.len());
    for r in rows.iter().filter(|r| !r.detector.is_evidence()) {
        assert!(!r.alarm, "{r:?}");
        assert_eq!((r.expected, r.upper_bound, r.p_value), (None, None, None));
    }
    assert!(events(&f, &everything()).is_empty());
}

#[test]
fn a_series_starting_mid_history_does_not_alarm() {
    let f = frame(&[("2024-Q2", 400), ("2024-Q3", 9000)]);
    assert!(events(&f, &everything()).is_empty());
    let g = frame(&[("2024-Q3", 9000)]);
    assert!(events(&g, &everything()).is_empty());
}

#[test]
fn zeros_never_alarm() {
    let f = quarters("2015-Q1", &[0; 40]);
    let rows = evaluate_all(&f, &all_periods(&f), &everything());
    assert!(rows.iter().all(|r| !r.alarm), "no alarm on zeros");
    assert!(events(&f, &everything()).is_empty());
}

#[test]
fn a_few_cases_after_zeros_do_not_alarm() {
    let mut values = vec![0; 30];
    values.extend([1, 3, 0, 2, 4, 1]);
    let f = quarters("2015-Q1", &values);
    assert!(events(&f, &everything()).is_empty());
}

#[test]
fn gaps_do_not_crash_or_alarm() {
    // Every third quarter missing, and a long hole in the middle.
    let values = noisy(300, 48, 3);
    let obs: Vec<Observation> = consecutive("study", "2013-Q1", &values)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 1 && !(20..28).contains(i))
        .map(|(_, o)| o)
        .collect();
    let f = aggregate(&obs).unwrap().remove(0);
    let rows = evaluate_all(&f, &all_periods(&f), &everything());
    assert_eq!(rows.len(), f.points.len() * Detector::ALL.len());
    assert!(events(&f, &everything()).is_empty());
}

#[test]
fn gaps_do_not_hide_a_surge() {
    let mut values = noisy(300, 40, 4);
    values.push(2000);
    let obs: Vec<Observation> = consecutive("study", "2014-Q1", &values)
        .into_iter()
        .enumerate()
        // Gaps outside the last 4 quarters: a gap there leaves farrington's `limit54` sum NA,
        // which (as in R) means no bound and no alarm.
        .filter(|(i, _)| i % 7 != 1)
        .map(|(_, o)| o)
        .collect();
    let f = aggregate(&obs).unwrap().remove(0);
    let cfg = AnalysisConfig::only("farrington,ears_c2").unwrap();
    let rows = evaluate_all(&f, &[q("2024-Q1")], &cfg);
    assert!(alarms(&rows, Detector::Farrington).contains(&q("2024-Q1")));
    assert!(alarms(&rows, Detector::EarsC2).contains(&q("2024-Q1")));
}

#[test]
fn yearly_series_run_only_the_evidence_detectors() {
    let obs: Vec<Observation> = (2000..2025)
        .map(|y| {
            let count = if y == 2024 {
                90_000
            } else {
                1000 + (y as u64 % 7) * 10
            };
            crate::testutil::observation("study", Period::Year(y), count)
        })
        .collect();
    let f = aggregate(&obs).unwrap().remove(0);
    assert_eq!(f.freq, Freq::Year);
    let rows = evaluate_all(&f, &all_periods(&f), &everything());
    for r in rows.iter().filter(|r| !r.detector.is_evidence()) {
        assert_eq!((r.alarm, r.upper_bound), (false, None), "{r:?}");
    }
    assert!(alarms(&rows, Detector::RecordHigh).contains(&Period::Year(2024)));
}

// --- baselines -------------------------------------------------------------------------------

#[test]
fn an_earlier_surge_does_not_poison_the_ears_baseline() {
    let mut values = noisy(100, 30, 5);
    values[20] = 400;
    values[25] = 180;
    let f = quarters("2015-Q1", &values);
    let mut cfg = AnalysisConfig::only("ears_c2").unwrap();
    let rows = evaluate_all(&f, &all_periods(&f), &cfg);
    let fired = alarms(&rows, Detector::EarsC2);
    assert!(fired.contains(&f.points[20].0), "{fired:?}");
    assert!(fired.contains(&f.points[25].0), "{fired:?}");
    // Without exclusion, the 400 in the window hides the second rise (R's behaviour).
    cfg.ears.exclude_alarms = false;
    let rows = evaluate_all(&f, &all_periods(&f), &cfg);
    assert!(!alarms(&rows, Detector::EarsC2).contains(&f.points[25].0));
}

#[test]
fn a_lasting_new_level_stops_alarming() {
    let mut values = noisy(100, 20, 6);
    values.extend(noisy(300, 20, 7));
    let f = quarters("2015-Q1", &values);
    for d in ["ears_c1", "ears_c2", "ears_c3", "cusum"] {
        let cfg = AnalysisConfig::only(d).unwrap();
        let rows = evaluate_all(&f, &all_periods(&f), &cfg);
        let late: Vec<&Evaluation> = rows.iter().filter(|r| r.alarm).collect();
        assert!(!late.is_empty(), "{d} sees the shift");
        assert!(
            late.iter().all(|r| r.period < f.points[34].0),
            "{d} keeps alarming: {late:?}"
        );
    }
}

#[test]
fn without_exclusion_and_gaps_ears_matches_the_plain_r_function() {
    let values = noisy(80, 30, 8);
    let f = quarters("2015-Q1", &values);
    let mut cfg = AnalysisConfig::only("ears_c1,ears_c3").unwrap();
    cfg.ears.exclude_alarms = false;
    cfg.ears.min_sigma = 0.0;
    cfg.min_value = 0;
    cfg.long_run_guard = false;
    let rows = evaluate_all(&f, &all_periods(&f), &cfg);
    let counts: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    for (d, method) in [
        (Detector::EarsC1, EarsMethod::C1),
        (Detector::EarsC3, EarsMethod::C3),
    ] {
        let r = ears_c(
            &counts,
            None,
            &EarsConfig {
                method,
                ..EarsConfig::default()
            },
        )
        .unwrap();
        let ours: Vec<&Evaluation> = rows.iter().filter(|e| e.detector == d).collect();
        for pt in r {
            let e = ours[pt.index];
            assert_eq!(e.alarm, pt.alarm, "{d} at {}", pt.index);
            assert_eq!(e.upper_bound, finite(pt.upper_bound), "{d} at {}", pt.index);
        }
    }
}

#[test]
fn the_recovery_after_a_collapse_is_not_a_surge() {
    // Five normal years, a border closure down to 30-50%, a slow recovery (the demo's shape).
    let dip = [
        0.85, 0.30, 0.40, 0.40, 0.40, 0.45, 0.50, 0.50, 0.55, 0.62, 0.70, 0.75, 0.80, 0.85, 0.90,
        0.92, 0.95, 0.97, 1.00, 1.00,
    ];
    let normal = noisy(2000, 40, 11);
    let values: Vec<u64> = normal
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 * dip.get(i.wrapping_sub(20)).copied().unwrap_or(1.0)) as u64)
        .collect();
    let f = quarters("2015-Q1", &values);
    assert!(events(&f, &everything()).is_empty());
    // Without the guard, the recovery alarms against the collapsed baselines.
    let unguarded = AnalysisConfig {
        long_run_guard: false,
        ..everything()
    };
    let rows = evaluate_all(&f, &all_periods(&f), &unguarded);
    assert!(rows.iter().any(|r| r.alarm && !r.detector.is_evidence()));
    // A real surge after the recovery still fires.
    let mut surged = values.clone();
    surged.push(6000);
    let g = quarters("2015-Q1", &surged);
    let found = events(&g, &AnalysisConfig::default());
    assert!(found.iter().any(|e| e.period == q("2025-Q1")), "{found:?}");
}

// --- assessment, BH and decisions ------------------------------------------------------------

#[test]
fn bh_adjust_matches_r_p_adjust() {
    // p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.2), "BH") = 0.025 0.05 0.05 0.025 0.2
    let got = bh_adjust(&[0.01, 0.04, 0.03, 0.005, 0.2], 5);
    for (g, w) in got.iter().zip([0.025, 0.05, 0.05, 0.025, 0.2]) {
        assert!((g - w).abs() < 1e-12, "{got:?}");
    }
    // p.adjust(c(0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205), "BH")
    let p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205];
    let want = [
        0.008,
        0.032,
        0.0672,
        0.0672,
        0.0672,
        0.08,
        0.084571428571,
        0.205,
    ];
    let got = bh_adjust(&p, 8);
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{got:?}");
    }
}

#[test]
fn bh_adjust_counts_tests_left_out() {
    // p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.2), "BH", n = 10): twice the values above, capped.
    let got = bh_adjust(&[0.01, 0.04, 0.03, 0.005, 0.2], 10);
    for (g, w) in got.iter().zip([0.05, 0.1, 0.1, 0.05, 0.4]) {
        assert!((g - w).abs() < 1e-12, "{got:?}");
    }
    assert_eq!(bh_adjust(&[0.9, f64::NAN], 2), vec![1.0, 1.0]);
    assert!(bh_adjust(&[], 0).is_empty());
}

fn candidate(p: Option<f64>) -> Assessment {
    Assessment {
        key: SeriesKey::new("fsb", Country::parse("CHN").unwrap(), "tourism"),
        period: q("2024-Q2"),
        value: 420,
        evidence: Vec::new(),
        statistical: vec![Finding {
            detector: "farrington".into(),
            expected: Some(130.0),
            upper_bound: Some(210.0),
            p_value: p,
            message: "far above the expected 130 (upper bound 210, p < 0.001)".into(),
            baseline: None,
        }],
        p_value: p,
        recent: None,
        recent_low: None,
        fall: None,
        fall_p: None,
        live: true,
    }
}

#[test]
fn fdr_survivors_are_the_bh_rejections() {
    let p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205];
    let a: Vec<Assessment> = p.iter().map(|&p| candidate(Some(p))).collect();
    let s = fdr_survivors(&a, tested(&a), 0.05);
    assert_eq!(s, [true, true, false, false, false, false, false, false]);
    // The same p-values among 100 tests: only the smallest survives (0.001 * 100 = 0.1 > 0.05
    // fails too).
    assert!(fdr_survivors(&a, 100, 0.05).iter().all(|s| !s));
    assert_eq!(fdr_survivors(&[candidate(None)], 1, 0.05), [false]);
}

#[test]
fn assess_takes_the_bonferroni_minimum_of_alarming_detectors() {
    let f = quarters("2024-Q1", &[100]);
    let row = |detector, alarm, p| Evaluation {
        detector,
        period: q("2024-Q1"),
        value: 100,
        expected: Some(50.0),
        upper_bound: Some(80.0),
        alarm,
        p_value: p,
        finding: None,
    };
    let a = assess(
        &f,
        &[
            row(Detector::Farrington, true, Some(0.01)),
            row(Detector::EarsC2, false, Some(0.0001)),
            row(Detector::Cusum, true, None),
        ],
    );
    assert_eq!(a.len(), 1);
    // EARS's p-value does not count without its alarm: min(0.01, 1) * 2.
    assert!((a[0].p_value.unwrap() - 0.02).abs() < 1e-12);
    let none = assess(&f, &[row(Detector::Cusum, true, None)]);
    assert_eq!(none[0].p_value, None);
}

#[test]
fn a_cusum_alarm_alone_makes_no_surge() {
    let mut a = candidate(None);
    a.statistical[0].detector = "cusum".into();
    assert!(surge_event(&a, true, "fp", &ungated(), "r", "t").is_none());
}

/// The alert settings without the score gate: the surge decision alone.
fn ungated() -> AlertConfig {
    AlertConfig {
        min_score: 0.0,
        ..AlertConfig::default()
    }
}

#[test]
fn a_statistical_surge_needs_to_survive_bh() {
    let a = candidate(Some(0.0004));
    assert!(surge_event(&a, false, "fp", &ungated(), "r", "t").is_none());
    let e = surge_event(&a, true, "fp", &ungated(), "r", "t").unwrap();
    assert_eq!(
        e.explanation,
        "420 entries of Chinese citizens for tourism in 2024-Q2: far above the expected 130 \
         (upper bound 210, p < 0.001)"
    );
    assert_eq!(e.severity, Severity::Low);
}

#[test]
fn a_significant_rise_too_small_to_print_is_no_surge() {
    // 420 against an expected 130: significant, but its score (about 40) is below the gate.
    let a = candidate(Some(0.0004));
    assert!(surge_event(&a, true, "fp", &AlertConfig::default(), "r", "t").is_none());
}

#[test]
fn the_headline_case_keeps_its_explanation() {
    let f = quarters("2019-Q1", &PRK_STUDY);
    let all = events(&f, &AnalysisConfig::default());
    let e = all.iter().find(|e| e.period == q("2024-Q3")).unwrap();
    assert!(
        e.explanation.starts_with(
            "3,765 entries of North Korean citizens for study in 2024-Q3: \
             more than in the whole of 2019 (3,200); the highest quarter on record"
        ),
        "{}",
        e.explanation
    );
    assert_eq!(e.severity, Severity::Critical);
    assert_eq!(
        e.explanation.matches("p < ").count(),
        1,
        "one statistical clause, however many detectors agree: {}",
        e.explanation
    );
    let names: Vec<&str> = e.findings.iter().map(|f| f.detector.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["exceeds_prior_year", "record_high", "year_over_year"]
    );
    assert_eq!(
        e.id,
        surge_id(
            &f.key,
            q("2024-Q3"),
            &AnalysisConfig::default().fingerprint()
        )
    );
}

/// Chinese tourism: ~650 a quarter in 2013-2014 (the record), ~150 since, then 420.
fn chinese_tourism() -> SeriesFrame {
    let mut values = noisy(650, 8, 9);
    values.extend(noisy(150, 37, 10));
    values.push(420);
    series("CHN", "tourism", "2013-Q1", &values)
}

#[test]
fn a_statistical_surge_reads_like_a_journalist_wrote_it() {
    let f = chinese_tourism();
    let last = f.points.last().unwrap().0;
    assert_eq!(last, q("2024-Q2"));
    // 420 against 150 is significant but scores about 40, below the default gate: the
    // sentence is what is tested here.
    let cfg = AnalysisConfig {
        alert: ungated(),
        ..AnalysisConfig::default()
    };
    let all = events(&f, &cfg);
    let e = all
        .iter()
        .find(|e| e.period == last)
        .expect("a surge in 2024-Q2");
    assert!(
        e.findings
            .iter()
            .all(|f| !f.detector.contains("year") && f.detector != "record_high")
    );
    assert!(
        e.explanation.starts_with(
            "420 entries of Chinese citizens for tourism in 2024-Q2: far above the expected "
        ),
        "{}",
        e.explanation
    );
    assert!(e.explanation.contains("(upper bound "), "{}", e.explanation);
    assert!(e.explanation.contains("p < 0.001"), "{}", e.explanation);
    assert_eq!(e.severity, Severity::Low);
}

#[test]
fn decide_controls_false_discoveries_across_series() {
    // Without the score gate, so that what is counted is Benjamini–Hochberg's work alone.
    let cfg = AnalysisConfig {
        alert: ungated(),
        ..AnalysisConfig::default()
    };
    let mut assessments = Vec::new();
    for s in 0..150u64 {
        let f = series(
            "VNM",
            &format!("c{s}"),
            "2014-Q1",
            &noisy(200 + s * 13, 40, 100 + s),
        );
        let rows = evaluate_all(&f, &all_periods(&f), &cfg);
        assessments.extend(assess(&f, &rows));
    }
    let f = chinese_tourism();
    let rows = evaluate_all(&f, &all_periods(&f), &cfg);
    assessments.extend(assess(&f, &rows));
    let found = decide(&assessments, &cfg, "rel", "now");
    assert!(
        found
            .iter()
            .any(|e| e.category == "tourism" && e.period == q("2024-Q2")),
        "the surge survives"
    );
    let false_alarms = found.iter().filter(|e| e.category != "tourism").count();
    assert!(
        false_alarms <= 2,
        "{false_alarms} false alarms in 150 quiet series"
    );
}

#[test]
fn evaluate_frames_matches_one_by_one() {
    let a = chinese_tourism();
    let b = quarters("2019-Q1", &PRK_STUDY);
    let cfg = AnalysisConfig::default();
    let jobs = vec![(&a, all_periods(&a)), (&b, all_periods(&b))];
    let together = evaluate_frames(&jobs, &cfg);
    assert_eq!(together[0], evaluate_all(&a, &all_periods(&a), &cfg));
    assert_eq!(together[1], evaluate_all(&b, &all_periods(&b), &cfg));
}

#[test]
fn assess_frames_matches_one_by_one_and_marks_the_live_edge() {
    let a = chinese_tourism();
    let b = quarters("2019-Q1", &PRK_STUDY);
    let cfg = everything();
    // `a` gets its newest quarter in this release (live); `b` is a first load (history).
    let newest = vec![*all_periods(&a).last().unwrap()];
    let jobs = vec![(&a, newest.clone()), (&b, all_periods(&b))];
    let rows = evaluate_frames(&jobs, &cfg);
    let together = assess_frames(&jobs, &rows, cfg.alert.live_window);
    assert_eq!(together.len(), 2);
    let mut live_a = assess(&a, &rows[0]);
    assert_eq!(live_a.len(), 1);
    live_a[0].live = true;
    assert_eq!(together[0].assessments, live_a);
    assert_eq!(together[0].bands, bands(&rows[0]));
    assert_eq!(together[1].assessments, assess(&b, &rows[1]));
    assert!(together[1].assessments.iter().all(|x| !x.live));
    assert_eq!(together[1].bands, bands(&rows[1]));
}

/// The bands as the service first computed them: for each period, every row searched.
fn bands_by_search(rows: &[Evaluation]) -> Vec<borderwatch_model::Band> {
    let preferred = [
        Detector::Farrington,
        Detector::EarsC2,
        Detector::EarsC1,
        Detector::EarsC3,
    ];
    let mut periods: Vec<Period> = rows.iter().map(|r| r.period).collect();
    periods.dedup();
    periods
        .into_iter()
        .filter_map(|period| {
            preferred.iter().find_map(|&d| {
                let r = rows
                    .iter()
                    .find(|r| r.period == period && r.detector == d)?;
                let (e, u) = (r.expected?, r.upper_bound?);
                (e.is_finite() && u.is_finite()).then(|| borderwatch_model::Band {
                    period,
                    detector: d.name().to_string(),
                    expected: e,
                    upper_bound: u,
                })
            })
        })
        .collect()
}

#[test]
fn bands_take_the_preferred_bounded_detector_of_each_period() {
    let f = chinese_tourism();
    let everything_rows = evaluate_all(&f, &all_periods(&f), &everything());
    let b = bands(&everything_rows);
    assert_eq!(b, bands_by_search(&everything_rows));
    // Farrington needs years of history: the first band is EARS C1's (C2 skips two more
    // periods), the last farrington's.
    assert!(b.len() > 30, "{} bands", b.len());
    assert_eq!(b.first().unwrap().detector, "ears_c1");
    assert_eq!(b.last().unwrap().detector, "farrington");
    // Without farrington, EARS C2 bounds every period it can and C1 the earlier ones.
    let ears = AnalysisConfig::only("ears_c1,ears_c2").unwrap();
    let ears_rows = evaluate_all(&f, &all_periods(&f), &ears);
    let b = bands(&ears_rows);
    assert_eq!(b, bands_by_search(&ears_rows));
    let c1 = b.iter().take_while(|x| x.detector == "ears_c1").count();
    assert!(c1 > 0 && c1 < b.len(), "{c1} of {} from ears_c1", b.len());
    assert!(b[c1..].iter().all(|x| x.detector == "ears_c2"));
    assert!(bands(&[]).is_empty());
}

// --- configuration ---------------------------------------------------------------------------

#[test]
fn defaults_fit_months_and_quarters() {
    let cfg = AnalysisConfig::default();
    for f in [&cfg.farrington.monthly, &cfg.farrington.quarterly] {
        assert_eq!((f.b, f.w), (3, 1));
        assert!(f.reweight);
    }
    assert!(cfg.farrington.for_freq(Freq::Year).is_none());
    assert_eq!(cfg.fdr, 0.05);
    cfg.validate().unwrap();
}

#[test]
fn fingerprint_is_stable_and_follows_what_runs() {
    let a = AnalysisConfig::default();
    assert_eq!(a.fingerprint(), AnalysisConfig::default().fingerprint());
    assert!(a.fingerprint().starts_with("analysis-v1:"));
    let mut b = a.clone();
    b.set("farrington.b", "4").unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
    // A disabled detector's parameters change nothing.
    let only = AnalysisConfig::only("farrington").unwrap();
    let mut other = only.clone();
    other.set("ears.alpha", "0.01").unwrap();
    assert_eq!(only.fingerprint(), other.fingerprint());
    assert_ne!(only.fingerprint(), a.fingerprint());
}

#[test]
fn set_reads_r_parameter_names() {
    let mut c = AnalysisConfig::default();
    for pair in [
        "farrington.b=4",
        "farrington.w=2",
        "farrington.alpha=0.01",
        "farrington.reweight=false",
        "farrington.weights_threshold=1",
        "farrington.trend=FALSE",
        "farrington.p_threshold_trend=1",
        "farrington.limit54=3,2",
        "farrington.power_trans=1/2",
        "farrington.no_periods=1",
        "farrington.past_periods_not_included=4",
        "farrington.threshold_method=nbPlugin",
    ] {
        c.set_pair(pair).unwrap();
    }
    let f = &c.farrington.quarterly;
    assert_eq!((f.b, f.w, f.alpha), (4, 2, 0.01));
    assert!(!f.reweight && !f.trend);
    assert_eq!(f.limit54, (3, 2));
    assert_eq!(f.power_trans, PowerTrans::Half);
    assert_eq!(f.past_periods_not_included, Some(4));
    assert_eq!(f.threshold_method, ThresholdMethod::NbPlugin);
    assert_eq!(c.farrington.monthly, c.farrington.quarterly);

    c.set("b", "5").unwrap();
    c.set("farrington.quarterly.b", "2").unwrap();
    assert_eq!((c.farrington.monthly.b, c.farrington.quarterly.b), (5, 2));
    c.set("farrington.past_periods_not_included", "null")
        .unwrap();
    assert_eq!(c.farrington.monthly.past_periods_not_included, None);

    for pair in [
        "ears.baseline=5",
        "ears.alpha=0.01",
        "ears.min_sigma=0",
        "cusum.k=0.5",
        "cusum.h=4",
        "fdr=0.1",
        "min_value=0",
        "year_over_year.min_ratio=5",
    ] {
        c.set_pair(pair).unwrap();
    }
    assert_eq!((c.ears.baseline, c.ears.alpha), (5, Some(0.01)));
    assert_eq!(
        (c.cusum.k, c.cusum.h, c.fdr, c.min_value),
        (0.5, 4.0, 0.1, 0)
    );
    assert_eq!(c.evidence.year_over_year.min_ratio, 5.0);
}

/// `settings` is `set`'s inverse: every key it lists is one `set` takes, and setting each
/// value on the defaults rebuilds a changed configuration exactly (`config check` prints
/// settings a file can hold).
#[test]
fn settings_read_back_through_set() {
    let mut changed = AnalysisConfig::default();
    for pair in [
        "farrington.quarterly.b=4",
        "farrington.monthly.limit54=3,2",
        "farrington.power_trans=none",
        "farrington.threshold_method=muan",
        "farrington.past_periods_not_included=2",
        "ears.alpha=0.01",
        "cusum.h=3.5",
        "fall.min_expected=50",
        "exceeds_prior_year.recent_years=3",
        "alert.min_score=55",
        "fdr=0.1",
    ] {
        changed.set_pair(pair).unwrap();
    }
    for cfg in [AnalysisConfig::default(), changed] {
        let mut rebuilt = AnalysisConfig::only("farrington").unwrap();
        rebuilt.detectors = cfg.detectors.clone();
        for (key, value) in cfg.settings() {
            rebuilt
                .set(&key, &value)
                .unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
        }
        assert_eq!(rebuilt, cfg);
    }
}

#[test]
fn set_rejects_unknown_keys_by_name() {
    let mut c = AnalysisConfig::default();
    for key in ["farrington.q", "ears.bogus", "bogus", "farrington.weekly.b"] {
        let err = c.set(key, "1").unwrap_err().to_string();
        assert!(err.contains(&format!("`{key}` is not a setting")), "{err}");
        assert!(err.contains("farrington.b"), "lists the known keys: {err}");
    }
    assert_eq!(c, AnalysisConfig::default());
}

#[test]
fn set_rejects_bad_values_naming_the_key() {
    let mut c = AnalysisConfig::default();
    for (key, value) in [
        ("farrington.b", "three"),
        ("farrington.limit54", "5"),
        ("farrington.power_trans", "3/4"),
        ("farrington.threshold_method", "exact"),
        ("farrington.reweight", "maybe"),
        ("fdr", "NaN"),
        ("ears.baseline", "-1"),
    ] {
        let err = c.set(key, value).unwrap_err().to_string();
        assert!(err.contains(&format!("setting `{key}`")), "{err}");
        assert!(err.contains(value), "{err}");
    }
    let err = c.set_pair("farrington.b").unwrap_err().to_string();
    assert!(err.contains("KEY=VALUE"), "{err}");
}

#[test]
fn validate_rejects_settings_detectors_would_refuse() {
    let c = AnalysisConfig {
        fdr: 0.0,
        ..AnalysisConfig::default()
    };
    assert!(c.validate().unwrap_err().to_string().contains("fdr"));
    let mut c = AnalysisConfig::default();
    c.set("farrington.no_periods", "3").unwrap();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("no_periods"), "{err}");
    let mut c = AnalysisConfig::default();
    c.set("ears.baseline", "2").unwrap();
    assert!(c.validate().is_err());
}

#[test]
fn detector_lists_parse_and_reject_unknown_names() {
    assert_eq!(
        Detector::parse_list("cusum, farrington,ears_c1,farrington").unwrap(),
        [Detector::Farrington, Detector::EarsC1, Detector::Cusum]
    );
    let err = Detector::parse_list("farrington,glrnb")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`glrnb` is not a detector"), "{err}");
    assert!(err.contains("ears_c3"), "{err}");
    assert_eq!(AnalysisConfig::only("").unwrap(), AnalysisConfig::default());
}

#[test]
fn config_reads_partial_json() {
    let c: AnalysisConfig = serde_json::from_str(
        r#"{"fdr": 0.1, "detectors": ["farrington", "record_high"],
            "farrington": {"quarterly": {"b": 4}}}"#,
    )
    .unwrap();
    assert_eq!(c.fdr, 0.1);
    assert_eq!(c.enabled(), [Detector::RecordHigh, Detector::Farrington]);
    assert_eq!(c.farrington.quarterly.b, 4);
    assert_eq!(
        c.farrington.quarterly.w, 1,
        "a partial block keeps the other defaults"
    );
    assert_eq!(c.farrington.monthly.b, 3);
    assert!(!c.evidence_config().year_over_year.enabled);
}

// --- falls -----------------------------------------------------------------------------------

#[test]
fn a_collapse_is_one_fall_with_a_checkable_sentence_and_no_surge() {
    let mut values = noisy(20_000, 40, 11);
    values.push(900);
    let f = quarters("2014-Q1", &values);
    let out = events(&f, &AnalysisConfig::default());
    let last = f.points.last().unwrap().0;
    let at_last: Vec<&SurgeEvent> = out.iter().filter(|e| e.period == last).collect();
    assert_eq!(at_last.len(), 1, "{out:#?}");
    let fall = at_last[0];
    assert_eq!(fall.direction, borderwatch_model::Direction::Fall);
    assert_eq!(fall.findings.len(), 1);
    assert_eq!(fall.findings[0].detector, "fall");
    assert!(
        fall.explanation.contains("far below the expected")
            && fall
                .explanation
                .contains("the lowest on record (since 2014-Q1)"),
        "{}",
        fall.explanation
    );
    assert!(
        fall.score >= AlertConfig::default().min_score,
        "{}",
        fall.score
    );
    // Its id is not the id a surge of the same period would have.
    assert_ne!(
        fall.id,
        surge_id(&f.key, last, &AnalysisConfig::default().fingerprint())
    );
    // A steady series has no fall.
    assert!(
        events(
            &quarters("2014-Q1", &noisy(20_000, 41, 11)),
            &AnalysisConfig::default()
        )
        .iter()
        .all(|e| e.direction.is_rise()),
    );
}

#[test]
fn a_small_series_dropping_to_zero_is_not_tested_for_a_fall() {
    let mut values = noisy(60, 40, 12);
    values.push(0);
    let f = quarters("2014-Q1", &values);
    let rows = evaluate_all(&f, &all_periods(&f), &AnalysisConfig::default());
    let last = rows.iter().rfind(|r| r.detector == Detector::Fall).unwrap();
    assert!(!last.alarm && last.p_value.is_none(), "{last:?}");
    assert!(
        events(&f, &AnalysisConfig::default())
            .iter()
            .all(|e| e.direction.is_rise())
    );
}

#[test]
fn falls_are_their_own_false_discovery_family() {
    // Testing for falls adds nothing to the surges' family: a surge's survival does not
    // depend on how many periods were tested for a fall.
    let mut values = noisy(500, 40, 13);
    values.push(5_000);
    let f = quarters("2014-Q1", &values);
    let rows = evaluate_all(&f, &all_periods(&f), &AnalysisConfig::default());
    let assessed = assess(&f, &rows);
    assert!(tested_falls(&assessed) > 0);
    let without_falls = AnalysisConfig {
        detectors: AnalysisConfig::default()
            .detectors
            .into_iter()
            .filter(|d| !d.is_fall())
            .collect(),
        ..AnalysisConfig::default()
    };
    let rows_without = evaluate_all(&f, &all_periods(&f), &without_falls);
    assert_eq!(tested(&assessed), tested(&assess(&f, &rows_without)));
    assert!(
        events(&f, &AnalysisConfig::default())
            .iter()
            .any(|e| e.direction.is_rise() && e.period == f.points.last().unwrap().0)
    );
}
