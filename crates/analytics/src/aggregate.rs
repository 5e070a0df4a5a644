//! Aggregation: from raw observations to one [`SeriesFrame`] per series.
//!
//! Every observation of every series goes into one polars DataFrame, so a release with tens
//! of thousands of series costs a handful of vectorised group-bys, not one pass per series.

use std::collections::HashMap;

use borderwatch_model::{
    Country, Freq, Observation, Period, Point, SeriesKey, SeriesView, YearOverYear, YearTotal,
};
use polars::prelude::*;

use crate::error::AnalyticsError;

/// One series at its main frequency, with the aggregates the detectors and the gateway need.
///
/// The main frequency is the monthly or quarterly one the series has the most periods of
/// (months on a tie), else years (`main_frequencies`); ingest keeps a series to one, so
/// two meet only in figures stored before it did. A reported year figure is not lost: it
/// feeds `yearly`, where it wins over the sum of the year's quarters or months. Periods of
/// the other sub-year frequency are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesFrame {
    pub key: SeriesKey,
    pub freq: Freq,
    /// Figures of the main frequency, oldest first, one per period (a later observation of a
    /// period in the input replaces an earlier one: it is a revision).
    pub points: Vec<(Period, u64)>,
    /// Calendar-year totals, oldest first.
    pub yearly: Vec<YearTotal>,
    /// Each period against the same period a year earlier, where both are present, oldest first.
    pub yoy: Vec<YearOverYear>,
}

impl SeriesFrame {
    /// Where `period` sits in `points`, if the series has a figure for it.
    pub fn position(&self, period: Period) -> Option<usize> {
        if period.freq() != self.freq {
            return None;
        }
        self.points.binary_search_by(|(p, _)| p.cmp(&period)).ok()
    }

    /// The figure for `period`, if the series has one.
    pub fn value_at(&self, period: Period) -> Option<u64> {
        self.position(period).map(|i| self.points[i].1)
    }

    /// The view the gateway serves. `surges` is left empty for the caller, who knows the ids
    /// found in earlier releases too.
    pub fn to_view(&self, release_id: &str, updated_at: &str) -> SeriesView {
        SeriesView {
            source: self.key.source.clone(),
            country: self.key.country,
            category: self.key.category.clone(),
            freq: self.freq,
            observations: self
                .points
                .iter()
                .map(|&(period, count)| Point { period, count })
                .collect(),
            yearly: self.yearly.clone(),
            year_over_year: self.yoy.clone(),
            surges: Vec::new(),
            updated_at: updated_at.to_string(),
            release_id: release_id.to_string(),
            bands: Vec::new(),
        }
    }
}

/// Frequencies as numbers, in the order of [`Freq`]'s `Ord`: the minimum is the main one.
const MONTH: u32 = 0;
const QUARTER: u32 = 1;
const YEAR: u32 = 2;

fn freq_code(f: Freq) -> u32 {
    match f {
        Freq::Month => MONTH,
        Freq::Quarter => QUARTER,
        Freq::Year => YEAR,
    }
}

fn freq_of(code: u32) -> Freq {
    match code {
        MONTH => Freq::Month,
        QUARTER => Freq::Quarter,
        _ => Freq::Year,
    }
}

fn period_of(freq: Freq, year: i32, sub: u32) -> Period {
    // `sub` came from `Period::sub`, so it fits a u8.
    let sub = u8::try_from(sub).unwrap_or(1);
    match freq {
        Freq::Month => Period::Month(year, sub),
        Freq::Quarter => Period::Quarter(year, sub),
        Freq::Year => Period::Year(year),
    }
}

/// Aggregates observations of any number of series into one [`SeriesFrame`] each, ordered by
/// series key.
///
/// Per series: the points of its main frequency; yearly totals (a reported year figure wins,
/// otherwise the sum of the year's quarters or months, `complete` only when all 4 or 12 are
/// present); and year-over-year comparisons (ratio `None` when the earlier figure is 0).
pub fn aggregate(observations: &[Observation]) -> Result<Vec<SeriesFrame>, AnalyticsError> {
    if observations.is_empty() {
        return Ok(Vec::new());
    }
    let (keys, sids) = intern(observations);

    let n = observations.len();
    let mut freq = Vec::with_capacity(n);
    let mut year = Vec::with_capacity(n);
    let mut sub = Vec::with_capacity(n);
    let mut count = Vec::with_capacity(n);
    for o in observations {
        freq.push(freq_code(o.period.freq()));
        year.push(o.period.year());
        sub.push(u32::from(o.period.sub()));
        count.push(o.count);
    }
    let raw = DataFrame::new(
        n,
        vec![
            Column::new("sid".into(), sids),
            Column::new("freq".into(), freq),
            Column::new("year".into(), year),
            Column::new("sub".into(), sub),
            Column::new("count".into(), count),
        ],
    )
    .map_err(AnalyticsError::polars)?;

    let (points, yearly, yoy) = frames(raw).map_err(AnalyticsError::polars)?;
    assemble(keys, &points, &yearly, &yoy).map_err(AnalyticsError::polars)
}

/// Gives every series a dense id in key order, so that polars groups on one integer and the
/// sorted output comes back in key order.
fn intern(observations: &[Observation]) -> (Vec<SeriesKey>, Vec<u32>) {
    let mut first_seen: HashMap<(&str, Country, &str), u32> = HashMap::new();
    let mut seen_order: Vec<(&str, Country, &str)> = Vec::new();
    let raw_ids: Vec<u32> = observations
        .iter()
        .map(|o| {
            let k = (o.source.as_str(), o.country, o.category.as_str());
            *first_seen.entry(k).or_insert_with(|| {
                seen_order.push(k);
                (seen_order.len() - 1) as u32
            })
        })
        .collect();

    let mut order: Vec<u32> = (0..seen_order.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| seen_order[a as usize].cmp(&seen_order[b as usize]));
    let mut rank = vec![0u32; order.len()];
    for (r, &id) in order.iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    let keys = order
        .iter()
        .map(|&id| {
            let (source, country, category) = seen_order[id as usize];
            SeriesKey::new(source, country, category)
        })
        .collect();
    let sids = raw_ids.into_iter().map(|id| rank[id as usize]).collect();
    (keys, sids)
}

/// The polars part: deduplicated points of each series' main frequency, yearly totals and
/// year-over-year pairs, each sorted by series and period.
fn frames(raw: DataFrame) -> PolarsResult<(DataFrame, DataFrame, DataFrame)> {
    let by_period = [col("sid"), col("freq"), col("year"), col("sub")];
    // A period observed twice keeps its last figure: group members stay in input order.
    let dedup = raw
        .lazy()
        .group_by(by_period)
        .agg([col("count").last()])
        .collect()?;
    let main = main_frequencies(&dedup);
    let all = dedup
        .lazy()
        .inner_join(main, col("sid"), col("sid"))
        .collect()?;

    let points = all
        .clone()
        .lazy()
        .filter(col("freq").eq(col("main")))
        .select([
            col("sid"),
            col("main"),
            col("year"),
            col("sub"),
            col("count"),
        ])
        .sort(["sid", "year", "sub"], SortMultipleOptions::default())
        .collect()?;

    // One pass of plain sums per (series, year); a reported year figure wins over the sum of
    // the year's quarters or months, and is complete by definition.
    let is_main = col("freq")
        .eq(col("main"))
        .and(col("main").neq(lit(YEAR)))
        .cast(DataType::UInt64);
    let is_year = col("freq").eq(lit(YEAR)).cast(DataType::UInt64);
    // Counts are summed as their high and low 32 bits apart, so that no sum can overflow in
    // polars (a panic in debug builds, a wrap in release); `joined` puts them together,
    // saturating.
    let (high, low) = (
        || col("count") / lit(1u64 << 32),
        || col("count") % lit(1u64 << 32),
    );
    let yearly = all
        .lazy()
        .with_columns([
            (high() * is_main.clone()).alias("summed_high"),
            (low() * is_main.clone()).alias("summed_low"),
            is_main.alias("n"),
            (high() * is_year.clone()).alias("reported_high"),
            (low() * is_year.clone()).alias("reported_low"),
            is_year.alias("reported"),
        ])
        .group_by([col("sid"), col("year")])
        .agg([
            col("summed_high").sum(),
            col("summed_low").sum(),
            col("n").sum(),
            col("reported_high").sum(),
            col("reported_low").sum(),
            col("reported").sum(),
            col("main").first(),
        ])
        .filter(col("n").gt(lit(0u64)).or(col("reported").gt(lit(0u64))))
        .sort(["sid", "year"], SortMultipleOptions::default())
        .collect()?;
    let previous = points.clone().lazy().select([
        col("sid"),
        (col("year") + lit(1i32)).alias("year"),
        col("sub"),
        col("count").alias("previous"),
    ]);
    let keys = [col("sid"), col("year"), col("sub")];
    let yoy = points
        .clone()
        .lazy()
        .join(previous, keys.clone(), keys, JoinArgs::new(JoinType::Inner))
        .sort(["sid", "year", "sub"], SortMultipleOptions::default())
        .collect()?;

    Ok((points, yearly, yoy))
}

/// Per series (`sid`), its main frequency (`main`): the monthly or quarterly one it has the
/// most periods of (months on a tie), or years when it has neither.
///
/// It was the shortest one it had (`freq.min()`): one monthly figure turned a quarterly
/// series monthly, and its quarters dropped out of detection. Ingest now refuses a row of
/// another frequency than its series' (docs/formats.md), so a series has two only from
/// before that; then the one that carries the series wins, never one stray figure.
fn main_frequencies(dedup: &DataFrame) -> LazyFrame {
    // Years score 0; months and quarters twice their number of periods, months one more, so
    // scores never tie and a frequency with periods always beats years.
    let score = when(col("freq").eq(lit(YEAR))).then(lit(0u64)).otherwise(
        col("n").cast(DataType::UInt64) * lit(2u64)
            + col("freq").eq(lit(MONTH)).cast(DataType::UInt64),
    );
    let scored = dedup
        .clone()
        .lazy()
        .group_by([col("sid"), col("freq")])
        .agg([col("count").count().alias("n")])
        .with_column(score.alias("score"));
    let best = scored
        .clone()
        .group_by([col("sid")])
        .agg([col("score").max().alias("best")]);
    scored
        .join(
            best,
            [col("sid")],
            [col("sid")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("score").eq(col("best")))
        .select([col("sid"), col("freq").alias("main")])
}

/// A sum from the sums of its high and low 32 bits, `u64::MAX` when it does not fit.
fn joined(high: u64, low: u64) -> u64 {
    high.checked_mul(1 << 32)
        .and_then(|h| h.checked_add(low))
        .unwrap_or(u64::MAX)
}

fn u32s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u32>> {
    Ok(df.column(name)?.u32()?.into_no_null_iter().collect())
}

fn i32s(df: &DataFrame, name: &str) -> PolarsResult<Vec<i32>> {
    Ok(df.column(name)?.i32()?.into_no_null_iter().collect())
}

fn u64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    Ok(df.column(name)?.u64()?.into_no_null_iter().collect())
}

/// Turns the sorted polars results back into one frame per series.
fn assemble(
    keys: Vec<SeriesKey>,
    points: &DataFrame,
    yearly: &DataFrame,
    yoy: &DataFrame,
) -> PolarsResult<Vec<SeriesFrame>> {
    let mut out: Vec<SeriesFrame> = keys
        .into_iter()
        .map(|key| SeriesFrame {
            key,
            freq: Freq::Year,
            points: Vec::new(),
            yearly: Vec::new(),
            yoy: Vec::new(),
        })
        .collect();

    let (sid, main, year, sub, count) = (
        u32s(points, "sid")?,
        u32s(points, "main")?,
        i32s(points, "year")?,
        u32s(points, "sub")?,
        u64s(points, "count")?,
    );
    for i in 0..sid.len() {
        let frame = &mut out[sid[i] as usize];
        frame.freq = freq_of(main[i]);
        frame
            .points
            .push((period_of(frame.freq, year[i], sub[i]), count[i]));
    }

    let (sid, year, main) = (
        u32s(yearly, "sid")?,
        i32s(yearly, "year")?,
        u32s(yearly, "main")?,
    );
    let (summed_high, summed_low, n) = (
        u64s(yearly, "summed_high")?,
        u64s(yearly, "summed_low")?,
        u64s(yearly, "n")?,
    );
    let (reported_high, reported_low, reported) = (
        u64s(yearly, "reported_high")?,
        u64s(yearly, "reported_low")?,
        u64s(yearly, "reported")?,
    );
    for i in 0..sid.len() {
        let total = if reported[i] > 0 {
            YearTotal {
                year: year[i],
                total: joined(reported_high[i], reported_low[i]),
                complete: true,
            }
        } else {
            YearTotal {
                year: year[i],
                total: joined(summed_high[i], summed_low[i]),
                complete: n[i] >= u64::from(freq_of(main[i]).per_year()),
            }
        };
        out[sid[i] as usize].yearly.push(total);
    }

    let (sid, main, year, sub, count, previous) = (
        u32s(yoy, "sid")?,
        u32s(yoy, "main")?,
        i32s(yoy, "year")?,
        u32s(yoy, "sub")?,
        u64s(yoy, "count")?,
        u64s(yoy, "previous")?,
    );
    for i in 0..sid.len() {
        let ratio = YearOverYear::ratio_of(count[i], previous[i]);
        out[sid[i] as usize].yoy.push(YearOverYear {
            period: period_of(freq_of(main[i]), year[i], sub[i]),
            value: count[i],
            previous: previous[i],
            ratio,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(category: &str, period: &str, count: u64) -> Observation {
        Observation {
            source: "fsb".into(),
            country: Country::parse("PRK").unwrap(),
            category: category.into(),
            period: period.parse().unwrap(),
            count,
            release_id: String::new(),
        }
    }

    fn one(observations: &[Observation]) -> SeriesFrame {
        let mut frames = aggregate(observations).unwrap();
        assert_eq!(frames.len(), 1);
        frames.remove(0)
    }

    fn year_total(year: i32, total: u64, complete: bool) -> YearTotal {
        YearTotal {
            year,
            total,
            complete,
        }
    }

    #[test]
    fn aggregate_of_nothing_is_empty() {
        assert!(aggregate(&[]).unwrap().is_empty());
    }

    #[test]
    fn aggregate_sorts_points_and_series() {
        let frames = aggregate(&[
            obs("work", "2024-Q2", 5),
            obs("study", "2024-Q3", 3),
            obs("study", "2023-Q4", 1),
            obs("work", "2024-Q1", 4),
            obs("study", "2024-Q1", 2),
        ])
        .unwrap();
        let keys: Vec<&str> = frames.iter().map(|f| f.key.category.as_str()).collect();
        assert_eq!(keys, ["study", "work"]);
        assert_eq!(frames[0].freq, Freq::Quarter);
        assert_eq!(
            frames[0].points,
            vec![
                (Period::Quarter(2023, 4), 1),
                (Period::Quarter(2024, 1), 2),
                (Period::Quarter(2024, 3), 3)
            ]
        );
        assert_eq!(
            frames[1].points,
            vec![(Period::Quarter(2024, 1), 4), (Period::Quarter(2024, 2), 5)]
        );
    }

    #[test]
    fn aggregate_keeps_the_later_revision_of_a_period() {
        let f = one(&[obs("study", "2024-Q1", 10), obs("study", "2024-Q1", 12)]);
        assert_eq!(f.points, vec![(Period::Quarter(2024, 1), 12)]);
    }

    #[test]
    fn aggregate_sums_complete_quarter_years() {
        let f = one(&[
            obs("study", "2019-Q1", 700),
            obs("study", "2019-Q2", 750),
            obs("study", "2019-Q3", 950),
            obs("study", "2019-Q4", 800),
        ]);
        assert_eq!(f.yearly, vec![year_total(2019, 3200, true)]);
    }

    #[test]
    fn yearly_sums_saturate_instead_of_overflowing() {
        // Counts up to 2^64-1 once came through: the year's sum wrapped (or panicked).
        let big = u64::MAX / 2 + 1;
        let f = one(&[
            obs("study", "2019-Q1", big),
            obs("study", "2019-Q2", big),
            obs("study", "2019-Q3", 5),
        ]);
        assert_eq!(f.yearly, vec![year_total(2019, u64::MAX, false)]);
    }

    #[test]
    fn aggregate_marks_incomplete_years() {
        let f = one(&[
            obs("study", "2023-Q1", 1),
            obs("study", "2023-Q2", 2),
            obs("study", "2023-Q3", 3),
            obs("study", "2023-Q4", 4),
            obs("study", "2024-Q1", 5),
            obs("study", "2024-Q3", 6),
        ]);
        assert_eq!(
            f.yearly,
            vec![year_total(2023, 10, true), year_total(2024, 11, false)]
        );
    }

    #[test]
    fn aggregate_counts_twelve_months_as_a_complete_year() {
        let mut o: Vec<Observation> = (1..=12)
            .map(|m| obs("study", &format!("2023-{m:02}"), 10))
            .collect();
        o.push(obs("study", "2024-01", 7));
        let f = one(&o);
        assert_eq!(f.freq, Freq::Month);
        assert_eq!(
            f.yearly,
            vec![year_total(2023, 120, true), year_total(2024, 7, false)]
        );
    }

    #[test]
    fn reported_year_figure_wins_over_sum() {
        let f = one(&[
            obs("study", "2019-Q1", 700),
            obs("study", "2019-Q2", 750),
            obs("study", "2019", 3300),
            obs("study", "2020", 40),
        ]);
        assert_eq!(f.freq, Freq::Quarter);
        assert_eq!(
            f.points,
            vec![
                (Period::Quarter(2019, 1), 700),
                (Period::Quarter(2019, 2), 750)
            ]
        );
        assert_eq!(
            f.yearly,
            vec![year_total(2019, 3300, true), year_total(2020, 40, true)]
        );
    }

    #[test]
    fn aggregate_prefers_months_over_quarters_of_the_same_series() {
        let f = one(&[
            obs("study", "2024-01", 10),
            obs("study", "2024-02", 20),
            obs("study", "2024-Q1", 999),
            obs("study", "2023-Q4", 999),
        ]);
        assert_eq!(f.freq, Freq::Month);
        assert_eq!(f.points.len(), 2);
        assert_eq!(f.yearly, vec![year_total(2024, 30, false)]);
    }

    #[test]
    fn one_monthly_figure_does_not_turn_a_quarterly_series_monthly() {
        // It did (`freq.min()`): the quarters dropped out of detection, and a later quarter
        // 18 times the usual figure raised nothing.
        let mut input: Vec<Observation> = (2018..2024)
            .flat_map(|y| (1..=4).map(move |q| obs("work", &format!("{y}-Q{q}"), 1000 + q)))
            .collect();
        input.push(obs("work", "2024-01", 7));
        input.push(obs("work", "2024-Q1", 18_000));
        let f = one(&input);
        assert_eq!(f.freq, Freq::Quarter);
        assert_eq!(f.points.len(), 25);
        assert_eq!(f.value_at(Period::Quarter(2024, 1)), Some(18_000));
        assert_eq!(f.value_at(Period::Month(2024, 1)), None);

        let cfg = crate::AnalysisConfig::default();
        let jobs = vec![(&f, vec![Period::Quarter(2024, 1)])];
        let rows = crate::evaluate_frames(&jobs, &cfg);
        let assessed = crate::assess(&f, &rows[0]);
        let surges = crate::decide(&assessed, &cfg, "rel-test", "2025-01-01T00:00:00Z");
        assert!(
            surges.iter().any(|s| s.period == Period::Quarter(2024, 1)),
            "the quarter's surge is found: {surges:?}"
        );
    }

    #[test]
    fn a_series_of_two_frequencies_is_read_at_the_one_with_more_periods() {
        let f = one(&[
            obs("study", "2023-Q3", 1),
            obs("study", "2023-Q4", 2),
            obs("study", "2024-Q1", 3),
            obs("study", "2024-02", 9),
            obs("study", "2024", 50),
        ]);
        assert_eq!(f.freq, Freq::Quarter);
        assert_eq!(f.points.len(), 3);
        // The reported year still wins in the yearly totals.
        assert_eq!(f.yearly.last().map(|y| y.total), Some(50));
    }

    #[test]
    fn aggregate_of_a_yearly_series_uses_years_as_points() {
        let f = one(&[obs("study", "2020", 5), obs("study", "2021", 15)]);
        assert_eq!(f.freq, Freq::Year);
        assert_eq!(f.points.len(), 2);
        assert_eq!(
            f.yearly,
            vec![year_total(2020, 5, true), year_total(2021, 15, true)]
        );
        assert_eq!(f.yoy.len(), 1);
        assert_eq!(f.yoy[0].ratio, Some(3.0));
    }

    #[test]
    fn year_over_year_pairs_only_present_periods() {
        let f = one(&[
            obs("study", "2023-Q1", 0),
            obs("study", "2023-Q2", 10),
            obs("study", "2024-Q1", 5),
            obs("study", "2024-Q2", 30),
            obs("study", "2024-Q3", 30),
        ]);
        assert_eq!(
            f.yoy,
            vec![
                YearOverYear {
                    period: Period::Quarter(2024, 1),
                    value: 5,
                    previous: 0,
                    ratio: None
                },
                YearOverYear {
                    period: Period::Quarter(2024, 2),
                    value: 30,
                    previous: 10,
                    ratio: Some(3.0)
                },
            ]
        );
    }

    #[test]
    fn to_view_carries_points_and_aggregates() {
        let f = one(&[obs("study", "2023-Q1", 4), obs("study", "2024-Q1", 8)]);
        let v = f.to_view("rel-1", "2024-10-01T00:00:00Z");
        assert_eq!(v.category, "study");
        assert_eq!(v.freq, Freq::Quarter);
        assert_eq!(v.observations.len(), 2);
        assert_eq!(v.year_over_year.len(), 1);
        assert!(v.surges.is_empty());
        assert_eq!(v.release_id, "rel-1");
    }

    #[test]
    fn aggregate_handles_many_series_in_one_call() {
        let countries = ["PRK", "CHN", "VNM", "IND"].map(|c| Country::parse(c).unwrap());
        let mut o = Vec::new();
        for s in 0..500 {
            for q in 0..40 {
                o.push(Observation {
                    source: "fsb".into(),
                    country: countries[s % 4],
                    category: format!("c{s}"),
                    period: Period::Quarter(2015, 1).offset(q),
                    count: (s as u64 * 7 + q as u64) % 97,
                    release_id: String::new(),
                });
            }
        }
        // Revise every third figure at the end of the input: the revision must win.
        let revisions: Vec<Observation> = o
            .iter()
            .step_by(3)
            .map(|x| Observation {
                count: 1000 + x.count,
                ..x.clone()
            })
            .collect();
        o.extend(revisions);
        let frames = aggregate(&o).unwrap();
        assert_eq!(frames.len(), 500);
        let by_key: HashMap<(SeriesKey, Period), u64> = frames
            .iter()
            .flat_map(|f| f.points.iter().map(|&(p, c)| ((f.key.clone(), p), c)))
            .collect();
        let mut expected: HashMap<(SeriesKey, Period), u64> = HashMap::new();
        for x in &o {
            expected.insert((x.series(), x.period), x.count);
        }
        assert_eq!(by_key, expected);
        assert!(frames.windows(2).all(|w| w[0].key < w[1].key));
        assert!(frames.iter().all(|f| f.points.len() == 40
            && f.yearly.len() == 10
            && f.yearly.iter().all(|y| y.complete)
            && f.yoy.len() == 36));
    }
}
