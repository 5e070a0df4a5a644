//! The `wide` format (one column per period) on Eurostat's real TSV and on Frontex-style
//! tables made here as CSV and as xlsx; and detection of every real file.

mod us_eu_support;

use borderwatch_ingest::formats::detect;
use borderwatch_ingest::{IngestError, ParseLimits, Parsed, parse, parse_with_limits};
use proptest::prelude::*;
use us_eu_support::{Edit, US_AND_EUROPE, all_files, figure, mutate, pieces_text, read};

const EUROSTAT: &str = "eurostat_tour_occ_arn2_sample.tsv";

/// A Frontex-style table: a title line, then route, border location and nationality, then
/// one column per month.
const FRONTEX_ROWS: &[[&str; 6]] = &[
    [
        "Route",
        "Border location",
        "Nationality",
        "JAN2009",
        "FEB2009",
        "MAR2009",
    ],
    [
        "Eastern Mediterranean Route",
        "Land",
        "Syria",
        "120",
        "95",
        "310",
    ],
    [
        "Eastern Mediterranean Route",
        "Sea",
        "Syria",
        "40",
        "",
        "77",
    ],
    [
        "Central Mediterranean Route",
        "Sea",
        "Not specified",
        "5",
        "6",
        "7",
    ],
    [
        "Central Mediterranean Route",
        "Sea",
        "Atlantis",
        "1",
        "2",
        "3",
    ],
    [
        "Western Balkan Route",
        "Land",
        "Afghanistan",
        "12",
        "12.5",
        "0",
    ],
];

fn frontex_csv() -> String {
    let mut out = String::from("Detections of illegal border-crossings, monthly\n\n");
    for row in FRONTEX_ROWS {
        out += &row.join(",");
        out.push('\n');
    }
    out
}

/// The same table as a workbook: figures as numbers, and a second sheet of notes first.
fn frontex_xlsx() -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let notes = workbook.add_worksheet();
    notes.set_name("Notes").unwrap();
    notes.write(0, 0, "Source: Frontex").unwrap();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Detections").unwrap();
    sheet
        .write(0, 0, "Detections of illegal border-crossings, monthly")
        .unwrap();
    for (r, row) in FRONTEX_ROWS.iter().enumerate() {
        let r = r as u32 + 2;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell.parse::<f64>() {
                Ok(n) if r > 2 => sheet.write_number(r, c, n).unwrap(),
                _ if cell.is_empty() => sheet,
                _ => sheet.write_string(r, c, *cell).unwrap(),
            };
        }
    }
    workbook.save_to_buffer().unwrap()
}

fn check_frontex(p: &Parsed) {
    let f = |country, category, period| figure(p, "frontex", country, category, period);
    assert_eq!(
        f("SYR", "eastern_mediterranean_route_land", "2009-01"),
        Some(120)
    );
    assert_eq!(
        f("SYR", "eastern_mediterranean_route_land", "2009-03"),
        Some(310)
    );
    assert_eq!(
        f("SYR", "eastern_mediterranean_route_sea", "2009-01"),
        Some(40)
    );
    // An empty cell is no figure, not zero.
    assert_eq!(f("SYR", "eastern_mediterranean_route_sea", "2009-02"), None);
    assert_eq!(
        f("ZZU", "central_mediterranean_route_sea", "2009-02"),
        Some(6)
    );
    assert_eq!(f("AFG", "western_balkan_route_land", "2009-03"), Some(0));
    assert_eq!(p.observations.len(), 3 + 2 + 3 + 2);
    assert_eq!(p.rows, 5);
    let rejected: Vec<(&str, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(rejected, [("Nationality", "Atlantis"), ("FEB2009", "12.5")]);
    assert!(
        p.rejected[0].reason.contains("not a known country"),
        "{}",
        p.rejected[0].reason
    );
}

#[test]
fn eurostat_tsv_keeps_figures_drops_flags_and_skips_colons() {
    let p = parse("wide", &read(EUROSTAT), Some("eurostat_tour")).unwrap();
    let f = |country, period| figure(&p, "eurostat_tour", country, "dom_i551", period);
    // Austria, 1990 and 2024, the second and second-to-last columns.
    assert_eq!(f("AUT", "1990"), Some(4_189_792));
    assert_eq!(f("AUT", "2024"), Some(11_249_718));
    assert_eq!(f("AUT", "1991"), None, "`:` is no observation");
    // Albania: `420931 e` is 420,931 flagged as estimated; 2025 is `:`.
    assert_eq!(f("ALB", "2018"), Some(420_931));
    assert_eq!(f("ALB", "2024"), Some(919_048));
    assert_eq!(f("ALB", "2025"), None);
    // awk -F'\t' 'NR>1{n=0; for(i=2;i<=NF;i++) if($i !~ /^:/) n++; print $1, n}': 7 and 16.
    let count = |c: &str| {
        p.observations
            .iter()
            .filter(|o| o.country.code() == c)
            .count()
    };
    assert_eq!((count("ALB"), count("AUT")), (7, 16));
    assert_eq!(p.observations.len(), 7 + 16);
    // BE1 is the Brussels region, not a country: one rejected row that says so.
    assert_eq!(p.rejected.len(), 1, "{:?}", p.rejected);
    let r = &p.rejected[0];
    assert_eq!(
        (r.row, r.column.as_str(), r.value.as_str()),
        (4, "geo", "BE1")
    );
    assert!(r.reason.contains("region (NUTS) of BE"), "{}", r.reason);
}

#[test]
fn frontex_style_csv_takes_nationality_as_country_and_the_rest_as_category() {
    let p = parse("wide", frontex_csv().as_bytes(), Some("frontex")).unwrap();
    check_frontex(&p);
    // Lines count from the top of the file, the title and blank line included.
    assert_eq!(p.rejected[0].row, 7);
}

#[test]
fn frontex_style_xlsx_gives_the_same_figures_as_the_csv() {
    let from_xlsx = parse("wide", &frontex_xlsx(), Some("frontex")).unwrap();
    check_frontex(&from_xlsx);
    let from_csv = parse("wide", frontex_csv().as_bytes(), Some("frontex")).unwrap();
    assert_eq!(from_xlsx.observations, from_csv.observations);
    // The spreadsheet's own row numbers: the header is row 3 of sheet "Detections".
    assert_eq!(from_xlsx.rejected[0].row, 7);
}

#[test]
fn spreadsheet_date_headers_are_months() {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let format = rust_xlsxwriter::Format::new().set_num_format("mmm yyyy");
    sheet.write(0, 0, "citizenship").unwrap();
    for (c, month) in [(1u16, 1u8), (2, 2)] {
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, month, 1).unwrap();
        sheet
            .write_datetime_with_format(0, c, &date, &format)
            .unwrap();
    }
    sheet.write(1, 0, "Ukraine").unwrap();
    sheet.write(1, 1, 10).unwrap();
    sheet.write(1, 2, 20).unwrap();
    let p = parse("wide", &workbook.save_to_buffer().unwrap(), Some("x")).unwrap();
    assert_eq!(figure(&p, "x", "UKR", "total", "2024-01"), Some(10));
    assert_eq!(figure(&p, "x", "UKR", "total", "2024-02"), Some(20));
}

#[test]
fn eurostat_quarters_units_and_citizen_column() {
    let text = "freq,citizen,sex,unit,geo\\TIME_PERIOD\t2024-Q1 \t2024-Q2 \n\
                Q,SY,T,PER,DE\t1200 \t1300 p\n\
                Q,SY,T,PC,DE\t12 \t13 \n\
                Q,EU27_2020,T,PER,DE\t5 \t6 \n\
                Q,AF,T,PER\t1 \t2 \n";
    let p = parse("wide", text.as_bytes(), Some("eurostat_asy")).unwrap();
    // citizen is the country; geo (the receiving country) joins sex in the category.
    assert_eq!(
        figure(&p, "eurostat_asy", "SYR", "t_de", "2024-Q1"),
        Some(1200)
    );
    assert_eq!(
        figure(&p, "eurostat_asy", "SYR", "t_de", "2024-Q2"),
        Some(1300)
    );
    assert_eq!(p.observations.len(), 2);
    let reasons: Vec<(u64, &str, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.row, r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (3, "unit", "PC"),
            (4, "citizen", "EU27_2020"),
            (5, "freq,citizen,sex,unit,geo\\TIME_PERIOD", "Q,AF,T,PER")
        ]
    );
    assert!(p.rejected[1].reason.contains("group of countries"));
    assert!(
        p.rejected[2].reason.contains("expected 5 values"),
        "{}",
        p.rejected[2].reason
    );
}

#[test]
fn columns_after_the_periods_are_not_keys() {
    let text = "country,route,2023,2024,Total\nSY,Eastern,1,2,3\nAF,Eastern,4,5,9\n";
    let p = parse("wide", text.as_bytes(), Some("x")).unwrap();
    assert_eq!(figure(&p, "x", "SYR", "eastern", "2024"), Some(2));
    assert_eq!(figure(&p, "x", "AFG", "eastern", "2023"), Some(4));
    assert_eq!(p.observations.len(), 4);
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
}

#[test]
fn wide_without_a_country_column_says_which_names_it_looks_for() {
    let e = parse("wide", b"route,2023,2024\nEastern,1,2\n", Some("x")).unwrap_err();
    assert!(
        matches!(e, IngestError::BadLayout { format: "wide", .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("no country column among the key columns (found: route)"),
        "{msg}"
    );
    assert!(
        msg.contains("citizenship, nationality, country or geo"),
        "{msg}"
    );
}

#[test]
fn wide_without_period_columns_says_what_it_found() {
    let e = parse("wide", b"country,year,value\nSY,2024,5\n", Some("x")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("no header row with period columns"), "{msg}");
    assert!(
        msg.contains("line 1, which has: country, year, value"),
        "{msg}"
    );
}

#[test]
fn wide_needs_a_source() {
    let e = parse("wide", &read(EUROSTAT), None).unwrap_err();
    assert!(matches!(e, IngestError::NoSource), "{e:?}");
    // A source column gives each row its own.
    let p = parse("wide", b"source,country,2024\nfrontex,SY,4\n", None).unwrap();
    assert_eq!(figure(&p, "frontex", "SYR", "total", "2024"), Some(4));
}

#[test]
fn wide_tables_are_detected_from_their_content() {
    for (bytes, what) in [
        (read(EUROSTAT), "Eurostat TSV"),
        (frontex_csv().into_bytes(), "Frontex-style CSV"),
        (frontex_xlsx(), "Frontex-style xlsx"),
    ] {
        let found = detect(&bytes, None).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(found.name, "wide", "{what}");
    }
    // The generic format's own files stay generic.
    let generic = borderwatch_ingest::demo_csv();
    assert_eq!(detect(generic.as_bytes(), None).unwrap().name, "generic");
}

#[test]
fn real_files_are_claimed_only_by_their_own_format() {
    let ours = [
        ("cbp_sw_land_border_encounters_fy22-fy25aug.csv", "cbp_csv"),
        (
            "cbp_nationwide_encounters_aor_sample_tidytuesday.csv",
            "cbp_csv",
        ),
        ("ohss_khsm_encounters_usbp_fy25m11.xlsx", "ohss_xlsx"),
        (
            "ohss_usbp_encounters_monthly_citizenship_fy2000-fy2025m11.csv",
            "ohss_csv",
        ),
        (EUROSTAT, "wide"),
    ];
    for name in all_files() {
        let found = detect(&read(&name), Some(&name)).map(|f| f.name);
        match ours.iter().find(|(n, _)| *n == name) {
            Some((_, format)) => assert_eq!(found.ok(), Some(*format), "{name}"),
            // Another format's file (or one no format reads) is not taken by ours.
            None => assert!(
                !found.as_ref().is_ok_and(|f| US_AND_EUROPE.contains(f)),
                "{name} detected as {found:?}"
            ),
        }
    }
}

/// The wide parser and detection on `bytes`: any answer but a panic, and the row limit kept.
fn never_panics(bytes: &[u8], max_rows: u64) {
    let limits = ParseLimits { max_rows };
    if let Ok(p) = parse_with_limits("wide", bytes, Some("x"), limits) {
        assert!(p.rows <= max_rows, "{} rows over the limit", p.rows);
        assert!(p.observations.iter().all(|o| o.source == "x"));
    }
    let _ = detect(bytes, None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn wide_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        max_rows in 0u64..50,
    ) {
        never_panics(&bytes, max_rows);
    }

    #[test]
    fn wide_never_panics_on_format_pieces(
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..200),
        header in 0usize..3,
    ) {
        let header = [
            "freq,citizen,unit,geo\\TIME_PERIOD\t2024Q1\t2024Q2\n",
            "Route,Nationality,JAN2009,FEB2009\n",
            "",
        ][header];
        never_panics(format!("{header}{}", pieces_text(&picks)).as_bytes(), 1000);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn wide_never_panics_on_mutated_files(
        file in 0usize..3,
        edits in proptest::collection::vec(any::<Edit>(), 0..12),
        keep in any::<proptest::sample::Index>(),
    ) {
        let base = match file {
            0 => read(EUROSTAT),
            1 => frontex_csv().into_bytes(),
            _ => frontex_xlsx(),
        };
        never_panics(&mutate(&base, &edits, keep), 1_000_000);
    }
}
