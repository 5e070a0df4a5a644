//! The demo data borderwatch makes itself, in the generic CSV format.
//!
//! Two parts, told apart by the `source` column:
//!
//! * `fsb` — North Korean (PRK) entries to Russia, categories `study` and `total`: the FSB
//!   figures published in EMISS (indicator 38479) and in the press (Mediazona, Radio Free
//!   Asia, NK News), entered by hand below with the source of each. Quarters nobody published
//!   are filled in by us so that the series have no holes; every figure says which it is
//!   ([`Basis`]). The real story is in it: 3,765 entries for study in 2024-Q3, more than
//!   the roughly 3,200 of all of 2019.
//! * `synthetic` — made-up background series for 40 other countries, from a seeded generator:
//!   stationary, seasonal, a little noise and a gentle pandemic dip. They are not FSB data
//!   and are built so that the surge rules find nothing in them.
//!
//! [`DEMO_DATA_NOTE`] says the same for a README or a command's output.

use std::fmt::Write as _;

/// The source name of the hand-entered North Korea figures.
pub const FSB_SOURCE: &str = "fsb";
/// The source name of the generated background series: the label that keeps anybody from
/// taking them for FSB data.
pub const SYNTHETIC_SOURCE: &str = "synthetic";

/// What the demo data is, in words a README or `borderwatch up` can print.
pub const DEMO_DATA_NOTE: &str = "\
Demo data (generic CSV: source,period,country,category,count).
- source `fsb`, country PRK, categories `study` and `total`: FSB figures for North Korean
  entries to Russia, 2010-Q1..2025-Q1, as published in EMISS (indicator 38479) and reported
  by Mediazona, Radio Free Asia and NK News. Quarters that were never published (much of
  2020-2023, the split of 2019's and 2024's year totals) are filled in by borderwatch and
  are not FSB figures; the source of each figure is listed in crates/ingest/src/demo.rs.
- source `synthetic`: made-up background series for 40 countries x tourism, business,
  private, study, work and total, 2015-Q1..2025-Q1, from a seeded generator. Not real data.";

/// How a hand-entered figure came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The figure as published (EMISS, or the FSB as quoted in the press).
    Reported,
    /// Arithmetic on published figures only (a year total minus its published quarters).
    Derived,
    /// Our split of a published year total over its quarters: the sum is real, the parts ours.
    Split,
    /// Ours: nothing was published for this period; a plausible value so the series has no hole.
    Filled,
}

/// One hand-entered figure of the `fsb` part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figure {
    pub period: &'static str,
    pub count: u64,
    pub basis: Basis,
}

const fn fig(period: &'static str, count: u64, basis: Basis) -> Figure {
    Figure {
        period,
        count,
        basis,
    }
}

use Basis::{Derived, Filled, Reported, Split};

/// North Korean citizens entering Russia for study, per quarter.
///
/// The pandemic fill (2020-Q2..2022-Q4, the border was closed) is small but not zero: a
/// year total near zero would make every later quarter "more than a whole earlier year".
/// The 2021 and 2022 fills are chosen so that their year totals (72, 82) stay above the
/// reported 62 of 2023-Q3 and our 70 of 2023-Q4, and so that 2023 is less than 3× 2022
/// quarter by quarter: nothing before 2024 looks like a surge.
pub const PRK_STUDY: &[Figure] = &[
    // 2019: the year total 3,200 is reported (Mediazona via Politico, 2024-11-08, rounded);
    // the split over quarters is ours.
    fig("2019-Q1", 700, Split),
    fig("2019-Q2", 750, Split),
    fig("2019-Q3", 950, Split),
    fig("2019-Q4", 800, Split),
    // 2020-Q1: ours, in proportion to the total's fall that quarter (1,877 against 4,887).
    fig("2020-Q1", 260, Filled),
    // 2020-Q2..2022-Q4: ours; the border was closed for the pandemic.
    fig("2020-Q2", 20, Filled),
    fig("2020-Q3", 15, Filled),
    fig("2020-Q4", 15, Filled),
    fig("2021-Q1", 15, Filled),
    fig("2021-Q2", 17, Filled),
    fig("2021-Q3", 19, Filled),
    fig("2021-Q4", 21, Filled),
    fig("2022-Q1", 16, Filled),
    fig("2022-Q2", 19, Filled),
    fig("2022-Q3", 22, Filled),
    fig("2022-Q4", 25, Filled),
    fig("2023-Q1", 20, Filled),
    fig("2023-Q2", 30, Filled),
    // NK News via KBS World, 2024-01 (newsrebeat.com printed 24; KBS's purposes sum to 365).
    fig("2023-Q3", 62, Reported),
    fig("2023-Q4", 70, Filled),
    // RFA via Yonhap / Korea Herald, 2024-11-09.
    fig("2024-Q1", 38, Reported),
    // RFA via Yonhap / Korea Herald, 2024-11-09; University World News, 2024-11-12.
    fig("2024-Q2", 332, Reported),
    // Mediazona, 2024-11-08 (via Politico, Pravda.com.ua); RFA via Korea Herald. The story.
    fig("2024-Q3", 3765, Reported),
    // 7,887 for 2024 (RFA via news1global; Yonhap/NIS via astv.ru, 2025-02-10)
    // minus 38, 332 and 3,765.
    fig("2024-Q4", 3752, Derived),
    // Mediazona via Meduza, 2025-05-08.
    fig("2025-Q1", 3, Reported),
];

/// All entries of North Korean citizens to Russia (every purpose), per quarter.
pub const PRK_TOTAL: &[Figure] = &[
    // 2010-Q1..2020-Q1: EMISS indicator 38479 ("Въезд иностранных граждан в РФ"), North
    // Korea, the sum of the transport modes (air, car, rail, ship, walk) per quarter, as in
    // testdata/borders/fsb_russia_entries_by_country_transport_2010q1-2020q1.csv
    // (Ksimi/Russia_in_out). 2019-Q3's 5,591 is also the figure RFA reported (Yonhap/Korea
    // Herald, 2024-11-09); 2019 sums to 21,481 (RFA: "about 21,000").
    fig("2010-Q1", 4015, Reported),
    fig("2010-Q2", 6521, Reported),
    fig("2010-Q3", 5849, Reported),
    fig("2010-Q4", 4782, Reported),
    fig("2011-Q1", 4844, Reported),
    fig("2011-Q2", 4965, Reported),
    fig("2011-Q3", 5413, Reported),
    fig("2011-Q4", 3679, Reported),
    fig("2012-Q1", 6062, Reported),
    fig("2012-Q2", 6335, Reported),
    fig("2012-Q3", 5247, Reported),
    fig("2012-Q4", 4427, Reported),
    fig("2013-Q1", 6346, Reported),
    fig("2013-Q2", 5589, Reported),
    fig("2013-Q3", 6695, Reported),
    fig("2013-Q4", 4974, Reported),
    fig("2014-Q1", 7403, Reported),
    fig("2014-Q2", 5647, Reported),
    fig("2014-Q3", 5230, Reported),
    fig("2014-Q4", 5622, Reported),
    fig("2015-Q1", 4655, Reported),
    fig("2015-Q2", 5218, Reported),
    fig("2015-Q3", 5793, Reported),
    fig("2015-Q4", 5173, Reported),
    fig("2016-Q1", 5980, Reported),
    fig("2016-Q2", 5028, Reported),
    fig("2016-Q3", 5120, Reported),
    fig("2016-Q4", 5908, Reported),
    fig("2017-Q1", 5145, Reported),
    fig("2017-Q2", 4949, Reported),
    fig("2017-Q3", 5379, Reported),
    fig("2017-Q4", 4168, Reported),
    fig("2018-Q1", 3246, Reported),
    fig("2018-Q2", 2488, Reported),
    fig("2018-Q3", 3501, Reported),
    fig("2018-Q4", 4047, Reported),
    fig("2019-Q1", 4887, Reported),
    fig("2019-Q2", 4972, Reported),
    fig("2019-Q3", 5591, Reported),
    fig("2019-Q4", 6031, Reported),
    fig("2020-Q1", 1877, Reported),
    // 2020-Q2..2021-Q4: ours; the border was closed. 2021's fill (235 in all) stays above
    // every quarter of 2022-2023 up to the reopening of 2023-Q3.
    fig("2020-Q2", 90, Filled),
    fig("2020-Q3", 70, Filled),
    fig("2020-Q4", 60, Filled),
    fig("2021-Q1", 55, Filled),
    fig("2021-Q2", 58, Filled),
    fig("2021-Q3", 60, Filled),
    fig("2021-Q4", 62, Filled),
    // 2022: 223 for the year (NK News via KBS World, 2024-01); the split is ours, chosen so
    // that 2023-Q1 and -Q2 stay under 3× their quarter a year earlier.
    fig("2022-Q1", 52, Split),
    fig("2022-Q2", 72, Split),
    fig("2022-Q3", 50, Split),
    fig("2022-Q4", 49, Split),
    // NK News via KBS World, 2024-01.
    fig("2023-Q1", 153, Reported),
    fig("2023-Q2", 213, Reported),
    fig("2023-Q3", 365, Reported),
    // 1,117 for 2023 (RFA via news1global.com/etc/article/426871) minus 153, 213 and 365.
    fig("2023-Q4", 386, Derived),
    // 2024: 13,221 for the year (RFA via news1global) and 5,263 for Q3 (RFA via Yonhap/Korea
    // Herald, 2024-11-09). Q1, Q2 and Q4 share the other 7,958; the split is ours: Q1 and Q2
    // just under what would itself look like a surge, the rest in Q4 when study entries
    // stayed at 3,752.
    fig("2024-Q1", 220, Split),
    fig("2024-Q2", 630, Split),
    fig("2024-Q3", 5263, Reported),
    fig("2024-Q4", 7108, Split),
    // "About 300": Mediazona via Meduza, 2025-05-08.
    fig("2025-Q1", 300, Reported),
];

/// Countries of the synthetic background (ISO alpha-3; no PRK, no RUS).
const SYNTHETIC_COUNTRIES: [&str; 40] = [
    "CHN", "KAZ", "UZB", "TJK", "KGZ", "ARM", "AZE", "GEO", "UKR", "BLR", "MDA", "TKM", "MNG",
    "VNM", "IND", "TUR", "IRN", "DEU", "FIN", "POL", "EST", "LVA", "LTU", "USA", "GBR", "FRA",
    "ITA", "ESP", "JPN", "KOR", "ISR", "EGY", "THA", "IDN", "BRA", "SYR", "AFG", "CUB", "SRB",
    "GRC",
];

/// Categories of the synthetic background; `total` is their sum.
const SYNTHETIC_CATEGORIES: [&str; 5] = ["tourism", "business", "private", "study", "work"];

const SYNTHETIC_FIRST_YEAR: i32 = 2015;
/// 2015-Q1..2025-Q1.
const SYNTHETIC_QUARTERS: usize = 41;

/// The generator's seed: change it and every synthetic figure changes.
const SEED: u64 = 0x626f_7264_6572_7761; // "borderwa"

/// Largest seasonal swing: ±20% around the level.
const SEASONAL_AMPLITUDE: f64 = 0.20;
/// Noise: ±8%. With ±10% the noisiest quarter could beat the quietest of the first two years
/// by 1.1 / 0.9 > 1.2, a record high by the rule; 1.08 / 0.92 stays under it.
const NOISE: f64 = 0.08;

/// The pandemic's effect on the synthetic series, per quarter, from 2020-Q1 on (1 elsewhere).
///
/// The dip is to 30-50%, not to a few percent: a year totalling a few percent of normal
/// would make every quarter after the recovery "more than a whole earlier year". The recovery
/// is gradual: no quarter is more than 2.3× the same quarter a year earlier, which noise
/// (at most 1.08 / 0.92) keeps under the 3× year-over-year rule.
const PANDEMIC: [f64; 20] = [
    0.85, 0.30, 0.40, 0.40, // 2020
    0.40, 0.45, 0.50, 0.50, // 2021
    0.55, 0.62, 0.70, 0.75, // 2022
    0.80, 0.85, 0.90, 0.92, // 2023
    0.95, 0.97, 1.00, 1.00, // 2024
];

/// splitmix64: small, fast and good enough for made-up figures; no dependency.
fn next_u64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1).
fn next_unit(state: &mut u64) -> f64 {
    (next_u64(state) >> 11) as f64 / (1u64 << 53) as f64
}

fn pandemic_factor(year: i32, quarter: usize) -> f64 {
    let i = (year - 2020) * 4 + quarter as i32 - 1;
    usize::try_from(i)
        .ok()
        .and_then(|i| PANDEMIC.get(i))
        .copied()
        .unwrap_or(1.0)
}

/// One synthetic series: its country, category and counts, 2015-Q1 first.
type SyntheticSeries = (&'static str, &'static str, Vec<u64>);

/// The synthetic background: every country, its five categories and their `total`.
fn synthetic_series() -> Vec<SyntheticSeries> {
    let mut state = SEED;
    let mut out = Vec::new();
    for country in SYNTHETIC_COUNTRIES {
        let mut total = vec![0u64; SYNTHETIC_QUARTERS];
        for category in SYNTHETIC_CATEGORIES {
            // Level 100..20,000, spread evenly on a log scale.
            let level = 100.0 * 200f64.powf(next_unit(&mut state));
            let amplitude = SEASONAL_AMPLITUDE * next_unit(&mut state);
            let peak = (next_unit(&mut state) * 4.0) as usize; // 0..=3
            let counts: Vec<u64> = (0..SYNTHETIC_QUARTERS)
                .map(|i| {
                    let year = SYNTHETIC_FIRST_YEAR + (i / 4) as i32;
                    let quarter = i % 4 + 1;
                    // 1 + a at the peak quarter, 1 - a opposite it, 1 between.
                    let seasonal = match (i % 4 + 4 - peak) % 4 {
                        0 => 1.0 + amplitude,
                        2 => 1.0 - amplitude,
                        _ => 1.0,
                    };
                    let noise = 1.0 + NOISE * (2.0 * next_unit(&mut state) - 1.0);
                    let value = level * seasonal * pandemic_factor(year, quarter) * noise;
                    value.round() as u64
                })
                .collect();
            for (t, c) in total.iter_mut().zip(&counts) {
                *t += c;
            }
            out.push((country, category, counts));
        }
        out.push((country, borderwatch_model::TOTAL_CATEGORY, total));
    }
    out
}

const HEADER: &str = "source,period,country,category,count\n";

fn write_figures(out: &mut String, category: &str, figures: &[Figure]) {
    for f in figures {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{FSB_SOURCE},{},PRK,{category},{}", f.period, f.count);
    }
}

fn nk_rows(out: &mut String) {
    write_figures(out, "study", PRK_STUDY);
    write_figures(out, borderwatch_model::TOTAL_CATEGORY, PRK_TOTAL);
}

/// The whole demo: the North Korea figures, then the synthetic background (about 10,000
/// rows), as generic-format CSV. The same every time.
pub fn demo_csv() -> String {
    let mut out = String::with_capacity(300_000);
    out.push_str(HEADER);
    nk_rows(&mut out);
    for (country, category, counts) in synthetic_series() {
        for (i, count) in counts.iter().enumerate() {
            let year = SYNTHETIC_FIRST_YEAR + (i / 4) as i32;
            let quarter = i % 4 + 1;
            let _ = writeln!(
                out,
                "{SYNTHETIC_SOURCE},{year}-Q{quarter},{country},{category},{count}"
            );
        }
    }
    out
}

/// Only the North Korea figures (source `fsb`), as generic-format CSV: small enough for
/// end-to-end tests.
pub fn demo_nk_only_csv() -> String {
    let mut out = String::from(HEADER);
    nk_rows(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use borderwatch_model::{Country, Observation, Period};

    use super::*;
    use crate::generic::parse_generic;

    /// The rules a headline surge is made of, as the analytics service applies them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Rule {
        /// More than 1.2× the highest earlier value, after at least 8 periods, value ≥ 50.
        RecordHigh,
        /// More than the total of a complete earlier calendar year.
        ExceedsYear,
        /// At least 3× the same quarter a year earlier, value ≥ 50.
        YearOverYear,
    }

    fn surges(series: &[(Period, u64)]) -> BTreeSet<(Period, Rule)> {
        let by_period: BTreeMap<Period, u64> = series.iter().copied().collect();
        let mut years: BTreeMap<i32, (u64, usize)> = BTreeMap::new();
        for (p, v) in series {
            let e = years.entry(p.year()).or_default();
            e.0 += v;
            e.1 += 1;
        }
        let mut fired = BTreeSet::new();
        for (i, &(period, value)) in series.iter().enumerate() {
            let earlier_max = series[..i].iter().map(|(_, v)| *v).max().unwrap_or(0);
            if i >= 8 && value >= 50 && value as f64 > 1.2 * earlier_max as f64 {
                fired.insert((period, Rule::RecordHigh));
            }
            if years
                .range(..period.year())
                .any(|(_, &(total, n))| n == 4 && value > total)
            {
                fired.insert((period, Rule::ExceedsYear));
            }
            if let Some(&previous) = by_period.get(&period.year_earlier())
                && value >= 50
                && (previous == 0 || value as f64 / previous as f64 >= 3.0)
            {
                fired.insert((period, Rule::YearOverYear));
            }
        }
        fired
    }

    fn parsed_demo() -> Vec<Observation> {
        let p = parse_generic(&demo_csv(), None).unwrap();
        assert!(
            p.rejected.is_empty(),
            "{:?}",
            &p.rejected[..p.rejected.len().min(5)]
        );
        assert_eq!(p.duplicates, 0);
        p.observations
    }

    fn series_of(obs: &[Observation]) -> BTreeMap<(String, String, String), Vec<(Period, u64)>> {
        let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for o in obs {
            out.entry((o.source.clone(), o.country.to_string(), o.category.clone()))
                .or_default()
                .push((o.period, o.count));
        }
        for s in out.values_mut() {
            s.sort();
        }
        out
    }

    fn count(obs: &[Observation], category: &str, period: &str) -> Option<u64> {
        let period: Period = period.parse().unwrap();
        obs.iter()
            .find(|o| {
                o.source == FSB_SOURCE
                    && o.country == Country::parse("PRK").unwrap()
                    && o.category == category
                    && o.period == period
            })
            .map(|o| o.count)
    }

    fn sum(figures: &[Figure], year: &str) -> u64 {
        figures
            .iter()
            .filter(|f| f.period.starts_with(year))
            .map(|f| f.count)
            .sum()
    }

    #[test]
    fn demo_headline_rows_present() {
        let obs = parsed_demo();
        assert_eq!(count(&obs, "study", "2024-Q3"), Some(3765));
        assert_eq!(count(&obs, "study", "2024-Q2"), Some(332));
        assert_eq!(count(&obs, "total", "2019-Q3"), Some(5591));
        assert_eq!(count(&obs, "total", "2024-Q3"), Some(5263));
        assert_eq!(count(&obs, "total", "2010-Q1"), Some(4015));
        let study_2019: u64 = (1..=4)
            .map(|q| count(&obs, "study", &format!("2019-Q{q}")).unwrap())
            .sum();
        assert_eq!(study_2019, 3200);
    }

    #[test]
    fn hand_entered_figures_add_up_to_the_reported_totals() {
        assert_eq!(sum(PRK_STUDY, "2019"), 3200);
        assert_eq!(sum(PRK_STUDY, "2024"), 7887);
        assert_eq!(sum(PRK_TOTAL, "2019"), 21481);
        assert_eq!(sum(PRK_TOTAL, "2022"), 223);
        assert_eq!(sum(PRK_TOTAL, "2023"), 1117);
        assert_eq!(sum(PRK_TOTAL, "2024"), 13221);
    }

    #[test]
    fn prk_series_are_complete_quarters_and_total_covers_study() {
        for (figures, first) in [
            (PRK_STUDY, Period::Quarter(2019, 1)),
            (PRK_TOTAL, Period::Quarter(2010, 1)),
        ] {
            for (i, f) in figures.iter().enumerate() {
                assert_eq!(f.period.parse::<Period>().unwrap(), first.offset(i as i64));
            }
            assert_eq!(figures.last().unwrap().period, "2025-Q1");
        }
        for s in PRK_STUDY {
            let t = PRK_TOTAL.iter().find(|t| t.period == s.period).unwrap();
            assert!(
                t.count >= s.count,
                "{}: total {} < study {}",
                s.period,
                t.count,
                s.count
            );
        }
    }

    #[test]
    fn prk_surges_are_only_where_reported_figures_put_them() {
        let study: Vec<(Period, u64)> = PRK_STUDY
            .iter()
            .map(|f| (f.period.parse().unwrap(), f.count))
            .collect();
        let total: Vec<(Period, u64)> = PRK_TOTAL
            .iter()
            .map(|f| (f.period.parse().unwrap(), f.count))
            .collect();
        let q = |s: &str| s.parse::<Period>().unwrap();
        let study_fired = surges(&study);
        let study_periods: BTreeSet<Period> = study_fired.iter().map(|(p, _)| *p).collect();
        // The story: the surge starts in 2024-Q2 (332, reported) and peaks in Q3.
        assert_eq!(
            study_periods,
            [q("2024-Q2"), q("2024-Q3"), q("2024-Q4")].into()
        );
        for rule in [Rule::RecordHigh, Rule::ExceedsYear, Rule::YearOverYear] {
            assert!(study_fired.contains(&(q("2024-Q3"), rule)), "{rule:?}");
        }
        // Totals: the reopening of 2023-Q3 (365 and 386 against 223 for all of 2022, all
        // published), 2024-Q2 (study alone, 332, beats 2022's 223), 2024-H2 and "about 300"
        // in 2025-Q1 (again against 2022's 223).
        let total_periods: BTreeSet<Period> = surges(&total).iter().map(|(p, _)| *p).collect();
        let expected: BTreeSet<Period> = [
            "2023-Q3", "2023-Q4", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1",
        ]
        .into_iter()
        .map(q)
        .collect();
        assert_eq!(total_periods, expected);
        for (period, rule) in surges(&total) {
            assert!(
                period >= q("2023-Q3"),
                "{period} {rule:?}: filled values must not make surges"
            );
        }
    }

    #[test]
    fn synthetic_background_has_no_surges() {
        let obs = parsed_demo();
        let series = series_of(&obs);
        let synthetic: Vec<_> = series
            .iter()
            .filter(|((source, ..), _)| source == SYNTHETIC_SOURCE)
            .collect();
        assert_eq!(synthetic.len(), 40 * 6);
        for (key, points) in synthetic {
            assert_eq!(points.len(), SYNTHETIC_QUARTERS, "{key:?}");
            let fired = surges(points);
            assert!(fired.is_empty(), "{key:?}: {fired:?}");
        }
    }

    #[test]
    fn synthetic_background_is_seasonal_with_a_pandemic_dip() {
        let series = synthetic_series();
        for (country, category, counts) in &series {
            let max = *counts.iter().max().unwrap();
            let min_2015_2019 = *counts[..20].iter().min().unwrap();
            assert!(min_2015_2019 > 0, "{country}/{category}");
            // 2020-Q2 is the bottom of the dip: well under any quarter of 2015-2019.
            assert!(
                counts[21] * 10 < min_2015_2019 * 6,
                "{country}/{category}: {counts:?}"
            );
            assert!(max >= 70, "{country}/{category}");
        }
        assert_eq!(
            series,
            synthetic_series(),
            "the generator must be deterministic"
        );
    }

    #[test]
    fn synthetic_countries_are_iso_codes() {
        for c in SYNTHETIC_COUNTRIES {
            assert_eq!(Country::parse(c).unwrap().code(), c);
        }
        let unique: BTreeSet<_> = SYNTHETIC_COUNTRIES.iter().collect();
        assert_eq!(unique.len(), SYNTHETIC_COUNTRIES.len());
    }

    #[test]
    fn nk_only_demo_is_the_fsb_part() {
        let p = parse_generic(&demo_nk_only_csv(), None).unwrap();
        assert!(p.rejected.is_empty());
        assert_eq!(p.observations.len(), PRK_STUDY.len() + PRK_TOTAL.len());
        assert!(p.observations.iter().all(|o| o.source == FSB_SOURCE));
        assert!(demo_csv().starts_with(&demo_nk_only_csv()));
    }
}
