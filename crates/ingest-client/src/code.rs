//! The codes ingest refuses an upload with: the `code` of the error body in a
//! [`Reply::Error`](crate::Reply::Error), as a type to match on instead of strings.
//!
//! The ingest service answers with these (`IngestError::code` in `borderwatch-ingest`) and
//! callers read them back with [`ErrorCode::of`], so the two sides share one list.

use borderwatch_model::ErrorBody;
use serde::{Deserialize, Serialize};

/// Why ingest refused an upload: a stable machine-readable name, serialized as the
/// snake_case string of the API's error bodies (`missing_column`, `bad_csv`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The file is empty.
    EmptyFile,
    /// The file is binary data, not text.
    NotText,
    /// The file's byte-order mark promises an encoding its bytes are not in.
    BadEncoding,
    /// No line names the columns.
    NoHeader,
    /// A column the format needs is not there.
    MissingColumn,
    /// No source column and none given with the upload.
    NoSource,
    /// The source given with the upload is not a usable name.
    BadSource,
    /// More data rows than one upload may carry.
    TooManyRows,
    /// The CSV itself could not be read.
    BadCsv,
    /// The format named with the upload is not one ingest reads.
    UnknownFormat,
    /// The file is not laid out as its format's files are.
    BadLayout,
    /// The file has no data rows, or every one was rejected: nothing was stored.
    NothingAccepted,
    /// Reading the file took longer than ingest gives one file.
    ParseTimeout,
    /// Ingest could not store the file: not the file's fault, worth retrying.
    Unavailable,
    /// Ingest failed inside: a bug.
    Internal,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::EmptyFile,
        ErrorCode::NotText,
        ErrorCode::BadEncoding,
        ErrorCode::NoHeader,
        ErrorCode::MissingColumn,
        ErrorCode::NoSource,
        ErrorCode::BadSource,
        ErrorCode::TooManyRows,
        ErrorCode::BadCsv,
        ErrorCode::UnknownFormat,
        ErrorCode::BadLayout,
        ErrorCode::NothingAccepted,
        ErrorCode::ParseTimeout,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code as it is written in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::EmptyFile => "empty_file",
            ErrorCode::NotText => "not_text",
            ErrorCode::BadEncoding => "bad_encoding",
            ErrorCode::NoHeader => "no_header",
            ErrorCode::MissingColumn => "missing_column",
            ErrorCode::NoSource => "no_source",
            ErrorCode::BadSource => "bad_source",
            ErrorCode::TooManyRows => "too_many_rows",
            ErrorCode::BadCsv => "bad_csv",
            ErrorCode::UnknownFormat => "unknown_format",
            ErrorCode::BadLayout => "bad_layout",
            ErrorCode::NothingAccepted => "nothing_accepted",
            ErrorCode::ParseTimeout => "parse_timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The code of an error body, or `None` for a code this client does not know (one a
    /// newer ingest added).
    pub fn of(body: &ErrorBody) -> Option<ErrorCode> {
        body.error.code.parse().ok()
    }

    /// True when the file itself is at fault (a 4xx), false when ingest is (a 5xx).
    pub fn is_input_error(self) -> bool {
        !matches!(self, ErrorCode::Unavailable | ErrorCode::Internal)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is no [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ingest error code")]
pub struct UnknownCode(pub String);

impl std::str::FromStr for ErrorCode {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<ErrorCode, UnknownCode> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_writes_the_same_strings_as_as_str() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
        }
        assert!("too_large".parse::<ErrorCode>().is_err());
    }
}
