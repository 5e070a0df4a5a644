//! What the native formats share: rows of text cells with their line numbers, read from CSV
//! text or from a spreadsheet, header names normalized for matching, and the sums of formats
//! whose rows are finer than a series.

use std::collections::HashMap;
use std::io::Cursor;

use borderwatch_model::{Country, Observation, Period};
use calamine::{Data, Reader};

use crate::error::IngestError;
use crate::rows::RowSink;

/// One row of a table: its 1-based line (text) or row number (spreadsheet), and its cells.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) cells: Vec<String>,
}

impl Row {
    pub(crate) fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.trim().is_empty())
    }

    pub(crate) fn get(&self, i: usize) -> &str {
        self.cells.get(i).map(String::as_str).unwrap_or("")
    }
}

/// A header name for matching: lowercase ASCII words joined by `_` (`Month (abbv)` →
/// `month_abbv`, `Fiscal\nYear` → `fiscal_year`).
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim_start_matches('\u{feff}').chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// The column names of the first non-blank line of a file's head, normalized (for sniffers).
pub(crate) fn first_line_names(head: &str) -> Option<Vec<String>> {
    let first = head.lines().find(|l| !l.trim().is_empty())?;
    Some(
        first
            .split(char::from(delimiter(first)))
            .map(|n| normalize(n.trim_matches('"')))
            .collect(),
    )
}

/// The delimiter of a header line: tab when it has one (Eurostat's first column holds
/// commas), else `;` when it has more of them than `,`, else `,`.
pub(crate) fn delimiter(header: &str) -> u8 {
    let semicolons = header.matches(';').count();
    if header.contains('\t') {
        b'\t'
    } else if semicolons > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

/// Every record of CSV text, one at a time, with the line it starts on (blank lines and
/// quoted newlines counted), cells trimmed.
pub(crate) fn csv_rows(
    text: &str,
    delimiter: u8,
) -> impl Iterator<Item = Result<Row, IngestError>> + '_ {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let bytes = text.as_bytes();
    let (mut pos, mut line) = (0usize, 1u64);
    reader.into_records().map(move |record| {
        let record = record.map_err(|e| IngestError::Csv {
            line: e.position().map(|p| p.line()).unwrap_or(line),
            message: e.to_string(),
        })?;
        if let Some(p) = record.position() {
            let mut start = p.byte() as usize;
            while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
                start += 1;
            }
            let start = start.min(bytes.len()).max(pos);
            line += bytes[pos..start].iter().filter(|b| **b == b'\n').count() as u64;
            pos = start;
        }
        Ok(Row {
            line,
            cells: record.iter().map(str::to_string).collect(),
        })
    })
}

/// CSV text's rows, its delimiter taken from its first non-blank line.
pub(crate) fn text_rows(text: &str) -> impl Iterator<Item = Result<Row, IngestError>> + '_ {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    csv_rows(text, delimiter(first))
}

/// A spreadsheet (xlsx, xlsm, xlsb, xls or ods), opened from memory.
pub(crate) type Workbook = calamine::Sheets<Cursor<Vec<u8>>>;

/// Opens a spreadsheet. The reader runs behind `catch_unwind`: a malformed file must become
/// an error, never a panic of the service.
pub(crate) fn open_workbook(bytes: &[u8], format: &'static str) -> Result<Workbook, IngestError> {
    super::xls_guard::check(bytes, format)?;
    super::xlsx_guard::check(bytes, format)?;
    super::ods_guard::check(bytes, format)?;
    let cursor = Cursor::new(bytes.to_vec());
    match std::panic::catch_unwind(|| calamine::open_workbook_auto_from_rs(cursor)) {
        Ok(Ok(workbook)) => Ok(workbook),
        Ok(Err(e)) => Err(IngestError::BadLayout {
            format,
            message: format!("the spreadsheet could not be read ({e}); save it again as .xlsx"),
        }),
        Err(_) => Err(IngestError::BadLayout {
            format,
            message: "the spreadsheet is damaged and could not be read; save it again as .xlsx"
                .into(),
        }),
    }
}

/// The most rows, counted from the sheet's first row, that ingest reads of one sheet.
pub const MAX_SHEET_ROWS: u32 = 1_048_576;
/// The most columns, counted from column A, that ingest reads of one sheet.
pub const MAX_SHEET_COLUMNS: u32 = 4_096;
/// The most cells ingest holds of one sheet: its cells, and the empty cells left of them in
/// their rows.
///
/// Two million: above every agency workbook in test-data (their tests read them under it),
/// and what keeps one upload's memory bounded where calamine expands a sheet whole before any cap of
/// ours applies (ods repeats, xls). Measured with `borderwatch analyze --format wide` (debug
/// build) on an 836-byte ods repeating a row of five numbers: 4.3 million cells peaked at
/// 800 MB and 3 million at 570 MB, and 3 million cells of 30–60-character text at 1 GB; the
/// parser fuzzing (`tests/fuzz.rs`, 768 MiB a case) found the 4.3-million case under the
/// earlier cap of ten million.
pub const MAX_SHEET_CELLS: u64 = 2_000_000;

/// The most cells ingest holds of one ods or xls workbook, all its sheets together, counted
/// as calamine holds them when it opens the workbook (every sheet at once): each sheet's
/// cells as [`MAX_SHEET_CELLS`] counts them (an ods cell or row as often as it repeats, the
/// range calamine makes of them; an xls sheet's range, or what its `DIMENSIONS` record
/// reserves), an xls sheet as often as the workbook's sheet list names it. `ods_guard` and
/// `xls_guard` refuse a workbook past it ([`IngestError::WorkbookTooLarge`]) before calamine
/// opens it. xlsx and xlsb sheets are streamed one at a time and not counted against it.
///
/// As many as one sheet may hold: a workbook at both caps (cells and
/// [`MAX_WORKBOOK_TEXT_BYTES`]) then costs no more than one sheet at them. Measured with
/// `borderwatch analyze --source x` (debug build, peak resident size by `/usr/bin/time`) on
/// ods files of repeated cells (`tests/text_budget.rs`, `write_cell_measurement_files`, writes
/// them, except the mixed 3 and 4 million-cell files and the formula files below, which a
/// one-off script made and the repository does not keep): two million
/// numbers in rows of 5, one sheet, 340 MiB (`--format wide`), in 4 sheets 164 MiB; two
/// million 33-byte strings (the text budget) in one sheet 529 MiB (wide), in 4 sheets 279
/// MiB (wide) and 405 MiB (ru_sheet). Past it, as calamine held every sheet: 3 million cells
/// (those strings and a sheet of a million numbers) 559 MiB, 4 million 590 MiB (wide) and
/// 691 MiB (ru_sheet), too near the 768 MiB a fuzz case may take (`tests/fuzz.rs`); 8 sheets
/// of 1.9 million numbers (an 820-byte file) 731 MiB in 18 s, and more sheets more: now
/// refused in 0.01 s at 45 MiB. No agency workbook in test-data comes near (the xls: 7,453).
/// Formulas cost more, a second range calamine holds beside the values (not counted as
/// cells): one sheet of two million formula cells 446 MiB (wide), with 30 bytes of text
/// each (57 MiB, under the budget) 568 MiB (wide) and 531 MiB (ru_sheet).
pub const MAX_WORKBOOK_CELLS: u64 = MAX_SHEET_CELLS;

/// The most bytes of text the cells of one ods or xls workbook may hold, counted as calamine
/// holds them when it opens the workbook (all sheets at once): a cell repeated by
/// `table:number-columns-repeated` or `table:number-rows-repeated` as often as it repeats, an
/// xls shared string once and again for every cell that names it, and a formula beside its
/// cell's value. `ods_guard` and `xls_guard` refuse a workbook past it
/// ([`IngestError::TextTooLarge`]) before calamine opens it.
///
/// 64 MiB: some hundred times the text of any agency workbook in test-data, and what keeps a
/// workbook at the caps well under the 768 MiB a fuzz case may take (`tests/fuzz.rs`). The
/// cell cap alone does not bound memory, which follows the cells' bytes: the text is copied
/// while a sheet is read (calamine's ranges, the range a sheet is read from, its cells, their
/// row text), so reading takes some three times the text. Measured with `borderwatch analyze
/// --format wide --source x` (debug build, peak resident size by `/usr/bin/time`) on ods
/// files of one repeated text cell (`tests/text_budget.rs`, `write_measurement_files`, writes
/// them): 1 KiB cells, 64 MiB
/// of text (just under the budget) 240 MiB, 256 MiB of text 845 MiB; two million cells (the
/// cell cap) of 33 bytes (63 MiB, just under) 522 MiB, of 8 bytes 431 MiB, of 64 bytes
/// (122 MiB) 706 MiB. Past the budget such a file is refused in 0.05 s at 45 MiB.
pub const MAX_WORKBOOK_TEXT_BYTES: u64 = 64 << 20;

/// What a guard (`ods_guard`, `xls_guard`) has counted of a workbook so far, as calamine will
/// hold it, and the workbook-wide caps checked against it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct WorkbookCount {
    /// The text the workbook's cells hold.
    pub(super) text: u64,
    /// The cells of the sheets done (each as often as the workbook lists it).
    pub(super) cells: u64,
}

impl WorkbookCount {
    /// Refuses sheet `sheet` once its cells, `sheet_cells` so far, pass [`MAX_SHEET_CELLS`]
    /// or, with the sheets done before it, [`MAX_WORKBOOK_CELLS`].
    pub(super) fn check_cells(
        &self,
        format: &'static str,
        sheet: &str,
        sheet_cells: u64,
    ) -> Result<(), IngestError> {
        if sheet_cells > MAX_SHEET_CELLS {
            return Err(IngestError::SheetTooLarge {
                format,
                sheet: sheet.to_string(),
                what: "cells",
                limit: MAX_SHEET_CELLS,
            });
        }
        let found = self.cells.saturating_add(sheet_cells);
        if found > MAX_WORKBOOK_CELLS {
            return Err(IngestError::WorkbookTooLarge {
                format,
                sheet: sheet.to_string(),
                found,
                limit: MAX_WORKBOOK_CELLS,
            });
        }
        Ok(())
    }

    /// Adds `bytes` of text found in sheet `sheet`, and refuses the workbook once its text
    /// passes [`MAX_WORKBOOK_TEXT_BYTES`].
    pub(super) fn add_text(
        &mut self,
        format: &'static str,
        sheet: &str,
        bytes: u64,
    ) -> Result<(), IngestError> {
        self.text = self.text.saturating_add(bytes);
        if self.text > MAX_WORKBOOK_TEXT_BYTES {
            return Err(IngestError::TextTooLarge {
                format,
                sheet: sheet.to_string(),
                found: self.text,
                limit: MAX_WORKBOOK_TEXT_BYTES,
            });
        }
        Ok(())
    }

    /// Counts a finished sheet's cells into the workbook's.
    pub(super) fn end_sheet(&mut self, sheet_cells: u64) {
        self.cells = self.cells.saturating_add(sheet_cells);
    }
}

/// One sheet's cells, row by row from its first row with a cell, each row from its sheet's
/// first column with a cell to its own last cell (rows may differ in length).
#[derive(Debug, Default)]
pub(crate) struct Grid {
    /// Sheet row and column (0-based) of `cells[0][0]`.
    pub(crate) origin: (u32, u32),
    pub(crate) cells: Vec<Vec<Data>>,
}

/// Reads one sheet's cells one at a time, never the range a sheet declares: a workbook with
/// cells at A1 and XFD1048576 declares 17 billion cells, which calamine's `worksheet_range`
/// would allocate before returning. Beyond [`MAX_SHEET_ROWS`], [`MAX_SHEET_COLUMNS`] or
/// [`MAX_SHEET_CELLS`] the sheet is refused ([`IngestError::SheetTooLarge`]). xlsx and xlsb
/// are streamed (`xlsx_guard` first caps what their parts unpack to); xls and ods are read
/// whole by calamine when the workbook opens (an xls has at most 65,536 rows of 256
/// columns), so `xls_guard` and `ods_guard` hold them to the same caps before it does, and
/// they are held to them again here.
pub(crate) fn sheet_grid(
    workbook: &mut Workbook,
    sheet: &str,
    format: &'static str,
) -> Result<Grid, IngestError> {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut cells = Cells::new(sheet, format);
        // xlsx and xlsb readers share no trait, only the shape of their calls.
        macro_rules! stream_cells {
            ($book:expr) => {
                (|| {
                    let mut reader = $book
                        .worksheet_cells_reader(sheet)
                        .map_err(|e| e.to_string())?;
                    while let Some(cell) = reader.next_cell().map_err(|e| e.to_string())? {
                        let (row, col) = cell.get_position();
                        cells.push(row, col, Data::from(cell.get_value().clone()))?;
                    }
                    Ok(())
                })()
            };
        }
        let streamed: Result<(), String> = match workbook {
            calamine::Sheets::Xlsx(book) => stream_cells!(book),
            calamine::Sheets::Xlsb(book) => stream_cells!(book),
            calamine::Sheets::Xls(_) | calamine::Sheets::Ods(_) => (|| {
                let range = workbook.worksheet_range(sheet).map_err(|e| e.to_string())?;
                let (row0, col0) = range.start().unwrap_or((0, 0));
                for (r, c, value) in range.used_cells() {
                    let row = row0.saturating_add(u32::try_from(r).unwrap_or(u32::MAX));
                    let col = col0.saturating_add(u32::try_from(c).unwrap_or(u32::MAX));
                    cells.push(row, col, value.clone())?;
                }
                Ok(())
            })(),
        };
        match (streamed, cells.too_large.take()) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(IngestError::BadLayout {
                format,
                message: format!("sheet \"{sheet}\" could not be read ({e})"),
            }),
            (Ok(()), None) => cells.grid(),
        }
    }));
    read.unwrap_or_else(|_| {
        Err(IngestError::BadLayout {
            format,
            message: format!("sheet \"{sheet}\" is damaged and could not be read"),
        })
    })
}

/// The cells of one sheet as they are read, under the caps.
#[derive(Debug)]
struct Cells<'a> {
    sheet: &'a str,
    format: &'static str,
    cells: Vec<(u32, u32, Data)>,
    too_large: Option<IngestError>,
}

impl<'a> Cells<'a> {
    fn new(sheet: &'a str, format: &'static str) -> Self {
        Cells {
            sheet,
            format,
            cells: Vec::new(),
            too_large: None,
        }
    }

    fn refuse(&self, what: &'static str, limit: u64) -> IngestError {
        IngestError::SheetTooLarge {
            format: self.format,
            sheet: self.sheet.to_string(),
            what,
            limit,
        }
    }

    /// Takes one cell (empty ones are skipped); an error stops the reading.
    fn push(&mut self, row: u32, col: u32, value: Data) -> Result<(), String> {
        if matches!(value, Data::Empty) {
            return Ok(());
        }
        let refused = if row >= MAX_SHEET_ROWS {
            Some(self.refuse("rows", u64::from(MAX_SHEET_ROWS)))
        } else if col >= MAX_SHEET_COLUMNS {
            Some(self.refuse("columns", u64::from(MAX_SHEET_COLUMNS)))
        } else if self.cells.len() as u64 >= MAX_SHEET_CELLS {
            Some(self.refuse("cells", MAX_SHEET_CELLS))
        } else {
            None
        };
        if let Some(e) = refused {
            let message = e.to_string();
            self.too_large = Some(e);
            return Err(message);
        }
        self.cells.push((row, col, value));
        Ok(())
    }

    /// The cells as rows, the empty cells between them filled in (counted against the cap).
    fn grid(mut self) -> Result<Grid, IngestError> {
        let mut cells = std::mem::take(&mut self.cells);
        cells.sort_by_key(|&(row, col, _)| (row, col));
        let (Some(&(row0, _, _)), Some(&(last_row, _, _))) = (cells.first(), cells.last()) else {
            return Ok(Grid::default());
        };
        let col0 = cells.iter().map(|&(_, col, _)| col).min().unwrap_or(0);
        let mut rows: Vec<Vec<Data>> = Vec::new();
        rows.resize_with((last_row - row0) as usize + 1, Vec::new);
        let mut held: u64 = 0;
        for (row, col, value) in cells {
            let (i, j) = ((row - row0) as usize, (col - col0) as usize);
            let Some(row) = rows.get_mut(i) else {
                continue;
            };
            if let Some(cell) = row.get_mut(j) {
                *cell = value;
                continue;
            }
            held += (j + 1 - row.len()) as u64;
            if held > MAX_SHEET_CELLS {
                return Err(self.refuse("cells", MAX_SHEET_CELLS));
            }
            row.resize(j, Data::Empty);
            row.push(value);
        }
        Ok(Grid {
            origin: (row0, col0),
            cells: rows,
        })
    }
}

/// The rows of one sheet as text cells, numbered as the spreadsheet numbers them, each from
/// column A; read under the caps of [`sheet_grid`].
pub(crate) fn sheet_rows(
    workbook: &mut Workbook,
    sheet: &str,
    format: &'static str,
) -> Result<Vec<Row>, IngestError> {
    let grid = sheet_grid(workbook, sheet, format)?;
    let (first_row, first_col) = (u64::from(grid.origin.0), grid.origin.1 as usize);
    Ok(grid
        .cells
        .iter()
        .enumerate()
        .map(|(i, cells)| Row {
            line: first_row + i as u64 + 1,
            cells: std::iter::repeat_n(String::new(), first_col)
                .chain(cells.iter().map(cell_text))
                .collect(),
        })
        .collect())
}

/// A cell as the text a CSV export would show: whole numbers without `.0`.
pub(crate) fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => month_label(d.as_f64()).unwrap_or_else(|| d.to_string()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// A date cell (days since 1899-12-30) as the month it falls in, `YYYY-MM`: spreadsheets
/// often head monthly columns with the first day of the month.
fn month_label(serial: f64) -> Option<String> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    // Days from 1970-01-01, then the civil date (Howard Hinnant's algorithm).
    let z = serial.floor() as i64 - 25_569 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!("{year:04}-{month:02}"))
}

/// A count as agencies print it: whole digits (a spreadsheet's `90.0` has already lost its
/// `.0`), optionally with `,` thousands separators in groups of three.
pub(crate) fn count(value: &str) -> Result<u64, String> {
    let t = value.trim();
    if t.is_empty() {
        return Err("the count is empty".into());
    }
    let grouped = t.contains(',')
        && t.split(',').enumerate().all(|(i, g)| {
            g.bytes().all(|b| b.is_ascii_digit())
                && if i == 0 {
                    (1..=3).contains(&g.len())
                } else {
                    g.len() == 3
                }
        });
    let digits: String = if grouped {
        t.replace(',', "")
    } else {
        t.to_string()
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits
            .parse()
            .map_err(|_| format!("the count `{t}` is too large"));
    }
    Err(if t.starts_with('-') {
        format!("the count `{t}` is negative: counts are whole numbers from 0 up")
    } else {
        format!("`{t}` is not a count: expected a whole number from 0 up")
    })
}

type Key = (Country, String, Period);

/// Sums rows into series: for formats whose rows split a series further (CBP's components,
/// demographics, authorities and offices). A figure one of whose rows was rejected is
/// withheld, never published short.
#[derive(Debug)]
pub(crate) struct Sums {
    source: String,
    /// Sum and first line of each series and period, in the order first seen.
    sums: HashMap<Key, (u64, u64)>,
    order: Vec<Key>,
    withheld: HashMap<Key, u64>,
    /// The full key and count of each row, so an exact repeat is not counted twice.
    rows: HashMap<Vec<String>, (u64, u64)>,
}

/// What [`Sums::row`] made of a row.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Added {
    Summed,
    /// The same row (every column, count included) came before: counted once.
    Repeat,
    /// The same row with another count came before: rejected, its figures withheld.
    Conflict {
        first_line: u64,
        first_count: u64,
    },
}

impl Sums {
    pub(crate) fn new(source: String) -> Sums {
        Sums {
            source,
            sums: HashMap::new(),
            order: Vec::new(),
            withheld: HashMap::new(),
            rows: HashMap::new(),
        }
    }

    /// Adds one row's count to every series and period in `keys`. `identity` is the row's
    /// every column but the count.
    pub(crate) fn row(
        &mut self,
        line: u64,
        identity: Vec<String>,
        keys: &[Key],
        count: u64,
    ) -> Added {
        match self.rows.get(&identity) {
            Some(&(first_count, _)) if first_count == count => return Added::Repeat,
            Some(&(first_count, first_line)) => {
                for key in keys {
                    self.withhold(key.clone(), line);
                }
                return Added::Conflict {
                    first_line,
                    first_count,
                };
            }
            None => {
                self.rows.insert(identity, (count, line));
            }
        }
        for key in keys {
            match self.sums.get_mut(key) {
                Some((sum, _)) => match sum.checked_add(count) {
                    Some(s) => *sum = s,
                    None => self.withhold(key.clone(), line),
                },
                None => {
                    self.sums.insert(key.clone(), (count, line));
                    self.order.push(key.clone());
                }
            }
        }
        Added::Summed
    }

    /// Marks a figure as incomplete: line `line`, one of its rows, was rejected.
    pub(crate) fn withhold(&mut self, key: Key, line: u64) {
        self.withheld.entry(key).or_insert(line);
    }

    /// Hands the complete sums to the sink, in the order first seen; each withheld figure is
    /// reported as a rejected row at the line that made it incomplete.
    pub(crate) fn finish(self, sink: &mut RowSink) {
        for key in &self.order {
            let Some(&(sum, first_line)) = self.sums.get(key) else {
                continue;
            };
            let (country, category, period) = key.clone();
            if let Some(&bad_line) = self.withheld.get(key) {
                sink.reject(
                    bad_line,
                    "",
                    &sum.to_string(),
                    format!(
                        "{}/{country}/{category} {period} is not ingested: it sums several \
                         rows and this one was rejected, so the sum of the others ({sum}) \
                         would be short; fix the row and send the file again",
                        self.source
                    ),
                );
                continue;
            }
            let obs = Observation {
                source: self.source.clone(),
                country,
                category,
                period,
                count: sum,
                release_id: String::new(),
            };
            sink.keep(first_line, obs, &sum.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_header_names() {
        assert_eq!(normalize("Month (abbv)"), "month_abbv");
        assert_eq!(normalize("Fiscal\nYear"), "fiscal_year");
        assert_eq!(normalize("\u{feff} Encounter Count "), "encounter_count");
        assert_eq!(normalize("geo\\TIME_PERIOD"), "geo_time_period");
    }

    #[test]
    fn reads_counts_with_or_without_thousands_separators() {
        assert_eq!(count("1234"), Ok(1234));
        assert_eq!(count(" 1,234,567 "), Ok(1_234_567));
        assert!(count("1,23").is_err());
        assert!(count("12.5").is_err());
        assert!(count("-3").unwrap_err().contains("negative"));
        assert!(count("").is_err());
        assert!(
            count("99999999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn date_cells_name_their_month() {
        assert_eq!(month_label(45_474.0).as_deref(), Some("2024-07")); // 2024-07-01
        assert_eq!(month_label(39_814.0).as_deref(), Some("2009-01")); // 2009-01-01
        assert_eq!(month_label(-5.0), None);
    }

    #[test]
    fn csv_rows_number_lines_from_the_start_of_the_text() {
        let rows: Vec<Row> = csv_rows("\na,b\n\n\"x\ny\",1\nz,2\n", b',')
            .collect::<Result<_, _>>()
            .unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4, 6]);
    }
}
