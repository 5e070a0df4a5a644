//! The US federal fiscal year, as CBP and DHS label their months: fiscal year 2025 runs from
//! October 2024 to September 2025, so `FY2025 OCT` is 2024-10 and `FY2025 SEP` is 2025-09.

use borderwatch_model::Period;

/// Month names in calendar order, lowercase.
pub(crate) const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A fiscal year label: `2025`, `2025 (FYTD)` (the year to date), `FY2025`, `FY 2025`,
/// or a spreadsheet number `2025.0`.
pub(crate) fn fiscal_year(value: &str) -> Result<i32, String> {
    let t = value.trim();
    let bare = t
        .strip_suffix("(FYTD)")
        .or_else(|| t.strip_suffix("FYTD"))
        .unwrap_or(t)
        .trim();
    let bare = bare
        .strip_prefix("FY")
        .or_else(|| bare.strip_prefix("fy"))
        .unwrap_or(bare)
        .trim();
    let bare = bare.strip_suffix(".0").unwrap_or(bare);
    match bare.parse::<i32>() {
        Ok(y) if bare.len() == 4 && (1901..=2200).contains(&y) => Ok(y),
        _ => Err(format!(
            "`{t}` is not a fiscal year: expected four digits such as 2025, `2025 (FYTD)` or \
             FY2025"
        )),
    }
}

/// The calendar month (1-12) of a month label: `OCT`, `Oct`, `October`, or DHS's
/// `01 October` (the fiscal month's number, then its name; the two must agree).
pub(crate) fn month(value: &str) -> Result<u8, String> {
    let t = value.trim();
    let err = || {
        format!(
            "`{t}` is not a month: expected a month's name or its first three letters (OCT), \
             optionally after its number in the fiscal year (01 October)"
        )
    };
    let (number, name) = match t.split_once(char::is_whitespace) {
        Some((n, rest)) if n.bytes().all(|b| b.is_ascii_digit()) => (Some(n), rest.trim()),
        _ => (None, t),
    };
    let lower = name.to_lowercase();
    let found = MONTHS
        .iter()
        .position(|m| *m == lower || (lower.len() == 3 && m.starts_with(lower.as_str())))
        .ok_or_else(err)?;
    let month = found as u8 + 1;
    if let Some(n) = number {
        let expected = fiscal_index(month);
        if n.parse::<u8>().ok() != Some(expected) {
            return Err(format!(
                "`{t}`: {} is month {expected:02} of the fiscal year, not {n}",
                capitalized(MONTHS[found])
            ));
        }
    }
    Ok(month)
}

/// October is month 1 of the fiscal year, September month 12.
fn fiscal_index(month: u8) -> u8 {
    (month + 2) % 12 + 1
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The calendar month of `month` (1-12) in fiscal year `fiscal_year`.
pub(crate) fn period(fiscal_year: i32, month: u8) -> Period {
    if month >= 10 {
        Period::Month(fiscal_year - 1, month)
    } else {
        Period::Month(fiscal_year, month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn october_to_december_belong_to_the_previous_calendar_year() {
        assert_eq!(period(2025, 10), Period::Month(2024, 10));
        assert_eq!(period(2025, 12), Period::Month(2024, 12));
        assert_eq!(period(2025, 1), Period::Month(2025, 1));
        assert_eq!(period(2025, 9), Period::Month(2025, 9));
    }

    #[test]
    fn reads_fiscal_year_labels() {
        for v in ["2025", "2025 (FYTD)", "FY2025", "FY 2025", " 2025.0 "] {
            assert_eq!(fiscal_year(v), Ok(2025), "{v}");
        }
        for v in ["", "25", "20255", "year", "-2025", "0000"] {
            assert!(fiscal_year(v).is_err(), "{v}");
        }
    }

    #[test]
    fn reads_month_labels_and_checks_the_fiscal_number() {
        assert_eq!(month("OCT"), Ok(10));
        assert_eq!(month("sep"), Ok(9));
        assert_eq!(month("01 October"), Ok(10));
        assert_eq!(month("12 September"), Ok(9));
        assert_eq!(month("04 January"), Ok(1));
        let e = month("02 October").unwrap_err();
        assert!(e.contains("month 01 of the fiscal year"), "{e}");
        assert!(month("Octember").is_err());
        assert!(month("").is_err());
        assert!(month("ma").is_err());
    }
}
