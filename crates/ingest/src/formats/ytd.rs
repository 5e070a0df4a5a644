//! Russian period labels and year-to-date arithmetic.
//!
//! Russian releases label a figure by the months it covers: a month (`сентябрь`), a quarter
//! (`III квартал`, `июль-сентябрь`), or the months since January (`январь-сентябрь`,
//! `I полугодие`, `год`). Year-to-date figures are differenced within their year into the
//! quarter (or month) they add: `январь-сентябрь` minus `январь-июнь` is the third quarter.
//! A year-to-date figure that falls within a year is an error of the source, reported as a
//! rejected figure that names both periods and values, never turned into a negative count.

use borderwatch_model::Period;

/// The nominative month names, January first.
const MONTHS: [&str; 12] = [
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
];

/// English month names, for messages.
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// What a period label covers within its year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// One month, 1..=12.
    Month(u8),
    /// One quarter, 1..=4.
    Quarter(u8),
    /// The months from January to this one (1..=12); 12 is the whole year.
    ToDate(u8),
}

impl Label {
    /// The period of a single-period label in `year`; `None` for year-to-date labels.
    pub(crate) fn single(self, year: i32) -> Option<Period> {
        match self {
            Label::Month(m) => Some(Period::Month(year, m)),
            Label::Quarter(q) => Some(Period::Quarter(year, q)),
            Label::ToDate(_) => None,
        }
    }
}

fn month(word: &str) -> Option<u8> {
    MONTHS.iter().position(|m| *m == word).map(|i| i as u8 + 1)
}

fn ordinal(word: &str) -> Option<u8> {
    let word = word
        .trim_end_matches("-й")
        .trim_end_matches("-ый")
        .trim_end_matches("-ой");
    match word {
        "i" | "1" => Some(1),
        "ii" | "2" => Some(2),
        "iii" | "3" => Some(3),
        "iv" | "4" => Some(4),
        _ => None,
    }
}

/// Reads a Russian period label (case, `ё`, dashes and spacing ignored).
pub(crate) fn parse_label(label: &str) -> Result<Label, String> {
    let norm: String = label
        .to_lowercase()
        .replace('ё', "е")
        .replace(['–', '—', '−', '‑'], "-")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" - ", "-")
        .replace(" -", "-")
        .replace("- ", "-");
    let bad = || {
        format!(
            "`{label}` is not a period label borderwatch knows: expected a month (сентябрь), a \
             quarter (III квартал, июль-сентябрь), or months since January (январь-сентябрь, \
             I полугодие, 9 месяцев, год)"
        )
    };
    if norm == "год" || norm == "за год" {
        return Ok(Label::ToDate(12));
    }
    if let Some(m) = month(&norm) {
        return Ok(Label::Month(m));
    }
    let words: Vec<&str> = norm.split(' ').collect();
    match words.as_slice() {
        [n, "квартал"] => return ordinal(n).map(Label::Quarter).ok_or_else(bad),
        [n, "полугодие"] => {
            return match ordinal(n) {
                Some(1) => Ok(Label::ToDate(6)),
                Some(2) => Err(format!(
                    "`{label}` (July to December) cannot be placed: send the year-to-date \
                     figures (январь-сентябрь, январь-декабрь) or the quarters instead"
                )),
                _ => Err(bad()),
            };
        }
        [n, "месяцев" | "месяца"] => {
            return match n.parse::<u8>() {
                Ok(m @ 1..=12) => Ok(Label::ToDate(m)),
                _ => Err(bad()),
            };
        }
        _ => {}
    }
    if let Some((from, to)) = norm.split_once('-') {
        let (Some(a), Some(b)) = (month(from), month(to)) else {
            return Err(bad());
        };
        if a == 1 && b > 1 {
            return Ok(Label::ToDate(b));
        }
        if b == a + 2 && a % 3 == 1 {
            return Ok(Label::Quarter(b / 3));
        }
        return Err(format!(
            "`{label}` covers months {a}-{b}, which is neither a quarter nor a span starting \
             in January: borderwatch cannot place it"
        ));
    }
    Err(bad())
}

/// One year-to-date figure of a series within one year.
#[derive(Debug, Clone)]
pub(crate) struct ToDate {
    /// The last month covered, 1..=12.
    pub(crate) end: u8,
    pub(crate) value: u64,
    /// The label as the file wrote it, for messages.
    pub(crate) label: String,
}

/// What one year-to-date figure gives: the periods it adds (the difference to the figure
/// before it; for December also the year itself), or why it gives nothing.
pub(crate) type Pieces = Result<Vec<(Period, u64)>, String>;

/// An accepted figure: end month, value, label and what it gave.
type Accepted<'a> = (u8, u64, &'a str, Vec<(Period, u64)>);

/// Differences the year-to-date figures of one series in `year` into quarters or months.
/// The answer is aligned with `points`. A figure ending three months after the one before it
/// gives that quarter, one month after it that month; December also gives the year. A figure
/// below an earlier one, or one that spans something else (`январь-июнь` with no
/// `январь-март`), gives an error that names the figures.
pub(crate) fn difference(year: i32, points: &[ToDate]) -> Vec<Pieces> {
    let mut out: Vec<Pieces> = vec![Ok(Vec::new()); points.len()];
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| points[i].end);
    // The last figure accepted: its end month, value and label.
    let mut prev: Option<(u8, u64, &str)> = None;
    // Accepted figures by end month, for repeats.
    let mut accepted: Vec<Accepted<'_>> = Vec::new();
    for i in order {
        let p = &points[i];
        if let Some((_, value, label, pieces)) = accepted.iter().find(|a| a.0 == p.end) {
            out[i] = if *value == p.value {
                Ok(pieces.clone())
            } else {
                Err(format!(
                    "{} {year} is given twice: {} here and {value} as `{label}`; the first was \
                     kept: remove one",
                    p.label, p.value
                ))
            };
            continue;
        }
        let (pe, pv, pl) = prev.unwrap_or((0, 0, ""));
        if p.value < pv {
            out[i] = Err(format!(
                "a year-to-date figure cannot fall within a year: {} {year} is {}, below {pl} \
                 {year} ({pv}); check both figures with the source",
                p.label, p.value
            ));
            continue;
        }
        let diff = p.value - pv;
        let mut pieces = Vec::new();
        if p.end == 12 {
            pieces.push((Period::Year(year), p.value));
        }
        if pe + 1 == p.end {
            pieces.push((Period::Month(year, p.end), diff));
        } else if pe % 3 == 0 && p.end == pe + 3 {
            pieces.push((Period::Quarter(year, p.end / 3), diff));
        } else if p.end != 12 {
            let before = match (pe, usize::from(p.end)) {
                (0, end @ 4..) => format!("no figure for January-{}", EN_MONTHS[end - 4]),
                (0, _) => "no figure for January".to_string(),
                _ => format!("the figure before it is {pl} ({pv})"),
            };
            out[i] = Err(format!(
                "{} {year} ({}) cannot be split into quarters or months: {before}; send the \
                 year-to-date figure that ends three months earlier too",
                p.label, p.value
            ));
            continue;
        }
        prev = Some((p.end, p.value, &p.label));
        accepted.push((p.end, p.value, &p.label, pieces.clone()));
        out[i] = Ok(pieces);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(end: u8, value: u64, label: &str) -> ToDate {
        ToDate {
            end,
            value,
            label: label.into(),
        }
    }

    #[test]
    fn reads_months_quarters_and_year_to_date_labels() {
        assert_eq!(parse_label("январь"), Ok(Label::Month(1)));
        assert_eq!(parse_label(" Сентябрь "), Ok(Label::Month(9)));
        assert_eq!(parse_label("III квартал"), Ok(Label::Quarter(3)));
        assert_eq!(parse_label("1 квартал"), Ok(Label::Quarter(1)));
        assert_eq!(parse_label("IV квартал"), Ok(Label::Quarter(4)));
        assert_eq!(parse_label("июль-сентябрь"), Ok(Label::Quarter(3)));
        assert_eq!(parse_label("январь–сентябрь"), Ok(Label::ToDate(9)));
        assert_eq!(parse_label("январь - июнь"), Ok(Label::ToDate(6)));
        assert_eq!(parse_label("Январь-декабрь"), Ok(Label::ToDate(12)));
        assert_eq!(parse_label("год"), Ok(Label::ToDate(12)));
        assert_eq!(parse_label("I полугодие"), Ok(Label::ToDate(6)));
        assert_eq!(parse_label("9 месяцев"), Ok(Label::ToDate(9)));
        assert_eq!(parse_label("январь-март"), Ok(Label::ToDate(3)));
        for bad in [
            "",
            "весна",
            "V квартал",
            "март-май",
            "II полугодие",
            "13 месяцев",
        ] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn differences_quarterly_year_to_date_into_quarters_and_the_year() {
        // Given out of order, as a file may.
        let points = [
            td(9, 600, "январь-сентябрь"),
            td(3, 100, "январь-март"),
            td(12, 1000, "январь-декабрь"),
            td(6, 250, "январь-июнь"),
        ];
        let out = difference(2019, &points);
        assert_eq!(out[1], Ok(vec![(Period::Quarter(2019, 1), 100)]));
        assert_eq!(out[3], Ok(vec![(Period::Quarter(2019, 2), 150)]));
        assert_eq!(out[0], Ok(vec![(Period::Quarter(2019, 3), 350)]));
        assert_eq!(
            out[2],
            Ok(vec![
                (Period::Year(2019), 1000),
                (Period::Quarter(2019, 4), 400)
            ])
        );
    }

    #[test]
    fn differences_monthly_year_to_date_into_months() {
        let points = [td(1, 10, "январь"), td(2, 25, "январь-февраль")];
        let out = difference(2024, &points);
        assert_eq!(out[0], Ok(vec![(Period::Month(2024, 1), 10)]));
        assert_eq!(out[1], Ok(vec![(Period::Month(2024, 2), 15)]));
    }

    #[test]
    fn a_falling_year_to_date_figure_is_an_error_naming_both_figures() {
        let points = [
            td(3, 100, "январь-март"),
            td(6, 90, "январь-июнь"),
            td(9, 300, "январь-сентябрь"),
        ];
        let out = difference(2019, &points);
        let e = out[1].clone().unwrap_err();
        assert!(e.contains("январь-июнь 2019 is 90"), "{e}");
        assert!(e.contains("январь-март 2019 (100)"), "{e}");
        // Against the last good figure, January-September spans two quarters.
        let e = out[2].clone().unwrap_err();
        assert!(e.contains("cannot be split"), "{e}");
        assert!(
            out.iter().flatten().flatten().all(|(_, v)| *v <= 300),
            "no wrapped-around count: {out:?}"
        );
    }

    #[test]
    fn a_year_without_the_figure_before_keeps_the_year_only() {
        let out = difference(2019, &[td(6, 50, "январь-июнь"), td(12, 80, "год")]);
        assert!(
            out[0]
                .clone()
                .unwrap_err()
                .contains("no figure for January-March")
        );
        assert_eq!(out[1], Ok(vec![(Period::Year(2019), 80)]));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Quarter-end year-to-date figures in any order: growing ones give quarters that sum
        /// to the year; a falling one is an error, and no piece is ever above the largest figure.
        #[test]
        fn quarter_pieces_sum_to_the_year_or_the_fall_is_an_error(
            values in proptest::collection::vec(0u64..10_000, 4),
            shuffle in proptest::collection::vec(proptest::prelude::any::<u8>(), 4),
        ) {
            let mut idx = [0usize, 1, 2, 3];
            idx.sort_by_key(|i| shuffle[*i]);
            let points: Vec<ToDate> = idx
                .iter()
                .map(|&i| td(3 * (i as u8 + 1), values[i], "x"))
                .collect();
            let out = difference(2020, &points);
            let growing = values.windows(2).all(|w| w[0] <= w[1]);
            let max = values.iter().copied().max().unwrap_or(0);
            if growing {
                let mut quarters = 0;
                for pieces in &out {
                    let pieces = pieces.clone().unwrap();
                    for (period, count) in pieces {
                        if let Period::Quarter(..) = period {
                            quarters += count;
                        }
                    }
                }
                proptest::prop_assert_eq!(quarters, values[3]);
            } else {
                proptest::prop_assert!(out.iter().any(Result::is_err));
            }
            for pieces in out.iter().flatten() {
                for (_, count) in pieces {
                    proptest::prop_assert!(*count <= max);
                }
            }
        }
    }

    #[test]
    fn a_repeated_figure_repeats_its_pieces_and_a_conflicting_one_is_an_error() {
        let points = [
            td(12, 80, "год"),
            td(12, 80, "январь-декабрь"),
            td(12, 81, "январь-декабрь"),
        ];
        let out = difference(2019, &points);
        assert_eq!(out[0], out[1]);
        assert!(out[2].clone().unwrap_err().contains("given twice"));
    }
}
