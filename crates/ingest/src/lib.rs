//! ingest: border-crossing statistics in, observations out.
//!
//! The pure core lives here: decoding a file's bytes ([`decode`]), reading the generic
//! format ([`generic`]) and the demo data ([`demo`]). No I/O and no bus: the service that
//! publishes what the core finds sits beside it.

pub mod decode;
pub mod demo;
pub mod error;
pub mod format;
pub mod formats;
pub mod generic;
mod purpose;
pub mod rows;
pub mod service;
pub mod sources;

pub use decode::decode_text;
pub use demo::{demo_csv, demo_nk_only_csv};
pub use error::IngestError;
pub use formats::{FORMATS, Format};
pub use generic::{ReadOptions, parse_generic, parse_generic_reader, parse_generic_with_limits};
pub use rows::{ParseLimits, Parsed};

/// Decodes and parses one file in the named format (detected when empty or `auto`), with the
/// default limits. `default_source` names the source for rows that have none.
pub fn parse(
    format: &str,
    bytes: &[u8],
    default_source: Option<&str>,
) -> Result<Parsed, IngestError> {
    parse_with_limits(format, bytes, default_source, ParseLimits::default())
}

/// [`parse`] with explicit limits.
pub fn parse_with_limits(
    format: &str,
    bytes: &[u8],
    default_source: Option<&str>,
    limits: ParseLimits,
) -> Result<Parsed, IngestError> {
    let format = match formats::by_name(format)? {
        Some(f) => f,
        None => formats::detect(bytes, None)?,
    };
    let options = formats::Options {
        source: default_source,
        limits,
    };
    (format.parse)(bytes, &options)
}

#[cfg(test)]
mod tests;
