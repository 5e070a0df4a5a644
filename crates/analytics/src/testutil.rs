//! Series builders shared by the unit tests.

use borderwatch_model::{Country, Observation, Period};

use crate::aggregate::{SeriesFrame, aggregate};

/// The FSB series of North Korean entries for study, 2019-Q1 to 2024-Q3: 3,200 in 2019,
/// next to nothing in 2020-2022, then 3,765 in 2024-Q3.
pub(crate) const PRK_STUDY: [u64; 23] = [
    700, 750, 950, 800, 5, 0, 0, 2, 0, 0, 1, 0, 3, 0, 0, 4, 20, 30, 62, 70, 38, 332, 3765,
];

pub(crate) fn observation(category: &str, period: Period, count: u64) -> Observation {
    Observation {
        source: "fsb".into(),
        country: Country::parse("PRK").unwrap(),
        category: category.into(),
        period,
        count,
        release_id: String::new(),
    }
}

/// One `fsb/PRK/study` series from period labels and figures.
pub(crate) fn frame(points: &[(&str, u64)]) -> SeriesFrame {
    let obs: Vec<Observation> = points
        .iter()
        .map(|&(p, count)| observation("study", p.parse().unwrap(), count))
        .collect();
    aggregate(&obs).unwrap().remove(0)
}

/// Observations of consecutive periods from `first`, one per value.
pub(crate) fn consecutive(category: &str, first: &str, values: &[u64]) -> Vec<Observation> {
    let start: Period = first.parse().unwrap();
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| observation(category, start.offset(i as i64), v))
        .collect()
}

/// One `fsb/PRK/study` series of consecutive periods from `first`.
pub(crate) fn quarters(first: &str, values: &[u64]) -> SeriesFrame {
    aggregate(&consecutive("study", first, values))
        .unwrap()
        .remove(0)
}
