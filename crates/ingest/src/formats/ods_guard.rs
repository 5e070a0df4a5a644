//! A guard before calamine opens an ods: calamine reads every sheet of an ods when the
//! workbook opens, pushing each row's cells up to its last non-empty one (a cell's
//! `table:number-columns-repeated` copies it up to 16,384 times) and then copying each row
//! as often as its `table:number-rows-repeated` says, up to 100 million cells. A 2 KB file
//! declaring one row of 16,384 numbers repeated 6,000 times made it allocate some 5 GiB
//! before any cap of [`super::table`] could apply. This walks `content.xml` first and
//! refuses a sheet that would hold more than the caps, counting repeats as calamine expands
//! them; trailing empty rows and cells, which calamine leaves out, cost nothing. calamine
//! holds every sheet at once, so the sheets' cells are also summed, and a workbook past
//! [`MAX_WORKBOOK_CELLS`] is refused ([`IngestError::WorkbookTooLarge`]).
//!
//! Cells are not all memory costs: each text cell (and each formula) is a string calamine
//! copies as often as the cell repeats, and a `<text:s text:c="…"/>` of a few bytes stands
//! for as many spaces as it says. So the walk also counts the text calamine will hold, in
//! all the workbook's sheets, and refuses a workbook past [`MAX_WORKBOOK_TEXT_BYTES`]
//! ([`IngestError::TextTooLarge`]).
//!
//! [`MAX_WORKBOOK_CELLS`]: super::MAX_WORKBOOK_CELLS
//! [`MAX_WORKBOOK_TEXT_BYTES`]: super::MAX_WORKBOOK_TEXT_BYTES

use std::io::{BufReader, Cursor, Read};

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::table::{MAX_SHEET_COLUMNS, MAX_SHEET_ROWS, WorkbookCount};
use crate::error::IngestError;

/// The most `content.xml` unpacks to that is read: more is a compression bomb, not a table
/// an agency published.
pub(crate) const MAX_CONTENT_BYTES: u64 = 512 << 20;

/// Refuses an ods (a zip with a `content.xml`) with a sheet beyond the caps, more cells in
/// all than [`MAX_WORKBOOK_CELLS`], or more text than [`MAX_WORKBOOK_TEXT_BYTES`]; anything
/// else, and an ods that cannot be read, passes (calamine gives its own error).
///
/// [`MAX_WORKBOOK_CELLS`]: super::MAX_WORKBOOK_CELLS
/// [`MAX_WORKBOOK_TEXT_BYTES`]: super::MAX_WORKBOOK_TEXT_BYTES
pub(super) fn check(bytes: &[u8], format: &'static str) -> Result<(), IngestError> {
    walk(bytes, format).map(|_| ())
}

/// [`check`]'s walk.
fn walk(bytes: &[u8], format: &'static str) -> Result<WorkbookCount, IngestError> {
    let mut counted = WorkbookCount::default();
    if !bytes.starts_with(b"PK") {
        return Ok(counted);
    }
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(counted);
    };
    let Ok(content) = zip.by_name("content.xml") else {
        return Ok(counted);
    };
    let mut reader =
        quick_xml::Reader::from_reader(BufReader::new(content.take(MAX_CONTENT_BYTES + 1)));
    let mut sheet = Sheet::default();
    let mut row = Row::default();
    // The cell whose content is being read; the text and the cells of the workbook's sheets
    // so far (`counted.cells`: of the sheets before `sheet`).
    let mut cell: Option<Cell> = None;
    let mut buf = Vec::new();
    // Damaged XML ends the walk: calamine refuses it when it opens the file.
    while let Ok(event) = reader.read_event_into(&mut buf) {
        let closed = matches!(event, Event::Empty(_));
        if let Some(open) = cell.as_mut() {
            // Inside a cell: only its text counts, until it ends.
            match &event {
                Event::End(e)
                    if matches!(
                        e.name().as_ref(),
                        "table:table-cell" | "table:covered-table-cell"
                    ) =>
                {
                    row.text = row.text.saturating_add(open.bytes());
                    cell = None;
                }
                // A cell the file leaves open: calamine refuses it.
                Event::Eof => break,
                other => open.read(other),
            }
        } else {
            match &event {
                Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                    "table:table" => {
                        counted.end_sheet(sheet.cells());
                        sheet = Sheet::named(e);
                    }
                    "table:table-row" => {
                        row = Row {
                            repeats: number(e, "table:number-rows-repeated"),
                            ..Row::default()
                        };
                        if closed {
                            sheet.end_row(&row, &mut counted, format)?;
                        }
                    }
                    "table:table-cell" | "table:covered-table-cell" => {
                        let opened = Cell::new(e);
                        row.cell(opened.repeats, !closed || opened.valued);
                        if closed {
                            row.text = row.text.saturating_add(opened.bytes());
                        } else {
                            cell = Some(opened);
                        }
                    }
                    _ => {}
                },
                Event::End(e) if e.name().as_ref() == "table:table-row" => {
                    sheet.end_row(&row, &mut counted, format)?;
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if reader.buffer_position() > MAX_CONTENT_BYTES {
            return Err(IngestError::BadLayout {
                format,
                message: format!(
                    "the spreadsheet's content unpacks to more than {} MiB; save it again \
                     as .xlsx, or split it",
                    MAX_CONTENT_BYTES >> 20
                ),
            });
        }
        buf.clear();
    }
    counted.end_sheet(sheet.cells());
    Ok(counted)
}

/// An attribute's value, by its qualified name.
fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
        .map(|v| v.into_owned())
}

/// A repeat count attribute: 1 when absent or unreadable (calamine refuses those).
fn number(e: &BytesStart<'_>, name: &str) -> u64 {
    attr(e, name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

/// One row as it is read: how often it repeats, how wide it is so far, where its last
/// non-empty cell ends, and the text of its cells (each as often as it repeats).
#[derive(Debug, Default)]
struct Row {
    repeats: u64,
    width: u64,
    extent: u64,
    text: u64,
}

impl Row {
    fn cell(&mut self, repeats: u64, filled: bool) {
        self.width = self.width.saturating_add(repeats);
        if filled {
            self.extent = self.width;
        }
    }
}

/// One cell's text as calamine reads it (`get_datatype` in its `ods.rs`): the string an
/// `office:string-value` (`date-value`, `time-value`) attribute holds, else, for a string or
/// error cell, its content (text, a space for each of `<text:s text:c>`, a line break
/// between paragraphs, annotations left out); and its formula, held beside it. calamine
/// pushes a copy for each of `table:number-columns-repeated`. Lengths are counted as written
/// (an entity counts its whole `&…;`), never less than calamine's UTF-8.
#[derive(Debug, Default)]
struct Cell {
    repeats: u64,
    /// Whether an attribute gives the cell a value, a type or a formula (calamine then
    /// holds a cell here).
    valued: bool,
    /// The value and formula attributes' text.
    attributes: u64,
    /// Whether calamine reads the content as the cell's text.
    content_counts: bool,
    content: u64,
    paragraphs: u64,
    /// Depth inside `office:annotation`, whose text calamine skips.
    annotation: u32,
}

impl Cell {
    /// The cell an element starts, from its attributes (read once: a sheet has many).
    fn new(e: &BytesStart<'_>) -> Cell {
        let mut cell = Cell {
            repeats: 1,
            ..Cell::default()
        };
        for a in e.attributes().flatten() {
            let Ok(value) = a.normalized_value(XmlVersion::Implicit1_0) else {
                continue;
            };
            let length = value.len() as u64;
            match a.key.as_ref() {
                "table:number-columns-repeated" => {
                    cell.repeats = value.trim().parse().unwrap_or(1);
                }
                "office:string-value"
                | "office:date-value"
                | "office:time-value"
                | "table:formula" => {
                    cell.valued = true;
                    cell.attributes = cell.attributes.saturating_add(length);
                }
                "office:value" | "office:boolean-value" => cell.valued = true,
                "office:value-type" => {
                    cell.valued = true;
                    cell.content_counts |= value == "string";
                }
                "calcext:value-type" => cell.content_counts |= value == "error",
                _ => {}
            }
        }
        cell
    }

    /// Takes one event inside the cell.
    fn read(&mut self, event: &Event<'_>) {
        let add = |n: u64, to: &mut u64| *to = to.saturating_add(n);
        match event {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "office:annotation" => {
                if matches!(event, Event::Start(_)) {
                    self.annotation += 1;
                }
            }
            Event::End(e) if e.name().as_ref() == "office:annotation" => {
                self.annotation = self.annotation.saturating_sub(1);
            }
            _ if self.annotation > 0 => {}
            Event::Text(t) => add(t.len() as u64, &mut self.content),
            Event::GeneralRef(r) => add(r.len() as u64 + 2, &mut self.content),
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "text:p" => {
                    self.paragraphs += 1;
                    if self.paragraphs > 1 {
                        add(1, &mut self.content);
                    }
                }
                "text:s" => add(number(e, "text:c"), &mut self.content),
                "text:tab" | "text:line-break" => add(1, &mut self.content),
                _ => {}
            },
            _ => {}
        }
    }

    /// The text calamine holds for the cell, its repeats counted.
    fn bytes(&self) -> u64 {
        let content = if self.content_counts { self.content } else { 0 };
        self.attributes
            .saturating_add(content)
            .saturating_mul(self.repeats)
    }
}

/// What one sheet costs calamine, as far as it has been read.
#[derive(Debug, Default)]
struct Sheet {
    name: String,
    /// Rows before the first non-empty row.
    above: u64,
    /// Rows from the first non-empty row to the last one, repeats counted.
    span: u64,
    /// Empty rows since the last non-empty one.
    pending: u64,
    /// The widest row's extent.
    width: u64,
    /// Cells pushed row by row (each row element once, to its last non-empty cell).
    pushed: u64,
}

impl Sheet {
    /// The cells calamine holds of the sheet so far, at its peak: the cells it pushes row by
    /// row, or the range it makes of them (every row to the widest, repeats expanded),
    /// whichever is more.
    fn cells(&self) -> u64 {
        self.pushed.max(self.span.saturating_mul(self.width))
    }

    fn named(e: &BytesStart<'_>) -> Sheet {
        let name = attr(e, "table:name").unwrap_or_default();
        Sheet {
            name,
            ..Sheet::default()
        }
    }

    /// Counts a row, and its text into the workbook's; `counted.cells` holds the cells of
    /// the sheets before this one.
    fn end_row(
        &mut self,
        row: &Row,
        counted: &mut WorkbookCount,
        format: &'static str,
    ) -> Result<(), IngestError> {
        if row.extent == 0 {
            if self.span == 0 {
                self.above = self.above.saturating_add(row.repeats);
            } else {
                self.pending = self.pending.saturating_add(row.repeats);
            }
            return Ok(());
        }
        self.span = self
            .span
            .saturating_add(self.pending)
            .saturating_add(row.repeats);
        self.pending = 0;
        self.width = self.width.max(row.extent);
        self.pushed = self.pushed.saturating_add(row.extent);
        let refuse = |what, limit| IngestError::SheetTooLarge {
            format,
            sheet: self.name.clone(),
            what,
            limit,
        };
        if self.width > u64::from(MAX_SHEET_COLUMNS) {
            return Err(refuse("columns", u64::from(MAX_SHEET_COLUMNS)));
        }
        if self.above.saturating_add(self.span) > u64::from(MAX_SHEET_ROWS) {
            return Err(refuse("rows", u64::from(MAX_SHEET_ROWS)));
        }
        counted.check_cells(format, &self.name, self.cells())?;
        // calamine copies the row's cells (with their formulas) once for each repeat.
        counted.add_text(format, &self.name, row.text.saturating_mul(row.repeats))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::super::table::{MAX_SHEET_CELLS, MAX_WORKBOOK_CELLS, MAX_WORKBOOK_TEXT_BYTES};
    use super::*;

    /// An ods whose `content.xml` holds the one sheet `Data` of `rows`.
    fn ods(rows: &str) -> Vec<u8> {
        let content = format!(
            "<office:document-content \
              xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
              xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
              xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\">\
             <office:body><office:spreadsheet><table:table table:name=\"Data\">{rows}\
             </table:table></office:spreadsheet></office:body></office:document-content>"
        );
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("mimetype", options).unwrap();
        zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
            .unwrap();
        zip.start_file("content.xml", options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    /// A row of one string cell (`content`), the cell repeated `columns` times, the row
    /// `rows` times.
    fn repeated(content: &str, columns: u64, rows: u64) -> String {
        format!(
            "<table:table-row table:number-rows-repeated=\"{rows}\">\
             <table:table-cell table:number-columns-repeated=\"{columns}\" \
             office:value-type=\"string\">{content}</table:table-cell></table:table-row>"
        )
    }

    #[test]
    fn text_up_to_the_budget_passes_and_a_byte_more_is_refused() {
        // 1 KiB × 4 columns × rows: exactly the budget.
        let rows = MAX_WORKBOOK_TEXT_BYTES / 4096;
        assert_eq!(rows * 4096, MAX_WORKBOOK_TEXT_BYTES);
        let cell = format!("<text:p>{}</text:p>", "x".repeat(1024));
        let at = repeated(&cell, 4, rows);
        assert_eq!(
            walk(&ods(&at), "wide").unwrap().text,
            MAX_WORKBOOK_TEXT_BYTES
        );
        let over = format!("{}{at}", repeated("<text:p>y</text:p>", 1, 1));
        let e = check(&ods(&over), "wide").unwrap_err();
        assert!(
            matches!(e, IngestError::TextTooLarge { found, limit, ref sheet, .. }
                if found == limit + 1 && limit == MAX_WORKBOOK_TEXT_BYTES && sheet == "Data"),
            "{e:?}"
        );
    }

    /// A sheet `name` of `rows` rows of `columns` numbers (one cell element, one row
    /// element, repeated), to follow [`ods`]'s first sheet.
    fn number_sheet(name: &str, rows: u64, columns: u64) -> String {
        format!(
            "</table:table><table:table table:name=\"{name}\">\
             <table:table-row table:number-rows-repeated=\"{rows}\">\
             <table:table-cell table:number-columns-repeated=\"{columns}\" \
             office:value-type=\"float\" office:value=\"1\"/></table:table-row>"
        )
    }

    #[test]
    fn cells_up_to_the_workbook_cap_pass_and_a_cell_more_is_refused() {
        // Sheets of 1,000 columns, each at most half the cap, then the rest.
        let (mut rows, mut left, mut n) = (String::new(), MAX_WORKBOOK_CELLS, 0);
        while left >= 1000 {
            let r = (left / 1000).min(MAX_WORKBOOK_CELLS.min(MAX_SHEET_CELLS) / 2000);
            n += 1;
            rows.push_str(&number_sheet(&format!("S{n}"), r, 1000));
            left -= r * 1000;
        }
        if left > 0 {
            rows.push_str(&number_sheet("Rest", 1, left));
        }
        assert!(n >= 2, "the cap is the workbook's, past one sheet's");
        let counted = walk(&ods(&rows), "wide").unwrap();
        assert_eq!(counted.cells, MAX_WORKBOOK_CELLS);
        rows.push_str(&number_sheet("Last", 1, 1));
        let e = check(&ods(&rows), "wide").unwrap_err();
        assert!(
            matches!(e, IngestError::WorkbookTooLarge { found, limit, ref sheet, .. }
                if found == limit + 1 && limit == MAX_WORKBOOK_CELLS && sheet == "Last"),
            "{e:?}"
        );
        // Each sheet counts the range calamine makes of it: rows to the widest, repeats.
        let ragged = "<table:table-row><table:table-cell office:value=\"1\"/></table:table-row>\
                      <table:table-row table:number-rows-repeated=\"3\"><table:table-cell \
                      table:number-columns-repeated=\"5\" office:value=\"1\"/></table:table-row>";
        assert_eq!(walk(&ods(ragged), "wide").unwrap().cells, 4 * 5);
    }

    #[test]
    fn a_cell_counts_what_calamine_makes_of_it() {
        let count = |cell: &str| walk(&ods(&repeated(cell, 1, 1)), "wide").unwrap().text;
        // Paragraphs joined by a line break, declared spaces, tabs, entities as written.
        assert_eq!(count("<text:p>ab</text:p><text:p>c</text:p>"), 4);
        assert_eq!(count("<text:p>a<text:s text:c=\"1000\"/>b</text:p>"), 1002);
        assert_eq!(
            count("<text:p>a<text:s/><text:tab/><text:line-break/></text:p>"),
            4
        );
        assert_eq!(count("<text:p>&amp;</text:p>"), 5);
        // An annotation's text is not the cell's.
        assert_eq!(
            count("<office:annotation><text:p>note</text:p></office:annotation><text:p>a</text:p>"),
            1
        );
        // A number's displayed text is not held; a string value attribute and a formula are.
        let float = "<table:table-row><table:table-cell office:value-type=\"float\" \
                     office:value=\"12\"><text:p>12</text:p></table:table-cell></table:table-row>";
        assert_eq!(walk(&ods(float), "wide").unwrap().text, 0);
        let valued = "<table:table-row table:number-rows-repeated=\"3\"><table:table-cell \
                      table:number-columns-repeated=\"2\" office:string-value=\"abcd\" \
                      table:formula=\"of:=A1\"/></table:table-row>";
        assert_eq!(walk(&ods(valued), "wide").unwrap().text, 3 * 2 * (4 + 6));
    }

    #[test]
    fn a_cell_left_open_ends_the_walk() {
        let open = "<table:table-row><table:table-cell office:value-type=\"string\"><text:p>ab";
        let mut bytes = ods(open);
        // The cell is never closed (the table and the document end inside it): the walk
        // ends with the file, as calamine's does (with an error).
        assert!(walk(&bytes, "wide").is_ok());
        bytes = ods(&format!("{open}</text:p>"));
        assert!(walk(&bytes, "wide").is_ok());
    }

    #[test]
    fn the_count_is_never_less_than_what_calamine_holds() {
        use calamine::{Data, Reader as _};
        for path in ["wide/padded.ods", "ru_sheet/hostile_many_rows.ods"] {
            let path = format!("{}/fuzz/corpus/{path}", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(&path).unwrap();
            let Ok(WorkbookCount {
                text: counted,
                cells,
            }) = walk(&bytes, "wide")
            else {
                continue;
            };
            let mut book =
                calamine::open_workbook_auto_from_rs(Cursor::new(bytes.clone())).unwrap();
            let (mut held, mut held_cells) = (0u64, 0u64);
            for name in book.sheet_names() {
                let (rows, columns) = book.worksheet_range(&name).unwrap().get_size();
                held_cells += (rows * columns) as u64;
                for cell in book.worksheet_range(&name).unwrap().used_cells() {
                    if let (_, _, Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s)) =
                        cell
                    {
                        held += s.len() as u64;
                    }
                }
                for (_, _, f) in book.worksheet_formula(&name).unwrap().used_cells() {
                    held += f.len() as u64;
                }
            }
            assert!(held > 0 && counted >= held, "{path}: {counted} < {held}");
            assert!(cells >= held_cells, "{path}: {cells} cells < {held_cells}");
        }
    }
}
