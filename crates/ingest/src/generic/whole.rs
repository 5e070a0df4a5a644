//! The generic format read from text held whole: decoded, then parsed as CSV or JSON lines
//! (told apart by the first non-blank character) into a [`Parsed`].

use crate::error::IngestError;
use crate::rows::{ParseLimits, Parsed, RowSink};

use super::csv::parse_csv;
use super::jsonl::parse_json_lines;
use super::row::{Memos, Rows, default_source_token};

pub(super) fn parse_bytes(
    bytes: &[u8],
    options: &crate::format::Options<'_>,
) -> Result<Parsed, IngestError> {
    let text = crate::decode::decode(bytes)?;
    parse_generic_with_limits(&text, options.source, options.limits)
}

/// Parses a generic-format file (CSV or JSON lines, told apart by the first non-blank
/// character) with the default limits. `default_source` names the source for rows that
/// have none.
pub fn parse_generic(text: &str, default_source: Option<&str>) -> Result<Parsed, IngestError> {
    parse_generic_with_limits(text, default_source, ParseLimits::default())
}

/// [`parse_generic`] with explicit limits.
pub fn parse_generic_with_limits(
    text: &str,
    default_source: Option<&str>,
    limits: ParseLimits,
) -> Result<Parsed, IngestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let default_source = default_source_token(default_source)?;
    let mut sink = RowSink::new(limits);
    // Room for every row up front rather than growing by doubling: a row takes a line and
    // at least 12 bytes (`,2024,KP,a,1`), so this never reserves more than a file of valid
    // rows of the same size would fill.
    let lines = text.bytes().filter(|b| *b == b'\n').count() as u64 + 1;
    sink.reserve(lines.min(text.len() as u64 / 12).min(limits.max_rows));
    let mut rows = Rows {
        default_source,
        sink,
        memo: Memos::default(),
    };
    match text.trim_start().chars().next() {
        None => return Err(IngestError::EmptyFile),
        Some('{') => parse_json_lines(text, &mut rows)?,
        Some(_) => parse_csv(text, &mut rows)?,
    }
    Ok(rows.sink.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_file_has_no_header() {
        assert!(matches!(
            parse_generic("", None),
            Err(IngestError::EmptyFile)
        ));
        assert!(matches!(
            parse_generic("\n\n", None),
            Err(IngestError::EmptyFile)
        ));
        assert!(matches!(
            parse_generic(",,\n", None),
            Err(IngestError::NoHeader)
        ));
    }

    #[test]
    fn no_source_anywhere_is_a_file_error() {
        let text = "period,country,category,count\n2024,PRK,study,1\n";
        assert!(matches!(
            parse_generic(text, None),
            Err(IngestError::NoSource)
        ));
        let p = parse_generic(text, Some("FSB")).unwrap();
        assert_eq!(p.observations[0].source, "fsb");
    }

    #[test]
    fn conflicting_duplicate_rows_are_rejected() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q3,PRK,study,3765\n\
                    fsb,2024-Q3,KP,Study,24\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.observations[0].count, 3765);
        let r = &p.rejected[0];
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (3, "count", "24")
        );
        assert!(r.reason.contains("conflicts with line 2"), "{}", r.reason);
    }

    #[test]
    fn identical_duplicate_rows_are_kept_once() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q3,PRK,study,3765\n\
                    fsb,2024-Q3,PRK,study,3765\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert!(p.rejected.is_empty());
        assert_eq!((p.rows, p.duplicates), (2, 1));
    }

    #[test]
    fn too_many_rows_is_a_file_error() {
        let text =
            "source,period,country,category,count\nfsb,2024,PRK,study,1\nfsb,2023,PRK,study,1\n";
        let limits = ParseLimits { max_rows: 1 };
        let e = parse_generic_with_limits(text, None, limits).unwrap_err();
        assert!(matches!(e, IngestError::TooManyRows { limit: 1 }), "{e:?}");
        assert!(parse_generic_with_limits(text, None, ParseLimits { max_rows: 2 }).is_ok());
    }

    #[test]
    fn long_values_are_cut_when_quoted_back() {
        let long = "x".repeat(1000);
        let text = format!("source,period,country,category,count\nfsb,2024,{long},study,1\n");
        let p = parse_generic(&text, None).unwrap();
        assert!(p.rejected[0].value.chars().count() <= crate::rows::MAX_QUOTED + 1);
    }
}
