//! A guard before calamine opens an xls: calamine reads every sheet of an xls when the
//! workbook opens and allocates each sheet's whole range (and the cells its `DIMENSIONS`
//! record declares), so a forged record or a cell far out aborts the process before any cap
//! of [`super::table`] can apply. This walks the workbook stream's records first.
//!
//! It walks them as calamine reads them ([`walk`]): the globals, then each sheet from its
//! position as often as the sheet list names it (calamine holds a sheet for each entry, and
//! every sheet at once), counting the cells each sheet holds and the text: a shared string
//! is stored once in the `SST` record, but calamine copies it into every cell whose
//! `LabelSst` record (14 bytes) names it, so a 64 KiB string named by two million cells
//! would take 128 GiB.

use super::table::{MAX_SHEET_ROWS, WorkbookCount};
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
    let entries: Vec<&[u8]> = directory.chunks_exact(128).collect();
    // As calamine's `Cfb`: the entry named `Workbook` (in any case), else `Book`; its length
    // is 32 bits in a file of 512-byte sectors; below 4,096 bytes it is in the mini stream
    // (64-byte sectors, chained by the mini FAT, stored in the root entry's chain).
    let named = |wanted: &str| {
        entries.iter().copied().find(|entry| {
            let units: Vec<u16> = entry[..64]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&c| c != 0)
                .collect();
            String::from_utf16_lossy(&units).eq_ignore_ascii_case(wanted)
        })
    };
    let entry = named("Workbook").or_else(|| named("Book"))?;
    let len = if shift == 9 {
        u32_at(entry, 120)? as usize
    } else {
        usize::try_from(u64::from(u32_at(entry, 120)?) | u64::from(u32_at(entry, 124)?) << 32)
            .ok()?
    };
    let start = u32_at(entry, 116)?;
    let mut stream = if len < 4096 {
        let root = entries.first()?;
        let container = chain(u32_at(root, 116)?)?;
        let minifat: Vec<u32> = chain(u32_at(file, 0x3C)?)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (mut out, mut at, mut hops) = (Vec::new(), start, 0);
        while at != END && out.len() < len && hops <= minifat.len() {
            let from = (at as usize).checked_mul(64)?;
            out.extend_from_slice(container.get(from..from.checked_add(64)?)?);
            at = *minifat.get(at as usize)?;
            hops += 1;
        }
        out
    } else {
        chain(start)?
    };
    stream.truncate(len);
    Some(stream)
}

/// Refuses an xls whose records would make calamine allocate more than ingest holds: a sheet
/// whose `DIMENSIONS` record, or whose cells, span more than [`MAX_SHEET_CELLS`] cells or
/// [`MAX_SHEET_ROWS`] rows; sheets whose cells together pass [`MAX_WORKBOOK_CELLS`]; or
/// more text than [`MAX_WORKBOOK_TEXT_BYTES`] (see [`walk`]).
///
/// [`MAX_SHEET_CELLS`]: super::MAX_SHEET_CELLS
/// [`MAX_WORKBOOK_CELLS`]: super::MAX_WORKBOOK_CELLS
/// [`MAX_WORKBOOK_TEXT_BYTES`]: super::MAX_WORKBOOK_TEXT_BYTES
pub(crate) fn check(file: &[u8], format: &'static str) -> Result<(), IngestError> {
    if !file.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Ok(());
    }
    let Some(stream) = workbook_stream(file) else {
        return Ok(());
    };
    walk(&stream, format).map(|_| ())
}

/// The cells calamine holds of one sheet as it reads it: a cell for each value record it
/// pushes, and then the range of them (`Range::from_sparse`: every cell of their bounding
/// box), the cells a `DIMENSIONS` record reserves before.
#[derive(Debug, Default)]
struct SheetCells {
    /// Bounding box of the cells: (first row, last row, first column, last column).
    bbox: Option<(u32, u32, u32, u32)>,
    /// Value records' cells, one by one.
    pushed: u64,
    /// The largest `DIMENSIONS` record's cells.
    declared: u64,
}

impl SheetCells {
    fn span((r0, r1, c0, c1): (u32, u32, u32, u32)) -> u64 {
        { u64::from(r1.saturating_sub(r0)) + 1 }
            .saturating_mul(u64::from(c1.saturating_sub(c0)) + 1)
    }

    /// The most calamine holds of the sheet at once.
    fn cells(&self) -> u64 {
        self.bbox
            .map_or(0, Self::span)
            .max(self.pushed)
            .max(self.declared)
    }

    /// Takes one record of the sheet: the row of a cell it holds (for the row cap), if any.
    fn read(&mut self, typ: u32, data: &[u8]) -> Option<u32> {
        let cell = match typ {
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
                if let (Some(r0), Some(r1), Some(c0), Some(c1)) = (r0, r1, c0, c1) {
                    self.declared = self.declared.max(Self::span((r0, r1, c0, c1)));
                }
                return None;
            }
            // The value records calamine pushes (Number, Label, RString, BoolErr, Rk,
            // LabelSst), and Formula (a value, or the String record after it, at its cell,
            // and the formula in a range of its own): one cell each.
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 => {
                u16_at(data, 0).zip(u16_at(data, 2)).map(|(r, c)| (r, c, c))
            }
            // MulRk: row, first column, six bytes a cell, last column.
            0x00BD => u16_at(data, 0)
                .zip(u16_at(data, 2))
                .zip(data.len().checked_sub(2).and_then(|i| u16_at(data, i)))
                .map(|((r, c0), c1)| (r, c0, c1)),
            // Blank and MulBlank cells are not held.
            _ => None,
        };
        let (row, c0, c1) = cell?;
        let (lo, hi) = (c0.min(c1), c0.max(c1));
        // calamine refuses a MulRk whose columns are not its cells.
        self.pushed = self.pushed.saturating_add(u64::from(hi - lo) + 1);
        self.bbox = Some(match self.bbox {
            None => (row, row, lo, hi),
            Some((r0, r1, cl, ch)) => (r0.min(row), r1.max(row), cl.min(lo), ch.max(hi)),
        });
        Some(row)
    }
}

/// The text calamine prints a formula to, counted per byte of its tokens (`rgce`): a cell
/// reference of 5 bytes prints as `$C$200` (6), a sum of a range as `SUM($C$5:$C$200)` in
/// 12, a reference to another sheet as its name and more. The real workbook in test-data
/// prints 56 KB of tokens to 206 KB (3.6). Not a bound: a token naming a sheet or a defined
/// name with a long name, or one of spaces (`PtgAttrSpace`, 4 bytes for up to 255), prints
/// to more, up to some 64 times its bytes; bounding it would take walking the tokens as
/// calamine's `parse_formula` does.
const FORMULA_TEXT_PER_BYTE: u64 = 8;

/// One record as calamine's `RecordIter` gives it: its type, its data, and the data of the
/// `CONTINUE` records right after it.
struct Record<'a> {
    typ: u32,
    data: &'a [u8],
    cont: Vec<&'a [u8]>,
}

/// The records from `at` on, as calamine reads them; a truncated one ends them (calamine
/// refuses it).
fn records(stream: &[u8], mut at: usize) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let body = |at: usize| {
            let len = u16_at(stream, at + 2)? as usize;
            stream.get(at + 4..at + 4 + len)
        };
        let typ = u16_at(stream, at)?;
        let data = body(at)?;
        at += 4 + data.len();
        let mut cont = Vec::new();
        while u16_at(stream, at) == Some(0x003C) {
            let part = body(at)?;
            at += 4 + part.len();
            cont.push(part);
        }
        Some(Record { typ, data, cont })
    })
}

/// How calamine decodes the workbook's strings: its BIFF version and code page.
#[derive(Clone, Copy)]
struct Strings {
    biff8: bool,
    /// Code page 1200 or 1201 (UTF-16): 1200 is calamine's default, and what BIFF8
    /// writers use.
    utf16: bool,
}

impl Strings {
    /// At most the UTF-8 bytes calamine makes of `bytes` of characters: `high` (two bytes a
    /// character), compressed (one), or `None` (before BIFF8: one byte, in the code page).
    /// Other code pages are taken as ASCII-compatible, each other byte as up to 3 bytes.
    fn utf8(self, bytes: &[u8], high: Option<bool>) -> u64 {
        let byte = |b: &u8| if *b < 0x80 { 1u64 } else { 3 };
        match (high, self.utf16) {
            // Code page 1200 reads little-endian, 1201 big-endian: either is bounded.
            (Some(true), true) => bytes
                .chunks_exact(2)
                .map(|u| {
                    let width = |unit: u16| match unit {
                        0..0x80 => 1,
                        0x80..0x800 => 2,
                        _ => 3,
                    };
                    width(u16::from_le_bytes([u[0], u[1]]))
                        .max(width(u16::from_be_bytes([u[0], u[1]])))
                })
                .sum(),
            (Some(false), true) => bytes.iter().map(|b| if *b < 0x80 { 1 } else { 2 }).sum(),
            // Widened to UTF-16 with zero high bytes, then decoded in the code page.
            (Some(false), false) => bytes.iter().map(|b| byte(b) + 1).sum(),
            (_, _) => bytes.iter().map(byte).sum(),
        }
    }

    /// A string of `cch` characters at the start of `data` (`high` as above), as calamine's
    /// `encoding.decode_to` takes it: (the characters taken, the bytes read, their UTF-8).
    fn take(self, data: &[u8], cch: usize, high: Option<bool>) -> (usize, usize, u64) {
        let width = if high == Some(true) { 2 } else { 1 };
        let chars = cch.min(data.len() / width);
        let bytes = &data[..chars * width];
        (chars, bytes.len(), self.utf8(bytes, high))
    }

    /// An `XLUnicodeString` (calamine's `parse_string`: a label, a formula's string value):
    /// the bytes of the `String` it makes, whose capacity is `cch` at least.
    fn string(self, r: &[u8]) -> u64 {
        let expected = if self.biff8 { 3 } else { 2 };
        let Some(cch) = u16_at(r, 0) else {
            return 0;
        };
        let Some(rest) = r.get(expected..) else {
            return 0;
        };
        let high = self.biff8.then(|| r[2] & 1 != 0);
        let (_, _, utf8) = self.take(rest, cch as usize, high);
        utf8.max(u64::from(cch))
    }

    /// The strings of an `SST` record (calamine's `parse_sst`, `read_rich_extended_string`
    /// and `read_dbcs`, across its `CONTINUE` records): each one's bytes. Where calamine
    /// would fail, the strings so far (it then opens nothing).
    fn shared<'a>(self, record: &Record<'a>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut parts = record.cont.iter();
        let Some(mut data): Option<&'a [u8]> = record.data.get(8..) else {
            return out;
        };
        let mut next = |data: &mut &'a [u8]| match parts.next() {
            Some(part) => {
                *data = part;
                true
            }
            None => false,
        };
        while !data.is_empty() || next(&mut data) {
            if data.is_empty() {
                out.push(0);
                continue;
            }
            let (Some(cch), Some(&flags)) = (u16_at(data, 0), data.get(2)) else {
                return out;
            };
            data = &data[3..];
            let mut skip = 0usize;
            if flags & 0x8 != 0 {
                let Some(runs) = u16_at(data, 0) else {
                    return out;
                };
                skip += 4 * runs as usize;
                data = &data[2..];
            }
            if flags & 0x4 != 0 {
                let Some(ext) = u32_at(data, 0) else {
                    return out;
                };
                skip = skip.saturating_add(ext as usize);
                data = &data[4..];
            }
            let (mut left, mut high, mut utf8) = (cch as usize, flags & 1 != 0, 0u64);
            while left > 0 {
                let (chars, read, bytes) = self.take(data, left, Some(high));
                data = &data[read..];
                left -= chars;
                utf8 += bytes;
                if left > 0 {
                    if !next(&mut data) || data.is_empty() {
                        return out;
                    }
                    high = data[0] & 1 != 0;
                    data = &data[1..];
                }
            }
            out.push(utf8.max(u64::from(cch)));
            while skip > 0 {
                if data.is_empty() && !next(&mut data) {
                    return out;
                }
                let n = skip.min(data.len());
                data = &data[n..];
                skip -= n;
            }
        }
        out
    }
}

/// Refuses an xls whose sheets would hold more than the caps ([`MAX_SHEET_ROWS`],
/// [`MAX_SHEET_CELLS`] a sheet, [`MAX_WORKBOOK_CELLS`] all of them together) or more than
/// [`MAX_WORKBOOK_TEXT_BYTES`] of text when calamine opens it. As calamine does, this reads
/// the workbook globals (the BIFF version, the code page, the shared strings and the sheets'
/// positions) up to their first `EOF`, then each sheet from its position, as often as a
/// `BoundSheet` record names it, counting the cells calamine holds ([`SheetCells`]) and the
/// strings it makes: the shared strings once, a copy for each `LabelSst` cell, each `Label`
/// and `RString` cell, each formula's string value, and each formula's text.
///
/// A formula's text is counted as [`FORMULA_TEXT_PER_BYTE`] bytes a token byte.
///
/// [`MAX_SHEET_CELLS`]: super::MAX_SHEET_CELLS
/// [`MAX_WORKBOOK_CELLS`]: super::MAX_WORKBOOK_CELLS
/// [`MAX_WORKBOOK_TEXT_BYTES`]: super::MAX_WORKBOOK_TEXT_BYTES
fn walk(stream: &[u8], format: &'static str) -> Result<WorkbookCount, IngestError> {
    let mut strings = Strings {
        biff8: true,
        utf16: true,
    };
    let mut shared = Vec::new();
    let mut sheets = Vec::new();
    for r in records(stream, 0) {
        match r.typ {
            0x0809 => {
                strings.biff8 = match u16_at(r.data, 0) {
                    Some(0x0200 | 0x0002 | 0x0007 | 0x0300 | 0x0400 | 0x0500) => false,
                    Some(0) => u16_at(r.data, 2) != Some(0x1000),
                    _ => true,
                };
            }
            0x0042 => strings.utf16 = matches!(u16_at(r.data, 0), Some(1200 | 1201)),
            0x0085 => {
                if let Some(pos) = u32_at(r.data, 0) {
                    sheets.push((pos as usize, sheet_name(r.data, strings)));
                }
            }
            0x00FC => shared = strings.shared(&r),
            0x000A => break,
            _ => {}
        }
    }
    let mut counted = WorkbookCount {
        text: shared.iter().sum(),
        cells: 0,
    };
    for (pos, name) in sheets {
        let mut sheet = SheetCells::default();
        // As calamine: the first BOF opens the sheet, a later one a nested substream (a
        // chart), whose records are skipped to its EOF; the sheet's EOF ends it.
        let (mut seen_bof, mut depth) = (false, 0u32);
        for r in records(stream, pos) {
            if depth > 0 {
                match r.typ {
                    0x0809 => depth += 1,
                    0x000A => depth -= 1,
                    _ => {}
                }
                continue;
            }
            let row = sheet.read(r.typ, r.data);
            let refuse = |what: &'static str, limit: u64| IngestError::SheetTooLarge {
                format,
                sheet: name.clone(),
                what,
                limit,
            };
            if row.is_some_and(|row| row >= MAX_SHEET_ROWS) {
                return Err(refuse("rows", u64::from(MAX_SHEET_ROWS)));
            }
            counted.check_cells(format, &name, sheet.cells())?;
            let bytes = match r.typ {
                0x0809 => {
                    if seen_bof {
                        depth += 1;
                    }
                    seen_bof = true;
                    0
                }
                0x000A => break,
                0x0204 | 0x00D6 => r.data.get(6..).map_or(0, |d| strings.string(d)),
                0x0207 => strings.string(r.data),
                0x00FD => u32_at(r.data, 6)
                    .and_then(|i| shared.get(i as usize))
                    .copied()
                    .unwrap_or(0),
                0x0006 => (r.data.len().saturating_sub(20) as u64) * FORMULA_TEXT_PER_BYTE,
                _ => 0,
            };
            counted.add_text(format, &name, bytes)?;
        }
        counted.end_sheet(sheet.cells());
    }
    Ok(counted)
}

/// A `BoundSheet` record's sheet name (for the error), as far as it can be read.
fn sheet_name(data: &[u8], strings: Strings) -> String {
    let Some(&cch) = data.get(6) else {
        return String::new();
    };
    let cch = cch as usize;
    if !strings.biff8 {
        let bytes = data.get(7..).unwrap_or(&[]);
        return bytes.iter().take(cch).map(|&b| char::from(b)).collect();
    }
    let high = data.get(7).is_some_and(|f| f & 1 != 0);
    let bytes = data.get(8..).unwrap_or(&[]);
    if high {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .take(cch)
            .map(|u| u16::from_le_bytes([u[0], u[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        bytes.iter().take(cch).map(|&b| char::from(b)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{MAX_WORKBOOK_CELLS, MAX_WORKBOOK_TEXT_BYTES};
    use super::*;

    fn record(typ: u16, data: &[u8]) -> Vec<u8> {
        let mut r = typ.to_le_bytes().to_vec();
        r.extend_from_slice(&u16::try_from(data.len()).unwrap().to_le_bytes());
        r.extend_from_slice(data);
        r
    }

    /// A BIFF8 workbook stream of one sheet `Data`: shared string 0 is `shared`
    /// (compressed), named by `cells` LabelSst records; then `labels` Label records.
    fn stream(shared: &str, cells: u16, labels: &[&str]) -> Vec<u8> {
        let bof = |dt: u8| {
            record(
                0x0809,
                &[0x00, 0x06, dt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            )
        };
        let mut s = bof(0x05);
        let bound = s.len() + 4;
        s.extend(record(
            0x0085,
            &[0, 0, 0, 0, 0, 0, 4, 0, b'D', b'a', b't', b'a'],
        ));
        let mut sst = [1u32.to_le_bytes(), 1u32.to_le_bytes()].concat();
        sst.extend_from_slice(&u16::try_from(shared.len()).unwrap().to_le_bytes());
        sst.push(0);
        sst.extend_from_slice(shared.as_bytes());
        s.extend(record(0x00FC, &sst));
        s.extend(record(0x000A, &[]));
        let pos = u32::try_from(s.len()).unwrap().to_le_bytes();
        s[bound..bound + 4].copy_from_slice(&pos);
        s.extend(bof(0x10));
        for row in 0..cells {
            let mut d = row.to_le_bytes().to_vec();
            d.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
            s.extend(record(0x00FD, &d));
        }
        for (row, label) in labels.iter().enumerate() {
            let mut d = u16::try_from(row).unwrap().to_le_bytes().to_vec();
            d.extend_from_slice(&[1, 0, 0, 0]);
            d.extend_from_slice(&u16::try_from(label.len()).unwrap().to_le_bytes());
            d.push(0);
            d.extend_from_slice(label.as_bytes());
            s.extend(record(0x0204, &d));
        }
        s.extend(record(0x000A, &[]));
        s
    }

    /// A BIFF8 workbook stream of sheets of numbers: `sheets` the cells of each sheet (row,
    /// column), `list` the workbook's sheet list (a name, the sheet it points at).
    fn number_stream(sheets: &[&[(u16, u16)]], list: &[(&str, usize)]) -> Vec<u8> {
        let bof = |dt: u8| record(0x0809, &[0x00, 0x06, dt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut s = bof(0x05);
        let mut bound = Vec::new();
        for (name, sheet) in list {
            bound.push((s.len() + 4, *sheet));
            let mut d = vec![0, 0, 0, 0, 0, 0, u8::try_from(name.len()).unwrap(), 0];
            d.extend_from_slice(name.as_bytes());
            s.extend(record(0x0085, &d));
        }
        s.extend(record(0x000A, &[]));
        let mut at = Vec::new();
        for cells in sheets {
            at.push(u32::try_from(s.len()).unwrap());
            s.extend(bof(0x10));
            for (row, col) in *cells {
                let mut d = row.to_le_bytes().to_vec();
                d.extend_from_slice(&col.to_le_bytes());
                d.extend_from_slice(&[0, 0]);
                d.extend_from_slice(&1f64.to_le_bytes());
                s.extend(record(0x0203, &d));
            }
            s.extend(record(0x000A, &[]));
        }
        for (i, sheet) in bound {
            s[i..i + 4].copy_from_slice(&at[sheet].to_le_bytes());
        }
        s
    }

    #[test]
    fn cells_up_to_the_workbook_cap_pass_and_a_cell_more_is_refused() {
        // A sheet of 1,000,000 cells (its corners), listed as often as the cap allows; the
        // rest in a sheet of 250 columns and one of a row.
        let million: &[(u16, u16)] = &[(0, 0), (3_999, 249)];
        let entries = usize::try_from(MAX_WORKBOOK_CELLS / 1_000_000).unwrap();
        let rest = MAX_WORKBOOK_CELLS % 1_000_000;
        let tall = [(0, 0), (u16::try_from(rest / 250).unwrap().max(1) - 1, 249)];
        let row = [(0, 0), (0, u16::try_from(rest % 250).unwrap().max(1) - 1)];
        let names: Vec<String> = (0..entries).map(|i| format!("M{i}")).collect();
        let mut list: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 0)).collect();
        let mut sheets = vec![million];
        if rest / 250 > 0 {
            sheets.push(&tall);
            list.push(("Tall", sheets.len() - 1));
        }
        if !rest.is_multiple_of(250) {
            sheets.push(&row);
            list.push(("Row", sheets.len() - 1));
        }
        let at = number_stream(&sheets, &list);
        assert_eq!(walk(&at, "wide").unwrap().cells, MAX_WORKBOOK_CELLS);
        // The sheet list's entries are counted each, wherever they point: one more entry
        // naming a sheet of one cell passes the cap.
        sheets.push(&[(7, 7)]);
        list.push(("Last", sheets.len() - 1));
        let e = walk(&number_stream(&sheets, &list), "wide").unwrap_err();
        assert!(
            matches!(e, IngestError::WorkbookTooLarge { found, limit, ref sheet, .. }
                if found == limit + 1 && limit == MAX_WORKBOOK_CELLS && sheet == "Last"),
            "{e:?}"
        );
        // Blank cells are not held; a DIMENSIONS record's cells are reserved.
        let mut s = number_stream(&[&[(5, 5)]], &[("D", 0)]);
        let eof = s.len() - 4;
        let mut blank = record(0x0201, &[0xFF, 0x0F, 0x10, 0, 0, 0]);
        blank.extend(record(0x0200, &[0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 3, 0, 0, 0]));
        s.splice(eof..eof, blank);
        assert_eq!(walk(&s, "wide").unwrap().cells, 11 * 4);
    }

    #[test]
    fn shared_text_up_to_the_budget_passes_and_a_byte_more_is_refused() {
        // The shared string once, and a copy for each of 8,191 cells: 8,192 × 8 KiB.
        let shared = "x".repeat(8192);
        assert_eq!(8192 * 8192, MAX_WORKBOOK_TEXT_BYTES);
        let at = stream(&shared, 8191, &[]);
        assert_eq!(walk(&at, "wide").unwrap().text, MAX_WORKBOOK_TEXT_BYTES);
        let e = walk(&stream(&shared, 8191, &["y"]), "wide").unwrap_err();
        assert!(
            matches!(e, IngestError::TextTooLarge { found, limit, ref sheet, .. }
                if found == limit + 1 && sheet == "Data"),
            "{e:?}"
        );
    }

    #[test]
    fn the_count_of_a_real_xls_is_never_less_than_what_calamine_holds() {
        use calamine::{Data, Reader as _};
        let file = std::fs::read(MVD).unwrap();
        let counted = walk(&workbook_stream(&file).unwrap(), "ru_sheet")
            .unwrap()
            .text;
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(file)).unwrap();
        let mut held = 0u64;
        for name in book.sheet_names() {
            for (_, _, cell) in book.worksheet_range(&name).unwrap().used_cells() {
                if let Data::String(s) = cell {
                    held += s.len() as u64;
                }
            }
            for (_, _, f) in book.worksheet_formula(&name).unwrap().used_cells() {
                held += f.len() as u64;
            }
        }
        // Cyrillic: two UTF-8 bytes a character, as counted; the shared strings once more;
        // the formulas (206 KB of text from 56 KB of tokens) at 8 bytes a token byte.
        assert!(held > 200_000 && counted >= held, "{counted} < {held}");
        assert!(counted < 3 * held, "{counted} against {held}");
    }

    #[test]
    fn the_cells_of_a_real_xls_are_never_fewer_than_calamine_holds() {
        use calamine::Reader as _;
        let file = std::fs::read(MVD).unwrap();
        let counted = walk(&workbook_stream(&file).unwrap(), "ru_sheet").unwrap();
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(file)).unwrap();
        let mut held = 0u64;
        for name in book.sheet_names() {
            let (rows, columns) = book.worksheet_range(&name).unwrap().get_size();
            held += (rows * columns) as u64;
        }
        // 7,453 counted (DIMENSIONS records declare a little more), 6,982 held.
        assert!(
            held > 5_000 && counted.cells >= held,
            "{counted:?} < {held}"
        );
        assert!(counted.cells <= MAX_WORKBOOK_CELLS / 10, "{counted:?}");
    }

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
