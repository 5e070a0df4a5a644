//! The gateway's API against a real server on a random port: the OpenAPI document covers
//! every route, lists page and filter and export CSV, bad parameters get 400s, and access
//! control, body limit, timeout, CORS, rate limit and metrics do what they say.

mod support;
use support::{Gateway, memory_bus};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, Outgoing, names};
use borderwatch_gateway::{GatewayConfig, RateLimit};
use borderwatch_model::SeriesView;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Private webhook targets are allowed: these tests' webhook URLs are loopback, or names
/// that must not be resolved (tests/webhooks.rs tests the refusals).
async fn start_on(bus: Bus, cfg: GatewayConfig) -> Gateway {
    let cfg = GatewayConfig {
        webhook_allow_private: true,
        ..cfg
    };
    support::start_on(bus, cfg).await
}

async fn start(cfg: GatewayConfig) -> Gateway {
    start_on(memory_bus().await, cfg).await
}

fn no_limit() -> GatewayConfig {
    GatewayConfig {
        rate_limit: None,
        ..GatewayConfig::default()
    }
}

impl Gateway {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn surge(i: u32, country: &str, severity: &str) -> Value {
    json!({
        "id": format!("sg-test{i:04}"),
        "source": "fsb",
        "country": country,
        "category": "study",
        "period": format!("{}-Q{}", 2000 + i / 4, i % 4 + 1),
        "value": 100 + i,
        "severity": severity,
        "explanation": format!("surge {i}, with a comma"),
        "findings": [{"detector": "record_high", "expected": null, "upper_bound": null,
                      "p_value": null, "message": "the highest on record"}],
        "release_id": "rel-test",
        "detected_at": "2025-01-01T00:00:00Z",
    })
}

async fn publish_surges(bus: &Bus, events: &[Value]) {
    for e in events {
        bus.publish(
            Outgoing::new(
                names::surge_subject(e["country"].as_str().unwrap(), "study"),
                serde_json::to_vec(e).unwrap(),
            )
            .with_id(e["id"].as_str().unwrap().to_string()),
        )
        .await
        .unwrap();
    }
}

/// Waits until the gateway lists `n` surges.
async fn wait_surges(gw: &Gateway, n: usize) {
    for _ in 0..200 {
        let (_, body) = gw.get_json("/v1/surges?limit=10000").await;
        if body["surges"].as_array().map_or(0, Vec::len) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the gateway did not index {n} surges");
}

/// The paths the router serves, from the table it is built from (`router.rs`): this keeps a
/// route added without documentation from passing.
fn routed_paths() -> BTreeSet<String> {
    borderwatch_gateway::routed_paths()
        .into_iter()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_every_documented_operation_is_routed() {
    let gw = start(no_limit()).await;
    let (status, doc) = gw.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed = routed_paths();
    assert!(routed.len() >= 22, "{routed:?}");
    for path in [
        "/v1/subscriptions/{id}/test",
        "/v1/subscriptions/{id}/dead-letters",
        "/v1/subscriptions/{id}/dead-letters/{event}/redeliver",
        "/v1/releases",
        "/v1/releases/{id}",
    ] {
        assert!(routed.contains(path), "{path} is not routed");
    }
    assert_eq!(
        routed, documented,
        "router (left) and document (right) differ"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            assert!(
                op["responses"].get("default").is_some(),
                "{method} {path} has no error answer"
            );
            if path == "/v1/surges/stream" {
                continue; // endless; covered by the live-stream tests
            }
            let concrete = path
                .replace("{source}", "fsb")
                .replace("{country}", "PRK")
                .replace("{category}", "study")
                .replace("{id}", "x")
                .replace("{event}", "x");
            let resp = gw
                .http
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{}{concrete}", gw.base),
                )
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("no route")),
                "{method} {path} is documented but not routed"
            );
            assert!(status < 500, "{method} {path}: {status} {body}");
        }
    }
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_without_loading_anything() {
    let gw = start(no_limit()).await;
    let r = gw.get("/docs").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    for path in routed_paths() {
        let escaped = path.replace('&', "&amp;");
        assert!(page.contains(&format!("<code>{escaped}</code>")), "{path}");
    }
    assert!(page.contains("id=\"schema-SurgeEvent\""));
    assert!(
        !page.contains("<script"),
        "the docs page needs no JavaScript"
    );
    assert!(
        !page.contains("src=") && !page.contains("<link"),
        "the docs page loads nothing from elsewhere"
    );
}

#[tokio::test]
async fn bad_parameters_get_a_400_naming_them() {
    let gw = start(no_limit()).await;
    for (query, needle) in [
        ("/v1/surges?limit=abc", "limit"),
        ("/v1/surges?limit=0", "limit=0"),
        ("/v1/surges?limit=10001", "limit=10001"),
        ("/v1/surges?min_severity=huge", "huge"),
        ("/v1/surges?since=yesterday", "since=yesterday"),
        ("/v1/surges?format=xml", "xml"),
        ("/v1/surges?cursor=abc", "cursor=abc"),
        ("/v1/surges?countr=PRK", "countr"),
        ("/v1/series?country=Atlantis", "Atlantis"),
        ("/v1/series?cursor=a%20b", "cursor=a b"),
        ("/v1/subscriptions?limit=-1", "limit"),
        ("/v1/silences?limit=1001", "limit=1001"),
        ("/v1/subscriptions/sub-x/deliveries?limit=0", "limit=0"),
        ("/v1/surges/stream?min_severity=loud", "loud"),
        ("/v1/surges?direction=sideways", "sideways"),
    ] {
        let (status, body) = gw.get_json(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{query}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(needle),
            "{query}: `{msg}` does not name `{needle}`"
        );
    }
    // Errors made by axum itself come in the same body.
    let r = gw
        .http
        .put(format!("{}/v1/surges", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().contains_key("allow"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn surges_page_newest_first_with_filters_and_export_as_csv() {
    let gw = start(no_limit()).await;
    let events: Vec<Value> = (0..7)
        .map(|i| {
            surge(
                i,
                if i % 2 == 0 { "PRK" } else { "CHN" },
                if i == 6 { "critical" } else { "low" },
            )
        })
        .collect();
    publish_surges(&gw.bus, &events).await;
    wait_surges(&gw, 7).await;

    // Follow `next` to the end: every surge once, newest first.
    let mut seen = Vec::new();
    let mut path = "/v1/surges?limit=3".to_string();
    let mut pages = 0;
    loop {
        let r = gw.get(&path).await;
        assert_eq!(r.status(), 200);
        let link = r
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = r.json().await.unwrap();
        pages += 1;
        for s in body["surges"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_string());
        }
        match body["next"].as_str() {
            Some(next) => {
                assert_eq!(link.unwrap(), format!("<{next}>; rel=\"next\""));
                assert!(next.contains("limit=3"), "{next}");
                path = next.to_string();
            }
            None => {
                assert!(link.is_none());
                assert!(body["next_cursor"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).rev().map(|i| format!("sg-test{i:04}")).collect();
    assert_eq!(seen, expected);

    // Filters combine with paging.
    let (_, body) = gw.get_json("/v1/surges?country=PRK&limit=2").await;
    let ids: Vec<&str> = body["surges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sg-test0006", "sg-test0004"]);
    let (_, body) = gw.get_json(body["next"].as_str().unwrap()).await;
    let ids: Vec<&str> = body["surges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sg-test0002", "sg-test0000"]);
    let (_, body) = gw.get_json("/v1/surges?min_severity=critical").await;
    assert_eq!(body["surges"].as_array().unwrap().len(), 1);
    // Every surge says which way it goes; `direction` filters on it.
    assert_eq!(body["surges"][0]["direction"], "rise", "{body}");
    let (_, body) = gw.get_json("/v1/surges?direction=fall").await;
    assert!(body["surges"].as_array().unwrap().is_empty(), "{body}");
    let (_, body) = gw.get_json("/v1/surges?direction=rise&limit=100").await;
    assert_eq!(body["surges"].as_array().unwrap().len(), 7);

    // CSV: a header and one row per surge, quoted where needed.
    let r = gw.get("/v1/surges?format=csv&country=North%20Korea").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = r.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header[..3], ["id", "source", "country"]);
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 4);
    assert_eq!(&records[0][0], "sg-test0006");
    assert_eq!(&records[0][6], "critical");
    assert_eq!(&records[0][7], "record_high");
    assert_eq!(&records[0][10], "surge 6, with a comma");
    assert_eq!(&records[0][11], "rise");
}

#[tokio::test]
async fn falls_are_listed_labelled_and_filtered_apart() {
    let gw = start(no_limit()).await;
    let mut fall = surge(1, "CHN", "high");
    fall["direction"] = "fall".into();
    fall["explanation"] = "far below the expected 569,365; the lowest on record".into();
    publish_surges(&gw.bus, &[surge(0, "PRK", "high"), fall]).await;
    wait_surges(&gw, 2).await;
    let (_, body) = gw.get_json("/v1/surges?direction=fall").await;
    let ids: Vec<&str> = body["surges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sg-test0001"], "{body}");
    let (_, body) = gw.get_json("/v1/surges?direction=rise").await;
    assert_eq!(body["surges"][0]["id"], "sg-test0000", "{body}");
    let html = gw.get("/").await.text().await.unwrap();
    assert_eq!(
        html.matches("<span class=\"label fall\"").count(),
        1,
        "{html}"
    );
}

fn series_view(source: &str, country: &str, category: &str, counts: &[u64]) -> Value {
    json!({
        "source": source, "country": country, "category": category, "freq": "quarter",
        "observations": counts.iter().enumerate().map(|(i, c)| json!({"period": format!("2024-Q{}", i + 1), "count": c})).collect::<Vec<_>>(),
        "yearly": [], "year_over_year": [], "surges": [],
        "updated_at": "2025-01-01T00:00:00Z", "release_id": "rel-test",
    })
}

#[tokio::test]
async fn series_page_by_key_filter_and_export_in_the_input_format() {
    let gw = start(no_limit()).await;
    for (src, c, cat) in [
        ("fsb", "PRK", "study"),
        ("fsb", "PRK", "work"),
        ("fsb", "CHN", "study"),
        ("cbp", "MEX", "total"),
        ("fsb", "VNM", "study"),
    ] {
        gw.bus
            .kv_put(
                names::SERIES_BUCKET,
                &names::series_key(src, c, cat),
                serde_json::to_vec(&series_view(src, c, cat, &[5, 7, 3765]))
                    .unwrap()
                    .into(),
            )
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut path = "/v1/series?source=fsb&limit=2".to_string();
    loop {
        let (status, body) = gw.get_json(&path).await;
        assert_eq!(status, 200, "{body}");
        for s in body["series"].as_array().unwrap() {
            assert_eq!(s["last_value"], 3765);
            seen.push(format!(
                "{}/{}/{}",
                s["source"].as_str().unwrap(),
                s["country"].as_str().unwrap(),
                s["category"].as_str().unwrap()
            ));
        }
        match body["next"].as_str() {
            Some(n) => path = n.to_string(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "fsb/CHN/study",
            "fsb/PRK/study",
            "fsb/PRK/work",
            "fsb/VNM/study"
        ]
    );

    let r = gw.get("/v1/series?format=csv&category=study").await;
    let text = r.text().await.unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.starts_with("source,country,category,freq,points,last_period,last_value,surges\n")
    );

    // One series as CSV is the generic input format (it can be ingested again: ingest
    // ignores the band's columns after it, empty here: no band).
    let r = gw.get("/v1/series/fsb/KP/study?format=csv").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "source,period,country,category,count,expected,upper\nfsb,2024-Q1,PRK,study,5,,\nfsb,2024-Q2,PRK,study,7,,\nfsb,2024-Q3,PRK,study,3765,,\n"
    );
    let (status, body) = gw.get_json("/v1/series/fsb/PRK/study").await;
    assert_eq!(status, 200);
    assert_eq!(body["observations"].as_array().unwrap().len(), 3);
    let (status, _) = gw.get_json("/v1/series/fsb/PRK/none").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn subscriptions_and_silences_page_in_id_order() {
    let gw = start(no_limit()).await;
    for i in 0..3 {
        let r = gw
            .http
            .post(format!("{}/v1/subscriptions", gw.base))
            .json(&json!({"webhook": {"url": format!("https://example.org/{i}"), "secret": "s"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = gw
            .http
            .post(format!("{}/v1/silences", gw.base))
            .json(&json!({"matchers": {"country": "PRK"}, "until": "2999-01-01T00:00:00Z"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    for (list, key) in [
        ("/v1/subscriptions", "subscriptions"),
        ("/v1/silences", "silences"),
    ] {
        let (_, first) = gw.get_json(&format!("{list}?limit=2")).await;
        let (_, second) = gw.get_json(first["next"].as_str().unwrap()).await;
        let mut ids: Vec<String> = first[key]
            .as_array()
            .unwrap()
            .iter()
            .chain(second[key].as_array().unwrap())
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 3, "{list}");
        assert!(second["next"].is_null());
        let sorted = {
            let mut s = ids.clone();
            s.sort();
            s
        };
        assert_eq!(ids, sorted);
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }
    let (_, subs) = gw.get_json("/v1/subscriptions").await;
    assert!(subs["subscriptions"][0]["webhook"].get("secret").is_none());
}

#[tokio::test]
async fn the_api_token_guards_writes_and_the_read_token_guards_reads() {
    let gw = start(GatewayConfig {
        api_token: Some("write-tok".into()),
        read_token: Some("read-tok".into()),
        ..no_limit()
    })
    .await;
    let req = |m: reqwest::Method, path: &str, token: Option<&str>| {
        let mut r = gw.http.request(m, format!("{}{path}", gw.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    };
    let sub = json!({"webhook": {"url": "https://example.org/h", "secret": "s"}});
    // Writes: only the API token.
    for token in [None, Some("read-tok"), Some("write-tok2"), Some("")] {
        let r = req(reqwest::Method::POST, "/v1/subscriptions", token)
            .json(&sub)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{token:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let r = req(
        reqwest::Method::POST,
        "/v1/subscriptions",
        Some("write-tok"),
    )
    .json(&sub)
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    // Reads: the read token or the API token (subscriptions: the API token only, see
    // tests/webhooks.rs).
    for path in ["/v1/surges", "/v1/series", "/v1/silences", "/metrics", "/"] {
        let r = req(reqwest::Method::GET, path, None).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = req(reqwest::Method::GET, path, Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        for t in ["read-tok", "write-tok"] {
            let r = req(reqwest::Method::GET, path, Some(t))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path} with {t}");
        }
    }
    // The scheme is case-insensitive; a token without it is no token.
    for (value, want) in [
        ("bearer read-tok", 200),
        ("read-tok", 401),
        ("Basic read-tok", 401),
    ] {
        let r = gw
            .http
            .get(format!("{}/v1/surges", gw.base))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{value}");
    }
    // Probes and the API's description stay open.
    for path in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        let r = req(reqwest::Method::GET, path, None).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_in_the_error_body() {
    let gw = start(GatewayConfig {
        max_body_bytes: 1000,
        ..no_limit()
    })
    .await;
    let r = gw
        .http
        .post(format!("{}/v1/ingest?source=fsb", gw.base))
        .header("content-type", "text/csv")
        .body(vec![b'x'; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn a_browser_signs_in_and_its_cookie_reads_but_never_writes() {
    let gw = start(GatewayConfig {
        api_token: Some("write-tok".into()),
        read_token: Some("read-tok".into()),
        ..no_limit()
    })
    .await;
    // Redirects are looked at, not followed.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", gw.base);
    let page = |path: &str, cookie: Option<&str>| {
        let mut r = http.get(url(path)).header("accept", "text/html,*/*;q=0.8");
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send()
    };
    // A page load without a session goes to the sign-in page, and comes back after it.
    let r = page("/series/fsb/PRK/study?surge=x", None).await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        "/login?next=%2Fseries%2Ffsb%2FPRK%2Fstudy%3Fsurge%3Dx"
    );
    let r = page(&location, None).await.unwrap();
    assert_eq!(r.status(), 200);
    let form = r.text().await.unwrap();
    assert!(form.contains(r#"name="token""#), "{form}");
    assert!(
        form.contains(r#"value="/series/fsb/PRK/study?surge=x""#),
        "{form}"
    );
    // An API client still gets 401, not a page.
    assert_eq!(
        http.get(url("/v1/surges")).send().await.unwrap().status(),
        401
    );

    let sign_in = |token: &str, next: &str| {
        http.post(url("/login"))
            .form(&[("token", token), ("next", next)])
            .send()
    };
    let r = sign_in("wrong", "/").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("not this gateway"));
    let r = sign_in("read-tok", "/series/fsb/PRK/study").await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/series/fsb/PRK/study");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("bw_session="), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(
        !set.contains("read-tok"),
        "the token is not in the cookie: {set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    // The API token signs in too, to a session of its own (each is a random id, not one
    // value for everyone); another site is never gone to.
    let r = sign_in("write-tok", "https://evil.example/").await.unwrap();
    assert_eq!(r.headers()["location"], "/");
    let again = r.headers()["set-cookie"].to_str().unwrap();
    let other = again.split(';').next().unwrap().to_string();
    assert!(
        other.starts_with("bw_session=") && other != cookie,
        "{again}"
    );
    assert_eq!(page("/", Some(&other)).await.unwrap().status(), 200);

    // The cookie reads pages and the API...
    assert_eq!(page("/", Some(&cookie)).await.unwrap().status(), 200);
    let r = http
        .get(url("/v1/surges"))
        .header("cookie", format!("theme=dark; {cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // ...but changes nothing.
    let r = http
        .post(url("/v1/subscriptions"))
        .header("cookie", &cookie)
        .json(&json!({"webhook": {"url": "https://example.org/h", "secret": "s"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A made-up session is no session.
    let forged = format!("bw_session={}", "0".repeat(64));
    assert_eq!(page("/", Some(&forged)).await.unwrap().status(), 303);
    // A form that is not one is a 400.
    let r = http.post(url("/login")).body("token").send().await.unwrap();
    assert_eq!(r.status(), 400);

    let r = http
        .post(url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("bw_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The session ended on the server too: a copy of the cookie kept past sign-out (the
    // browser forgets it, an attacker who took it does not) reads nothing. The other
    // session lives on.
    assert_eq!(page("/", Some(&cookie)).await.unwrap().status(), 303);
    let r = http
        .get(url("/v1/surges"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(page("/", Some(&other)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn without_a_read_token_the_sign_in_page_goes_straight_on() {
    let gw = start(no_limit()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/login?next=/series/fsb/PRK/study", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/series/fsb/PRK/study");
    let r = http
        .post(format!("{}/login", gw.base))
        .form(&[("token", "anything")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("set-cookie").is_none());
}

/// A body without a length, sent `pieces` times `piece` bytes.
fn chunked(piece: usize, pieces: usize) -> reqwest::Body {
    let chunks = (0..pieces).map(move |_| Ok::<_, std::io::Error>(vec![b'x'; piece]));
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn a_body_without_a_length_is_stopped_at_the_limit_and_leaves_nothing_staged() {
    // Below the size at which uploads are staged in the object store, and above it (8 MiB).
    for (limit, piece, pieces) in [(1000, 500, 10), (9 << 20, 1 << 20, 12)] {
        let gw = start(GatewayConfig {
            max_body_bytes: limit,
            ..no_limit()
        })
        .await;
        let r = gw
            .http
            .post(format!("{}/v1/ingest?source=fsb", gw.base))
            .header("content-type", "text/csv")
            .body(chunked(piece, pieces))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "limit {limit}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "payload_too_large");
        let staged = gw.bus.object_list(names::RAW_OBJECT_STORE).await.unwrap();
        assert!(staged.is_empty(), "limit {limit}: {staged:?}");
    }
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_gets_408() {
    let gw = start(GatewayConfig {
        request_timeout: Duration::from_millis(300),
        ..no_limit()
    })
    .await;
    // An upload that announces 1000 bytes and sends 10: the handler waits for the rest.
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    sock.write_all(
        b"POST /v1/ingest?source=fsb HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/csv\r\ncontent-length: 1000\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"timeout\""), "{answer}");
}

#[tokio::test]
async fn cors_allows_the_configured_origins_only() {
    let gw = start(GatewayConfig {
        cors_origins: vec!["https://news.example".into()],
        ..no_limit()
    })
    .await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/subscriptions", gw.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let r = preflight("https://news.example").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://news.example"
    );
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");
    let r = preflight("https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = gw
        .http
        .get(format!("{}/v1/surges", gw.base))
        .header("origin", "https://news.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://news.example"
    );
    // Without configured origins there are no CORS headers at all.
    let plain = start(no_limit()).await;
    let r = plain
        .http
        .get(format!("{}/v1/surges", plain.base))
        .header("origin", "https://news.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // A malformed origin is refused at start.
    let bad = GatewayConfig {
        cors_origins: vec!["news.example/path".into()],
        ..no_limit()
    };
    assert!(bad.validate().unwrap_err().contains("news.example/path"));
}

#[tokio::test]
async fn a_client_over_the_rate_limit_gets_429_with_retry_after() {
    let gw = start(GatewayConfig {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 3,
        }),
        ..GatewayConfig::default()
    })
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let r = gw.get("/v1/surges").await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            limited = Some(r);
        }
    }
    assert_eq!(statuses[..3], [200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let r = limited.unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // After the wait, the client is served again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(gw.get("/v1/surges").await.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_with_latency_histograms() {
    let gw = start(no_limit()).await;
    for _ in 0..3 {
        gw.get("/v1/series/fsb/PRK/nothing").await;
    }
    gw.get("/v1/surges?limit=0").await;
    gw.get("/no/such/path").await;
    let r = gw.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    let line = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // Other tests in this binary share the process-wide registry: at least, not exactly.
    assert!(
        line(
            "borderwatch_http_requests_total{route=\"/v1/series/{source}/{country}/{category}\",status=\"404\"}"
        ) >= 3.0
    );
    assert!(line("borderwatch_http_requests_total{route=\"/v1/surges\",status=\"400\"}") >= 1.0);
    assert!(line("borderwatch_http_requests_total{route=\"unmatched\",status=\"404\"}") >= 1.0);
    assert!(
        line(
            "borderwatch_http_request_duration_seconds_bucket{route=\"/v1/series/{source}/{country}/{category}\",le=\"+Inf\"}"
        ) >= 3.0
    );
    assert!(text.contains(
        "borderwatch_http_request_duration_seconds_bucket{route=\"/v1/surges\",le=\"0.005\"}"
    ));
    assert_eq!(line("borderwatch_nats_connected"), 1.0);
    for name in [
        "borderwatch_rows_ingested_total",
        "borderwatch_releases_total",
        "borderwatch_surges_total{severity=\"critical\"}",
        "borderwatch_deliveries_total{outcome=\"failed\"}",
    ] {
        assert!(line(name) >= 0.0, "{name}");
    }
    assert!(
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .all(|l| l.starts_with("borderwatch_")),
        "{text}"
    );
}

#[tokio::test]
async fn readyz_is_503_while_nats_is_unreachable_and_200_again_after() {
    let mut server = borderwatch_test_support::NatsServer::start();
    let bus: Bus = Arc::new(
        borderwatch_bus::NatsBus::connect(&server.url(), "gateway-test")
            .await
            .unwrap(),
    );
    names::ensure_all(bus.as_ref(), 1).await.unwrap();
    let gw = start_on(bus, no_limit()).await;
    let ready = |gw: &Gateway| {
        let url = format!("{}/readyz", gw.base);
        let http = gw.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    async fn until(
        want: u16,
        f: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = (u16, Value)> + Send>>,
    ) -> Value {
        for _ in 0..300 {
            let (status, body) = f().await;
            if status == want {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("readyz never answered {want}");
    }
    let body = until(200, || Box::pin(ready(&gw))).await;
    assert_eq!(body["transport"], "nats");
    server.stop();
    let body = until(503, || Box::pin(ready(&gw))).await;
    assert_eq!(body["connected"], false);
    let metrics = gw.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("borderwatch_nats_connected 0"),
        "{metrics}"
    );
    server.restart();
    let body = until(200, || Box::pin(ready(&gw))).await;
    assert_eq!(body["connected"], true);
}

#[tokio::test]
async fn the_delivery_log_pages_newest_first() {
    let gw = start(no_limit()).await;
    let r = gw
        .http
        .post(format!("{}/v1/subscriptions", gw.base))
        .json(&json!({"webhook": {"url": "https://example.org/h", "secret": "s"}}))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for n in 1..=5 {
        let attempt = json!({
            "subscription": id, "event_id": format!("sg-{n}"), "attempt": 1,
            "at": "2025-01-01T00:00:00Z", "outcome": "delivered", "status": 200,
            "latency_ms": 3, "error": null,
        });
        gw.bus
            .publish(Outgoing::new(
                names::attempt_subject(&id),
                serde_json::to_vec(&attempt).unwrap(),
            ))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut path = format!("/v1/subscriptions/{id}/deliveries?limit=2");
    let mut pages = 0;
    loop {
        let (status, body) = gw.get_json(&path).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for d in body["deliveries"].as_array().unwrap() {
            seen.push(d["event_id"].as_str().unwrap().to_string());
        }
        match body["next"].as_str() {
            Some(n) => path = n.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["sg-5", "sg-4", "sg-3", "sg-2", "sg-1"]);
    let (_, body) = gw
        .get_json(&format!("/v1/subscriptions/{id}/deliveries?limit=5"))
        .await;
    assert_eq!(body["deliveries"].as_array().unwrap().len(), 5);
    assert!(body["next"].is_null(), "{body}");
}

#[tokio::test]
async fn the_dashboards_not_found_page_stays_a_page_while_api_errors_are_json() {
    let gw = start(no_limit()).await;
    let page = gw.get("/series/fsb/PRK/nothing").await;
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        page.headers()
    );
    assert!(page.text().await.unwrap().contains("Series not found"));
    let (status, body) = gw.get_json("/v1/series/fsb/PRK/nothing").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

// The gateway's HTTP side of subscriptions, silences and the delivery log (these assertions
// lived in the notify tests while they started a gateway).

async fn post_json(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    let r = gw
        .http
        .post(format!("{}{path}", gw.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_subscription_fields_get_json_errors() {
    let gw = start(no_limit()).await;
    let hook = json!({"url": "http://127.0.0.1:9/hook", "secret": "x"});
    for (body, needle) in [
        (json!({"webhook": hook, "format": "xml"}), "unknown variant"),
        (
            json!({"webhook": hook, "filter": {"detectors": ["Record High"]}}),
            "filter.detectors",
        ),
        (
            json!({"webhook": hook, "digest": {"group_wait_secs": 999999}}),
            "group_wait_secs",
        ),
        (json!({"webhook": hook, "digest": {}}), "group_wait_secs"),
    ] {
        let (status, resp) = post_json(&gw, "/v1/subscriptions", body.clone()).await;
        assert_eq!(status, 400, "{body} → {resp}");
        let msg = resp["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
    }
    let (status, sub) = post_json(
        &gw,
        "/v1/subscriptions",
        json!({"webhook": hook, "format": "teams", "digest": {"group_wait_secs": 30}, "filter": {"detectors": ["record_high"]}}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(sub["format"], "teams");
    assert_eq!(sub["digest"]["group_wait_secs"], 30);
    assert_eq!(sub["filter"]["detectors"][0], "record_high");
    assert!(sub["webhook"].get("secret").is_none());
    // Issue 15: Alertmanager's webhook body is a format too; an unknown one is refused.
    let (status, sub) = post_json(
        &gw,
        "/v1/subscriptions",
        json!({"webhook": hook, "format": "alertmanager"}),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    assert_eq!(sub["format"], "alertmanager");
    let (status, _) = post_json(
        &gw,
        "/v1/subscriptions",
        json!({"webhook": hook, "format": "pagerduty"}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_silence_is_listed_active_until_deleted() {
    let gw = start(no_limit()).await;
    let (status, silence) = post_json(
        &gw,
        "/v1/silences",
        json!({"matchers": {"country": "PRK", "category": "study"}, "until": "2999-01-01T00:00:00Z", "comment": "known story"}),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    let silence_id = silence["id"].as_str().unwrap().to_string();
    let (_, list) = gw.get_json("/v1/silences").await;
    assert_eq!(list["silences"][0]["active"], true);
    let resp = gw
        .http
        .delete(format!("{}/v1/silences/{silence_id}", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (_, list) = gw.get_json("/v1/silences").await;
    assert_eq!(list["silences"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_delivery_log_takes_a_limit_and_refuses_a_bad_one_or_an_unknown_subscription() {
    let gw = start(no_limit()).await;
    let (status, sub) = post_json(
        &gw,
        "/v1/subscriptions",
        json!({"webhook": {"url": "https://example.org/h", "secret": "s"}}),
    )
    .await;
    assert_eq!(status, 201, "subscription created: {sub}");
    assert!(
        sub["webhook"].get("secret").is_none(),
        "the secret is never returned"
    );
    let sub = sub["id"].as_str().unwrap().to_string();
    // What notify logs: a failed attempt, then the accepted one.
    for (n, outcome, status) in [
        (1, borderwatch_model::Outcome::Retrying, 503),
        (2, borderwatch_model::Outcome::Delivered, 200),
    ] {
        let attempt = borderwatch_model::DeliveryAttempt {
            subscription: sub.clone(),
            event_id: "sg-log".into(),
            attempt: n,
            at: "2025-01-01T00:00:00Z".into(),
            outcome,
            status: Some(status),
            latency_ms: Some(3),
            error: None,
        };
        gw.bus
            .publish(Outgoing::new(
                names::attempt_subject(&sub),
                serde_json::to_vec(&attempt).unwrap(),
            ))
            .await
            .unwrap();
    }
    let (status, body) = gw
        .get_json(&format!("/v1/subscriptions/{sub}/deliveries?limit=1"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(body["deliveries"][0]["outcome"], "delivered");
    let (status, body) = gw
        .get_json(&format!("/v1/subscriptions/{sub}/deliveries?limit=x"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, _) = gw.get_json("/v1/subscriptions/sub-nope/deliveries").await;
    assert_eq!(status, 404);
}

// Exposure (issue 13): what a web page in a local browser, a rebound host name or a greedy
// client can no longer do.

fn subscription_body() -> Value {
    json!({"webhook": {"url": "https://example.org/h", "secret": "s"}})
}

/// POSTs `body` as-is with `content_type` (none when `None`).
async fn post_typed(
    gw: &Gateway,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut r = gw
        .http
        .post(format!("{}{path}", gw.base))
        .body(body.to_string());
    if let Some(t) = content_type {
        r = r.header("content-type", t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn json_routes_refuse_any_content_type_but_json_with_415() {
    let gw = start(no_limit()).await;
    let sub = subscription_body().to_string();
    let silence = json!({"country": "PRK", "duration_hours": 1}).to_string();
    // A page can send these three (or no type) cross-site without asking the server first.
    for t in [
        None,
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        for (path, body) in [("/v1/subscriptions", &sub), ("/v1/silences", &silence)] {
            let (status, err) = post_typed(&gw, path, t, body).await;
            assert_eq!(status, 415, "{path} with {t:?}: {err}");
            assert_eq!(err["error"]["code"], "unsupported_media_type");
            assert!(
                err["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{err}"
            );
        }
    }
    let (_, subs) = gw.get_json("/v1/subscriptions").await;
    assert_eq!(subs["subscriptions"], json!([]), "nothing was created");
    let (status, _) = post_typed(
        &gw,
        "/v1/subscriptions",
        Some("application/json; charset=utf-8"),
        &sub,
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn uploads_without_a_token_need_an_explicit_type_a_page_cannot_send() {
    let gw = start(no_limit()).await;
    let csv = "source,country,category,period,count\nfsb,PRK,study,2024-Q1,5\n";
    for t in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let (status, err) = post_typed(&gw, "/v1/ingest", t, csv).await;
        assert_eq!(status, 415, "{t:?}: {err}");
        assert_eq!(err["error"]["code"], "unsupported_media_type");
    }
    let staged = gw.bus.object_list(names::RAW_OBJECT_STORE).await.unwrap();
    assert!(staged.is_empty(), "{staged:?}");
    // An explicit file type passes the gateway (no ingest service runs here: 503).
    for t in [
        "text/csv",
        "application/octet-stream",
        "application/x-ndjson",
    ] {
        let (status, err) = post_typed(&gw, "/v1/ingest", Some(t), csv).await;
        assert_eq!(status, 503, "{t}: {err}");
    }
    // With an API token, the token is what counts: any type with it, none without.
    let guarded = start(GatewayConfig {
        api_token: Some("write-tok".into()),
        ..no_limit()
    })
    .await;
    let send = |token: Option<&'static str>| {
        let mut r = guarded
            .http
            .post(format!("{}/v1/ingest", guarded.base))
            .header("content-type", "text/plain")
            .body(csv);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(send(Some("write-tok")).await.unwrap().status(), 503);
}

#[tokio::test]
async fn a_write_from_another_sites_page_is_refused_with_403() {
    let gw = start(GatewayConfig {
        cors_origins: vec!["https://news.example".into()],
        ..no_limit()
    })
    .await;
    let own = gw.base.clone();
    let post = |origin: &str| {
        gw.http
            .post(format!("{}/v1/subscriptions", gw.base))
            .header("origin", origin)
            .json(&subscription_body())
            .send()
    };
    for origin in [
        "https://evil.example",
        "null",
        "http://localhost.evil.example",
    ] {
        let r = post(origin).await.unwrap();
        assert_eq!(r.status(), 403, "{origin}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "cross_origin");
    }
    let r = gw
        .http
        .delete(format!("{}/v1/subscriptions/sub-x", gw.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = gw
        .http
        .post(format!("{}/login", gw.base))
        .header("origin", "https://evil.example")
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, subs) = gw.get_json("/v1/subscriptions").await;
    assert_eq!(subs["subscriptions"], json!([]));
    // The gateway's own pages, a configured CORS origin and clients that send no Origin
    // (curl, scripts) write; reads from anywhere still read.
    assert_eq!(post(&own).await.unwrap().status(), 201);
    assert_eq!(post("https://news.example").await.unwrap().status(), 201);
    let r = gw
        .http
        .get(format!("{}/v1/surges", gw.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn on_loopback_only_local_host_names_are_answered_against_dns_rebinding() {
    let gw = start(no_limit()).await;
    let port = gw.base.rsplit(':').next().unwrap().to_string();
    let with_host = |host: String| {
        gw.http
            .get(format!("{}/v1/surges", gw.base))
            .header("host", host)
            .send()
    };
    // A rebound name points at 127.0.0.1, but the browser still sends the page's name.
    for host in [
        "rebind.evil.example".to_string(),
        format!("evil.example:{port}"),
    ] {
        let r = with_host(host.clone()).await.unwrap();
        assert_eq!(r.status(), 403, "{host}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "host_not_allowed");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--allowed-hosts")
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "LOCALHOST".to_string(),
    ] {
        assert_eq!(
            with_host(host.clone()).await.unwrap().status(),
            200,
            "{host}"
        );
    }
    // Probes answer whatever the Host (platform probes ask by address).
    let r = gw
        .http
        .get(format!("{}/healthz", gw.base))
        .header("host", "10.1.2.3:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A configured public name is answered too, any other still is not.
    let named = start(GatewayConfig {
        allowed_hosts: vec!["bw.example.org".into()],
        ..no_limit()
    })
    .await;
    let r = named
        .http
        .get(format!("{}/v1/surges", named.base))
        .header("host", "bw.example.org:443")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = named
        .http
        .get(format!("{}/v1/surges", named.base))
        .header("host", "other.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn a_reachable_address_without_a_token_is_refused_unless_told_otherwise() {
    let open = GatewayConfig::default();
    for addr in ["0.0.0.0:8080", "[::]:8080", "192.0.2.7:8080"] {
        let e = open.check_exposure(addr.parse().unwrap()).unwrap_err();
        for named in [
            "--api-token",
            "BORDERWATCH_API_TOKEN",
            "--insecure-no-auth",
            "BORDERWATCH_INSECURE_NO_AUTH=1",
        ] {
            assert!(e.contains(named), "{addr}: {e}");
        }
    }
    for addr in ["127.0.0.1:8080", "[::1]:8080", "127.0.0.2:0"] {
        open.check_exposure(addr.parse().unwrap()).unwrap();
    }
    let any: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let token = GatewayConfig {
        api_token: Some("t".into()),
        ..GatewayConfig::default()
    };
    token.check_exposure(any).unwrap();
    let told = GatewayConfig {
        insecure_no_auth: true,
        ..GatewayConfig::default()
    };
    told.check_exposure(any).unwrap();
}

#[test]
fn a_read_token_without_an_api_token_is_refused() {
    let cfg = GatewayConfig {
        read_token: Some("r".into()),
        ..GatewayConfig::default()
    };
    let e = cfg.validate().unwrap_err();
    assert!(
        e.contains("--read-token") && e.contains("--api-token"),
        "{e}"
    );
    GatewayConfig {
        api_token: Some("w".into()),
        ..cfg
    }
    .validate()
    .unwrap();
}

#[tokio::test]
async fn json_bodies_are_capped_small_while_uploads_keep_their_limit() {
    let gw = start(GatewayConfig {
        max_json_bytes: 4096,
        ..no_limit()
    })
    .await;
    // A subscription padded past the small limit (it used to be taken up to 64 MiB).
    let big = json!({"webhook": {"url": "https://example.org/h", "secret": "s"},
                     "countries": vec!["PRK"; 2000]});
    let (status, err) = post_json(&gw, "/v1/subscriptions", big.clone()).await;
    assert_eq!(status, 413, "{err}");
    assert_eq!(err["error"]["code"], "payload_too_large");
    // Without a length too.
    let text = big.to_string().into_bytes();
    let pieces = futures::stream::iter(
        text.chunks(1000)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let r = gw
        .http
        .post(format!("{}/v1/silences", gw.base))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(pieces))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let (_, subs) = gw.get_json("/v1/subscriptions").await;
    assert_eq!(subs["subscriptions"], json!([]));
    // An upload of the same size is not held to it (no ingest service here: 503).
    let (status, _) = post_typed(&gw, "/v1/ingest", Some("text/csv"), &"x".repeat(20_000)).await;
    assert_eq!(status, 503);
}

/// Opens a live stream from `local` (a loopback address) and returns the answer.
async fn open_stream(gw: &Gateway, local: [u8; 4]) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(local))
        .build()
        .unwrap();
    client
        .get(format!("{}/v1/surges/stream", gw.base))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn live_streams_are_capped_per_client_with_429_and_in_all_with_503() {
    let gw = start(GatewayConfig {
        max_streams_per_client: 2,
        max_streams: 3,
        ..no_limit()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let r = open_stream(&gw, [127, 0, 0, 1]).await;
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    let r = open_stream(&gw, [127, 0, 0, 1]).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams");
    // Another client still gets one, until the gateway's total is reached.
    let r = open_stream(&gw, [127, 0, 0, 2]).await;
    assert_eq!(r.status(), 200);
    open.push(r);
    let r = open_stream(&gw, [127, 0, 0, 3]).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // Other requests are not held up by the cap.
    assert_eq!(gw.get("/v1/surges").await.status(), 200);
}

#[tokio::test]
async fn the_openapi_document_lists_the_refusals_of_writes_and_streams() {
    let gw = start(no_limit()).await;
    let (_, doc) = gw.get_json("/openapi.json").await;
    for (path, method, statuses) in [
        ("/v1/subscriptions", "post", &["403", "413", "415"][..]),
        ("/v1/silences", "post", &["403", "413", "415"][..]),
        ("/v1/ingest", "post", &["403", "413", "415"][..]),
        ("/v1/subscriptions/{id}", "delete", &["403"][..]),
        ("/v1/surges/stream", "get", &["429", "503"][..]),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        for status in statuses {
            assert!(
                responses.get(*status).is_some(),
                "{method} {path} does not list {status}: {responses}"
            );
        }
    }
}

/// Issue 15: every surge the gateway serves links to its evidence under `public_url` (the
/// list, one surge, the live stream), and the link's path is the series page with the
/// surge marked on the chart.
#[tokio::test]
async fn surges_carry_the_url_of_their_evidence_under_the_public_url() {
    let gw = start(GatewayConfig {
        public_url: Some("https://bw.example.org/bw/".into()),
        ..no_limit()
    })
    .await;
    let mut series = series_view("fsb", "PRK", "study", &[5, 7, 3765]);
    series["surges"] = json!(["sg-test0001", "sg-test0002"]);
    gw.bus
        .kv_put(
            names::SERIES_BUCKET,
            &names::series_key("fsb", "PRK", "study"),
            // Compact, as analytics stores views; the listing tests store the API's form,
            // as views were stored before (both read).
            SeriesView::from_stored(&serde_json::to_vec(&series).unwrap())
                .unwrap()
                .to_stored()
                .into(),
        )
        .await
        .unwrap();
    let mut e = surge(1, "PRK", "high");
    e["period"] = "2024-Q3".into();
    e["value"] = 3765.into();
    // A louder surge of the series, which its page would mark by default.
    let mut louder = surge(2, "PRK", "critical");
    louder["period"] = "2024-Q2".into();
    publish_surges(&gw.bus, &[e, louder]).await;
    wait_surges(&gw, 2).await;
    let want = "https://bw.example.org/bw/series/fsb/PRK/study?surge=sg-test0001#chart";

    let (_, list) = gw.get_json("/v1/surges").await;
    assert_eq!(list["surges"][1]["url"], want, "{list}");
    let (status, one) = gw.get_json("/v1/surges/sg-test0001").await;
    assert_eq!(status, 200);
    assert_eq!(one["url"], want);
    // The live stream, from its start (Last-Event-ID 0).
    let mut stream = gw
        .http
        .get(format!("{}/v1/surges/stream", gw.base))
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("a surge on the live stream")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(&format!("\"url\":\"{want}\"")), "{text}");

    // The link's path, on this gateway: the series page, with that surge (not the louder
    // one it shows by default) on the chart.
    let path = want.trim_start_matches("https://bw.example.org/bw");
    let r = gw.get(path.trim_end_matches("#chart")).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<circle class=\"surge selected\" data-period=\"2024-Q3\""),
        "{html}"
    );
}
