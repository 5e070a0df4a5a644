//! `borderwatch analyze`: read a file, run the detectors on every period of every series
//! (on every core), and print surge events or, with `--all`, every evaluation row.

use std::io::Write;

use crate::{AnalyzeArgs, Output};
use anyhow::Context;
use borderwatch_analytics::{AnalysisConfig, Evaluation, SeriesFrame, assess, decide};
use borderwatch_model::{SurgeEvent, now_rfc3339};

/// The configuration `--detectors` and `--set` describe, checked.
pub(crate) fn config(detectors: Option<&str>, sets: &[String]) -> anyhow::Result<AnalysisConfig> {
    let mut cfg = match detectors {
        Some(list) => AnalysisConfig::only(list).context("--detectors")?,
        None => AnalysisConfig::default(),
    };
    for pair in sets {
        cfg.set_pair(pair).context("--set")?;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub(crate) async fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let cfg = config(args.detectors.as_deref(), &args.set)?;
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
    let all = args.all;
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
            .flat_map(|(frame, rows)| assess(frame, rows))
            .collect();
        let surges = decide(&assessments, &cfg, "offline", &now_rfc3339());
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
    writeln!(out, "{} surges found:", sorted.len())?;
    for s in sorted {
        writeln!(
            out,
            "  {:<8} {}/{}/{} {}\n           {}",
            s.severity.to_string().to_uppercase(),
            s.source,
            s.country,
            s.category,
            s.period,
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
            config(None, &["farrington.bee=2".into()]).unwrap_err()
        );
        assert!(err.contains("--set"), "{err}");
        assert!(err.contains("`farrington.bee` is not a setting"), "{err}");
        let err = format!("{:#}", config(Some("farrington,zscore"), &[]).unwrap_err());
        assert!(
            err.contains("--detectors") && err.contains("zscore"),
            "{err}"
        );
        let err = format!("{:#}", config(None, &["fdr=2".into()]).unwrap_err());
        assert!(err.contains("fdr"), "{err}");
    }
}
