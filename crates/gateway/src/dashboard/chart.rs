//! A series' history as an SVG chart, drawn as a [`maud`] template (every text escaped).
//!
//! Why not `plotters`: its SVG backend writes fixed pixel `width`/`height` (a phone needs a
//! `viewBox` and `width: 100%`), gives its elements no classes or `<title>`s (so no CSS
//! theming, no tooltips on a point, nothing a test or a browser can find by name), and lays
//! text out from font metrics it has to estimate without a font backend. The chart here needs
//! five kinds of shapes (a polygon band, polylines, circles, rectangles, text) on a
//! categorical time axis; writing them directly is shorter than adapting plotters' output,
//! and every element carries a class (`band`, `expected`, `threshold`, `observed`, `point`,
//! `surge`, `baseline`) that the stylesheet colours and the tests count.

use std::fmt::Write as _;

use borderwatch_model::{Band, Freq, Period, SeriesView, SurgeEvent, thousands};
use maud::{Markup, html};

/// The drawing's own coordinate system; the browser scales it to the page width.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 34.0;
/// At most this many labels on the time axis, so they stay readable on a phone.
const MAX_X_LABELS: usize = 8;

/// The chart of `view`: observed figures (line and points), the statistical band from the
/// expected value up to the upper bound (the threshold a figure must pass), every surge in
/// red, and the baselines that `selected`'s explanation cites highlighted with a label.
pub(crate) fn render(
    view: &SeriesView,
    surges: &[&SurgeEvent],
    selected: Option<&SurgeEvent>,
) -> Markup {
    let title = title(view);
    html! {
        svg class="chart" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width="100%" role="img"
            aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            (drawing(view, surges, selected, None))
        }
    }
}

/// What the chart's `<title>` and `aria-label` say.
fn title(view: &SeriesView) -> String {
    format!(
        "{} / {} / {}: figures per {}",
        view.source,
        view.country,
        view.category,
        freq_noun(view.freq)
    )
}

/// Space above the drawing in a standalone chart, for its heading.
const HEADER: f64 = 46.0;
/// Space below it, for the credit line.
const FOOTER: f64 = 24.0;

/// The chart as a file of its own (`/v1/series/…/chart.svg`, and the PNG drawn from it):
/// the same drawing under a heading naming the series and the marked period, with its
/// colours in an embedded stylesheet (no page around it to style it) and a fixed size, so
/// it works in an `<img>`, an iframe, a rasteriser and a newsroom's CMS alike. `mark` is the
/// period drawn as marked: a vertical rule with its figure; `selected` the surge whose
/// cited baselines are drawn.
pub(crate) fn render_standalone(
    view: &SeriesView,
    heading: &str,
    surges: &[&SurgeEvent],
    selected: Option<&SurgeEvent>,
    mark: Option<Period>,
) -> Markup {
    let title = title(view);
    let height = HEADER + HEIGHT + FOOTER;
    let marked = match (mark, selected) {
        (Some(p), Some(s)) if s.period == p => {
            format!("{} surge in {p} marked", s.severity)
        }
        (Some(p), _) => format!("{p} marked"),
        (None, _) => "no surge".to_string(),
    };
    let subtitle = format!(
        "{}/{}/{} · {marked}",
        view.source, view.country, view.category
    );
    html! {
        svg class="chart standalone" xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (WIDTH) " " (height) } width=(WIDTH) height=(height)
            aria-label=(title) {
            title { (title) }
            style { (maud::PreEscaped(STANDALONE_CSS)) }
            rect class="paper" x="0" y="0" width=(WIDTH) height=(height) {}
            text class="heading" x="12" y="22" { (heading) }
            text class="subtitle" x="12" y="40" { (subtitle) }
            g transform={ "translate(0," (HEADER) ")" } {
                (drawing(view, surges, selected, mark))
            }
            text class="credit" x="12" y=(px(height - 8.0)) {
                "borderwatch · figures per " (freq_noun(view.freq)) " · release " (view.release_id)
            }
        }
    }
}

/// The colours of `style.css`'s chart rules, written out (a rasteriser knows no CSS
/// variables) for a chart that stands alone.
const STANDALONE_CSS: &str = "\
text { font-family: 'DejaVu Sans', Verdana, sans-serif; font-size: 14px; fill: #5f6368; } \
.paper { fill: #fff; } \
.heading { font-size: 16px; font-weight: bold; fill: #1d1d1f; } \
.subtitle, .credit { font-size: 12px; } \
.grid { stroke: #eceef1; stroke-width: 1; } \
.base, .tick { stroke: #9aa0a6; } \
.band { fill: #1a56db; fill-opacity: .14; stroke: none; } \
.expected { fill: none; stroke: #1a56db; stroke-width: 1.5; stroke-dasharray: 5 4; } \
.threshold { fill: none; stroke: #1a56db; stroke-width: 1.5; } \
.observed { fill: none; stroke: #1d1d1f; stroke-width: 2; stroke-linejoin: round; } \
.point { fill: #1d1d1f; } \
.surge { fill: #b00020; stroke: #fff; stroke-width: 1.5; } \
.surge.selected { stroke: #b00020; stroke-width: 3; fill-opacity: .85; } \
.baseline rect { fill: #f9a825; fill-opacity: .18; } \
.baseline circle { fill: none; stroke: #b7791f; stroke-width: 2.5; } \
.baseline text { fill: #8a5a00; font-weight: bold; } \
.mark line { stroke: #b00020; stroke-width: 1.5; stroke-dasharray: 3 3; } \
.mark text { fill: #b00020; font-weight: bold; }";

/// The chart's shapes, in its own coordinates (0..[`WIDTH`], 0..[`HEIGHT`]).
fn drawing(
    view: &SeriesView,
    surges: &[&SurgeEvent],
    selected: Option<&SurgeEvent>,
    mark: Option<Period>,
) -> Markup {
    let obs = &view.observations;
    if obs.is_empty() {
        return html! {
            text class="empty" x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" {
                "no figures yet"
            }
        };
    }
    let detector = band_detector(view);
    let bands: Vec<(usize, &Band)> = view
        .bands
        .iter()
        .filter(|b| Some(b.detector.as_str()) == detector)
        .filter_map(|b| index_of(view, b.period).map(|i| (i, b)))
        .collect();
    let max_value = obs
        .iter()
        .map(|p| p.count as f64)
        .chain(bands.iter().map(|(_, b)| b.upper_bound))
        .fold(0.0_f64, f64::max);
    let (step, top_tick) = nice_ticks(max_value);
    let scale = Scale {
        n: obs.len(),
        y_max: top_tick,
    };
    let mut ticks = Vec::new();
    let mut tick = 0.0;
    while tick <= top_tick + step / 2.0 {
        ticks.push(tick);
        tick += step;
    }
    // The figures.
    let line: Vec<(f64, f64)> = obs
        .iter()
        .enumerate()
        .map(|(i, p)| (scale.x(i), scale.y(p.count as f64)))
        .collect();

    html! {
        // Horizontal grid and the value axis, with thousands separators.
        g class="axis y" {
            @for tick in ticks {
                @let y = scale.y(tick);
                line class="grid" x1=(LEFT) x2=(WIDTH - RIGHT) y1=(px(y)) y2=(px(y)) {}
                text x=(LEFT - 6.0) y=(px(y + 5.0)) text-anchor="end" {
                    (thousands(tick.round() as u64))
                }
            }
        }
        @if let Some(surge) = selected {
            (baselines(view, &scale, surge))
        }

        // The band, in runs of consecutive periods: a polygon from the expected line up to
        // the upper bound, the expected value dashed and the threshold as a line on top.
        @for run in runs(&bands) {
            @let upper: Vec<(f64, f64)> = run
                .iter()
                .map(|(i, b)| (scale.x(*i), scale.y(b.upper_bound)))
                .collect();
            @let expected: Vec<(f64, f64)> = run
                .iter()
                .map(|(i, b)| (scale.x(*i), scale.y(b.expected.max(0.0))))
                .collect();
            @let outline: Vec<(f64, f64)> =
                upper.iter().chain(expected.iter().rev()).copied().collect();
            @let detector = run.first().map_or("", |(_, b)| b.detector.as_str());
            polygon class="band" points=(points(&outline)) {
                title { "expected to upper bound (" (detector) ")" }
            }
            polyline class="expected" points=(points(&expected)) {}
            polyline class="threshold" points=(points(&upper)) {}
        }

        // The marked period under the figures, so its point stays on top.
        @if let Some(i) = mark.and_then(|p| index_of(view, p)) {
            (marked(&scale, i, &obs[i], line[i]))
        }
        polyline class="observed" points=(points(&line)) {}
        @for (i, p) in obs.iter().enumerate() {
            @if !surges.iter().any(|s| s.period == p.period) {
                circle class="point" cx=(px(line[i].0)) cy=(px(line[i].1)) r="3" {
                    title { (p.period) ": " (thousands(p.count)) }
                }
            }
        }
        @for s in surges {
            @if let Some(i) = index_of(view, s.period) {
                @let chosen = selected.is_some_and(|sel| sel.id == s.id);
                circle class=(if chosen { "surge selected" } else { "surge" }) data-period=(s.period)
                    cx=(px(line[i].0)) cy=(px(line[i].1)) r=(if chosen { 7.0 } else { 5.5 }) {
                    title {
                        (s.period) ": " (thousands(obs[i].count)) ", " (s.severity) " surge. "
                        (s.explanation)
                    }
                }
            }
        }

        // The time axis: one label per year (or every few), first and last period otherwise.
        g class="axis x" {
            line class="base" x1=(LEFT) x2=(WIDTH - RIGHT) y1=(px(scale.y(0.0)))
                y2=(px(scale.y(0.0))) {}
            @for (i, label) in x_labels(obs.iter().map(|p| p.period).collect()) {
                @let x = px(scale.x(i));
                line class="tick" x1=(x) x2=(x) y1=(px(scale.y(0.0))) y2=(px(scale.y(0.0) + 5.0)) {}
                text x=(x) y=(px(HEIGHT - BOTTOM + 22.0)) text-anchor="middle" { (label) }
            }
        }
    }
}

/// The marked period: a rule from the axis up to its point, and its figure above the plot.
fn marked(scale: &Scale, i: usize, point: &borderwatch_model::Point, at: (f64, f64)) -> Markup {
    let x = scale.x(i);
    html! {
        g class="mark" data-period=(point.period) {
            line x1=(px(x)) x2=(px(x)) y1=(px(scale.y(0.0))) y2=(px(at.1.max(TOP))) {}
            text x=(px(x)) y=(px(TOP - 20.0)) text-anchor=(anchor_for(x)) {
                (point.period) ": " (thousands(point.count))
            }
        }
    }
}

/// Baselines cited by the selected surge: a shaded span for a longer period (a whole year on
/// a quarterly chart), a ring around the point for a period of the chart's own length.
fn baselines(view: &SeriesView, scale: &Scale, surge: &SurgeEvent) -> Markup {
    let obs = &view.observations;
    let mut seen: Vec<Period> = Vec::new();
    let mut shapes: Vec<Markup> = Vec::new();
    for f in &surge.findings {
        let Some(b) = &f.baseline else { continue };
        if seen.contains(&b.period) {
            continue;
        }
        seen.push(b.period);
        let covered: Vec<usize> = obs
            .iter()
            .enumerate()
            .filter(|(_, p)| contains(b.period, p.period))
            .map(|(i, _)| i)
            .collect();
        let (Some(&first), Some(&last)) = (covered.first(), covered.last()) else {
            continue;
        };
        let label = format!(
            "baseline {}: {}",
            b.period,
            thousands(b.value.round() as u64)
        );
        let shape = if b.period.freq() == view.freq {
            let (x, y) = (scale.x(first), scale.y(b.value));
            html! {
                g class="baseline point" {
                    circle cx=(px(x)) cy=(px(y)) r="9" {}
                    text x=(px(x)) y=(px((y - 14.0).max(TOP - 4.0))) text-anchor=(anchor_for(x)) {
                        (label)
                    }
                }
            }
        } else {
            let half = scale.half_step();
            let x1 = (scale.x(first) - half).max(LEFT);
            let x2 = (scale.x(last) + half).min(WIDTH - RIGHT);
            html! {
                g class="baseline span" {
                    rect x=(px(x1)) y=(TOP) width=(px(x2 - x1)) height=(px(HEIGHT - TOP - BOTTOM)) {
                        title { (f.message) }
                    }
                    text x=(px((x1 + x2) / 2.0)) y=(TOP - 8.0) text-anchor=(anchor_for((x1 + x2) / 2.0)) {
                        (label)
                    }
                }
            }
        };
        shapes.push(shape);
    }
    html! { @for shape in &shapes { (shape) } }
}

/// A coordinate to one decimal.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// The one detector whose band the chart draws: the one that bounded the latest period
/// (the view may hold early periods bounded by a fallback detector with a shorter history;
/// mixing two detectors' bands in one shape would mislead).
pub(crate) fn band_detector(view: &SeriesView) -> Option<&str> {
    view.bands.last().map(|b| b.detector.as_str())
}

/// Pixel positions of period indices and values.
#[derive(Debug, Clone, Copy)]
struct Scale {
    n: usize,
    y_max: f64,
}

impl Scale {
    fn x(&self, i: usize) -> f64 {
        let width = WIDTH - LEFT - RIGHT - 16.0;
        if self.n <= 1 {
            return LEFT + 8.0 + width / 2.0;
        }
        LEFT + 8.0 + width * i as f64 / (self.n - 1) as f64
    }

    fn half_step(&self) -> f64 {
        if self.n <= 1 {
            return 8.0;
        }
        (WIDTH - LEFT - RIGHT - 16.0) / (self.n - 1) as f64 / 2.0
    }

    fn y(&self, v: f64) -> f64 {
        let height = HEIGHT - TOP - BOTTOM;
        let v = v.clamp(0.0, self.y_max);
        HEIGHT - BOTTOM - height * v / self.y_max
    }
}

/// A tick step of 1, 2 or 5 times a power of ten giving four to eight ticks, and the top
/// tick at or above `max`.
fn nice_ticks(max: f64) -> (f64, f64) {
    if !max.is_finite() || max <= 0.0 {
        return (1.0, 4.0);
    }
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude)
        .max(1.0);
    (step, (max / step).ceil().max(1.0) * step)
}

fn index_of(view: &SeriesView, period: Period) -> Option<usize> {
    view.observations
        .binary_search_by(|p| p.period.cmp(&period))
        .ok()
}

/// Whether `outer` covers `inner` (a year its quarters and months, a quarter its months).
fn contains(outer: Period, inner: Period) -> bool {
    match outer {
        _ if outer == inner => true,
        Period::Year(y) => inner.year() == y && inner.freq() != Freq::Year,
        Period::Quarter(..) => inner.quarter_of() == Some(outer),
        Period::Month(..) => false,
    }
}

/// Bands split where a period in between has none.
fn runs<'a>(bands: &'a [(usize, &'a Band)]) -> Vec<&'a [(usize, &'a Band)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for k in 1..=bands.len() {
        if k == bands.len() || bands[k].0 != bands[k - 1].0 + 1 {
            out.push(&bands[start..k]);
            start = k;
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn points(pts: &[(f64, f64)]) -> String {
    let mut s = String::with_capacity(pts.len() * 12);
    for (i, (x, y)) in pts.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:.1},{y:.1}");
    }
    s
}

/// Keeps a label near the left or right edge inside the drawing.
fn anchor_for(x: f64) -> &'static str {
    if x < LEFT + 90.0 {
        "start"
    } else if x > WIDTH - RIGHT - 90.0 {
        "end"
    } else {
        "middle"
    }
}

fn freq_noun(freq: Freq) -> &'static str {
    match freq {
        Freq::Year => "year",
        Freq::Quarter => "quarter",
        Freq::Month => "month",
    }
}

/// Which periods get a label on the time axis: the first period of each year (labelled with
/// the year), thinned to at most [`MAX_X_LABELS`]; the first and last period when the series
/// does not cross a year.
fn x_labels(periods: Vec<Period>) -> Vec<(usize, String)> {
    let mut marks: Vec<(usize, String)> = periods
        .iter()
        .enumerate()
        .filter(|(_, p)| p.sub() == 1)
        .map(|(i, p)| (i, p.year().to_string()))
        .collect();
    if marks.len() < 2 {
        marks = periods
            .iter()
            .enumerate()
            .filter(|&(i, _)| i == 0 || i + 1 == periods.len())
            .map(|(i, p)| (i, p.to_string()))
            .collect();
    }
    let every = marks.len().div_ceil(MAX_X_LABELS).max(1);
    marks.into_iter().step_by(every).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use borderwatch_model::{Baseline, Country, Finding, Point, Severity};

    /// The FSB's North Korean entries for study, 2019–2025 (the demo's headline series), with
    /// farrington bands from 2022 on and the two surges the analytics service finds.
    pub(crate) fn study_view() -> (SeriesView, Vec<SurgeEvent>) {
        let values = [
            700, 750, 950, 800, 260, 20, 15, 15, 15, 17, 19, 21, 16, 19, 22, 25, 20, 30, 62, 70,
            38, 332, 3765, 3752, 3,
        ];
        let first = Period::Quarter(2019, 1);
        let observations: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, &count)| Point {
                period: first.offset(i as i64),
                count,
            })
            .collect();
        let bands = observations[12..]
            .iter()
            .map(|p| Band {
                period: p.period,
                detector: "farrington".into(),
                expected: 40.0,
                upper_bound: 80.0,
            })
            .collect();
        let view = SeriesView {
            source: "fsb".into(),
            country: Country::parse("PRK").unwrap(),
            category: "study".into(),
            freq: Freq::Quarter,
            observations,
            yearly: Vec::new(),
            year_over_year: Vec::new(),
            surges: vec!["sg-q3".into(), "sg-q4".into()],
            updated_at: "2025-05-01T00:00:00Z".into(),
            release_id: "rel-1".into(),
            bands,
        };
        let surge = |id: &str, period: Period, value: u64, severity: Severity| SurgeEvent {
            id: id.into(),
            source: "fsb".into(),
            country: view.country,
            category: "study".into(),
            period,
            value,
            severity,
            explanation: format!("{value} entries for study in {period}"),
            findings: vec![
                Finding {
                    detector: "exceeds_prior_year".into(),
                    expected: None,
                    upper_bound: Some(3200.0),
                    p_value: None,
                    message: "more than in the whole of 2019 (3,200)".into(),
                    baseline: Some(Baseline {
                        period: Period::Year(2019),
                        value: 3200.0,
                    }),
                },
                Finding {
                    detector: "year_over_year".into(),
                    expected: Some(62.0),
                    upper_bound: Some(186.0),
                    p_value: None,
                    message: "61 times the same quarter a year earlier (62 in 2023-Q3)".into(),
                    baseline: Some(Baseline {
                        period: period.year_earlier(),
                        value: 62.0,
                    }),
                },
            ],
            release_id: "rel-1".into(),
            detected_at: "2025-05-01T00:00:00Z".into(),
            score: 0.0,
            direction: Default::default(),
            historical: false,
            incident_id: None,
            incident_update: Default::default(),
            story: None,
            url: None,
        };
        let surges = vec![
            surge("sg-q3", Period::Quarter(2024, 3), 3765, Severity::Critical),
            surge("sg-q4", Period::Quarter(2024, 4), 3752, Severity::High),
        ];
        (view, surges)
    }

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    #[test]
    fn the_study_chart_draws_band_surges_and_the_cited_baselines() {
        let (view, surges) = study_view();
        let refs: Vec<&SurgeEvent> = surges.iter().collect();
        let svg = render(&view, &refs, Some(&surges[0])).into_string();
        assert!(svg.starts_with("<svg class=\"chart\" viewBox=\"0 0 640 340\" width=\"100%\""));
        assert!(svg.ends_with("</svg>"));
        // One band polygon (2022-Q1..2025-Q1 are consecutive) with its two lines.
        assert_eq!(count(&svg, "<polygon class=\"band\""), 1);
        assert_eq!(count(&svg, "<polyline class=\"expected\""), 1);
        assert_eq!(count(&svg, "<polyline class=\"threshold\""), 1);
        // 13 band periods: the polygon has 26 corners.
        let polygon = svg
            .split("<polygon class=\"band\" points=\"")
            .nth(1)
            .unwrap();
        let corners = polygon.split('"').next().unwrap().split(' ').count();
        assert_eq!(corners, 26);
        // Two surges in red, the chosen one bigger; the other 23 figures as plain points.
        assert_eq!(count(&svg, "<circle class=\"surge"), 2);
        assert_eq!(count(&svg, "<circle class=\"surge selected\""), 1);
        assert!(svg.contains("data-period=\"2024-Q3\""));
        assert_eq!(count(&svg, "<circle class=\"point\""), 23);
        // The year 2019 the explanation cites is a shaded span with its label; the quarter a
        // year earlier is a ring on its point.
        assert_eq!(count(&svg, "<g class=\"baseline span\">"), 1);
        assert!(svg.contains(">baseline 2019: 3,200</text>"));
        assert_eq!(count(&svg, "<g class=\"baseline point\">"), 1);
        assert!(svg.contains(">baseline 2023-Q3: 62</text>"));
        // Value axis with thousands separators, years on the time axis.
        assert!(svg.contains(">4,000</text>"), "{svg}");
        assert!(svg.contains(">2019</text>") && svg.contains(">2025</text>"));
    }

    #[test]
    fn gaps_in_the_band_split_it_and_an_empty_series_says_so() {
        let (mut view, _) = study_view();
        view.bands.remove(5);
        let svg = render(&view, &[], None).into_string();
        assert_eq!(count(&svg, "<polygon class=\"band\""), 2);
        assert_eq!(count(&svg, "class=\"baseline"), 0);
        assert_eq!(count(&svg, "<circle class=\"point\""), 25);
        view.observations.clear();
        let svg = render(&view, &[], None).into_string();
        assert!(svg.contains("no figures yet"));
    }

    #[test]
    fn text_in_the_chart_is_escaped() {
        let (view, mut surges) = study_view();
        surges[0].explanation = "<script>alert(1)</script> & more".into();
        let refs: Vec<&SurgeEvent> = surges.iter().collect();
        let svg = render(&view, &refs, Some(&surges[0])).into_string();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
    }

    #[test]
    fn only_the_latest_periods_detector_is_drawn() {
        let (mut view, _) = study_view();
        for b in &mut view.bands[..4] {
            b.detector = "ears_c2".into();
        }
        let svg = render(&view, &[], None).into_string();
        assert_eq!(count(&svg, "<polygon class=\"band\""), 1);
        let polygon = svg
            .split("<polygon class=\"band\" points=\"")
            .nth(1)
            .unwrap();
        assert_eq!(polygon.split('"').next().unwrap().split(' ').count(), 18);
        assert!(svg.contains("expected to upper bound (farrington)"));
    }

    #[test]
    fn ticks_are_round_numbers_above_the_maximum() {
        assert_eq!(nice_ticks(3765.0), (1000.0, 4000.0));
        assert_eq!(nice_ticks(62.0), (20.0, 80.0));
        assert_eq!(nice_ticks(0.0), (1.0, 4.0));
        assert_eq!(nice_ticks(3.0), (1.0, 3.0));
        assert_eq!(nice_ticks(f64::NAN), (1.0, 4.0));
    }

    #[test]
    fn monthly_labels_are_thinned_to_a_phone_width() {
        let periods: Vec<Period> = (0..240).map(|i| Period::Month(2005, 1).offset(i)).collect();
        let labels = x_labels(periods);
        assert!(labels.len() <= MAX_X_LABELS, "{labels:?}");
        assert_eq!(labels[0], (0, "2005".to_string()));
        let short = x_labels(vec![Period::Quarter(2024, 2), Period::Quarter(2024, 3)]);
        assert_eq!(
            short,
            vec![(0, "2024-Q2".to_string()), (1, "2024-Q3".to_string())]
        );
    }
}
