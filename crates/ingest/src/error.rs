//! Why a whole file was refused.
//!
//! Problems with single rows are not errors: they become `RejectedRow`s next to the rows
//! that were accepted. Every message here says what was wrong and what to do about it.

use borderwatch_ingest_client::ErrorCode;
use borderwatch_model::RejectedRow;

/// A file-level failure of ingest. `code()` gives a stable machine-readable name.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(
        "the file is empty: send a CSV or JSON-lines file whose first line names the columns \
         (source,period,country,category,count) followed by one row per figure"
    )]
    EmptyFile,

    #[error("the file is {kind}, not text: export it as CSV (UTF-8) and send that file instead")]
    NotText { kind: &'static str },

    #[error(
        "the file starts with a {encoding} byte-order mark but is not valid {encoding} \
         (first bad byte at offset {offset}): save it again as UTF-8"
    )]
    BadEncoding {
        encoding: &'static str,
        offset: usize,
    },

    #[error(
        "the file has no header line: its first non-blank line must name the columns, \
         e.g. `source,period,country,category,count`"
    )]
    NoHeader,

    #[error(
        "line {line}: no `{column}` column (found: {}); the generic format needs the columns \
         source, period, country, category (or purpose) and count — rename or add the column",
        .found.join(", ")
    )]
    MissingColumn {
        /// 1-based line the column names were read from.
        line: u64,
        column: &'static str,
        found: Vec<String>,
    },

    #[error(
        "no source: the file has no `source` column and none was given with it; add a \
         `source` column, or name the source (`--source NAME`, or `?source=NAME` over HTTP)"
    )]
    NoSource,

    #[error(
        "`{value}` is not a usable source name: use lowercase letters, digits, `-` and `_` \
         (at most 64), e.g. `fsb`"
    )]
    BadSource { value: String },

    #[error(
        "the file has more than {limit} data rows, the most one upload may carry: \
         split it into smaller files (by year, say) and send each"
    )]
    TooManyRows { limit: u64 },

    #[error("line {line}: the CSV could not be read ({message}); check the quoting of that line")]
    Csv { line: u64, message: String },

    #[error("`{format}` is not a known input format: use one of {}", .known.join(", "))]
    UnknownFormat {
        format: String,
        known: Vec<&'static str>,
    },

    /// A native format's file whose layout is not that format's (a missing column, a
    /// spreadsheet without its header rows, XML that is not SDMX).
    #[error("the file is not a readable {format} file: {message}")]
    BadLayout {
        format: &'static str,
        message: String,
    },

    /// A spreadsheet's sheet with cells beyond what ingest reads: it is refused before its
    /// cells are held (code `too_many_rows`).
    #[error(
        "the {format} sheet \"{sheet}\" has cells beyond the first {limit} {what}, more than \
         ingest reads of one sheet: delete the stray cells far from the table (Ctrl+End \
         shows the last one), or split the sheet, and send the file again"
    )]
    SheetTooLarge {
        format: &'static str,
        sheet: String,
        what: &'static str,
        limit: u64,
    },

    /// A spreadsheet (ods, xls) whose sheets together hold more cells than ingest reads of one
    /// workbook, counting cells as the spreadsheet reader holds them (all sheets at once, a
    /// repeated cell as often as it repeats, each sheet as often as the workbook lists it).
    /// Refused before the reader opens the workbook (code `too_many_rows`).
    #[error(
        "the {format} workbook's sheets hold {found} cells or more in all, counted up to sheet \
         \"{sheet}\" (a repeated cell counted as often as it repeats), more than the {limit} \
         cells ingest reads of one workbook, all its sheets together: delete the stray cells \
         far from the tables, or split the workbook, and send it again"
    )]
    WorkbookTooLarge {
        format: &'static str,
        sheet: String,
        /// The cells counted when the limit was passed (the walk stops there).
        found: u64,
        limit: u64,
    },

    /// A spreadsheet (ods, xls) whose cells hold more text than ingest reads of one workbook,
    /// counting text as the spreadsheet reader holds it: a repeated cell as often as it
    /// repeats, an xls shared string as often as cells name it. Refused before the reader
    /// opens the workbook (code `too_many_rows`).
    #[error(
        "the {format} workbook's cells hold {found} bytes of text or more by sheet \"{sheet}\" \
         (a repeated or shared cell counted as often as it appears), more than the {limit} \
         bytes ingest reads of one workbook: split the workbook, or send the table as CSV"
    )]
    TextTooLarge {
        format: &'static str,
        sheet: String,
        /// The text counted when the limit was passed (the walk stops there).
        found: u64,
        limit: u64,
    },

    /// Not one row of the file was accepted: nothing is stored and no release is recorded
    /// (a release of nothing would only hide the mistake). `rejected` holds the first
    /// rejected rows, which the error body lists in `details`.
    #[error("{}", nothing_accepted_message(*.rows, *.rejected_total, .rejected.len()))]
    NothingAccepted {
        /// Data rows read.
        rows: u64,
        rejected_total: u64,
        rejected: Vec<RejectedRow>,
    },

    /// Reading the file took longer than one file may take (`BORDERWATCH_PARSE_TIMEOUT`).
    #[error(
        "reading the file took longer than {seconds} s, the most ingest gives one file; \
         nothing was stored: split it into smaller files"
    )]
    ParseTimeout { seconds: u64 },

    /// The message bus or the store failed: not the file's fault, worth retrying.
    #[error(
        "ingest could not store the file ({0}); no release was recorded: send the same file again"
    )]
    Unavailable(String),

    #[error("ingest failed inside ({0}); this is a bug, please report it")]
    Internal(String),
}

impl IngestError {
    /// A stable name for the error, for the `code` field of API error bodies.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The error's code as a type: the one the ingest client reads back from the body.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            IngestError::EmptyFile => ErrorCode::EmptyFile,
            IngestError::NotText { .. } => ErrorCode::NotText,
            IngestError::BadEncoding { .. } => ErrorCode::BadEncoding,
            IngestError::NoHeader => ErrorCode::NoHeader,
            IngestError::MissingColumn { .. } => ErrorCode::MissingColumn,
            IngestError::NoSource => ErrorCode::NoSource,
            IngestError::BadSource { .. } => ErrorCode::BadSource,
            IngestError::TooManyRows { .. }
            | IngestError::SheetTooLarge { .. }
            | IngestError::WorkbookTooLarge { .. }
            | IngestError::TextTooLarge { .. } => ErrorCode::TooManyRows,
            IngestError::Csv { .. } => ErrorCode::BadCsv,
            IngestError::UnknownFormat { .. } => ErrorCode::UnknownFormat,
            IngestError::BadLayout { .. } => ErrorCode::BadLayout,
            IngestError::NothingAccepted { .. } => ErrorCode::NothingAccepted,
            IngestError::ParseTimeout { .. } => ErrorCode::ParseTimeout,
            IngestError::Unavailable(_) => ErrorCode::Unavailable,
            IngestError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// True when the file itself is at fault (a 4xx), false when ingest is (a 5xx).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, IngestError::Unavailable(_) | IngestError::Internal(_))
    }
}

fn nothing_accepted_message(rows: u64, rejected_total: u64, listed: usize) -> String {
    if rows == 0 {
        return "the file has no data rows, only its header: nothing was stored; send a file \
                with one row per figure under the header"
            .into();
    }
    format!(
        "nothing in the file could be read: all {rejected_total} data rows were rejected \
         (the first {listed} are listed in `details`); nothing was stored: fix the rows and \
         send the file again"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_column_message_names_the_column_and_what_was_found() {
        let e = IngestError::MissingColumn {
            line: 1,
            column: "count",
            found: vec!["source".into(), "period".into()],
        };
        let msg = e.to_string();
        assert!(msg.contains("`count`"), "{msg}");
        assert!(msg.contains("found: source, period"), "{msg}");
        assert_eq!(e.code(), "missing_column");
        assert!(e.is_input_error());
    }
}
