//! One row of the generic format checked: its source, period, country, category and count
//! parsed (each distinct cell text once), and the row kept or rejected with its reason.

use borderwatch_model::{Country, Observation, Period, tokenize};

use crate::error::IngestError;
use crate::purpose::category_token;
use crate::rows::RowSink;

/// The default source as a token, or the error for one that cannot be.
pub(super) fn default_source_token(
    default_source: Option<&str>,
) -> Result<Option<String>, IngestError> {
    match default_source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Some(tokenize(s).ok_or_else(|| IngestError::BadSource {
            value: s.to_string(),
        })?)),
        None => Ok(None),
    }
}

/// One data row's raw values, before checking.
pub(super) struct Raw<'a> {
    /// `None` when the file has no source column or the object no source key.
    pub(super) source: Option<&'a str>,
    pub(super) period: &'a str,
    pub(super) country: &'a str,
    /// The column the category came from (`category` or `purpose`), for messages.
    pub(super) category_column: &'static str,
    pub(super) category: &'a str,
    pub(super) count: &'a str,
}

/// Distinct cell texts remembered per column before a memo starts over (a bound on memory
/// for files whose every cell differs).
const MEMO_CAP: usize = 1 << 16;

/// What each distinct cell text of a column parses to. A file repeats a few sources,
/// periods, countries and categories millions of times: each text is checked once.
#[derive(Debug)]
struct Memo<T>(hashbrown::HashMap<Box<str>, T>);

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo(hashbrown::HashMap::default())
    }
}

impl<T> Memo<T> {
    fn get(&mut self, key: &str, compute: impl FnOnce(&str) -> T) -> &T {
        if self.0.len() >= MEMO_CAP {
            self.0.clear();
        }
        self.0.entry_ref(key).or_insert_with(|| compute(key))
    }
}

/// The memos of the four checked columns; an `Err` holds the reason quoted back.
#[derive(Debug, Default)]
pub(super) struct Memos {
    source: Memo<Result<String, String>>,
    period: Memo<Result<Period, String>>,
    country: Memo<Result<Country, String>>,
    category: Memo<Result<String, String>>,
}

/// Checks rows one by one and hands what they give to the sink.
pub(super) struct Rows {
    pub(super) default_source: Option<String>,
    pub(super) sink: RowSink,
    pub(super) memo: Memos,
}

impl Rows {
    pub(super) fn count_row(&mut self) -> Result<(), IngestError> {
        self.sink.count_row()
    }

    pub(super) fn reject(&mut self, line: u64, column: &str, value: &str, reason: String) {
        self.sink.reject(line, column, value, reason);
    }

    pub(super) fn accept(&mut self, line: u64, raw: &Raw<'_>) {
        match self.check(raw) {
            Ok(obs) => self.sink.keep(line, obs, raw.count),
            Err((column, value, reason)) => self.sink.reject(line, column, value, reason),
        }
    }

    /// The observation a row gives, or the first column that is wrong with it (its name,
    /// its value and the reason).
    fn check<'r>(&mut self, raw: &Raw<'r>) -> Result<Observation, (&'static str, &'r str, String)> {
        let source = match raw.source.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => match self.memo.source.get(s, |s| {
                tokenize(s).ok_or_else(|| {
                    format!(
                        "`{s}` is not a usable source name: use Latin letters, digits, spaces, \
                         `-` and `_` (at most 64), e.g. `fsb`"
                    )
                })
            }) {
                Ok(token) => token.clone(),
                Err(reason) => return Err(("source", s, reason.clone())),
            },
            None => match &self.default_source {
                Some(s) => s.clone(),
                None => {
                    return Err((
                        "source",
                        "",
                        "the source is empty and none was given with the file: fill it in, or \
                         name the source with the upload"
                            .to_string(),
                    ));
                }
            },
        };
        let period = match self.memo.period.get(raw.period, |p| {
            p.trim()
                .parse::<Period>()
                .map_err(|e: borderwatch_model::PeriodError| e.to_string())
        }) {
            Ok(p) => *p,
            Err(reason) => return Err(("period", raw.period, reason.clone())),
        };
        let country = match self.memo.country.get(raw.country, |c| {
            Country::parse(c).map_err(|e| e.to_string())
        }) {
            Ok(c) => *c,
            Err(reason) => return Err(("country", raw.country, reason.clone())),
        };
        let category = match self.memo.category.get(raw.category, category_token) {
            Ok(token) => token.clone(),
            Err(reason) => return Err((raw.category_column, raw.category, reason.clone())),
        };
        let count = parse_count(raw.count).map_err(|reason| ("count", raw.count, reason))?;
        Ok(Observation {
            source,
            country,
            category,
            period,
            count,
            release_id: String::new(),
        })
    }
}

/// A count in the generic format: plain digits, nothing else.
fn parse_count(value: &str) -> Result<u64, String> {
    let t = value.trim();
    if t.is_empty() {
        return Err(
            "the count is empty: write 0 for none, or leave the row out if the figure \
                    is unknown"
                .into(),
        );
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| format!("the count `{t}` is too large"));
    }
    let digits_and = |extra: &[char]| t.chars().all(|c| c.is_ascii_digit() || extra.contains(&c));
    Err(if t.starts_with('-') {
        format!("the count `{t}` is negative: counts are whole numbers from 0 up")
    } else if digits_and(&[',', ' ', '\u{a0}', '\u{202f}', '\'']) {
        format!("the count `{t}` has a thousands separator: write plain digits (1234, not 1,234)")
    } else if digits_and(&['.', 'e', 'E', '+']) {
        format!("the count `{t}` is not a whole number in plain digits: write e.g. 12, not 12.0")
    } else {
        format!("`{t}` is not a count: write a whole number from 0 up in plain digits")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::whole::parse_generic;

    #[test]
    fn rejects_unknown_country_with_row_and_column() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q3,PRK,study,3765\n\
                    fsb,2024-Q3,Atlantis,study,5\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.rejected.len(), 1);
        let r = &p.rejected[0];
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (3, "country", "Atlantis")
        );
        assert!(r.reason.contains("not a known country"), "{}", r.reason);
    }

    #[test]
    fn rejects_bad_period_with_row_and_column() {
        let p = parse_generic(
            "source,period,country,category,count\nfsb,2024-Q5,PRK,study,1\n",
            None,
        )
        .unwrap();
        let r = &p.rejected[0];
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (2, "period", "2024-Q5")
        );
        assert!(r.reason.contains("not a period"));
    }

    #[test]
    fn counts_must_be_plain_non_negative_integers() {
        let text = "source;period;country;category;count\n\
                    fsb;2024-Q1;PRK;study;\"1,234\"\n\
                    fsb;2024-Q2;PRK;study;12.0\n\
                    fsb;2024-Q3;PRK;study;-3\n\
                    fsb;2024-Q4;PRK;study;many\n\
                    fsb;2025-Q1;PRK;study;\n\
                    fsb;2025-Q2;PRK;study;0\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.observations[0].count, 0);
        let reasons: Vec<&str> = p.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].contains("thousands separator"), "{reasons:?}");
        assert!(reasons[1].contains("not a whole number"), "{reasons:?}");
        assert!(reasons[2].contains("negative"), "{reasons:?}");
        assert!(reasons[3].contains("not a count"), "{reasons:?}");
        assert!(reasons[4].contains("empty"), "{reasons:?}");
        assert!(p.rejected.iter().all(|r| r.column == "count"));
        assert_eq!(
            p.rejected.iter().map(|r| r.row).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn empty_or_unusable_category_is_rejected() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q1,PRK,,1\n\
                    fsb,2024-Q2,PRK,学习,1\n";
        let p = parse_generic(text, None).unwrap();
        assert!(p.observations.is_empty());
        assert!(p.rejected[0].reason.contains("category is empty"));
        assert!(p.rejected[1].reason.contains("cannot be a category name"));
        assert!(p.rejected.iter().all(|r| r.column == "category"));
    }

    #[test]
    fn unusable_source_is_rejected_per_row() {
        let p = parse_generic(
            "source,period,country,category,count\nФСБ,2024,PRK,study,1\n",
            None,
        )
        .unwrap();
        assert_eq!(p.rejected[0].column, "source");
        assert!(p.rejected[0].reason.contains("not a usable source name"));
    }

    #[test]
    fn source_column_wins_over_the_default_and_fills_empty_cells() {
        let text =
            "source,period,country,category,count\ncbp,2024,MEX,encounters,1\n,2024,PRK,study,2\n";
        let p = parse_generic(text, Some("fsb")).unwrap();
        let sources: Vec<&str> = p.observations.iter().map(|o| o.source.as_str()).collect();
        assert_eq!(sources, vec!["cbp", "fsb"]);
    }

    #[test]
    fn unusable_default_source_is_a_file_error() {
        let e = parse_generic("period,country,category,count\n", Some("ФСБ")).unwrap_err();
        assert!(matches!(e, IngestError::BadSource { .. }), "{e:?}");
    }
}
