//! Shared by the format tests: reading `testdata/` (at the repository root) and looking up
//! parsed figures. A missing file is a failure that names it, never a skip.

// Each test file that includes this module uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

use borderwatch_ingest::Parsed;
use borderwatch_model::{Country, Period};

/// `testdata/borders/<name>`.
pub(crate) fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/borders")
        .join(name)
}

/// The bytes of `testdata/borders/<name>`.
pub(crate) fn read(name: &str) -> Vec<u8> {
    let path = path(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reference file {} is missing ({e}): testdata/ is part of the repository",
            path.display()
        )
    })
}

/// Every real file of `testdata/borders/`, by name.
pub(crate) fn all_files() -> Vec<String> {
    let dir = path("");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is missing ({e})", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= 10,
        "expected the real data files, found {names:?}"
    );
    names
}

/// The figure of one series and period, if the file gave it.
pub(crate) fn figure(
    p: &Parsed,
    source: &str,
    country: &str,
    category: &str,
    period: &str,
) -> Option<u64> {
    let country = Country::parse(country).unwrap();
    let period: Period = period.parse().unwrap();
    let found: Vec<u64> = p
        .observations
        .iter()
        .filter(|o| {
            o.source == source
                && o.country == country
                && o.category == category
                && o.period == period
        })
        .map(|o| o.count)
        .collect();
    assert!(
        found.len() <= 1,
        "{source}/{country}/{category} {period} given twice: {found:?}"
    );
    found.first().copied()
}

/// The formats this engineer's part adds: no other real file may be detected as one of them.
pub(crate) const US_AND_EUROPE: &[&str] = &["cbp_csv", "ohss_xlsx", "ohss_csv", "wide"];

/// One edit of a file for the property tests: at a position (a fraction of the length, so
/// any file size works), replace, insert or delete a byte.
pub(crate) type Edit = (proptest::sample::Index, u8, u8);

/// `base` with `edits` applied, cut to at most `keep` of its bytes (`keep.index(len + 1)`).
pub(crate) fn mutate(base: &[u8], edits: &[Edit], keep: proptest::sample::Index) -> Vec<u8> {
    let mut out = base.to_vec();
    for (at, byte, op) in edits {
        if out.is_empty() {
            out.push(*byte);
            continue;
        }
        let i = at.index(out.len());
        match op % 3 {
            0 => out[i] = *byte,
            1 => out.insert(i, *byte),
            _ => {
                out.remove(i);
            }
        }
    }
    out.truncate(keep.index(out.len() + 1));
    out
}

/// Text made of pieces the CSV formats know (delimiters, quotes, month and country names,
/// numbers, flags), for inputs that reach past the header.
pub(crate) fn pieces_text(picks: &[proptest::sample::Index]) -> String {
    const PIECES: &[&str] = &[
        ",",
        ",",
        "\t",
        ";",
        "\n",
        "\r\n",
        "\"",
        "\"\"",
        " ",
        ":",
        ": c",
        " e",
        "\\",
        "2024",
        "2025 (FYTD)",
        "FY2023",
        "OCT",
        "SEP",
        "01 October",
        "12 September",
        "13 Octember",
        "Mexico",
        "OTHER",
        "CHINA, PEOPLES REPUBLIC OF",
        "Atlantis",
        "EU27_2020",
        "BE1",
        "EL",
        "Apprehensions",
        "Title 42",
        "0",
        "7",
        "1,234",
        "-5",
        "12.5",
        "99999999999999999999999",
        "2009M01",
        "JAN2009",
        "2024Q3",
        "2024-Q5",
        "NR",
        "PC",
        "citizen",
        "geo\\TIME_PERIOD",
        "é",
        "\u{feff}",
        "\0",
    ];
    picks
        .iter()
        .map(|p| PIECES[p.index(PIECES.len())])
        .collect()
}
