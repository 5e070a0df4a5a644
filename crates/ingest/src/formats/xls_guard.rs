//! A guard before calamine opens an xls: calamine reads every sheet of an xls when the
//! workbook opens and allocates each sheet's whole range (and the cells its `DIMENSIONS`
//! record declares), so a forged record or a cell far out aborts the process before any cap
//! of [`super::table`] can apply. This walks the workbook stream's records first.

use super::table::{MAX_SHEET_CELLS, MAX_SHEET_ROWS};
use crate::error::IngestError;

const FREE: u32 = 0xFFFF_FFFF;
const END: u32 = 0xFFFF_FFFE;

fn u16_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        b.get(i..i + 2)?.try_into().ok()?,
    )))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// The `Workbook` (or `Book`) stream of a compound file, or `None` when it cannot be found
/// (calamine then gives its own error). Every chain is bounded by the file's sector count.
fn workbook_stream(file: &[u8]) -> Option<Vec<u8>> {
    let shift = u16_at(file, 0x1E)?;
    if !(7..=16).contains(&shift) {
        return None;
    }
    let size = 1usize << shift;
    let sectors = file.len().saturating_sub(512) / size + 1;
    let sector = |n: u32| -> Option<&[u8]> {
        let start = 512usize.checked_add((n as usize).checked_mul(size)?)?;
        file.get(start..start.checked_add(size)?)
    };
    // The FAT's sectors: 109 in the header, the rest in the DIFAT chain.
    let mut fat_sectors: Vec<u32> = (0..109)
        .filter_map(|i| u32_at(file, 0x4C + 4 * i))
        .filter(|&s| s != FREE)
        .collect();
    let mut difat = u32_at(file, 0x44)?;
    let mut hops = 0;
    while difat != END && difat != FREE && hops < sectors {
        let s = sector(difat)?;
        fat_sectors.extend(
            (0..size / 4 - 1)
                .filter_map(|i| u32_at(s, 4 * i))
                .filter(|&x| x != FREE),
        );
        difat = u32_at(s, size - 4)?;
        hops += 1;
    }
    let mut fat = Vec::new();
    for &s in fat_sectors.iter().take(sectors) {
        let s = sector(s)?;
        fat.extend((0..size / 4).filter_map(|i| u32_at(s, 4 * i)));
    }
    let chain = |start: u32| -> Option<Vec<u8>> {
        let (mut out, mut at, mut hops) = (Vec::new(), start, 0);
        while at != END && hops <= sectors {
            out.extend_from_slice(sector(at)?);
            at = *fat.get(at as usize)?;
            hops += 1;
        }
        Some(out)
    };
    let directory = chain(u32_at(file, 0x30)?)?;
    let cutoff = u32_at(file, 0x38)? as usize;
    for entry in directory.chunks_exact(128) {
        let name_len = (u16_at(entry, 64)? as usize).min(64);
        let name: Vec<u16> = entry[..name_len]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        let name = String::from_utf16_lossy(&name);
        if (name == "Workbook" || name == "Book") && entry.get(66) == Some(&2) {
            let len = u32_at(entry, 120)? as usize;
            if len < cutoff {
                // A tiny workbook in the mini stream holds no range worth guarding.
                return None;
            }
            let mut stream = chain(u32_at(entry, 116)?)?;
            stream.truncate(len);
            return Some(stream);
        }
    }
    None
}

/// Refuses an xls whose records would make calamine allocate more than one sheet may hold:
/// a `DIMENSIONS` record, or the cells of one sheet, spanning more than
/// [`MAX_SHEET_CELLS`] cells or [`MAX_SHEET_ROWS`] rows.
pub(crate) fn check(file: &[u8], format: &'static str) -> Result<(), IngestError> {
    if !file.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Ok(());
    }
    let Some(stream) = workbook_stream(file) else {
        return Ok(());
    };
    let refuse = |what: &'static str, limit: u64| IngestError::SheetTooLarge {
        format,
        sheet: "(xls)".into(),
        what,
        limit,
    };
    // Bounding box of the cells of the sheet being read: (first row, last row, first col, last col).
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    let mut depth = 0u32;
    let mut at = 0usize;
    while let (Some(typ), Some(len)) = (u16_at(&stream, at), u16_at(&stream, at + 2)) {
        let data = stream
            .get(at + 4..(at + 4 + len as usize).min(stream.len()))
            .unwrap_or(&[]);
        at += 4 + len as usize;
        let span = |(r0, r1, c0, c1): (u32, u32, u32, u32)| {
            { u64::from(r1.saturating_sub(r0)) + 1 }
                .saturating_mul(u64::from(c1.saturating_sub(c0)) + 1)
        };
        let cell = match typ {
            // BOF: a sheet starts (a nested chart's cells are counted with its sheet's).
            0x0809 => {
                depth += 1;
                if depth == 1 {
                    bbox = None;
                }
                continue;
            }
            0x000A => {
                depth = depth.saturating_sub(1);
                continue;
            }
            0x0200 => {
                let (r0, r1, c0, c1) = if data.len() == 10 {
                    (
                        u16_at(data, 0),
                        u16_at(data, 2),
                        u16_at(data, 4),
                        u16_at(data, 6),
                    )
                } else {
                    (
                        u32_at(data, 0),
                        u32_at(data, 4),
                        u16_at(data, 8),
                        u16_at(data, 10),
                    )
                };
                if let (Some(r0), Some(r1), Some(c0), Some(c1)) = (r0, r1, c0, c1)
                    && span((r0, r1, c0, c1)) > MAX_SHEET_CELLS
                {
                    return Err(refuse("cells", MAX_SHEET_CELLS));
                }
                continue;
            }
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 | 0x0201 => {
                u16_at(data, 0).zip(u16_at(data, 2)).map(|(r, c)| (r, c, c))
            }
            // MulRk and MulBlank: row, first column, ..., last column.
            0x00BD | 0x00BE => u16_at(data, 0)
                .zip(u16_at(data, 2))
                .zip(data.len().checked_sub(2).and_then(|i| u16_at(data, i)))
                .map(|((r, c0), c1)| (r, c0, c1)),
            _ => None,
        };
        let Some((row, c0, c1)) = cell else {
            continue;
        };
        if row >= MAX_SHEET_ROWS {
            return Err(refuse("rows", u64::from(MAX_SHEET_ROWS)));
        }
        let b = match bbox {
            None => (row, row, c0.min(c1), c0.max(c1)),
            Some((r0, r1, cl, ch)) => (r0.min(row), r1.max(row), cl.min(c0), ch.max(c1)),
        };
        if span(b) > MAX_SHEET_CELLS {
            return Err(refuse("cells", MAX_SHEET_CELLS));
        }
        bbox = Some(b);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MVD: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/borders/mvd_migration_registration_by_country_purpose_2016.xls"
    );

    #[test]
    fn a_real_xls_passes_and_a_forged_dimensions_record_is_refused() {
        let file = std::fs::read(MVD).unwrap();
        assert!(workbook_stream(&file).is_some_and(|s| s.len() > 10_000));
        check(&file, "ru_sheet").unwrap();
        // Forge the DIMENSIONS records' last row: calamine reserved rows x columns cells and
        // aborted on the allocation.
        let mut forged = file.clone();
        let mut patched = 0;
        for i in 0..forged.len() - 8 {
            if forged[i..i + 4] == [0x00, 0x02, 0x0E, 0x00] {
                forged[i + 8..i + 12].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
                patched += 1;
            }
        }
        assert!(patched > 0);
        let e = check(&forged, "ru_sheet").unwrap_err();
        assert!(
            matches!(e, IngestError::SheetTooLarge { what: "cells", .. }),
            "{e:?}"
        );
    }
}
