//! The OpenAPI document, served at `/openapi.json` and rendered server-side at `/docs` (no
//! JavaScript, nothing loaded from elsewhere: it works offline). Each API module documents
//! its own paths and bodies (a `#[derive(OpenApi)]` beside its handlers); [`ApiDoc`] merges
//! them with the operations and dashboard pages documented here, and adds what every
//! operation shares. Nothing under `api` imports this module.
//!
//! The body types of `borderwatch-model` are mirrored in the API modules as schema-only
//! types, so that the model crate stays free of API concerns; a test serialises real model
//! values and checks that their fields are the documented ones, and schemathesis (CI) checks
//! live answers against the document.

use std::fmt::Write as _;

use axum::Json;
use axum::response::Html;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api::schema::ErrorBody;
use crate::api::{
    chart, deliveries, health, incidents, ingest, releases, series, silences, subscriptions, surges,
};

/// The whole document: `Top` and every API module's part, then `Common` over all of its
/// operations.
#[derive(Debug)]
pub struct ApiDoc;

impl OpenApi for ApiDoc {
    fn openapi() -> utoipa::openapi::OpenApi {
        let mut doc = Top::openapi();
        for part in [
            health::HealthApi::openapi(),
            ingest::IngestApi::openapi(),
            releases::ReleasesApi::openapi(),
            series::SeriesApi::openapi(),
            chart::ChartApi::openapi(),
            surges::SurgesApi::openapi(),
            incidents::IncidentsApi::openapi(),
            subscriptions::SubscriptionsApi::openapi(),
            deliveries::DeliveriesApi::openapi(),
            silences::SilencesApi::openapi(),
        ] {
            doc.merge(part);
        }
        Common.modify(&mut doc);
        doc
    }
}

/// The document's description and tags, the dashboard pages, the metrics and this document
/// itself.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "borderwatch",
        description = "Surges in border-crossing statistics: ingest releases, read series and surges, subscribe to webhooks.\n\nErrors are `{\"error\": {\"code\", \"message\", \"details\"}}`. Lists take `limit` and `cursor` and answer `next_cursor` and `next` (also as a `Link: <…>; rel=\"next\"` header). With an API token, requests that change state need `Authorization: Bearer <token>`; with a read token, reads need it too (except /healthz, /readyz, /openapi.json, /docs and /login); a browser signs in at /login and reads with its session cookie. Subscriptions and their delivery logs are read with the API token only (when one is set), and show webhook URLs masked to scheme, host and port. A webhook must point at a public address (422 otherwise) unless the gateway runs with --webhook-allow-private.\n\nJSON bodies need `Content-Type: application/json` (415 otherwise; a PATCH is a JSON merge patch, RFC 7396, sent as `application/merge-patch+json` or `application/json`) and are at most 64 KiB by default (413); uploads need an explicit file type such as `text/csv` or `application/octet-stream` (not `text/plain` or a form type) unless they carry the API token. A write whose `Origin` is another site's is refused (403); on loopback only `localhost`, `127.0.0.1`, `[::1]` and configured host names are answered (403)."
    ),
    paths(
        dashboard_page,
        series_page,
        login_page,
        login,
        logout,
        crate::telemetry::metrics_doc,
        document,
        docs_page,
    ),
    components(schemas(ErrorBody, LoginForm)),
    tags(
        (name = "ingest", description = "uploading releases, and what each release brought"),
        (name = "series", description = "figures and their aggregates"),
        (name = "surges", description = "what the detectors found"),
        (name = "subscriptions", description = "webhooks, their delivery log, test events and dead letters"),
        (name = "silences", description = "muting surges for a while"),
        (name = "operations", description = "probes, metrics, this document"),
    )
)]
struct Top;

/// The bearer scheme, and the error body as every operation's `default` answer (401 with a
/// read token, 408, 413, 429 from the layers, 5xx).
#[derive(Debug)]
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = doc.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
        let default = ResponseBuilder::new()
            .description("an error (the body says what): 401 without a needed token, 403 a Host this gateway does not answer to, 408 too slow, 413 too large, 429 rate-limited with Retry-After, 503 bus unavailable")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.post,
                &mut item.delete,
                &mut item.put,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_guard_answers(op);
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.responses
                    .responses
                    .entry("default".to_string())
                    .or_insert_with(|| RefOr::T(default.clone()));
            }
        }
    }
}

/// An error answer with the error body.
fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build(),
    )
}

/// What the checks before every write answer (`guard.rs`): 403 for another site's page or
/// a host name not served, and for a body, 415 for a type the route does not take and 413
/// for one too large. An operation that documents one of these itself keeps its own.
fn add_guard_answers(op: &mut utoipa::openapi::path::Operation) {
    let mut answers = vec![(
        "403",
        "refused: the Origin is another site's, or the Host is not one this gateway answers to",
    )];
    if op.request_body.is_some() {
        answers.push((
            "415",
            "the Content-Type is not one this route takes (application/json for JSON bodies; for uploads without a token, not text/plain or a form type)",
        ));
        answers.push(("413", "the body is larger than this route takes"));
    }
    for (status, description) in answers {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_answer(description));
    }
}

/// The document as JSON.
pub fn document_json() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub(crate) async fn document() -> Json<Value> {
    Json(document_json())
}

/// The dashboard (HTML): the latest surges, filtered.
#[utoipa::path(get, path = "/", tag = "dashboard",
    params(
        ("country" = Option<String>, Query, description = "only this country (code or name)"),
        ("category" = Option<String>, Query, description = "only this category"),
        ("source" = Option<String>, Query, description = "only this source"),
        ("min_severity" = Option<String>, Query, description = "low, medium, high or critical"),
    ),
    responses(
        (status = 200, description = "the dashboard page (a filter it cannot read is named on the page)", content_type = "text/html", body = String),
        (status = 400, description = "a parameter is not text", body = ErrorBody),
    ))]
#[allow(dead_code)] // documents dashboard::home_page, which the dashboard module owns
fn dashboard_page() {}

/// A series page (HTML): its history as an SVG chart with the expected band, the threshold,
/// the surges and the baseline their explanations cite.
#[utoipa::path(get, path = "/series/{source}/{country}/{category}", tag = "dashboard",
    params(
        ("source" = String, Path, description = "source, such as `fsb`"),
        ("country" = String, Path, description = "country: ISO alpha-2, alpha-3 or a name"),
        ("category" = String, Path, description = "category, such as `study`"),
        ("surge" = Option<String>, Query, description = "the surge whose explanation the chart illustrates"),
    ),
    responses(
        (status = 200, description = "the series page", content_type = "text/html", body = String),
        (status = 400, description = "a parameter is not text", body = ErrorBody),
        (status = 404, description = "no such series (an HTML page)", content_type = "text/html", body = String),
    ))]
#[allow(dead_code)] // documents dashboard::series_page, which the dashboard module owns
fn series_page() {}

/// The sign-in page (HTML) of a gateway with a read token; without one, straight on to `next`.
#[utoipa::path(get, path = "/login", tag = "dashboard",
    params(("next" = Option<String>, Query, description = "the page to go to after signing in (a path of this site)")),
    responses(
        (status = 200, description = "the sign-in form", content_type = "text/html", body = String),
        (status = 303, description = "no read token: go straight to `next`"),
    ))]
#[allow(dead_code)] // documents dashboard::login_form, which the dashboard module owns
fn login_page() {}

/// The sign-in form, sent.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // a schema only: the handler reads dashboard::login::LoginForm
struct LoginForm {
    /// The read token or the API token.
    token: String,
    /// The page to go to after signing in (a path of this site).
    next: Option<String>,
}

/// Signs a browser in: with the read token or the API token, sets the `bw_session` cookie
/// (HttpOnly, SameSite=Strict), which reads but never changes state, and goes on to `next`.
#[utoipa::path(post, path = "/login", tag = "dashboard",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "signed in (or no read token): go on to `next`, with the session cookie"),
        (status = 400, description = "not a form with a `token` field", body = ErrorBody),
        (status = 401, description = "not one of this gateway's tokens: the form again (HTML)", content_type = "text/html", body = String),
    ))]
#[allow(dead_code)] // documents dashboard::login, which the dashboard module owns
fn login() {}

/// Signs a browser out: clears the session cookie.
#[utoipa::path(post, path = "/logout", tag = "dashboard",
    responses((status = 303, description = "signed out: go to the sign-in page")))]
#[allow(dead_code)] // documents dashboard::logout, which the dashboard module owns
fn logout() {}

/// This document as a page: every operation with its parameters, bodies and answers.
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "the API reference page", content_type = "text/html", body = String)))]
pub(crate) async fn docs_page() -> Html<String> {
    Html(render_docs(&document_json()))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `#/components/schemas/X` → `X`, a type for a schema object otherwise.
fn schema_name(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(items) = s.get("items") {
        return format!("array of {}", schema_name(items));
    }
    if let Some(all) = s
        .get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Value::as_array)
    {
        return all.iter().map(schema_name).collect::<Vec<_>>().join(" or ");
    }
    match s.get("type") {
        Some(Value::String(t)) => esc(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(esc)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    }
}

fn render_docs(doc: &Value) -> String {
    let mut h = String::new();
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} API</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:62rem;margin:0 auto;padding:1rem;color:#222}}\
h2{{margin-top:2rem;border-bottom:1px solid #ccc}}section{{margin:1rem 0;padding:.5rem 1rem;background:#f7f7f7}}\
code,.m{{font-family:ui-monospace,monospace}}.m{{font-weight:bold;text-transform:uppercase;margin-right:.5rem}}\
table{{border-collapse:collapse}}td,th{{padding:.2rem .6rem;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}}</style>\
</head><body><h1>{t} API</h1><p>{d}</p><p>The machine-readable document: <a href=\"/openapi.json\">/openapi.json</a>.</p>",
        t = esc(title),
        d = esc(doc["info"]["description"].as_str().unwrap_or("")),
    );
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (path, item) in paths {
        for method in ["get", "post", "delete", "put", "patch"] {
            let Some(op) = item.get(method) else { continue };
            let _ = write!(
                h,
                "<section id=\"{id}\"><p><span class=\"m\">{method}</span><code>{p}</code></p>",
                id = esc(&format!("{method}-{path}")),
                p = esc(path),
            );
            for key in ["summary", "description"] {
                if let Some(t) = op.get(key).and_then(Value::as_str) {
                    let _ = write!(h, "<p>{}</p>", esc(t));
                }
            }
            if op.get("security").is_some() {
                h.push_str("<p><i>Needs the API token when the gateway has one.</i></p>");
            }
            if let Some(params) = op.get("parameters").and_then(Value::as_array) {
                h.push_str("<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>");
                for p in params {
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(p["name"].as_str().unwrap_or("")),
                        if p["required"].as_bool() == Some(true) {
                            " (required)"
                        } else {
                            ""
                        },
                        esc(p["in"].as_str().unwrap_or("")),
                        schema_name(&p["schema"]),
                        esc(p["description"].as_str().unwrap_or("")),
                    );
                }
                h.push_str("</table>");
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (ct, c) in content {
                    let _ = write!(
                        h,
                        "<p>Body: <code>{}</code> {}</p>",
                        esc(ct),
                        schema_name(&c["schema"])
                    );
                }
            }
            if let Some(resps) = op["responses"].as_object() {
                h.push_str("<table><tr><th>answer</th><th></th><th>body</th></tr>");
                for (status, r) in resps {
                    let bodies: Vec<String> = r["content"]
                        .as_object()
                        .map(|c| {
                            c.iter()
                                .map(|(ct, c)| {
                                    format!(
                                        "<code>{}</code> {}",
                                        esc(ct),
                                        schema_name(&c["schema"])
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(status),
                        esc(r["description"].as_str().unwrap_or("")),
                        bodies.join("<br>"),
                    );
                }
                h.push_str("</table>");
            }
            h.push_str("</section>");
        }
    }
    h.push_str("<h2>Bodies</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, s) in schemas {
            let _ = write!(h, "<section id=\"schema-{0}\"><p><b>{0}</b></p>", esc(name));
            if let Some(d) = s.get("description").and_then(Value::as_str) {
                let _ = write!(h, "<p>{}</p>", esc(d));
            }
            if let Some(vals) = s.get("enum").and_then(Value::as_array) {
                let vals: Vec<String> = vals
                    .iter()
                    .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
                    .collect();
                let _ = write!(h, "<p>one of {}</p>", vals.join(", "));
            }
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                let required: Vec<&str> = s["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                h.push_str("<table>");
                for (field, fs) in props {
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(field),
                        if required.contains(&field.as_str()) {
                            ""
                        } else {
                            " (optional)"
                        },
                        schema_name(fs),
                        esc(fs["description"].as_str().unwrap_or("")),
                    );
                }
                h.push_str("</table>");
            }
            h.push_str("</section>");
        }
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_model::{
        Baseline as B, Finding as F, Severity as S, Subscription as Sub, SubscriptionFilter as SF,
        SurgeEvent as E, Webhook as W,
    };

    /// The documented properties of schema `name`.
    fn props(doc: &Value, name: &str) -> Vec<String> {
        let mut p: Vec<String> = doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect();
        p.sort();
        p
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    /// The mirrors must keep up with the model: a field added there fails here.
    #[test]
    fn mirrored_schemas_have_the_fields_of_the_model_types() {
        let doc = document_json();
        let event = E {
            id: "sg-1".into(),
            source: "fsb".into(),
            country: borderwatch_model::Country::parse("PRK").unwrap(),
            category: "study".into(),
            period: "2024-Q3".parse().unwrap(),
            value: 3765,
            severity: S::Critical,
            explanation: "x".into(),
            findings: vec![F {
                detector: "record_high".into(),
                expected: None,
                upper_bound: None,
                p_value: None,
                message: "m".into(),
                baseline: Some(B {
                    period: "2019-Q3".parse().unwrap(),
                    value: 950.0,
                }),
            }],
            release_id: "rel-1".into(),
            detected_at: "2025-01-01T00:00:00Z".into(),
            score: 80.0,
            direction: Default::default(),
            historical: false,
            incident_id: Some("in-1".into()),
            incident_update: borderwatch_model::IncidentUpdate::Opened,
            story: Some(borderwatch_model::StoryRef {
                id: "st-1".into(),
                kind: borderwatch_model::StoryKind::Category,
                title: "t".into(),
                members: 3,
            }),
            url: Some("https://bw.example.org/series/fsb/PRK/study?surge=sg-1#chart".into()),
        };
        let v = serde_json::to_value(&event).unwrap();
        assert_eq!(keys(&v), props(&doc, "SurgeEvent"));
        assert_eq!(keys(&v["findings"][0]), props(&doc, "Finding"));
        assert_eq!(keys(&v["findings"][0]["baseline"]), props(&doc, "Baseline"));
        assert_eq!(keys(&v["story"]), props(&doc, "StoryRef"));
        let sub = Sub {
            id: "sub-1".into(),
            filter: SF::default(),
            webhook: W {
                url: "https://example.org".into(),
                secret: None,
            },
            created_at: "2025-01-01T00:00:00Z".into(),
            format: Default::default(),
            digest: Some(borderwatch_model::DigestSpec { group_wait_secs: 1 }),
            history: Default::default(),
            max_per_release: Some(5),
            resolved: true,
            falls: true,
            kinds: vec![borderwatch_model::EventKind::Surge],
            matchers: serde_json::from_value(serde_json::json!(["country!=PRK"])).unwrap(),
        };
        let v = serde_json::to_value(&sub).unwrap();
        assert_eq!(keys(&v), props(&doc, "Subscription"));
        assert_eq!(keys(&v["filter"]), props(&doc, "SubscriptionFilter"));
        assert_eq!(keys(&v["webhook"]), props(&doc, "Webhook"));
        // The delivery log's items are notify's `DeliveryAttempt`, now in the model.
        let attempt = borderwatch_model::DeliveryAttempt {
            subscription: "sub-1".into(),
            event_id: "sg-1".into(),
            attempt: 1,
            at: "2025-01-01T00:00:00Z".into(),
            outcome: borderwatch_model::Outcome::Delivered,
            status: Some(200),
            latency_ms: Some(3),
            error: None,
        };
        let v = serde_json::to_value(&attempt).unwrap();
        assert_eq!(keys(&v), props(&doc, "DeliveryAttempt"));
        use borderwatch_model::Outcome as O;
        let outcomes: Vec<Value> = [O::Delivered, O::Retrying, O::Failed, O::Silenced]
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect();
        assert_eq!(
            doc["components"]["schemas"]["Outcome"]["enum"],
            Value::from(outcomes)
        );
        use borderwatch_model::PayloadFormat as P;
        let formats: Vec<Value> = [P::Json, P::Slack, P::Teams, P::Alertmanager, P::Email]
            .iter()
            .map(|f| serde_json::to_value(f).unwrap())
            .collect();
        assert_eq!(
            doc["components"]["schemas"]["PayloadFormat"]["enum"],
            Value::from(formats)
        );
        let err = serde_json::to_value(crate::error::ApiError::bad_request("x").body).unwrap();
        assert_eq!(keys(&err), props(&doc, "ErrorBody"));
        assert_eq!(keys(&err["error"]), props(&doc, "ErrorDetail"));
    }

    #[test]
    fn the_docs_page_escapes_what_it_shows() {
        let doc =
            serde_json::json!({"info": {"title": "<t>", "description": "a & b"}, "paths": {}});
        let page = render_docs(&doc);
        assert!(page.contains("&lt;t&gt; API") && page.contains("a &amp; b"));
        assert!(!page.contains("<t>"));
    }
}
