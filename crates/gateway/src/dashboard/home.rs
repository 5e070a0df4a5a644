//! `/`: the latest surges, filtered by a plain GET form, kept current by the live stream
//! when JavaScript runs, the open incidents (from `bw_incidents`) and a form to subscribe a
//! webhook.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use borderwatch_bus::names;
use borderwatch_model::{Country, Incident, SeriesIncidents, Severity, SurgeEvent};
use futures::StreamExt;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::html::{
    badge, fall_label, html_response, page, series_href, series_title, surge_series_href,
};
use crate::AppState;
use crate::surges::{Entry, Fields};

/// At most this many surges on the page; the API pages through the rest.
const SHOWN: usize = 200;
/// At most this many open incidents on the page, newest first; `/v1/incidents` has them all.
const INCIDENTS_SHOWN: usize = 50;
/// Series read from `bw_incidents` at once.
const INCIDENT_READS: usize = 16;

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

    fn matches(&self, e: &Fields<'_>) -> bool {
        self.matches_series(e.source, e.country, e.category, e.severity)
    }

    /// An incident matches by its series and its peak severity.
    fn matches_incident(&self, i: &Incident) -> bool {
        self.matches_series(&i.source, i.country, &i.category, i.peak_severity)
    }

    fn matches_series(
        &self,
        source: &str,
        country: Country,
        category: &str,
        severity: Severity,
    ) -> bool {
        self.problems.is_empty()
            && self.country.is_none_or(|c| c == country)
            && self.category.as_deref().is_none_or(|c| c == category)
            && self.source.as_deref().is_none_or(|s| s == source)
            && severity >= self.min_severity
    }

    /// The same filter as query parameters of the live stream.
    fn stream_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(c) = self.country {
            q.append_pair("country", c.code());
        }
        if let Some(c) = &self.category {
            q.append_pair("category", c);
        }
        if let Some(s) = &self.source {
            q.append_pair("source", s);
        }
        if self.min_severity > Severity::Low {
            q.append_pair("min_severity", &self.min_severity.to_string());
        }
        q.finish()
    }
}

pub(crate) async fn page_handler(
    State(state): State<AppState>,
    Query(params): Query<HomeParams>,
    uri: Uri,
) -> Response {
    let incidents = open_incidents(&state).await;
    // Rendered once per filter until the next surge arrives or the open incidents change
    // (a quiet release closes incidents without a surge).
    let key = format!("/?{}", uri.query().unwrap_or(""));
    let page = state
        .surges
        .cached_async(&key, &digest(&incidents), || async {
            let filter = Filter::from_params(&params);
            // Chosen on the index; only the surges shown are read whole.
            let summary = state
                .surges
                .with_rows(|rows| summarize(rows.iter(), &filter));
            let shown = state.surges.entries(&summary.shown).await?;
            Ok::<_, borderwatch_bus::BusError>(
                render_page(
                    &summary,
                    &shown,
                    &incidents,
                    &filter,
                    state.cfg.api_token.is_some(),
                )
                .into(),
            )
        })
        .await;
    match page {
        Ok(page) => html_response(page),
        Err(e) => crate::ApiError::from(e).into_response(),
    }
}

/// The open incidents of every series in `bw_incidents`, newest first (latest alarming
/// period, then the loudest); or why they cannot be read. A series whose record does not
/// parse is skipped, as `GET /v1/incidents` does.
async fn open_incidents(state: &AppState) -> Result<Vec<Incident>, String> {
    let keys = state
        .bus
        .kv_keys(names::INCIDENTS_BUCKET)
        .await
        .map_err(|e| e.to_string())?;
    let bus = &state.bus;
    let read: Vec<_> = futures::stream::iter(keys)
        .map(|key| async move { bus.kv_get(names::INCIDENTS_BUCKET, &key).await })
        .buffer_unordered(INCIDENT_READS)
        .collect()
        .await;
    let mut open = Vec::new();
    for raw in read {
        let Some(raw) = raw.map_err(|e| e.to_string())? else {
            continue;
        };
        let Ok(kept) = serde_json::from_slice::<SeriesIncidents>(&raw) else {
            continue;
        };
        open.extend(kept.incidents.into_iter().filter(Incident::is_open));
    }
    sort_newest_first(&mut open);
    Ok(open)
}

/// Latest alarming period first, then the loudest, then the latest opened; the id settles
/// the rest, so the order does not depend on the order the store answered in.
fn sort_newest_first(incidents: &mut [Incident]) {
    incidents.sort_by(|a, b| {
        (b.last, b.peak_severity, b.opened)
            .cmp(&(a.last, a.peak_severity, a.opened))
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// What the cached page depends on besides the surge index: the incidents it lists.
fn digest(incidents: &Result<Vec<Incident>, String>) -> [u8; 32] {
    let mut h = Sha256::new();
    match incidents {
        Ok(list) => {
            for i in list {
                h.update(serde_json::to_vec(i).unwrap_or_default());
                h.update([0u8]);
            }
        }
        Err(e) => {
            h.update([1u8]);
            h.update(e.as_bytes());
        }
    }
    h.finalize().into()
}

/// The open incidents the filter lets through, newest first, at most [`INCIDENTS_SHOWN`].
fn incidents_section(incidents: &Result<Vec<Incident>, String>, filter: &Filter) -> Markup {
    html! {
        h2 id="incidents" { "Open incidents" }
        @match incidents {
            Err(e) => p class="error" { "The incidents cannot be read: " (e) },
            Ok(list) => {
                @let matching: Vec<&Incident> =
                    list.iter().filter(|i| filter.matches_incident(i)).collect();
                @if matching.is_empty() {
                    p class="muted" { "No open incident matches." }
                } @else {
                    p class="muted" {
                        (matching.len().min(INCIDENTS_SHOWN)) " of " (matching.len())
                        " open incidents (runs of consecutive alarming periods of a series), "
                        "newest first. JSON: "
                        a href="/v1/incidents?status=open" { "/v1/incidents" }
                    }
                    ul class="incidents" {
                        @for i in matching.iter().take(INCIDENTS_SHOWN) {
                            (incident_item(i))
                        }
                    }
                }
            }
        }
    }
}

/// One open incident: its peak severity, series, first and latest period, how many periods.
fn incident_item(i: &Incident) -> Markup {
    let periods = i.surges.len().max(1);
    html! {
        li class=(i.peak_severity) data-id=(i.id) {
            (badge(i.peak_severity))
            " "
            a class="series" href=(series_href(&i.source, i.country.code(), &i.category)) {
                (series_title(&i.source, i.country, &i.category))
            }
            " "
            @if !i.direction.is_rise() {
                (fall_label())
                " "
            }
            span class="when" {
                "since " b { (i.opened) }
                @if i.last != i.opened {
                    ", last " b { (i.last) }
                }
                " · " (periods) @if periods == 1 { " period" } @else { " periods" }
            }
        }
    }
}

/// One surge as a list item (the live script builds the same shape).
pub(crate) fn surge_item(e: &SurgeEvent) -> Markup {
    html! {
        li class=(e.severity) data-id=(e.id) {
            (badge(e.severity))
            " "
            a class="series" href=(surge_series_href(e)) {
                (series_title(&e.source, e.country, &e.category))
            }
            " "
            b { (e.period) }
            " "
            @if !e.direction.is_rise() {
                (fall_label())
                " "
            }
            span class="muted" { (e.source) "/" (e.country) "/" (e.category) }
            p { (e.explanation) }
        }
    }
}

/// What the page says of the whole index: the form's choices, the counts and which surges
/// it shows (their sequences, in the page's order), made under the index's lock.
#[derive(Debug, Default)]
struct Summary {
    countries: std::collections::BTreeSet<Country>,
    categories: BTreeMap<String, usize>,
    sources: BTreeMap<String, usize>,
    /// Surges in the index.
    total: usize,
    /// Surges the filter lets through.
    matching: usize,
    /// The first [`SHOWN`] of them.
    shown: Vec<u64>,
}

fn summarize<'a>(rows: impl DoubleEndedIterator<Item = Fields<'a>>, filter: &Filter) -> Summary {
    // The form's choices: what the stored surges hold.
    let mut s = Summary::default();
    let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sources: BTreeMap<&str, usize> = BTreeMap::new();
    let mut matching = Vec::new();
    for e in rows {
        s.total += 1;
        s.countries.insert(e.country);
        *categories.entry(e.category).or_default() += 1;
        *sources.entry(e.source).or_default() += 1;
        if filter.matches(&e) {
            matching.push(e);
        }
    }
    let matching = newest_first(matching.into_iter());
    s.matching = matching.len();
    s.shown = matching.iter().take(SHOWN).map(|e| e.seq).collect();
    let owned = |m: BTreeMap<&str, usize>| m.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    s.categories = owned(categories);
    s.sources = owned(sources);
    s
}

/// The page for the entries of `summary.shown` (read whole, in that order).
fn render_page(
    summary: &Summary,
    shown: &[Entry],
    incidents: &Result<Vec<Incident>, String>,
    filter: &Filter,
    token_required: bool,
) -> String {
    // Names are looked up once per country, not once per surge.
    let mut country_options: Vec<(String, String)> = summary
        .countries
        .iter()
        .map(|c| (c.code().to_string(), format!("{} ({c})", c.name())))
        .collect();
    country_options.sort_by(|a, b| a.1.cmp(&b.1));
    let named = |m: &BTreeMap<String, usize>| -> Vec<(String, String)> {
        m.keys().map(|k| (k.clone(), k.clone())).collect()
    };
    let (categories, sources) = (&summary.categories, &summary.sources);
    let severities: Vec<(String, String)> = ["medium", "high", "critical"]
        .iter()
        .map(|s| (s.to_string(), format!("{s} or higher")))
        .collect();
    let min = (filter.min_severity > Severity::Low).then(|| filter.min_severity.to_string());
    let stream_query = filter.stream_query();

    let body = html! {
        h1 { "Latest surges" }
        form class="filters" method="get" action="/" {
            (select(
                "country",
                "Country",
                &country_options,
                filter.country.map(|c| c.code().to_string()).as_deref(),
            ))
            (select("category", "Category", &named(categories), filter.category.as_deref()))
            (select("source", "Source", &named(sources), filter.source.as_deref()))
            (select("min_severity", "Severity", &severities, min.as_deref()))
            button type="submit" { "Filter" }
            " "
            a href="/" { "clear" }
        }
        @for problem in &filter.problems {
            p class="error" { (problem) }
        }
        p class="muted" {
            (summary.matching.min(SHOWN)) " of " (summary.matching) " matching surges (of "
            (summary.total) "), newest release first, its most severe on top. "
            span id="live" { "Live updates need JavaScript." }
            " JSON: "
            a href={ "/v1/surges?" (stream_query) } { "/v1/surges" }
            ". " a href="#incidents" { "Open incidents" } " below."
        }
        ul class="surges" id="surges" data-stream={ "/v1/surges/stream?" (stream_query) } {
            @for entry in shown {
                (surge_item(&entry.event))
            }
            @if summary.matching == 0 {
                @if summary.total == 0 {
                    li class="empty" {
                        "No surges yet. Ingest a release: "
                        code { "borderwatch import FILE" }
                        "."
                    }
                } @else {
                    li class="empty" { "No surge matches this filter." }
                }
            }
        }
        (incidents_section(incidents, filter))
        (subscribe_form(filter, token_required))
        script { (PreEscaped(LIVE_JS)) }
        script { (PreEscaped(SUBSCRIBE_JS)) }
    };
    page("Latest surges", body).into_string()
}

/// Newest release first (by its latest announcement); within a release the most severe
/// first, then the latest period: the headline of a release tops the page.
fn newest_first<'a>(entries: impl DoubleEndedIterator<Item = Fields<'a>>) -> Vec<Fields<'a>> {
    let mut rank: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out: Vec<(usize, Fields<'a>)> = entries
        .rev()
        .map(|e| {
            let next = rank.len();
            (*rank.entry(e.release_id).or_insert(next), e)
        })
        .collect();
    out.sort_by_key(|(r, e)| {
        (
            *r,
            std::cmp::Reverse(e.severity),
            std::cmp::Reverse(e.period),
        )
    });
    out.into_iter().map(|(_, e)| e).collect()
}

/// A `<select>` whose first option is "any".
fn select(name: &str, label: &str, options: &[(String, String)], chosen: Option<&str>) -> Markup {
    let found = chosen.is_none_or(|c| options.iter().any(|(value, _)| value == c));
    html! {
        label {
            (label)
            select name=(name) {
                option value="" { "any" }
                @for (value, text) in options {
                    option value=(value) selected[chosen == Some(value.as_str())] { (text) }
                }
                // A value from the URL that no stored surge has yet: keep it chosen.
                @if let (false, Some(value)) = (found, chosen) {
                    option value=(value) selected { (value) }
                }
            }
        }
    }
}

/// The webhook subscription form. It posts JSON to `POST /v1/subscriptions` from a small
/// script (the API takes JSON only); without JavaScript the page shows the same request as
/// a `curl` command. When the gateway runs with an API token the reader types it in; it is
/// sent as `Authorization: Bearer …` with that one request and kept nowhere.
fn subscribe_form(filter: &Filter, token_required: bool) -> Markup {
    let countries = filter.country.map(|c| c.to_string()).unwrap_or_default();
    let categories = filter.category.clone().unwrap_or_default();
    let sources = filter.source.clone().unwrap_or_default();
    let min_severity = filter.min_severity.to_string();
    let token_note = if token_required {
        " (this gateway requires one)"
    } else {
        " (only if the gateway was started with one)"
    };
    let auth = if token_required {
        "-H 'Authorization: Bearer TOKEN' "
    } else {
        ""
    };
    let curl = format!(
        r#"curl -X POST "$GATEWAY/v1/subscriptions" -H 'Content-Type: application/json' {auth}\
  -d '{{"filter": {{"countries": [{jc}], "categories": [{jcat}], "sources": [{js}], "min_severity": "{min_severity}"}}, "webhook": {{"url": "https://…", "secret": "…"}}}}'"#,
        jc = quoted(&countries),
        jcat = quoted(&categories),
        js = quoted(&sources),
    );
    html! {
        h2 id="subscribe" { "Get these surges by webhook" }
        p class="muted" {
            "Each matching surge is POSTed to your URL, signed with your secret ("
            code { "X-Borderwatch-Signature" }
            ")."
        }
        form class="subscribe" id="subscribe-form" hidden {
            label class="wide" {
                "Webhook URL"
                input name="url" type="url" required placeholder="https://example.org/hook";
            }
            label { "Secret" input name="secret" type="password" required autocomplete="off"; }
            label {
                "Format"
                select name="format" {
                    option value="json" { "JSON" }
                    option value="slack" { "Slack" }
                    option value="teams" { "Teams" }
                }
            }
            label {
                "Countries"
                input name="countries" value=(countries) placeholder="PRK, CHN (empty: all)";
            }
            label {
                "Categories"
                input name="categories" value=(categories) placeholder="study (empty: all)";
            }
            label {
                "Sources"
                input name="sources" value=(sources) placeholder="fsb (empty: all)";
            }
            label {
                "Minimum severity"
                select name="min_severity" {
                    @for s in ["low", "medium", "high", "critical"] {
                        option selected[s == min_severity] { (s) }
                    }
                }
            }
            label class="wide" {
                "API token" (token_note)
                input name="token" type="password" autocomplete="off" required[token_required];
            }
            div class="wide" {
                button type="submit" { "Subscribe" }
                " "
                span id="subscribe-result" role="status" {}
            }
        }
        noscript {
            p { "Subscribing from this page needs JavaScript. Without it, send the request yourself:" }
            pre { (curl) }
        }
    }
}

fn quoted(v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!("\"{v}\"")
    }
}

/// The page for these entries, all in memory (the tests' way in).
#[cfg(test)]
fn render(
    entries: &[Entry],
    incidents: &Result<Vec<Incident>, String>,
    filter: &Filter,
    token_required: bool,
) -> String {
    let summary = summarize(entries.iter().map(|e| Fields::of(e.seq, &e.event)), filter);
    let shown: Vec<Entry> = summary
        .shown
        .iter()
        .filter_map(|seq| entries.iter().find(|e| e.seq == *seq).cloned())
        .collect();
    render_page(&summary, &shown, incidents, filter, token_required)
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
                score: 0.0,
                direction: Default::default(),
                historical: false,
                incident_id: None,
                incident_update: Default::default(),
                story: None,
                url: None,
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
        let html = render(&entries(), &Ok(Vec::new()), &Filter::default(), false);
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
        let order: Vec<u64> = newest_first(list.iter().map(|e| Fields::of(e.seq, &e.event)))
            .iter()
            .map(|e| e.seq)
            .collect();
        // rel-1's latest announcement (seq 4) is newer than rel-2's (seq 3).
        assert_eq!(order, vec![2, 4, 1, 3]);
    }

    #[test]
    fn filters_by_country_category_source_and_severity() {
        let params = HomeParams {
            country: Some("North Korea".into()),
            ..Default::default()
        };
        let html = render(
            &entries(),
            &Ok(Vec::new()),
            &Filter::from_params(&params),
            true,
        );
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
        let html = render(
            &entries(),
            &Ok(Vec::new()),
            &Filter::from_params(&params),
            false,
        );
        assert!(!html.contains("North Korean citizens for study"));
        assert!(html.contains("420 entries of Chinese"));

        let params = HomeParams {
            min_severity: Some("high".into()),
            source: Some("cbp".into()),
            ..Default::default()
        };
        let html = render(
            &entries(),
            &Ok(Vec::new()),
            &Filter::from_params(&params),
            false,
        );
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
        let html = render(
            &entries(),
            &Ok(Vec::new()),
            &Filter::from_params(&params),
            false,
        );
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
        let html = render(&evil, &Ok(Vec::new()), &Filter::from_params(&params), false);
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
        let html = render(&evil, &Ok(Vec::new()), &Filter::default(), false);
        assert!(html.contains("&lt;script&gt;alert('x')&lt;/script&gt;"));
        assert_eq!(
            html.matches("<script>").count(),
            2,
            "only the page's own two scripts"
        );
    }

    fn incident(id: &str, country: &str, opened: Period, last: Period, sev: Severity) -> Incident {
        let surge = |period, update| borderwatch_model::IncidentSurge {
            id: format!("sg-{id}-{period}"),
            period,
            value: 100,
            severity: sev,
            score: 80.0,
            update,
            live: true,
        };
        let mut surges = vec![surge(opened, borderwatch_model::IncidentUpdate::Opened)];
        if last != opened {
            surges.push(surge(last, borderwatch_model::IncidentUpdate::Continued));
        }
        Incident {
            id: id.into(),
            source: "fsb".into(),
            country: Country::parse(country).unwrap(),
            category: "study".into(),
            opened,
            last,
            last_value: 100,
            peak_value: 100,
            closed: None,
            peak_severity: sev,
            peak_score: 80.0,
            surges,
            live: true,
            announced: true,
            direction: Default::default(),
        }
    }

    #[test]
    fn open_incidents_are_listed_newest_first_with_their_series_and_span() {
        let mut list = vec![
            incident(
                "in-old",
                "CHN",
                Period::Quarter(2023, 1),
                Period::Quarter(2023, 1),
                Severity::Medium,
            ),
            incident(
                "in-prk",
                "PRK",
                Period::Quarter(2024, 3),
                Period::Quarter(2024, 4),
                Severity::Critical,
            ),
        ];
        sort_newest_first(&mut list);
        assert_eq!(list[0].id, "in-prk");
        let html = render(&entries(), &Ok(list.clone()), &Filter::default(), false);
        let section = &html[html
            .find("<h2 id=\"incidents\">Open incidents</h2>")
            .unwrap()..];
        assert!(section.contains("2 of 2 open incidents"), "{section}");
        let prk = section.find("data-id=\"in-prk\"").unwrap();
        let old = section.find("data-id=\"in-old\"").unwrap();
        assert!(prk < old, "newest first");
        assert!(section.contains(
            "<li class=\"critical\" data-id=\"in-prk\"><span class=\"badge critical\">critical</span> \
             <a class=\"series\" href=\"/series/fsb/PRK/study\">Entries of North Korean citizens for study</a> \
             <span class=\"when\">since <b>2024-Q3</b>, last <b>2024-Q4</b> · 2 periods</span></li>"
        ), "{section}");
        assert!(
            section.contains("since <b>2023-Q1</b> · 1 period</span>"),
            "{section}"
        );
        // The surge list keeps its place: the headline still tops the page.
        assert!(html.find("3,765 entries of North Korean").unwrap() < html.find("in-prk").unwrap());

        // The filter applies to incidents too: by series and by peak severity.
        let params = HomeParams {
            min_severity: Some("high".into()),
            ..Default::default()
        };
        let html = render(&entries(), &Ok(list), &Filter::from_params(&params), false);
        assert!(html.contains("1 of 1 open incidents"));
        assert!(!html.contains("in-old"));
    }

    #[test]
    fn at_most_fifty_incidents_and_a_store_error_is_said() {
        let list: Vec<Incident> = (0..60)
            .map(|n| {
                incident(
                    &format!("in-{n}"),
                    "PRK",
                    Period::Quarter(2010 + n / 4, (n % 4 + 1) as u8),
                    Period::Quarter(2010 + n / 4, (n % 4 + 1) as u8),
                    Severity::High,
                )
            })
            .collect();
        let html = render(&entries(), &Ok(list), &Filter::default(), false);
        assert!(html.contains("50 of 60 open incidents"));
        assert_eq!(html.matches("<span class=\"when\">").count(), 50);

        let html = render(&entries(), &Ok(Vec::new()), &Filter::default(), false);
        assert!(html.contains("No open incident matches."));
        let html = render(
            &entries(),
            &Err("bucket gone".into()),
            &Filter::default(),
            false,
        );
        assert!(html.contains("<p class=\"error\">The incidents cannot be read: bucket gone</p>"));
        assert_ne!(digest(&Ok(Vec::new())), digest(&Err("x".into())));
    }
}
