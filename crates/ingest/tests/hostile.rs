//! Hostile input (issue 13): files built to crash ingest, exhaust it or slip a wrong figure
//! past it. Each test failed on the code before its fix: it aborted, took seconds, or
//! accepted the row.

use borderwatch_ingest::formats::{MAX_SHEET_CELLS, MAX_SHEET_COLUMNS, MAX_SHEET_ROWS};
use borderwatch_ingest::{IngestError, Parsed, parse};

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

/// An ods whose one sheet `Data` has `rows` (the XML of its `table:table-row` elements).
fn ods(rows: &str) -> Vec<u8> {
    use std::io::Write as _;
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
