//! The native Russian formats against the real files of `shared/data/borders` (beside the
//! checkout; a missing file fails the test, naming it) and against files made here.
//!
//! Figures asserted below were checked by hand, e.g.
//! `grep '^North Korea,' shared/data/borders/fsb_russia_entries_by_country_transport_2010q1-2020q1.csv | grep ',9/30/2019'`
//! gives Car 587, Air 3,581, Rail 985, Ship 326, Walk 112: 5,591 in all.

use std::path::PathBuf;

use borderwatch_ingest::{Parsed, formats, parse};
use borderwatch_model::{Country, Observation, Period};

const FSB_ENTRIES: &str = "fsb_russia_entries_by_country_transport_2010q1-2020q1.csv";
const FSB_EXITS: &str = "fsb_russia_exits_by_destination_transport_2010q1-2020q1.csv";
const EMISS_EXCERPT: &str = "emiss_fedstat_sdmx_excerpt_indicator59345.xml";
const MVD_XLS: &str = "mvd_migration_registration_by_country_purpose_2016.xls";
const MVD_CSV: &str = "mvd_migration_registration_by_country_purpose_2016.csv";

fn borders(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/borders")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reference file {} is missing ({e}): shared/data must be beside the checkout",
            path.display()
        )
    })
}

fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

/// The one observation of a series and period, failing with what there is otherwise.
fn figure(p: &Parsed, source: &str, code: &str, category: &str, period: Period) -> u64 {
    let found: Vec<&Observation> = p
        .observations
        .iter()
        .filter(|o| {
            o.source == source
                && o.country == country(code)
                && o.category == category
                && o.period == period
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{source}/{code}/{category} {period}: {found:?}"
    );
    found[0].count
}

// ---- fsb_csv ----

#[test]
fn fsb_entries_north_korea_2019_q3_sums_its_modes_to_5591() {
    let p = parse("fsb_csv", &borders(FSB_ENTRIES), None).unwrap();
    let q3 = Period::Quarter(2019, 3);
    let modes = [
        ("car", 587),
        ("air", 3581),
        ("rail", 985),
        ("ship", 326),
        ("walk", 112),
    ];
    for (mode, count) in modes {
        assert_eq!(figure(&p, "fsb", "PRK", mode, q3), count, "{mode}");
    }
    assert_eq!(figure(&p, "fsb", "PRK", "total", q3), 5591);
}

#[test]
fn fsb_entries_every_row_is_accepted_with_one_total_per_country_and_quarter() {
    let p = parse("fsb_csv", &borders(FSB_ENTRIES), None).unwrap();
    assert_eq!(p.rejected, vec![], "the real file has no bad rows");
    assert_eq!(p.rows, 40_925);
    assert_eq!(p.duplicates, 0);
    let totals = p
        .observations
        .iter()
        .filter(|o| o.category == "total")
        .count();
    // 40,925 rows = 8,185 country-quarters × 5 modes.
    assert_eq!(totals, 8_185);
    assert_eq!(p.observations.len(), 40_925 + 8_185);
    assert!(p.observations.iter().all(|o| o.source == "fsb"));
}

#[test]
fn fsb_entries_hand_checked_figures() {
    let p = parse("fsb_csv", &borders(FSB_ENTRIES), None).unwrap();
    // China 2019-Q4: Car 75,826 + Air 230,479 + Rail 13,432 + Ship 47,911 + Walk 34.
    assert_eq!(
        figure(&p, "fsb", "CHN", "rail", Period::Quarter(2019, 4)),
        13_432
    );
    assert_eq!(
        figure(&p, "fsb", "CHN", "total", Period::Quarter(2019, 4)),
        367_682
    );
    // Abkhazia (invented code XAB) 2010-Q1, the file's first row: Car "6,734".
    assert_eq!(
        figure(&p, "fsb", "XAB", "car", Period::Quarter(2010, 1)),
        6_734
    );
    assert_eq!(
        figure(&p, "fsb", "XAB", "total", Period::Quarter(2010, 1)),
        20_312
    );
    assert!(p.observations.iter().any(|o| o.country.code() == "XOS"));
}

#[test]
fn fsb_exits_go_to_their_own_source() {
    let p = parse("fsb_csv", &borders(FSB_EXITS), None).unwrap();
    assert_eq!(p.rejected, vec![]);
    assert_eq!(p.rows, 26_160);
    assert!(p.observations.iter().all(|o| o.source == "fsb_exits"));
    // Turkey 2019-Q3: Air 3,113,173 + Ship 7,631, the other modes 0.
    let q3 = Period::Quarter(2019, 3);
    assert_eq!(figure(&p, "fsb_exits", "TUR", "air", q3), 3_113_173);
    assert_eq!(figure(&p, "fsb_exits", "TUR", "total", q3), 3_120_804);
}

const FSB_HEADER: &str = "ENG,Trans,Type,Value,ISO_A2,ISO_A3,M49,Date\r\n";

fn fsb_rows(rows: &[&str]) -> Vec<u8> {
    let mut s = FSB_HEADER.to_string();
    for r in rows {
        s.push_str(r);
        s.push_str("\r\n");
    }
    s.into_bytes()
}

#[test]
fn fsb_bad_rows_are_rejected_by_column_and_their_quarter_gets_no_total() {
    let file = fsb_rows(&[
        "North Korea,Car,In,587,KP,PRK,408,9/30/2019",
        "North Korea,Air,In,\"3,581\",KP,PRK,408,9/30/2019",
        "North Korea,Rail,In,985,KP,PRK,408,9/29/2019",
        "North Korea,Ship,In,\"32,6\",KP,PRK,408,9/30/2019",
        "North Korea,Walk,In,112,KP,PRK,408,9/30/2019",
        "Atlantis,Car,In,5,AT,ATL,999,9/30/2019",
        "China,Bus,In,5,CN,CHN,156,9/30/2019",
        "China,Car,Sideways,5,CN,CHN,156,9/30/2019",
        "China,Car,In,5,CN,CHN,156",
    ]);
    let p = parse("fsb_csv", &file, None).unwrap();
    assert_eq!(p.rows, 9);
    let by_line: Vec<(u64, &str, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.row, r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        by_line,
        vec![
            (4, "Date", "9/29/2019"),
            (5, "Value", "32,6"),
            (7, "ISO_A3", "ATL"),
            (8, "Trans", "Bus"),
            (9, "Type", "Sideways"),
            (10, "", "China,Car,In,5,CN,CHN,156"),
        ]
    );
    assert!(p.rejected[0].reason.contains("last day of a quarter"));
    assert!(p.rejected[2].reason.contains("Atlantis"));
    // Three modes of PRK 2019-Q3 are kept; without all five there is no total.
    assert_eq!(p.observations.len(), 3);
    assert!(p.observations.iter().all(|o| o.category != "total"));
}

#[test]
fn fsb_source_given_with_the_file_names_entries_and_exits() {
    let file = fsb_rows(&[
        "North Korea,Car,In,587,KP,PRK,408,9/30/2019",
        "North Korea,Car,Out,5,KP,PRK,408,9/30/2019",
    ]);
    let p = parse("fsb_csv", &file, Some("fsb-republished")).unwrap();
    let sources: Vec<&str> = p.observations.iter().map(|o| o.source.as_str()).collect();
    assert_eq!(sources, vec!["fsb_republished", "fsb_republished_exits"]);
}

#[test]
fn fsb_file_without_its_columns_is_refused_naming_them() {
    let e = parse("fsb_csv", b"ENG,Value,Date\nChina,5,9/30/2019\n", None).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.code(), "bad_layout");
    assert!(msg.contains("`trans`") && msg.contains("`iso_a3`"), "{msg}");
}
