//! How loud a surge is and the sentence a journalist would print about it, from its
//! findings. `analysis::decide` turns findings into surge events with these.

use borderwatch_model::{Finding, Period, SeriesKey, Severity, category_phrase, counted_subject};

use crate::detect::DETECTORS;

/// How loud a surge is, from its findings: the evidence a reader can check first, then the
/// strength of the statistics.
///
/// Evidence (`exceeds_prior_year`, `record_high`, `year_over_year`):
/// - **critical**: more than in a whole earlier year *and* a record;
/// - **high**: any two evidence rules, or at least 10 times the same period a year earlier;
/// - **medium**: a record at least 50% above the previous one, or at least 5 times the
///   same period a year earlier;
/// - **low**: any other single evidence finding.
///
/// Statistics alone (`farrington`, `ears_*`, p-values that survived false-discovery control),
/// from the value against the strongest finding's upper bound: **high** from 3 times the
/// bound, **medium** from 1.5 times, **low** below. Never critical: there is no sentence a
/// reader can check.
///
/// Both: the louder of the two, and statistical corroboration (a statistical alarm, CUSUM's
/// included) raises a low or medium evidence surge by one level (never to critical).
pub fn severity(value: u64, findings: &[Finding]) -> Severity {
    let evidence: Vec<&Finding> = findings.iter().filter(|f| is_evidence(f)).collect();
    let statistical: Vec<&Finding> = findings.iter().filter(|f| !is_evidence(f)).collect();
    let from_evidence = evidence_severity(value, &evidence);
    let from_statistics = statistical
        .iter()
        .filter_map(|f| f.upper_bound.filter(|_| f.p_value.is_some()))
        .map(|u| {
            if u > 0.0 {
                value as f64 / u
            } else {
                f64::INFINITY
            }
        })
        .reduce(f64::max)
        .map(|r| {
            if r >= 3.0 {
                Severity::High
            } else if r >= 1.5 {
                Severity::Medium
            } else {
                Severity::Low
            }
        });
    match (from_evidence, from_statistics) {
        (Some(e), _) if !statistical.is_empty() => {
            let raised = match e {
                Severity::Low => Severity::Medium,
                Severity::Medium => Severity::High,
                other => other,
            };
            raised.max(from_statistics.unwrap_or_default())
        }
        (Some(e), _) => e,
        (None, Some(s)) => s,
        (None, None) => Severity::Low,
    }
}

fn is_evidence(f: &Finding) -> bool {
    DETECTORS.contains(&f.detector.as_str())
}

fn evidence_severity(value: u64, findings: &[&Finding]) -> Option<Severity> {
    if findings.is_empty() {
        return None;
    }
    let find = |name: &str| findings.iter().find(|f| f.detector == name);
    // Both detectors put the figure compared with in `expected`.
    let ratio_to_expected = |f: &&Finding| match f.expected {
        Some(e) if e > 0.0 => value as f64 / e,
        _ => f64::INFINITY,
    };
    let prior_year = find("exceeds_prior_year").is_some();
    let record = find("record_high").map(ratio_to_expected);
    let yoy = find("year_over_year").map(ratio_to_expected);
    Some(if prior_year && record.is_some() {
        Severity::Critical
    } else if findings.len() >= 2 || yoy.is_some_and(|r| r >= 10.0) {
        Severity::High
    } else if record.is_some_and(|r| r >= 1.5) || yoy.is_some_and(|r| r >= 5.0) {
        Severity::Medium
    } else {
        Severity::Low
    })
}

/// "3,765 entries of North Korean citizens for study in 2024-Q3: " followed by the findings'
/// messages, joined by "; ".
pub fn explanation(key: &SeriesKey, period: Period, value: u64, findings: &[Finding]) -> String {
    let mut subject = counted_subject(&key.source, &key.country, value);
    let category = category_phrase(&key.category);
    if !category.is_empty() {
        subject.push(' ');
        subject.push_str(&category);
    }
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    format!("{subject} in {period}: {}", messages.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::SeriesFrame;
    use crate::aggregate::aggregate;
    use crate::detect::DetectorConfig;
    use crate::testutil::{PRK_STUDY, consecutive, frame, quarters};
    use crate::{AnalysisConfig, assess, decide, evaluate_all};
    use borderwatch_model::{Country, TOTAL_CATEGORY};
    use borderwatch_model::{SurgeEvent, surge_id};

    fn q(s: &str) -> Period {
        s.parse().unwrap()
    }

    /// The analysis configuration that runs exactly the evidence rules of `cfg`.
    fn analysis_for(cfg: &DetectorConfig) -> AnalysisConfig {
        let mut names = Vec::new();
        if cfg.exceeds_prior_year.enabled {
            names.push("exceeds_prior_year");
        }
        if cfg.record_high.enabled {
            names.push("record_high");
        }
        if cfg.year_over_year.enabled {
            names.push("year_over_year");
        }
        let mut analysis = AnalysisConfig::only(&names.join(",")).unwrap();
        if names.is_empty() {
            analysis.detectors.clear();
        }
        analysis.evidence = cfg.clone();
        analysis
    }

    /// The evidence rules of `cfg` through the analysis layer, as the service runs them.
    fn evaluate(
        frame: &SeriesFrame,
        periods: &[Period],
        cfg: &DetectorConfig,
        release_id: &str,
        detected_at: &str,
    ) -> Vec<SurgeEvent> {
        let analysis = analysis_for(cfg);
        let rows = evaluate_all(frame, periods, &analysis);
        decide(&assess(frame, &rows), &analysis, release_id, detected_at)
    }

    fn run(frame: &SeriesFrame, period: &str) -> Vec<SurgeEvent> {
        evaluate(
            frame,
            &[q(period)],
            &DetectorConfig::default(),
            "rel-1",
            "2024-10-01T00:00:00Z",
        )
    }

    #[test]
    fn explains_the_north_korean_study_surge() {
        let f = quarters("2019-Q1", &PRK_STUDY);
        let events = run(&f, "2024-Q3");
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(
            e.explanation,
            "3,765 entries of North Korean citizens for study in 2024-Q3: \
             more than in the whole of 2019 (3,200); \
             the highest quarter on record (previous record 950 in 2019-Q3); \
             61 times the same quarter a year earlier (62 in 2023-Q3)"
        );
        assert!(e.explanation.contains(
            "3,765 entries of North Korean citizens for study in 2024-Q3: \
             more than in the whole of 2019 (3,200); the highest quarter on record"
        ));
        assert_eq!(e.value, 3765);
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.release_id, "rel-1");
        assert_eq!(e.detected_at, "2024-10-01T00:00:00Z");
    }

    #[test]
    fn findings_follow_the_detector_order() {
        let f = quarters("2019-Q1", &PRK_STUDY);
        let e = &run(&f, "2024-Q3")[0];
        let names: Vec<&str> = e.findings.iter().map(|f| f.detector.as_str()).collect();
        assert_eq!(names, DETECTORS);
    }

    #[test]
    fn surge_id_depends_on_series_period_and_config() {
        let f = quarters("2019-Q1", &PRK_STUDY);
        let e = &run(&f, "2024-Q3")[0];
        let fp = analysis_for(&DetectorConfig::default()).fingerprint();
        assert_eq!(e.id, surge_id(&f.key, q("2024-Q3"), &fp));
        assert_eq!(e.id, run(&f, "2024-Q3")[0].id);
        let only_records = DetectorConfig::only("record_high").unwrap();
        let other = evaluate(&f, &[q("2024-Q3")], &only_records, "rel-1", "now");
        assert_ne!(other[0].id, e.id);
        assert_eq!(other[0].findings.len(), 1);
    }

    #[test]
    fn total_category_reads_without_a_phrase() {
        let obs = consecutive(TOTAL_CATEGORY, "2019-Q1", &PRK_STUDY);
        let f = aggregate(&obs).unwrap().remove(0);
        let e = &run(&f, "2024-Q3")[0];
        assert!(
            e.explanation
                .starts_with("3,765 entries of North Korean citizens in 2024-Q3: more than"),
            "{}",
            e.explanation
        );
    }

    #[test]
    fn encounters_sources_use_their_noun() {
        let mut obs = consecutive("study", "2019-Q1", &PRK_STUDY);
        for o in &mut obs {
            o.source = "cbp".into();
            o.country = Country::parse("PER").unwrap();
        }
        let f = aggregate(&obs).unwrap().remove(0);
        let e = &run(&f, "2024-Q3")[0];
        assert!(
            e.explanation
                .starts_with("3,765 encounters of citizens of "),
            "{}",
            e.explanation
        );
    }

    #[test]
    fn evaluate_skips_quiet_missing_and_foreign_periods() {
        let f = quarters("2019-Q1", &PRK_STUDY);
        let periods = [
            q("2023-Q1"),
            q("2030-Q1"),
            q("2024-07"),
            q("2024"),
            q("2024-Q3"),
            q("2024-Q3"),
        ];
        let events = evaluate(&f, &periods, &DetectorConfig::default(), "r", "t");
        let got: Vec<Period> = events.iter().map(|e| e.period).collect();
        assert_eq!(got, vec![q("2024-Q3")]);
    }

    #[test]
    fn a_series_starting_mid_history_does_not_alarm() {
        let f = frame(&[("2024-Q2", 400), ("2024-Q3", 9000)]);
        assert!(run(&f, "2024-Q3").is_empty());
        let g = frame(&[("2024-Q3", 9000)]);
        assert!(run(&g, "2024-Q3").is_empty());
    }

    #[test]
    fn steady_series_do_not_alarm() {
        let f = quarters("2015-Q1", &[100; 40]);
        let all: Vec<Period> = f.points.iter().map(|p| p.0).collect();
        assert!(evaluate(&f, &all, &DetectorConfig::default(), "r", "t").is_empty());
    }

    fn finding(detector: &str, expected: f64) -> Finding {
        Finding {
            detector: detector.into(),
            expected: Some(expected),
            upper_bound: None,
            p_value: None,
            message: String::new(),
            baseline: None,
        }
    }

    #[test]
    fn severity_is_critical_for_a_record_above_a_whole_year() {
        let f = [
            finding("exceeds_prior_year", 800.0),
            finding("record_high", 950.0),
        ];
        assert_eq!(severity(1000, &f), Severity::Critical);
    }

    #[test]
    fn severity_is_high_for_two_detectors_or_tenfold_growth() {
        let two = [
            finding("record_high", 950.0),
            finding("year_over_year", 300.0),
        ];
        assert_eq!(severity(1000, &two), Severity::High);
        assert_eq!(
            severity(1000, &[finding("year_over_year", 100.0)]),
            Severity::High
        );
    }

    #[test]
    fn severity_is_medium_for_a_wide_record_or_fivefold_growth() {
        assert_eq!(
            severity(1500, &[finding("record_high", 1000.0)]),
            Severity::Medium
        );
        assert_eq!(
            severity(500, &[finding("year_over_year", 100.0)]),
            Severity::Medium
        );
    }

    #[test]
    fn severity_is_low_otherwise() {
        assert_eq!(
            severity(1300, &[finding("record_high", 1000.0)]),
            Severity::Low
        );
        assert_eq!(
            severity(300, &[finding("year_over_year", 100.0)]),
            Severity::Low
        );
        assert_eq!(
            severity(300, &[finding("exceeds_prior_year", 100.0)]),
            Severity::Low
        );
    }
}
