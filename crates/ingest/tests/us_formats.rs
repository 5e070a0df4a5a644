//! The US formats on the real files: CBP encounters (`cbp_csv`) and DHS OHSS Border Patrol
//! encounters (`ohss_xlsx`, `ohss_csv`). Expected figures were summed by hand with awk from
//! the files in testdata/borders (commands beside each).

mod us_eu_support;

use std::collections::BTreeMap;

use borderwatch_ingest::ParseLimits;
use borderwatch_ingest::formats::detect;
use borderwatch_ingest::{IngestError, Parsed, parse};
use borderwatch_model::{Country, TOTAL_CATEGORY};
use proptest::prelude::*;
use us_eu_support::{Edit, figure, mutate, pieces_text, read};

const SW: &str = "cbp_sw_land_border_encounters_fy22-fy25aug.csv";
const NATIONWIDE: &str = "cbp_nationwide_encounters_aor_sample_tidytuesday.csv";
const OHSS_XLSX: &str = "ohss_khsm_encounters_usbp_fy25m11.xlsx";
const OHSS_CSV: &str = "ohss_usbp_encounters_monthly_citizenship_fy2000-fy2025m11.csv";

fn parse_file(format: &str, name: &str) -> Parsed {
    parse(format, &read(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every value of one column of a real CSV.
fn column(name: &str, header: &str) -> Vec<String> {
    let bytes = read(name);
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let i = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == header)
        .unwrap_or_else(|| panic!("{name} has no column {header}"));
    reader
        .records()
        .map(|r| r.unwrap()[i].to_string())
        .collect()
}

#[test]
fn cbp_southwest_sums_match_figures_summed_by_hand() {
    let p = parse_file("cbp_csv", SW);
    // awk -F, '$1=="2025 (FYTD)" && $3=="OCT" && $6=="Mexico" {s+=$9} END{print s}'  (7 rows)
    assert_eq!(
        figure(&p, "cbp_sw", "MEX", "total", "2024-10"),
        Some(36_083)
    );
    // awk -F, '$1=="2023" && $3=="MAY" && $6=="Honduras" && $8=="Apprehensions" {s+=$9}'  (3 rows)
    assert_eq!(
        figure(&p, "cbp_sw", "HND", "apprehensions", "2023-05"),
        Some(13_252)
    );
    // awk -F, '$1=="2022" && $3=="DEC" && $6=="Other" && $8=="Inadmissibles" {s+=$9}'  (4 rows)
    assert_eq!(
        figure(&p, "cbp_sw", "ZZO", "inadmissibles", "2021-12"),
        Some(3_485)
    );
}

#[test]
fn cbp_southwest_whole_file_is_read_and_nothing_is_lost() {
    let p = parse_file("cbp_csv", SW);
    assert!(
        p.rejected.is_empty(),
        "{:?}",
        &p.rejected[..p.rejected.len().min(5)]
    );
    assert_eq!((p.rows, p.duplicates), (1936, 0));
    // 235 citizenship-months (total) and 570 citizenship-month-types, counted with awk.
    let totals: Vec<_> = p
        .observations
        .iter()
        .filter(|o| o.category == TOTAL_CATEGORY)
        .collect();
    assert_eq!(totals.len(), 235);
    assert_eq!(p.observations.len(), 235 + 570);
    // awk -F, 'NR>1{s+=$9} END{print s}': every encounter in the file, once in each view.
    assert_eq!(totals.iter().map(|o| o.count).sum::<u64>(), 7_421_677);
    let by_type: u64 = p
        .observations
        .iter()
        .filter(|o| o.category != TOTAL_CATEGORY)
        .map(|o| o.count)
        .sum();
    assert_eq!(by_type, 7_421_677);
    let mut categories: Vec<&str> = p.observations.iter().map(|o| o.category.as_str()).collect();
    categories.sort();
    categories.dedup();
    assert_eq!(
        categories,
        ["apprehensions", "expulsions", "inadmissibles", "total"]
    );
    // FY2022 starts in October 2021; `2025 (FYTD)` runs to August 2025.
    let first = p.observations.iter().map(|o| o.period).min().unwrap();
    let last = p.observations.iter().map(|o| o.period).max().unwrap();
    assert_eq!(
        (first.to_string(), last.to_string()),
        ("2021-10".into(), "2025-08".into())
    );
}

#[test]
fn cbp_nationwide_sums_offices_and_reads_capitalised_citizenships() {
    let p = parse_file("cbp_csv", NATIONWIDE);
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    assert_eq!(p.rows, 31);
    assert!(p.observations.iter().all(|o| o.source == "cbp_nationwide"));
    // "CHINA, PEOPLES REPUBLIC OF", FY2020 APR: Boston 1 expulsion and 0 inadmissibles,
    // Atlanta 108 inadmissibles.
    assert_eq!(
        figure(&p, "cbp_nationwide", "CHN", "inadmissibles", "2020-04"),
        Some(108)
    );
    assert_eq!(
        figure(&p, "cbp_nationwide", "CHN", "expulsions", "2020-04"),
        Some(1)
    );
    assert_eq!(
        figure(&p, "cbp_nationwide", "CHN", "total", "2020-04"),
        Some(109)
    );
    // PHILIPPINES: Boston 1, Atlanta 523, Houston 2775.
    assert_eq!(
        figure(&p, "cbp_nationwide", "PHL", "total", "2020-04"),
        Some(3299)
    );
    assert_eq!(
        figure(&p, "cbp_nationwide", "MMR", "total", "2020-04"),
        Some(37)
    );
    // OTHER: Boston 1 + 6, Buffalo 18 + 23.
    assert_eq!(
        figure(&p, "cbp_nationwide", "ZZO", "total", "2020-04"),
        Some(48)
    );
}

#[test]
fn every_citizenship_in_the_us_files_resolves() {
    for (name, header) in [
        (SW, "Citizenship Grouping"),
        (NATIONWIDE, "citizenship"),
        (OHSS_CSV, "citizenship"),
    ] {
        let mut values = column(name, header);
        values.sort();
        values.dedup();
        assert!(values.len() >= 5, "{name}: {values:?}");
        let unknown: Vec<&String> = values
            .iter()
            .filter(|v| Country::parse(v).is_err())
            .collect();
        assert!(unknown.is_empty(), "{name}: no country for {unknown:?}");
    }
    // The groupings that are not one country are kept apart: "other" and "unknown" each
    // with a code of its own (a file may give both).
    assert_eq!(Country::parse("OTHER").unwrap(), Country::OTHER);
    assert_eq!(Country::parse("Unknown").unwrap(), Country::UNKNOWN);
}

#[test]
fn cbp_row_with_a_bad_count_is_rejected_and_its_sums_withheld() {
    let text = "Fiscal Year,Month Grouping,Month (abbv),Component,Demographic,Citizenship Grouping,Title of Authority,Encounter Type,Encounter Count\n\
        2024,FYTD,OCT,U.S. Border Patrol,FMUA,Mexico,Title 8,Apprehensions,10\n\
        2024,FYTD,OCT,U.S. Border Patrol,UAC,Mexico,Title 8,Apprehensions,1O\n\
        2024,FYTD,OCT,Office of Field Operations,FMUA,Mexico,Title 8,Inadmissibles,5\n\
        2024,FYTD,OCT,U.S. Border Patrol,FMUA,Atlantis,Title 8,Apprehensions,7\n\
        2024,FYTD,OCT,U.S. Border Patrol,FMUA,Honduras,Title 8,Apprehensions,3\n";
    let p = parse("cbp_csv", text.as_bytes(), None).unwrap();
    // Mexico's apprehensions and total would be short by the unreadable row: withheld.
    assert_eq!(
        figure(&p, "cbp_sw", "MEX", "apprehensions", "2023-10"),
        None
    );
    assert_eq!(figure(&p, "cbp_sw", "MEX", "total", "2023-10"), None);
    assert_eq!(
        figure(&p, "cbp_sw", "MEX", "inadmissibles", "2023-10"),
        Some(5)
    );
    assert_eq!(figure(&p, "cbp_sw", "HND", "total", "2023-10"), Some(3));
    let bad = p
        .rejected
        .iter()
        .find(|r| r.row == 3 && r.column == "Encounter Count")
        .unwrap();
    assert_eq!(bad.value, "1O");
    assert!(bad.reason.contains("not a count"), "{}", bad.reason);
    let withheld: Vec<&str> = p
        .rejected
        .iter()
        .filter(|r| r.row == 3 && r.column.is_empty())
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(withheld.len(), 2, "{withheld:?}");
    assert!(
        withheld
            .iter()
            .any(|r| r.starts_with("cbp_sw/MEX/total 2023-10 is not ingested"))
    );
    let atlantis = p.rejected.iter().find(|r| r.row == 5).unwrap();
    assert_eq!(
        (atlantis.column.as_str(), atlantis.value.as_str()),
        ("Citizenship Grouping", "Atlantis")
    );
    assert!(
        atlantis.reason.contains("not a known country"),
        "{}",
        atlantis.reason
    );
}

#[test]
fn cbp_unquoted_comma_rejects_the_row_and_withholds_its_sums() {
    let text = "fiscal_year,month_abbv,citizenship,encounter_type,encounter_count\n\
                2020,APR,\"CHINA, PEOPLES REPUBLIC OF\",Inadmissibles,108\n\
                2020,APR,CHINA, PEOPLES REPUBLIC OF,Inadmissibles,5\n\
                2020,APR,CHINA,Expulsions,1\n\
                2020,APR,INDIA,Inadmissibles,3\n";
    let p = parse("cbp_csv", text.as_bytes(), None).unwrap();
    let r = &p.rejected[0];
    assert_eq!((r.row, r.column.as_str()), (3, ""));
    assert!(r.reason.contains("expected 5 fields"), "{}", r.reason);
    assert!(
        r.reason.contains("must be in double quotes"),
        "{}",
        r.reason
    );
    // China's inadmissibles and total would miss the 5 of line 3: withheld, not published
    // as 108 and 109.
    assert_eq!(
        figure(&p, "cbp_sw", "CHN", "inadmissibles", "2020-04"),
        None
    );
    assert_eq!(figure(&p, "cbp_sw", "CHN", "total", "2020-04"), None);
    assert_eq!(
        figure(&p, "cbp_sw", "CHN", "expulsions", "2020-04"),
        Some(1)
    );
    assert_eq!(figure(&p, "cbp_sw", "IND", "total", "2020-04"), Some(3));
    assert_eq!(p.rejected.len(), 3, "{:?}", p.rejected);
}

#[test]
fn cbp_total_rows_are_left_out_not_counted_twice() {
    let text = "fiscal_year,month_abbv,citizenship,encounter_type,encounter_count\n\
                2024,JAN,CUBA,Expulsions,4\n\
                2024,JAN,CUBA,Apprehensions,6\n\
                2024,JAN,CUBA,Total,10\n";
    let p = parse("cbp_csv", text.as_bytes(), None).unwrap();
    assert_eq!(figure(&p, "cbp_sw", "CUB", "total", "2024-01"), Some(10));
    assert_eq!(p.observations.len(), 3);
    let r = &p.rejected[0];
    assert_eq!(
        (r.row, r.column.as_str(), r.value.as_str()),
        (4, "encounter_type", "Total")
    );
    assert_eq!(p.rejected.len(), 1);
}

#[test]
fn cbp_exact_repeat_is_counted_once_and_a_changed_repeat_rejected() {
    let header = "fiscal_year,month_abbv,citizenship,encounter_type,encounter_count\n";
    let text = format!(
        "{header}2024,JAN,CUBA,Expulsions,4\n2024,JAN,CUBA,Expulsions,4\n2024,JAN,HAITI,Expulsions,2\n2024,JAN,HAITI,Expulsions,9\n"
    );
    let p = parse("cbp_csv", text.as_bytes(), None).unwrap();
    assert_eq!(
        figure(&p, "cbp_sw", "CUB", "expulsions", "2024-01"),
        Some(4)
    );
    assert_eq!(p.duplicates, 1);
    assert_eq!(figure(&p, "cbp_sw", "HTI", "expulsions", "2024-01"), None);
    let conflict = p
        .rejected
        .iter()
        .find(|r| r.column == "encounter_count")
        .unwrap();
    assert_eq!((conflict.row, conflict.value.as_str()), (5, "9"));
    assert!(
        conflict.reason.contains("repeats line 4"),
        "{}",
        conflict.reason
    );
}

#[test]
fn cbp_missing_column_names_it_and_what_was_found() {
    let e = parse(
        "cbp_csv",
        b"Fiscal Year,Month (abbv),Citizenship,Encounter Count\n2024,JAN,CUBA,4\n",
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            IngestError::BadLayout {
                format: "cbp_csv",
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("no `Encounter Type` column"), "{msg}");
    assert!(
        msg.contains("found: Fiscal Year, Month (abbv), Citizenship, Encounter Count"),
        "{msg}"
    );
    assert_eq!(e.code(), "bad_layout");
}

#[test]
fn row_limit_refuses_a_longer_file() {
    let limits = |max_rows| ParseLimits { max_rows };
    for (format, name, rows) in [("cbp_csv", NATIONWIDE, 31), ("ohss_csv", OHSS_CSV, 10_821)] {
        let bytes = read(name);
        let e = borderwatch_ingest::parse_with_limits(format, &bytes, None, limits(rows - 1))
            .unwrap_err();
        assert!(
            matches!(e, IngestError::TooManyRows { .. }),
            "{format}: {e:?}"
        );
        let p = borderwatch_ingest::parse_with_limits(format, &bytes, None, limits(rows)).unwrap();
        assert_eq!(p.rows, rows, "{format}");
    }
}

#[test]
fn cbp_source_given_with_the_upload_wins() {
    let p = parse("cbp_csv", &read(NATIONWIDE), Some("cbp_boston")).unwrap();
    assert!(p.observations.iter().all(|o| o.source == "cbp_boston"));
}

#[test]
fn ohss_workbook_gives_every_figure_of_the_derived_csv() {
    let xlsx = parse_file("ohss_xlsx", OHSS_XLSX);
    let csv = parse_file("ohss_csv", OHSS_CSV);
    for p in [&xlsx, &csv] {
        assert!(
            p.rejected.is_empty(),
            "{:?}",
            &p.rejected[..p.rejected.len().min(5)]
        );
        assert_eq!((p.rows, p.duplicates), (10_821, 0));
    }
    let figures = |p: &Parsed| -> BTreeMap<String, u64> {
        p.observations
            .iter()
            .map(|o| {
                (
                    format!("{}/{}/{} {}", o.source, o.country, o.category, o.period),
                    o.count,
                )
            })
            .collect()
    };
    let (from_xlsx, from_csv) = (figures(&xlsx), figures(&csv));
    assert_eq!(from_xlsx.len(), 10_821);
    assert_eq!(from_xlsx, from_csv);
    // grep '^2025,01 October,Mexico' → 25590: fiscal 2025's first month is October 2024.
    assert_eq!(
        figure(&xlsx, "ohss_usbp", "MEX", "total", "2024-10"),
        Some(25_590)
    );
    // grep '^2000,01 October,Bangladesh' → 10.
    assert_eq!(
        figure(&xlsx, "ohss_usbp", "BGD", "total", "1999-10"),
        Some(10)
    );
    // awk -F, 'NR>1 && $1==2019 {s+=$NF} END{print s}': Border Patrol's FY2019, 859,070.
    let fy2019: u64 = xlsx
        .observations
        .iter()
        .filter(|o| {
            let (y, m) = (o.period.year(), o.period.sub());
            (y == 2018 && m >= 10) || (y == 2019 && m <= 9)
        })
        .map(|o| o.count)
        .sum();
    assert_eq!(fy2019, 859_070);
}

#[test]
fn ohss_workbook_without_the_sheet_names_the_sheets_it_has() {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Annual Count").unwrap();
    sheet.write(0, 0, "Fiscal Year").unwrap();
    let bytes = workbook.save_to_buffer().unwrap();
    let e = parse("ohss_xlsx", &bytes, None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no sheet \"Monthly Citizenship\" (sheets: Annual Count)"),
        "{msg}"
    );
}

#[test]
fn ohss_rows_with_a_wrong_month_number_or_fraction_are_rejected() {
    let text = "fiscal_year,month,citizenship,quantity\n\
                2024,02 October,Mexico,10\n\
                2024,03 December,Mexico,12.5\n\
                2024,04 January,Mexico,30\n";
    let p = parse("ohss_csv", text.as_bytes(), None).unwrap();
    assert_eq!(p.observations.len(), 1);
    assert_eq!(figure(&p, "ohss_usbp", "MEX", "total", "2024-01"), Some(30));
    let rows: Vec<(u64, &str, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.row, r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(rows, [(2, "month", "02 October"), (3, "quantity", "12.5")]);
    assert!(p.rejected[0].reason.contains("month 01 of the fiscal year"));
}

#[test]
fn us_files_are_detected_from_their_content() {
    for (name, format) in [
        (SW, "cbp_csv"),
        (NATIONWIDE, "cbp_csv"),
        (OHSS_XLSX, "ohss_xlsx"),
        (OHSS_CSV, "ohss_csv"),
    ] {
        let found = detect(&read(name), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(found.name, format, "{name}");
        // Detection and the parser agree: the detected format reads the file.
        let p = (found.parse)(&read(name), &Default::default()).unwrap();
        assert!(!p.observations.is_empty(), "{name}");
    }
}

/// A small workbook in the OHSS layout, for mutations that are quick to read.
fn small_ohss_workbook() -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Monthly Citizenship").unwrap();
    for (c, h) in ["Fiscal\nYear", "Month", "Citizenship", "Quantity"]
        .iter()
        .enumerate()
    {
        sheet.write(0, c as u16, *h).unwrap();
    }
    for (r, (fy, month, country, n)) in [
        (2024, "01 October", "Mexico", 49_780),
        (2024, "02 November", "Korea, South", 10),
        (2025, "01 October", "Unknown", 20),
    ]
    .into_iter()
    .enumerate()
    {
        let r = r as u32 + 1;
        sheet.write(r, 0, fy).unwrap();
        sheet.write(r, 1, month).unwrap();
        sheet.write(r, 2, country).unwrap();
        sheet.write(r, 3, n).unwrap();
    }
    workbook.save_to_buffer().unwrap()
}

#[test]
fn small_ohss_workbook_reads() {
    let p = parse("ohss_xlsx", &small_ohss_workbook(), None).unwrap();
    assert_eq!(
        figure(&p, "ohss_usbp", "MEX", "total", "2023-10"),
        Some(49_780)
    );
    assert_eq!(figure(&p, "ohss_usbp", "ZZU", "total", "2024-10"), Some(20));
    assert_eq!(p.observations.len(), 3);
}

/// Every US parser and detection on `bytes`: any answer but a panic, and the row limit kept.
fn never_panics(bytes: &[u8], max_rows: u64) {
    let limits = ParseLimits { max_rows };
    for format in ["cbp_csv", "ohss_csv", "ohss_xlsx"] {
        if let Ok(p) = borderwatch_ingest::parse_with_limits(format, bytes, None, limits) {
            assert!(
                p.rows <= max_rows,
                "{format}: {} rows over the limit",
                p.rows
            );
        }
    }
    let _ = detect(bytes, None);
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(any::<Edit>(), 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn us_parsers_never_panic_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        max_rows in 0u64..50,
    ) {
        never_panics(&bytes, max_rows);
    }

    #[test]
    fn us_parsers_never_panic_on_format_pieces(
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..200),
        header in 0usize..3,
    ) {
        let header = [
            "Fiscal Year,Month (abbv),Citizenship,Encounter Type,Encounter Count\n",
            "fiscal_year,month,citizenship,quantity\n",
            "",
        ][header];
        never_panics(format!("{header}{}", pieces_text(&picks)).as_bytes(), 1000);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn us_parsers_never_panic_on_mutated_real_files(
        file in 0usize..3,
        edits in edits(),
        keep in any::<proptest::sample::Index>(),
    ) {
        // The Southwest file is cut to its first 16 KB to keep each case quick.
        let base = match file {
            0 => read(SW)[..16 * 1024].to_vec(),
            1 => read(NATIONWIDE),
            _ => read(OHSS_CSV)[..16 * 1024].to_vec(),
        };
        never_panics(&mutate(&base, &edits, keep), 1_000_000);
    }

    #[test]
    fn ohss_xlsx_never_panics_on_a_mutated_workbook(
        edits in edits(),
        keep in any::<proptest::sample::Index>(),
    ) {
        let bytes = mutate(&small_ohss_workbook(), &edits, keep);
        let _ = parse("ohss_xlsx", &bytes, None);
        let _ = detect(&bytes, None);
    }
}
