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

// ---- emiss_sdmx ----

/// One `generic:Series` of a made-up EMISS export: OKSM country code, purpose code, PERIOD
/// label, year, value.
type SdmxSeries<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// An SDMX-ML 1.0 GenericData message laid out as fedstat.ru writes it (see the excerpt in
/// shared/data/borders), for indicator 38479 by citizenship and purpose: data made here, the
/// figures are those published for North Korea.
fn emiss_38479(series: &[SdmxSeries<'_>]) -> String {
    let mut s = String::from(
        r#"<?xml version='1.0' encoding='UTF-8'?>
<GenericData xmlns="http://www.SDMX.org/resources/SDMXML/schemas/v1_0/message" xmlns:common="http://www.SDMX.org/resources/SDMXML/schemas/v1_0/common" xmlns:generic="http://www.SDMX.org/resources/SDMXML/schemas/v1_0/generic" xmlns:structure="http://www.SDMX.org/resources/SDMXML/schemas/v1_0/structure" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<Header Id="singHead">
	<ID>-1214661400</ID>
	<Test>false</Test>
	<Prepared>2024-11-20T05:58:21</Prepared>
	<Sender id="UIS">
		<Name xml:lang="ru">Государственная статистика</Name>
	</Sender>
	<DataSetAgency>13</DataSetAgency>
	<DataSetID>13.01.38479</DataSetID>
</Header>
<CodeLists>
	<structure:CodeList id="00_003">
		<structure:Name xml:lang="ru">Регионы Российской Федерации (иерархический)</structure:Name>
		<structure:Code value="00">
			<structure:Description xml:lang="ru">Российская Федерация</structure:Description>
		</structure:Code>
	</structure:CodeList>
	<structure:CodeList id="s_OKSM">
		<structure:Name xml:lang="ru">Общероссийский классификатор стран мира (ОКСМ)</structure:Name>
		<structure:Code value="408">
			<structure:Description xml:lang="ru">Корейская Народно-Демократическая Республика</structure:Description>
		</structure:Code>
		<structure:Code value="156">
			<structure:Description xml:lang="ru">Китай</structure:Description>
		</structure:Code>
	</structure:CodeList>
	<structure:CodeList id="s_CEL">
		<structure:Name xml:lang="ru">Цели поездки</structure:Name>
		<structure:Code value="0"><structure:Description xml:lang="ru">Всего</structure:Description></structure:Code>
		<structure:Code value="5"><structure:Description xml:lang="ru">Учеба</structure:Description></structure:Code>
		<structure:Code value="6"><structure:Description xml:lang="ru">Работа</structure:Description></structure:Code>
		<structure:Code value="2"><structure:Description xml:lang="ru">Деловая</structure:Description></structure:Code>
		<structure:Code value="9"><structure:Description xml:lang="ru">Полёт на Луну</structure:Description></structure:Code>
	</structure:CodeList>
</CodeLists>
<DataSet>
"#,
    );
    for (oksm, purpose, period, year, value) in series {
        s.push_str(&format!(
            "\t<generic:Series>\n\t\t<generic:SeriesKey>\n\
             \t\t\t<generic:Value concept=\"00_003\" value=\"00\"/>\n\
             \t\t\t<generic:Value concept=\"s_OKSM\" value=\"{oksm}\"/>\n\
             \t\t\t<generic:Value concept=\"s_CEL\" value=\"{purpose}\"/>\n\
             \t\t</generic:SeriesKey>\n\t\t<generic:Attributes>\n\
             \t\t\t<generic:Value concept=\"EI\" value=\"человек\"/>\n\
             \t\t\t<generic:Value concept=\"PERIOD\" value=\"{period}\"/>\n\
             \t\t</generic:Attributes>\n\t\t<generic:Obs>\n\
             \t\t\t<generic:Time>{year}</generic:Time>\n\
             \t\t\t<generic:ObsValue value=\"{value}\"/>\n\
             \t\t</generic:Obs>\n\t</generic:Series>\n"
        ));
    }
    s.push_str("</DataSet>\n</GenericData>\n");
    s
}

/// North Korean entries for study in 2024 as the FSB releases them: year to date.
const NK_STUDY_2024: &[SdmxSeries<'static>] = &[
    ("408", "5", "I квартал", "2024", "38"),
    ("408", "5", "январь-июнь", "2024", "370"),
    ("408", "5", "январь-сентябрь", "2024", "4135"),
    ("408", "5", "январь-декабрь", "2024", "7887"),
];

#[test]
fn emiss_year_to_date_study_figures_difference_into_the_headline_quarters() {
    let file = emiss_38479(NK_STUDY_2024);
    let p = parse("emiss_sdmx", file.as_bytes(), None).unwrap();
    assert_eq!(p.rejected, vec![]);
    assert_eq!(p.rows, 4);
    let q = |n| figure(&p, "fsb", "PRK", "study", Period::Quarter(2024, n));
    assert_eq!((q(1), q(2), q(3), q(4)), (38, 332, 3765, 3752));
    assert_eq!(figure(&p, "fsb", "PRK", "study", Period::Year(2024)), 7887);
    assert_eq!(p.observations.len(), 5);
}

#[test]
fn emiss_series_in_shuffled_order_give_the_same_figures() {
    let mut shuffled = NK_STUDY_2024.to_vec();
    shuffled.reverse();
    let a = parse("emiss_sdmx", emiss_38479(NK_STUDY_2024).as_bytes(), None).unwrap();
    let b = parse("emiss_sdmx", emiss_38479(&shuffled).as_bytes(), None).unwrap();
    let mut a: Vec<_> = a.observations.iter().map(|o| (o.period, o.count)).collect();
    let mut b: Vec<_> = b.observations.iter().map(|o| (o.period, o.count)).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn emiss_quarters_months_and_totals_are_read_as_labelled() {
    let file = emiss_38479(&[
        ("408", "0", "III квартал", "2023", "365"),
        ("408", "2", "III квартал", "2023", "253"),
        ("156", "0", "сентябрь", "2023", "1 234"),
        ("408", "0", "год", "2024", "13221,0"),
    ]);
    let p = parse("emiss_sdmx", file.as_bytes(), None).unwrap();
    assert_eq!(p.rejected, vec![]);
    let q3 = Period::Quarter(2023, 3);
    assert_eq!(figure(&p, "fsb", "PRK", "total", q3), 365);
    assert_eq!(figure(&p, "fsb", "PRK", "business", q3), 253);
    assert_eq!(
        figure(&p, "fsb", "CHN", "total", Period::Month(2023, 9)),
        1234
    );
    assert_eq!(
        figure(&p, "fsb", "PRK", "total", Period::Year(2024)),
        13_221
    );
}

#[test]
fn emiss_falling_year_to_date_is_a_rejected_row_naming_periods_and_values() {
    let file = emiss_38479(&[
        ("408", "6", "январь-март", "2024", "10"),
        ("408", "6", "январь-июнь", "2024", "8"),
    ]);
    let p = parse("emiss_sdmx", file.as_bytes(), None).unwrap();
    assert_eq!(
        figure(&p, "fsb", "PRK", "work", Period::Quarter(2024, 1)),
        10
    );
    assert_eq!(p.observations.len(), 1, "no negative or wrapped count");
    assert_eq!(p.rejected.len(), 1);
    let r = &p.rejected[0];
    assert_eq!((r.column.as_str(), r.value.as_str()), ("ObsValue", "8"));
    assert!(r.reason.contains("январь-июнь 2024 is 8"), "{}", r.reason);
    assert!(r.reason.contains("январь-март 2024 (10)"), "{}", r.reason);
    // The line of the second series' generic:Obs in the generated file.
    let obs_line = file
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("<generic:Obs>"))
        .nth(1)
        .map(|(i, _)| i as u64 + 1)
        .unwrap();
    assert_eq!(r.row, obs_line);
}

#[test]
fn emiss_bad_figures_are_rejected_one_by_one() {
    let file = emiss_38479(&[
        ("408", "5", "III квартал", "2024", "12,5"),
        ("999", "5", "III квартал", "2024", "1"),
        ("408", "9", "III квартал", "2024", "1"),
        ("408", "5", "весна", "2024", "1"),
        ("408", "5", "II квартал", "24", "1"),
        ("408", "5", "I квартал", "2024", "38"),
    ]);
    let p = parse("emiss_sdmx", file.as_bytes(), None).unwrap();
    let got: Vec<(&str, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ObsValue", "12,5"),
            ("SeriesKey", "999"),
            ("SeriesKey", "Полёт на Луну"),
            ("PERIOD", "весна"),
            ("Time", "24"),
        ]
    );
    assert!(p.rejected[0].reason.contains("fractional"));
    assert_eq!(p.observations.len(), 1);
    assert_eq!(p.rows, 6);
}

#[test]
fn emiss_source_comes_from_the_indicator_or_the_upload() {
    let file = emiss_38479(NK_STUDY_2024).replace("13.01.38479", "13.01.1");
    let p = parse("emiss_sdmx", file.as_bytes(), None).unwrap();
    assert!(p.observations.iter().all(|o| o.source == "emiss"));
    let p = parse("emiss_sdmx", file.as_bytes(), Some("fsb_emiss")).unwrap();
    assert!(p.observations.iter().all(|o| o.source == "fsb_emiss"));
}

#[test]
fn emiss_excerpt_without_a_country_dimension_is_refused_naming_its_dimensions() {
    let bytes = borders(EMISS_EXCERPT);
    assert_eq!(formats::detect(&bytes, None).unwrap().name, "emiss_sdmx");
    let e = parse("emiss_sdmx", &bytes, None).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.code(), "bad_layout");
    assert!(msg.contains("no country dimension"), "{msg}");
    assert!(msg.contains("51_0 (Характеристики кредита)"), "{msg}");
}

#[test]
fn emiss_broken_xml_is_refused_with_its_line() {
    let mut file = emiss_38479(NK_STUDY_2024);
    file.truncate(file.len() / 2);
    file.push_str("<generic:Obs></generic:Series>");
    let e = parse("emiss_sdmx", file.as_bytes(), None).unwrap_err();
    assert_eq!(e.code(), "bad_layout");
    assert!(e.to_string().contains("line "), "{e}");
}
