//! `GET /v1/surges` answers a page rendered once per query and surge-index generation from a
//! cache: these tests check that a cached answer is the very answer a fresh render gives
//! (status, headers but `Date`, body bytes), JSON and CSV, first and later pages, that a new
//! surge renews the cached page, and what `ETag` and `If-None-Match` do.
//!
//! "Fresh render" is a second gateway over the same bus that is asked each query once, after
//! the first gateway has answered it twice (the second time from its cache).

mod support;
use support::{Gateway, memory_bus};

use std::time::Duration;

use borderwatch_bus::{Bus, Outgoing, names};
use borderwatch_gateway::GatewayConfig;
use serde_json::{Value, json};

fn config() -> GatewayConfig {
    GatewayConfig {
        rate_limit: None,
        ..GatewayConfig::default()
    }
}

/// One answer as a client sees it: the status, every header but `Date` (the second it was
/// sent), the body's bytes.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn etag(&self) -> &str {
        self.header("etag").expect("an ETag")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn ids(&self) -> Vec<String> {
        self.json()["surges"]
            .as_array()
            .expect("a list of surges")
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Gateway {
    async fn answer(&self, path: &str, if_none_match: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(tag) = if_none_match {
            request = request.header("if-none-match", tag);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let mut headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(n, _)| n.as_str() != "date")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        headers.sort();
        let body = r.bytes().await.unwrap().to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Waits until this gateway lists `n` surges, asking a query no test below asks.
    async fn wait_surges(&self, n: usize) {
        for _ in 0..400 {
            if self.answer("/v1/surges?limit=9999", None).await.ids().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway did not index {n} surges");
    }
}

fn surge(i: u32, country: &str) -> Value {
    json!({
        "id": format!("sg-cache{i:04}"),
        "source": "fsb",
        "country": country,
        "category": "study",
        "period": format!("{}-Q{}", 2000 + i / 4, i % 4 + 1),
        "value": 100 + i,
        "severity": if i.is_multiple_of(3) { "critical" } else { "low" },
        "explanation": format!("surge {i}, with a comma and \"quotes\""),
        "findings": [{"detector": "record_high", "expected": null, "upper_bound": null,
                      "p_value": null, "message": "the highest on record"}],
        "release_id": "rel-cache",
        "detected_at": "2025-01-01T00:00:00Z",
    })
}

async fn publish(bus: &Bus, e: &Value) {
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

/// Queries of every kind the list takes: the default page, a short page and its next page,
/// filters (one spelled as a name), CSV with and without a next page.
const QUERIES: [&str; 8] = [
    "/v1/surges",
    "/v1/surges?limit=3",
    "/v1/surges?limit=3&cursor=5",
    "/v1/surges?country=PRK&limit=2",
    "/v1/surges?min_severity=critical",
    "/v1/surges?format=csv",
    "/v1/surges?format=csv&country=North%20Korea&limit=2",
    "/v1/surges?direction=rise&source=fsb&since=2000-Q3",
];

#[tokio::test]
async fn a_cached_page_is_the_answer_a_fresh_render_gives_and_a_new_surge_renews_it() {
    let bus = memory_bus().await;
    for i in 0..9 {
        publish(&bus, &surge(i, if i % 2 == 0 { "PRK" } else { "CHN" })).await;
    }
    let cached = support::start_on(bus.clone(), config()).await;
    let fresh = support::start_on(bus.clone(), config()).await;
    cached.wait_surges(9).await;
    fresh.wait_surges(9).await;

    for path in QUERIES {
        let first = cached.answer(path, None).await;
        let again = cached.answer(path, None).await;
        let other = fresh.answer(path, None).await;
        assert_eq!(first.status, 200, "{path}: {first:?}");
        assert!(!first.body.is_empty(), "{path}");
        assert_eq!(
            first, again,
            "{path}: the cached answer differs from the first"
        );
        assert_eq!(
            first, other,
            "{path}: the cached answer differs from a fresh render"
        );
        assert_eq!(first.header("cache-control"), Some("no-cache"), "{path}");
    }
    // The pages are the pages the list has always served.
    let csv = cached.answer(QUERIES[6], None).await;
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some("attachment; filename=\"surges.csv\"")
    );
    assert_eq!(
        csv.header("link"),
        Some("</v1/surges?format=csv&country=North+Korea&limit=2&cursor=7>; rel=\"next\"")
    );
    let page = cached.answer("/v1/surges?limit=3", None).await;
    assert_eq!(page.ids(), ["sg-cache0008", "sg-cache0007", "sg-cache0006"]);
    assert_eq!(page.json()["next"], "/v1/surges?limit=3&cursor=7");

    // A new surge (in China) is on the next answer of the default page: the cached one is
    // no longer served.
    let default_before = cached.answer("/v1/surges", None).await;
    let prk_before = cached.answer("/v1/surges?country=PRK&limit=2", None).await;
    publish(&bus, &surge(9, "CHN")).await;
    cached.wait_surges(10).await;
    fresh.wait_surges(10).await;
    let default_after = cached.answer("/v1/surges", None).await;
    assert_eq!(default_after.ids()[0], "sg-cache0009");
    assert_eq!(default_after.ids()[1..], default_before.ids()[..]);
    assert_ne!(default_after.etag(), default_before.etag());
    assert_eq!(default_after, cached.answer("/v1/surges", None).await);
    assert_eq!(default_after, fresh.answer("/v1/surges", None).await);
    // A page the new surge does not change is rendered again, to the same bytes and tag.
    let prk_after = cached.answer("/v1/surges?country=PRK&limit=2", None).await;
    assert_eq!(prk_after, prk_before);

    // If-None-Match: the current tag (also weak, or in a list) gets 304 without a body; an
    // old one gets the page.
    let current = default_after.etag().to_string();
    for tag in [
        current.clone(),
        format!("W/{current}"),
        format!("\"other\", {current}"),
        "*".to_string(),
    ] {
        let r = cached.answer("/v1/surges", Some(&tag)).await;
        assert_eq!(r.status, 304, "If-None-Match: {tag}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(current.as_str()));
    }
    let r = cached
        .answer("/v1/surges", Some(default_before.etag()))
        .await;
    assert_eq!(r, default_after);
    // A tag is for one page only.
    let r = cached.answer("/v1/surges?limit=3", Some(&current)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_query_that_does_not_parse_gets_its_400_every_time() {
    let gw = support::start(config()).await;
    for path in [
        "/v1/surges?limit=0",
        "/v1/surges?bogus=1",
        "/v1/surges?country=Atlantis",
    ] {
        let first = gw.answer(path, None).await;
        let again = gw.answer(path, None).await;
        assert_eq!(first.status, 400, "{path}: {first:?}");
        assert_eq!(first, again, "{path}");
        assert!(first.header("etag").is_none(), "{path}");
    }
}
