//! The sentence a journalist would print about a surge, from its findings
//! (`analysis::decide` turns findings into surge events with it; how loud a surge is comes
//! from its score, in `alert`).

use borderwatch_model::{Finding, Period, SeriesKey, category_phrase, counted_subject};

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
    use crate::detect::{DETECTORS, DetectorConfig};
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
        // The sentences are tested here, not the score gate.
        analysis.alert.min_score = 0.0;
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
}
