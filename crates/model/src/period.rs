//! Reporting periods: a calendar year, quarter or month.
//!
//! Periods order by their start and, within one start, by length, so a sorted series reads
//! like a table. Text forms are `2024`, `2024-Q3` and `2024-07`.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How long one period of a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Freq {
    Month,
    Quarter,
    Year,
}

impl Freq {
    /// Periods of this length in one calendar year.
    pub fn per_year(self) -> u32 {
        match self {
            Freq::Month => 12,
            Freq::Quarter => 4,
            Freq::Year => 1,
        }
    }

    /// The English noun, as a journalist writes it ("the highest quarter on record").
    pub fn noun(self) -> &'static str {
        match self {
            Freq::Month => "month",
            Freq::Quarter => "quarter",
            Freq::Year => "year",
        }
    }
}

/// One reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Year(i32),
    /// Year and quarter 1..=4.
    Quarter(i32, u8),
    /// Year and month 1..=12.
    Month(i32, u8),
}

/// Why a period label could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a period: expected YYYY, YYYY-Qn (n 1-4) or YYYY-MM (01-12)")]
pub struct PeriodError {
    pub value: String,
}

impl Period {
    /// The years a figure's period may fall in: ingest rejects a row outside them (`0999`,
    /// `9999-Q4` are typing errors, not history), so every stored period prints as four
    /// digits.
    pub const YEARS: RangeInclusive<i32> = 1900..=2100;

    pub fn freq(self) -> Freq {
        match self {
            Period::Year(_) => Freq::Year,
            Period::Quarter(..) => Freq::Quarter,
            Period::Month(..) => Freq::Month,
        }
    }

    pub fn year(self) -> i32 {
        match self {
            Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) => y,
        }
    }

    /// Position within the year, 1-based (1 for a year).
    pub fn sub(self) -> u8 {
        match self {
            Period::Year(_) => 1,
            Period::Quarter(_, q) => q,
            Period::Month(_, m) => m,
        }
    }

    /// Whether the period's year is one of [`Period::YEARS`].
    pub fn in_years(self) -> bool {
        Period::YEARS.contains(&self.year())
    }

    /// A running index of periods of this length: consecutive periods differ by one.
    pub fn index(self) -> i64 {
        let per_year = i64::from(self.freq().per_year());
        i64::from(self.year()) * per_year + i64::from(self.sub()) - 1
    }

    /// The period of the same length `n` steps later (earlier when negative).
    pub fn offset(self, n: i64) -> Period {
        let per_year = i64::from(self.freq().per_year());
        let idx = self.index() + n;
        let year = idx.div_euclid(per_year) as i32;
        let sub = (idx.rem_euclid(per_year) + 1) as u8;
        match self {
            Period::Year(_) => Period::Year(year),
            Period::Quarter(..) => Period::Quarter(year, sub),
            Period::Month(..) => Period::Month(year, sub),
        }
    }

    /// The same period one year earlier.
    pub fn year_earlier(self) -> Period {
        self.offset(-i64::from(self.freq().per_year()))
    }

    /// First month (1..=12) the period covers, for ordering across lengths.
    fn start_month(self) -> u8 {
        match self {
            Period::Year(_) => 1,
            Period::Quarter(_, q) => (q - 1) * 3 + 1,
            Period::Month(_, m) => m,
        }
    }

    /// The quarter a month falls in.
    pub fn quarter_of(self) -> Option<Period> {
        match self {
            Period::Month(y, m) => Some(Period::Quarter(y, (m - 1) / 3 + 1)),
            _ => None,
        }
    }
}

impl PartialOrd for Period {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Period {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.year(), self.start_month(), self.freq()).cmp(&(
            other.year(),
            other.start_month(),
            other.freq(),
        ))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
        }
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PeriodError {
            value: s.to_string(),
        };
        let t = s.trim();
        let year = |y: &str| -> Result<i32, PeriodError> {
            if y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()) {
                y.parse().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        match t.split_once('-') {
            None => Ok(Period::Year(year(t)?)),
            Some((y, rest)) => {
                let y = year(y)?;
                if let Some(q) = rest.strip_prefix('Q').or_else(|| rest.strip_prefix('q')) {
                    match q {
                        "1" | "2" | "3" | "4" => {
                            Ok(Period::Quarter(y, q.parse().map_err(|_| err())?))
                        }
                        _ => Err(err()),
                    }
                } else if rest.len() == 2 && rest.bytes().all(|b| b.is_ascii_digit()) {
                    let m: u8 = rest.parse().map_err(|_| err())?;
                    if (1..=12).contains(&m) {
                        Ok(Period::Month(y, m))
                    } else {
                        Err(err())
                    }
                } else {
                    Err(err())
                }
            }
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_three_forms() {
        for s in ["2024", "2024-Q3", "2024-07"] {
            assert_eq!(s.parse::<Period>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn every_printed_period_of_a_four_digit_year_parses_back() {
        // Years print zero-padded (`0999`), so a printed period always reads back: `999`
        // did not, and a release marker naming it was dropped.
        for y in (0..=9999)
            .step_by(7)
            .chain([0, 999, 1899, 1900, 2100, 9999])
        {
            for p in [Period::Year(y), Period::Quarter(y, 4), Period::Month(y, 1)] {
                let text = p.to_string();
                assert_eq!(text.parse::<Period>(), Ok(p), "{text}");
            }
        }
        assert_eq!(Period::Year(999).to_string(), "0999");
        assert_eq!(Period::Month(5, 3).to_string(), "0005-03");
    }

    #[test]
    fn years_outside_the_sane_range_are_flagged() {
        assert!(Period::Year(1900).in_years() && Period::Month(2100, 12).in_years());
        assert!(!Period::Year(999).in_years() && !Period::Quarter(9999, 4).in_years());
        assert!(!Period::Year(1899).in_years() && !Period::Year(2101).in_years());
    }

    #[test]
    fn rejects_malformed_labels() {
        for s in [
            "24", "2024-Q5", "2024-13", "2024-00", "2024-7", "Q3-2024", "", "2024-Q",
        ] {
            assert!(s.parse::<Period>().is_err(), "{s} should fail");
        }
    }

    #[test]
    fn offsets_cross_year_boundaries() {
        let q = Period::Quarter(2024, 1);
        assert_eq!(q.offset(-1), Period::Quarter(2023, 4));
        assert_eq!(q.year_earlier(), Period::Quarter(2023, 1));
        assert_eq!(Period::Month(2024, 12).offset(1), Period::Month(2025, 1));
    }

    #[test]
    fn orders_by_start_then_length() {
        let mut v = vec![
            Period::Quarter(2024, 1),
            Period::Year(2024),
            Period::Month(2023, 12),
            Period::Month(2024, 1),
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                Period::Month(2023, 12),
                Period::Month(2024, 1),
                Period::Quarter(2024, 1),
                Period::Year(2024)
            ]
        );
    }
}
