//! Every input format ingest reads, in one table: its name (for `--format` and
//! `?format=`), how a file is recognised when no format is given, and how it is parsed.
//!
//! Each native format lives in its own module here and adds one [`Format`] to [`FORMATS`].
//! Detection asks the specific formats first, in table order, and falls back to the generic
//! format for any other text, so that a generic file with a mistake still gets the generic
//! format's precise error.

pub mod cbp;
mod fiscal;
pub mod ohss;
mod table;
pub mod wide;

mod emiss_sdmx;
mod fsb_csv;
mod ods_guard;
mod ru_sheet;
mod xls_guard;
mod xlsx_guard;
mod ytd;

use crate::error::IngestError;

pub use crate::format::{Format, Options, SNIFF_BYTES, Sniff};
pub use table::{
    MAX_SHEET_CELLS, MAX_SHEET_COLUMNS, MAX_SHEET_ROWS, MAX_WORKBOOK_CELLS, MAX_WORKBOOK_TEXT_BYTES,
};

/// Every format, specific ones first; `generic` is the fallback of detection.
pub const FORMATS: &[Format] = &[
    // Russia: docs/formats.md, "Russia".
    fsb_csv::FORMAT,
    emiss_sdmx::FORMAT,
    ru_sheet::FORMAT,
    // United States and Europe (docs/formats.md); `wide` is the most permissive specific
    // format, so it stays last before `generic`.
    cbp::FORMAT,
    ohss::XLSX,
    ohss::CSV,
    wide::FORMAT,
    crate::generic::FORMAT,
];

/// The names of [`FORMATS`], for messages.
pub fn names() -> Vec<&'static str> {
    FORMATS.iter().map(|f| f.name).collect()
}

/// The format named `name` (case and surrounding spaces ignored); `""` and `auto` mean
/// "detect it", answered with `None`.
pub fn by_name(name: &str) -> Result<Option<&'static Format>, IngestError> {
    let wanted = name.trim().to_ascii_lowercase().replace('-', "_");
    if wanted.is_empty() || wanted == "auto" {
        return Ok(None);
    }
    FORMATS
        .iter()
        .find(|f| f.name == wanted)
        .map(Some)
        .ok_or_else(|| IngestError::UnknownFormat {
            format: name.to_string(),
            known: names(),
        })
}

/// The format a file is in: the first specific format whose sniffer says yes, else the
/// generic format for text. A binary file no format recognises is refused.
pub fn detect(bytes: &[u8], file_name: Option<&str>) -> Result<&'static Format, IngestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::EmptyFile);
    }
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let text = crate::decode::decode_head(head);
    let sniff = Sniff {
        bytes,
        text_head: text.as_deref(),
        file_name,
    };
    if let Some(found) = FORMATS
        .iter()
        .filter(|f| f.name != crate::generic::FORMAT.name)
        .find(|f| (f.sniff)(&sniff))
    {
        return Ok(found);
    }
    if text.is_some() {
        return Ok(&crate::generic::FORMAT);
    }
    Err(crate::decode::not_text(bytes))
}
