//! Wide tables (`wide`): one row per country (and category), one column per period, as
//! Eurostat and Frontex publish them, in CSV, TSV or a spreadsheet (its first sheet that has
//! such a table).
//!
//! The header row is the first row with a period column (`2024`, `2024Q3`, `2024-Q3`,
//! `2009M01`, `2009-01`, `JAN2009`, `Jan 2009`, or a date cell); rows above it may be titles
//! of one or two cells. The cells before the first period column name key columns (cells
//! after it that are not periods, such as a `Total`, are ignored); Eurostat's first column
//! joins several (`freq,citizen,unit,geo\TIME_PERIOD`, its cells `A,SY,NR,DE`). The country is the
//! first key column named (in this order) c_citizen, citizen, citizenship,
//! country_of_citizenship, nationality, citizenship_grouping, country or geo. The category
//! joins the values of the other key columns, except `freq`, `unit` and `source`, with `_`
//! (`Route`, `Border location` → `eastern_mediterranean_route_land`); with none it is
//! `total`. A `unit` column must say the figures are counts (NR, NBR, PER). `:` marks a
//! figure that was not observed (no observation, not zero); a flag after a figure
//! (`420931 e`) is dropped and the figure kept.

use borderwatch_model::{Country, Observation, Period, TOTAL_CATEGORY, tokenize};
use calamine::Reader;

use super::table::{self, Row};
use crate::error::IngestError;
use crate::format::{Format, Options, Sniff};
use crate::rows::{Parsed, RowSink};

pub(crate) const FORMAT: Format = Format {
    name: "wide",
    description: "one column per period (Eurostat TSV, Frontex CSV or spreadsheet): country \
                  from a citizen/citizenship/nationality/country/geo column, category from \
                  the other key columns; `:` is no figure",
    sniff,
    parse,
};

const NAME: &str = "wide";

/// Names of the country column, the first found wins.
const COUNTRY_COLUMNS: &[&str] = &[
    "c_citizen",
    "citizen",
    "citizenship",
    "country_of_citizenship",
    "nationality",
    "citizenship_grouping",
    "country",
    "geo",
];

/// Key columns that never make part of a category.
const NOT_CATEGORY: &[&str] = &["freq", "unit", "source"];

/// Units whose figures are counts of people or events.
const COUNT_UNITS: &[&str] = &["nr", "nbr", "number", "per", "pers", "persons"];

/// How many non-blank rows are searched for the header (titles and notes come first).
const HEADER_SEARCH: usize = 30;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Reads a period column's name; `None` when it is not a period.
pub(crate) fn period_label(label: &str) -> Option<Period> {
    let t = label.trim();
    let year = |y: &str| -> Option<i32> {
        (y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
            .then(|| y.parse().ok())
            .flatten()
            .filter(|y| (1900..=2200).contains(y))
    };
    if let Some(y) = year(t) {
        return Some(Period::Year(y));
    }
    if t.len() < 6 || !t.is_ascii() {
        return None;
    }
    let upper = t.to_ascii_uppercase();
    // 2024Q3, 2024-Q3, 2024 Q3, 2009M01, 2009-M01, 2009-01
    if let Some(y) = year(&upper[..4]) {
        let rest = upper[4..].trim_start_matches(['-', ' ', '_']);
        if let Some(q) = rest.strip_prefix('Q') {
            return match q {
                "1" | "2" | "3" | "4" => Some(Period::Quarter(y, q.parse().ok()?)),
                _ => None,
            };
        }
        let m = rest.strip_prefix('M').unwrap_or(rest);
        if (1..=2).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_digit()) {
            let m: u8 = m.parse().ok()?;
            return (1..=12).contains(&m).then_some(Period::Month(y, m));
        }
        return None;
    }
    // Q3 2024, JAN2009, Jan 2009, January 2009, Jan-2009
    let (name, y) = upper.split_at(upper.len() - 4);
    let y = year(y)?;
    let name = name.trim_end_matches(['-', ' ', '_']).to_ascii_lowercase();
    if let Some(q) = name.strip_prefix('q') {
        return match q {
            "1" | "2" | "3" | "4" => Some(Period::Quarter(y, q.parse().ok()?)),
            _ => None,
        };
    }
    let full = super::fiscal::MONTHS;
    let m = MONTHS
        .iter()
        .position(|m| *m == name)
        .or_else(|| full.iter().position(|m| *m == name))?;
    Some(Period::Month(y, m as u8 + 1))
}

/// Where a key column's values are: a cell of their own, or part of a joined cell.
#[derive(Debug, Clone)]
struct Key {
    /// As the header writes it, for messages.
    name: String,
    normalized: String,
    cell: usize,
    /// `(part, parts)` of a cell that joins several keys with `,`.
    part: Option<(usize, usize)>,
}

/// What the header row says about the table.
#[derive(Debug)]
struct Layout {
    header_line: u64,
    keys: Vec<Key>,
    periods: Vec<(usize, Period)>,
    country: usize,
    category: Vec<usize>,
    unit: Option<usize>,
    source: Option<usize>,
}

/// The header: the first row with a period column, where the rows above it are titles (at
/// most two cells each). Without one, `Err` carries the row of three or more cells without a
/// period that ended the search (another table's header), if any.
fn find_header(
    rows: &mut impl Iterator<Item = Result<Row, IngestError>>,
) -> Result<Result<Row, Option<Row>>, IngestError> {
    let mut seen = 0;
    for row in rows {
        let row = row?;
        if row.is_blank() {
            continue;
        }
        if row.cells.iter().any(|c| period_label(c).is_some()) {
            return Ok(Ok(row));
        }
        if filled(&row) >= 3 {
            return Ok(Err(Some(row)));
        }
        seen += 1;
        if seen >= HEADER_SEARCH {
            break;
        }
    }
    Ok(Err(None))
}

/// Whether rows start with a wide header that names a country column.
fn is_wide(rows: &mut impl Iterator<Item = Result<Row, IngestError>>) -> bool {
    matches!(find_header(rows), Ok(Ok(header)) if layout(&header).is_ok())
}

fn filled(row: &Row) -> usize {
    row.cells.iter().filter(|c| !c.trim().is_empty()).count()
}

fn layout(header: &Row) -> Result<Layout, IngestError> {
    let mut keys = Vec::new();
    let mut periods = Vec::new();
    for (i, cell) in header.cells.iter().enumerate() {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        if let Some(p) = period_label(cell) {
            periods.push((i, p));
            continue;
        }
        if !periods.is_empty() {
            // After the periods: a derived column such as `Total`, not a key.
            continue;
        }
        let names = cell.split_once('\\').map(|(keys, _)| keys).unwrap_or(cell);
        let parts: Vec<&str> = if cell.contains('\\') {
            names.split(',').collect()
        } else {
            vec![names]
        };
        let n = parts.len();
        for (j, name) in parts.into_iter().enumerate() {
            keys.push(Key {
                name: name.trim().to_string(),
                normalized: table::normalize(name),
                cell: i,
                part: (n > 1).then_some((j, n)),
            });
        }
    }
    let found = || {
        keys.iter()
            .map(|k| k.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let country = COUNTRY_COLUMNS
        .iter()
        .find_map(|c| keys.iter().position(|k| k.normalized == *c))
        .ok_or_else(|| IngestError::BadLayout {
            format: NAME,
            message: format!(
                "line {}: no country column among the key columns (found: {}); name the \
                 column of citizenships citizen, citizenship, nationality, country or geo",
                header.line,
                found()
            ),
        })?;
    let find = |name: &str| keys.iter().position(|k| k.normalized == name);
    let category = (0..keys.len())
        .filter(|i| *i != country && !NOT_CATEGORY.contains(&keys[*i].normalized.as_str()))
        .collect();
    Ok(Layout {
        header_line: header.line,
        unit: find("unit"),
        source: find("source"),
        keys,
        periods,
        country,
        category,
    })
}

fn sniff(sniff: &Sniff<'_>) -> bool {
    if is_spreadsheet(sniff.bytes) {
        return table::open_workbook(sniff.bytes, NAME)
            .ok()
            .and_then(|mut wb| first_wide_sheet(&mut wb))
            .is_some();
    }
    sniff
        .text_head
        .is_some_and(|head| is_wide(&mut table::text_rows(head)))
}

fn is_spreadsheet(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

/// The first sheet with a wide header, and its rows.
fn first_wide_sheet(workbook: &mut table::Workbook) -> Option<Vec<Row>> {
    for name in workbook.sheet_names() {
        let Ok(rows) = table::sheet_rows(workbook, &name, NAME) else {
            continue;
        };
        if is_wide(&mut rows.iter().cloned().map(Ok)) {
            return Some(rows);
        }
    }
    None
}

/// A spreadsheet's rows: its first sheet with a wide table, else its first sheet (whose
/// header the error will describe).
fn spreadsheet_rows(bytes: &[u8]) -> Result<Vec<Row>, IngestError> {
    let mut workbook = table::open_workbook(bytes, NAME)?;
    if let Some(rows) = first_wide_sheet(&mut workbook) {
        return Ok(rows);
    }
    let first =
        workbook
            .sheet_names()
            .into_iter()
            .next()
            .ok_or_else(|| IngestError::BadLayout {
                format: NAME,
                message: "the workbook has no sheets".into(),
            })?;
    table::sheet_rows(&mut workbook, &first, NAME)
}

fn parse(bytes: &[u8], options: &Options<'_>) -> Result<Parsed, IngestError> {
    let text;
    let mut rows: Box<dyn Iterator<Item = Result<Row, IngestError>>> = if is_spreadsheet(bytes) {
        Box::new(spreadsheet_rows(bytes)?.into_iter().map(Ok))
    } else {
        text = crate::decode::decode_text(bytes)?;
        Box::new(table::text_rows(&text))
    };
    let header = match find_header(&mut rows)? {
        Ok(header) => header,
        Err(blocking) => {
            return Err(IngestError::BadLayout {
                format: NAME,
                message: format!(
                    "no header row with period columns (2024, 2024Q3, 2024-Q3, 2009M01, \
                     JAN2009): rows above the header may only be titles of one or two cells{}",
                    blocking
                        .map(|r| format!(", line {}, which has: {}", r.line, r.cells.join(", ")))
                        .unwrap_or_default()
                ),
            });
        }
    };
    let layout = layout(&header)?;
    let default_source = match options.source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(tokenize(s).ok_or_else(|| IngestError::BadSource {
            value: s.to_string(),
        })?),
        None => None,
    };
    if layout.source.is_none() && default_source.is_none() {
        return Err(IngestError::NoSource);
    }

    let mut sink = RowSink::new(options.limits);
    for row in rows {
        let row = row?;
        if row.is_blank() {
            continue;
        }
        sink.count_row()?;
        read_row(&row, &header, &layout, default_source.as_deref(), &mut sink);
    }
    Ok(sink.finish())
}

/// The value of key `k` in `row`.
fn key_value<'r>(row: &'r Row, key: &Key) -> Option<&'r str> {
    let cell = row.get(key.cell);
    match key.part {
        None => Some(cell.trim()),
        Some((j, n)) => {
            let parts: Vec<&str> = cell.split(',').collect();
            (parts.len() == n).then(|| parts[j].trim())
        }
    }
}

fn read_row(row: &Row, header: &Row, layout: &Layout, default: Option<&str>, sink: &mut RowSink) {
    let keys = &layout.keys;
    // A joined cell must have as many parts as its header names.
    if let Some(k) = keys.iter().find(|k| key_value(row, k).is_none()) {
        let (_, n) = k.part.unwrap_or((0, 1));
        sink.reject(
            row.line,
            header.get(k.cell),
            row.get(k.cell),
            format!(
                "expected {n} values separated by `,` as the header names (line {}), found {}",
                layout.header_line,
                row.get(k.cell).split(',').count()
            ),
        );
        return;
    }
    let value = |i: usize| key_value(row, &keys[i]).unwrap_or("");
    let source = match layout.source.map(value).filter(|s| !s.is_empty()) {
        Some(s) => match tokenize(s) {
            Some(t) => t,
            None => {
                let reason = format!(
                    "`{s}` is not a usable source name: use Latin letters, digits, spaces, `-` and `_` (at most 64)"
                );
                sink.reject(row.line, &keys[layout.source.unwrap_or(0)].name, s, reason);
                return;
            }
        },
        None => match default {
            Some(s) => s.to_string(),
            None => {
                let reason = "the source is empty and none was given with the file: fill it in, or name the source with the upload".to_string();
                sink.reject(row.line, "source", "", reason);
                return;
            }
        },
    };
    if let Some(u) = layout.unit {
        let unit = value(u);
        if !COUNT_UNITS.contains(&unit.to_ascii_lowercase().as_str()) {
            let reason = format!(
                "the unit `{unit}` is not a count: only rows in numbers (NR, NBR, PER) are \
                 ingested"
            );
            sink.reject(row.line, &keys[u].name, unit, reason);
            return;
        }
    }
    let raw_country = value(layout.country);
    let country = match country(raw_country) {
        Ok(c) => c,
        Err(reason) => {
            sink.reject(row.line, &keys[layout.country].name, raw_country, reason);
            return;
        }
    };
    let mut parts = Vec::new();
    for &i in &layout.category {
        let v = value(i);
        match tokenize(v) {
            Some(t) => parts.push(t),
            None if v.is_empty() => {}
            None => {
                let reason = format!(
                    "`{v}` cannot be part of a category name: use Latin letters, digits, \
                     spaces, `-` and `_`"
                );
                sink.reject(row.line, &keys[i].name, v, reason);
                return;
            }
        }
    }
    let category = if parts.is_empty() {
        TOTAL_CATEGORY.to_string()
    } else {
        parts.join("_")
    };
    if tokenize(&category).as_deref() != Some(category.as_str()) {
        let reason = format!(
            "the category `{category}` made of this row's key columns is longer than 64 \
             characters"
        );
        sink.reject(row.line, "", &category, reason);
        return;
    }
    for &(i, period) in &layout.periods {
        let raw = row.get(i);
        match figure(raw) {
            Ok(None) => {}
            Ok(Some(count)) => {
                let obs = Observation {
                    source: source.clone(),
                    country,
                    category: category.clone(),
                    period,
                    count,
                    release_id: String::new(),
                };
                sink.keep(row.line, obs, raw);
            }
            Err(reason) => sink.reject(row.line, header.get(i).trim(), raw, reason),
        }
    }
}

/// A figure cell: `None` for no observation (empty, or `:` with or without flags), the count
/// with any trailing flag letters dropped (`420931 e`).
fn figure(raw: &str) -> Result<Option<u64>, String> {
    let t = raw.trim();
    if t.is_empty() || t.starts_with(':') {
        return Ok(None);
    }
    let (number, flags) = match t.split_once(char::is_whitespace) {
        Some((n, f)) => (n, f.trim()),
        None => (t, ""),
    };
    if !flags.chars().all(|c| c.is_ascii_alphabetic() || c == '@') {
        return Err(format!(
            "`{t}` is not a figure: expected a whole number, optionally followed by flag \
             letters (420931 e), or `:` for none"
        ));
    }
    table::count(number).map(Some).map_err(|e| {
        format!("{e}; a figure is a whole number, optionally with flag letters, or `:` for none")
    })
}

/// A country cell, with the reasons Eurostat's codes for groups and regions are left out.
fn country(value: &str) -> Result<Country, String> {
    if let Ok(c) = Country::parse(value) {
        return Ok(c);
    }
    let upper = value.trim().to_ascii_uppercase();
    let group_prefixes = ["EU", "EA", "EEA", "EFTA", "EXT_", "NEU", "WORLD", "OTH_"];
    let is_group = group_prefixes.iter().any(|p| {
        upper.starts_with(p)
            && upper[p.len()..]
                .chars()
                .all(|c| c.is_ascii_digit() || c == '_' || c.is_ascii_uppercase())
    }) && upper.len() > 3;
    if is_group {
        return Err(format!(
            "`{value}` is a group of countries, not one: left out (a total over every \
             citizenship is written TOTAL)"
        ));
    }
    let is_region = (3..=5).contains(&upper.len())
        && upper.is_ascii()
        && upper[2..].bytes().all(|b| b.is_ascii_alphanumeric())
        && upper[2..].bytes().any(|b| b.is_ascii_digit())
        && Country::parse(&upper[..2]).is_ok();
    if is_region {
        return Err(format!(
            "`{value}` is a region (NUTS) of {}, not a country: only whole countries are \
             ingested",
            &upper[..2]
        ));
    }
    Err(format!(
        "`{value}` is not a known country: use an ISO 3166-1 alpha-2 or alpha-3 code or an \
         English name"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_period_column_names() {
        for (label, period) in [
            ("2024", "2024"),
            ("1990 ", "1990"),
            ("2024Q3", "2024-Q3"),
            ("2024-Q3", "2024-Q3"),
            ("Q3 2024", "2024-Q3"),
            ("2009M01", "2009-01"),
            ("2009-01", "2009-01"),
            ("2009M1", "2009-01"),
            ("JAN2009", "2009-01"),
            ("Jan 2009", "2009-01"),
            ("September 2024", "2024-09"),
        ] {
            assert_eq!(
                period_label(label).map(|p| p.to_string()).as_deref(),
                Some(period),
                "{label}"
            );
        }
        for label in [
            "geo", "2024Q5", "2009M13", "ABC2009", "123", "20245", "1066", "Route",
        ] {
            assert_eq!(period_label(label), None, "{label}");
        }
    }

    #[test]
    fn figures_drop_flags_and_colons_are_no_figure() {
        assert_eq!(figure("420931 e"), Ok(Some(420_931)));
        assert_eq!(figure("919048 "), Ok(Some(919_048)));
        assert_eq!(figure(":"), Ok(None));
        assert_eq!(figure(": @C"), Ok(None));
        assert_eq!(figure(""), Ok(None));
        assert_eq!(figure("0"), Ok(Some(0)));
        assert!(figure("12.5").is_err());
        assert!(figure("12 3").is_err());
    }

    #[test]
    fn eurostat_groups_and_regions_are_left_out_with_a_reason() {
        assert!(
            country("EU27_2020")
                .unwrap_err()
                .contains("group of countries")
        );
        assert!(
            country("EXT_EU27_2020")
                .unwrap_err()
                .contains("group of countries")
        );
        assert!(country("BE1").unwrap_err().contains("region (NUTS) of BE"));
        // Stateless persons are a row of their own, apart from other and unknown.
        assert_eq!(country("STLS").unwrap(), Country::STATELESS);
        assert_eq!(country("EL").unwrap().code(), "GRC");
        assert_eq!(country("TOTAL").unwrap(), Country::TOTAL);
        assert!(
            country("Atlantis")
                .unwrap_err()
                .contains("not a known country")
        );
    }
}
