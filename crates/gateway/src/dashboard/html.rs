//! The pieces every dashboard page shares: the page frame with its stylesheet, severity
//! badges and links to series. Pages are [`maud`] templates: every spliced value is escaped
//! unless it is wrapped in [`PreEscaped`], which only the page's own stylesheet and scripts are.

use borderwatch_model::{Severity, SurgeEvent};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::page::percent_encode;

/// The stylesheet, inlined in every page (one request per page, nothing to cache-bust).
const STYLE: &str = include_str!("style.css");

/// The dashboard page of a series.
pub(crate) fn series_href(source: &str, country: &str, category: &str) -> String {
    format!(
        "/series/{}/{}/{}",
        percent_encode(source),
        percent_encode(country),
        percent_encode(category)
    )
}

pub(crate) fn surge_series_href(e: &SurgeEvent) -> String {
    series_href(&e.source, e.country.code(), &e.category)
}

/// "Entries of North Korean citizens for study", "Exits to Turkey", "Detections of illegal
/// border crossings by Iraqi citizens on the eastern land border route": what a series
/// counts, in the model's words for its source (the words of the surge explanations).
pub(crate) fn series_title(
    source: &str,
    country: borderwatch_model::Country,
    category: &str,
) -> String {
    let what = borderwatch_model::counted_what(source, &country);
    let mut chars = what.chars();
    let mut title: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    let phrase = borderwatch_model::category_phrase(category);
    if !phrase.is_empty() {
        title.push(' ');
        title.push_str(&phrase);
    }
    title
}

pub(crate) fn badge(severity: Severity) -> Markup {
    html! { span class={ "badge " (severity) } { (severity) } }
}

/// A rendered page as a response.
pub(crate) fn html_response(body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A whole page: `title` and `body` in the dashboard's frame.
pub(crate) fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · borderwatch" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a class="home" href="/" { "borderwatch" }
                    " "
                    nav { a href="/" { "surges" } " " a href="/v1/surges" { "API" } }
                }
                main { (body) }
            }
        }
    }
}

/// The label of a fall (a significant drop), beside its severity.
pub(crate) fn fall_label() -> Markup {
    html! {
        span class="label fall" title="a significant drop, not a surge: sent only to subscriptions with falls: true" {
            "fall"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_escapes_the_title_and_keeps_the_body() {
        let html = page(r#"<script>alert("x" & 'y')</script>"#, html! { p { "hi" } }).into_string();
        assert!(html.contains(
            "<title>&lt;script&gt;alert(&quot;x&quot; &amp; 'y')&lt;/script&gt; · borderwatch</title>"
        ));
        assert!(html.contains("<main><p>hi</p></main>"));
        assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
    }

    #[test]
    fn series_titles_read_like_the_explanations() {
        let prk = borderwatch_model::Country::parse("PRK").unwrap();
        assert_eq!(
            series_title("fsb", prk, "study"),
            "Entries of North Korean citizens for study"
        );
        assert_eq!(
            series_title("fsb", prk, "total"),
            "Entries of North Korean citizens"
        );
    }

    #[test]
    fn series_titles_use_each_sources_words() {
        let country = |code| borderwatch_model::Country::parse(code).unwrap();
        assert_eq!(
            series_title("fsb_exits", country("TUR"), "total"),
            "Exits to Turkey"
        );
        let frontex = series_title("frontex", country("IRQ"), "eastern_land_border_route_land");
        assert!(
            frontex.starts_with("Detections of illegal border crossings by "),
            "{frontex}"
        );
        assert!(
            frontex.ends_with(" on the eastern land border route"),
            "{frontex}"
        );
        assert!(!frontex.contains("route land"), "{frontex}");
        assert_eq!(
            series_title("cbp", country("MEX"), "apprehensions"),
            "Encounters of Mexican citizens (apprehensions)"
        );
        assert_eq!(
            series_title("somebody", country("PER"), "total"),
            "Records of citizens of Peru"
        );
    }

    #[test]
    fn series_links_encode_their_segments() {
        assert_eq!(series_href("fsb", "PRK", "study"), "/series/fsb/PRK/study");
        assert_eq!(
            series_href("a/b", "PRK", "x y\"<"),
            "/series/a%2Fb/PRK/x%20y%22%3C"
        );
    }
}
