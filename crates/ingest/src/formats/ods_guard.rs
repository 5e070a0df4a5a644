//! A guard before calamine opens an ods: calamine reads every sheet of an ods when the
//! workbook opens, pushing each row's cells up to its last non-empty one (a cell's
//! `table:number-columns-repeated` copies it up to 16,384 times) and then copying each row
//! as often as its `table:number-rows-repeated` says, up to 100 million cells. A 2 KB file
//! declaring one row of 16,384 numbers repeated 6,000 times made it allocate some 5 GiB
//! before any cap of [`super::table`] could apply. This walks `content.xml` first and
//! refuses a sheet that would hold more than the caps, counting repeats as calamine expands
//! them; trailing empty rows and cells, which calamine leaves out, cost nothing.

use std::io::{BufReader, Cursor, Read};

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::table::{MAX_SHEET_CELLS, MAX_SHEET_COLUMNS, MAX_SHEET_ROWS};
use crate::error::IngestError;

/// The most `content.xml` unpacks to that is read: more is a compression bomb, not a table
/// an agency published.
pub(crate) const MAX_CONTENT_BYTES: u64 = 512 << 20;

/// Refuses an ods (a zip with a `content.xml`) with a sheet beyond the caps; anything else,
/// and an ods that cannot be read, passes (calamine gives its own error).
pub(super) fn check(bytes: &[u8], format: &'static str) -> Result<(), IngestError> {
    if !bytes.starts_with(b"PK") {
        return Ok(());
    }
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    let Ok(content) = zip.by_name("content.xml") else {
        return Ok(());
    };
    let mut reader =
        quick_xml::Reader::from_reader(BufReader::new(content.take(MAX_CONTENT_BYTES + 1)));
    let mut sheet = Sheet::default();
    let mut row = Row::default();
    let mut buf = Vec::new();
    loop {
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            // Damaged XML: calamine refuses it when it opens the file.
            Err(_) => return Ok(()),
        };
        let closed = matches!(event, Event::Empty(_));
        match &event {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "table:table" => sheet = Sheet::named(e),
                "table:table-row" => {
                    row = Row {
                        repeats: number(e, "table:number-rows-repeated"),
                        ..Row::default()
                    };
                    if closed {
                        sheet.end_row(&row, format)?;
                    }
                }
                "table:table-cell" | "table:covered-table-cell" => {
                    let filled = !closed
                        || attr(e, "office:value-type").is_some()
                        || attr(e, "table:formula").is_some();
                    row.cell(number(e, "table:number-columns-repeated"), filled);
                }
                _ => {}
            },
            Event::End(e) if e.name().as_ref() == "table:table-row" => {
                sheet.end_row(&row, format)?;
            }
            Event::Eof => break,
            _ => {}
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
    Ok(())
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

/// One row as it is read: how often it repeats, how wide it is so far, and where its last
/// non-empty cell ends.
#[derive(Debug, Default)]
struct Row {
    repeats: u64,
    width: u64,
    extent: u64,
}

impl Row {
    fn cell(&mut self, repeats: u64, filled: bool) {
        self.width = self.width.saturating_add(repeats);
        if filled {
            self.extent = self.width;
        }
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
    fn named(e: &BytesStart<'_>) -> Sheet {
        let name = attr(e, "table:name").unwrap_or_default();
        Sheet {
            name,
            ..Sheet::default()
        }
    }

    fn end_row(&mut self, row: &Row, format: &'static str) -> Result<(), IngestError> {
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
        if self.pushed > MAX_SHEET_CELLS || self.span.saturating_mul(self.width) > MAX_SHEET_CELLS {
            return Err(refuse("cells", MAX_SHEET_CELLS));
        }
        Ok(())
    }
}
