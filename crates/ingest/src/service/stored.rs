//! What the stream holds for one source, as a release is checked against it: the current
//! figure of every period of every series, kept compact. A source can hold millions of
//! figures and every release of it reads them all, so a figure is a period, a count and the
//! number of its release (the few release ids of a source are kept once), looked up by
//! borrowed country, category and period, not an [`Observation`] with three strings under a
//! formatted key.
//!
//! [`Observation`]: borderwatch_model::Observation

use std::collections::HashMap;

use borderwatch_bus::obs;
use borderwatch_model::{Country, Period};

/// The current figures of one source's series.
#[derive(Debug, Default)]
pub(super) struct Stored {
    /// By country, then category, then period.
    series: HashMap<Country, HashMap<String, HashMap<Period, Held>>>,
    /// The release ids the figures came from; [`Held::release`] indexes this.
    releases: Vec<String>,
    figures: usize,
}

/// One stored figure: its count and the index of its release in [`Stored::releases`].
#[derive(Debug, Clone, Copy)]
struct Held {
    count: u64,
    release: u32,
}

/// One stored figure, borrowed from [`Stored`].
#[derive(Debug, Clone, Copy)]
pub(super) struct StoredFigure<'a> {
    pub(super) country: Country,
    pub(super) category: &'a str,
    pub(super) period: Period,
    pub(super) count: u64,
    pub(super) release_id: &'a str,
}

impl Stored {
    /// The figures folded from the source's series (`obs::source_figures`). A series whose
    /// country, or a figure whose period, does not parse (nothing but ingest writes them) is
    /// left out.
    pub(super) fn from_series(read: HashMap<obs::Series, obs::Figures>) -> Stored {
        let mut out = Stored::default();
        let mut index: HashMap<String, u32> = HashMap::new();
        for (series, figures) in read {
            let Ok(country) = Country::parse(&series.country) else {
                continue;
            };
            let periods = out
                .series
                .entry(country)
                .or_default()
                .entry(series.category)
                .or_default();
            periods.reserve(figures.len());
            // Figures of a series mostly come from one release: the last one looked up is
            // tried before the index.
            let mut last: Option<(&str, u32)> = None;
            for (period, figure) in &figures {
                let Ok(parsed) = period.parse::<Period>() else {
                    continue;
                };
                let release = match last {
                    Some((id, n)) if id == figure.release_id => n,
                    _ => {
                        let n = match index.get(figure.release_id.as_str()) {
                            Some(&n) => n,
                            None => {
                                let n = out.releases.len() as u32;
                                out.releases.push(figure.release_id.clone());
                                index.insert(figure.release_id.clone(), n);
                                n
                            }
                        };
                        last = Some((figure.release_id.as_str(), n));
                        n
                    }
                };
                let held = Held {
                    count: figure.count,
                    release,
                };
                if periods.insert(parsed, held).is_none() {
                    out.figures += 1;
                }
            }
        }
        out
    }

    /// The stored figure of a period of a series, if any.
    pub(super) fn get(
        &self,
        country: Country,
        category: &str,
        period: Period,
    ) -> Option<StoredFigure<'_>> {
        let (category, periods) = self.series.get(&country)?.get_key_value(category)?;
        let held = periods.get(&period)?;
        Some(self.figure(country, category, period, *held))
    }

    fn figure<'a>(
        &'a self,
        country: Country,
        category: &'a str,
        period: Period,
        held: Held,
    ) -> StoredFigure<'a> {
        StoredFigure {
            country,
            category,
            period,
            count: held.count,
            release_id: &self.releases[held.release as usize],
        }
    }

    /// Every stored figure, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = StoredFigure<'_>> {
        self.series.iter().flat_map(move |(&country, categories)| {
            categories.iter().flat_map(move |(category, periods)| {
                periods
                    .iter()
                    .map(move |(&period, &held)| self.figure(country, category, period, held))
            })
        })
    }

    /// How many figures are stored.
    pub(super) fn len(&self) -> usize {
        self.figures
    }

    /// The releases the stored figures came from (each once).
    pub(super) fn release_ids(&self) -> impl Iterator<Item = &str> {
        self.releases.iter().map(|r| r.as_str())
    }

    /// Whether some stored figure came from `release_id`.
    pub(super) fn holds_release(&self, release_id: &str) -> bool {
        self.releases.iter().any(|r| r == release_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(count: u64, release: &str) -> obs::Figure {
        obs::Figure {
            count,
            release_id: release.to_string(),
            seq: 1,
        }
    }

    #[test]
    fn every_folded_figure_is_found_with_its_release_and_bad_labels_are_left_out() {
        let mut read = HashMap::new();
        read.insert(
            obs::Series::new("fsb", "PRK", "study"),
            obs::Figures::from([
                ("2024-Q2".to_string(), figure(1000, "rel-a")),
                ("2024-Q3".to_string(), figure(3765, "rel-b")),
                ("not-a-period".to_string(), figure(1, "rel-c")),
            ]),
        );
        read.insert(
            obs::Series::new("fsb", "CHN", "study"),
            obs::Figures::from([("2024".to_string(), figure(7, "rel-a"))]),
        );
        read.insert(
            obs::Series::new("fsb", "nowhere", "study"),
            obs::Figures::from([("2024".to_string(), figure(9, "rel-d"))]),
        );
        let stored = Stored::from_series(read);
        assert_eq!(stored.len(), 3);
        let prk = Country::parse("PRK").unwrap();
        let q3: Period = "2024-Q3".parse().unwrap();
        let got = stored.get(prk, "study", q3).unwrap();
        assert_eq!(
            (got.count, got.release_id, got.category),
            (3765, "rel-b", "study")
        );
        assert!(stored.get(prk, "work", q3).is_none());
        assert!(
            stored
                .get(prk, "study", "2024-Q4".parse().unwrap())
                .is_none()
        );
        let mut all: Vec<(String, u64, &str)> = stored
            .iter()
            .map(|f| {
                (
                    format!("{}/{}", f.country.code(), f.period),
                    f.count,
                    f.release_id,
                )
            })
            .collect();
        all.sort();
        assert_eq!(
            all,
            vec![
                ("CHN/2024".to_string(), 7, "rel-a"),
                ("PRK/2024-Q2".to_string(), 1000, "rel-a"),
                ("PRK/2024-Q3".to_string(), 3765, "rel-b"),
            ]
        );
        let mut ids: Vec<&str> = stored.release_ids().collect();
        ids.sort();
        assert_eq!(ids, ["rel-a", "rel-b"]);
        assert!(stored.holds_release("rel-b"));
        assert!(!stored.holds_release("rel-c"));
    }
}
