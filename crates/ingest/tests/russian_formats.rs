//! The native Russian formats against the real files of `testdata/borders` (in the
//! checkout; a missing file fails the test, naming it) and against files made here.
//!
//! Figures asserted below were checked by hand, e.g.
//! `grep '^North Korea,' testdata/borders/fsb_russia_entries_by_country_transport_2010q1-2020q1.csv | grep ',9/30/2019'`
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
        .join("../../testdata/borders")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reference file {} is missing ({e}): testdata/ is part of the repository",
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
/// testdata/borders), for indicator 38479 by citizenship and purpose: data made here, the
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

// ---- ru_sheet ----

/// The MVD table's purposes: the derived CSV's column, and the category they become.
const MVD_COLUMNS: &[(&str, &str)] = &[
    ("primary_tourism", "tourism"),
    ("primary_study", "study"),
    ("primary_work", "work"),
    ("primary_private", "private"),
    ("primary_other", "other"),
    ("at_stay_primary", "total"),
];

fn mvd_csv() -> Vec<Vec<String>> {
    let bytes = borders(MVD_CSV);
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let mut rows = vec![header];
    for r in reader.records() {
        rows.push(r.unwrap().iter().map(String::from).collect());
    }
    rows
}

#[test]
fn mvd_xls_matches_the_derived_csv_in_every_row() {
    let p = parse("ru_sheet", &borders(MVD_XLS), None).unwrap();
    let rows = mvd_csv();
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let year = Period::Year(2016);
    let mut checked = 0;
    for row in &rows[1..] {
        let name = &row[0];
        let code = Country::parse(name)
            .unwrap_or_else(|_| panic!("`{name}` does not resolve"))
            .to_string();
        for (csv_column, category) in MVD_COLUMNS {
            let want: u64 = row[col(csv_column)].parse().unwrap();
            let got = figure(&p, "mvd_registration", &code, category, year);
            assert_eq!(got, want, "{name} {category}");
            checked += 1;
        }
    }
    // 257 rows, the stateless row among them (`ZZS`): 257 × 6 figures.
    assert_eq!(checked, 257 * 6);
    assert_eq!(p.rows, 257);
    // Saint Pierre and Miquelon appears twice (two spellings, all zeros): kept once.
    assert_eq!(p.duplicates, 6);
    assert_eq!(p.observations.len(), 256 * 6);
}

#[test]
fn mvd_xls_keeps_the_stateless_row_as_its_own_series() {
    // It was a rejected row; stateless persons are an aggregate row of their own (`ZZS`),
    // apart from "other" and "unknown".
    let p = parse("ru_sheet", &borders(MVD_XLS), None).unwrap();
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    let stateless = p
        .observations
        .iter()
        .filter(|o| o.country == Country::STATELESS)
        .count();
    assert_eq!(stateless, 6);
}

#[test]
fn mvd_xls_hand_checked_figures() {
    // grep '^КНДР' testdata/borders/mvd_migration_registration_by_country_purpose_2016.csv:
    // tourism 1,072, study 191, work 27,417, private 239, other 1,011; first-time 29,930.
    let p = parse("ru_sheet", &borders(MVD_XLS), None).unwrap();
    let year = Period::Year(2016);
    let prk = |c| figure(&p, "mvd_registration", "PRK", c, year);
    assert_eq!(
        [
            prk("tourism"),
            prk("study"),
            prk("work"),
            prk("private"),
            prk("other")
        ],
        [1072, 191, 27_417, 239, 1011]
    );
    assert_eq!(prk("total"), 29_930);
    // The ВСЕГО row is the total over countries, kept apart as ZZT.
    assert_eq!(
        figure(&p, "mvd_registration", "ZZT", "study", year),
        406_052
    );
    // Names outside ISO 3166 keep their own series.
    assert_eq!(figure(&p, "mvd_registration", "XAB", "study", year), 616);
}

#[test]
fn mvd_total_column_is_the_sum_of_its_purposes_for_every_country() {
    let p = parse("ru_sheet", &borders(MVD_XLS), None).unwrap();
    let mut sums: std::collections::HashMap<Country, (u64, u64)> = Default::default();
    for o in &p.observations {
        let e = sums.entry(o.country).or_default();
        if o.category == "total" {
            e.1 += o.count;
        } else {
            e.0 += o.count;
        }
    }
    // 255 countries and the stateless row (`ZZS`).
    assert_eq!(sums.len(), 256);
    for (c, (parts, total)) in sums {
        assert_eq!(parts, total, "{c}");
    }
}

/// A wide MVD-shaped xlsx made here: merged title and header cells, as in the xls.
fn mvd_xlsx(period_title: &str, rows: &[(&str, [&str; 6])]) -> Vec<u8> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let merged = Format::new();
    let sheet = book.add_worksheet();
    sheet.set_name("2-РД страны").unwrap();
    sheet
        .merge_range(
            0,
            0,
            0,
            8,
            "ОТДЕЛЬНЫЕ ПОКАЗАТЕЛИ МИГРАЦИОННОЙ СИТУАЦИИ В РОССИЙСКОЙ ФЕДЕРАЦИИ",
            &merged,
        )
        .unwrap();
    sheet
        .merge_range(1, 0, 1, 8, period_title, &merged)
        .unwrap();
    sheet
        .merge_range(2, 0, 2, 8, "с распределением по странам мира", &merged)
        .unwrap();
    sheet
        .merge_range(4, 1, 4, 8, "МИГРАЦИОННЫЙ УЧЕТ", &merged)
        .unwrap();
    sheet
        .merge_range(5, 1, 7, 1, "Поставлено на миграционный учет", &merged)
        .unwrap();
    sheet.merge_range(5, 2, 7, 2, "первично", &merged).unwrap();
    sheet
        .merge_range(5, 3, 6, 7, "из них по целям въезда:", &merged)
        .unwrap();
    for (i, p) in ["туризм", "учёба", "работа", "частная", "иное"]
        .iter()
        .enumerate()
    {
        sheet.write_string(7, 3 + i as u16, *p).unwrap();
    }
    sheet.write_string(8, 0, "код графы").unwrap();
    for c in 1..9u16 {
        sheet.write_number(8, c, f64::from(c)).unwrap();
    }
    for (r, (name, values)) in rows.iter().enumerate() {
        let r = 9 + r as u32;
        sheet.write_string(r, 0, *name).unwrap();
        sheet.write_number(r, 1, 1.0e6).unwrap();
        for (i, v) in values.iter().enumerate() {
            let c = 2 + i as u16;
            match v.parse::<f64>() {
                Ok(n) => sheet.write_number(r, c, n).unwrap(),
                Err(_) => sheet.write_string(r, c, *v).unwrap(),
            };
        }
    }
    book.save_to_buffer().unwrap()
}

#[test]
fn xlsx_of_the_same_shape_reads_the_same_way() {
    let file = mvd_xlsx(
        "за III квартал 2024 года",
        &[
            (
                "ВСЕГО по странам",
                ["5000", "100", "3765", "1000", "35", "100"],
            ),
            (
                "КНДР (Северная Корея)",
                ["4000", "50", "3765", "100", "35", "50"],
            ),
            ("Атлантида", ["1", "0", "0", "1", "0", "0"]),
            ("Китай", ["12", "–", "…", "2", "10.5", "0"]),
        ],
    );
    assert_eq!(formats::detect(&file, None).unwrap().name, "ru_sheet");
    let p = parse("", &file, None).unwrap();
    let q3 = Period::Quarter(2024, 3);
    assert_eq!(figure(&p, "mvd_registration", "PRK", "study", q3), 3765);
    assert_eq!(figure(&p, "mvd_registration", "PRK", "total", q3), 4000);
    assert_eq!(figure(&p, "mvd_registration", "ZZT", "tourism", q3), 100);
    assert_eq!(
        figure(&p, "mvd_registration", "CHN", "tourism", q3),
        0,
        "a dash is none"
    );
    assert_eq!(p.rows, 4);
    let got: Vec<(u64, &str, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.row, r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (12, "2-РД страны!A12", "Атлантида"),
            (13, "2-РД страны!E13 (учёба)", "…"),
            (13, "2-РД страны!G13 (частная)", "10.5"),
        ]
    );
    assert!(p.rejected[1].reason.contains("not available"));
}

#[test]
fn xlsx_for_a_year_to_date_span_is_refused_saying_why() {
    let file = mvd_xlsx(
        "за январь - сентябрь 2024 года",
        &[("КНДР (Северная Корея)", ["1", "1", "0", "0", "0", "0"])],
    );
    let e = parse("ru_sheet", &file, None).unwrap_err();
    assert_eq!(e.code(), "bad_layout");
    assert!(e.to_string().contains("year-to-date"), "{e}");
}

#[test]
fn a_workbook_without_purpose_columns_is_refused_listing_its_sheets() {
    let e = parse(
        "ru_sheet",
        &borders("ohss_khsm_encounters_usbp_fy25m11.xlsx"),
        None,
    )
    .unwrap_err();
    assert_eq!(e.code(), "bad_layout");
    assert!(e.to_string().contains("no row of purposes"), "{e}");
}

// ---- detection ----

#[test]
fn each_russian_file_is_detected_as_its_format() {
    for (file, format) in [
        (FSB_ENTRIES, "fsb_csv"),
        (FSB_EXITS, "fsb_csv"),
        (EMISS_EXCERPT, "emiss_sdmx"),
        (MVD_XLS, "ru_sheet"),
    ] {
        let found = formats::detect(&borders(file), Some(file)).unwrap();
        assert_eq!(found.name, format, "{file}");
    }
    let emiss = emiss_38479(NK_STUDY_2024);
    assert_eq!(
        formats::detect(emiss.as_bytes(), None).unwrap().name,
        "emiss_sdmx"
    );
}

#[test]
fn other_files_are_not_claimed_by_the_russian_formats() {
    let ours = ["fsb_csv", "emiss_sdmx", "ru_sheet"];
    for file in [
        MVD_CSV,
        "nk_entries_to_russia_reported_figures.csv",
        "emiss_indicator_catalog_border_migration_subset.csv",
        "cbp_sw_land_border_encounters_fy22-fy25aug.csv",
        "cbp_nationwide_encounters_aor_sample_tidytuesday.csv",
        "ohss_khsm_encounters_usbp_fy25m11.xlsx",
        "ohss_usbp_encounters_monthly_citizenship_fy2000-fy2025m11.csv",
        "eurostat_tour_occ_arn2_sample.tsv",
    ] {
        // A binary file no format knows is refused; that is not a claim either.
        if let Ok(found) = formats::detect(&borders(file), Some(file)) {
            assert!(
                !ours.contains(&found.name),
                "{file} taken as {}",
                found.name
            );
        }
    }
    let demo = borderwatch_ingest::demo_csv();
    assert_eq!(
        formats::detect(demo.as_bytes(), None).unwrap().name,
        "generic"
    );
}

// ---- properties: no input makes a parser panic ----

mod properties {
    use super::*;
    use proptest::prelude::*;

    const OURS: [&str; 3] = ["fsb_csv", "emiss_sdmx", "ru_sheet"];

    fn config(cases: u32) -> ProptestConfig {
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// A file's outcome is either an error with a message or rows that are accounted for.
    fn check(format: &str, bytes: &[u8]) {
        match parse(format, bytes, None) {
            Err(e) => assert!(!e.to_string().is_empty(), "{format}: empty error"),
            Ok(p) => {
                if format != "ru_sheet" {
                    // One figure per row (a sheet's row holds one per purpose column).
                    assert!(p.rejected.len() as u64 <= p.rows, "{format}: {p:?}");
                }
                for r in &p.rejected {
                    assert!(
                        !r.reason.is_empty(),
                        "{format}: a rejection without a reason"
                    );
                }
                if format == "fsb_csv" {
                    let non_total = p.observations.iter().filter(|o| o.category != "total");
                    assert_eq!(
                        non_total.count() as u64 + p.rejected.len() as u64 + p.duplicates,
                        p.rows,
                        "fsb_csv: every row is kept, repeated or rejected"
                    );
                }
            }
        }
        // Detection never panics either.
        let _ = formats::detect(bytes, None);
    }

    /// `base` with a few bytes overwritten, a slice cut out or the tail cut off.
    fn mutate(base: &[u8], edits: &[(usize, u8)], cut: (usize, usize), truncate: usize) -> Vec<u8> {
        let mut out = base.to_vec();
        for (at, byte) in edits {
            if !out.is_empty() {
                let i = at % out.len();
                out[i] = *byte;
            }
        }
        if !out.is_empty() {
            let from = cut.0 % out.len();
            let to = (from + cut.1 % 64).min(out.len());
            out.drain(from..to);
        }
        let keep = out.len() - truncate % (out.len() / 4 + 1);
        out.truncate(keep);
        out
    }

    fn fsb_head() -> Vec<u8> {
        borders(FSB_ENTRIES)[..16 * 1024].to_vec()
    }

    proptest! {
        #![proptest_config(config(128))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            for format in OURS {
                check(format, &bytes);
            }
        }

        #[test]
        fn arbitrary_text_in_the_formats_shapes_never_panics(
            lines in proptest::collection::vec("[A-Za-z0-9,\"/ .\\-–ёЁа-я]{0,60}", 0..20),
        ) {
            let body = lines.join("\n");
            check("fsb_csv", format!("ENG,Trans,Type,Value,ISO_A2,ISO_A3,M49,Date\n{body}").as_bytes());
            let sdmx = emiss_38479(&[("408", "5", body.as_str(), "2024", body.as_str())]);
            check("emiss_sdmx", sdmx.as_bytes());
        }

        #[test]
        fn mutated_fsb_and_sdmx_files_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..12),
            cut in (any::<usize>(), any::<usize>()),
            truncate in any::<usize>(),
        ) {
            check("fsb_csv", &mutate(&fsb_head(), &edits, cut, truncate));
            let sdmx = emiss_38479(NK_STUDY_2024);
            check("emiss_sdmx", &mutate(sdmx.as_bytes(), &edits, cut, truncate));
            check("emiss_sdmx", &mutate(&borders(EMISS_EXCERPT), &edits, cut, truncate));
        }
    }

    proptest! {
        // Workbooks are slow to open in a debug build: fewer cases.
        #![proptest_config(config(48))]

        #[test]
        fn mutated_workbooks_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..12),
            cut in (any::<usize>(), any::<usize>()),
            truncate in any::<usize>(),
        ) {
            check("ru_sheet", &mutate(&borders(MVD_XLS), &edits, cut, truncate));
            let xlsx = mvd_xlsx(
                "за III квартал 2024 года",
                &[("КНДР (Северная Корея)", ["4000", "50", "3765", "100", "35", "50"])],
            );
            check("ru_sheet", &mutate(&xlsx, &edits, cut, truncate));
        }
    }
}
