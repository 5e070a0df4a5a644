//! Bytes to text: the encodings border statistics arrive in.
//!
//! Agencies publish UTF-8, UTF-16 (Excel's "Unicode text") and, in Russia, windows-1251.
//! A byte-order mark decides when there is one; otherwise valid UTF-8 is taken as is, a file
//! full of NUL bytes is read as UTF-16, and anything else as windows-1251 (which maps every
//! byte, so it never fails: a wrong guess shows up as unknown countries in rejected rows).
//! One exception: a file whose first 64 KiB are UTF-8 and which is not UTF-8 further on is
//! refused ("save it again as UTF-8"), as the streamed reader refuses it, instead of being
//! read as windows-1251.

use std::borrow::Cow;

use encoding_rs::{DecoderResult, Encoding, UTF_8, UTF_16LE, WINDOWS_1251};

use crate::error::IngestError;
use crate::format::SNIFF_BYTES;

/// How many leading bytes the UTF-16 guess looks at.
const SNIFF_LEN: usize = 8192;

/// Decodes a file's bytes into text, without a byte-order mark.
pub fn decode_text(bytes: &[u8]) -> Result<String, IngestError> {
    decode(bytes).map(Cow::into_owned)
}

/// [`decode_text`] that borrows the bytes when they are UTF-8 already (no copy).
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::EmptyFile);
    }
    if let Some(kind) = binary_kind(bytes) {
        return Err(IngestError::NotText { kind });
    }
    let text: Cow<'_, str> = if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        strict(encoding, &bytes[bom_len..]).map_err(|e| match e {
            IngestError::BadEncoding { encoding, offset } => IngestError::BadEncoding {
                encoding,
                offset: offset + bom_len,
            },
            other => other,
        })?
    } else if let Some(encoding) = utf16_without_bom(bytes) {
        // A guess, not a mark: text that is not valid UTF-16 after all is binary.
        strict(encoding, bytes).map_err(|_| IngestError::NotText {
            kind: "binary data",
        })?
    } else {
        match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(e) if starts_as_utf8(bytes) => return Err(not_utf8_after_all(bytes, e)),
            Err(_) => WINDOWS_1251.decode_without_bom_handling(bytes).0,
        }
    };
    if text.as_bytes().contains(&0) {
        return Err(IngestError::NotText {
            kind: "binary data",
        });
    }
    if text.trim().is_empty() {
        return Err(IngestError::EmptyFile);
    }
    Ok(text)
}

/// Whether a file longer than its head (the first [`SNIFF_BYTES`]) has a head that is UTF-8,
/// but for a character cut off at its end: the streamed reader (`generic/stream.rs`) then
/// decodes the whole file as UTF-8, and so must a whole read, or the same bytes would read
/// as windows-1251 one way and be refused the other.
fn starts_as_utf8(bytes: &[u8]) -> bool {
    bytes.len() > SNIFF_BYTES
        && match std::str::from_utf8(&bytes[..SNIFF_BYTES]) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
}

/// The refusal of a file that starts as UTF-8 and is not UTF-8 further on: taking it for
/// windows-1251 would turn its UTF-8 names into other letters (the same words the streamed
/// reader answers with).
fn not_utf8_after_all(bytes: &[u8], e: std::str::Utf8Error) -> IngestError {
    let at = e.valid_up_to();
    let before = bytes.get(..at).unwrap_or(&[]);
    IngestError::Csv {
        line: 1 + before.iter().filter(|b| **b == b'\n').count() as u64,
        message: format!(
            "byte {at} is not UTF-8, though the file starts as UTF-8; save it again as UTF-8"
        ),
    }
}

/// The start of a file as text, for format detection: like [`decode_text`] but lenient (the
/// head may end inside a character). `None` when the bytes are not text.
pub fn decode_head(head: &[u8]) -> Option<String> {
    if head.is_empty() || binary_kind(head).is_some() {
        return None;
    }
    let text = if let Some((encoding, bom_len)) = Encoding::for_bom(head) {
        encoding.decode_without_bom_handling(&head[bom_len..]).0
    } else if let Some(encoding) = utf16_without_bom(head) {
        encoding.decode_without_bom_handling(head).0
    } else {
        match std::str::from_utf8(head) {
            Ok(s) => s.into(),
            // Valid up to a character cut off at the end of the head.
            Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&head[..e.valid_up_to()]),
            Err(_) => WINDOWS_1251.decode_without_bom_handling(head).0,
        }
    };
    (!text.contains('\0')).then(|| text.into_owned())
}

/// How a file can be decoded piece by piece (pieces cut at line ends), judged from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piecewise {
    /// UTF-8 after a byte-order mark of `bom` bytes (0: none).
    Utf8 {
        bom: usize,
    },
    Windows1251,
}

/// [`Piecewise`] for a file starting with `head` (`whole`: the head is the whole file, so
/// the choice is [`decode_text`]'s); `None` for UTF-16, which is read whole.
pub(crate) fn piecewise(head: &[u8], whole: bool) -> Result<Option<Piecewise>, IngestError> {
    if let Some(kind) = binary_kind(head) {
        return Err(IngestError::NotText { kind });
    }
    Ok(match Encoding::for_bom(head) {
        Some((encoding, bom)) if encoding == UTF_8 => Some(Piecewise::Utf8 { bom }),
        Some(_) => None,
        None if utf16_without_bom(head).is_some() => None,
        None => match std::str::from_utf8(head) {
            Ok(_) => Some(Piecewise::Utf8 { bom: 0 }),
            // Valid up to a character cut off at the end of the head.
            Err(e) if e.error_len().is_none() && !whole => Some(Piecewise::Utf8 { bom: 0 }),
            Err(_) => Some(Piecewise::Windows1251),
        },
    })
}

/// The error for a file that is not text and that no binary format recognised.
pub fn not_text(bytes: &[u8]) -> IngestError {
    IngestError::NotText {
        kind: binary_kind(bytes).unwrap_or("binary data"),
    }
}

fn strict<'a>(encoding: &'static Encoding, bytes: &'a [u8]) -> Result<Cow<'a, str>, IngestError> {
    let name = if encoding == UTF_8 {
        "UTF-8"
    } else if encoding == UTF_16LE {
        "UTF-16LE"
    } else {
        "UTF-16BE"
    };
    match encoding.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok(text),
        None => Err(IngestError::BadEncoding {
            encoding: name,
            offset: first_bad_offset(encoding, bytes),
        }),
    }
}

/// Where decoding first fails, for the error message.
fn first_bad_offset(encoding: &'static Encoding, bytes: &[u8]) -> usize {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(
        decoder
            .max_utf8_buffer_length_without_replacement(bytes.len())
            .unwrap_or(bytes.len() * 3 + 16),
    );
    match decoder.decode_to_string_without_replacement(bytes, &mut out, true) {
        // `read` counts the bad bytes and any read after them before the decoder noticed.
        (DecoderResult::Malformed(bad, after), read) => {
            read.saturating_sub(usize::from(bad) + usize::from(after))
        }
        (_, read) => read,
    }
}

/// Spreadsheets and archives people send instead of CSV.
fn binary_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"PK\x03\x04") {
        Some("a ZIP archive (an .xlsx workbook?)")
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        Some("an Excel 97-2003 workbook (.xls)")
    } else if bytes.starts_with(b"%PDF") {
        Some("a PDF document")
    } else if bytes.starts_with(&[0x1F, 0x8B]) {
        Some("gzip-compressed")
    } else {
        None
    }
}

/// UTF-16 without a byte-order mark: text in Latin or Cyrillic script has a NUL in every other
/// byte (ASCII) or at least in many of them; which half holds them gives the byte order.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(SNIFF_LEN)];
    if head.len() < 2 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for (i, b) in head.iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 {
                even += 1;
            } else {
                odd += 1;
            }
        }
    }
    let pairs = head.len() / 2;
    // At least a quarter of the code units have a NUL half, and nearly all on one side.
    if odd * 4 >= pairs && even * 10 <= odd {
        Some(UTF_16LE)
    } else if even * 4 >= pairs && odd * 10 <= even {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(if big_endian {
                [0xFE, 0xFF]
            } else {
                [0xFF, 0xFE]
            });
        }
        for unit in text.encode_utf16() {
            out.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    }

    const SAMPLE: &str = "source,period,country,category,count\nfsb,2024-Q3,КНДР,учеба,3765\n";

    #[test]
    fn empty_input_is_an_error_saying_the_file_is_empty() {
        let e = decode_text(b"").unwrap_err();
        assert!(matches!(e, IngestError::EmptyFile));
        assert!(e.to_string().contains("the file is empty"));
        assert!(matches!(
            decode_text(b" \n\r\n"),
            Err(IngestError::EmptyFile)
        ));
    }

    #[test]
    fn utf8_passes_through_and_its_bom_is_dropped() {
        assert_eq!(decode_text(SAMPLE.as_bytes()).unwrap(), SAMPLE);
        let mut with_bom = vec![0xEF, 0xBB, 0xBF];
        with_bom.extend(SAMPLE.as_bytes());
        assert_eq!(decode_text(&with_bom).unwrap(), SAMPLE);
    }

    #[test]
    fn utf16_with_bom_decodes() {
        assert_eq!(decode_text(&utf16(SAMPLE, false, true)).unwrap(), SAMPLE);
        assert_eq!(decode_text(&utf16(SAMPLE, true, true)).unwrap(), SAMPLE);
    }

    #[test]
    fn utf16_without_bom_is_recognised_by_its_nul_bytes() {
        assert_eq!(decode_text(&utf16(SAMPLE, false, false)).unwrap(), SAMPLE);
        assert_eq!(decode_text(&utf16(SAMPLE, true, false)).unwrap(), SAMPLE);
    }

    #[test]
    fn windows_1251_russian_text_decodes() {
        let (bytes, _, _) = WINDOWS_1251.encode(SAMPLE);
        assert!(std::str::from_utf8(&bytes).is_err());
        assert_eq!(decode_text(&bytes).unwrap(), SAMPLE);
    }

    #[test]
    fn a_file_starting_as_utf8_with_a_bad_byte_later_is_refused_not_read_as_1251() {
        let row = "fsb,2024-Q3,КНДР,учеба,3765\n";
        let mut bytes = b"source,period,country,category,count\n".to_vec();
        while bytes.len() <= SNIFF_BYTES {
            bytes.extend(row.as_bytes());
        }
        let at = bytes.len() + "fsb,2024-Q3,".len();
        bytes.extend(b"fsb,2024-Q3,\xCA\xCD\xC4\xD0,work,1\n");
        let e = decode_text(&bytes).unwrap_err();
        assert_eq!(e.code(), "bad_csv", "{e}");
        let lines = bytes[..at].iter().filter(|b| **b == b'\n').count() as u64;
        assert!(
            matches!(&e, IngestError::Csv { line, message }
                if *line == lines + 1 && message.contains(&format!("byte {at} "))),
            "{e:?}"
        );
        assert!(e.to_string().contains("save it again as UTF-8"), "{e}");
        // A head cut inside a character (К across the 64 KiB mark) is still a UTF-8 head.
        let mut cut = b"source,period,country,category,count\n".to_vec();
        cut.resize(SNIFF_BYTES - 1, b' ');
        cut.extend("К\nfsb,2024,KP,a,1\n".as_bytes());
        assert!(std::str::from_utf8(&cut[..SNIFF_BYTES]).is_err());
        cut.extend(b"fsb,2024,\xCA,a,1\n");
        let e = decode_text(&cut).unwrap_err();
        assert!(
            e.to_string().contains("though the file starts as UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn windows_1251_files_of_any_size_still_decode() {
        // Bad UTF-8 within the first 64 KiB: windows-1251, however long the file.
        let (row, _, _) = WINDOWS_1251.encode("fsb,2024-Q3,КНДР,учеба,3765\n");
        let mut bytes = b"source,period,country,category,count\n".to_vec();
        while bytes.len() <= 3 * SNIFF_BYTES {
            bytes.extend(row.iter());
        }
        let text = decode_text(&bytes).unwrap();
        assert!(text.ends_with("КНДР,учеба,3765\n"), "{} bytes", text.len());
        // A short file is its own head: windows-1251 wherever the bad byte is.
        let mut short = b"source,period,country,category,count\nfsb,2024-Q3,KP,a,1\n".to_vec();
        short.extend(row.iter());
        assert!(decode_text(&short).unwrap().contains("КНДР"));
    }

    #[test]
    fn broken_utf16_after_a_bom_is_an_encoding_error() {
        let mut bytes = utf16("ab", false, true);
        bytes.extend([0x00, 0xD8, 0x41, 0x00]); // a lone high surrogate, then 'A'
        let e = decode_text(&bytes).unwrap_err();
        assert!(
            matches!(
                e,
                IngestError::BadEncoding {
                    encoding: "UTF-16LE",
                    offset: 6
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn spreadsheets_are_refused_with_a_hint() {
        let e = decode_text(b"PK\x03\x04rest of a zip").unwrap_err();
        assert!(e.to_string().contains("export it as CSV"), "{e}");
        assert!(matches!(
            decode_text(&[0xD0, 0xCF, 0x11, 0xE0, 0, 0]),
            Err(IngestError::NotText { .. })
        ));
    }

    #[test]
    fn binary_with_scattered_nuls_is_refused() {
        let e = decode_text(b"ab\0\0cd\0\0ef\0\0gh").unwrap_err();
        assert!(matches!(e, IngestError::NotText { .. }), "{e:?}");
    }
}
