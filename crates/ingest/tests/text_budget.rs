//! The text budget of an ods or xls workbook (`MAX_WORKBOOK_TEXT_BYTES`): calamine expands a
//! workbook's repeated or shared text whole when it opens it, so small files whose text
//! repeats past the budget are refused before, by the guards' walks, fast and without the
//! memory; files just under it are not refused by them.
//!
//! `write_measurement_files` (ignored) writes the files the budget was chosen with, for
//! `borderwatch analyze` (see `MAX_WORKBOOK_TEXT_BYTES`):
//! `TEXT_BUDGET_OUT=/tmp/tb cargo test -p borderwatch-ingest --test text_budget -- --ignored`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use borderwatch_ingest::formats::MAX_WORKBOOK_TEXT_BYTES;
use borderwatch_ingest::{IngestError, parse};

/// An ods whose one sheet `Data` has `rows` (the XML of its `table:table-row` elements).
fn ods(rows: &str) -> Vec<u8> {
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <office:document-content \
          xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
          xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
          xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\">\
         <office:body><office:spreadsheet><table:table table:name=\"Data\">{rows}</table:table>\
         </office:spreadsheet></office:body></office:document-content>"
    );
    let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\">\
        <manifest:file-entry manifest:full-path=\"/\" \
         manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/>\
        <manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/>\
        </manifest:manifest>";
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body, options) in [
        (
            "mimetype",
            "application/vnd.oasis.opendocument.spreadsheet",
            stored,
        ),
        ("META-INF/manifest.xml", manifest, deflated),
        ("content.xml", content.as_str(), deflated),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

const ODS_HEADER_ROW: &str = "<table:table-row>\
    <table:table-cell office:value-type=\"string\"><text:p>country</text:p></table:table-cell>\
    <table:table-cell office:value-type=\"string\"><text:p>2024-01</text:p></table:table-cell>\
    </table:table-row>";

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

/// A compound file (512-byte sectors) holding `stream` as its `Workbook` (4,096 bytes or
/// more, so that it is in the regular sectors): the header, the FAT, one directory sector,
/// the stream.
fn compound_file(stream: &[u8]) -> Vec<u8> {
    const END: u32 = 0xFFFF_FFFE;
    const FREE: u32 = 0xFFFF_FFFF;
    assert!(stream.len() >= 4096);
    let data = stream.len().div_ceil(512);
    let mut fat_sectors = 1;
    while fat_sectors * 128 < fat_sectors + 1 + data {
        fat_sectors += 1;
    }
    assert!(fat_sectors <= 109, "no DIFAT here: a smaller stream");
    let dir = fat_sectors;
    let first = fat_sectors + 1;
    let mut fat = vec![FREE; fat_sectors * 128];
    fat[..fat_sectors].fill(0xFFFF_FFFD);
    fat[dir] = END;
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
    put(0x3C, &END.to_le_bytes());
    put(0x44, &END.to_le_bytes());
    for i in 0..109 {
        let v = if i < fat_sectors {
            u32::try_from(i).unwrap()
        } else {
            FREE
        };
        put(0x4C + 4 * i, &v.to_le_bytes());
    }
    let entry = |name: &str, typ: u8, child: u32, start: u32, len: u32| {
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
        e[120..124].copy_from_slice(&len.to_le_bytes());
        e
    };
    let mut directory = entry("Root Entry", 5, 1, END, 0);
    directory.extend(entry(
        "Workbook",
        2,
        FREE,
        u32::try_from(first).unwrap(),
        u32::try_from(stream.len()).unwrap(),
    ));
    for _ in 0..2 {
        let mut unused = vec![0u8; 128];
        unused[68..80].fill(0xFF);
        directory.extend(unused);
    }
    let mut file = header;
    file.extend(fat.iter().flat_map(|v| v.to_le_bytes()));
    file.extend(directory);
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
