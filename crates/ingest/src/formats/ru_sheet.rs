//! `ru_sheet`: wide Russian spreadsheets (xls, xlsx): one row per country, one column per
//! purpose of trip, under several merged header rows, as the MVD and the FSB publish them.
//!
//! The header row is the first row naming at least three purposes (туризм, учёба, работа,
//! частная, иное, служебная, деловая, транзит, ПМЖ, обслуживающий персонал); a `всего` column
//! in that row, or a `первично` column left of the purposes in the rows above (the MVD's
//! total of the purposes), is the category `total`. Every other column is not read. The period
//! of a column is the nearest text above it that names one (`за январь - декабрь 2016 года`,
//! `III квартал 2024`, `2024-Q3`; a merged cell covers the columns to its right), else the
//! first such text in any sheet's title rows. A sheet is read when most of its row labels
//! are countries (a sheet by region is not). Row labels `всего…`/`итого…` are
//! [`Country::TOTAL`]; a label that is no known country is a rejected row naming it.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use borderwatch_model::{Country, Observation, Period, TOTAL_CATEGORY, tokenize};
use calamine::{Data, Reader};

use super::table;
use super::ytd::{self, Label};
use crate::error::IngestError;
use crate::format::{Format, Options, Sniff};
use crate::purpose;
use crate::rows::{Parsed, RowSink};

const NAME: &str = "ru_sheet";

/// Headers of a column that totals the purposes.
const TOTAL_HEADERS: &[&str] = purpose::TOTALS;
/// The MVD's total of the purposes: first-time registrations, in a row above the purposes.
const TOTAL_ABOVE: &[&str] = &["первично"];

/// Words of a sheet's title that name its source, when none is given with the file.
const SOURCES: &[(&str, &str)] = &[
    ("миграцион", "mvd_registration"),
    ("въезд", "fsb"),
    ("пограничн", "fsb"),
];

/// How many rows from the top a header or a title may be in.
const HEADER_SCAN: usize = 40;

pub(crate) const FORMAT: Format = Format {
    name: NAME,
    description: "wide Russian spreadsheet (xls, xlsx): a row per country (Russian names), a \
                  column per purpose of trip, merged header rows (MVD migration registrations, \
                  FSB tables)",
    sniff,
    parse,
};

/// One sheet's cells, with where they start in the sheet.
#[derive(Debug)]
struct Sheet {
    name: String,
    /// Sheet row and column (0-based) of `cells[0][0]`.
    origin: (u32, u32),
    cells: Vec<Vec<Data>>,
}

impl Sheet {
    fn text(&self, row: usize, col: usize) -> Option<String> {
        match self.cells.get(row)?.get(col)? {
            Data::String(s) => Some(normalize(s)).filter(|s| !s.is_empty()),
            _ => None,
        }
    }

    /// A text cell as written, trimmed.
    fn raw(&self, row: usize, col: usize) -> String {
        match self.cells.get(row).and_then(|r| r.get(col)) {
            Some(Data::String(s)) => s.trim().to_string(),
            _ => String::new(),
        }
    }

    /// The cell reference a user sees (`I13`).
    fn cell_ref(&self, row: usize, col: usize) -> String {
        format!(
            "{}{}",
            column_letters(self.origin.1 as usize + col),
            self.origin.0 as usize + row + 1
        )
    }

    fn line(&self, row: usize) -> u64 {
        u64::from(self.origin.0) + row as u64 + 1
    }
}

fn column_letters(mut col: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn normalize(s: &str) -> String {
    s.to_lowercase()
        .replace('ё', "е")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(':')
        .trim()
        .to_string()
}

fn looks_like_workbook(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
        || bytes.starts_with(b"PK\x03\x04")
}

/// Every sheet of the workbook, read cell by cell under the caps of
/// [`table::sheet_grid`]; calamine's panics on malformed files become errors.
fn open(bytes: &[u8]) -> Result<Vec<Sheet>, IngestError> {
    let bad = |message: String| IngestError::BadLayout {
        format: NAME,
        message,
    };
    if !looks_like_workbook(bytes) {
        return Err(bad("it is not an Excel workbook (xls or xlsx)".into()));
    }
    super::xls_guard::check(bytes, NAME)?;
    super::xlsx_guard::check(bytes, NAME)?;
    super::ods_guard::check(bytes, NAME)?;
    let mut book = catch_unwind(AssertUnwindSafe(|| {
        calamine::open_workbook_auto_from_rs(Cursor::new(bytes.to_vec()))
    }))
    .map_err(|_| bad("the workbook is damaged (its reader gave up)".into()))?
    .map_err(|e| bad(format!("the workbook cannot be opened ({e})")))?;
    let mut sheets = Vec::new();
    for name in book.sheet_names() {
        let grid = table::sheet_grid(&mut book, &name, NAME)?;
        sheets.push(Sheet {
            name,
            origin: grid.origin,
            cells: grid.cells,
        });
    }
    Ok(sheets)
}

/// The header row: the first row (from the top) that names at least three purposes.
fn header_row(sheet: &Sheet) -> Option<usize> {
    (0..sheet.cells.len().min(HEADER_SCAN)).find(|&r| {
        (0..sheet.cells[r].len())
            .filter(|&c| purpose(sheet.text(r, c).as_deref()).is_some())
            .count()
            >= 3
    })
}

/// A purpose of trip as a column header (normalized: lowercase, `ё` as `е`), as its token.
fn purpose(text: Option<&str>) -> Option<&'static str> {
    purpose::purpose(text?)
}

fn sniff(sniff: &Sniff<'_>) -> bool {
    if !looks_like_workbook(sniff.bytes) {
        return false;
    }
    if sniff.bytes.starts_with(b"PK") {
        // An xlsx is read cell by cell, only as far as the header may be: detection must not
        // cost every xlsx upload a full read.
        return catch_unwind(AssertUnwindSafe(|| xlsx_has_purpose_row(sniff.bytes)))
            .unwrap_or(false);
    }
    open(sniff.bytes)
        .map(|sheets| sheets.iter().any(|s| header_row(s).is_some()))
        .unwrap_or(false)
}

/// Whether a sheet of the xlsx has a row of purposes in its first [`HEADER_SCAN`] rows.
fn xlsx_has_purpose_row(bytes: &[u8]) -> bool {
    let Ok(mut book) = calamine::Xlsx::new(Cursor::new(bytes)) else {
        return false;
    };
    for name in book.sheet_names() {
        let Ok(mut cells) = book.worksheet_cells_reader(&name) else {
            continue;
        };
        let (mut row, mut purposes) = (None, 0);
        while let Ok(Some(cell)) = cells.next_cell() {
            let (r, _) = cell.get_position();
            if r as usize >= HEADER_SCAN {
                break;
            }
            if row != Some(r) {
                row = Some(r);
                purposes = 0;
            }
            let text = match cell.get_value() {
                calamine::DataRef::SharedString(s) => normalize(s),
                calamine::DataRef::String(s) => normalize(s),
                _ => continue,
            };
            if purpose(Some(&text)).is_some() {
                purposes += 1;
                if purposes >= 3 {
                    return true;
                }
            }
        }
    }
    false
}

/// The period a text names, if it names one: `2016`, `2024-Q3`, `III квартал 2024`,
/// `за январь - декабрь 2016 года`. A year-to-date span that is no quarter or year is an
/// error.
fn text_period(text: &str) -> Option<Result<Period, String>> {
    let t = normalize(text);
    if let Ok(p) = text.trim().parse::<Period>() {
        return Some(Ok(p));
    }
    let words: Vec<&str> = t.split(' ').collect();
    let year_at = words.iter().position(|w| {
        let w = w.trim_end_matches("г.").trim_end_matches('г');
        w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()) && ("1990"..="2100").contains(&w)
    })?;
    let year: i32 = words[year_at]
        .trim_end_matches("г.")
        .trim_end_matches('г')
        .parse()
        .ok()?;
    let rest: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|(i, w)| *i != year_at && !matches!(**w, "за" | "года" | "год" | "г." | "г"))
        .map(|(_, w)| *w)
        .collect();
    if rest.is_empty() {
        return Some(Ok(Period::Year(year)));
    }
    let label = ytd::parse_label(&rest.join(" ")).ok()?;
    Some(match label {
        Label::Month(_) | Label::Quarter(_) => label.single(year).ok_or_else(String::new),
        Label::ToDate(12) => Ok(Period::Year(year)),
        Label::ToDate(3) => Ok(Period::Quarter(year, 1)),
        Label::ToDate(1) => Ok(Period::Month(year, 1)),
        Label::ToDate(_) => Err(format!(
            "`{text}` is a year-to-date figure that is no quarter or year: send the quarters, \
             or the same table for the whole year"
        )),
    })
}

/// The period of column `col`: the nearest text above the header row, at or left of the
/// column in its row (a merged cell's value sits in its leftmost column), that names one.
fn column_period(sheet: &Sheet, header: usize, col: usize) -> Option<Result<Period, String>> {
    for r in (0..header).rev() {
        let carried = (0..=col)
            .rev()
            .find_map(|c| sheet.text(r, c).map(|t| (c, t)));
        if let Some((_, text)) = carried
            && let Some(p) = text_period(&text)
        {
            return Some(p);
        }
    }
    None
}

/// A figure in a cell: a whole number from 0 up; `-`/`–` is Rosstat's "none" (0).
fn cell_count(cell: &Data) -> Result<u64, String> {
    match cell {
        Data::Int(i) => u64::try_from(*i)
            .map_err(|_| format!("{i} is negative: a count is a whole number from 0 up")),
        Data::Float(f) => {
            if f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15 {
                Ok(*f as u64)
            } else if *f < 0.0 {
                Err(format!(
                    "{f} is negative: a count is a whole number from 0 up"
                ))
            } else {
                Err(format!("{f} is not a whole count"))
            }
        }
        Data::String(s) => {
            let t: String = s
                .trim()
                .chars()
                .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
                .collect();
            if matches!(t.as_str(), "-" | "–" | "—") {
                Ok(0)
            } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse()
                    .map_err(|_| format!("`{s}` is too large to be a count"))
            } else if matches!(t.as_str(), "..." | "…") {
                Err("the figure is marked as not available (…)".into())
            } else {
                Err(format!(
                    "`{s}` is not a count: expected a whole number, or `-` for none"
                ))
            }
        }
        Data::Empty => Err("the cell is empty: write 0 (or `-`) for none".into()),
        other => Err(format!("`{other}` is not a count")),
    }
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        other => other.to_string(),
    }
}

/// The country a row label names: `всего…`/`итого…` is the total row.
fn row_country(label: &str) -> Result<Country, String> {
    let n = normalize(label);
    if TOTAL_HEADERS.iter().any(|t| n.starts_with(t)) {
        return Ok(Country::TOTAL);
    }
    // Stateless persons (`ЛИЦА БЕЗ ГРАЖДАНСТВА`) read as `Country::STATELESS`, a row of its own.
    Country::parse(label).map_err(|_| {
        format!(
            "`{label}` is not a known country name: add it to the Russian aliases \
             (crates/model/src/country/russian.rs) if it is one"
        )
    })
}

/// A data column: where it is, its category and its header as written.
#[derive(Debug)]
struct Column {
    col: usize,
    category: &'static str,
    header: String,
    period: Period,
}

/// A sheet this format reads: its header row and columns.
#[derive(Debug)]
struct Layout {
    header: usize,
    columns: Vec<Column>,
}

fn layout(
    sheet: &Sheet,
    header: usize,
    book_period: Option<&Result<Period, String>>,
) -> Result<Layout, IngestError> {
    let bad = |message: String| IngestError::BadLayout {
        format: NAME,
        message,
    };
    let width = sheet.cells.get(header).map_or(0, Vec::len);
    let mut found: Vec<(usize, &'static str, String)> = Vec::new();
    for c in 0..width {
        let text = sheet.text(header, c);
        if let Some(tok) = purpose(text.as_deref()) {
            found.push((c, tok, sheet.raw(header, c)));
        } else if text.as_deref().is_some_and(|t| TOTAL_HEADERS.contains(&t)) {
            found.push((c, TOTAL_CATEGORY, sheet.raw(header, c)));
        }
    }
    let first_purpose = found.first().map_or(0, |f| f.0);
    if !found.iter().any(|f| f.1 == TOTAL_CATEGORY) {
        let above = (0..header).rev().find_map(|r| {
            (0..first_purpose).rev().find_map(|c| {
                sheet
                    .text(r, c)
                    .filter(|t| TOTAL_ABOVE.contains(&t.as_str()))
                    .map(|_| (c, sheet.raw(r, c)))
            })
        });
        if let Some((c, t)) = above {
            found.insert(0, (c, TOTAL_CATEGORY, t));
        }
    }
    let mut columns = Vec::new();
    for (col, category, header_text) in found {
        let period = match column_period(sheet, header, col).or_else(|| book_period.cloned()) {
            Some(Ok(p)) => p,
            Some(Err(reason)) => return Err(bad(format!("sheet `{}`: {reason}", sheet.name))),
            None => {
                return Err(bad(format!(
                    "sheet `{}`: no period above column {} and none in the title rows of any \
                     sheet: the title should say it, e.g. `за январь - декабрь 2016 года`",
                    sheet.name,
                    column_letters(sheet.origin.1 as usize + col)
                )));
            }
        };
        columns.push(Column {
            col,
            category,
            header: header_text,
            period,
        });
    }
    Ok(Layout { header, columns })
}

/// Whether the sheet's name or title says its rows are countries (`по странам мира`).
fn titled_by_country(sheet: &Sheet, header: usize) -> bool {
    let says = |t: &str| t.contains("стран") && !t.contains("регион");
    says(&normalize(&sheet.name))
        || (0..header)
            .any(|r| (0..sheet.cells[r].len()).any(|c| sheet.text(r, c).is_some_and(|t| says(&t))))
}

/// Whether most row labels under the header are countries (not regions, say).
fn rows_are_countries(sheet: &Sheet, header: usize) -> bool {
    let labels: Vec<String> = sheet.cells[header + 1..]
        .iter()
        .filter_map(|row| match row.first() {
            Some(Data::String(s)) if !s.trim().is_empty() && normalize(s) != "код графы" => {
                Some(s.clone())
            }
            _ => None,
        })
        .take(20)
        .collect();
    let countries = labels.iter().filter(|l| row_country(l).is_ok()).count();
    !labels.is_empty() && countries * 2 >= labels.len()
}

fn parse(bytes: &[u8], options: &Options<'_>) -> Result<Parsed, IngestError> {
    let bad = |message: String| IngestError::BadLayout {
        format: NAME,
        message,
    };
    let sheets = open(bytes)?;
    // Title rows: every text above the header rows (or the top rows of a sheet without).
    let titles: Vec<String> = sheets
        .iter()
        .flat_map(|s| {
            let top = header_row(s).unwrap_or(HEADER_SCAN.min(s.cells.len()));
            (0..top).flat_map(move |r| (0..s.cells[r].len()).filter_map(move |c| s.text(r, c)))
        })
        .collect();
    let book_period = titles.iter().find_map(|t| text_period(t));

    let mut readable = Vec::new();
    let mut skipped = Vec::new();
    for sheet in &sheets {
        let Some(header) = header_row(sheet) else {
            skipped.push(format!("`{}` (no row of purposes)", sheet.name));
            continue;
        };
        if !titled_by_country(sheet, header) && !rows_are_countries(sheet, header) {
            skipped.push(format!("`{}` (its rows are not countries)", sheet.name));
            continue;
        }
        readable.push((sheet, layout(sheet, header, book_period.as_ref())?));
    }
    if readable.is_empty() {
        return Err(bad(format!(
            "no sheet has a row per country and a column per purpose of trip (туризм, учёба, \
             работа…); sheets: {}",
            if skipped.is_empty() {
                "none".to_string()
            } else {
                skipped.join(", ")
            }
        )));
    }
    let source = match options.source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => tokenize(s).ok_or_else(|| IngestError::BadSource {
            value: s.to_string(),
        })?,
        None => SOURCES
            .iter()
            .find(|(word, _)| titles.iter().any(|t| t.contains(word)))
            .map(|(_, s)| (*s).to_string())
            .ok_or(IngestError::NoSource)?,
    };
    let mut sink = RowSink::new(options.limits);
    for (sheet, layout) in readable {
        read_rows(sheet, &layout, &source, &mut sink)?;
    }
    Ok(sink.finish())
}

fn read_rows(
    sheet: &Sheet,
    layout: &Layout,
    source: &str,
    sink: &mut RowSink,
) -> Result<(), IngestError> {
    for (r, row) in sheet.cells.iter().enumerate().skip(layout.header + 1) {
        let label = row.first().map(cell_text).unwrap_or_default();
        let label = label.trim();
        let values_empty = layout
            .columns
            .iter()
            .all(|c| matches!(row.get(c.col), None | Some(Data::Empty)));
        if (label.is_empty() && values_empty) || normalize(label) == "код графы" {
            continue;
        }
        sink.count_row()?;
        let line = sheet.line(r);
        let country = match row_country(label) {
            Ok(c) => c,
            Err(reason) => {
                let column = format!("{}!{}", sheet.name, sheet.cell_ref(r, 0));
                sink.reject(line, &column, label, reason);
                continue;
            }
        };
        for column in &layout.columns {
            let cell = row.get(column.col).unwrap_or(&Data::Empty);
            let name = format!(
                "{}!{} ({})",
                sheet.name,
                sheet.cell_ref(r, column.col),
                column.header
            );
            match cell_count(cell) {
                Ok(count) => {
                    let obs = Observation {
                        source: source.to_string(),
                        country,
                        category: column.category.to_string(),
                        period: column.period,
                        count,
                        release_id: String::new(),
                    };
                    sink.keep(line, obs, &cell_text(cell));
                }
                Err(reason) => {
                    sink.reject(line, &name, &cell_text(cell), format!("{label}: {reason}"))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_from_title_texts() {
        let p = |t: &str| text_period(t).map(|r| r.map_err(|_| ()));
        assert_eq!(
            p("за январь - декабрь 2016 года"),
            Some(Ok(Period::Year(2016)))
        );
        assert_eq!(p("III квартал 2024"), Some(Ok(Period::Quarter(2024, 3))));
        assert_eq!(p("2024 г. III квартал"), Some(Ok(Period::Quarter(2024, 3))));
        assert_eq!(p("2024-Q3"), Some(Ok(Period::Quarter(2024, 3))));
        assert_eq!(p("2016 год"), Some(Ok(Period::Year(2016))));
        assert_eq!(p("январь-сентябрь 2024"), Some(Err(())));
        assert_eq!(p("с распределением по странам мира"), None);
        assert_eq!(p("Оформлено виз"), None);
    }

    #[test]
    fn cells_are_whole_counts_or_a_dash() {
        assert_eq!(cell_count(&Data::Float(465657.0)), Ok(465_657));
        assert_eq!(cell_count(&Data::Int(3)), Ok(3));
        assert_eq!(cell_count(&Data::String("1 234".into())), Ok(1234));
        assert_eq!(cell_count(&Data::String("–".into())), Ok(0));
        assert!(cell_count(&Data::Float(1.5)).is_err());
        assert!(
            cell_count(&Data::Float(-1.0))
                .unwrap_err()
                .contains("negative")
        );
        assert!(cell_count(&Data::Empty).unwrap_err().contains("empty"));
        assert!(cell_count(&Data::String("…".into())).is_err());
        assert!(cell_count(&Data::Float(f64::NAN)).is_err());
    }

    #[test]
    fn column_letters_go_past_z() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27 * 26), "AAA");
    }
}
