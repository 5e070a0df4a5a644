//! What one input format is: its entry in the table of formats ([`Format`]), what its
//! sniffer sees of a file ([`Sniff`]) and what its parser is told ([`Options`]).
//!
//! A leaf: every reader (the generic one and those in `formats/`) builds on these, and the
//! table itself ([`crate::formats::FORMATS`]) lists the readers, so the types cannot live
//! beside the table without a reader importing the module that imports it.

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
