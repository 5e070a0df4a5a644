//! The pieces every dashboard page shares: escaping, the page frame with its stylesheet, and
//! links to series.

use borderwatch_model::{Severity, SurgeEvent};

use crate::page::percent_encode;

/// The stylesheet, inlined in every page (one request per page, nothing to cache-bust).
const STYLE: &str = include_str!("style.css");

/// Text made safe for HTML element content and double- or single-quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

/// "Entries of North Korean citizens for study": what a series counts, in the words of the
/// surge explanations.
pub(crate) fn series_title(
    source: &str,
    country: borderwatch_model::Country,
    category: &str,
) -> String {
    let unit = borderwatch_model::unit_noun(source);
    let mut title = format!(
        "{}{} of {} {}",
        unit[..1].to_uppercase(),
        &unit[1..],
        country.citizens_phrase(),
        borderwatch_model::category_phrase(category)
    );
    title.truncate(title.trim_end().len());
    title
}

pub(crate) fn badge(severity: Severity) -> String {
    format!("<span class=\"badge {severity}\">{severity}</span>")
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

/// A whole page: `title` (escaped here) and `body` (already HTML).
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · borderwatch</title>
<style>{STYLE}</style></head>
<body>
<header><a class="home" href="/">borderwatch</a> <nav><a href="/">surges</a> <a href="/v1/surges">API</a></nav></header>
<main>
{body}
</main>
</body></html>
"#,
        title = escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
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
    fn series_links_encode_their_segments() {
        assert_eq!(series_href("fsb", "PRK", "study"), "/series/fsb/PRK/study");
        assert_eq!(
            series_href("a/b", "PRK", "x y\"<"),
            "/series/a%2Fb/PRK/x%20y%22%3C"
        );
    }
}
