//! Payload templates: the body a subscription's webhook receives, chosen by its `format`.
//! `json` is the surge event (or digest) itself; `slack` and `teams` are incoming-webhook
//! messages those tools render; `alertmanager` is what Alertmanager's webhook receivers take
//! (`alert.rs`). Every surge carries `url`, its evidence, when the public URL is set, and
//! the messages link to it ("View the evidence"). Pure functions: notice in, JSON out.

use borderwatch_model::{PayloadFormat, SurgeEvent, thousands, unit_noun};
use serde_json::{Value, json};

use crate::alert;
use crate::notice::{Digest, Notice};

/// Slack allows 50 blocks a message; a digest lists at most this many surges.
const SLACK_MAX_SURGES: usize = 40;

/// What the link to a surge's evidence says.
const EVIDENCE: &str = "View the evidence";

/// The exact bytes to POST (and sign).
pub fn render(format: PayloadFormat, notice: &Notice, public_url: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&render_value(format, notice, public_url)).unwrap_or_default()
}

pub fn render_value(format: PayloadFormat, notice: &Notice, public_url: Option<&str>) -> Value {
    let notice = &linked(notice, public_url);
    match (format, notice) {
        (PayloadFormat::Json, Notice::Surge(e)) => serde_json::to_value(e).unwrap_or_default(),
        (PayloadFormat::Json, Notice::Digest(d)) => serde_json::to_value(d).unwrap_or_default(),
        (PayloadFormat::Slack, Notice::Surge(e)) => slack_surge(e),
        (PayloadFormat::Slack, Notice::Digest(d)) => slack_digest(d),
        (PayloadFormat::Teams, Notice::Surge(e)) => teams_surge(e),
        (PayloadFormat::Teams, Notice::Digest(d)) => teams_digest(d),
        (PayloadFormat::Alertmanager, n) => alert::webhook(n, public_url),
    }
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

fn slack_surge(e: &SurgeEvent) -> Value {
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
    json!({
        "text": format!("{}: {}", title(e), e.explanation),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title(e)}},
            {"type": "section", "text": mrkdwn(slack_escape(&e.explanation))},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [mrkdwn(format!(
                "event {} · release {} · detectors: {}",
                e.id, e.release_id, slack_escape(&detectors(e))
            ))]},
        ],
    })
}

fn digest_title(d: &Digest) -> String {
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
        Some(series) if d.history => format!(
            "History loaded: {} {noun} in {series} series in release {} (the highest {} below)",
            d.count,
            d.release_id,
            d.surges.len()
        ),
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

fn teams_surge(e: &SurgeEvent) -> Value {
    let body = vec![
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
