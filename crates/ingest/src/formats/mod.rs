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
mod ru_sheet;
mod ytd;

use crate::error::IngestError;
use crate::rows::{ParseLimits, Parsed};

/// How much of a file's start sniffers look at.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// One input format.
#[derive(Debug)]
pub struct Format {
    /// The name users give: lowercase, `_` between words (`fsb_csv`).
    pub name: &'static str,
    /// One line for `--help` and the API document.
    pub description: &'static str,
    /// Whether a file looks like this format; asked only when no format is given.
    pub sniff: fn(&Sniff<'_>) -> bool,
    /// Reads the whole file.
    pub parse: fn(&[u8], &Options<'_>) -> Result<Parsed, IngestError>,
}

/// What a sniffer sees of a file.
#[derive(Debug, Clone, Copy)]
pub struct Sniff<'a> {
    /// The whole file, for binary formats that need their container's directory.
    pub bytes: &'a [u8],
    /// The first [`SNIFF_BYTES`] decoded as text, when the file is text.
    pub text_head: Option<&'a str>,
    /// The file's name when known (`import` knows it; an HTTP upload may not).
    pub file_name: Option<&'a str>,
}

impl<'a> Sniff<'a> {
    /// The first line of text that is not blank (a byte-order mark left out): where a CSV
    /// names its columns. `None` when the file is not text.
    pub fn first_line(&self) -> Option<&'a str> {
        let head = self.text_head?;
        Some(
            head.trim_start_matches('\u{feff}')
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(""),
        )
    }
}

/// What every parser is told besides the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// The source for rows that name none; overrides a native format's own source name.
    pub source: Option<&'a str>,
    pub limits: ParseLimits,
}

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
