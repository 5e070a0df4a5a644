//! `fsb_csv`: the FSB border service's quarterly crossings by citizenship (or destination)
//! and transport mode, as republished in CSV (EMISS indicators 38479 entries, 38480 exits).
//!
//! Header `ENG,Trans,Type,Value,ISO_A2,ISO_A3,M49,Date`; `Value` with thousands separators
//! (`"6,734"`); `Date` the quarter's last day (`9/30/2019` → 2019-Q3). `Type` `In` rows go to
//! the source `fsb` (entries of foreign citizens), `Out` rows to `fsb_exits` (exits of
//! Russian citizens), so the two never share a series. Each mode (`Trans`) is a category
//! (`air`, `car`, `rail`, `ship`, `walk`); the `total` of a country and quarter is the sum of
//! its five modes, emitted only when all five were accepted (analytics does not sum
//! categories, and a total missing a mode would be a false collapse).

use std::collections::HashMap;

use borderwatch_model::{Country, Observation, Period, TOTAL_CATEGORY, tokenize};

use crate::error::IngestError;
use crate::format::{Format, Options, Sniff};
use crate::rows::{Lines, Parsed, RowSink};

/// The format's name.
const NAME: &str = "fsb_csv";

/// Source of `Type` `In` rows (entries of foreign citizens into Russia).
pub(crate) const ENTRIES_SOURCE: &str = "fsb";
/// Suffix of the source of `Type` `Out` rows (exits of Russian citizens).
pub(crate) const EXITS_SUFFIX: &str = "_exits";

/// Transport modes as the file writes them, and their category tokens.
const MODES: &[(&str, &str)] = &[
    ("air", "air"),
    ("car", "car"),
    ("rail", "rail"),
    ("ship", "ship"),
    ("walk", "walk"),
];

/// The columns the parser needs; `ENG`, `ISO_A2` and `M49` are read when present.
const REQUIRED: &[&str] = &["trans", "type", "value", "iso_a3", "date"];

pub(crate) const FORMAT: Format = Format {
    name: NAME,
    description: "FSB quarterly border crossings by citizenship and transport mode (CSV: \
                  ENG,Trans,Type,Value,ISO_A2,ISO_A3,M49,Date); entries → source fsb, exits → \
                  fsb_exits",
    sniff,
    parse,
};

/// The file's first non-blank line names at least the columns the parser needs.
fn sniff(sniff: &Sniff<'_>) -> bool {
    let Some(first) = sniff.first_line() else {
        return false;
    };
    let names: Vec<String> = first
        .split([',', ';', '\t'])
        .map(|n| n.trim().trim_matches('"').to_lowercase())
        .collect();
    REQUIRED.iter().all(|r| names.iter().any(|n| n == r))
}

fn parse(bytes: &[u8], options: &Options<'_>) -> Result<Parsed, IngestError> {
    let text = crate::decode::decode_text(bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let entries = match options.source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => tokenize(s).ok_or_else(|| IngestError::BadSource {
            value: s.to_string(),
        })?,
        None => ENTRIES_SOURCE.to_string(),
    };
    let exits = format!("{entries}{EXITS_SUFFIX}");

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut lines = Lines::new(text);
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => return Err(IngestError::NoHeader),
            Some(Err(e)) => return Err(csv_error(e)),
            Some(Ok(r)) if r.iter().all(|f| f.is_empty()) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let header_line = lines.of(header.position());
    let names: Vec<String> = header.iter().map(|h| h.to_lowercase()).collect();
    let col = |name: &str| names.iter().position(|n| n == name);
    let mut missing = REQUIRED.iter().filter(|r| col(r).is_none()).peekable();
    if missing.peek().is_some() {
        return Err(IngestError::BadLayout {
            format: NAME,
            message: format!(
                "line {header_line}: no column {} (found: {}); the FSB CSV header is \
                 ENG,Trans,Type,Value,ISO_A2,ISO_A3,M49,Date",
                missing
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                names.join(", ")
            ),
        });
    }
    let idx = |name: &str| col(name).unwrap_or(0);
    let (trans, kind, value, iso3, date) = (
        idx("trans"),
        idx("type"),
        idx("value"),
        idx("iso_a3"),
        idx("date"),
    );
    let eng = col("eng");

    let mut sink = RowSink::new(options.limits);
    // Per source, country and quarter: the modes accepted (first figure of each) and the
    // line of the last one, for the derived total.
    let mut totals: HashMap<SeriesQuarter, ([Option<u64>; 5], u64)> = HashMap::new();
    let mut order: Vec<(String, Country, Period)> = Vec::new();
    for record in records {
        let record = record.map_err(csv_error)?;
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        sink.count_row()?;
        let line = lines.of(record.position());
        if record.len() != names.len() {
            let reason = format!(
                "expected {} fields as in the header (line {header_line}), found {}; a value \
                 with a `,` in it (\"6,734\") must be in double quotes",
                names.len(),
                record.len()
            );
            let raw = record.iter().collect::<Vec<_>>().join(",");
            sink.reject(line, "", &raw, reason);
            continue;
        }
        let get = |i: usize| record.get(i).unwrap_or("");
        let checked = (|| {
            let source = match get(kind).to_lowercase().as_str() {
                "in" => entries.clone(),
                "out" => exits.clone(),
                _ => {
                    return Err((
                        "Type",
                        get(kind).to_string(),
                        "expected `In` (entries of foreign citizens) or `Out` (exits of \
                         Russian citizens)"
                            .to_string(),
                    ));
                }
            };
            let lower = get(trans).to_lowercase();
            let Some(mode) = MODES.iter().position(|(m, _)| *m == lower) else {
                return Err((
                    "Trans",
                    get(trans).to_string(),
                    "expected a transport mode: Air, Car, Rail, Ship or Walk".to_string(),
                ));
            };
            let country = Country::parse(get(iso3))
                .or_else(|e| match eng.map(get).filter(|n| !n.is_empty()) {
                    Some(name) => Country::parse(name),
                    None => Err(e),
                })
                .map_err(|_| {
                    let name = eng.map(get).unwrap_or("");
                    (
                        "ISO_A3",
                        get(iso3).to_string(),
                        format!(
                            "`{}` (ENG `{name}`) is not a known country code or name",
                            get(iso3)
                        ),
                    )
                })?;
            let period = quarter_of_date(get(date))
                .map_err(|reason| ("Date", get(date).to_string(), reason))?;
            let count = thousands_count(get(value))
                .map_err(|reason| ("Value", get(value).to_string(), reason))?;
            Ok((source, mode, country, period, count))
        })();
        match checked {
            Err((column, raw, reason)) => sink.reject(line, column, &raw, reason),
            Ok((source, mode, country, period, count)) => {
                let key = (source.clone(), country, period);
                let entry = totals.entry(key.clone()).or_insert_with(|| {
                    order.push(key);
                    ([None; 5], line)
                });
                if entry.0[mode].is_none() {
                    entry.0[mode] = Some(count);
                    entry.1 = line;
                }
                let obs = Observation {
                    source,
                    country,
                    category: MODES[mode].1.to_string(),
                    period,
                    count,
                    release_id: String::new(),
                };
                sink.keep(line, obs, get(value));
            }
        }
    }
    for key in order {
        let Some((modes, line)) = totals.remove(&key) else {
            continue;
        };
        if modes.iter().all(Option::is_some) {
            let total: u64 = modes.iter().flatten().sum();
            let (source, country, period) = key;
            let obs = Observation {
                source,
                country,
                category: TOTAL_CATEGORY.to_string(),
                period,
                count: total,
                release_id: String::new(),
            };
            sink.keep(line, obs, &total.to_string());
        }
    }
    Ok(sink.finish())
}

/// Source, country and quarter: the modes of one total.
type SeriesQuarter = (String, Country, Period);

/// `M/D/YYYY`, the last day of a quarter, as that quarter.
pub(crate) fn quarter_of_date(value: &str) -> Result<Period, String> {
    let bad = || {
        format!(
            "`{value}` is not the last day of a quarter as M/D/YYYY (3/31, 6/30, 9/30 or \
             12/31 of a year): the FSB file dates each quarter by its last day"
        )
    };
    let parts: Vec<&str> = value.trim().split('/').collect();
    let [m, d, y] = parts.as_slice() else {
        return Err(bad());
    };
    let num = |s: &str, max_len: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (Some(m), Some(d), Some(y)) = (num(m, 2), num(d, 2), num(y, 4)) else {
        return Err(bad());
    };
    if y.to_string().len() != 4 {
        return Err(bad());
    }
    let q = match (m, d) {
        (3, 31) => 1,
        (6, 30) => 2,
        (9, 30) => 3,
        (12, 31) => 4,
        _ => return Err(bad()),
    };
    Ok(Period::Quarter(y as i32, q))
}

/// A count as the file writes it: digits, optionally grouped by `,` in threes (`6,734`).
pub(crate) fn thousands_count(value: &str) -> Result<u64, String> {
    let t = value.trim();
    if t.is_empty() {
        return Err("the value is empty: the FSB file writes 0 for none".into());
    }
    let groups: Vec<&str> = t.split(',').collect();
    let well_grouped = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && !groups[0].is_empty()
        && groups[0].len() <= if groups.len() > 1 { 3 } else { usize::MAX }
        && groups[1..].iter().all(|g| g.len() == 3);
    if !well_grouped {
        return Err(if t.starts_with('-') {
            format!("`{t}` is negative: a count of crossings is a whole number from 0 up")
        } else {
            format!(
                "`{t}` is not a whole count: expected digits, optionally grouped by commas \
                 in threes (6,734)"
            )
        });
    }
    groups
        .concat()
        .parse()
        .map_err(|_| format!("`{t}` is too large to be a count"))
}

fn csv_error(e: csv::Error) -> IngestError {
    IngestError::Csv {
        line: e.position().map(|p| p.line()).unwrap_or(0),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_end_dates_are_quarters_and_other_dates_are_refused() {
        assert_eq!(quarter_of_date("9/30/2019"), Ok(Period::Quarter(2019, 3)));
        assert_eq!(quarter_of_date("03/31/2010"), Ok(Period::Quarter(2010, 1)));
        assert_eq!(quarter_of_date("12/31/2020"), Ok(Period::Quarter(2020, 4)));
        for bad in [
            "9/29/2019",
            "2019-09-30",
            "6/31/2019",
            "9/30/19",
            "",
            "9/30/2019/1",
        ] {
            let e = quarter_of_date(bad).unwrap_err();
            assert!(e.contains("last day of a quarter"), "{bad}: {e}");
        }
    }

    #[test]
    fn counts_take_thousands_separators_in_threes_only() {
        assert_eq!(thousands_count("6,734"), Ok(6734));
        assert_eq!(thousands_count("1,234,567"), Ok(1_234_567));
        assert_eq!(thousands_count("0"), Ok(0));
        assert_eq!(thousands_count("123456"), Ok(123_456));
        for bad in [
            "6,73", "67,34,5", "-5", "1.5", "", ",123", "1234,567", "abc",
        ] {
            assert!(thousands_count(bad).is_err(), "{bad}");
        }
        assert!(thousands_count("-5").unwrap_err().contains("negative"));
    }
}
