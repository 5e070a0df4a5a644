//! The generic format read from a stream a piece at a time ([`parse_generic_reader`]):
//! pieces cut at a line end outside quotes, decoded and parsed as they come, accepted
//! observations handed out in batches.

use borderwatch_model::Observation;

use crate::error::IngestError;
use crate::rows::{Lines, ParseLimits, Parsed, RowSink};

use super::csv::{Header, csv_reader, read_header, read_records, scan_quotes, sniff_delimiter};
use super::row::{Memos, Rows, default_source_token};
use super::whole::parse_bytes;

/// How [`parse_generic_reader`] reads: bytes per read, and observations per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    pub chunk_bytes: usize,
    pub batch_rows: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            chunk_bytes: 1 << 20,
            batch_rows: 50_000,
        }
    }
}

/// The generic format read from a stream: the text is decoded and parsed a piece at a time
/// (pieces end at a line end outside quotes) and accepted observations are handed to
/// `on_batch` as they pile up, so memory holds one piece, one batch, and what finding
/// repeats needs (tens of bytes per accepted row), not the file. The [`Parsed`] returned
/// has every count and rejected row but no observations: they all went to `on_batch`.
/// Batches are provisional until it returns `Ok`: a file found bad further on (binary
/// data, a wrong encoding, too many rows) is an error, and its batches must be dropped.
///
/// Gives the same rows, rejections and errors as [`crate::parse`] for UTF-8 and
/// windows-1251 CSV. What is not read piecewise: UTF-16 files and JSON lines are read whole
/// first. A file whose first 64 KiB are UTF-8 but which is not UTF-8 further on is refused,
/// as [`crate::decode::decode`] refuses it when the file is read whole.
pub fn parse_generic_reader(
    mut input: impl std::io::Read,
    default_source: Option<&str>,
    limits: ParseLimits,
    read: ReadOptions,
    mut on_batch: impl FnMut(Vec<Observation>) -> Result<(), IngestError>,
) -> Result<Parsed, IngestError> {
    let chunk_bytes = read.chunk_bytes.max(1);
    let batch_rows = read.batch_rows.max(1);
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    fill(
        &mut input,
        &mut pending,
        crate::format::SNIFF_BYTES,
        &mut eof,
    )?;
    if pending.iter().all(u8::is_ascii_whitespace) && eof {
        return Err(IngestError::EmptyFile);
    }
    let piecewise = crate::decode::piecewise(&pending, eof)?;
    let bom = match piecewise {
        Some(crate::decode::Piecewise::Utf8 { bom }) => bom,
        _ => 0,
    };
    let json = pending[bom..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let Some(piecewise) = piecewise.filter(|_| !json) else {
        // Read whole: UTF-16 (pieces would need cutting between code units) and JSON lines.
        input
            .read_to_end(&mut pending)
            .map_err(|e| read_error(&e))?;
        let options = crate::format::Options {
            source: default_source,
            limits,
        };
        let mut parsed = parse_bytes(&pending, &options)?;
        hand_out(
            std::mem::take(&mut parsed.observations),
            batch_rows,
            &mut on_batch,
        )?;
        return Ok(parsed);
    };
    // Refused up front as a whole file is, before any row: binary data in the head.
    if pending.contains(&0) {
        return Err(IngestError::NotText {
            kind: "binary data",
        });
    }
    let head = crate::decode::decode_head(&pending).unwrap_or_default();
    let delimiter = sniff_delimiter(head.trim_start_matches('\u{feff}'));
    let mut rows = Rows {
        default_source: default_source_token(default_source)?,
        sink: RowSink::new(limits),
        memo: Memos::default(),
    };
    pending.drain(..bom);
    let mut offset = bom; // bytes of the file before `pending`
    let mut line = 1u64;
    let mut header: Option<Header> = None;
    let mut any_text = false;
    let mut record = csv::ByteRecord::new();
    loop {
        if !eof && pending.len() < chunk_bytes {
            fill(&mut input, &mut pending, chunk_bytes, &mut eof)?;
        }
        let window = pending.len().min(chunk_bytes);
        let cut = if eof && pending.len() <= chunk_bytes {
            pending.len()
        } else if let Some(cut) = last_record_end(pending.get(..window).unwrap_or(&[]), delimiter) {
            cut
        } else if let Some(cut) = last_record_end(&pending, delimiter) {
            cut // a record longer than a chunk
        } else if eof {
            pending.len()
        } else {
            // No line end outside quotes yet: read on.
            let want = pending.len() + chunk_bytes;
            fill(&mut input, &mut pending, want, &mut eof)?;
            continue;
        };
        let piece = pending.get(..cut).unwrap_or(&[]);
        let text: std::borrow::Cow<'_, str> = match piecewise {
            crate::decode::Piecewise::Utf8 { bom } => match std::str::from_utf8(piece) {
                Ok(t) => t.into(),
                Err(e) if bom > 0 => {
                    return Err(IngestError::BadEncoding {
                        encoding: "UTF-8",
                        offset: offset + e.valid_up_to(),
                    });
                }
                Err(e) => {
                    return Err(IngestError::Csv {
                        line: line + count_lines(piece.get(..e.valid_up_to()).unwrap_or(&[])),
                        message: format!(
                            "byte {} is not UTF-8, though the file starts as UTF-8; save \
                             it again as UTF-8",
                            offset + e.valid_up_to()
                        ),
                    });
                }
            },
            crate::decode::Piecewise::Windows1251 => {
                encoding_rs::WINDOWS_1251
                    .decode_without_bom_handling(piece)
                    .0
            }
        };
        if text.as_bytes().contains(&0) {
            return Err(IngestError::NotText {
                kind: "binary data",
            });
        }
        any_text |= !text.trim().is_empty();
        let mut reader = csv_reader(&text, delimiter);
        let mut lines = Lines::starting_at(&text, line);
        if header.is_none() {
            header = read_header(&mut reader, &mut record, &mut lines, delimiter, &rows)?;
        }
        if let Some(h) = &header {
            read_records(&mut reader, &mut record, &mut lines, &text, h, &mut rows)?;
        }
        line += count_lines(piece);
        offset += cut;
        pending.drain(..cut);
        if rows.sink.observation_count() >= batch_rows {
            hand_out(rows.sink.take_observations(), batch_rows, &mut on_batch)?;
        }
        if eof && pending.is_empty() {
            break;
        }
    }
    if header.is_none() {
        return Err(if any_text {
            IngestError::NoHeader
        } else {
            IngestError::EmptyFile
        });
    }
    hand_out(rows.sink.take_observations(), batch_rows, &mut on_batch)?;
    Ok(rows.sink.finish())
}

/// Hands `observations` to `on_batch` in batches of at most `batch_rows`.
fn hand_out(
    observations: Vec<Observation>,
    batch_rows: usize,
    on_batch: &mut impl FnMut(Vec<Observation>) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let mut observations = observations.into_iter().peekable();
    while observations.peek().is_some() {
        on_batch(observations.by_ref().take(batch_rows).collect())?;
    }
    Ok(())
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

fn read_error(e: &std::io::Error) -> IngestError {
    IngestError::Unavailable(format!("reading the file failed: {e}"))
}

/// Reads until `buf` holds `want` bytes or the input ends.
fn fill(
    input: &mut impl std::io::Read,
    buf: &mut Vec<u8>,
    want: usize,
    eof: &mut bool,
) -> Result<(), IngestError> {
    let mut chunk = vec![0u8; 64 * 1024];
    while !*eof && buf.len() < want {
        match input.read(&mut chunk) {
            Ok(0) => *eof = true,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(&e)),
        }
    }
    Ok(())
}

/// Where the last complete record of `bytes` ends: just after its last line end outside
/// quotes (quotes as [`scan_quotes`] reads them).
fn last_record_end(bytes: &[u8], delimiter: u8) -> Option<usize> {
    scan_quotes(bytes, delimiter).1
}
