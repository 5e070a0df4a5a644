//! `/series/{source}/{country}/{category}`: one series' history as a chart, its surges with
//! their explanations (each marked when historical, with its incident) and a table of the
//! figures.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use borderwatch_bus::names;
use borderwatch_model::{Country, IncidentUpdate, Period, SeriesView, SurgeEvent, thousands};
use maud::{Markup, html};
use serde::Deserialize;

use super::chart;
use super::html::{badge, fall_label, html_response, page, series_href, series_title};
use crate::AppState;
use crate::page::percent_encode;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SeriesParams {
    /// The surge whose explanation the chart illustrates (default: the most severe, latest).
    surge: Option<String>,
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    Path((source, country, category)): Path<(String, String, String)>,
    Query(params): Query<SeriesParams>,
    uri: Uri,
) -> Response {
    let not_found = |message: String| {
        (
            StatusCode::NOT_FOUND,
            Html(
                page(
                    "Series not found",
                    html! {
                        h1 { "Series not found" }
                        p { (message) }
                        p { a href="/" { "Back to the latest surges" } }
                    },
                )
                .into_string(),
            ),
        )
            .into_response()
    };
    let country = match Country::parse(&country) {
        Ok(c) => c,
        Err(e) => return not_found(e.to_string()),
    };
    let key = names::series_key(&source, country.code(), &category);
    if !borderwatch_bus::valid_key(&key) {
        return not_found(format!("`{source}` or `{category}` is not a valid name"));
    }
    let raw = match state.bus.kv_get(names::SERIES_BUCKET, &key).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return not_found(format!("There is no series {source}/{country}/{category}.")),
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(
                    page(
                        "Unavailable",
                        html! {
                            h1 { "Unavailable" }
                            p { "The series store cannot be read: " (e) }
                        },
                    )
                    .into_string(),
                ),
            )
                .into_response();
        }
    };
    let view = match SeriesView::from_stored(&raw) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(
                    page(
                        "Unreadable series",
                        html! {
                            h1 { "Unreadable series" }
                            p { "The stored view of " (key) " does not parse: " (e) }
                        },
                    )
                    .into_string(),
                ),
            )
                .into_response();
        }
    };
    // Rendered once per stored view and query until the next surge arrives.
    let key = format!("{}?{}", uri.path(), uri.query().unwrap_or(""));
    let surges = match state.surges.get_many(&view.surges).await {
        Ok(surges) => surges,
        Err(e) => return crate::ApiError::from(e).into_response(),
    };
    html_response(state.surges.cached(&key, &raw, || {
        let base = state.cfg.public_url.as_deref();
        render(&view, &surges, params.surge.as_deref(), base).into()
    }))
}

/// The chart on its own (`/v1/series/…/chart.svg`, and the PNG drawn from it), with
/// `mark` marked and its most severe surge's baselines drawn; without `mark`, the surge the
/// page shows first, at its period.
pub(crate) fn standalone_chart(
    view: &SeriesView,
    surges: &[Arc<SurgeEvent>],
    mark: Option<Period>,
) -> String {
    let refs: Vec<&SurgeEvent> = surges.iter().map(|s| &**s).collect();
    let (selected, mark) = match mark {
        Some(period) => (
            surges
                .iter()
                .filter(|s| s.period == period)
                .max_by_key(|s| s.severity)
                .map(|s| &**s),
            Some(period),
        ),
        None => {
            let selected = pick(surges, None);
            (selected, selected.map(|s| s.period))
        }
    };
    let heading = series_title(&view.source, view.country, &view.category);
    chart::render_standalone(view, &heading, &refs, selected, mark).into_string()
}

/// The surge a chart illustrates: the one asked for, else the most severe, latest.
fn pick<'a>(surges: &'a [Arc<SurgeEvent>], asked: Option<&str>) -> Option<&'a SurgeEvent> {
    asked
        .and_then(|id| surges.iter().find(|s| s.id == id))
        .or_else(|| surges.iter().max_by_key(|s| (s.severity, s.period)))
        .map(|s| &**s)
}

/// Expected values and bounds as a reader wants them: whole numbers with separators, one
/// decimal below ten.
fn figure(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() < 10.0 {
        format!("{v:.1}")
    } else {
        thousands(v.max(0.0).round() as u64)
    }
}

/// The series page. `base` is the gateway's public URL (`--public-url`), which the embed
/// snippet names; without one the snippet's address is relative to this gateway.
pub(crate) fn render(
    view: &SeriesView,
    surges: &[Arc<SurgeEvent>],
    asked: Option<&str>,
    base: Option<&str>,
) -> String {
    let selected = pick(surges, asked);
    let refs: Vec<&SurgeEvent> = surges.iter().map(|s| &**s).collect();
    let detector = chart::band_detector(view);
    let title = series_title(&view.source, view.country, &view.category);
    let href = series_href(&view.source, view.country.code(), &view.category);
    let cites_baseline = selected.is_some_and(|s| s.findings.iter().any(|f| f.baseline.is_some()));
    let mut by_period: Vec<&Arc<SurgeEvent>> = surges.iter().collect();
    by_period.sort_by_key(|s| std::cmp::Reverse(s.period));
    let body = html! {
        h1 { (title) }
        p class="muted" {
            "Series " (view.source) "/" (view.country) "/" (view.category)
            " · " (view.observations.len()) " figures · updated " (view.updated_at)
            " (release " (view.release_id) ") · JSON: "
            a href={ "/v1" (href) } { "/v1" (href) }
        }
        figure class="chart-box" id="chart" {
            (chart::render(view, &refs, selected))
            ul class="legend" {
                li { i class="l-observed" {} "figures" }
                @match detector {
                    Some(d) => li {
                        i class="l-band" {}
                        "expected (dashed) up to the threshold (" (d) ")"
                    },
                    None => li { "no statistical band: too little history, or a yearly series" },
                }
                li { i class="l-surge" {} "surge" }
                @if cites_baseline {
                    li { i class="l-baseline" {} "baseline the explanation cites" }
                }
            }
        }

        (embed(view, &title, selected, base))

        h2 { "Surges" }
        @if surges.is_empty() {
            p { "No surge found in this series." }
        } @else {
            ul class="surges" {
                @for s in &by_period {
                    li class=(s.severity) data-id=(s.id) {
                        (badge(s.severity))
                        " "
                        b { (s.period) }
                        " "
                        @if selected.is_some_and(|sel| sel.id == s.id) {
                            span class="muted" { "(on the chart)" }
                        } @else {
                            a href={ (href) "?surge=" (percent_encode(&s.id)) "#chart" } {
                                "show on the chart"
                            }
                        }
                        @if !s.direction.is_rise() {
                            " "
                            (fall_label())
                        }
                        @if s.historical {
                            " "
                            span class="label history"
                                title="not at the series' live edge in the release that brought it: told to subscribers in a summary" {
                                "history"
                            }
                        }
                        p { (s.explanation) }
                        (incident_note(s))
                        ul class="findings" {
                            @for f in &s.findings {
                                li { code { (f.detector) } " " (f.message) }
                            }
                        }
                    }
                }
            }
        }

        h2 { "Figures" }
        div class="table-wrap" {
            table {
                thead {
                    tr {
                        th { "period" }
                        th { "figure" }
                        th { "expected" (detector_note(detector)) }
                        th { "threshold" (detector_note(detector)) }
                        th { "surge" }
                    }
                }
                tbody {
                    @for p in view.observations.iter().rev() {
                        @let band = view
                            .bands
                            .iter()
                            .find(|b| b.period == p.period && Some(b.detector.as_str()) == detector);
                        @let surge = surges.iter().find(|s| s.period == p.period);
                        tr class=[surge.map(|_| "surge-row")] {
                            td { (p.period) }
                            td { (thousands(p.count)) }
                            td { @if let Some(b) = band { (figure(b.expected)) } }
                            td { @if let Some(b) = band { (figure(b.upper_bound)) } }
                            td { @if let Some(s) = surge { (badge(s.severity)) } }
                        }
                    }
                }
            }
        }
    };
    page(&title, body).into_string()
}

/// The chart's own addresses (SVG, PNG; the marked period of the chart above) and the
/// series in CSV, with HTML to paste into a page of one's own. The image shown here is the
/// SVG route itself, so what is offered is what loads.
fn embed(
    view: &SeriesView,
    title: &str,
    selected: Option<&SurgeEvent>,
    base: Option<&str>,
) -> Markup {
    let api = format!(
        "/v1{}",
        series_href(&view.source, view.country.code(), &view.category)
    );
    let query = selected.map_or(String::new(), |s| format!("?period={}", s.period));
    let svg = format!("{api}/chart.svg{query}");
    let png = format!("{api}/chart.png{query}");
    let csv = format!("{api}?format=csv");
    let absolute = format!(
        "{}{svg}",
        base.map_or("", |b| b.trim().trim_end_matches('/'))
    );
    let alt = match selected {
        Some(s) => format!(
            "{}: chart of the figures per {} with the expected band, the {} surge in {} marked",
            title,
            freq_noun(view),
            s.severity,
            s.period
        ),
        None => format!("{title}: chart of the figures"),
    };
    let iframe = format!(
        "<iframe src=\"{absolute}\" width=\"640\" height=\"410\" style=\"border:0;max-width:100%\" title=\"{}\"></iframe>",
        attribute(&alt)
    );
    let img = format!(
        "<img src=\"{absolute}\" width=\"640\" height=\"410\" style=\"max-width:100%;height:auto\" alt=\"{}\">",
        attribute(&alt)
    );
    html! {
        section id="embed" {
            h2 { "Embed or send this chart" }
            p {
                img class="chart-image" src=(svg) alt=(alt) width="640" height="410";
            }
            p {
                "The chart alone: " a href=(svg) { "SVG" } " · " a href=(png) { "PNG" }
                " · the figures with the expected value and upper bound per period: "
                a href=(csv) { "CSV" }
            }
            label for="embed-iframe" { "An iframe for your page" }
            textarea id="embed-iframe" class="snippet" readonly rows="3" { (iframe) }
            label for="embed-img" { "Or an image" }
            textarea id="embed-img" class="snippet" readonly rows="3" { (img) }
            @if base.is_none() {
                p class="muted" {
                    "These addresses are relative: start the gateway with --public-url so that \
                     they name it in full."
                }
            }
            p class="muted" {
                "A chart shows on another site only when this gateway's reads are public (no \
                 read token: a page elsewhere cannot send one); otherwise download the PNG or \
                 SVG and publish it yourself."
            }
        }
    }
}

/// Text for a double-quoted HTML attribute in a snippet (the page escapes the snippet
/// again as it shows it).
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn freq_noun(view: &SeriesView) -> &'static str {
    match view.freq {
        borderwatch_model::Freq::Year => "year",
        borderwatch_model::Freq::Quarter => "quarter",
        borderwatch_model::Freq::Month => "month",
    }
}

/// Which incident a surge belongs to and what it did to it; nothing for a surge from before
/// incidents.
fn incident_note(s: &SurgeEvent) -> Markup {
    let what = match s.incident_update {
        IncidentUpdate::Opened => "opened by this period",
        IncidentUpdate::Continued => "continued by this period",
        IncidentUpdate::Escalated => "escalated by this period (louder than its earlier ones)",
        IncidentUpdate::Closed => "closed in this period (back inside the band)",
    };
    html! {
        @if let Some(id) = &s.incident_id {
            p class="incident" { "Incident " code { (id) } ": " (what) "." }
        }
    }
}

/// " (farrington)" after a column the band's detector fills.
fn detector_note(detector: Option<&str>) -> Markup {
    html! {
        @if let Some(d) = detector {
            " " span class="muted" { "(" (d) ")" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::chart::tests::study_view;

    fn study() -> (SeriesView, Vec<Arc<SurgeEvent>>) {
        let (view, surges) = study_view();
        (view, surges.into_iter().map(Arc::new).collect())
    }

    #[test]
    fn the_page_has_the_chart_the_surges_and_a_row_per_figure() {
        let (view, surges) = study();
        let html = render(&view, &surges, None, None);
        assert!(html.contains("<h1>Entries of North Korean citizens for study</h1>"));
        assert!(html.contains("<svg class=\"chart\""));
        // The critical 2024-Q3 surge is the one drawn by default.
        assert!(html.contains("<circle class=\"surge selected\" data-period=\"2024-Q3\""));
        assert!(
            html.contains(
                "<a href=\"/series/fsb/PRK/study?surge=sg-q4#chart\">show on the chart</a>"
            )
        );
        assert!(html.contains("3765 entries for study in 2024-Q3"));
        assert!(
            html.contains("<code>exceeds_prior_year</code> more than in the whole of 2019 (3,200)")
        );
        assert_eq!(
            html.matches("<tr><td>").count() + html.matches("<tr class=\"surge-row\">").count(),
            25
        );
        assert!(html.contains("<tr class=\"surge-row\"><td>2024-Q3</td><td>3,765</td><td>40</td><td>80</td><td><span class=\"badge critical\">"), "{html}");
        // Newest first.
        assert!(html.find("<td>2025-Q1</td>").unwrap() < html.find("<td>2019-Q1</td>").unwrap());
    }

    #[test]
    fn a_surge_can_be_chosen_for_the_chart() {
        let (view, surges) = study();
        let html = render(&view, &surges, Some("sg-q4"), None);
        assert!(html.contains("<circle class=\"surge selected\" data-period=\"2024-Q4\""));
        assert!(html.contains("?surge=sg-q3#chart"));
        // An unknown id falls back to the default.
        let html = render(&view, &surges, Some("<nope>"), None);
        assert!(html.contains("<circle class=\"surge selected\" data-period=\"2024-Q3\""));
    }

    #[test]
    fn names_and_explanations_are_escaped() {
        let (mut view, mut surges) = study();
        view.category = "<script>x</script>".into();
        view.source = "a\"b".into();
        Arc::make_mut(&mut surges[0]).explanation = "<script>alert(1)</script>".into();
        let html = render(&view, &surges, None, None);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("a&quot;b/PRK/&lt;script&gt;x&lt;/script&gt;"));
    }

    #[test]
    fn a_series_without_bands_or_surges_still_renders() {
        let (mut view, _) = study();
        view.bands.clear();
        let html = render(&view, &[], None, None);
        assert!(html.contains("No surge found in this series."));
        assert!(html.contains("no statistical band"));
        assert!(!html.contains("class=\"band\""));
    }

    #[test]
    fn historical_surges_are_labelled_and_each_names_its_incident() {
        let (view, mut surges) = study();
        for s in &mut surges {
            let s = Arc::make_mut(s);
            s.incident_id = Some("in-0123456789abcdef0123".into());
            if s.period.to_string() == "2024-Q3" {
                s.historical = false;
                s.incident_update = IncidentUpdate::Opened;
            } else {
                s.historical = true;
                s.incident_update = IncidentUpdate::Continued;
            }
        }
        let html = render(&view, &surges, None, None);
        let q3 = item(&html, "2024-Q3");
        let q4 = item(&html, "2024-Q4");
        assert!(!q3.contains(">history</span>"), "{q3}");
        assert!(q4.contains("<span class=\"label history\""), "{q4}");
        assert!(q4.contains(">history</span>"), "{q4}");
        assert!(
            q3.contains(
                "<p class=\"incident\">Incident <code>in-0123456789abcdef0123</code>: opened by this period.</p>"
            ),
            "{q3}"
        );
        assert!(q4.contains(": continued by this period.</p>"), "{q4}");

        Arc::make_mut(&mut surges[0]).incident_update = IncidentUpdate::Escalated;
        let html = render(&view, &surges, None, None);
        assert!(html.contains(": escalated by this period"));
    }

    #[test]
    fn surges_from_before_incidents_show_no_incident() {
        let (view, mut surges) = study();
        for s in &mut surges {
            let s = Arc::make_mut(s);
            s.incident_id = None;
            s.historical = false;
        }
        let html = render(&view, &surges, None, None);
        assert!(!html.contains("class=\"incident\""));
        assert!(!html.contains(">history</span>"));
    }

    /// The list item of the surge of `period` in the page's surge list.
    fn item<'a>(html: &'a str, period: &str) -> &'a str {
        let start = html
            .find(&format!("</span> <b>{period}</b>"))
            .unwrap_or_else(|| panic!("no surge of {period}: {html}"));
        let rest = &html[start..];
        &rest[..rest.find("</ul></li>").unwrap()]
    }
}
