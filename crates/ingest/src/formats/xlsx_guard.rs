//! A guard before calamine opens an xlsx (or xlsm, xlsb): calamine reads the shared strings
//! whole when the workbook opens, and a sheet's XML as it streams its cells, inflating each
//! part as far as it goes. Cells are capped ([`super::table`]), but not what a part unpacks
//! to: a few hundred KB of deflate can unpack to gigabytes (one string, or a sheet of
//! padding), which calamine would hold or churn through. As [`super::ods_guard`] caps an
//! ods's `content.xml`, this refuses a workbook whose parts unpack to more than
//! [`MAX_UNPACKED_BYTES`] in all, before calamine reads any. The sizes the zip's directory
//! declares are what count: the zip reader calamine reads through stops a part at its
//! declared size with an error (`tests/hostile.rs` holds it to that), so no part inflates
//! past them, and nothing needs inflating here.

use std::io::Cursor;

use crate::error::IngestError;

/// The most the parts of a zip workbook may unpack to, in all: the cap an ods's
/// `content.xml` has ([`super::ods_guard::MAX_CONTENT_BYTES`]). Agencies' workbooks unpack to
/// tens of MiB; more is a compression bomb, not a table.
pub(crate) const MAX_UNPACKED_BYTES: u64 = super::ods_guard::MAX_CONTENT_BYTES;

/// Refuses a zip workbook whose parts declare more than [`MAX_UNPACKED_BYTES`] unpacked, in
/// all; anything else, and a zip that cannot be read, passes (calamine gives its own error).
pub(super) fn check(bytes: &[u8], format: &'static str) -> Result<(), IngestError> {
    if !bytes.starts_with(b"PK") {
        return Ok(());
    }
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    let declared = (0..zip.len())
        .filter_map(|i| zip.by_index_raw(i).ok().map(|f| f.size()))
        .fold(0u64, u64::saturating_add);
    if declared > MAX_UNPACKED_BYTES {
        return Err(too_big(format));
    }
    Ok(())
}

fn too_big(format: &'static str) -> IngestError {
    IngestError::BadLayout {
        format,
        message: format!(
            "the spreadsheet's parts unpack to more than {} MiB; this is not a table an \
             agency publishes (a compression bomb?): split it, or send it as CSV",
            MAX_UNPACKED_BYTES >> 20
        ),
    }
}
