//! Live replay: the real periodic files of `testdata/borders` fed the way agencies publish
//! them, and what a subscriber with one catch-all subscription would be sent.
//!
//! For each file: the history load first (the whole file up to a cut, as a new user's first
//! import), then the same file one period longer, release by release, to its end. Each
//! release goes through the analysis the service runs (aggregation, every default detector
//! on the periods new to each series, Benjamini–Hochberg across the release) and then the
//! alert layer (`borderwatch_analytics::alert`: live edge, score gate, severity, incidents).
//!
//! Per source it prints the notifications of the history load, the notifications per live
//! release as a share of the series in it (median and worst), the share of live
//! series-periods that are surges, `high` and `critical`, and, beside it, what the first
//! round (every surge sent, no live edge, no incidents) would have sent. Then each known
//! event with the release in which it was first notified and the incidents of its series.
//!
//! Command: `cargo bench -p borderwatch-analytics --bench live_replay` (a few minutes in a
//! release build; `--profile dev` works too, slower). `BENCH_LIVE_SHARE` sets the share of a
//! file's periods replayed live (default 0.35). Results are kept in BENCHMARKS.md.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use borderwatch_analytics::alert::{self, Alarm, AlertConfig, Verdicts};
use borderwatch_analytics::story;
use borderwatch_analytics::{AnalysisConfig, SeriesFrame, aggregate, assess, decide};
use borderwatch_model::{
    Country, Direction, Incident, IncidentUpdate, Observation, Period, SeriesKey, Severity,
    SurgeEvent,
};

/// One real file and the source it is replayed as.
struct File {
    name: &'static str,
    format: &'static str,
    /// Keep only these categories (the files also carry breakdowns that repeat the totals).
    categories: Option<&'static [&'static str]>,
}

const FILES: &[File] = &[
    File {
        name: "fsb_russia_entries_by_country_transport_2010q1-2020q1.csv",
        format: "auto",
        categories: None,
    },
    File {
        name: "fsb_russia_exits_by_destination_transport_2010q1-2020q1.csv",
        format: "auto",
        categories: None,
    },
    File {
        name: "ohss_usbp_encounters_monthly_citizenship_fy2000-fy2025m11.csv",
        format: "auto",
        categories: None,
    },
    File {
        name: "cbp_sw_land_border_encounters_fy22-fy25aug.csv",
        format: "auto",
        categories: None,
    },
];

/// A known event: a series and the period its story starts.
struct Event {
    label: &'static str,
    direction: Direction,
    source: &'static str,
    country: &'static str,
    category: &'static str,
    onset: &'static str,
}

const EVENTS: &[Event] = &[
    Event {
        label: "2018 FIFA World Cup in Russia",
        direction: Direction::Rise,
        source: "fsb",
        country: "PER",
        category: "total",
        onset: "2018-Q2",
    },
    Event {
        label: "2018 FIFA World Cup in Russia",
        direction: Direction::Rise,
        source: "fsb",
        country: "ARG",
        category: "total",
        onset: "2018-Q2",
    },
    Event {
        label: "2018 FIFA World Cup in Russia",
        direction: Direction::Rise,
        source: "fsb",
        country: "MEX",
        category: "total",
        onset: "2018-Q2",
    },
    Event {
        label: "2018 FIFA World Cup in Russia",
        direction: Direction::Rise,
        source: "fsb",
        country: "COL",
        category: "total",
        onset: "2018-Q2",
    },
    Event {
        label: "2018 FIFA World Cup in Russia",
        direction: Direction::Rise,
        source: "fsb",
        country: "BRA",
        category: "total",
        onset: "2018-Q2",
    },
    Event {
        label: "2021 spring surge",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "HND",
        category: "total",
        onset: "2021-03",
    },
    Event {
        label: "2021 spring surge",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "VEN",
        category: "total",
        onset: "2021-03",
    },
    Event {
        label: "2021 spring surge",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "BRA",
        category: "total",
        onset: "2021-03",
    },
    Event {
        label: "2021 spring surge",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "NIC",
        category: "total",
        onset: "2021-03",
    },
    Event {
        label: "2021 Colombian arrivals",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "COL",
        category: "total",
        onset: "2021-08",
    },
    Event {
        label: "Del Rio camp, Sept 2021",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "HTI",
        category: "total",
        onset: "2021-09",
    },
    Event {
        label: "Turkish arrivals 2022",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "TUR",
        category: "total",
        onset: "2022-03",
    },
    Event {
        label: "Senegalese one-month spike",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "SEN",
        category: "total",
        onset: "2022-03",
    },
    Event {
        label: "Russian arrivals after the invasion of Ukraine",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "RUS",
        category: "total",
        onset: "2022-05",
    },
    Event {
        label: "Peruvian arrivals 2022",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "PER",
        category: "total",
        onset: "2022-05",
    },
    Event {
        label: "Mauritanian arrivals 2023",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "MRT",
        category: "total",
        onset: "2023-03",
    },
    Event {
        label: "Guinean arrivals 2023",
        direction: Direction::Rise,
        source: "ohss_usbp",
        country: "GIN",
        category: "total",
        onset: "2023-08",
    },
    Event {
        label: "Fall: Russia closes its border with China (COVID-19)",
        direction: Direction::Fall,
        source: "fsb",
        country: "CHN",
        category: "total",
        onset: "2020-Q1",
    },
    Event {
        label: "Fall: Russia closes its border with China (COVID-19)",
        direction: Direction::Fall,
        source: "fsb_exits",
        country: "CHN",
        category: "total",
        onset: "2020-Q1",
    },
    Event {
        label: "Fall: Venezuelan encounters collapse, mid-2024",
        direction: Direction::Fall,
        source: "ohss_usbp",
        country: "VEN",
        category: "total",
        onset: "2024-06",
    },
    Event {
        label: "Fall: the southwest border shuts, February 2025",
        direction: Direction::Fall,
        source: "cbp_sw",
        country: "MEX",
        category: "total",
        onset: "2025-02",
    },
    Event {
        label: "Fall: the southwest border shuts, February 2025",
        direction: Direction::Fall,
        source: "cbp_sw",
        country: "HND",
        category: "total",
        onset: "2025-02",
    },
    Event {
        label: "Fall: the southwest border shuts, February 2025",
        direction: Direction::Fall,
        source: "cbp_sw",
        country: "GTM",
        category: "total",
        onset: "2025-02",
    },
    Event {
        label: "North Korean entries for study (the seed case)",
        direction: Direction::Rise,
        source: "fsb",
        country: "PRK",
        category: "study",
        onset: "2024-Q3",
    },
];

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/borders"
    ))
    .join(name)
}

/// What one replayed source produced.
#[derive(Default)]
struct Tally {
    series: usize,
    live_releases: usize,
    history_surges: usize,
    history_series: usize,
    history_notifications: usize,
    history_before: usize,
    /// Per live release: (series in it, notifications sent, notifications with falls on,
    /// notifications of the first round).
    releases: Vec<(usize, usize, usize, usize)>,
    live_series_periods: usize,
    rises: Counts,
    falls: Counts,
    incidents: HashMap<SeriesKey, Vec<Incident>>,
    release_periods: Vec<Period>,
    /// Every live surge before the score gate: its score and whether it survived.
    live_scores: Vec<f64>,
    /// Stories told in live releases (each one notification for several surges).
    stories: usize,
    /// Detector → (live series-periods where it fired, live announced surges or falls that
    /// cite it).
    detectors: BTreeMap<String, (usize, usize)>,
    /// (series, period, direction) → the title of the story it was told in.
    story_of: HashMap<(SeriesKey, Period, Direction), String>,
}

impl Tally {
    fn counts(&self, direction: Direction) -> &Counts {
        match direction {
            Direction::Rise => &self.rises,
            Direction::Fall => &self.falls,
        }
    }
}

/// The live alarms of one direction (surges or falls) of a replayed source.
#[derive(Default)]
struct Counts {
    live: usize,
    high: usize,
    critical: usize,
    /// (series, period) → the release (index, 0 = history) that first notified it.
    notified: HashMap<(SeriesKey, Period), usize>,
    /// (series, period) → score, severity and what the alarm did to its incident.
    alarms: HashMap<(SeriesKey, Period), (f64, Severity, IncidentUpdate)>,
}

fn main() {
    let live_share: f64 = std::env::var("BENCH_LIVE_SHARE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.35);
    // decide() applies the score gate; the replay applies it itself, so that it can count
    // what the first round (no gate) would have sent.
    let alerts = AlertConfig::default();
    let mut cfg = AnalysisConfig::default();
    cfg.alert.min_score = 0.0;
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for file in FILES {
        let bytes = std::fs::read(testdata(file.name))
            .unwrap_or_else(|e| panic!("{}: {e} (testdata/ is part of the repository)", file.name));
        let parsed = borderwatch_ingest::parse(file.format, &bytes, None)
            .unwrap_or_else(|e| panic!("{}: {e}", file.name));
        let mut by_source: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
        for o in parsed.observations {
            if file
                .categories
                .is_none_or(|c| c.contains(&o.category.as_str()))
            {
                by_source.entry(o.source.clone()).or_default().push(o);
            }
        }
        for (source, obs) in by_source {
            eprintln!("replaying {source} ({}, {} figures)", file.name, obs.len());
            let tally = replay(&obs, live_share, &cfg, &alerts);
            tallies.insert(source, tally);
        }
    }
    // The seed case: the FSB's North Korean figures as published (demo data), 2024-Q3 live.
    let nk = borderwatch_ingest::parse(
        "generic",
        borderwatch_ingest::demo_nk_only_csv().as_bytes(),
        None,
    )
    .expect("demo data parses");
    let nk_obs: Vec<Observation> = nk.observations;
    eprintln!("replaying the seed case ({} figures)", nk_obs.len());
    tallies.insert(
        "fsb (North Korea, seed)".into(),
        replay_from(&nk_obs, "2024-Q2", &cfg, &alerts),
    );

    report(&tallies);
}

/// Replays a source: history up to the period `live_share` of the way from the end, then
/// one release per period.
fn replay(
    obs: &[Observation],
    live_share: f64,
    cfg: &AnalysisConfig,
    alerts: &AlertConfig,
) -> Tally {
    let periods = main_periods(obs);
    let live = ((periods.len() as f64 * live_share).round() as usize).clamp(1, periods.len() - 1);
    let cut = periods[periods.len() - live - 1];
    replay_from(obs, &cut.to_string(), cfg, alerts)
}

/// The distinct periods of the shortest length in `obs`, oldest first.
fn main_periods(obs: &[Observation]) -> Vec<Period> {
    let freq = obs
        .iter()
        .map(|o| o.period.freq())
        .min()
        .expect("observations");
    let mut periods: Vec<Period> = obs
        .iter()
        .map(|o| o.period)
        .filter(|p| p.freq() == freq)
        .collect();
    periods.sort();
    periods.dedup();
    periods
}

fn replay_from(
    obs: &[Observation],
    cut: &str,
    cfg: &AnalysisConfig,
    alerts: &AlertConfig,
) -> Tally {
    let cut: Period = cut.parse().expect("cut period");
    let periods = main_periods(obs);
    let mut tally = Tally::default();
    let mut releases = vec![cut];
    releases.extend(periods.iter().copied().filter(|p| *p > cut));
    let fingerprint = cfg.fingerprint();
    let mut known: HashMap<SeriesKey, Period> = HashMap::new();
    for (r, &upto) in releases.iter().enumerate() {
        let subset: Vec<Observation> = obs
            .iter()
            .filter(|o| {
                if o.period.freq() == upto.freq() {
                    o.period <= upto
                } else {
                    o.period.year() < upto.year()
                }
            })
            .cloned()
            .collect();
        let frames = aggregate(&subset).expect("aggregate");
        // The periods new to each series in this release.
        let jobs: Vec<(&SeriesFrame, Vec<Period>)> = frames
            .iter()
            .filter_map(|f| {
                let before = known.get(&f.key).copied();
                let new: Vec<Period> = f
                    .points
                    .iter()
                    .map(|p| p.0)
                    .filter(|p| before.is_none_or(|b| *p > b))
                    .collect();
                (!new.is_empty()).then_some((f, new))
            })
            .collect();
        let evaluations = borderwatch_analytics::evaluate_frames(&jobs, cfg);
        let assessments: Vec<_> = jobs
            .iter()
            .zip(&evaluations)
            .flat_map(|((frame, _), rows)| assess(frame, rows))
            .collect();
        let surges = decide(&assessments, cfg, &format!("r{r}"), "replay");
        let mut by_series: HashMap<SeriesKey, Vec<borderwatch_model::SurgeEvent>> = HashMap::new();
        for s in surges {
            by_series.entry(s.series()).or_default().push(s);
        }
        let mut news: Vec<borderwatch_model::SurgeEvent> = Vec::new();
        let mut live_series = 0;
        let mut before_round = 0;
        let mut history_surges = 0;
        let mut history_series = 0;
        for (frame, new) in &jobs {
            let all: Vec<Period> = frame.points.iter().map(|p| p.0).collect();
            let live = alert::live_periods(&all, new, alerts.live_window);
            let mut events = by_series.remove(&frame.key).unwrap_or_default();
            events.sort_by_key(|e| e.period);
            before_round += events.len();
            if r > 0
                && let Ok(path) = std::env::var("BENCH_DUMP")
            {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("dump file");
                for e in events.iter().filter(|e| live.contains(&e.period)) {
                    let detectors: Vec<String> = e
                        .findings
                        .iter()
                        .map(|f| {
                            format!(
                                "{}:{:.0}:{:.1e}",
                                f.detector,
                                f.expected.unwrap_or(-1.0),
                                f.p_value.unwrap_or(1.0)
                            )
                        })
                        .collect();
                    let prior: Vec<String> = frame
                        .points
                        .iter()
                        .filter(|p| p.0 < e.period)
                        .rev()
                        .take(24)
                        .map(|p| p.1.to_string())
                        .collect();
                    writeln!(
                        f,
                        "{}\t{}\t{}\t{:.1}\t{}\t{}\t{}",
                        e.direction,
                        e.series(),
                        e.period,
                        e.value,
                        e.score,
                        detectors.join(" "),
                        prior.join(",")
                    )
                    .expect("dump");
                }
            }
            if r > 0 {
                tally.live_scores.extend(
                    events
                        .iter()
                        .filter(|e| e.direction.is_rise() && live.contains(&e.period))
                        .map(|e| e.score),
                );
            }
            if r > 0 {
                tally.live_series_periods += live.len();
                for e in events.iter().filter(|e| live.contains(&e.period)) {
                    for f in &e.findings {
                        let c = tally.detectors.entry(f.detector.clone()).or_default();
                        c.0 += 1;
                        c.1 += usize::from(e.score >= alerts.min_score);
                    }
                }
            }
            let incidents = tally.incidents.entry(frame.key.clone()).or_default();
            for direction in [Direction::Rise, Direction::Fall] {
                let mine: Vec<&SurgeEvent> =
                    events.iter().filter(|e| e.direction == direction).collect();
                let severity = |e: &SurgeEvent| match direction {
                    Direction::Rise => alerts.severity(e.score, &e.findings),
                    Direction::Fall => alerts.fall_severity(e.score, &e.findings[0], e.period),
                };
                let alarms: Vec<Alarm> = mine
                    .iter()
                    .filter(|e| e.score >= alerts.min_score)
                    .map(|e| Alarm {
                        period: e.period,
                        value: e.value,
                        surge_id: e.id.clone(),
                        severity: severity(e),
                        score: e.score,
                        live: live.contains(&e.period),
                    })
                    .collect();
                // Flagged under the gate: the series is still outside its band there.
                let held: Vec<Period> = mine
                    .iter()
                    .filter(|e| e.score < alerts.min_score)
                    .map(|e| e.period)
                    .collect();
                let counts = match direction {
                    Direction::Rise => &mut tally.rises,
                    Direction::Fall => &mut tally.falls,
                };
                if r > 0 {
                    for a in alarms.iter().filter(|a| a.live) {
                        counts.live += 1;
                        counts.high += usize::from(a.severity == Severity::High);
                        counts.critical += usize::from(a.severity == Severity::Critical);
                    }
                }
                let historical = alarms.iter().filter(|a| !a.live).count();
                if historical > 0 && direction.is_rise() {
                    history_surges += historical;
                    history_series += 1;
                }
                let verdicts = Verdicts {
                    direction,
                    evaluated: new,
                    alarms: &alarms,
                    held: &held,
                };
                let advance = alert::advance(incidents, &frame.key, verdicts, &fingerprint);
                for (a, (_, update)) in alarms.iter().zip(&advance.updates) {
                    counts.alarms.insert(
                        (frame.key.clone(), a.period),
                        (a.score, a.severity, *update),
                    );
                    if a.live && update.is_news() {
                        counts
                            .notified
                            .entry((frame.key.clone(), a.period))
                            .or_insert(r);
                        if let Some(e) = mine.iter().find(|e| e.id == a.surge_id) {
                            let mut e = (*e).clone();
                            e.historical = false;
                            e.incident_update = *update;
                            news.push(e);
                        }
                    }
                }
            }
            live_series += usize::from(!live.is_empty());
            if let Some(last) = all.last() {
                known.insert(frame.key.clone(), *last);
            }
        }
        // Stories: surges of the release that share a cause go out once.
        story::group(&mut news, live_series, &format!("r{r}"), alerts);
        // What a catch-all subscription is sent: without falls (the default), and with.
        let sent = |falls: bool| {
            let mine = news.iter().filter(|e| falls || e.direction.is_rise());
            let mut stories: Vec<&str> = mine
                .clone()
                .filter_map(|e| e.story.as_ref().map(|s| s.id.as_str()))
                .collect();
            stories.sort_unstable();
            stories.dedup();
            (mine.filter(|e| e.story.is_none()).count(), stories.len())
        };
        let (alone, stories) = sent(false);
        let notifications = alone + stories;
        let with_falls = {
            let (alone, stories) = sent(true);
            alone + stories
        };
        tally.stories += stories;
        for e in &news {
            if let Some(story) = &e.story {
                tally
                    .story_of
                    .insert((e.series(), e.period, e.direction), story.title.clone());
            }
        }
        // One summary per release that brought historical surges.
        let summary = usize::from(history_surges > 0);
        if r == 0 {
            tally.series = jobs.len();
            tally.history_surges = history_surges;
            tally.history_series = history_series;
            tally.history_notifications = notifications + summary;
            tally.history_before = before_round;
        } else {
            tally.live_releases += 1;
            tally.releases.push((
                jobs.len(),
                notifications + summary,
                with_falls + summary,
                before_round,
            ));
        }
        tally.release_periods.push(upto);
    }
    tally
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.2} %", 100.0 * n as f64 / d as f64)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(tallies: &BTreeMap<String, Tally>) {
    println!(
        "| source | series | live releases | history load: surges (series) | history load: notifications (first round) | live: notified share of series, median / worst (first round) | live surges | high | critical | stories | live falls | falls high | falls critical | notified share with falls on, median / worst |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (source, t) in tallies {
        let shares: Vec<f64> = t
            .releases
            .iter()
            .map(|&(n, sent, _, _)| sent as f64 / n.max(1) as f64)
            .collect();
        let with_falls: Vec<f64> = t
            .releases
            .iter()
            .map(|&(n, _, sent, _)| sent as f64 / n.max(1) as f64)
            .collect();
        let before: Vec<f64> = t
            .releases
            .iter()
            .map(|&(n, _, _, b)| b as f64 / n.max(1) as f64)
            .collect();
        let worst_with_falls = with_falls.iter().copied().fold(0.0, f64::max);
        let worst = shares.iter().copied().fold(0.0, f64::max);
        let worst_before = before.iter().copied().fold(0.0, f64::max);
        println!(
            "| {source} | {} | {} | {} ({}) | {} ({}) | {:.2} % / {:.2} % ({:.2} % / {:.2} %) | {} | {} | {} | {} | {} | {} | {} | {:.2} % / {:.2} % |",
            t.series,
            t.live_releases,
            t.history_surges,
            t.history_series,
            t.history_notifications,
            t.history_before,
            100.0 * median(shares),
            100.0 * worst,
            100.0 * median(before),
            100.0 * worst_before,
            pct(t.rises.live, t.live_series_periods),
            pct(t.rises.high, t.live_series_periods),
            pct(t.rises.critical, t.live_series_periods),
            t.stories,
            pct(t.falls.live, t.live_series_periods),
            pct(t.falls.high, t.live_series_periods),
            pct(t.falls.critical, t.live_series_periods),
            100.0 * median(with_falls),
            100.0 * worst_with_falls,
        );
    }
    println!();
    println!("Live series-periods whose surge scores at least T (before the gate), per source:");
    println!();
    let thresholds = [
        0.0, 30.0, 40.0, 45.0, 50.0, 55.0, 60.0, 62.0, 65.0, 70.0, 78.0, 80.0,
    ];
    let head: Vec<String> = thresholds.iter().map(|t| format!("≥ {t}")).collect();
    println!("| source | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(thresholds.len()));
    for (source, t) in tallies {
        let cells: Vec<String> = thresholds
            .iter()
            .map(|&th| {
                pct(
                    t.live_scores.iter().filter(|&&s| s >= th).count(),
                    t.live_series_periods,
                )
            })
            .collect();
        println!("| {source} | {} |", cells.join(" | "));
    }
    println!();
    println!(
        "Live series-periods where each detector fired (before the score gate), and where it is cited by an announced surge or fall (after it), per source:"
    );
    println!();
    let names: Vec<&str> = [
        "exceeds_prior_year",
        "record_high",
        "year_over_year",
        "farrington",
        "ears_c2",
        "cusum",
        "fall",
    ]
    .to_vec();
    println!("| source | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for (source, t) in tallies {
        let cells: Vec<String> = names
            .iter()
            .map(|n| {
                let (fired, cited) = t.detectors.get(*n).copied().unwrap_or_default();
                format!(
                    "{} / {}",
                    pct(fired, t.live_series_periods),
                    pct(cited, t.live_series_periods)
                )
            })
            .collect();
        println!("| {source} | {} |", cells.join(" | "));
    }
    println!();
    println!(
        "| event | series | onset | first notified | incidents of the series from the onset | onset: score, severity, incident | verdict | told in a story |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for e in EVENTS {
        let onset: Period = e.onset.parse().expect("onset");
        let key = SeriesKey::new(
            e.source,
            Country::parse(e.country).expect("country"),
            e.category,
        );
        let Some((_, t)) = tallies.iter().find(|(s, t)| {
            s.starts_with(e.source)
                && t.incidents.contains_key(&key)
                && t.release_periods.contains(&onset)
        }) else {
            println!(
                "| {} | {key} | {onset} | – | – | not in a live release |",
                e.label
            );
            continue;
        };
        let release = t
            .release_periods
            .iter()
            .position(|p| *p == onset)
            .expect("onset release");
        let c = t.counts(e.direction);
        let first = c
            .notified
            .iter()
            .filter(|((k, p), _)| *k == key && *p >= onset && *p <= onset.offset(2))
            .map(|(_, r)| *r)
            .min();
        let incidents = t.incidents[&key]
            .iter()
            .filter(|i| i.direction == e.direction)
            .filter(|i| i.last >= onset && i.opened <= onset.offset(2))
            .count();
        // The incident the onset belongs to, when it opened before the onset.
        let earlier = t.incidents[&key]
            .iter()
            .filter(|i| i.direction == e.direction)
            .find(|i| i.opened < onset && i.last >= onset && i.announced)
            .and_then(|i| {
                c.notified
                    .iter()
                    .filter(|((k, p), _)| *k == key && *p >= i.opened && *p < onset)
                    .map(|((_, p), _)| *p)
                    .min()
            });
        let verdict = match (first, earlier) {
            (Some(r), _) if r == release && incidents == 1 => {
                "notified at onset, one incident".to_string()
            }
            (Some(r), _) if r == release => "notified at onset".to_string(),
            (_, Some(p)) => format!("notified at {p}, when its incident opened (one incident)"),
            (Some(_), None) => "notified late".to_string(),
            (None, None) => "missed".to_string(),
        };
        let when = first.map_or("–".to_string(), |r| t.release_periods[r].to_string());
        let at_onset = c
            .alarms
            .get(&(key.clone(), onset))
            .map_or("no surge".to_string(), |(score, severity, update)| {
                format!("{score:.0}, {severity}, {update:?}")
            });
        let story = t
            .story_of
            .get(&(key.clone(), onset, e.direction))
            .map_or("–".to_string(), |title| format!("\"{title}\""));
        println!(
            "| {} | {key} | {onset} | {when} | {incidents} | {at_onset} | {verdict} | {story} |",
            e.label
        );
    }
}
