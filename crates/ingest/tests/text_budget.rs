//! The workbook caps of an ods or xls: its text (`MAX_WORKBOOK_TEXT_BYTES`) and its cells
//! (`MAX_WORKBOOK_CELLS`, all sheets together). calamine expands a workbook's repeated or
//! shared text, and every sheet's cells, whole when it opens it, so small files that expand
//! past a cap are refused before, by the guards' walks, fast and without the memory; files
//! just under it are not refused by them.
//!
//! `write_measurement_files` (ignored) writes the files the text budget was chosen with, for
//! `borderwatch analyze` (see `MAX_WORKBOOK_TEXT_BYTES`):
//! `TEXT_BUDGET_OUT=/tmp/tb cargo test -p borderwatch-ingest --test text_budget -- --ignored`;
//! `write_cell_measurement_files` those of the cell cap (`CELLS_OUT`).

use std::time::{Duration, Instant};

use borderwatch_ingest::formats::{MAX_SHEET_CELLS, MAX_WORKBOOK_CELLS, MAX_WORKBOOK_TEXT_BYTES};
use borderwatch_ingest::{IngestError, parse};

mod ods_support;
use ods_support::{ODS_HEADER_ROW, ods};

/// The header row's text: `country` and `2024-01`.
const ODS_HEADER_TEXT: u64 = 14;

/// A row of one text cell of `len` bytes repeated `columns` times, the row `rows` times.
fn ods_text_rows(len: usize, columns: u64, rows: u64) -> String {
    format!(
        "<table:table-row table:number-rows-repeated=\"{rows}\">\
         <table:table-cell table:number-columns-repeated=\"{columns}\" \
         office:value-type=\"string\"><text:p>{}</text:p></table:table-cell></table:table-row>",
        "x".repeat(len)
    )
}

/// A workbook (`bytes`) refused by the text budget, naming the sheet and the limit.
fn assert_text_refused(format: &str, bytes: &[u8], sheet: &str) {
    let started = Instant::now();
    let e = parse(format, bytes, Some("x")).unwrap_err();
    assert!(
        matches!(e, IngestError::TextTooLarge { sheet: ref named, found, limit, .. }
            if named == sheet && found > limit && limit == MAX_WORKBOOK_TEXT_BYTES),
        "{format}: {e:?}"
    );
    assert_eq!(e.code(), "too_many_rows", "{e}");
    let message = e.to_string();
    assert!(message.contains(&format!("\"{sheet}\"")), "{message}");
    assert!(
        message.contains(&MAX_WORKBOOK_TEXT_BYTES.to_string()),
        "{message}"
    );
    // Refused by walking the file, not by holding its text (which takes seconds in a debug
    // build); generous, so that a loaded machine does not fail it.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_ods_repeating_long_text_past_the_budget_is_refused_before_calamine_expands_it() {
    // 1 KiB of text, 4 columns by 65,536 rows: 262,144 cells (within the cell cap), 256 MiB
    // of text in a file of a few KB.
    let bytes = ods(&format!(
        "{ODS_HEADER_ROW}{}",
        ods_text_rows(1024, 4, 65_536)
    ));
    assert!(bytes.len() < 8_000, "{} bytes", bytes.len());
    for format in ["wide", "ru_sheet"] {
        assert_text_refused(format, &bytes, "Data");
    }
    // Detection reads every format's sniffer: none claims it, none expands it.
    assert!(parse("auto", &bytes, Some("x")).is_err());
}

#[test]
fn an_ods_cell_of_declared_spaces_past_the_budget_is_refused() {
    // `<text:s text:c="N"/>` is N spaces: one cell of 60 bytes stands for 200 MB.
    let bytes = ods(&format!(
        "{ODS_HEADER_ROW}<table:table-row><table:table-cell office:value-type=\"string\">\
         <text:p>a<text:s text:c=\"200000000\"/>b</text:p></table:table-cell></table:table-row>"
    ));
    assert_text_refused("wide", &bytes, "Data");
}

#[test]
fn an_ods_whose_sheets_together_pass_the_budget_is_refused_at_the_sheet_that_passes_it() {
    // calamine holds every sheet of an ods at once: the budget is the workbook's.
    // Three quarters of the budget a sheet: under it alone, past it together.
    let half = ods_text_rows(1024, 4, MAX_WORKBOOK_TEXT_BYTES / 4096 * 3 / 4);
    let rows =
        format!("{ODS_HEADER_ROW}{half}</table:table><table:table table:name=\"Second\">{half}");
    assert_text_refused("wide", &ods(&rows), "Second");
}

#[test]
fn an_ods_with_text_within_the_budget_reads() {
    // A modest table of long text cells reads as before (its cells are not countries: the
    // rows are rejected, not the file refused as too large).
    let bytes = ods(&format!("{ODS_HEADER_ROW}{}", ods_text_rows(1024, 2, 100)));
    let p = parse("wide", &bytes, Some("x")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((p.rows, p.rejected_total), (100, 100));
}

// ---- xls --------------------------------------------------------------------------------

/// One BIFF record.
fn record(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(4 + data.len());
    r.extend_from_slice(&typ.to_le_bytes());
    r.extend_from_slice(&u16::try_from(data.len()).unwrap().to_le_bytes());
    r.extend_from_slice(data);
    r
}

/// A BIFF8 workbook stream: sheets named `sheets`, each `cells` LabelSst cells down column
/// A naming shared string 0, which is `shared` (compressed, at most 8,200 characters).
fn biff8_stream(shared: &str, sheets: &[(&str, u32)]) -> Vec<u8> {
    // BOF: BIFF8, workbook globals (5) or worksheet (0x10).
    let bof = |dt: u16| {
        let mut d = vec![0x00, 0x06];
        d.extend_from_slice(&dt.to_le_bytes());
        d.extend_from_slice(&[0; 12]);
        record(0x0809, &d)
    };
    let mut globals = bof(0x0005);
    globals.extend(record(0x0042, &1200u16.to_le_bytes()));
    // BoundSheet8 records, their positions patched in below.
    let mut bound_at = Vec::new();
    for (name, _) in sheets {
        bound_at.push(globals.len() + 4);
        let mut d = vec![0; 4];
        d.extend_from_slice(&[0, 0, u8::try_from(name.len()).unwrap(), 0]);
        d.extend_from_slice(name.as_bytes());
        globals.extend(record(0x0085, &d));
    }
    let total: u32 = sheets.iter().map(|(_, n)| n).sum();
    let mut sst = Vec::new();
    sst.extend_from_slice(&total.to_le_bytes());
    sst.extend_from_slice(&1u32.to_le_bytes());
    sst.extend_from_slice(&u16::try_from(shared.len()).unwrap().to_le_bytes());
    sst.push(0);
    sst.extend_from_slice(shared.as_bytes());
    globals.extend(record(0x00FC, &sst));
    globals.extend(record(0x000A, &[]));
    let mut stream = globals;
    for ((_, cells), at) in sheets.iter().zip(bound_at) {
        let pos = u32::try_from(stream.len()).unwrap();
        stream[at..at + 4].copy_from_slice(&pos.to_le_bytes());
        stream.extend(bof(0x0010));
        for row in 0..*cells {
            let mut d = Vec::with_capacity(10);
            d.extend_from_slice(&u16::try_from(row).unwrap().to_le_bytes());
            d.extend_from_slice(&[0, 0, 0, 0]);
            d.extend_from_slice(&0u32.to_le_bytes());
            stream.extend(record(0x00FD, &d));
        }
        stream.extend(record(0x000A, &[]));
    }
    stream
}

/// A compound file (512-byte sectors) holding `stream` as its `Workbook`: the header, the
/// FAT, one directory sector, then the stream in the regular sectors (4,096 bytes or more)
/// or, shorter, in the mini stream (64-byte sectors, a mini FAT sector before them).
fn compound_file(stream: &[u8]) -> Vec<u8> {
    const END: u32 = 0xFFFF_FFFE;
    const FREE: u32 = 0xFFFF_FFFF;
    let mini = stream.len() < 4096;
    let minis = stream.len().div_ceil(64);
    assert!(!mini || minis <= 128, "one mini FAT sector");
    let stored = if mini { minis * 64 } else { stream.len() };
    let data = stored.div_ceil(512);
    let extra = usize::from(mini);
    let mut fat_sectors = 1;
    while fat_sectors * 128 < fat_sectors + 1 + extra + data {
        fat_sectors += 1;
    }
    assert!(fat_sectors <= 109, "no DIFAT here: a smaller stream");
    let dir = fat_sectors;
    let minifat = dir + 1;
    let first = dir + 1 + extra;
    let mut fat = vec![FREE; fat_sectors * 128];
    fat[..fat_sectors].fill(0xFFFF_FFFD);
    fat[dir] = END;
    if mini {
        fat[minifat] = END;
    }
    for i in 0..data {
        fat[first + i] = if i + 1 == data {
            END
        } else {
            u32::try_from(first + i + 1).unwrap()
        };
    }
    let mut header = vec![0u8; 512];
    header[..8].copy_from_slice(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    let mut put = |at: usize, v: &[u8]| header[at..at + v.len()].copy_from_slice(v);
    put(0x18, &0x003Eu16.to_le_bytes());
    put(0x1A, &3u16.to_le_bytes());
    put(0x1C, &0xFFFEu16.to_le_bytes());
    put(0x1E, &9u16.to_le_bytes());
    put(0x20, &6u16.to_le_bytes());
    put(0x2C, &u32::try_from(fat_sectors).unwrap().to_le_bytes());
    put(0x30, &u32::try_from(dir).unwrap().to_le_bytes());
    put(0x38, &4096u32.to_le_bytes());
    if mini {
        put(0x3C, &u32::try_from(minifat).unwrap().to_le_bytes());
        put(0x40, &1u32.to_le_bytes());
    } else {
        put(0x3C, &END.to_le_bytes());
    }
    put(0x44, &END.to_le_bytes());
    for i in 0..109 {
        let v = if i < fat_sectors {
            u32::try_from(i).unwrap()
        } else {
            FREE
        };
        put(0x4C + 4 * i, &v.to_le_bytes());
    }
    let entry = |name: &str, typ: u8, child: u32, start: u32, len: usize| {
        let mut e = vec![0u8; 128];
        let units: Vec<u8> = name
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        e[..units.len()].copy_from_slice(&units);
        e[64..66].copy_from_slice(&u16::try_from(units.len()).unwrap().to_le_bytes());
        e[66] = typ;
        e[67] = 1;
        e[68..72].copy_from_slice(&FREE.to_le_bytes());
        e[72..76].copy_from_slice(&FREE.to_le_bytes());
        e[76..80].copy_from_slice(&child.to_le_bytes());
        e[116..120].copy_from_slice(&start.to_le_bytes());
        e[120..124].copy_from_slice(&u32::try_from(len).unwrap().to_le_bytes());
        e
    };
    let first_id = u32::try_from(first).unwrap();
    let mut directory = if mini {
        let mut d = entry("Root Entry", 5, 1, first_id, stored);
        d.extend(entry("Workbook", 2, FREE, 0, stream.len()));
        d
    } else {
        let mut d = entry("Root Entry", 5, 1, END, 0);
        d.extend(entry("Workbook", 2, FREE, first_id, stream.len()));
        d
    };
    for _ in 0..2 {
        let mut unused = vec![0u8; 128];
        unused[68..80].fill(0xFF);
        directory.extend(unused);
    }
    let mut file = header;
    file.extend(fat.iter().flat_map(|v| v.to_le_bytes()));
    file.extend(directory);
    if mini {
        let mut chain = vec![FREE; 128];
        for (i, next) in chain.iter_mut().enumerate().take(minis) {
            *next = if i + 1 == minis {
                END
            } else {
                u32::try_from(i + 1).unwrap()
            };
        }
        file.extend(chain.iter().flat_map(|v| v.to_le_bytes()));
    }
    file.extend_from_slice(stream);
    file.resize(512 + (first + data) * 512, 0);
    file
}

/// An xls whose sheets (name, cells) each name one shared string of `len` characters.
fn xls(len: usize, sheets: &[(&str, u32)]) -> Vec<u8> {
    compound_file(&biff8_stream(&"x".repeat(len), sheets))
}

#[test]
fn the_generated_xls_is_one_calamine_reads() {
    // The builder is right (or the tests below would pass for a file calamine refuses).
    let bytes = xls(100, &[("Data", 300)]);
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
    use calamine::Reader as _;
    let range = book.worksheet_range("Data").unwrap();
    assert_eq!(range.get_size(), (300, 1));
    assert_eq!(
        range.get_value((299, 0)),
        Some(&calamine::Data::String("x".repeat(100)))
    );
}

#[test]
fn an_xls_naming_a_long_shared_string_past_the_budget_is_refused() {
    // 8,000 characters named by 40,000 cells (14 bytes a cell): 320 MB from 560 KB.
    let bytes = xls(8_000, &[("Data", 40_000)]);
    assert!(bytes.len() < 600_000, "{} bytes", bytes.len());
    for format in ["wide", "ru_sheet"] {
        assert_text_refused(format, &bytes, "Data");
    }
}

#[test]
fn an_xls_whose_sheets_together_pass_the_budget_is_refused() {
    // Three quarters of the budget a sheet: under it alone, past it together.
    let cells = u32::try_from(MAX_WORKBOOK_TEXT_BYTES / 8_000 * 3 / 4).unwrap();
    let bytes = xls(8_000, &[("One", cells), ("Two", cells)]);
    assert_text_refused("wide", &bytes, "Two");
}

#[test]
fn an_xls_with_shared_text_within_the_budget_reads() {
    let bytes = xls(1_000, &[("Data", 1_000)]);
    let e = parse("wide", &bytes, Some("x")).unwrap_err();
    // Read, and found not to be a wide table: not refused as too large.
    assert_eq!(e.code(), "bad_layout", "{e}");
}

/// The files `MAX_WORKBOOK_TEXT_BYTES` was chosen with, written to `$TEXT_BUDGET_OUT`.
#[test]
#[ignore = "writes measurement files; run by hand"]
fn write_measurement_files() {
    let Some(out) = std::env::var_os("TEXT_BUDGET_OUT") else {
        panic!("set TEXT_BUDGET_OUT to a directory");
    };
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out).unwrap();
    let limit = MAX_WORKBOOK_TEXT_BYTES;
    // Just under the budget: 1 KiB cells, 4 to a row; and short cells at the cell cap
    // (4 × 499,999 cells and the header's 2) as long as the budget allows.
    let long_rows = (limit - ODS_HEADER_TEXT) / (4 * 1024);
    let short = usize::try_from((limit - ODS_HEADER_TEXT) / 2_000_000).unwrap();
    let files = [
        (
            "ods_1k_under.ods",
            ods(&format!(
                "{ODS_HEADER_ROW}{}",
                ods_text_rows(1024, 4, long_rows)
            )),
        ),
        (
            "ods_cap_under.ods",
            ods(&format!(
                "{ODS_HEADER_ROW}{}",
                ods_text_rows(short, 4, 499_999)
            )),
        ),
        // Short and long cells at the cell cap: 8 bytes (15 MiB) and 64 bytes (122 MiB, past
        // the budget, for what such a file cost before the guard).
        (
            "ods_cap_8b.ods",
            ods(&format!("{ODS_HEADER_ROW}{}", ods_text_rows(8, 4, 499_999))),
        ),
        (
            "ods_cap_64b.ods",
            ods(&format!(
                "{ODS_HEADER_ROW}{}",
                ods_text_rows(64, 4, 499_999)
            )),
        ),
        // Past it: 1 KiB cells, twice and four times the budget; a cell of declared spaces.
        (
            "ods_1k_twice.ods",
            ods(&format!(
                "{ODS_HEADER_ROW}{}",
                ods_text_rows(1024, 4, 2 * long_rows)
            )),
        ),
        (
            "ods_1k_four_times.ods",
            ods(&format!(
                "{ODS_HEADER_ROW}{}",
                ods_text_rows(1024, 4, 4 * long_rows)
            )),
        ),
        (
            "ods_spaces_twice.ods",
            ods(&format!(
                "{ODS_HEADER_ROW}<table:table-row><table:table-cell \
                 office:value-type=\"string\"><text:p><text:s text:c=\"{}\"/></text:p>\
                 </table:table-cell></table:table-row>",
                2 * limit
            )),
        ),
        (
            "xls_8000_under.xls",
            xls(
                8_000,
                &[("Data", u32::try_from(limit / 8_000 - 1).unwrap())],
            ),
        ),
        ("xls_8000_40k.xls", xls(8_000, &[("Data", 40_000)])),
    ];
    for (name, bytes) in files {
        std::fs::write(out.join(name), bytes).unwrap();
    }
}

// ---- cells, all sheets together ---------------------------------------------------------

/// An ods of `sheets` sheets of numbers, each of `rows` rows of `columns` numbers (one cell
/// element in one row element, repeated), the last one `last` rows (the cells a workbook
/// holds, tuned to the cap), each cell `text` (a string of that text) when given, else the
/// number 1. With `header`, the first sheet (`Data`, the one `wide` reads) holds only the
/// header row, and the numbers follow in sheets of their own; without, the first sheet is
/// the first of them.
fn ods_number_sheets(
    header: bool,
    sheets: u64,
    rows: u64,
    last: u64,
    columns: u64,
    text: Option<&str>,
) -> Vec<u8> {
    let cell = match text {
        Some(t) => format!(
            "<table:table-cell table:number-columns-repeated=\"{columns}\" \
             office:value-type=\"string\"><text:p>{t}</text:p></table:table-cell>"
        ),
        None => format!(
            "<table:table-cell table:number-columns-repeated=\"{columns}\" \
             office:value-type=\"float\" office:value=\"1\"/>"
        ),
    };
    let mut xml = if header {
        ODS_HEADER_ROW.to_string()
    } else {
        String::new()
    };
    for i in 0..sheets {
        let r = if i + 1 == sheets { last } else { rows };
        if i > 0 || header {
            xml.push_str(&format!("</table:table><table:table table:name=\"N{i}\">"));
        }
        xml.push_str(&format!(
            "<table:table-row table:number-rows-repeated=\"{r}\">{cell}</table:table-row>"
        ));
    }
    ods(&xml)
}

/// A BIFF8 workbook stream of sheets of numbers: `sheets` the cells of each sheet (row,
/// column), `list` the workbook's sheet list (a name, the sheet it points at).
fn number_stream(sheets: &[&[(u16, u16)]], list: &[(&str, usize)]) -> Vec<u8> {
    let bof = |dt: u16| {
        let mut d = vec![0x00, 0x06];
        d.extend_from_slice(&dt.to_le_bytes());
        d.extend_from_slice(&[0; 12]);
        record(0x0809, &d)
    };
    let mut s = bof(0x0005);
    s.extend(record(0x0042, &1200u16.to_le_bytes()));
    let mut bound = Vec::new();
    for (name, sheet) in list {
        bound.push((s.len() + 4, *sheet));
        let mut d = vec![0; 4];
        d.extend_from_slice(&[0, 0, u8::try_from(name.len()).unwrap(), 0]);
        d.extend_from_slice(name.as_bytes());
        s.extend(record(0x0085, &d));
    }
    s.extend(record(0x000A, &[]));
    let mut at = Vec::new();
    for cells in sheets {
        at.push(u32::try_from(s.len()).unwrap());
        s.extend(bof(0x0010));
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

/// The corners of a sheet of `rows` rows of 250 numbers (calamine holds the range between).
fn corners(rows: u64) -> [(u16, u16); 2] {
    [(0, 0), (u16::try_from(rows - 1).unwrap(), 249)]
}

/// An xls whose sheet list names one sheet of `rows` rows of 250 numbers (two Number
/// records, at its corners) `entries` times, each entry a sheet calamine holds.
fn xls_listing_one_sheet(rows: u64, entries: usize) -> Vec<u8> {
    let names: Vec<String> = (0..entries).map(|i| format!("S{i}")).collect();
    let list: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 0)).collect();
    compound_file(&number_stream(&[&corners(rows)], &list))
}

/// A workbook (`bytes`) refused by the cell cap, all sheets together.
fn assert_cells_refused(format: &str, bytes: &[u8]) {
    let started = Instant::now();
    let e = parse(format, bytes, Some("x")).unwrap_err();
    assert!(
        matches!(e, IngestError::WorkbookTooLarge { found, limit, .. }
            if found > limit && limit == MAX_WORKBOOK_CELLS),
        "{format}: {e:?}"
    );
    assert_eq!(e.code(), "too_many_rows", "{e}");
    let message = e.to_string();
    assert!(
        message.contains(&MAX_WORKBOOK_CELLS.to_string()),
        "{message}"
    );
    assert!(message.contains("workbook"), "{message}");
    // Refused by walking the file: calamine never opened it (only the guards refuse with
    // WorkbookTooLarge), so the cells were never held; generous, for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_ods_whose_sheets_together_pass_the_cell_cap_is_refused_before_calamine_holds_them() {
    // Eight sheets of 1.9 million numbers, each within a sheet's cap: calamine held them all
    // (15 million cells) when it opened the file.
    let bytes = ods_number_sheets(true, 8, 1_900, 1_900, 1_000, None);
    const { assert!(1_900_000 <= MAX_SHEET_CELLS && 8 * 1_900_000 > MAX_WORKBOOK_CELLS) };
    assert!(bytes.len() < 8_000, "{} bytes", bytes.len());
    for format in ["wide", "ru_sheet"] {
        assert_cells_refused(format, &bytes);
    }
    assert!(parse("auto", &bytes, Some("x")).is_err());
}

#[test]
fn an_ods_whose_sheets_together_are_just_under_the_cell_cap_reads() {
    // Four sheets of numbers, 1,000 columns, a thousand cells under the cap in all.
    let per = MAX_WORKBOOK_CELLS / 4_000;
    let last = (MAX_WORKBOOK_CELLS - 1_000) / 1_000 - 3 * per;
    let bytes = ods_number_sheets(true, 4, per, last, 1_000, None);
    let p = parse("wide", &bytes, Some("x")).unwrap_or_else(|e| panic!("{e}"));
    // The header sheet is read: a header and no rows.
    assert_eq!((p.rows, p.rejected_total), (0, 0));
}

#[test]
fn the_generated_number_xls_is_one_calamine_reads() {
    // In the mini stream (a workbook stream under 4,096 bytes) and in the regular sectors,
    // each sheet list entry a sheet.
    use calamine::Reader as _;
    for entries in [3, 120] {
        let bytes = xls_listing_one_sheet(10, entries);
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(book.sheet_names().len(), entries);
        let range = book.worksheet_range(&format!("S{}", entries - 1)).unwrap();
        assert_eq!(range.get_size(), (10, 250));
    }
}

#[test]
fn an_xls_listing_one_sheet_past_the_cell_cap_is_refused() {
    // One sheet of 1.9 million cells (two records) named by eight sheet list entries: the
    // walk reads the file top to bottom no more, but as calamine does, a sheet an entry.
    let rows = 7_600;
    assert!(rows * 250 <= MAX_SHEET_CELLS && 8 * rows * 250 > MAX_WORKBOOK_CELLS);
    let bytes = xls_listing_one_sheet(rows, 8);
    assert!(bytes.len() < 3_000, "{} bytes", bytes.len());
    for format in ["wide", "ru_sheet"] {
        assert_cells_refused(format, &bytes);
    }
    // The same past the per-sheet cap, in the mini stream the guard did not read before.
    let e = parse("wide", &xls_listing_one_sheet(65_536, 1), Some("x")).unwrap_err();
    assert!(
        matches!(e, IngestError::SheetTooLarge { what: "cells", ref sheet, .. } if sheet == "S0"),
        "{e:?}"
    );
}

#[test]
fn an_xls_whose_sheets_together_are_just_under_the_cell_cap_reads() {
    // Four entries, each a quarter of the cap less a row.
    let rows = MAX_WORKBOOK_CELLS / 4 / 250 - 1;
    let bytes = xls_listing_one_sheet(rows, 4);
    let e = parse("wide", &bytes, Some("x")).unwrap_err();
    // Read, and found not to be a wide table: not refused as too large.
    assert_eq!(e.code(), "bad_layout", "{e}");
}

/// The files `MAX_WORKBOOK_CELLS` was chosen with, written to `$CELLS_OUT`.
#[test]
#[ignore = "writes measurement files; run by hand"]
fn write_cell_measurement_files() {
    let Some(out) = std::env::var_os("CELLS_OUT") else {
        panic!("set CELLS_OUT to a directory");
    };
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out).unwrap();
    let files = [
        // Numbers: one sheet at the sheet cap; the same cells or more over several sheets.
        (
            "ods_1x2000k.ods",
            ods_number_sheets(false, 1, 2_000, 2_000, 1_000, None),
        ),
        (
            "ods_2x1000k.ods",
            ods_number_sheets(false, 2, 1_000, 1_000, 1_000, None),
        ),
        (
            "ods_4x500k.ods",
            ods_number_sheets(false, 4, 500, 500, 1_000, None),
        ),
        (
            "ods_2x2000k.ods",
            ods_number_sheets(false, 2, 2_000, 2_000, 1_000, None),
        ),
        (
            "ods_4x600k.ods",
            ods_number_sheets(false, 4, 600, 600, 1_000, None),
        ),
        (
            "ods_4x1000k.ods",
            ods_number_sheets(false, 4, 1_000, 1_000, 1_000, None),
        ),
        (
            "ods_8x1900k.ods",
            ods_number_sheets(false, 8, 1_900, 1_900, 1_000, None),
        ),
        // The same in rows of 5 (reading a row costs more than its cells).
        (
            "ods5_1x2000k.ods",
            ods_number_sheets(false, 1, 400_000, 400_000, 5, None),
        ),
        (
            "ods5_4x500k.ods",
            ods_number_sheets(false, 4, 100_000, 100_000, 5, None),
        ),
        (
            "ods5_4x600k.ods",
            ods_number_sheets(false, 4, 120_000, 120_000, 5, None),
        ),
        (
            "ods5_2x2000k.ods",
            ods_number_sheets(false, 2, 400_000, 400_000, 5, None),
        ),
        (
            "ods5_4x1000k.ods",
            ods_number_sheets(false, 4, 200_000, 200_000, 5, None),
        ),
        (
            "ods5_8x1900k.ods",
            ods_number_sheets(false, 8, 380_000, 380_000, 5, None),
        ),
        // Text at both caps: 2 million cells of 33 bytes (63 MiB), over 1 and 4 sheets.
        (
            "ods_text_1x2000k.ods",
            ods_number_sheets(false, 1, 500_000, 500_000, 4, Some(&"t".repeat(33))),
        ),
        (
            "ods_text_4x500k.ods",
            ods_number_sheets(false, 4, 125_000, 125_000, 4, Some(&"t".repeat(33))),
        ),
        // xls: one sheet of 2 million cells (8,000 rows of 250), listed 1, 2, 4 and 8 times.
        ("xls_1x2000k.xls", xls_listing_one_sheet(8_000, 1)),
        ("xls_2x2000k.xls", xls_listing_one_sheet(8_000, 2)),
        ("xls_4x500k.xls", xls_listing_one_sheet(2_000, 4)),
        ("xls_8x1900k.xls", xls_listing_one_sheet(7_600, 8)),
        // Past a sheet's cap, in the mini stream (a workbook stream under 4,096 bytes).
        ("xls_1x16m.xls", xls_listing_one_sheet(65_536, 1)),
        ("xls_4x16m.xls", xls_listing_one_sheet(65_536, 4)),
    ];
    for (name, bytes) in files {
        std::fs::write(out.join(name), bytes).unwrap();
    }
}
