//! What every format's parser produces, and the checks they all share: the row limit,
//! rejected rows quoted back with row, column and reason, and repeated rows kept once.

use borderwatch_model::{Country, Observation, Period, RejectedRow};

use crate::error::IngestError;

/// The most data rows one file may have unless the caller says otherwise.
pub const DEFAULT_MAX_ROWS: u64 = 5_000_000;

/// Longest raw value quoted back in a rejected row.
pub(crate) const MAX_QUOTED: usize = 200;

/// Bounds on what one file may make ingest do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Data rows (not counting the header and blank lines); more refuses the file.
    pub max_rows: u64,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_rows: DEFAULT_MAX_ROWS,
        }
    }
}

/// What a file yielded. Every data row is exactly one of: an observation, a rejected row, or
/// an exact repeat of an earlier row (`duplicates`), so `rows` is the sum of the three.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Accepted figures in file order, `release_id` still empty.
    pub observations: Vec<Observation>,
    pub rejected: Vec<RejectedRow>,
    /// Data rows read: the header and blank lines are not rows.
    pub rows: u64,
    /// Rows that repeated an earlier row exactly (same series, period and count): kept once.
    pub duplicates: u64,
}

/// A series and period by the interned numbers of its source and category.
type SeriesPeriod = (usize, Country, usize, Period);

/// Collects one file's rows: observations, rejected rows and repeats, under the limits.
#[derive(Debug)]
pub struct RowSink {
    limits: ParseLimits,
    /// The first count and line of every series and period seen.
    seen: hashbrown::HashMap<SeriesPeriod, (u64, u64)>,
    /// Sources and categories by number, so the key of a row costs no allocation.
    sources: Interner,
    categories: Interner,
    out: Parsed,
}

/// Strings numbered in order of first appearance.
#[derive(Debug, Default)]
struct Interner(hashbrown::HashMap<String, usize>);

impl Interner {
    fn id(&mut self, s: &str) -> usize {
        if let Some(&id) = self.0.get(s) {
            return id;
        }
        let id = self.0.len();
        self.0.insert(s.to_string(), id);
        id
    }
}

impl RowSink {
    pub fn new(limits: ParseLimits) -> RowSink {
        RowSink {
            limits,
            seen: hashbrown::HashMap::default(),
            sources: Interner::default(),
            categories: Interner::default(),
            out: Parsed::default(),
        }
    }

    /// Makes room for `rows` more rows (a hint; parsers that can count lines cheaply give it).
    pub fn reserve(&mut self, rows: u64) {
        let rows = usize::try_from(rows).unwrap_or(usize::MAX).min(1 << 26);
        self.out.observations.reserve(rows);
        self.seen.reserve(rows);
    }

    /// Counts one more data row against the limit.
    pub fn count_row(&mut self) -> Result<(), IngestError> {
        self.out.rows += 1;
        if self.out.rows > self.limits.max_rows {
            return Err(IngestError::TooManyRows {
                limit: self.limits.max_rows,
            });
        }
        Ok(())
    }

    /// Records a rejected row; `value` is quoted back shortened.
    pub fn reject(&mut self, line: u64, column: &str, value: &str, reason: String) {
        self.out.rejected.push(RejectedRow {
            row: line,
            column: column.to_string(),
            value: quote(value),
            reason,
        });
    }

    /// Keeps a checked row unless an earlier row already gave its series and period.
    pub fn keep(&mut self, line: u64, obs: Observation, raw_count: &str) {
        let key = (
            self.sources.id(&obs.source),
            obs.country,
            self.categories.id(&obs.category),
            obs.period,
        );
        match self.seen.get(&key) {
            Some(&(count, _)) if count == obs.count => self.out.duplicates += 1,
            Some(&(count, first_line)) => {
                let reason = format!(
                    "conflicts with line {first_line}, which gave {count} for {}/{}/{} {}; \
                     the earlier figure was kept: remove one of the two rows",
                    obs.source, obs.country, obs.category, obs.period
                );
                self.reject(line, "count", raw_count, reason);
            }
            None => {
                self.seen.insert(key, (obs.count, line));
                self.out.observations.push(obs);
            }
        }
    }

    /// What the file gave.
    pub fn finish(self) -> Parsed {
        self.out
    }
}

/// A raw value as quoted back to the user: at most `MAX_QUOTED` characters.
pub(crate) fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}
