//! `/series/{source}/{country}/{category}`: one series' history as a chart, its surges with
//! their explanations and a table of the figures.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use borderwatch_bus::names;
use borderwatch_model::{Country, SeriesView, SurgeEvent, thousands};
use serde::Deserialize;

use super::chart;
use super::html::{badge, escape, html_response, page, series_href, series_title};
use crate::AppState;

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
            Html(page(
                "Series not found",
                &format!(
                    "<h1>Series not found</h1><p>{}</p><p><a href=\"/\">Back to the latest surges</a></p>",
                    escape(&message)
                ),
            )),
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
                Html(page(
                    "Unavailable",
                    &format!(
                        "<h1>Unavailable</h1><p>The series store cannot be read: {}</p>",
                        escape(&e.to_string())
                    ),
                )),
            )
                .into_response();
        }
    };
    let view: SeriesView = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(page(
                    "Unreadable series",
                    &format!(
                        "<h1>Unreadable series</h1><p>The stored view of {} does not parse: {}</p>",
                        escape(&key),
                        escape(&e.to_string())
                    ),
                )),
            )
                .into_response();
        }
    };
    // Rendered once per stored view and query until the next surge arrives.
    let key = format!("{}?{}", uri.path(), uri.query().unwrap_or(""));
    html_response(state.surges.cached(&key, &raw, || {
        let surges: Vec<Arc<SurgeEvent>> = view
            .surges
            .iter()
            .filter_map(|id| state.surges.get(id))
            .collect();
        render(&view, &surges, params.surge.as_deref()).into()
    }))
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

pub(crate) fn render(view: &SeriesView, surges: &[Arc<SurgeEvent>], asked: Option<&str>) -> String {
    let selected = pick(surges, asked);
    let refs: Vec<&SurgeEvent> = surges.iter().map(|s| &**s).collect();
    let detector = chart::band_detector(view);
    let title = series_title(&view.source, view.country, &view.category);
    let href = series_href(&view.source, view.country.code(), &view.category);
    let mut body = String::with_capacity(32 * 1024);
    let _ = write!(
        body,
        "<h1>{title}</h1>\n<p class=\"muted\">Series {src}/{cty}/{cat} · {n} figures · updated {updated} (release {release}) · JSON: <a href=\"/v1{href}\">/v1{href}</a></p>\n",
        title = escape(&title),
        src = escape(&view.source),
        cty = view.country,
        cat = escape(&view.category),
        n = view.observations.len(),
        updated = escape(&view.updated_at),
        release = escape(&view.release_id),
        href = escape(&href),
    );
    let _ = writeln!(
        body,
        "<figure class=\"chart-box\" id=\"chart\">{svg}<ul class=\"legend\"><li><i class=\"l-observed\"></i>figures</li>{band}<li><i class=\"l-surge\"></i>surge</li>{baseline}</ul></figure>",
        svg = chart::render(view, &refs, selected),
        band = match detector {
            Some(d) => format!(
                "<li><i class=\"l-band\"></i>expected (dashed) up to the threshold ({})</li>",
                escape(d)
            ),
            None => "<li>no statistical band: too little history, or a yearly series</li>".into(),
        },
        baseline = if selected.is_some_and(|s| s.findings.iter().any(|f| f.baseline.is_some())) {
            "<li><i class=\"l-baseline\"></i>baseline the explanation cites</li>"
        } else {
            ""
        },
    );

    body.push_str("<h2>Surges</h2>\n");
    if surges.is_empty() {
        body.push_str("<p>No surge found in this series.</p>\n");
    } else {
        body.push_str("<ul class=\"surges\">\n");
        let mut by_period: Vec<&Arc<SurgeEvent>> = surges.iter().collect();
        by_period.sort_by_key(|s| std::cmp::Reverse(s.period));
        for s in by_period {
            let chosen = selected.is_some_and(|sel| sel.id == s.id);
            let _ = write!(
                body,
                "<li class=\"{sev}\" data-id=\"{id}\">{badge} <b>{period}</b> {link}<p>{text}</p><ul class=\"findings\">",
                sev = s.severity,
                id = escape(&s.id),
                badge = badge(s.severity),
                period = s.period,
                link = if chosen {
                    "<span class=\"muted\">(on the chart)</span>".to_string()
                } else {
                    format!(
                        "<a href=\"{}?surge={}#chart\">show on the chart</a>",
                        escape(&href),
                        crate::page::percent_encode(&s.id)
                    )
                },
                text = escape(&s.explanation),
            );
            for f in &s.findings {
                let _ = write!(
                    body,
                    "<li><code>{}</code> {}</li>",
                    escape(&f.detector),
                    escape(&f.message)
                );
            }
            body.push_str("</ul></li>\n");
        }
        body.push_str("</ul>\n");
    }

    let _ = writeln!(
        body,
        "<h2>Figures</h2>\n<div class=\"table-wrap\"><table><thead><tr><th>period</th><th>figure</th><th>expected{d}</th><th>threshold{d}</th><th>surge</th></tr></thead><tbody>",
        d = detector.map_or(String::new(), |d| format!(
            " <span class=\"muted\">({})</span>",
            escape(d)
        )),
    );
    for p in view.observations.iter().rev() {
        let band = view
            .bands
            .iter()
            .find(|b| b.period == p.period && Some(b.detector.as_str()) == detector);
        let surge = surges.iter().find(|s| s.period == p.period);
        let _ = writeln!(
            body,
            "<tr{class}><td>{period}</td><td>{value}</td><td>{expected}</td><td>{upper}</td><td>{surge}</td></tr>",
            class = if surge.is_some() {
                " class=\"surge-row\""
            } else {
                ""
            },
            period = p.period,
            value = thousands(p.count),
            expected = band.map_or(String::new(), |b| figure(b.expected)),
            upper = band.map_or(String::new(), |b| figure(b.upper_bound)),
            surge = surge.map_or(String::new(), |s| badge(s.severity)),
        );
    }
    body.push_str("</tbody></table></div>\n");
    page(&title, &body)
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
        let html = render(&view, &surges, None);
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
        let html = render(&view, &surges, Some("sg-q4"));
        assert!(html.contains("<circle class=\"surge selected\" data-period=\"2024-Q4\""));
        assert!(html.contains("?surge=sg-q3#chart"));
        // An unknown id falls back to the default.
        let html = render(&view, &surges, Some("<nope>"));
        assert!(html.contains("<circle class=\"surge selected\" data-period=\"2024-Q3\""));
    }

    #[test]
    fn names_and_explanations_are_escaped() {
        let (mut view, mut surges) = study();
        view.category = "<script>x</script>".into();
        view.source = "a\"b".into();
        Arc::make_mut(&mut surges[0]).explanation = "<script>alert(1)</script>".into();
        let html = render(&view, &surges, None);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("a&quot;b/PRK/&lt;script&gt;x&lt;/script&gt;"));
    }

    #[test]
    fn a_series_without_bands_or_surges_still_renders() {
        let (mut view, _) = study();
        view.bands.clear();
        let html = render(&view, &[], None);
        assert!(html.contains("No surge found in this series."));
        assert!(html.contains("no statistical band"));
        assert!(!html.contains("class=\"band\""));
    }
}
