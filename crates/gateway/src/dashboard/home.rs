//! `/`: the latest surges, filtered by a plain GET form, kept current by the live stream
//! when JavaScript runs, and a form to subscribe a webhook.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use borderwatch_model::{Country, Severity, SurgeEvent};
use serde::Deserialize;

use super::html::{badge, escape, html_response, page, series_title, surge_series_href};
use crate::AppState;
use crate::surges::Entry;

/// At most this many surges on the page; the API pages through the rest.
const SHOWN: usize = 200;

const LIVE_JS: &str = include_str!("live.js");
const SUBSCRIBE_JS: &str = include_str!("subscribe.js");

/// The filter form's fields; an empty value means any.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HomeParams {
    country: Option<String>,
    category: Option<String>,
    source: Option<String>,
    min_severity: Option<String>,
}

/// The filter as the page applies it, and what it could not read.
#[derive(Debug, Default)]
struct Filter {
    country: Option<Country>,
    category: Option<String>,
    source: Option<String>,
    min_severity: Severity,
    problems: Vec<String>,
}

impl Filter {
    fn from_params(p: &HomeParams) -> Filter {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let mut f = Filter {
            category: given(&p.category),
            source: given(&p.source),
            ..Filter::default()
        };
        if let Some(c) = given(&p.country) {
            match Country::parse(&c) {
                Ok(country) => f.country = Some(country),
                Err(e) => f.problems.push(e.to_string()),
            }
        }
        if let Some(s) = given(&p.min_severity) {
            match s.parse() {
                Ok(sev) => f.min_severity = sev,
                Err(e) => f.problems.push(e),
            }
        }
        f
    }

    fn matches(&self, e: &SurgeEvent) -> bool {
        self.problems.is_empty()
            && self.country.is_none_or(|c| c == e.country)
            && self.category.as_deref().is_none_or(|c| c == e.category)
            && self.source.as_deref().is_none_or(|s| s == e.source)
            && e.severity >= self.min_severity
    }

    /// The same filter as query parameters of the live stream.
    fn stream_query(&self) -> String {
        let mut q = Vec::new();
        if let Some(c) = self.country {
            q.push(format!("country={c}"));
        }
        if let Some(c) = &self.category {
            q.push(format!("category={}", crate::page::percent_encode(c)));
        }
        if let Some(s) = &self.source {
            q.push(format!("source={}", crate::page::percent_encode(s)));
        }
        if self.min_severity > Severity::Low {
            q.push(format!("min_severity={}", self.min_severity));
        }
        q.join("&")
    }
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    Query(params): Query<HomeParams>,
    uri: Uri,
) -> Response {
    // Rendered once per filter until the next surge arrives.
    let key = format!("/?{}", uri.query().unwrap_or(""));
    html_response(state.surges.cached(&key, b"", || {
        let entries = state.surges.after(0);
        render(
            &entries,
            &Filter::from_params(&params),
            state.cfg.api_token.is_some(),
        )
        .into()
    }))
}

/// One surge as a list item (the live script builds the same shape).
pub(crate) fn surge_item(e: &SurgeEvent) -> String {
    format!(
        "<li class=\"{sev}\" data-id=\"{id}\">{badge} <a class=\"series\" href=\"{href}\">{title}</a> <b>{period}</b> <span class=\"muted\">{src}/{cty}/{cat}</span><p>{text}</p></li>\n",
        sev = e.severity,
        id = escape(&e.id),
        badge = badge(e.severity),
        href = escape(&surge_series_href(e)),
        title = escape(&series_title(&e.source, e.country, &e.category)),
        period = e.period,
        src = escape(&e.source),
        cty = e.country,
        cat = escape(&e.category),
        text = escape(&e.explanation),
    )
}

fn render(entries: &[Entry], filter: &Filter, token_required: bool) -> String {
    let mut body = String::with_capacity(64 * 1024);
    body.push_str("<h1>Latest surges</h1>\n");

    // The form's choices: what the stored surges hold.
    // Names are looked up once per country, not once per surge.
    let mut codes: std::collections::BTreeSet<Country> = std::collections::BTreeSet::new();
    let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sources: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in entries {
        let e = &entry.event;
        codes.insert(e.country);
        *categories.entry(e.category.as_str()).or_default() += 1;
        *sources.entry(e.source.as_str()).or_default() += 1;
    }
    let matching = newest_first(entries.iter().filter(|e| filter.matches(&e.event)));

    body.push_str("<form class=\"filters\" method=\"get\" action=\"/\">");
    let mut country_options: Vec<(String, String)> = codes
        .iter()
        .map(|c| (c.code().to_string(), format!("{} ({c})", c.name())))
        .collect();
    country_options.sort_by(|a, b| a.1.cmp(&b.1));
    select(
        &mut body,
        "country",
        "Country",
        &country_options,
        filter.country.map(|c| c.code().to_string()).as_deref(),
    );
    let named = |m: &BTreeMap<&str, usize>| -> Vec<(String, String)> {
        m.keys().map(|k| (k.to_string(), k.to_string())).collect()
    };
    select(
        &mut body,
        "category",
        "Category",
        &named(&categories),
        filter.category.as_deref(),
    );
    select(
        &mut body,
        "source",
        "Source",
        &named(&sources),
        filter.source.as_deref(),
    );
    let severities: Vec<(String, String)> = ["medium", "high", "critical"]
        .iter()
        .map(|s| (s.to_string(), format!("{s} or higher")))
        .collect();
    let min = (filter.min_severity > Severity::Low).then(|| filter.min_severity.to_string());
    select(
        &mut body,
        "min_severity",
        "Severity",
        &severities,
        min.as_deref(),
    );
    body.push_str("<button type=\"submit\">Filter</button> <a href=\"/\">clear</a></form>\n");

    for problem in &filter.problems {
        let _ = writeln!(body, "<p class=\"error\">{}</p>", escape(problem));
    }
    let _ = writeln!(
        body,
        "<p class=\"muted\">{shown} of {matching} matching surges (of {all}), newest release first, its most severe on top. <span id=\"live\">Live updates need JavaScript.</span> JSON: <a href=\"/v1/surges?{q}\">/v1/surges</a></p>",
        shown = matching.len().min(SHOWN),
        matching = matching.len(),
        all = entries.len(),
        q = escape(&filter.stream_query()),
    );
    let _ = writeln!(
        body,
        "<ul class=\"surges\" id=\"surges\" data-stream=\"/v1/surges/stream?{}\">",
        escape(&filter.stream_query())
    );
    for entry in matching.iter().take(SHOWN) {
        body.push_str(&surge_item(&entry.event));
    }
    if matching.is_empty() {
        body.push_str(if entries.is_empty() {
            "<li class=\"empty\">No surges yet. Ingest a release: <code>borderwatch import FILE</code>.</li>\n"
        } else {
            "<li class=\"empty\">No surge matches this filter.</li>\n"
        });
    }
    body.push_str("</ul>\n");
    subscribe_form(&mut body, filter, token_required);
    let _ = write!(
        body,
        "<script>{LIVE_JS}</script><script>{SUBSCRIBE_JS}</script>"
    );
    page("Latest surges", &body)
}

/// Newest release first (by its latest announcement); within a release the most severe
/// first, then the latest period: the headline of a release tops the page.
fn newest_first<'a>(entries: impl DoubleEndedIterator<Item = &'a Entry>) -> Vec<&'a Entry> {
    let mut rank: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out: Vec<(usize, &Entry)> = entries
        .rev()
        .map(|e| {
            let next = rank.len();
            (*rank.entry(e.event.release_id.as_str()).or_insert(next), e)
        })
        .collect();
    out.sort_by_key(|(r, e)| {
        (
            *r,
            std::cmp::Reverse(e.event.severity),
            std::cmp::Reverse(e.event.period),
        )
    });
    out.into_iter().map(|(_, e)| e).collect()
}

/// A `<select>` whose first option is "any".
fn select(
    out: &mut String,
    name: &str,
    label: &str,
    options: &[(String, String)],
    chosen: Option<&str>,
) {
    let _ = write!(
        out,
        "<label>{label}<select name=\"{name}\"><option value=\"\">any</option>"
    );
    let mut found = chosen.is_none();
    for (value, text) in options {
        let selected = chosen == Some(value.as_str());
        found |= selected;
        let _ = write!(
            out,
            "<option value=\"{}\"{}>{}</option>",
            escape(value),
            if selected { " selected" } else { "" },
            escape(text)
        );
    }
    // A value from the URL that no stored surge has yet: keep it chosen.
    if let (false, Some(value)) = (found, chosen) {
        let _ = write!(
            out,
            "<option value=\"{v}\" selected>{v}</option>",
            v = escape(value)
        );
    }
    out.push_str("</select></label>");
}

/// The webhook subscription form. It posts JSON to `POST /v1/subscriptions` from a small
/// script (the API takes JSON only); without JavaScript the page shows the same request as
/// a `curl` command. When the gateway runs with an API token the reader types it in; it is
/// sent as `Authorization: Bearer …` with that one request and kept nowhere.
fn subscribe_form(out: &mut String, filter: &Filter, token_required: bool) {
    let countries = filter.country.map(|c| c.to_string()).unwrap_or_default();
    let categories = filter.category.clone().unwrap_or_default();
    let sources = filter.source.clone().unwrap_or_default();
    let _ = write!(
        out,
        r#"<h2 id="subscribe">Get these surges by webhook</h2>
<p class="muted">Each matching surge is POSTed to your URL, signed with your secret (<code>X-Borderwatch-Signature</code>).</p>
<form class="subscribe" id="subscribe-form" hidden>
<label class="wide">Webhook URL<input name="url" type="url" required placeholder="https://example.org/hook"></label>
<label>Secret<input name="secret" type="password" required autocomplete="off"></label>
<label>Format<select name="format"><option value="json">JSON</option><option value="slack">Slack</option><option value="teams">Teams</option></select></label>
<label>Countries<input name="countries" value="{countries}" placeholder="PRK, CHN (empty: all)"></label>
<label>Categories<input name="categories" value="{categories}" placeholder="study (empty: all)"></label>
<label>Sources<input name="sources" value="{sources}" placeholder="fsb (empty: all)"></label>
<label>Minimum severity<select name="min_severity">{severity_options}</select></label>
<label class="wide">API token{token_note}<input name="token" type="password" autocomplete="off"{token_required}></label>
<div class="wide"><button type="submit">Subscribe</button> <span id="subscribe-result" role="status"></span></div>
</form>
<noscript><p>Subscribing from this page needs JavaScript. Without it, send the request yourself:</p>
<pre>curl -X POST "$GATEWAY/v1/subscriptions" -H 'Content-Type: application/json' {auth}\
  -d '{{"filter": {{"countries": [{jc}], "categories": [{jcat}], "sources": [{js}], "min_severity": "{sev}"}}, "webhook": {{"url": "https://…", "secret": "…"}}}}'</pre></noscript>
"#,
        countries = escape(&countries),
        categories = escape(&categories),
        sources = escape(&sources),
        severity_options = ["low", "medium", "high", "critical"]
            .iter()
            .map(|s| format!(
                "<option{}>{s}</option>",
                if *s == filter.min_severity.to_string() {
                    " selected"
                } else {
                    ""
                }
            ))
            .collect::<String>(),
        token_note = if token_required {
            " (this gateway requires one)"
        } else {
            " (only if the gateway was started with one)"
        },
        token_required = if token_required { " required" } else { "" },
        auth = if token_required {
            "-H 'Authorization: Bearer TOKEN' "
        } else {
            ""
        },
        jc = escape(&quoted(&countries)),
        jcat = escape(&quoted(&categories)),
        js = escape(&quoted(&sources)),
        sev = filter.min_severity,
    );
}

fn quoted(v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!("\"{v}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use borderwatch_model::Period;

    fn entry(
        seq: u64,
        country: &str,
        category: &str,
        explanation: &str,
        severity: Severity,
    ) -> Entry {
        Entry {
            seq,
            event: Arc::new(SurgeEvent {
                id: format!("sg-{seq}"),
                source: "fsb".into(),
                country: Country::parse(country).unwrap(),
                category: category.into(),
                period: Period::Quarter(2024, 3),
                value: 3765,
                severity,
                explanation: explanation.into(),
                findings: Vec::new(),
                release_id: "rel-1".into(),
                detected_at: "2025-01-01T00:00:00Z".into(),
            }),
        }
    }

    fn entries() -> Vec<Entry> {
        vec![
            entry(
                1,
                "CHN",
                "tourism",
                "420 entries of Chinese citizens",
                Severity::Low,
            ),
            entry(
                2,
                "PRK",
                "study",
                "3,765 entries of North Korean citizens for study",
                Severity::Critical,
            ),
        ]
    }

    #[test]
    fn the_page_lists_surges_newest_first_with_badges_and_series_links() {
        let html = render(&entries(), &Filter::default(), false);
        let prk = html.find("3,765 entries of North Korean").unwrap();
        let chn = html.find("420 entries of Chinese").unwrap();
        assert!(prk < chn, "the critical one first");
        assert!(html.contains("<span class=\"badge critical\">critical</span> <a class=\"series\" href=\"/series/fsb/PRK/study\">"));
        assert!(html.contains("2 of 2 matching surges (of 2)"));
        // Filter choices come from the stored surges.
        assert!(html.contains("<option value=\"PRK\">"));
        assert!(html.contains("<option value=\"tourism\">tourism</option>"));
        // The subscribe form exists, hidden until the script shows it, with a no-script way.
        assert!(html.contains("<form class=\"subscribe\" id=\"subscribe-form\" hidden>"));
        assert!(html.contains("<noscript>"));
        assert!(html.contains("(only if the gateway was started with one)"));
    }

    #[test]
    fn the_newest_release_comes_first_and_its_most_severe_surge_tops_it() {
        let mut list = entries();
        let mut later = entry(
            3,
            "SYR",
            "work",
            "12,019 entries of Syrian citizens",
            Severity::Low,
        );
        Arc::make_mut(&mut later.event).release_id = "rel-2".into();
        list.push(later);
        list.push(entry(
            4,
            "VNM",
            "private",
            "10,611 entries of Vietnamese",
            Severity::Medium,
        ));
        let order: Vec<u64> = newest_first(list.iter()).iter().map(|e| e.seq).collect();
        // rel-1's latest announcement (seq 4) is newer than rel-2's (seq 3).
        assert_eq!(order, vec![2, 4, 1, 3]);
    }

    #[test]
    fn filters_by_country_category_source_and_severity() {
        let params = HomeParams {
            country: Some("North Korea".into()),
            ..Default::default()
        };
        let html = render(&entries(), &Filter::from_params(&params), true);
        assert!(html.contains("North Korean citizens for study"));
        assert!(!html.contains("420 entries of Chinese"));
        assert!(html.contains("<option value=\"PRK\" selected>"));
        assert!(html.contains("data-stream=\"/v1/surges/stream?country=PRK\""));
        assert!(html.contains("(this gateway requires one)"));

        let params = HomeParams {
            category: Some("tourism".into()),
            source: Some("fsb".into()),
            ..Default::default()
        };
        let html = render(&entries(), &Filter::from_params(&params), false);
        assert!(!html.contains("North Korean citizens for study"));
        assert!(html.contains("420 entries of Chinese"));

        let params = HomeParams {
            min_severity: Some("high".into()),
            source: Some("cbp".into()),
            ..Default::default()
        };
        let html = render(&entries(), &Filter::from_params(&params), false);
        assert!(html.contains("No surge matches this filter."));
        // A source no surge has yet stays chosen in the form.
        assert!(html.contains("<option value=\"cbp\" selected>cbp</option>"));
    }

    #[test]
    fn a_bad_filter_value_is_reported_not_obeyed() {
        let params = HomeParams {
            country: Some("Atlantis".into()),
            min_severity: Some("huge".into()),
            ..Default::default()
        };
        let html = render(&entries(), &Filter::from_params(&params), false);
        assert!(html.contains("<p class=\"error\">"), "{html}");
        assert!(html.contains("Atlantis"));
        assert!(html.contains("`huge` is not a severity"));
        assert!(html.contains("No surge matches this filter."));
    }

    #[test]
    fn every_value_from_data_or_url_is_escaped() {
        let evil = vec![entry(
            1,
            "PRK",
            "study",
            "<script>alert('x')</script>",
            Severity::High,
        )];
        let params = HomeParams {
            category: Some("<script>cat</script>".into()),
            source: Some("\"><img src=x onerror=alert(1)>".into()),
            ..Default::default()
        };
        let html = render(&evil, &Filter::from_params(&params), false);
        let without_own_scripts: String = html
            .split("<script>")
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    part.split_once("</script>").map_or("", |(_, rest)| rest)
                }
            })
            .collect();
        assert!(
            !without_own_scripts.contains("<script"),
            "{without_own_scripts}"
        );
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;cat&lt;/script&gt;"));
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
        // The explanation is shown escaped when a filter lets it through.
        let html = render(&evil, &Filter::default(), false);
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert_eq!(
            html.matches("<script>").count(),
            2,
            "only the page's own two scripts"
        );
    }
}
