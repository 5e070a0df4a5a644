//! US DHS Office of Homeland Security Statistics (OHSS), Border Patrol encounters: the
//! "Monthly Citizenship" sheet of its KHSM workbook (`ohss_xlsx`) and the same table as CSV
//! (`ohss_csv`, header `fiscal_year,month,citizenship,quantity`).
//!
//! One row is one figure: all Border Patrol encounters of a citizenship in a fiscal month
//! (`01 October` is October of the year before the fiscal year), category `total`, source
//! `ohss_usbp`. OHSS rounds every figure to 10.

use borderwatch_model::{Country, Observation, TOTAL_CATEGORY, tokenize};

use super::fiscal;
use super::table::{self, Row};
use crate::error::IngestError;
use crate::format::{Format, Options, Sniff};
use crate::rows::{Parsed, RowSink};

/// The source both OHSS formats give their rows unless told otherwise.
pub const SOURCE: &str = "ohss_usbp";
/// The workbook sheet `ohss_xlsx` reads.
pub const SHEET: &str = "Monthly Citizenship";

pub(crate) const XLSX: Format = Format {
    name: "ohss_xlsx",
    description: "US DHS OHSS Border Patrol encounters workbook (KHSM), sheet \"Monthly \
                  Citizenship\": fiscal months per citizenship; source ohss_usbp",
    sniff: sniff_xlsx,
    parse: parse_xlsx,
};

pub(crate) const CSV: Format = Format {
    name: "ohss_csv",
    description: "US DHS OHSS Border Patrol encounters as CSV: fiscal_year, month (01 October), \
                  citizenship, quantity; source ohss_usbp",
    sniff: sniff_csv,
    parse: parse_csv,
};

const COLUMNS: [&str; 4] = ["fiscal_year", "month", "citizenship", "quantity"];

/// How many rows above the header (titles, notes) are looked through.
const HEADER_SEARCH: usize = 30;

fn is_header(names: &[String]) -> bool {
    COLUMNS.iter().all(|c| names.iter().any(|n| n == c))
}

fn sniff_csv(sniff: &Sniff<'_>) -> bool {
    let Some(head) = sniff.text_head else {
        return false;
    };
    let Some(names) = table::first_line_names(head) else {
        return false;
    };
    is_header(&names)
}

fn sniff_xlsx(sniff: &Sniff<'_>) -> bool {
    if !sniff.bytes.starts_with(b"PK\x03\x04") {
        return false;
    }
    table::open_workbook(sniff.bytes, XLSX.name)
        .map(|wb| sheet_name(&wb).is_some())
        .unwrap_or(false)
}

/// The sheet's name as the workbook spells it (case may differ).
fn sheet_name(workbook: &table::Workbook) -> Option<String> {
    use calamine::Reader;
    workbook
        .sheet_names()
        .into_iter()
        .find(|n| n.trim().eq_ignore_ascii_case(SHEET))
}

fn parse_xlsx(bytes: &[u8], options: &Options<'_>) -> Result<Parsed, IngestError> {
    use calamine::Reader;
    let mut workbook = table::open_workbook(bytes, XLSX.name)?;
    let Some(sheet) = sheet_name(&workbook) else {
        return Err(IngestError::BadLayout {
            format: XLSX.name,
            message: format!(
                "the workbook has no sheet \"{SHEET}\" (sheets: {}); send the OHSS KHSM \
                 encounters workbook, or name the format of this file",
                workbook.sheet_names().join(", ")
            ),
        });
    };
    let rows = table::sheet_rows(&mut workbook, &sheet, XLSX.name)?;
    parse_rows(
        rows.into_iter().map(Ok),
        options,
        XLSX.name,
        &format!("sheet \"{sheet}\", row"),
    )
}

fn parse_csv(bytes: &[u8], options: &Options<'_>) -> Result<Parsed, IngestError> {
    let text = crate::decode::decode_text(bytes)?;
    parse_rows(table::text_rows(&text), options, CSV.name, "line")
}

/// Reads the table below its header. `place` names a row in messages (`line`, or the sheet
/// and `row`).
fn parse_rows(
    mut rows: impl Iterator<Item = Result<Row, IngestError>>,
    options: &Options<'_>,
    format: &'static str,
    place: &str,
) -> Result<Parsed, IngestError> {
    let source = match options.source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => tokenize(s).ok_or_else(|| IngestError::BadSource {
            value: s.to_string(),
        })?,
        None => SOURCE.to_string(),
    };
    let mut first_rows = Vec::new();
    let header = loop {
        match rows.next().transpose()? {
            Some(row) if row.is_blank() => {}
            Some(row) if is_header(&names_of(&row)) => break row,
            Some(row) if first_rows.len() < HEADER_SEARCH => first_rows.push(row),
            _ => {
                let seen = first_rows
                    .first()
                    .map(|r| {
                        format!(
                            " (the first row, {place} {}, has: {})",
                            r.line,
                            r.cells.join(", ")
                        )
                    })
                    .unwrap_or_default();
                return Err(IngestError::BadLayout {
                    format,
                    message: format!(
                        "no header row with the columns Fiscal Year, Month, Citizenship and \
                         Quantity in the first {HEADER_SEARCH} rows{seen}"
                    ),
                });
            }
        }
    };
    let names = names_of(&header);
    let at = |c: &str| names.iter().position(|n| n == c).unwrap_or(0);
    let (fy, month, citizenship, quantity) = (
        at("fiscal_year"),
        at("month"),
        at("citizenship"),
        at("quantity"),
    );
    let column = |i: usize| header.get(i).replace('\n', " ");

    let mut sink = RowSink::new(options.limits);
    for row in rows {
        let row = row?;
        if row.is_blank() {
            continue;
        }
        sink.count_row()?;
        let checked = fiscal::fiscal_year(row.get(fy))
            .map_err(|e| (fy, e))
            .and_then(|y| {
                fiscal::month(row.get(month))
                    .map(|m| fiscal::period(y, m))
                    .map_err(|e| (month, e))
            })
            .and_then(|period| {
                Country::parse(row.get(citizenship))
                    .map(|c| (period, c))
                    .map_err(|e| (citizenship, e.to_string()))
            })
            .and_then(|(period, country)| {
                table::count(row.get(quantity))
                    .map(|n| (period, country, n))
                    .map_err(|e| (quantity, e))
            });
        match checked {
            Ok((period, country, count)) => {
                let obs = Observation {
                    source: source.clone(),
                    country,
                    category: TOTAL_CATEGORY.to_string(),
                    period,
                    count,
                    release_id: String::new(),
                };
                sink.keep(row.line, obs, row.get(quantity));
            }
            Err((i, reason)) => sink.reject(row.line, &column(i), row.get(i), reason),
        }
    }
    Ok(sink.finish())
}

fn names_of(row: &Row) -> Vec<String> {
    row.cells.iter().map(|c| table::normalize(c)).collect()
}
