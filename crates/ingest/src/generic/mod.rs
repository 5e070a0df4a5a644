//! The generic input format: one observation per row, as CSV or JSON lines.
//!
//! Column (or key) names are `source, period, country, category, count`, matched without
//! regard to case or surrounding spaces; `purpose` may stand for `category` and `source` may
//! come with the upload instead. A file-level problem (no header, a missing column, no source)
//! refuses the file; a bad row is rejected on its own, with its line, column and reason, and
//! the good rows around it are kept.
//!
//! Its rooms: the whole text read at once (`whole.rs`) or a stream read a piece at a time
//! (`stream.rs`), both through the CSV reader (`csv.rs`) or the JSON-lines reader
//! (`jsonl.rs`), which hand each row to the row checks (`row.rs`). The Russian purposes of
//! trip a category may be are `crate::purpose`'s, shared with the other Russian readers.

mod csv;
mod jsonl;
mod row;
mod stream;
mod whole;

use self::whole::parse_bytes;

pub use self::stream::{ReadOptions, parse_generic_reader};
pub use self::whole::{parse_generic, parse_generic_with_limits};
pub use crate::purpose::category_token;

/// The generic format in the format table.
pub const FORMAT: crate::format::Format = crate::format::Format {
    name: "generic",
    description: "one figure per row: CSV or JSON lines with source, period, country, category \
                  (or purpose) and count",
    sniff: sniff_generic,
    parse: parse_bytes,
};

/// A generic file names its columns `period`, `country` and `count` in its first line.
fn sniff_generic(sniff: &crate::format::Sniff<'_>) -> bool {
    let Some(first) = sniff.first_line() else {
        return false;
    };
    let first = first.to_lowercase();
    ["period", "country", "count"]
        .iter()
        .all(|name| first.contains(name))
}
