//! Hostile input (issue 13): files built to crash ingest, exhaust it or slip a wrong figure
//! past it. Each test failed on the code before its fix: it aborted, took seconds, or
//! accepted the row.

use borderwatch_ingest::formats::{MAX_SHEET_CELLS, MAX_SHEET_COLUMNS, MAX_SHEET_ROWS};
use borderwatch_ingest::{IngestError, Parsed, parse};

mod ods_support;
use ods_support::{ODS_HEADER_ROW, ods};

/// A workbook whose one sheet has cells at A1 and `far` (row, column): 1.6 KB that declares
/// a range of billions of cells.
fn sparse_workbook(far: (u32, u16)) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Data").unwrap();
    sheet.write_string(0, 0, "country").unwrap();
    sheet.write_number(far.0, far.1, 1.0).unwrap();
    workbook.save_to_buffer().unwrap()
}

#[test]
fn a_sheet_declaring_billions_of_cells_is_refused_not_allocated() {
    // A1 and XFD1048576: calamine's worksheet_range allocated 512 GiB and aborted.
    let bytes = sparse_workbook((1_048_575, 16_383));
    assert!(bytes.len() < 16_000, "{} bytes", bytes.len());
    // Detection reads every sheet: it must neither abort nor claim the file.
    let detected = parse("auto", &bytes, Some("x"));
    assert!(detected.is_err(), "{detected:?}");
    for format in ["wide", "ru_sheet", "ohss_xlsx"] {
        let e = parse(format, &bytes, Some("x")).unwrap_err();
        if format == "ohss_xlsx" {
            // No sheet of that name: refused before a cell is read.
            assert_eq!(e.code(), "bad_layout", "{e}");
            continue;
        }
        assert!(
            matches!(e, IngestError::SheetTooLarge { ref sheet, what: "columns", limit, .. }
                if sheet == "Data" && limit == u64::from(MAX_SHEET_COLUMNS)),
            "{format}: {e:?}"
        );
        assert_eq!(e.code(), "too_many_rows", "{e}");
        assert!(e.to_string().contains("\"Data\""), "{e}");
        assert!(e.to_string().contains("4096 columns"), "{e}");
    }
}

#[test]
fn a_cell_past_the_row_cap_is_refused_within_the_column_cap() {
    // The last row xlsx has is within the cap; a wide table far down still reads.
    const { assert!(MAX_SHEET_ROWS >= 1_048_576) };
    let bytes = sparse_workbook((1_048_575, 3));
    let p: Result<Parsed, _> = parse("wide", &bytes, Some("x"));
    // Not a wide table (no period columns), but read: a layout error, not a size error.
    let e = p.unwrap_err();
    assert_eq!(e.code(), "bad_layout", "{e}");
}

const HEADER: &str = "source,period,country,category,count\n";

fn generic(rows: &str) -> Parsed {
    parse("generic", format!("{HEADER}{rows}").as_bytes(), None)
        .unwrap_or_else(|e| panic!("file refused: {e}"))
}

#[test]
fn years_outside_1900_to_2100_are_rejected_rows() {
    // `0999` was kept and printed `999`, which no period parser reads back.
    let p = generic(
        "fsb,0999,FRA,work,1\nfsb,9999-Q4,FRA,work,1\nfsb,1899-12,FRA,work,1\nfsb,2024-Q1,FRA,work,5\n",
    );
    assert_eq!(p.observations.len(), 1, "{:?}", p.observations);
    assert_eq!(p.observations[0].period.to_string(), "2024-Q1");
    let rejected: Vec<(u64, &str, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.row, r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (2, "period", "0999"),
            (3, "period", "9999-Q4"),
            (4, "period", "1899-12")
        ]
    );
    assert!(
        p.rejected[0].reason.contains("outside 1900-2100"),
        "{:?}",
        p.rejected[0]
    );
}

#[test]
fn counts_above_a_trillion_are_rejected_rows() {
    // Up to 2^64-1 was kept, and the yearly sum of four such quarters overflowed.
    let p = generic(
        "fsb,2024-Q1,FRA,work,1000000000000\nfsb,2024-Q2,FRA,work,1000000000001\n\
         fsb,2024-Q3,FRA,work,18446744073709551615\n",
    );
    assert_eq!(p.observations.len(), 1, "{:?}", p.observations);
    assert_eq!(p.observations[0].count, 1_000_000_000_000);
    assert_eq!(p.rejected.len(), 2, "{:?}", p.rejected);
    for r in &p.rejected {
        assert_eq!(r.column, "count");
        assert!(r.reason.contains("1000000000000"), "{r:?}");
    }
}

#[test]
fn punctuated_names_are_rejected_not_merged() {
    // `e1.x` became `e1x`: two names, one series, and a conflict or a silent sum.
    let p = generic("fsb,2024-Q1,FRA,e1.x,1\nfsb,2024-Q1,FRA,e1x,2\n");
    assert_eq!(p.observations.len(), 1, "{:?}", p.observations);
    assert_eq!(p.observations[0].category, "e1x");
    assert_eq!(p.rejected.len(), 1, "{:?}", p.rejected);
    assert_eq!(
        (p.rejected[0].row, p.rejected[0].value.as_str()),
        (2, "e1.x")
    );
}

#[test]
fn deeply_nested_sdmx_is_refused_at_the_depth_limit() {
    // Depth 40,000 took 8.8 s: the element stack was scanned per element.
    let depth = 40_000;
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<GenericData \
         xmlns=\"http://www.SDMX.org/resources/SDMXML/schemas/v1_0/message\">",
    );
    xml.push_str(&"<a>".repeat(depth));
    xml.push_str(&"</a>".repeat(depth));
    xml.push_str("</GenericData>");
    let e = parse("emiss_sdmx", xml.as_bytes(), Some("x")).unwrap_err();
    assert_eq!(e.code(), "bad_layout", "{e}");
    assert!(e.to_string().contains("nest more than 64 deep"), "{e}");
}

#[test]
fn a_row_of_another_frequency_is_rejected_not_a_switch_of_its_series() {
    // One monthly row turned a quarterly series monthly in analytics (`freq.min()`), and
    // its quarters dropped out of detection.
    let p = generic(
        "fsb,2023-Q4,FRA,work,10\nfsb,2024-01,FRA,work,3\nfsb,2024-Q1,FRA,work,11\n\
         fsb,2024,FRA,work,40\nfsb,2024-02,FRA,study,5\nfsb,2024-Q2,FRA,study,6\n",
    );
    let kept: Vec<String> = p
        .observations
        .iter()
        .map(|o| format!("{} {}", o.category, o.period))
        .collect();
    // A year figure joins a quarterly series (a total); the first sub-year figure of a
    // series sets its frequency.
    assert_eq!(
        kept,
        ["work 2023-Q4", "work 2024-Q1", "work 2024", "study 2024-02"]
    );
    let rejected: Vec<(u64, &str, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.row, r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [(3, "period", "2024-01"), (7, "period", "2024-Q2")]
    );
    let reason = &p.rejected[0].reason;
    assert!(
        reason.contains("fsb/FRA/work is quarterly in this file (from line 2)")
            && reason.contains("a monthly figure (2024-01)"),
        "{reason}"
    );
}

#[test]
fn rejected_rows_are_kept_up_to_a_thousand_and_counted_beyond() {
    // A 25 MB file of bad rows answered with 141 MB of JSON.
    let mut rows = String::new();
    for i in 0..2_500 {
        rows.push_str(&format!("fsb,2024-Q1,FRA,work,bad{i}\n"));
    }
    rows.push_str("fsb,2024-Q1,FRA,work,1\n");
    let p = generic(&rows);
    assert_eq!(p.observations.len(), 1);
    assert_eq!(
        p.rejected.len(),
        borderwatch_ingest::rows::MAX_REJECTED_KEPT
    );
    assert_eq!(p.rejected.len(), 1_000);
    assert_eq!(p.rejected_total, 2_500);
    assert_eq!(
        p.rejected[999].value, "bad999",
        "the first rows are the ones kept"
    );
    assert_eq!(p.rows, 2_501);
}

#[test]
fn other_not_specified_and_stateless_rows_stay_apart() {
    // "Others" and "Not specified" were both ZZO: the second row conflicted and was dropped.
    let p = generic(
        "fsb,2024-Q1,Others,work,5\nfsb,2024-Q1,Not specified,work,7\n\
         fsb,2024-Q1,Stateless,work,2\nfsb,2024-Q1,Total,work,14\n",
    );
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    let countries: Vec<&str> = p.observations.iter().map(|o| o.country.code()).collect();
    assert_eq!(countries, ["ZZO", "ZZU", "ZZS", "ZZT"]);
    assert!(p.observations.iter().all(|o| o.country.is_aggregate()));
}

#[test]
fn agency_spellings_with_diacritics_and_articles_read() {
    let p = generic(
        "fsb,2024-Q1,Côte d'Ivoire,work,1\nfsb,2024-Q1,The Gambia,work,2\n\
         fsb,2024-Q1,Republic of Korea,work,3\nfsb,2024-Q1,\"Korea, Republic of\",study,4\n\
         fsb,2024-Q1,\"Gambia, The\",study,5\nfsb,2024-Q1,COTE D'IVOIRE,study,6\n",
    );
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    let countries: Vec<&str> = p.observations.iter().map(|o| o.country.code()).collect();
    assert_eq!(countries, ["CIV", "GMB", "KOR", "KOR", "GMB", "CIV"]);
}

#[test]
fn an_ods_repeating_a_row_of_numbers_is_refused_before_calamine_expands_it() {
    // One row of 16,384 numbers repeated 6,000 times: 98 million cells, under calamine's own
    // cap of 100 million, which it allocated (some 5 GiB with the formulas beside them).
    let bytes = ods(&format!(
        "{ODS_HEADER_ROW}<table:table-row table:number-rows-repeated=\"6000\">\
         <table:table-cell table:number-columns-repeated=\"16384\" office:value-type=\"float\" \
         office:value=\"1\"><text:p>1</text:p></table:table-cell></table:table-row>"
    ));
    assert!(bytes.len() < 4_000, "{} bytes", bytes.len());
    // Detection claims no ods: refused, without opening it.
    assert!(parse("auto", &bytes, Some("x")).is_err());
    for format in ["wide", "ru_sheet", "ohss_xlsx"] {
        let e = parse(format, &bytes, Some("x")).unwrap_err();
        assert!(
            matches!(e, IngestError::SheetTooLarge { ref sheet, what: "columns", .. }
                if sheet == "Data"),
            "{format}: {e:?}"
        );
    }
    // Within the columns, the repeats alone: 4,000 columns by 6,000 rows.
    let bytes = ods(&format!(
        "{ODS_HEADER_ROW}<table:table-row table:number-rows-repeated=\"6000\">\
         <table:table-cell table:number-columns-repeated=\"4000\" office:value-type=\"float\" \
         office:value=\"1\"><text:p>1</text:p></table:table-cell></table:table-row>"
    ));
    let e = parse("wide", &bytes, Some("x")).unwrap_err();
    assert!(
        matches!(e, IngestError::SheetTooLarge { what: "cells", limit, .. }
            if limit == MAX_SHEET_CELLS),
        "{e:?}"
    );
    assert_eq!(e.code(), "too_many_rows", "{e}");
}

#[test]
fn an_ods_with_many_rows_of_repeated_cells_is_refused_by_the_cells_they_push() {
    // calamine pushes every row element's cells as it reads, with no cap on the sheet:
    // 25,000 rows of 4,096 cells (a 40 KB file) took some 5 GiB before its cap of 100
    // million cells refused them.
    let row = "<table:table-row><table:table-cell table:number-columns-repeated=\"4096\" \
               office:value-type=\"float\" office:value=\"2\"/></table:table-row>";
    let bytes = ods(&format!("{ODS_HEADER_ROW}{}", row.repeat(25_000)));
    assert!(bytes.len() < 60_000, "{} bytes", bytes.len());
    let e = parse("wide", &bytes, Some("x")).unwrap_err();
    assert!(
        matches!(e, IngestError::SheetTooLarge { what: "cells", .. }),
        "{e:?}"
    );
}

#[test]
fn an_ods_with_the_usual_trailing_empty_rows_and_columns_still_reads() {
    // Spreadsheet programs pad a sheet to its full size with empty repeated cells and rows;
    // calamine drops them, and so must the guard's count.
    let figures = "<table:table-row>\
        <table:table-cell office:value-type=\"string\"><text:p>Syria</text:p></table:table-cell>\
        <table:table-cell office:value-type=\"float\" office:value=\"120\"><text:p>120</text:p>\
        </table:table-cell><table:table-cell table:number-columns-repeated=\"16382\"/>\
        </table:table-row>";
    let padding = "<table:table-row table:number-rows-repeated=\"1048574\">\
        <table:table-cell table:number-columns-repeated=\"16384\"/></table:table-row>";
    let bytes = ods(&format!("{ODS_HEADER_ROW}{figures}{padding}"));
    let p = parse("wide", &bytes, Some("frontex")).unwrap();
    assert_eq!(p.observations.len(), 1, "{p:?}");
    assert_eq!(p.observations[0].count, 120);
    assert_eq!(p.observations[0].period.to_string(), "2024-01");
}

/// Bits of a deflate stream, least significant first; Huffman codes go most significant
/// bit first (RFC 1951, 3.1.1).
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u64, len: u32) {
        let reversed = (0..len).fold(0, |r, i| (r << 1) | ((code >> i) & 1));
        self.put(reversed, len);
    }

    fn align(&mut self) {
        if self.n > 0 {
            self.put(0, 8 - self.n);
        }
    }

    /// A stored block of `bytes` (at most 65,535).
    fn stored(&mut self, bytes: &[u8], last: bool) {
        self.put(u64::from(last), 1);
        self.put(0, 2);
        self.align();
        let len = bytes.len() as u16;
        self.out.extend(len.to_le_bytes());
        self.out.extend((!len).to_le_bytes());
        self.out.extend(bytes);
    }
}

/// A deflate stream that inflates to `prefix`, then `1 + 258 * repeats` letters `a`, then
/// `suffix`: the letters are one literal and `repeats` copies of the longest match at
/// distance 1, each two bits long (a dynamic Huffman block whose only codes are `a`, the
/// end of the block, length 258 and distances 1 and 2), so 600 MiB of them take 600 KiB.
fn deflate_bomb(prefix: &[u8], repeats: u64, suffix: &[u8]) -> Vec<u8> {
    let mut b = Bits::default();
    b.stored(prefix, false);
    b.put(0, 1); // not the last block
    b.put(2, 2); // dynamic Huffman codes
    b.put(286 - 257, 5); // literal/length codes 0..=285
    b.put(2 - 1, 5); // distance codes 0 and 1
    b.put(18 - 4, 4); // code length code lengths given, in their order:
    // 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1: symbol 18 (zeros) is `0`, 1 is `10`, 2 is `11`.
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        b.put(len, 3);
    }
    let zeros = |b: &mut Bits, n: u64| {
        b.code(0, 1);
        b.put(n - 11, 7);
    };
    zeros(&mut b, 97); // literals 0..=96
    b.code(0b11, 2); // `a` (97): length 2
    zeros(&mut b, 138); // 98..=235
    zeros(&mut b, 20); // 236..=255
    b.code(0b11, 2); // end of block (256): length 2
    zeros(&mut b, 28); // 257..=284
    b.code(0b10, 2); // length 258 (285): length 1
    b.code(0b10, 2); // distance 1: length 1
    b.code(0b10, 2); // distance 2: length 1
    // Codes: 285 is `0`, `a` is `10`, end of block `11`; distance 1 is `0`.
    b.code(0b10, 2);
    let mut left = repeats * 2;
    while left > 0 {
        let n = left.min(56);
        b.put(0, n as u32);
        left -= n;
    }
    b.code(0b11, 2);
    b.stored(suffix, true);
    b.align();
    b.out
}

/// A zip archive of `parts` (name, method, CRC-32, packed bytes, declared unpacked size),
/// written by hand so that a part may declare any size.
fn zip_by_hand(parts: &[(String, u16, u32, Vec<u8>, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for (name, method, crc, data, size) in parts {
        let offset = out.len() as u32;
        let fields = |v: &mut Vec<u8>| {
            v.extend(20u16.to_le_bytes()); // version needed
            v.extend(0u16.to_le_bytes()); // flags
            v.extend(method.to_le_bytes());
            v.extend(0u16.to_le_bytes()); // time
            v.extend(0x21u16.to_le_bytes()); // date: 1980-01-01
            v.extend(crc.to_le_bytes());
            v.extend((data.len() as u32).to_le_bytes());
            v.extend(size.to_le_bytes());
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra field
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        fields(&mut out);
        out.extend(name.as_bytes());
        out.extend(data);
        directory.extend(0x0201_4b50u32.to_le_bytes());
        directory.extend(20u16.to_le_bytes()); // made by
        fields(&mut directory);
        directory.extend([0u8; 6]); // comment length, disk, internal attributes
        directory.extend(0u32.to_le_bytes()); // external attributes
        directory.extend(offset.to_le_bytes());
        directory.extend(name.as_bytes());
    }
    let at = out.len() as u32;
    out.extend(&directory);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((parts.len() as u16).to_le_bytes());
    out.extend((parts.len() as u16).to_le_bytes());
    out.extend((directory.len() as u32).to_le_bytes());
    out.extend(at.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A real xlsx (a string cell, so it has shared strings) whose `xl/sharedStrings.xml` is
/// replaced by one string of 600 MiB of `a`, declared as `declared` bytes unpacked (`None`:
/// its true size).
fn xlsx_with_huge_shared_strings(declared: Option<u32>) -> Vec<u8> {
    use std::io::Read as _;
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Data").unwrap();
    sheet.write_string(0, 0, "country").unwrap();
    sheet.write_string(1, 0, "Syria").unwrap();
    sheet.write_number(1, 1, 120.0).unwrap();
    let real = workbook.save_to_buffer().unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(real)).unwrap();
    let mut parts = Vec::new();
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).unwrap();
        let name = part.name().unwrap().to_string();
        if name == "xl/sharedStrings.xml" {
            continue;
        }
        let mut data = Vec::new();
        part.read_to_end(&mut data).unwrap();
        let size = data.len() as u32;
        parts.push((name, 0u16, part.crc32(), data, size));
    }
    let prefix = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2" uniqueCount="2"><si><t>"#;
    let suffix = b"</t></si><si><t>Syria</t></si></sst>";
    let repeats = (600u64 << 20) / 258;
    let unpacked = prefix.len() as u64 + 1 + 258 * repeats + suffix.len() as u64;
    let packed = deflate_bomb(prefix, repeats, suffix);
    let size = declared.unwrap_or(u32::try_from(unpacked).unwrap());
    // The checksum is left wrong: computing it means reading 600 MiB, and a reader that
    // checks it has read them all by then.
    parts.push(("xl/sharedStrings.xml".into(), 8, 0, packed, size));
    zip_by_hand(&parts)
}

#[test]
fn an_xlsx_whose_shared_strings_unpack_past_the_cap_is_refused() {
    // 600 KiB that unpacks to 600 MiB: calamine reads the shared strings whole when the
    // workbook opens, whatever they unpack to.
    let bytes = xlsx_with_huge_shared_strings(None);
    assert!(bytes.len() < 700 << 10, "{} bytes", bytes.len());
    assert!(parse("auto", &bytes, Some("x")).is_err());
    for format in ["wide", "ru_sheet", "ohss_xlsx"] {
        let e = parse(format, &bytes, Some("x")).unwrap_err();
        assert_eq!(e.code(), "bad_layout", "{format}: {e}");
        assert!(
            e.to_string().contains("unpack to more than 512 MiB"),
            "{format}: {e}"
        );
    }
}

#[test]
fn an_xlsx_part_that_declares_a_small_size_stops_there() {
    // The guard counts declared sizes: the zip reader calamine reads through must stop a
    // part at its declared size, whatever its deflate stream holds.
    use std::io::Read as _;
    let bytes = xlsx_with_huge_shared_strings(Some(4_096));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.as_slice())).unwrap();
    let part = zip.by_name("xl/sharedStrings.xml").unwrap();
    let (mut read, mut buf) = (0u64, vec![0u8; 1 << 16]);
    let mut part = part.take(1 << 30);
    let stopped = loop {
        match part.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => read += n as u64,
            Err(e) => break Some(e),
        }
    };
    assert!(
        read <= 4_096,
        "{read} bytes came out of a part declaring 4,096"
    );
    let stopped = stopped.expect("the part is refused past its declared size");
    assert!(stopped.to_string().contains("declared"), "{stopped}");
    // And the workbook is refused, not read.
    let e = parse("wide", &bytes, Some("x")).unwrap_err();
    assert_eq!(e.code(), "bad_layout", "{e}");
}
