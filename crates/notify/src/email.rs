//! Email receivers: a subscription of format `email` whose target is
//! `mailto:desk@example.org[,other@example.org]` is sent each notice (a surge, a story, a
//! summary, a digest) as one email, plain text and HTML, through the operator's SMTP server
//! (`--smtp-url`, `--smtp-from`).
//!
//! Delivery is the webhooks' path: the same claim, retries with backoff, delivery log,
//! record and dead letter; an accepted message is one the SMTP server answered 2xx, whose
//! reply code stands in the log where a webhook's HTTP status would. The notice's id is the
//! `Message-ID` (`<event.subscription@domain of From>`) and `X-Borderwatch-Event-Id`, the
//! same on every retry, so a mail system or reader can drop a repeat.
//!
//! Recipients are the subscriber's choice, so they are checked ([`recipients`]): bare
//! addresses only (no display names, no `?subject=` or other header fields, no control
//! characters: nothing that could add a header), at most [`MAX_RECIPIENTS`], and no address
//! literal or `localhost` domain, which would have the operator's relay deliver into its
//! own network. The SMTP server itself is the operator's, so no address rule applies to it.

use std::sync::Arc;

use borderwatch_model::{EVENT_ID_HEADER, Finding, Subscription, SurgeEvent, thousands, unit_noun};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::attempt::Attempt;
use crate::config::{NotifyConfig, SmtpConfig};
use crate::notice::{Digest, Notice};
use crate::template::{self, linked};

/// The most addresses one subscription's target may list.
pub const MAX_RECIPIENTS: usize = 10;

/// The longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS_LEN: usize = 254;

/// What an email target's URL starts with.
const SCHEME: &str = "mailto:";

/// Whether `target` (a subscription's `webhook.url`) names email recipients.
pub fn is_email_target(target: &str) -> bool {
    target
        .get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

/// The recipients of an email target, `mailto:a@example.org[,b@example.org]`, each checked;
/// the error says which address is refused and why.
pub fn recipients(target: &str) -> Result<Vec<Address>, String> {
    if !is_email_target(target) {
        return Err(format!(
            "an email target is mailto:ADDRESS[,ADDRESS…], got {:?}",
            preview(target)
        ));
    }
    let list = &target[SCHEME.len()..];
    if let Some(c) = list
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '?' | '%' | '<' | '>' | '"'))
    {
        return Err(format!(
            "{:?}: bare addresses only, separated by commas (no names, spaces, header fields \
             or escapes; found {c:?})",
            preview(target)
        ));
    }
    let addresses: Vec<&str> = list.split(',').collect();
    if addresses.len() > MAX_RECIPIENTS {
        return Err(format!(
            "{} addresses: at most {MAX_RECIPIENTS} per subscription",
            addresses.len()
        ));
    }
    addresses.into_iter().map(address).collect()
}

/// One recipient, checked.
fn address(raw: &str) -> Result<Address, String> {
    if raw.is_empty() {
        return Err("an empty address in the mailto: list".into());
    }
    if raw.len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "an address of {} bytes: at most {MAX_ADDRESS_LEN}",
            raw.len()
        ));
    }
    let addr: Address = raw
        .parse()
        .map_err(|e| format!("{:?} is not an email address ({e})", preview(raw)))?;
    let domain = addr.domain().trim_end_matches('.').to_ascii_lowercase();
    if domain.starts_with('[') || domain.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{raw:?}: an address literal as the domain is refused (a name only: the relay \
             would deliver into whatever network the address is in)"
        ));
    }
    if domain == "localhost" || domain.ends_with(".localhost") || !domain.contains('.') {
        return Err(format!(
            "{raw:?}: the domain must be a full public name (not localhost or a bare host)"
        ));
    }
    Ok(addr)
}

/// At most 80 characters of what a subscriber sent, for an error message.
fn preview(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The SMTP client and the `From` of every email, built once per context.
#[derive(Clone)]
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

/// Checks the SMTP settings and builds their client: the error names the setting at fault.
/// Nothing is connected to.
pub fn check(smtp: &SmtpConfig) -> Result<(), String> {
    mailer(smtp, std::time::Duration::from_secs(10)).map(drop)
}

/// The mailer of `cfg`, when SMTP is configured.
pub(crate) fn from_config(cfg: &NotifyConfig) -> Result<Option<Arc<Mailer>>, String> {
    cfg.smtp
        .as_ref()
        .map(|smtp| mailer(smtp, cfg.request_timeout).map(Arc::new))
        .transpose()
}

fn mailer(smtp: &SmtpConfig, timeout: std::time::Duration) -> Result<Mailer, String> {
    let url = url::Url::parse(smtp.url.trim())
        .map_err(|e| format!("--smtp-url {:?} is not a URL ({e})", smtp.url))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(format!(
            "--smtp-url must start with smtp:// or smtps://, got {}://",
            url.scheme()
        ));
    }
    if url.password().is_some() {
        return Err(
            "--smtp-url holds a password: give it in BORDERWATCH_SMTP_PASSWORD instead (a URL \
             is shown in process lists and configuration files)"
                .into(),
        );
    }
    let user = url.username().to_string();
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
        .map_err(|e| format!("--smtp-url: {e}"))?
        .timeout(Some(timeout));
    match (&smtp.password, user.is_empty()) {
        (Some(password), false) => {
            builder = builder.credentials(Credentials::new(user, password.clone()));
        }
        (Some(_), true) => {
            return Err(
                "BORDERWATCH_SMTP_PASSWORD is set but --smtp-url names no user: \
                 smtp://USER@host:port"
                    .into(),
            );
        }
        (None, _) => {}
    }
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("--smtp-from {:?} is not an address ({e})", smtp.from))?;
    Ok(Mailer {
        transport: builder.build(),
        from,
    })
}

/// One email of `notice` to `sub`'s recipients: an attempt as the delivery log records it.
/// Nothing is sent, and the attempt is final (`refused`), when SMTP is not configured or the
/// target is not a valid list of addresses: retrying would not help.
pub(crate) async fn send(
    mailer: Option<&Mailer>,
    sub: &Subscription,
    notice: &Notice,
    public_url: Option<&str>,
) -> Attempt {
    let Some(mailer) = mailer else {
        return Attempt::refused(
            "no SMTP server configured: start notify with --smtp-url and --smtp-from, then \
             `borderwatch notify replay`"
                .into(),
        );
    };
    let to = match recipients(&sub.webhook.url) {
        Ok(to) => to,
        Err(e) => return Attempt::refused(format!("refused: {e}")),
    };
    let rendered = render(notice, public_url);
    let message = match message(&mailer.from, &to, &sub.id, notice.id(), &rendered) {
        Ok(m) => m,
        Err(e) => return Attempt::refused(format!("cannot build the email: {e}")),
    };
    let sent = std::time::Instant::now();
    let result = mailer.transport.send(message).await;
    let latency_ms = sent.elapsed().as_millis() as u64;
    match result {
        Ok(reply) => Attempt {
            status: Some(u16::from(reply.code())),
            retry_after: None,
            error: None,
            latency_ms,
            refused: false,
        },
        Err(e) => Attempt {
            status: e.status().map(u16::from),
            retry_after: None,
            error: Some(format!("SMTP: {e}").chars().take(300).collect()),
            latency_ms,
            refused: false,
        },
    }
}

/// The email: `From` the operator's address, `To` each recipient, the notice's id as
/// `Message-ID` and `X-Borderwatch-Event-Id`, plain text and HTML alternatives.
fn message(
    from: &Mailbox,
    to: &[Address],
    subscription: &str,
    id: &str,
    r: &Rendered,
) -> Result<Message, String> {
    let mut b = Message::builder()
        .from(from.clone())
        .subject(r.subject.clone())
        .message_id(Some(message_id(id, subscription, from.email.domain())))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(EVENT_ID_HEADER),
            id.to_string(),
        ))
        // RFC 3834: no vacation replies to an alert.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
    for addr in to {
        b = b.to(Mailbox::new(None, addr.clone()));
    }
    b.multipart(MultiPart::alternative_plain_html(
        r.text.clone(),
        r.html.clone(),
    ))
    .map_err(|e| e.to_string())
}

/// `<event.subscription@domain>`, the same for every attempt at one (subscription, notice).
fn message_id(id: &str, subscription: &str, domain: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect()
    };
    format!("<{}.{}@{}>", safe(id), safe(subscription), safe(domain))
}

/// An email's subject and two bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The email of `notice`: for a surge, its headline sentence, the evidence (each
/// detector's expected value, upper bound and p-value, the story it belongs to), the link to
/// its series page and, under a public URL, to its chart image; for a digest, the same per
/// surge under the digest's title. Pure.
pub fn render(notice: &Notice, public_url: Option<&str>) -> Rendered {
    let notice = linked(notice, public_url);
    let test = notice.id().starts_with("test-");
    let (subject, sections) = match &notice {
        Notice::Surge(e) => (surge_title(e), vec![section(e, public_url)]),
        Notice::Digest(d) => (
            digest_title(d),
            d.surges.iter().map(|e| section(e, public_url)).collect(),
        ),
        Notice::Revision(r) => {
            let v = &r.revision;
            let title = format!(
                "Revised figure: {}/{}/{} {}",
                v.source,
                v.country.code(),
                v.category,
                v.period
            );
            (title.clone(), vec![Section::note(title, &r.explanation)])
        }
        Notice::Revisions(b) => (
            b.title(),
            vec![Section::note(b.title(), &template::revisions_text(b))],
        ),
        Notice::Missing(m) => {
            let v = &m.missing;
            let title = format!(
                "Missing category: {}/{} after {}",
                v.source, v.category, v.last_period
            );
            (title.clone(), vec![Section::note(title, &m.explanation)])
        }
    };
    let subject = if test {
        format!("[borderwatch] TEST: {subject}")
    } else {
        format!("[borderwatch] {subject}")
    };
    let footer = match &notice {
        Notice::Surge(e) => format!("event {} · release {}", e.id, e.release_id),
        Notice::Revision(_) | Notice::Missing(_) => format!("event {}", notice.id()),
        Notice::Revisions(b) => format!(
            "{} · release {} · {} revised figure{}",
            b.id,
            b.release_id,
            b.count,
            if b.count == 1 { "" } else { "s" }
        ),
        Notice::Digest(d) => format!(
            "{} · release {} · {} surge{}",
            d.id,
            d.release_id,
            d.count,
            if d.count == 1 { "" } else { "s" }
        ),
    };
    let mut text = String::new();
    let mut html =
        String::from("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n");
    if let Notice::Digest(d) = &notice {
        text.push_str(&digest_title(d));
        text.push_str("\n\n");
        html.push_str(&format!("<h1>{}</h1>\n", esc(&digest_title(d))));
    }
    for s in &sections {
        text.push_str(&s.text());
        text.push('\n');
        html.push_str(&s.html());
    }
    text.push_str(&format!("-- \nborderwatch · {footer}\n"));
    html.push_str(&format!(
        "<p style=\"color: #666; font-size: small\">borderwatch · {}</p>\n</body></html>\n",
        esc(&footer)
    ));
    Rendered {
        subject,
        text,
        html,
    }
}

/// One surge's part of an email.
struct Section {
    title: String,
    headline: String,
    evidence: Vec<String>,
    story: Option<String>,
    url: Option<String>,
    chart: Option<String>,
}

fn section(e: &SurgeEvent, public_url: Option<&str>) -> Section {
    Section {
        title: surge_title(e),
        headline: e.explanation.clone(),
        evidence: std::iter::once(format!(
            "{} {} in {} ({} severity, score {:.0})",
            thousands(e.value),
            unit_noun(&e.source),
            e.period,
            e.severity,
            e.score
        ))
        .chain(e.findings.iter().map(finding))
        .collect(),
        story: e
            .story
            .as_ref()
            .map(|s| format!("Part of a story: {} ({} surges)", s.title, s.members)),
        url: e.url.clone(),
        chart: public_url.and_then(|base| chart_url(e, base)),
    }
}

impl Section {
    /// A revised figure or a missing category: a title and its sentence.
    fn note(title: String, explanation: &str) -> Section {
        Section {
            title,
            headline: explanation.to_string(),
            evidence: Vec::new(),
            story: None,
            url: None,
            chart: None,
        }
    }

    fn text(&self) -> String {
        let mut t = format!("{}\n\n{}\n", self.title, self.headline);
        if !self.evidence.is_empty() {
            t.push_str("\nEvidence:\n");
        }
        for line in &self.evidence {
            t.push_str(&format!("  - {line}\n"));
        }
        if let Some(story) = &self.story {
            t.push_str(&format!("\n{story}\n"));
        }
        if let Some(url) = &self.url {
            t.push_str(&format!("\nView the evidence: {url}\n"));
        }
        if let Some(chart) = &self.chart {
            t.push_str(&format!("Chart: {chart}\n"));
        }
        t
    }

    fn html(&self) -> String {
        let mut h = format!(
            "<h2>{}</h2>\n<p><strong>{}</strong></p>\n",
            esc(&self.title),
            esc(&self.headline)
        );
        if !self.evidence.is_empty() {
            h.push_str("<ul>\n");
            for line in &self.evidence {
                h.push_str(&format!("<li>{}</li>\n", esc(line)));
            }
            h.push_str("</ul>\n");
        }
        if let Some(story) = &self.story {
            h.push_str(&format!("<p>{}</p>\n", esc(story)));
        }
        if let Some(chart) = &self.chart {
            let img = format!(
                "<img src=\"{}\" alt=\"{}\" style=\"max-width: 100%\">",
                esc(chart),
                esc(&self.title)
            );
            match &self.url {
                Some(url) => h.push_str(&format!("<p><a href=\"{}\">{img}</a></p>\n", esc(url))),
                None => h.push_str(&format!("<p>{img}</p>\n")),
            }
        }
        if let Some(url) = &self.url {
            h.push_str(&format!(
                "<p><a href=\"{}\">View the evidence</a></p>\n",
                esc(url)
            ));
        }
        h
    }
}

/// One detector's finding: what it expected, its threshold, its p-value, what it says.
fn finding(f: &Finding) -> String {
    let mut parts = vec![f.detector.clone()];
    if let Some(x) = f.expected {
        parts.push(format!("expected {}", number(x)));
    }
    if let Some(x) = f.upper_bound {
        parts.push(format!("upper bound {}", number(x)));
    }
    if let Some(p) = f.p_value {
        parts.push(format!("p-value {}", p_value(p)));
    }
    let mut line = parts.join(", ");
    if !f.message.is_empty() {
        line.push_str(": ");
        line.push_str(&f.message);
    }
    line
}

/// A figure as a reader wants it: whole numbers with thousands separators.
fn number(x: f64) -> String {
    if x.is_finite() && x >= 0.0 && x < u64::MAX as f64 {
        thousands(x.round() as u64)
    } else {
        format!("{x:.1}")
    }
}

fn p_value(p: f64) -> String {
    if p < 0.0001 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

fn surge_title(e: &SurgeEvent) -> String {
    if e.incident_update == borderwatch_model::IncidentUpdate::Closed {
        return format!("RESOLVED: {} {}", e.series(), e.period);
    }
    let kind = if e.direction.is_rise() {
        "surge"
    } else {
        "fall"
    };
    format!(
        "{} {kind}: {} {}",
        e.severity.to_string().to_uppercase(),
        e.series(),
        e.period
    )
}

/// The subject and heading of a digest email: the webhooks' title, without the count of
/// listed surges (the email lists every one).
fn digest_title(d: &Digest) -> String {
    crate::template::digest_headline(d, false)
}

/// The chart image of `e`'s series under the public base URL:
/// `<base>/v1/series/<source>/<country>/<category>/chart.png?period=<period>`.
pub fn chart_url(e: &SurgeEvent, base: &str) -> Option<String> {
    let mut url = url::Url::parse(base.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut().ok()?.pop_if_empty().extend([
        "v1",
        "series",
        e.source.as_str(),
        e.country.code(),
        e.category.as_str(),
        "chart.png",
    ]);
    url.query_pairs_mut()
        .append_pair("period", &e.period.to_string());
    Some(url.into())
}

/// HTML-escaped text (element content and quoted attribute values).
fn esc(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::{Country, Period, Severity, StoryKind, StoryRef};

    fn event() -> SurgeEvent {
        SurgeEvent {
            id: "sg-1".into(),
            source: "fsb".into(),
            country: Country::parse("PRK").unwrap(),
            category: "study".into(),
            period: Period::Quarter(2024, 3),
            value: 3765,
            severity: Severity::Critical,
            explanation: "3,765 entries for study <record>".into(),
            findings: vec![Finding {
                detector: "farrington".into(),
                expected: Some(412.4),
                upper_bound: Some(1210.0),
                p_value: Some(0.00002),
                message: String::new(),
                baseline: None,
            }],
            release_id: "rel-1".into(),
            detected_at: "2024-11-01T00:00:00Z".into(),
            score: 91.0,
            direction: Default::default(),
            historical: false,
            incident_id: None,
            incident_update: Default::default(),
            story: Some(StoryRef {
                id: "st-1".into(),
                kind: StoryKind::Category,
                title: "study rose for 5 countries in 2024-Q3".into(),
                members: 5,
            }),
            url: None,
        }
    }

    #[test]
    fn recipients_are_bare_checked_addresses() {
        let to = recipients("mailto:desk@example.org,Night.Desk+bw@news.example.com").unwrap();
        assert_eq!(to.len(), 2);
        assert_eq!(to[1].to_string(), "Night.Desk+bw@news.example.com");
        assert!(is_email_target("MAILTO:desk@example.org"));
        for bad in [
            "https://example.org/hook",
            "mailto:",
            "mailto:desk@example.org,",
            "mailto:not-an-address",
            "mailto:desk@example.org\r\nBcc: all@example.org",
            "mailto:desk@example.org\nX-Injected: 1",
            "mailto:desk@example.org?subject=hi",
            "mailto:desk@example.org?bcc=x@example.org",
            "mailto:Desk <desk@example.org>",
            "mailto:\"a b\"@example.org",
            "mailto:desk%40example.org",
            "mailto:root@localhost",
            "mailto:root@mail.localhost",
            "mailto:root@intranet",
            "mailto:root@[127.0.0.1]",
            "mailto:root@10.0.0.1",
        ] {
            assert!(recipients(bad).is_err(), "{bad:?} should be refused");
        }
        let many = format!("mailto:{}", ["a@example.org"; 11].join(","));
        assert!(recipients(&many).unwrap_err().contains("at most 10"));
    }

    #[test]
    fn the_email_has_the_headline_evidence_and_links() {
        let r = render(&Notice::Surge(event()), Some("https://bw.example.org/"));
        assert_eq!(
            r.subject,
            "[borderwatch] CRITICAL surge: fsb/PRK/study 2024-Q3"
        );
        for want in [
            "3,765 entries for study <record>",
            "farrington, expected 412, upper bound 1,210, p-value < 0.0001",
            "Part of a story: study rose for 5 countries in 2024-Q3 (5 surges)",
            "View the evidence: https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart",
            "Chart: https://bw.example.org/v1/series/fsb/PRK/study/chart.png?period=2024-Q3",
            "event sg-1 · release rel-1",
        ] {
            assert!(r.text.contains(want), "{want:?} in\n{}", r.text);
        }
        assert!(r.html.contains("3,765 entries for study &lt;record&gt;"));
        assert!(!r.html.contains("<record>"), "escaped");
        assert!(r.html.contains(
            "<img src=\"https://bw.example.org/v1/series/fsb/PRK/study/chart.png?period=2024-Q3\""
        ));
        assert!(r.html.contains(
            "<a href=\"https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart\">View the evidence</a>"
        ));
    }

    #[test]
    fn without_a_public_url_there_is_no_link() {
        let r = render(&Notice::Surge(event()), None);
        assert!(!r.text.contains("http"), "{}", r.text);
        assert!(!r.html.contains("<img"), "{}", r.html);
    }

    #[test]
    fn a_digest_is_one_email_with_a_section_per_surge() {
        let mut second = event();
        second.id = "sg-2".into();
        second.explanation = "second".into();
        let d = Digest::new("dg-1".into(), "rel-1".into(), vec![event(), second]);
        let r = render(&Notice::Digest(d), None);
        assert_eq!(r.subject, "[borderwatch] 2 surges in release rel-1");
        assert_eq!(r.text.matches("CRITICAL surge: fsb/PRK/study").count(), 2);
        assert!(r.text.contains("second"));
        assert!(r.text.contains("dg-1 · release rel-1 · 2 surges"));
    }

    #[test]
    fn the_message_carries_the_event_id_and_both_parts() {
        let from: Mailbox = "borderwatch <alerts@example.org>".parse().unwrap();
        let to = recipients("mailto:desk@example.org").unwrap();
        let r = render(&Notice::Surge(event()), None);
        let m = message(&from, &to, "sub-1", "sg-1", &r).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        for want in [
            "Message-ID: <sg-1.sub-1@example.org>",
            "X-Borderwatch-Event-Id: sg-1",
            "Auto-Submitted: auto-generated",
            "To: desk@example.org",
            "Content-Type: multipart/alternative",
            "Content-Type: text/plain",
            "Content-Type: text/html",
        ] {
            assert!(raw.contains(want), "{want:?} in\n{raw}");
        }
    }

    #[test]
    fn smtp_settings_are_checked_and_no_password_is_taken_from_the_url() {
        let ok = SmtpConfig {
            url: "smtp://127.0.0.1:2525".into(),
            from: "alerts@example.org".into(),
            password: None,
        };
        assert!(check(&ok).is_ok());
        let in_url = SmtpConfig {
            url: "smtps://u:pw@mail.example.org".into(),
            ..ok.clone()
        };
        assert!(
            check(&in_url)
                .unwrap_err()
                .contains("BORDERWATCH_SMTP_PASSWORD")
        );
        let no_user = SmtpConfig {
            password: Some("pw".into()),
            ..ok.clone()
        };
        assert!(check(&no_user).is_err());
        let with_user = SmtpConfig {
            url: "smtps://alerts@mail.example.org".into(),
            password: Some("pw".into()),
            ..ok.clone()
        };
        assert!(check(&with_user).is_ok());
        assert!(!format!("{with_user:?}").contains("pw\""), "{with_user:?}");
        let http = SmtpConfig {
            url: "http://mail.example.org".into(),
            ..ok.clone()
        };
        assert!(check(&http).is_err());
        let bad_from = SmtpConfig {
            from: "nobody".into(),
            ..ok
        };
        assert!(check(&bad_from).unwrap_err().contains("--smtp-from"));
    }
}
