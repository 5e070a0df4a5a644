//! Payload templates: the body a subscription's webhook receives, chosen by its `format`.
//! `json` is the surge event (or digest) itself; `slack` and `teams` are incoming-webhook
//! messages those tools render; `alertmanager` is what Alertmanager's webhook receivers take
//! (`alert.rs`). Every surge carries `url`, its evidence, when the public URL is set, and
//! the messages link to it ("View the evidence"). Pure functions: notice in, JSON out.

use borderwatch_model::{
    MissingEvent, PayloadFormat, RevisionEvent, SurgeEvent, thousands, unit_noun,
};
use serde_json::{Value, json};

use crate::alert;
use crate::config::ChartImages;
use crate::notice::{Digest, Notice, RevisionBatch, change, relative_change};

/// Slack allows 50 blocks a message; a digest lists at most this many surges.
const SLACK_MAX_SURGES: usize = 40;

/// What the link to a surge's evidence says.
const EVIDENCE: &str = "View the evidence";

/// The exact bytes to POST (and sign).
pub fn render(
    format: PayloadFormat,
    notice: &Notice,
    public_url: Option<&str>,
    images: ChartImages,
) -> Vec<u8> {
    serde_json::to_vec(&render_value_with(format, notice, public_url, images)).unwrap_or_default()
}

/// The body, with chart images as [`ChartImages::Auto`] decides.
pub fn render_value(format: PayloadFormat, notice: &Notice, public_url: Option<&str>) -> Value {
    render_value_with(format, notice, public_url, ChartImages::Auto)
}

/// The body; `images` says whether Slack and Teams surges carry their chart.
pub fn render_value_with(
    format: PayloadFormat,
    notice: &Notice,
    public_url: Option<&str>,
    images: ChartImages,
) -> Value {
    let notice = &linked(notice, public_url);
    match (format, notice) {
        (PayloadFormat::Json, Notice::Surge(e)) => serde_json::to_value(e).unwrap_or_default(),
        (PayloadFormat::Json, Notice::Digest(d)) => serde_json::to_value(d).unwrap_or_default(),
        // An email's JSON form (a test event's answer) is `json`'s; the email is `email.rs`'s.
        (PayloadFormat::Email, n) => render_value(PayloadFormat::Json, n, None),
        (PayloadFormat::Slack, Notice::Surge(e)) => slack_surge(e, images),
        (PayloadFormat::Slack, Notice::Digest(d)) => slack_digest(d),
        (PayloadFormat::Teams, Notice::Surge(e)) => teams_surge(e, images),
        (PayloadFormat::Teams, Notice::Digest(d)) => teams_digest(d),
        (PayloadFormat::Json, Notice::Revision(r)) => serde_json::to_value(r).unwrap_or_default(),
        (PayloadFormat::Json, Notice::Revisions(b)) => json_revisions(b),
        (PayloadFormat::Json, Notice::Missing(m)) => serde_json::to_value(m).unwrap_or_default(),
        (PayloadFormat::Slack, Notice::Revision(r)) => {
            slack_note(&revision_title(r), &r.explanation, &r.id)
        }
        (PayloadFormat::Slack, Notice::Revisions(b)) => {
            slack_note(&b.title(), &revisions_text(b), &b.id)
        }
        (PayloadFormat::Slack, Notice::Missing(m)) => {
            slack_note(&missing_title(m), &m.explanation, &m.id)
        }
        (PayloadFormat::Teams, Notice::Revision(r)) => {
            teams_note(&revision_title(r), &r.explanation, &r.id)
        }
        (PayloadFormat::Teams, Notice::Revisions(b)) => {
            teams_note(&b.title(), &revisions_text(b), &b.id)
        }
        (PayloadFormat::Teams, Notice::Missing(m)) => {
            teams_note(&missing_title(m), &m.explanation, &m.id)
        }
        (PayloadFormat::Alertmanager, n) => alert::webhook(n, public_url),
    }
}

/// A revision batch as `json` receivers get it: `"kind": "revisions"`, the total `count`,
/// the listed `revisions` (largest change first) and the sentence the chat formats show.
fn json_revisions(b: &RevisionBatch) -> Value {
    let mut v = serde_json::to_value(b).unwrap_or_default();
    v["kind"] = json!("revisions");
    v["listed"] = json!(b.revisions.len());
    v["text"] = json!(revisions_text(b));
    v
}

/// "The largest changes: …; the largest relative changes: …", naming the few figures a
/// reader should look at first.
pub fn revisions_text(b: &RevisionBatch) -> String {
    let line = |e: &RevisionEvent| {
        let r = &e.revision;
        let change = change(e);
        format!(
            "{}/{}/{} {}: {} to {} ({}{}, {}{:.0}%)",
            r.source,
            r.country.code(),
            r.category,
            r.period,
            thousands(r.old_count),
            thousands(r.new_count),
            if change >= 0 { "+" } else { "-" },
            thousands(change.unsigned_abs() as u64),
            if change >= 0 { "+" } else { "-" },
            relative_change(e) * 100.0
        )
    };
    let mut text = format!(
        "The largest changes: {}",
        b.largest().iter().map(line).collect::<Vec<_>>().join("; ")
    );
    let relative = b.largest_relative();
    if !relative.is_empty() {
        text.push_str(&format!(
            ". The largest relative changes besides: {}",
            relative
                .into_iter()
                .map(line)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if b.count > b.largest().len() {
        text.push_str(". The JSON body and the delivery log list them all.");
    }
    text
}

/// `notice` with every surge's `url` set under the gateway's public URL, when configured:
/// set at send time (not on the stream), so a dead letter replayed after the URL changed
/// links where the dashboard is now.
pub fn linked(notice: &Notice, public_url: Option<&str>) -> Notice {
    let mut notice = notice.clone();
    match &mut notice {
        Notice::Surge(e) => e.link_evidence(public_url),
        Notice::Digest(d) => {
            for e in &mut d.surges {
                e.link_evidence(public_url);
            }
        }
        Notice::Revision(_) | Notice::Revisions(_) | Notice::Missing(_) => {}
    }
    notice
}

fn title(e: &SurgeEvent) -> String {
    if e.incident_update == borderwatch_model::IncidentUpdate::Closed {
        return format!("RESOLVED: {} {}", e.series(), e.period);
    }
    format!(
        "{} surge: {} {}",
        e.severity.to_string().to_uppercase(),
        e.series(),
        e.period
    )
}

/// The figure with what it counts, in the source's words: "3,765 entries", "1,200
/// encounters".
fn counted(e: &SurgeEvent) -> String {
    format!("{} {}", thousands(e.value), unit_noun(&e.source))
}

fn detectors(e: &SurgeEvent) -> String {
    e.findings
        .iter()
        .map(|f| f.detector.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Slack's mrkdwn treats these three as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn slack_surge(e: &SurgeEvent, images: ChartImages) -> Value {
    let mut fields = vec![
        mrkdwn(format!("*Severity*\n{}", e.severity)),
        mrkdwn(format!(
            "*Series*\n{}",
            slack_escape(&e.series().to_string())
        )),
        mrkdwn(format!("*Period*\n{}", e.period)),
        mrkdwn(format!("*Value*\n{}", counted(e))),
    ];
    if let Some(url) = &e.url {
        fields.push(mrkdwn(format!("*Evidence*\n<{url}|{EVIDENCE}>")));
    }
    let mut message = json!({
        "text": format!("{}: {}", title(e), e.explanation),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title(e)}},
            {"type": "section", "text": mrkdwn(slack_escape(&e.explanation))},
            {"type": "section", "fields": fields},
        ],
    });
    if let Some(png) = chart_image(e, images) {
        push(
            &mut message["blocks"],
            json!({
                "type": "image",
                "image_url": png,
                "alt_text": chart_alt(e),
                "title": {"type": "plain_text", "text": format!("{} with its expected band", e.series())},
            }),
        );
    }
    push(
        &mut message["blocks"],
        json!({"type": "context", "elements": [mrkdwn(format!(
            "event {} · release {} · detectors: {}",
            e.id, e.release_id, slack_escape(&detectors(e))
        ))]}),
    );
    message
}

fn push(list: &mut Value, item: Value) {
    if let Some(list) = list.as_array_mut() {
        list.push(item);
    }
}

/// The chart image a chat message of `e` carries, as `images` decides: `Auto`, the
/// [`chart_png_url`] rule; `On`, under any public URL; `Off`, none.
pub fn chart_image(e: &SurgeEvent, images: ChartImages) -> Option<String> {
    match images {
        ChartImages::Off => None,
        ChartImages::Auto => chart_png_url(e),
        ChartImages::On => chart_png_url_under(e, |_| true),
    }
}

/// The surge's chart as a PNG, its period marked (`/v1/series/…/chart.png?period=`), under
/// the public URL its evidence link was built from; `None` without one, or when that URL
/// names this machine or a private network: Slack and Teams fetch the image from their own
/// servers, and Slack refuses a whole message whose image it cannot download.
///
/// Built from `url` (`<base>/series/<source>/<country>/<category>?surge=…#chart`, its
/// parts percent-encoded by `SurgeEvent::evidence_url`), so the two links always agree.
pub fn chart_png_url(e: &SurgeEvent) -> Option<String> {
    chart_png_url_under(e, reachable_from_outside)
}

/// The chart's PNG link, when `usable` takes the public URL it is under.
fn chart_png_url_under(e: &SurgeEvent, usable: impl Fn(&str) -> bool) -> Option<String> {
    let url = e.url.as_deref()?;
    let path = url.split(['?', '#']).next()?;
    let mut parts = path.rsplitn(4, '/');
    let (category, country, source, rest) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let base = rest.strip_suffix("/series")?;
    if !usable(base) {
        return None;
    }
    Some(format!(
        "{base}/v1/series/{source}/{country}/{category}/chart.png?period={}",
        e.period
    ))
}

/// Whether the host of `base` (`scheme://host[:port][/path]`) can be reached by a chat
/// tool's servers: not `localhost`, not a loopback, private, link-local or unspecified
/// address. A name is taken as public (what it resolves to is the receiver's business).
fn reachable_from_outside(base: &str) -> bool {
    let Some((_, rest)) = base.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    }
    .to_ascii_lowercase();
    if host.is_empty() || host == "localhost" || host.ends_with(".localhost") {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            !(ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified())
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            let local = (ip.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (ip.segments()[0] & 0xffc0) == 0xfe80; // link-local
            !(ip.is_loopback() || ip.is_unspecified() || local)
        }
        Err(_) => true,
    }
}

/// What the chart shows, for readers who cannot see it.
fn chart_alt(e: &SurgeEvent) -> String {
    format!(
        "Chart of {} per period with the expected band; {} in {} marked",
        e.series(),
        counted(e),
        e.period
    )
}

fn revision_title(e: &RevisionEvent) -> String {
    let r = &e.revision;
    format!(
        "Revised figure: {}/{}/{} {}",
        r.source,
        r.country.code(),
        r.category,
        r.period
    )
}

fn missing_title(e: &MissingEvent) -> String {
    let m = &e.missing;
    format!(
        "Missing category: {}/{} after {}",
        m.source, m.category, m.last_period
    )
}

/// A revision or missing category for Slack: a header, the sentence and its id.
fn slack_note(title: &str, text: &str, id: &str) -> Value {
    json!({
        "text": format!("{title}: {text}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": mrkdwn(slack_escape(text))},
            {"type": "context", "elements": [mrkdwn(format!("event {id}"))]},
        ],
    })
}

/// A revision or missing category for Teams: a title, the sentence and its id.
fn teams_note(title: &str, text: &str, id: &str) -> Value {
    teams_message(
        vec![
            json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": title}),
            json!({"type": "TextBlock", "wrap": true, "text": text}),
            json!({"type": "FactSet", "facts": [{"title": "Event", "value": id}]}),
        ],
        Vec::new(),
    )
}

fn digest_title(d: &Digest) -> String {
    digest_headline(d, true)
}

/// A digest's title: its story's, the top-N cut, a history load, or the count. With
/// `says_listed`, a history load's title adds how many of its surges the message lists.
pub(crate) fn digest_headline(d: &Digest, says_listed: bool) -> String {
    let noun = if d.count == 1 { "surge" } else { "surges" };
    if let Some(story) = &d.story {
        return story.title.clone();
    }
    if d.limit.is_some() && d.count > d.surges.len() {
        return format!(
            "The {} highest-scoring of {} surges in release {}",
            d.surges.len(),
            d.count,
            d.release_id
        );
    }
    match d.series {
        Some(series) if d.history => {
            let head = format!(
                "History loaded: {} {noun} in {series} series in release {}",
                d.count, d.release_id
            );
            if says_listed {
                format!("{head} (the highest {} below)", d.surges.len())
            } else {
                head
            }
        }
        _ => format!("{} {noun} in release {}", d.count, d.release_id),
    }
}

fn slack_digest(d: &Digest) -> Value {
    let mut blocks =
        vec![json!({"type": "header", "text": {"type": "plain_text", "text": digest_title(d)}})];
    for e in d.surges.iter().take(SLACK_MAX_SURGES) {
        let mut text = format!(
            "*{}* {} {}: {}",
            e.severity.to_string().to_uppercase(),
            slack_escape(&e.series().to_string()),
            e.period,
            slack_escape(&e.explanation)
        );
        if let Some(url) = &e.url {
            text.push_str(&format!(" <{url}|{EVIDENCE}>"));
        }
        blocks.push(json!({"type": "section", "text": mrkdwn(text)}));
    }
    if d.surges.len() > SLACK_MAX_SURGES {
        blocks.push(json!({"type": "context", "elements": [mrkdwn(format!(
            "… and {} more: GET /v1/surges for all of them",
            d.surges.len() - SLACK_MAX_SURGES
        ))]}));
    }
    json!({"text": digest_title(d), "blocks": blocks})
}

/// A Teams incoming-webhook (Workflows) message carrying one Adaptive Card.
fn teams_message(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn teams_surge(e: &SurgeEvent, images: ChartImages) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": title(e)}),
        json!({"type": "TextBlock", "wrap": true, "text": e.explanation}),
        json!({"type": "FactSet", "facts": [
            {"title": "Severity", "value": e.severity.to_string()},
            {"title": "Series", "value": e.series().to_string()},
            {"title": "Period", "value": e.period.to_string()},
            {"title": "Value", "value": counted(e)},
            {"title": "Detectors", "value": detectors(e)},
            {"title": "Event", "value": e.id},
        ]}),
    ];
    if let Some(png) = chart_image(e, images) {
        body.push(json!({"type": "Image", "url": png, "altText": chart_alt(e), "size": "Stretch"}));
    }
    let actions = e
        .url
        .as_ref()
        .map(|url| json!({"type": "Action.OpenUrl", "title": EVIDENCE, "url": url}))
        .into_iter()
        .collect();
    teams_message(body, actions)
}

fn teams_digest(d: &Digest) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": digest_title(d)
    })];
    for e in &d.surges {
        let mut text = e.explanation.clone();
        if let Some(url) = &e.url {
            text.push_str(&format!(" [{EVIDENCE}]({url})"));
        }
        body.push(json!({"type": "Container", "separator": true, "items": [
            {"type": "TextBlock", "weight": "Bolder", "wrap": true, "text": title(e)},
            {"type": "TextBlock", "wrap": true, "text": text},
        ]}));
    }
    teams_message(body, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::{Country, Finding, Period, Severity};

    const URL: &str = "https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart";
    /// The surge's marked chart, as Slack and Teams messages show it.
    const CHART: &str = "https://bw.example.org/v1/series/fsb/PRK/study/chart.png?period=2024-Q3";

    fn event() -> SurgeEvent {
        SurgeEvent {
            id: "sg-1".into(),
            source: "fsb".into(),
            country: Country::parse("PRK").unwrap(),
            category: "study".into(),
            period: Period::Quarter(2024, 3),
            value: 3765,
            severity: Severity::High,
            explanation: "3,765 entries for study in 2024-Q3 <record>".into(),
            findings: vec![Finding {
                detector: "record_high".into(),
                expected: None,
                upper_bound: None,
                p_value: None,
                message: String::new(),
                baseline: None,
            }],
            release_id: "rel-1".into(),
            detected_at: "2024-11-01T00:00:00Z".into(),
            score: 0.0,
            direction: Default::default(),
            historical: false,
            incident_id: None,
            incident_update: Default::default(),
            story: None,
            url: None,
        }
    }

    #[test]
    fn json_is_the_surge_event() {
        let e = event();
        let v = render_value(PayloadFormat::Json, &Notice::Surge(e.clone()), None);
        assert_eq!(v, serde_json::to_value(&e).unwrap());
        assert!(v.get("url").is_none());
    }

    #[test]
    fn json_carries_the_evidence_url_when_the_public_url_is_set() {
        let e = event();
        let v = render_value(
            PayloadFormat::Json,
            &Notice::Surge(e),
            Some("https://bw.example.org/"),
        );
        assert_eq!(v["url"], URL);
        let v = render_value(
            PayloadFormat::Json,
            &Notice::Digest(digest()),
            Some("https://bw.example.org"),
        );
        assert_eq!(v["surges"][0]["url"], URL);
        assert_eq!(
            v["surges"][1]["url"],
            "https://bw.example.org/series/fsb/PRK/study?surge=sg-2#chart"
        );
    }

    #[test]
    fn alertmanager_format_is_a_webhook_message_linking_the_evidence() {
        let v = render_value(
            PayloadFormat::Alertmanager,
            &Notice::Surge(event()),
            Some("https://bw.example.org"),
        );
        assert_eq!(v["version"], "4");
        assert_eq!(v["alerts"][0]["generatorURL"], URL);
        assert_eq!(v["alerts"][0]["labels"]["alertname"], "BorderSurge");
    }

    #[test]
    fn revisions_and_missing_categories_say_what_they_are_in_every_format() {
        let r = RevisionEvent::new(borderwatch_model::Revision {
            source: "fsb".into(),
            country: Country::parse("PRK").unwrap(),
            category: "study".into(),
            period: Period::Quarter(2024, 2),
            old_count: 1200,
            new_count: 950,
            old_release_id: "rel-0".into(),
            release_id: "rel-1".into(),
        });
        let n = Notice::Revision(r.clone());
        let v = render_value(PayloadFormat::Json, &n, None);
        assert_eq!(v["kind"], "revision");
        assert_eq!(v["old_count"], 1200);
        let slack = render_value(PayloadFormat::Slack, &n, None);
        assert_eq!(
            slack["text"],
            "Revised figure: fsb/PRK/study 2024-Q2: fsb revised fsb/PRK/study 2024-Q2 from 1,200 to 950 (-250) in release rel-1"
        );
        let teams = render_value(PayloadFormat::Teams, &n, None);
        assert_eq!(
            teams["attachments"][0]["content"]["body"][0]["text"],
            "Revised figure: fsb/PRK/study 2024-Q2"
        );
        let m = MissingEvent::new(borderwatch_model::MissingCategory {
            source: "fsb".into(),
            category: "study".into(),
            countries: vec![
                Country::parse("PRK").unwrap(),
                Country::parse("CHN").unwrap(),
            ],
            last_period: Period::Quarter(2024, 3),
            release_first_period: Period::Quarter(2024, 4),
            release_last_period: Period::Quarter(2025, 1),
            release_id: "rel-1".into(),
        });
        let n = Notice::Missing(m);
        assert_eq!(
            render_value(PayloadFormat::Json, &n, None)["kind"],
            "missing"
        );
        let am = render_value(PayloadFormat::Alertmanager, &n, None);
        assert_eq!(
            am["alerts"].as_array().unwrap().len(),
            2,
            "one alert per country"
        );
        assert_eq!(am["alerts"][1]["labels"]["alertname"], "BorderwatchMissing");
        assert_eq!(am["alerts"][1]["labels"]["country"], "CHN");
        assert_eq!(am["status"], "firing");
        assert!(
            render_value(PayloadFormat::Slack, &n, None)["text"]
                .as_str()
                .unwrap()
                .starts_with("Missing category: fsb/study after 2024-Q3: fsb left out category study for PRK, CHN")
        );
    }

    #[test]
    fn slack_surge_has_text_blocks_and_a_link_when_configured() {
        let v = render_value(
            PayloadFormat::Slack,
            &Notice::Surge(event()),
            Some("https://bw.example.org/"),
        );
        assert_eq!(
            v,
            json!({
                "text": "HIGH surge: fsb/PRK/study 2024-Q3: 3,765 entries for study in 2024-Q3 <record>",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "HIGH surge: fsb/PRK/study 2024-Q3"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": "3,765 entries for study in 2024-Q3 &lt;record&gt;"}},
                    {"type": "section", "fields": [
                        {"type": "mrkdwn", "text": "*Severity*\nhigh"},
                        {"type": "mrkdwn", "text": "*Series*\nfsb/PRK/study"},
                        {"type": "mrkdwn", "text": "*Period*\n2024-Q3"},
                        {"type": "mrkdwn", "text": "*Value*\n3,765 entries"},
                        {"type": "mrkdwn", "text": "*Evidence*\n<https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart|View the evidence>"},
                    ]},
                    {"type": "image", "image_url": CHART,
                     "alt_text": "Chart of fsb/PRK/study per period with the expected band; 3,765 entries in 2024-Q3 marked",
                     "title": {"type": "plain_text", "text": "fsb/PRK/study with its expected band"}},
                    {"type": "context", "elements": [
                        {"type": "mrkdwn", "text": "event sg-1 · release rel-1 · detectors: record_high"}
                    ]},
                ],
            })
        );
    }

    #[test]
    fn slack_surge_without_public_url_has_no_link_field() {
        let v = render_value(PayloadFormat::Slack, &Notice::Surge(event()), None);
        assert_eq!(v["blocks"][2]["fields"].as_array().unwrap().len(), 4);
    }

    /// The blocks (Slack) or card elements (Teams) of `kind` in a surge message.
    fn of_kind(format: PayloadFormat, public_url: Option<&str>, kind: &str) -> Vec<Value> {
        let v = render_value(format, &Notice::Surge(event()), public_url);
        let items = match format {
            PayloadFormat::Teams => v["attachments"][0]["content"]["body"].clone(),
            _ => v["blocks"].clone(),
        };
        items
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == kind)
            .cloned()
            .collect()
    }

    #[test]
    fn the_chart_image_is_sent_only_under_a_public_url_others_can_reach() {
        for (format, kind, key) in [
            (PayloadFormat::Slack, "image", "image_url"),
            (PayloadFormat::Teams, "Image", "url"),
        ] {
            let images = of_kind(format, Some("https://bw.example.org/"), kind);
            assert_eq!(images.len(), 1, "{format:?}");
            assert_eq!(images[0][key], CHART);
            // A base with a path keeps it; the period is the surge's.
            let images = of_kind(format, Some("https://news.example.org/bw/"), kind);
            assert_eq!(
                images[0][key],
                "https://news.example.org/bw/v1/series/fsb/PRK/study/chart.png?period=2024-Q3"
            );
            // No public URL, or one only this machine or network reaches (`up`'s default is
            // its own loopback address): no image, which Slack could not fetch and would
            // refuse the message for.
            for base in [
                None,
                Some("http://127.0.0.1:8080"),
                Some("http://localhost:8080/"),
                Some("http://10.1.2.3"),
                Some("http://192.168.0.9:80/bw"),
                Some("http://[::1]:8080"),
                Some("http://[fd00::1]/"),
            ] {
                assert!(
                    of_kind(format, base, kind).is_empty(),
                    "{format:?} {base:?}"
                );
            }
        }
    }

    #[test]
    fn chart_images_off_sends_no_image_and_on_sends_one_under_any_public_url() {
        let has_image = |format, base, images| {
            let v = render_value_with(format, &Notice::Surge(event()), base, images);
            let items = match format {
                PayloadFormat::Teams => v["attachments"][0]["content"]["body"].clone(),
                _ => v["blocks"].clone(),
            };
            items
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["type"] == "image" || b["type"] == "Image")
        };
        for format in [PayloadFormat::Slack, PayloadFormat::Teams] {
            let public = Some("https://bw.example.org/");
            assert!(has_image(format, public, ChartImages::Auto), "{format:?}");
            assert!(!has_image(format, public, ChartImages::Off), "{format:?}");
            // Off keeps the evidence link: only the image goes.
            let v = render_value_with(format, &Notice::Surge(event()), public, ChartImages::Off);
            assert!(v.to_string().contains(URL), "{format:?}: {v}");
            let loopback = Some("http://127.0.0.1:8080");
            assert!(
                !has_image(format, loopback, ChartImages::Auto),
                "{format:?}"
            );
            assert!(has_image(format, loopback, ChartImages::On), "{format:?}");
            assert!(!has_image(format, None, ChartImages::On), "{format:?}");
        }
        // The bytes signed and sent follow the setting too.
        let sent = render(
            PayloadFormat::Slack,
            &Notice::Surge(event()),
            Some("https://bw.example.org/"),
            ChartImages::Off,
        );
        let v: Value = serde_json::from_slice(&sent).unwrap();
        assert!(
            v["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["type"] != "image")
        );
    }

    #[test]
    fn a_revision_batch_names_the_largest_absolute_and_relative_changes() {
        let rev = |cat: &str, old: u64, new: u64| {
            RevisionEvent::new(borderwatch_model::Revision {
                source: "fsb".into(),
                country: Country::parse("PRK").unwrap(),
                category: cat.into(),
                period: Period::Quarter(2024, 2),
                old_count: old,
                new_count: new,
                old_release_id: "rel-0".into(),
                release_id: "rel-1".into(),
            })
        };
        let mut all: Vec<RevisionEvent> = (0..8)
            .map(|i| rev(&format!("c{i}"), 1000, 1000 + i * 100))
            .collect();
        all.push(rev("tiny", 1, 9));
        all.push(rev("down", 5000, 2000));
        let b = RevisionBatch::new("rb-1".into(), "rel-1".into(), all);
        assert_eq!(b.count, 10);
        assert_eq!(b.revisions[0].revision.category, "down");
        let largest: Vec<&str> = b
            .largest()
            .iter()
            .map(|e| e.revision.category.as_str())
            .collect();
        assert_eq!(largest, ["down", "c7", "c6", "c5", "c4"]);
        let text = revisions_text(&b);
        assert!(
            text.contains("fsb/PRK/down 2024-Q2: 5,000 to 2,000 (-3,000, -60%)"),
            "{text}"
        );
        assert!(
            text.contains("besides: fsb/PRK/tiny 2024-Q2: 1 to 9 (+8, +800%)"),
            "{text}"
        );
        let slack = render_value(PayloadFormat::Slack, &Notice::Revisions(b.clone()), None);
        assert_eq!(
            slack["blocks"][0]["text"]["text"],
            "10 revised figures in release rel-1"
        );
        let json = render_value(PayloadFormat::Json, &Notice::Revisions(b), None);
        assert_eq!(json["kind"], "revisions");
        assert_eq!(json["count"], 10);
        assert_eq!(json["revisions"].as_array().unwrap().len(), 10);
    }

    #[test]
    fn the_chart_link_encodes_what_the_evidence_link_encodes() {
        let mut e = event();
        e.category = "study abroad".into();
        e.link_evidence(Some("https://bw.example.org"));
        assert_eq!(
            chart_png_url(&e).as_deref(),
            Some(
                "https://bw.example.org/v1/series/fsb/PRK/study%20abroad/chart.png?period=2024-Q3"
            )
        );
        e.url = None;
        assert_eq!(chart_png_url(&e), None);
        e.url = Some("not a link".into());
        assert_eq!(chart_png_url(&e), None);
    }

    #[test]
    fn the_value_says_what_the_source_counts() {
        let mut e = event();
        e.source = "cbp_sw".into();
        e.value = 1200;
        let slack = render_value(PayloadFormat::Slack, &Notice::Surge(e.clone()), None);
        assert_eq!(
            slack["blocks"][2]["fields"][3]["text"],
            "*Value*\n1,200 encounters"
        );
        e.source = "frontex".into();
        let teams = render_value(PayloadFormat::Teams, &Notice::Surge(e), None);
        assert_eq!(
            teams["attachments"][0]["content"]["body"][2]["facts"][3]["value"],
            "1,200 detections of illegal border crossings"
        );
    }

    #[test]
    fn teams_surge_is_an_adaptive_card() {
        let v = render_value(
            PayloadFormat::Teams,
            &Notice::Surge(event()),
            Some("https://bw.example.org"),
        );
        assert_eq!(
            v,
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true, "text": "HIGH surge: fsb/PRK/study 2024-Q3"},
                            {"type": "TextBlock", "wrap": true, "text": "3,765 entries for study in 2024-Q3 <record>"},
                            {"type": "FactSet", "facts": [
                                {"title": "Severity", "value": "high"},
                                {"title": "Series", "value": "fsb/PRK/study"},
                                {"title": "Period", "value": "2024-Q3"},
                                {"title": "Value", "value": "3,765 entries"},
                                {"title": "Detectors", "value": "record_high"},
                                {"title": "Event", "value": "sg-1"},
                            ]},
                            {"type": "Image", "url": CHART, "size": "Stretch",
                             "altText": "Chart of fsb/PRK/study per period with the expected band; 3,765 entries in 2024-Q3 marked"},
                        ],
                        "actions": [{"type": "Action.OpenUrl", "title": "View the evidence", "url": URL}],
                    },
                }],
            })
        );
    }

    fn digest() -> Digest {
        let mut low = event();
        low.id = "sg-2".into();
        low.severity = Severity::Low;
        low.period = Period::Quarter(2024, 2);
        low.explanation = "second".into();
        Digest::new("dg-1".into(), "rel-1".into(), vec![low, event()])
    }

    #[test]
    fn json_digest_lists_surges_most_severe_first() {
        let v = render_value(PayloadFormat::Json, &Notice::Digest(digest()), None);
        assert_eq!(v["id"], "dg-1");
        assert_eq!(v["release_id"], "rel-1");
        assert_eq!(v["count"], 2);
        assert_eq!(v["surges"][0]["id"], "sg-1");
        assert_eq!(v["surges"][1]["id"], "sg-2");
    }

    #[test]
    fn slack_digest_is_one_message_with_a_section_per_surge() {
        let v = render_value(PayloadFormat::Slack, &Notice::Digest(digest()), None);
        assert_eq!(
            v,
            json!({
                "text": "2 surges in release rel-1",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "2 surges in release rel-1"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": "*HIGH* fsb/PRK/study 2024-Q3: 3,765 entries for study in 2024-Q3 &lt;record&gt;"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": "*LOW* fsb/PRK/study 2024-Q2: second"}},
                ],
            })
        );
    }

    #[test]
    fn teams_digest_is_one_card_with_a_container_per_surge() {
        let v = render_value(
            PayloadFormat::Teams,
            &Notice::Digest(digest()),
            Some("https://bw.example.org"),
        );
        let card = &v["attachments"][0]["content"];
        assert_eq!(card["body"][0]["text"], "2 surges in release rel-1");
        assert_eq!(
            card["body"][2],
            json!({"type": "Container", "separator": true, "items": [
                {"type": "TextBlock", "weight": "Bolder", "wrap": true, "text": "LOW surge: fsb/PRK/study 2024-Q2"},
                {"type": "TextBlock", "wrap": true, "text": "second [View the evidence](https://bw.example.org/series/fsb/PRK/study?surge=sg-2#chart)"},
            ]})
        );
        assert!(card.get("actions").is_none());
    }
}
