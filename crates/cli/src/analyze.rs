//! `borderwatch analyze`: read a file, run the detectors on every period of every series
//! (on every core), and print surge events or, with `--all`, every evaluation row. With
//! `--live`, as the live replay does: each series' newest period is the release's live edge
//! and only surges there are printed.

use std::io::Write;

use crate::{AnalyzeArgs, Output};
use anyhow::Context;
use borderwatch_analytics::{
    AnalysisConfig, Assessment, Evaluation, SeriesFrame, alert, assess, decide,
};
use borderwatch_model::{SurgeEvent, now_rfc3339};

/// The configuration `--config`'s `[analytics]`, `--detectors` and `--set` describe, checked
/// (the flags win over the file).
pub(crate) fn config(
    file: Option<&std::path::Path>,
    detectors: Option<&str>,
    sets: &[String],
) -> anyhow::Result<AnalysisConfig> {
    crate::config::Settings::load_opt(file)?.analysis(detectors, sets)
}

pub(crate) async fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let cfg = config(args.config.as_deref(), args.detectors.as_deref(), &args.set)?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let file_name = args.file.file_name().and_then(|n| n.to_str());
    let format = match args.format.as_deref() {
        Some(name) => borderwatch_ingest::formats::by_name(name)?,
        None => None,
    };
    let format = match format {
        Some(f) => f,
        None => borderwatch_ingest::formats::detect(&bytes, file_name)
            .with_context(|| format!("reading {}", args.file.display()))?,
    };
    let options = borderwatch_ingest::formats::Options {
        source: args.source.as_deref(),
        ..Default::default()
    };
    let parsed = (format.parse)(&bytes, &options)
        .with_context(|| format!("reading {} as {}", args.file.display(), format.name))?;
    for r in &parsed.rejected {
        eprintln!(
            "rejected row {} column {} value {:?}: {}",
            r.row, r.column, r.value, r.reason
        );
    }
    let unlisted = parsed
        .rejected_total
        .saturating_sub(parsed.rejected.len() as u64);
    if unlisted > 0 {
        eprintln!("… and {unlisted} more rejected rows");
    }
    nothing_to_analyse(&parsed).with_context(|| format!("reading {}", args.file.display()))?;
    let all = args.all;
    let live = args.live;
    let output = args.output;
    // Aggregation and detectors are CPU work: off the async runtime.
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let frames = borderwatch_analytics::aggregate(&parsed.observations)?;
        let jobs: Vec<(&SeriesFrame, Vec<_>)> = frames
            .iter()
            .map(|f| (f, f.points.iter().map(|p| p.0).collect()))
            .collect();
        let evaluations = borderwatch_analytics::evaluate_frames(&jobs, &cfg);
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        if all {
            for (frame, rows) in frames.iter().zip(&evaluations) {
                for r in rows {
                    writeln!(out, "{}", serde_json::to_string(&row(frame, r))?)?;
                }
            }
            return Ok(out.flush()?);
        }
        let assessments: Vec<_> = frames
            .iter()
            .zip(&evaluations)
            .flat_map(|(frame, rows)| {
                let mut assessed = assess(frame, rows);
                if live {
                    mark_live_edge(frame, &mut assessed, &cfg);
                }
                assessed
            })
            .collect();
        let mut surges = decide(&assessments, &cfg, "offline", &now_rfc3339());
        if live {
            surges.retain(|s| !s.historical);
        }
        match output {
            Output::Json => {
                for s in &surges {
                    writeln!(out, "{}", serde_json::to_string(s)?)?;
                }
            }
            Output::Table => table(&mut out, &surges)?,
        }
        Ok(out.flush()?)
    })
    .await
    .context("the analysis worker failed")?
}

/// A file with no figure to analyse is an error (it printed nothing and exited 0, as if the
/// file had no surge): no data rows under its header, or every row rejected.
fn nothing_to_analyse(parsed: &borderwatch_ingest::Parsed) -> anyhow::Result<()> {
    if !parsed.observations.is_empty() {
        return Ok(());
    }
    if parsed.rows == 0 {
        anyhow::bail!("the file has no data rows, only its header: there is nothing to analyse");
    }
    anyhow::bail!(
        "no row of the file could be read: all {} data rows were rejected (see above), so \
         there is nothing to analyse",
        parsed.rejected_total
    )
}

/// Treats the file as a release whose only new figure per series is its newest period (the
/// replay's live edge, [`alert::live_periods`]): that period's assessment is live, every
/// earlier one history already known. Decided with the others, so Benjamini–Hochberg sees
/// the same tests as without `--live`.
fn mark_live_edge(frame: &SeriesFrame, assessments: &mut [Assessment], cfg: &AnalysisConfig) {
    let all: Vec<_> = frame.points.iter().map(|p| p.0).collect();
    let Some(&last) = all.last() else { return };
    let live = alert::live_periods(&all, &[last], cfg.alert.live_window);
    for a in assessments {
        a.live = live.contains(&a.period);
    }
}

/// One `--all` line: an evaluated series, period and detector.
fn row(frame: &SeriesFrame, r: &Evaluation) -> serde_json::Value {
    serde_json::json!({
        "source": frame.key.source,
        "country": frame.key.country.code(),
        "category": frame.key.category,
        "period": r.period.to_string(),
        "value": r.value,
        "detector": r.detector.name(),
        "expected": r.expected,
        "upper_bound": r.upper_bound,
        "alarm": r.alarm,
        "p_value": r.p_value,
    })
}

/// Loudest first, then newest.
fn table(out: &mut impl Write, surges: &[SurgeEvent]) -> std::io::Result<()> {
    let mut sorted: Vec<&SurgeEvent> = surges.iter().collect();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.period.cmp(&a.period)));
    let falls = sorted.iter().filter(|s| !s.direction.is_rise()).count();
    if falls == 0 {
        writeln!(out, "{} surges found:", sorted.len())?;
    } else {
        writeln!(
            out,
            "{} surges and {falls} falls found:",
            sorted.len() - falls
        )?;
    }
    for s in sorted {
        writeln!(
            out,
            "  {:<8} {}/{}/{} {}{}\n           {}",
            s.severity.to_string().to_uppercase(),
            s.source,
            s.country,
            s.category,
            s.period,
            if s.direction.is_rise() { "" } else { " (fall)" },
            s.explanation
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_applies_detectors_then_settings() {
        let cfg = config(
            None,
            Some("farrington,ears_c1"),
            &["farrington.b=2".into(), "fdr=0.1".into()],
        )
        .unwrap();
        assert_eq!(cfg.detectors.len(), 2);
        assert_eq!(cfg.farrington.quarterly.b, 2);
        assert_eq!(cfg.fdr, 0.1);
    }

    #[test]
    fn config_errors_name_the_flag_and_key() {
        let err = format!(
            "{:#}",
            config(None, None, &["farrington.bee=2".into()]).unwrap_err()
        );
        assert!(err.contains("--set"), "{err}");
        assert!(err.contains("`farrington.bee` is not a setting"), "{err}");
        let err = format!(
            "{:#}",
            config(None, Some("farrington,zscore"), &[]).unwrap_err()
        );
        assert!(
            err.contains("--detectors") && err.contains("zscore"),
            "{err}"
        );
        let err = format!("{:#}", config(None, None, &["fdr=2".into()]).unwrap_err());
        assert!(err.contains("fdr"), "{err}");
    }

    /// The frames and assessments of the demo's North Korea file, `--live` or not.
    fn nk_assessed(live: bool) -> (Vec<SeriesFrame>, Vec<Assessment>, AnalysisConfig) {
        let cfg = AnalysisConfig::default();
        let csv = borderwatch_ingest::demo::demo_nk_only_csv();
        let parsed = borderwatch_ingest::generic::parse_generic(&csv, None).unwrap();
        let frames = borderwatch_analytics::aggregate(&parsed.observations).unwrap();
        let jobs: Vec<(&SeriesFrame, Vec<_>)> = frames
            .iter()
            .map(|f| (f, f.points.iter().map(|p| p.0).collect()))
            .collect();
        let evaluations = borderwatch_analytics::evaluate_frames(&jobs, &cfg);
        let mut assessments = Vec::new();
        for (frame, rows) in frames.iter().zip(&evaluations) {
            let mut assessed = assess(frame, rows);
            if live {
                mark_live_edge(frame, &mut assessed, &cfg);
            }
            assessments.extend(assessed);
        }
        (frames, assessments, cfg)
    }

    #[test]
    fn live_edge_is_each_series_newest_period_only() {
        let (frames, assessments, _) = nk_assessed(true);
        assert!(frames.len() >= 2);
        for frame in &frames {
            let last = frame.points.last().unwrap().0;
            let live: Vec<_> = assessments
                .iter()
                .filter(|a| a.key == frame.key && a.live)
                .map(|a| a.period)
                .collect();
            assert_eq!(live, vec![last], "{:?}", frame.key);
        }
        let (_, plain, _) = nk_assessed(false);
        assert!(
            plain.iter().all(|a| !a.live),
            "without --live all is history"
        );
    }

    #[test]
    fn live_marking_changes_only_the_historical_flag() {
        let (_, live, cfg) = nk_assessed(true);
        let (_, plain, _) = nk_assessed(false);
        let at = "2025-01-01T00:00:00Z";
        let with = decide(&live, &cfg, "offline", at);
        let without = decide(&plain, &cfg, "offline", at);
        assert_eq!(
            with.len(),
            without.len(),
            "the same surges, BH over the same tests"
        );
        for (a, b) in with.iter().zip(&without) {
            assert_eq!(
                (&a.id, a.severity, &a.explanation),
                (&b.id, b.severity, &b.explanation)
            );
            assert!(b.historical);
        }
        let news: Vec<_> = with.iter().filter(|s| !s.historical).collect();
        assert!(
            news.iter().all(|s| s.period.to_string() == "2025-Q1"),
            "{news:?}"
        );
    }
}
