//! The CSV side of the generic format: the delimiter sniffed from the header line, the
//! header's columns found, and the data rows read (whole or a piece at a time), with CSV
//! quoting as the piecewise reader must know it.

use crate::error::IngestError;
use crate::rows::Lines;

use super::row::{Raw, Rows};

/// Reads CSV quoting over `bytes`: a quote opens a value only at the value's start, `""`
/// inside is a quote. Answers whether the bytes end inside a quoted value, and where the
/// last line end outside quotes is (just after it).
pub(super) fn scan_quotes(bytes: &[u8], delimiter: u8) -> (bool, Option<usize>) {
    let (mut quoted, mut at_start, mut last) = (false, true, None);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if b == b'"' && at_start {
            quoted = true;
            at_start = false;
        } else {
            if b == b'\n' {
                last = Some(i + 1);
            }
            at_start = b == delimiter || b == b'\n' || b == b'\r';
        }
        i += 1;
    }
    (quoted, last)
}

/// The delimiter of the header line: whichever of `,`, `;` and tab occurs most outside
/// quotes (`,` on a tie or when none does).
pub(super) fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let (mut comma, mut semicolon, mut tab) = (0usize, 0usize, 0usize);
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => comma += 1,
            ';' if !quoted => semicolon += 1,
            '\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    if semicolon > comma && semicolon >= tab {
        b';'
    } else if tab > comma && tab > semicolon {
        b'\t'
    } else {
        b','
    }
}

/// A cell as text, trimmed. The csv reader splits UTF-8 text at ASCII bytes only, so every
/// cell is UTF-8; an empty cell stands in should one not be.
fn cell(record: &csv::ByteRecord, i: usize) -> &str {
    record
        .get(i)
        .and_then(|f| std::str::from_utf8(f).ok())
        .unwrap_or("")
        .trim()
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    (0..record.len()).all(|i| cell(record, i).is_empty())
}

fn csv_error(e: csv::Error) -> IngestError {
    IngestError::Csv {
        line: e.position().map(|p| p.line()).unwrap_or(0),
        message: e.to_string(),
    }
}

/// Whether a record (its bytes up to the end of the file) ends inside a quoted value: a
/// quote opened at the start of a value and never closed, as in a file cut off mid-value.
fn ends_inside_quotes(bytes: &[u8], delimiter: u8) -> bool {
    scan_quotes(bytes, delimiter).0
}

/// The columns of a CSV file, from its header line.
pub(super) struct Header {
    names: Vec<String>,
    line: u64,
    delimiter: u8,
    source: Option<usize>,
    period: usize,
    country: usize,
    category: usize,
    category_column: &'static str,
    count: usize,
}

pub(super) fn csv_reader(text: &str, delimiter: u8) -> csv::Reader<&[u8]> {
    // Byte records, reused, trimmed here: no allocation per row.
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
}

/// Reads up to the header line; `None` when `text` holds only blank lines.
pub(super) fn read_header(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut csv::ByteRecord,
    lines: &mut Lines<'_>,
    delimiter: u8,
    rows: &Rows,
) -> Result<Option<Header>, IngestError> {
    let line = loop {
        if !reader.read_byte_record(record).map_err(csv_error)? {
            return Ok(None);
        }
        if !is_blank(record) {
            break lines.of(record.position());
        }
    };
    let names: Vec<String> = (0..record.len())
        .map(|i| {
            cell(record, i)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_lowercase()
        })
        .collect();
    let find = |name: &str| names.iter().position(|n| n == name);
    let missing = |column: &'static str| IngestError::MissingColumn {
        line,
        column,
        found: names.clone(),
    };
    let period = find("period").ok_or_else(|| missing("period"))?;
    let country = find("country").ok_or_else(|| missing("country"))?;
    let (category, category_column) = match (find("category"), find("purpose")) {
        (Some(i), _) => (i, "category"),
        (None, Some(i)) => (i, "purpose"),
        (None, None) => return Err(missing("category")),
    };
    let count = find("count").ok_or_else(|| missing("count"))?;
    let source = find("source");
    if source.is_none() && rows.default_source.is_none() {
        return Err(IngestError::NoSource);
    }
    Ok(Some(Header {
        names,
        line,
        delimiter,
        source,
        period,
        country,
        category,
        category_column,
        count,
    }))
}

pub(super) fn parse_csv(text: &str, rows: &mut Rows) -> Result<(), IngestError> {
    let delimiter = sniff_delimiter(text);
    let mut reader = csv_reader(text, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut lines = Lines::new(text);
    let header = read_header(&mut reader, &mut record, &mut lines, delimiter, rows)?
        .ok_or(IngestError::NoHeader)?;
    read_records(&mut reader, &mut record, &mut lines, text, &header, rows)
}

/// Reads the data rows of `text` (all of the file, or a piece of it that ends at a record
/// boundary) into `rows`.
pub(super) fn read_records(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut csv::ByteRecord,
    lines: &mut Lines<'_>,
    text: &str,
    header: &Header,
    rows: &mut Rows,
) -> Result<(), IngestError> {
    let names = &header.names;
    let delimiter_text = char::from(header.delimiter).to_string();
    let joined = |record: &csv::ByteRecord| {
        (0..record.len())
            .map(|i| cell(record, i))
            .collect::<Vec<_>>()
            .join(&delimiter_text)
    };
    while reader.read_byte_record(record).map_err(csv_error)? {
        if is_blank(record) {
            continue;
        }
        rows.count_row()?;
        let line = lines.of(record.position());
        // Only the last record can run into the end of the file inside quotes.
        if reader.position().byte() as usize >= text.len()
            && let Some(start) = record.position().map(|p| p.byte() as usize)
            && ends_inside_quotes(
                text.as_bytes().get(start..).unwrap_or(&[]),
                header.delimiter,
            )
        {
            let last = record.len().saturating_sub(1);
            let column = names.get(last).map(String::as_str).unwrap_or("");
            rows.reject(
                line,
                column,
                &joined(record),
                "a double quote opened in this row is never closed: the file ends inside \
                 it, so it was probably cut off; send the whole file, or close the quote"
                    .to_string(),
            );
            continue;
        }
        if record.len() != names.len() {
            let reason = format!(
                "expected {} fields as in the header (line {}), found {}; a value \
                 with a `{delimiter_text}` in it must be in double quotes",
                names.len(),
                header.line,
                record.len()
            );
            rows.reject(line, "", &joined(record), reason);
            continue;
        }
        let raw = Raw {
            source: header.source.map(|i| cell(record, i)),
            period: cell(record, header.period),
            country: cell(record, header.country),
            category_column: header.category_column,
            category: cell(record, header.category),
            count: cell(record, header.count),
        };
        rows.accept(line, &raw);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use borderwatch_model::{Country, Period};

    use super::*;
    use crate::generic::whole::parse_generic;

    fn prk() -> Country {
        Country::parse("PRK").unwrap()
    }

    #[test]
    fn parses_csv_with_purpose_header() {
        let text = "Source, Period ,Country,Purpose,Count\n\
                    fsb,2024-Q3,KP,Study,3765\n\
                    FSB,2024-Q2,North Korea,учеба,332\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.rows, 2);
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.observations.len(), 2);
        let o = &p.observations[0];
        assert_eq!(
            (
                o.source.as_str(),
                o.country,
                o.category.as_str(),
                o.period,
                o.count
            ),
            ("fsb", prk(), "study", Period::Quarter(2024, 3), 3765)
        );
        assert_eq!(p.observations[1].category, "study");
        assert_eq!(p.observations[1].source, "fsb");
    }

    #[test]
    fn wrong_number_of_fields_is_rejected() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q1,PRK,study\n\
                    fsb,2024-Q2,PRK,study,1,2\n\
                    fsb,2024-Q3,PRK,study,3\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.rejected.len(), 2);
        assert!(
            p.rejected[0].reason.contains("expected 5 fields"),
            "{}",
            p.rejected[0].reason
        );
        assert_eq!(p.rejected[1].row, 3);
    }

    #[test]
    fn missing_count_column_is_a_file_error() {
        let e = parse_generic(
            "source,period,country,category,value\nfsb,2024,PRK,study,1\n",
            None,
        )
        .unwrap_err();
        match &e {
            IngestError::MissingColumn {
                column,
                found,
                line,
            } => {
                assert_eq!(*column, "count");
                assert_eq!(*line, 1);
                assert_eq!(found, &["source", "period", "country", "category", "value"]);
            }
            other => panic!("expected a missing column, got {other:?}"),
        }
        assert!(e.to_string().contains("no `count` column"), "{e}");
    }

    #[test]
    fn extra_columns_are_ignored_and_delimiters_sniffed() {
        for sep in [",", ";", "\t"] {
            let text = ["note", "source", "period", "country", "category", "count"].join(sep)
                + "\n"
                + &["x", "fsb", "2024-07", "PRK", "study", "5"].join(sep)
                + "\n";
            let p = parse_generic(&text, None).unwrap();
            assert_eq!(
                p.observations.len(),
                1,
                "separator {sep:?}: {:?}",
                p.rejected
            );
            assert_eq!(p.observations[0].period, Period::Month(2024, 7));
        }
    }

    #[test]
    fn row_numbers_count_lines_including_blank_ones_and_quoted_newlines() {
        let text = "\nsource,period,country,category,count\n\n\"fsb\",2024,\"PRK\",study,\"1\n2\"\nfsb,2024,XX,study,1\n";
        let p = parse_generic(text, None).unwrap();
        let rows: Vec<u64> = p.rejected.iter().map(|r| r.row).collect();
        let e = parse_generic("\n\nsource,period\n", None).unwrap_err();
        assert!(
            matches!(e, IngestError::MissingColumn { line: 3, .. }),
            "{e:?}"
        );
        // line 4 starts a row whose quoted count spans two lines; line 6 has an unknown country.
        assert_eq!(rows, vec![4, 6]);
        assert_eq!(p.rows, 2);
    }
}
