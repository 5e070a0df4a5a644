//! ingest: border-crossing statistics in, observations out.
//!
//! The pure core lives here: decoding a file's bytes ([`decode`]), reading the generic
//! format ([`generic`]) and the demo data ([`demo`]). No I/O and no bus: the service that
//! publishes what the core finds sits beside it.

pub mod decode;
pub mod demo;
pub mod error;
pub mod generic;
pub mod service;

pub use decode::decode_text;
pub use demo::{demo_csv, demo_nk_only_csv};
pub use error::IngestError;
pub use generic::{ParseLimits, Parsed, parse_generic, parse_generic_with_limits};

/// The input formats [`parse`] knows.
pub const FORMATS: &[&str] = &["generic"];

/// Decodes and parses one file in the named format (`generic` when empty), with the default
/// limits. `default_source` names the source for rows that have none.
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
    match format.trim().to_ascii_lowercase().as_str() {
        "" | "generic" => {
            let text = decode_text(bytes)?;
            parse_generic_with_limits(&text, default_source, limits)
        }
        _ => Err(IngestError::UnknownFormat {
            format: format.to_string(),
            known: FORMATS.to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests;
