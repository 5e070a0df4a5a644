//! What every format's parser produces, and the checks they all share: the row limit,
//! rejected rows quoted back with row, column and reason, and repeated rows kept once.

use borderwatch_model::{Country, Freq, Observation, Period, RejectedRow};

use crate::error::IngestError;

/// The most data rows one file may have unless the caller says otherwise.
pub const DEFAULT_MAX_ROWS: u64 = 5_000_000;

/// The largest count a row may give (10^12): more is a typing error, and sums of counts
/// bounded so cannot overflow.
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// Rejected rows a parse keeps (and an answer quotes back): the first ones. The rest are only
/// counted (`Parsed::rejected_total`): a 25 MB file of bad rows once made a 141 MB answer.
pub const MAX_REJECTED_KEPT: usize = 1_000;

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
/// an exact repeat of an earlier row (`duplicates`), so `rows` is the sum of the accepted, the
/// rejected (`rejected_total`) and the repeated rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Accepted figures in file order, `release_id` still empty.
    pub observations: Vec<Observation>,
    /// The first [`MAX_REJECTED_KEPT`] rejected rows, in file order.
    pub rejected: Vec<RejectedRow>,
    /// Every rejected row, also those beyond the ones kept in `rejected`.
    pub rejected_total: u64,
    /// Data rows read: the header and blank lines are not rows.
    pub rows: u64,
    /// Rows that repeated an earlier row exactly (same series, period and count): kept once.
    pub duplicates: u64,
}

/// A series by the interned numbers of its source and category.
type SeriesKey = (u32, Country, u32);

/// Periods of one series kept in a sorted vector up to this many, in a hash map beyond.
const SMALL_SERIES: usize = 64;

/// The periods seen of one series, each with the index of its first row in `firsts`.
/// Files come grouped by series, so the rows of one series meet a small structure that is
/// already in cache, where one hash map of every series and period would miss it per row.
#[derive(Debug)]
enum Periods {
    Small(Vec<(Period, u32)>),
    Big(hashbrown::HashMap<Period, u32>),
}

impl Periods {
    /// The first row of `period` if seen, else records `next` as its first row.
    fn first_or_insert(&mut self, period: Period, next: u32) -> Option<u32> {
        match self {
            Periods::Small(v) => match v.binary_search_by(|(p, _)| p.cmp(&period)) {
                Ok(i) => v.get(i).map(|(_, first)| *first),
                Err(i) => {
                    if v.len() < SMALL_SERIES {
                        v.insert(i, (period, next));
                    } else {
                        let mut map: hashbrown::HashMap<Period, u32> = v.drain(..).collect();
                        map.insert(period, next);
                        *self = Periods::Big(map);
                    }
                    None
                }
            },
            Periods::Big(map) => match map.entry(period) {
                hashbrown::hash_map::Entry::Occupied(e) => Some(*e.get()),
                hashbrown::hash_map::Entry::Vacant(e) => {
                    e.insert(next);
                    None
                }
            },
        }
    }
}

/// Collects one file's rows: observations, rejected rows and repeats, under the limits.
#[derive(Debug)]
pub struct RowSink {
    limits: ParseLimits,
    /// Sources and categories by number, so the key of a row costs no allocation.
    sources: Interner,
    categories: Interner,
    /// Every series seen, by number; the last one looked up, since rows come grouped.
    series: hashbrown::HashMap<SeriesKey, u32>,
    last_series: Option<(SeriesKey, u32)>,
    /// The periods of each series, by series number.
    periods: Vec<Periods>,
    /// The monthly or quarterly frequency of each series and the line that set it, by series
    /// number (`None` while it has only year figures).
    sub_year: Vec<Option<(Freq, u64)>>,
    /// The count and line of the first row of each series and period.
    firsts: Vec<(u64, u64)>,
    out: Parsed,
}

/// Strings numbered in order of first appearance.
#[derive(Debug, Default)]
struct Interner {
    ids: hashbrown::HashMap<String, u32>,
    last: Option<(String, u32)>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some((last, id)) = &self.last
            && last == s
        {
            return *id;
        }
        let id = match self.ids.get(s) {
            Some(&id) => id,
            None => {
                let id = self.ids.len() as u32;
                self.ids.insert(s.to_string(), id);
                id
            }
        };
        match &mut self.last {
            Some((last, last_id)) => {
                last.clear();
                last.push_str(s);
                *last_id = id;
            }
            None => self.last = Some((s.to_string(), id)),
        }
        id
    }
}

impl RowSink {
    pub fn new(limits: ParseLimits) -> RowSink {
        RowSink {
            limits,
            sources: Interner::default(),
            categories: Interner::default(),
            series: hashbrown::HashMap::default(),
            last_series: None,
            periods: Vec::new(),
            sub_year: Vec::new(),
            firsts: Vec::new(),
            out: Parsed::default(),
        }
    }

    /// Makes room for `rows` more rows (a hint; parsers that can count lines cheaply give it).
    pub fn reserve(&mut self, rows: u64) {
        let rows = usize::try_from(rows).unwrap_or(usize::MAX).min(1 << 26);
        self.out.observations.reserve(rows);
        self.firsts.reserve(rows);
    }

    /// Accepted observations not yet taken.
    pub fn observation_count(&self) -> usize {
        self.out.observations.len()
    }

    /// Takes the accepted observations so far (for parsers that hand them out in batches);
    /// repeats of them are still recognised later.
    pub fn take_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.out.observations)
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

    /// Records a rejected row; `value` is quoted back shortened. Beyond the first
    /// [`MAX_REJECTED_KEPT`] rows it is only counted.
    pub fn reject(&mut self, line: u64, column: &str, value: &str, reason: String) {
        self.out.rejected_total += 1;
        if self.out.rejected.len() >= MAX_REJECTED_KEPT {
            return;
        }
        self.out.rejected.push(RejectedRow {
            row: line,
            column: column.to_string(),
            value: quote(value),
            reason,
        });
    }

    /// The number of a series, new or seen.
    fn series_of(&mut self, obs: &Observation) -> usize {
        let key = (
            self.sources.id(&obs.source),
            obs.country,
            self.categories.id(&obs.category),
        );
        if let Some((last, n)) = self.last_series
            && last == key
        {
            return n as usize;
        }
        let next = self.series.len() as u32;
        let n = *self.series.entry(key).or_insert(next);
        if n == next {
            self.periods.push(Periods::Small(Vec::new()));
            self.sub_year.push(None);
        }
        self.last_series = Some((key, n));
        n as usize
    }

    /// Keeps a checked row unless an earlier row already gave its series and period. Every
    /// format's figures pass here, so the bounds every figure must keep are checked here: a
    /// year of [`Period::YEARS`] and a count of at most [`MAX_COUNT`].
    pub fn keep(&mut self, line: u64, obs: Observation, raw_count: &str) {
        if !obs.period.in_years() {
            let (from, to) = (Period::YEARS.start(), Period::YEARS.end());
            let reason = format!(
                "the year {} of {}/{}/{} {} is outside {from}-{to}: fix the year",
                obs.period.year(),
                obs.source,
                obs.country,
                obs.category,
                obs.period
            );
            self.reject(line, "period", &obs.period.to_string(), reason);
            return;
        }
        if obs.count > MAX_COUNT {
            let reason = format!(
                "the count {} of {}/{}/{} {} is more than {MAX_COUNT}, the most one figure \
                 may be: fix the count",
                obs.count, obs.source, obs.country, obs.category, obs.period
            );
            self.reject(line, "count", raw_count, reason);
            return;
        }
        let series = self.series_of(&obs);
        if let Some(reason) = self.switches_frequency(series, line, &obs) {
            self.reject(line, "period", &obs.period.to_string(), reason);
            return;
        }
        let next = self.firsts.len() as u32;
        let first = match self.periods.get_mut(series) {
            Some(periods) => periods.first_or_insert(obs.period, next),
            None => None,
        };
        match first.and_then(|i| self.firsts.get(i as usize).copied()) {
            Some((count, _)) if count == obs.count => self.out.duplicates += 1,
            Some((count, first_line)) => {
                let reason = format!(
                    "conflicts with line {first_line}, which gave {count} for {}/{}/{} {}; \
                     the earlier figure was kept: remove one of the two rows",
                    obs.source, obs.country, obs.category, obs.period
                );
                self.reject(line, "count", raw_count, reason);
            }
            None => {
                self.firsts.push((obs.count, line));
                self.out.observations.push(obs);
            }
        }
    }

    /// Why a row may not join its series: it is monthly in a quarterly series or quarterly in
    /// a monthly one (of this file). Analytics reads a series at one frequency, so one such
    /// row would switch the whole series and drop the other periods out of detection. Year
    /// figures join any series: they are totals, compared with the sum of its periods.
    fn switches_frequency(
        &mut self,
        series: usize,
        line: u64,
        obs: &Observation,
    ) -> Option<String> {
        let freq = obs.period.freq();
        if freq == Freq::Year {
            return None;
        }
        let slot = self.sub_year.get_mut(series)?;
        match *slot {
            None => {
                *slot = Some((freq, line));
                None
            }
            Some((established, _)) if established == freq => None,
            Some((established, first_line)) => Some(format!(
                "{}/{}/{} is {} in this file (from line {first_line}): a {} figure ({}) would \
                 switch the whole series to {} and drop its {} figures from detection; send \
                 {} figures as a category of their own",
                obs.source,
                obs.country,
                obs.category,
                adjective(established),
                adjective(freq),
                obs.period,
                adjective(freq),
                adjective(established),
                adjective(freq),
            )),
        }
    }

    /// Counts a data row that repeated an earlier row exactly, for formats that sum their
    /// rows into series and so find repeats before [`RowSink::keep`] could.
    pub fn repeat(&mut self) {
        self.out.duplicates += 1;
    }

    /// What the file gave.
    pub fn finish(self) -> Parsed {
        self.out
    }
}

/// "monthly", "quarterly" or "yearly", as a reason says it.
pub(crate) fn adjective(freq: Freq) -> &'static str {
    match freq {
        Freq::Month => "monthly",
        Freq::Quarter => "quarterly",
        Freq::Year => "yearly",
    }
}

/// A raw value as quoted back to the user: at most `MAX_QUOTED` characters.
pub(crate) fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(category: &str, period: Period, count: u64) -> Observation {
        Observation {
            source: "fsb".into(),
            country: Country::parse("PRK").unwrap_or_else(|e| panic!("{e}")),
            category: category.into(),
            period,
            count,
            release_id: String::new(),
        }
    }

    #[test]
    fn repeats_and_conflicts_are_found_in_long_series_in_any_order() {
        let mut sink = RowSink::new(ParseLimits::default());
        let months: Vec<Period> = (0..300).map(|i| Period::Month(2000, 1).offset(i)).collect();
        let mut line = 1;
        // Two series interleaved, periods in reverse, then every period again: the same
        // count (a repeat) for even months, another count (a conflict) for odd ones.
        for pass in 0..2u64 {
            for (i, p) in months.iter().enumerate().rev() {
                for category in ["study", "work"] {
                    line += 1;
                    let count = if pass == 1 && i % 2 == 1 {
                        100_000
                    } else {
                        i as u64
                    };
                    sink.keep(line, obs(category, *p, count), &count.to_string());
                }
            }
        }
        let p = sink.finish();
        assert_eq!(p.observations.len(), 600);
        assert_eq!(p.duplicates, 300);
        assert_eq!(p.rejected.len(), 300);
        assert!(
            p.rejected[0].reason.contains("conflicts with line 2,"),
            "{}",
            p.rejected[0].reason
        );
        assert_eq!(p.observations[0].period, months[299]);
    }
}

/// Line numbers of CSV records from their byte offsets. The csv reader's own line of a record
/// counts from where it started reading, before any blank lines it skipped; this counts from
/// the record's first byte. Offsets only grow, so counting is linear over the file.
#[derive(Debug)]
pub(crate) struct Lines<'a> {
    text: &'a [u8],
    pos: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lines::starting_at(text, 1)
    }

    /// For a piece of a file whose first byte is on line `line`.
    pub(crate) fn starting_at(text: &'a str, line: u64) -> Self {
        Lines {
            text: text.as_bytes(),
            pos: 0,
            line,
        }
    }

    /// The 1-based line of the record at `position` (the last line seen when unknown).
    pub(crate) fn of(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(mut start) = position.map(|p| p.byte() as usize) else {
            return self.line;
        };
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let start = start.min(self.text.len()).max(self.pos);
        self.line += self.text[self.pos..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.pos = start;
        self.line
    }
}
