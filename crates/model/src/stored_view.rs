//! How a [`SeriesView`] is stored in the `bw_series` bucket: compact JSON in columns.
//!
//! Analytics rewrites a series' view at every release that touches the series, so the view's
//! size is paid once per series per release, in bytes written to the bucket and in the
//! server's work to store them and reclaim the revision before. The API's form names every
//! field of every point and band (`{"period":"2024-Q3","detector":"farrington","expected":
//! 1234.5678901234567,"upper_bound":…}`): 19 KB for 25 years of quarters with 87 bands (this
//! module's test view; `cargo test -p borderwatch-model stored_view -- --nocapture` prints
//! both sizes). Stored, the points are runs of consecutive periods with their counts only,
//! the bands runs of one detector with two columns of numbers, the year-over-year pairs
//! runs of `(value, previous)` whose ratio is recomputed on reading
//! ([`YearOverYear::ratio_of`], the same division analytics makes): 5 KB, about a quarter
//! of the size.
//!
//! [`SeriesView::from_stored`] reads both this form (it starts `{"v":2,`) and the API's
//! form, in which views were stored before: a data directory or bucket from before needs no
//! migration, and each view is rewritten compact the next time a release touches its series.

use serde::{Deserialize, Serialize};

use crate::{Band, Country, Freq, Period, Point, SeriesView, YearOverYear, YearTotal};

/// The stored form's version, its first field.
const VERSION: u8 = 2;

/// What every stored view of this form starts with.
const PREFIX: &[u8] = b"{\"v\":2,";

#[derive(Serialize, Deserialize)]
struct Compact {
    v: u8,
    s: String,
    c: Country,
    k: String,
    q: Freq,
    /// Observations: runs of consecutive periods, `[first, [count, …]]`.
    o: Vec<(Period, Vec<u64>)>,
    /// Yearly totals: runs of consecutive years, `[first year, [total, …]]`.
    y: Vec<(i32, Vec<u64>)>,
    /// The years whose total is not complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    yi: Vec<i32>,
    /// Year over year: runs of consecutive periods, `[first, [[value, previous], …]]`.
    yy: Vec<(Period, Vec<(u64, u64)>)>,
    g: Vec<String>,
    t: String,
    r: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    b: Vec<BandRun>,
}

/// Bands of one detector over consecutive periods.
#[derive(Serialize, Deserialize)]
struct BandRun {
    d: String,
    p: Period,
    e: Vec<f64>,
    u: Vec<f64>,
}

/// Splits `items` into runs whose keys follow one another (`next(previous key) == key`).
fn runs<I, K: Copy + PartialEq, V>(
    items: I,
    key: impl Fn(&I::Item) -> K,
    value: impl Fn(I::Item) -> V,
    next: impl Fn(K) -> K,
) -> Vec<(K, Vec<V>)>
where
    I: IntoIterator,
{
    let mut out: Vec<(K, Vec<V>)> = Vec::new();
    let mut last: Option<K> = None;
    for item in items {
        let k = key(&item);
        match (out.last_mut(), last) {
            (Some((_, values)), Some(l)) if next(l) == k => values.push(value(item)),
            _ => out.push((k, vec![value(item)])),
        }
        last = Some(k);
    }
    out
}

impl YearOverYear {
    /// `value / previous`, `None` when the earlier figure is zero: how analytics computes a
    /// ratio, and how a stored view's ratios are restored.
    pub fn ratio_of(value: u64, previous: u64) -> Option<f64> {
        (previous > 0).then(|| value as f64 / previous as f64)
    }
}

impl SeriesView {
    /// The bytes the `bw_series` bucket keeps for this view (module doc). A view whose
    /// ratios are not [`YearOverYear::ratio_of`] their figures reads back with the ratios
    /// recomputed.
    pub fn to_stored(&self) -> Vec<u8> {
        let mut bands: Vec<BandRun> = Vec::new();
        for b in &self.bands {
            match bands.last_mut() {
                Some(run)
                    if run.d == b.detector && run.p.offset(run.e.len() as i64) == b.period =>
                {
                    run.e.push(b.expected);
                    run.u.push(b.upper_bound);
                }
                _ => bands.push(BandRun {
                    d: b.detector.clone(),
                    p: b.period,
                    e: vec![b.expected],
                    u: vec![b.upper_bound],
                }),
            }
        }
        let next_period = |p: Period| p.offset(1);
        let compact = Compact {
            v: VERSION,
            s: self.source.clone(),
            c: self.country,
            k: self.category.clone(),
            q: self.freq,
            o: runs(&self.observations, |p| p.period, |p| p.count, next_period),
            y: runs(&self.yearly, |y| y.year, |y| y.total, |y| y + 1),
            yi: self
                .yearly
                .iter()
                .filter(|y| !y.complete)
                .map(|y| y.year)
                .collect(),
            yy: runs(
                &self.year_over_year,
                |y| y.period,
                |y| (y.value, y.previous),
                next_period,
            ),
            g: self.surges.clone(),
            t: self.updated_at.clone(),
            r: self.release_id.clone(),
            b: bands,
        };
        serde_json::to_vec(&compact).unwrap_or_default()
    }

    /// A view as the bucket keeps it: the compact form [`to_stored`](Self::to_stored)
    /// writes, or the API's JSON form views were stored in before it.
    pub fn from_stored(bytes: &[u8]) -> Result<SeriesView, serde_json::Error> {
        if !bytes.starts_with(PREFIX) {
            return serde_json::from_slice(bytes);
        }
        let c: Compact = serde_json::from_slice(bytes)?;
        let observations =
            c.o.into_iter()
                .flat_map(|(first, counts)| {
                    counts.into_iter().enumerate().map(move |(i, count)| Point {
                        period: first.offset(i as i64),
                        count,
                    })
                })
                .collect();
        let yearly =
            c.y.into_iter()
                .flat_map(|(first, totals)| {
                    totals
                        .into_iter()
                        .enumerate()
                        .map(move |(i, total)| (first + i as i32, total))
                })
                .map(|(year, total)| YearTotal {
                    year,
                    total,
                    complete: !c.yi.contains(&year),
                })
                .collect();
        let year_over_year =
            c.yy.into_iter()
                .flat_map(|(first, pairs)| {
                    pairs
                        .into_iter()
                        .enumerate()
                        .map(move |(i, (value, previous))| YearOverYear {
                            period: first.offset(i as i64),
                            value,
                            previous,
                            ratio: YearOverYear::ratio_of(value, previous),
                        })
                })
                .collect();
        let bands =
            c.b.into_iter()
                .flat_map(|run| {
                    let BandRun { d, p, e, u } = run;
                    e.into_iter()
                        .zip(u)
                        .enumerate()
                        .map(move |(i, (expected, upper_bound))| Band {
                            period: p.offset(i as i64),
                            detector: d.clone(),
                            expected,
                            upper_bound,
                        })
                })
                .collect();
        Ok(SeriesView {
            source: c.s,
            country: c.c,
            category: c.k,
            freq: c.q,
            observations,
            yearly,
            year_over_year,
            surges: c.g,
            updated_at: c.t,
            release_id: c.r,
            bands,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Period {
        s.parse().unwrap()
    }

    /// 25 years of quarters with a gap, bands of two detectors, yearly totals (one
    /// incomplete), year-over-year pairs (one with a zero before).
    fn view() -> SeriesView {
        let mut observations: Vec<Point> = (0..100)
            .map(|i| Point {
                period: q("2000-Q1").offset(i),
                count: 1000 + (i as u64 * 37) % 500,
            })
            .collect();
        observations.remove(50);
        let bands = (12..100)
            .filter(|&i| i != 50)
            .map(|i| Band {
                period: q("2000-Q1").offset(i),
                detector: if i < 60 { "farrington" } else { "glrnb" }.to_string(),
                expected: 1000.0 / 3.0 + i as f64,
                upper_bound: std::f64::consts::PI * 500.0 + i as f64 * 0.1,
            })
            .collect();
        let yearly = (2000..2025)
            .map(|year| YearTotal {
                year,
                total: 4000 + year as u64,
                complete: year != 2012,
            })
            .collect();
        let year_over_year = (4..100)
            .filter(|&i| i != 50 && i != 54)
            .map(|i| {
                let (value, previous) = (i as u64 * 3, if i == 20 { 0 } else { i as u64 });
                YearOverYear {
                    period: q("2000-Q1").offset(i),
                    value,
                    previous,
                    ratio: YearOverYear::ratio_of(value, previous),
                }
            })
            .collect();
        SeriesView {
            source: "fsb".to_string(),
            country: "PRK".parse().unwrap(),
            category: "study".to_string(),
            freq: Freq::Quarter,
            observations,
            yearly,
            year_over_year,
            surges: vec!["sg-1".to_string(), "sg-2".to_string()],
            updated_at: "2024-10-01T00:00:00Z".to_string(),
            release_id: "rel-1".to_string(),
            bands,
        }
    }

    #[test]
    fn a_stored_view_reads_back_equal() {
        let v = view();
        let stored = v.to_stored();
        assert!(stored.starts_with(PREFIX));
        assert_eq!(SeriesView::from_stored(&stored).unwrap(), v);
    }

    #[test]
    fn stored_is_a_third_of_the_api_form_or_less() {
        let v = view();
        let (stored, api) = (v.to_stored().len(), serde_json::to_vec(&v).unwrap().len());
        // The sizes the module doc quotes: `cargo test -p borderwatch-model stored_view --
        // --nocapture`.
        println!("100 quarters, 87 bands: stored {stored} B, API form {api} B");
        assert!(stored * 3 <= api, "stored {stored} B, API form {api} B");
    }

    #[test]
    fn views_stored_in_the_api_form_still_read() {
        let v = view();
        let api = serde_json::to_vec(&v).unwrap();
        assert_eq!(SeriesView::from_stored(&api).unwrap(), v);
    }

    #[test]
    fn months_years_and_an_empty_view_read_back_equal() {
        let mut v = view();
        v.freq = Freq::Month;
        for (i, p) in v.observations.iter_mut().enumerate() {
            p.period = q("2019-11").offset(i as i64 * 2 / 3);
        }
        v.bands.clear();
        v.year_over_year.clear();
        assert_eq!(SeriesView::from_stored(&v.to_stored()).unwrap(), v);

        v.freq = Freq::Year;
        for (i, p) in v.observations.iter_mut().enumerate() {
            p.period = Period::Year(1990 + i as i32);
        }
        assert_eq!(SeriesView::from_stored(&v.to_stored()).unwrap(), v);

        v.observations.clear();
        v.yearly.clear();
        v.surges.clear();
        assert_eq!(SeriesView::from_stored(&v.to_stored()).unwrap(), v);
    }

    #[test]
    fn a_damaged_stored_view_is_an_error() {
        let stored = view().to_stored();
        assert!(SeriesView::from_stored(&stored[..stored.len() / 2]).is_err());
        assert!(SeriesView::from_stored(b"{\"v\":2,\"s\":1}").is_err());
    }
}
