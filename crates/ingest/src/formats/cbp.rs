//! US Customs and Border Protection encounter files (`cbp_csv`): the Southwest Land Border
//! and Nationwide Encounters CSVs, one row per fiscal month, component, demographic,
//! citizenship, title of authority and encounter type (Nationwide also per office).
//!
//! A series is (citizenship, encounter type): the rows of a month are summed over component,
//! demographic, authority, region and office, and also over encounter types as `total`.

use borderwatch_model::{Country, Period, TOTAL_CATEGORY, tokenize};

use super::fiscal;
use super::table::{self, Added, Row, Sums};
use crate::error::IngestError;
use crate::format::{Format, Options, Sniff};
use crate::rows::{Parsed, RowSink};

/// The source of a file whose header has CBP's `Land Border Region` (Nationwide Encounters).
pub const NATIONWIDE_SOURCE: &str = "cbp_nationwide";
/// The source of the other CBP files (Southwest Land Border Encounters).
pub const SOUTHWEST_SOURCE: &str = "cbp_sw";

pub(crate) const FORMAT: Format = Format {
    name: "cbp_csv",
    description: "US CBP encounters CSV (Southwest Land Border or Nationwide): fiscal months, \
                  summed per citizenship and encounter type; source cbp_sw or cbp_nationwide",
    sniff,
    parse,
};

const NAME: &str = "cbp_csv";

/// A CBP file's header names its fiscal year, encounter type and encounter count.
fn sniff(sniff: &Sniff<'_>) -> bool {
    let Some(head) = sniff.text_head else {
        return false;
    };
    let Some(names) = table::first_line_names(head) else {
        return false;
    };
    ["fiscal_year", "encounter_type", "encounter_count"]
        .iter()
        .all(|n| names.iter().any(|h| h == n))
}

/// Where the columns this format reads are.
struct Columns {
    fiscal_year: usize,
    month: usize,
    citizenship: usize,
    encounter_type: usize,
    count: usize,
}

fn parse(bytes: &[u8], options: &Options<'_>) -> Result<Parsed, IngestError> {
    let text = crate::decode::decode_text(bytes)?;
    let mut rows = table::text_rows(&text);
    let header = loop {
        match rows.next() {
            None => return Err(IngestError::NoHeader),
            Some(row) => {
                let row = row?;
                if !row.is_blank() {
                    break row;
                }
            }
        }
    };
    let names: Vec<String> = header.cells.iter().map(|c| table::normalize(c)).collect();
    let find = |wanted: &[&str], shown: &str| {
        wanted
            .iter()
            .find_map(|w| names.iter().position(|n| n == w))
            .ok_or_else(|| IngestError::BadLayout {
                format: NAME,
                message: format!(
                    "line {}: no `{shown}` column (found: {}); a CBP encounters file has the \
                     columns Fiscal Year, Month (abbv), Citizenship (or Citizenship Grouping), \
                     Encounter Type and Encounter Count",
                    header.line,
                    header.cells.join(", ")
                ),
            })
    };
    let columns = Columns {
        fiscal_year: find(&["fiscal_year"], "Fiscal Year")?,
        month: find(&["month_abbv", "month"], "Month (abbv)")?,
        citizenship: find(
            &["citizenship", "citizenship_grouping"],
            "Citizenship Grouping",
        )?,
        encounter_type: find(&["encounter_type"], "Encounter Type")?,
        count: find(&["encounter_count"], "Encounter Count")?,
    };
    let source = match options.source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => tokenize(s).ok_or_else(|| IngestError::BadSource {
            value: s.to_string(),
        })?,
        None if names
            .iter()
            .any(|n| n == "land_border_region" || n == "area_of_responsibility") =>
        {
            NATIONWIDE_SOURCE.to_string()
        }
        None => SOUTHWEST_SOURCE.to_string(),
    };

    let mut sink = RowSink::new(options.limits);
    let mut sums = Sums::new(source);
    for row in rows {
        let row = row?;
        if row.is_blank() {
            continue;
        }
        sink.count_row()?;
        if row.cells.len() != header.cells.len() {
            let reason = format!(
                "expected {} fields as in the header (line {}), found {}; a value with a `,` \
                 in it must be in double quotes",
                header.cells.len(),
                header.line,
                row.cells.len()
            );
            sink.reject(row.line, "", &row.cells.join(","), reason);
            // Most often a citizenship with a `,` left unquoted: read it that way only to
            // withhold the sums the row belongs to, which would be short without it.
            if let Some(joined) = rejoin(&row, header.cells.len(), columns.citizenship) {
                for key in row_keys(&joined, &columns) {
                    sums.withhold(key, row.line);
                }
            }
            continue;
        }
        read_row(&row, &header, &columns, &mut sums, &mut sink);
    }
    sums.finish(&mut sink);
    Ok(sink.finish())
}

/// A row with more fields than the header, its extra fields taken back into the citizenship.
fn rejoin(row: &Row, fields: usize, citizenship: usize) -> Option<Row> {
    let extra = row.cells.len().checked_sub(fields).filter(|e| *e > 0)?;
    let mut cells = row.cells[..citizenship].to_vec();
    cells.push(row.cells[citizenship..=citizenship + extra].join(", "));
    cells.extend_from_slice(&row.cells[citizenship + extra + 1..]);
    Some(Row {
        line: row.line,
        cells,
    })
}

/// One row's columns, read; an error names the column's index and the reason.
struct Read {
    period: Result<Period, (usize, String)>,
    country: Result<Country, (usize, String)>,
    category: Result<String, (usize, String)>,
}

fn read(row: &Row, c: &Columns) -> Read {
    let period = fiscal::fiscal_year(row.get(c.fiscal_year))
        .map_err(|e| (c.fiscal_year, e))
        .and_then(|fy| {
            fiscal::month(row.get(c.month))
                .map(|m| fiscal::period(fy, m))
                .map_err(|e| (c.month, e))
        });
    let country = Country::parse(row.get(c.citizenship))
        .map_err(|e| (c.citizenship, format!("{e}, or OTHER for the rest")));
    let encounter_type = row.get(c.encounter_type);
    let category = tokenize(encounter_type).ok_or_else(|| {
        (
            c.encounter_type,
            format!(
                "`{encounter_type}` cannot be a category name: expected an encounter type such \
                 as Apprehensions, Inadmissibles or Expulsions"
            ),
        )
    });
    Read {
        period,
        country,
        category,
    }
}

/// The series and periods a row adds to, as far as its columns could be read: its encounter
/// type and `total` for its citizenship and month.
fn keys(read: &Read) -> Vec<(Country, String, Period)> {
    let mut keys = Vec::new();
    if let (Ok(period), Ok(country)) = (&read.period, &read.country) {
        keys.push((*country, TOTAL_CATEGORY.to_string(), *period));
        if let Ok(category) = &read.category {
            keys.push((*country, category.clone(), *period));
        }
    }
    keys
}

fn row_keys(row: &Row, c: &Columns) -> Vec<(Country, String, Period)> {
    keys(&read(row, c))
}

/// Sums one data row into its series, or rejects it naming the first bad column.
fn read_row(row: &Row, header: &Row, c: &Columns, sums: &mut Sums, sink: &mut RowSink) {
    let column = |i: usize| header.get(i).to_string();
    if tokenize(row.get(c.encounter_type)).as_deref() == Some(TOTAL_CATEGORY) {
        // Not part of any sum: `total` is made here from the encounter types.
        sink.reject(
            row.line,
            &column(c.encounter_type),
            row.get(c.encounter_type),
            "a total over encounter types: left out, since the total is summed here from \
             the encounter types' rows"
                .into(),
        );
        return;
    }
    let read = read(row, c);
    let keys = keys(&read);
    let count = table::count(row.get(c.count)).map_err(|e| (c.count, e));
    let first_error = read
        .period
        .as_ref()
        .err()
        .or(read.country.as_ref().err())
        .or(read.category.as_ref().err())
        .or(count.as_ref().err())
        .cloned();
    if let Some((i, reason)) = first_error {
        for key in &keys {
            sums.withhold(key.clone(), row.line);
        }
        sink.reject(row.line, &column(i), row.get(i), reason);
        return;
    }
    let Ok(count) = count else { return };
    let identity: Vec<String> = row
        .cells
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != c.count)
        .map(|(_, v)| v.to_lowercase())
        .collect();
    match sums.row(row.line, identity, &keys, count) {
        Added::Summed => {}
        Added::Repeat => sink.repeat(),
        Added::Conflict {
            first_line,
            first_count,
        } => sink.reject(
            row.line,
            &column(c.count),
            row.get(c.count),
            format!(
                "repeats line {first_line} in every column but the count ({first_count} there): \
                 remove one of the two rows"
            ),
        ),
    }
}
