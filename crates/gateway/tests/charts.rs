//! Charts to embed and to send, against a real server on a random port: the chart alone as
//! SVG and PNG (`/v1/series/…/chart.svg|png`, band and marked period, `?period=`), their 404s
//! and 400s, the read token guarding them as every series read, the series page offering
//! them (an image and the snippets), and the series CSV carrying the band.

mod support;
use support::Gateway;

use std::time::Duration;

use borderwatch_bus::{Outgoing, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_model::SeriesView;
use resvg::tiny_skia::Pixmap;
use resvg::usvg::roxmltree;
use serde_json::{Value, json};

async fn start(cfg: GatewayConfig) -> Gateway {
    let cfg = GatewayConfig {
        rate_limit: None,
        ..cfg
    };
    support::start(cfg).await
}

impl Gateway {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// Status, content type and body.
    async fn fetch(&self, path: &str) -> (u16, String, Vec<u8>) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, r.bytes().await.unwrap().to_vec())
    }
}

/// Quarters from 2023-Q1: ten figures, the two last ones far above the band that the
/// farrington detector fitted from 2023-Q3 on, and a surge in 2025-Q1.
const COUNTS: [u64; 10] = [20, 25, 22, 30, 28, 26, 31, 29, 3765, 3752];
const SURGE: &str = "sg-chart0000000000001";

fn quarter(i: usize) -> String {
    format!("{}-Q{}", 2023 + i / 4, i % 4 + 1)
}

/// The headline series with its band and one surge, stored as analytics stores them.
async fn seed(gw: &Gateway) {
    let view = json!({
        "source": "fsb", "country": "PRK", "category": "study", "freq": "quarter",
        "observations": COUNTS.iter().enumerate()
            .map(|(i, c)| json!({"period": quarter(i), "count": c})).collect::<Vec<_>>(),
        "yearly": [], "year_over_year": [], "surges": [SURGE],
        "updated_at": "2025-05-01T00:00:00Z", "release_id": "rel-chart",
        "bands": (2..COUNTS.len())
            .map(|i| json!({"period": quarter(i), "detector": "farrington",
                            "expected": 25.5, "upper_bound": 41.25}))
            .collect::<Vec<_>>(),
    });
    gw.bus
        .kv_put(
            names::SERIES_BUCKET,
            &names::series_key("fsb", "PRK", "study"),
            // Stored as analytics stores views (compact, `SeriesView::to_stored`).
            SeriesView::from_stored(&serde_json::to_vec(&view).unwrap())
                .unwrap()
                .to_stored()
                .into(),
        )
        .await
        .unwrap();
    let surge = json!({
        "id": SURGE, "source": "fsb", "country": "PRK", "category": "study",
        "period": quarter(8), "value": 3765, "severity": "critical",
        "explanation": "3,765 entries for study in 2025-Q1",
        "findings": [{"detector": "farrington", "expected": 25.5, "upper_bound": 41.25,
                      "p_value": 0.0001, "message": "far above the expected 26"}],
        "release_id": "rel-chart", "detected_at": "2025-05-01T00:00:00Z",
    });
    gw.bus
        .publish(
            Outgoing::new(
                names::surge_subject("PRK", "study"),
                serde_json::to_vec(&surge).unwrap(),
            )
            .with_id(SURGE.to_string()),
        )
        .await
        .unwrap();
    // With the API token, which a gateway without tokens ignores.
    let url = format!("{}/v1/surges/{SURGE}", gw.base);
    for _ in 0..200 {
        let r = gw.http.get(&url).bearer_auth("write-tok").send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the gateway did not index the surge");
}

/// The SVG parsed as XML (a well-formed document or a failed test).
fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed XML ({e}):\n{svg}"))
}

fn with_class<'a>(doc: &'a roxmltree::Document<'a>, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split(' ').any(|c| c == class))
        })
        .collect()
}

#[tokio::test]
async fn the_chart_alone_as_svg_has_the_band_and_the_surge_marked() {
    let gw = start(GatewayConfig::default()).await;
    seed(&gw).await;
    let (status, ct, body) = gw.fetch("/v1/series/fsb/PRK/study/chart.svg").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "image/svg+xml");
    let svg = String::from_utf8(body).unwrap();
    let doc = parse(&svg);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert_eq!(
        (root.attribute("width"), root.attribute("height")),
        (Some("640"), Some("410"))
    );
    // The band over the eight periods it covers, its two lines, and the figures.
    let band = with_class(&doc, "band");
    assert_eq!(band.len(), 1);
    assert_eq!(band[0].attribute("points").unwrap().split(' ').count(), 16);
    assert_eq!(with_class(&doc, "threshold").len(), 1);
    assert_eq!(with_class(&doc, "observed").len(), 1);
    // By default the surge is marked: drawn as the selected surge and with a rule and label.
    let selected = with_class(&doc, "selected");
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].attribute("data-period"), Some("2025-Q1"));
    let mark = with_class(&doc, "mark");
    assert_eq!(mark.len(), 1);
    assert_eq!(mark[0].attribute("data-period"), Some("2025-Q1"));
    assert!(svg.contains(">2025-Q1: 3,765</text>"), "{svg}");
    assert!(
        svg.contains(">Entries of North Korean citizens for study</text>"),
        "{svg}"
    );
    assert!(
        svg.contains(">fsb/PRK/study · critical surge in 2025-Q1 marked</text>"),
        "{svg}"
    );
    // It carries its own colours: nothing outside it styles an <img>.
    assert!(
        svg.contains("<style>") && svg.contains(".band { fill: #1a56db"),
        "{svg}"
    );

    // Another period is marked on request; the surge stays red but is not the marked one.
    let (status, _, body) = gw
        .fetch("/v1/series/fsb/PRK/study/chart.svg?period=2023-Q4")
        .await;
    assert_eq!(status, 200);
    let svg = String::from_utf8(body).unwrap();
    let doc = parse(&svg);
    assert_eq!(
        with_class(&doc, "mark")[0].attribute("data-period"),
        Some("2023-Q4")
    );
    assert!(with_class(&doc, "selected").is_empty());
    assert_eq!(with_class(&doc, "surge").len(), 1);
    assert!(
        svg.contains(">2023-Q4: 30</text>")
            && svg.contains(">fsb/PRK/study · 2023-Q4 marked</text>")
    );
    // A country by another name is the same series.
    let (status, _, _) = gw.fetch("/v1/series/fsb/KP/study/chart.svg").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_chart_as_png_is_a_picture_of_the_chart() {
    let gw = start(GatewayConfig::default()).await;
    seed(&gw).await;
    let r = gw
        .get("/v1/series/fsb/PRK/study/chart.png?period=2025-Q1")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let png = r.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 10_000 && png.len() < 1_000_000,
        "{} bytes",
        png.len()
    );
    // Kept for a human to look at.
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chart.png"),
        &png,
    );
    let image = Pixmap::decode_png(&png).expect("a PNG that decodes");
    // Twice the SVG's 640 × 410.
    assert_eq!((image.width(), image.height()), (1280, 820));
    let count = |f: &dyn Fn(u8, u8, u8) -> bool| {
        image
            .pixels()
            .iter()
            .map(|p| p.demultiply())
            .filter(|p| f(p.red(), p.green(), p.blue()))
            .count()
    };
    // A white sheet, the surge red, the band's light blue, and dark text and lines.
    assert!(count(&|r, g, b| r > 250 && g > 250 && b > 250) > 500_000);
    assert!(
        count(&|r, g, b| r > 150 && g < 60 && b < 70) > 200,
        "no surge red"
    );
    assert!(
        count(&|r, g, b| b > 200 && r < 235 && r > 180 && g < 240) > 1000,
        "no band"
    );
    assert!(
        count(&|r, g, b| r < 110 && g < 110 && b < 110) > 3000,
        "no text or lines"
    );
    // The same request again is the same picture (from the cache).
    let again = gw
        .get("/v1/series/fsb/PRK/study/chart.png?period=2025-Q1")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(again, png);
}

#[tokio::test]
async fn unknown_series_are_404_and_bad_parameters_400_in_the_error_body() {
    let gw = start(GatewayConfig::default()).await;
    seed(&gw).await;
    for ext in ["svg", "png"] {
        for (path, status, says) in [
            (
                format!("/v1/series/fsb/PRK/none/chart.{ext}"),
                404,
                "no series fsb/PRK/none",
            ),
            (
                format!("/v1/series/nobody/PRK/study/chart.{ext}"),
                404,
                "no series",
            ),
            (
                format!("/v1/series/fsb/PRK/study/chart.{ext}?period=soon"),
                400,
                "`period=soon` is not a period",
            ),
            (
                format!("/v1/series/fsb/PRK/study/chart.{ext}?period=2019-Q1"),
                400,
                "has no figure for it",
            ),
            (
                format!("/v1/series/fsb/PRK/study/chart.{ext}?period=2024"),
                400,
                "has no figure for it",
            ),
            (
                format!("/v1/series/fsb/PRK/study/chart.{ext}?colour=red"),
                400,
                "colour",
            ),
            (
                format!("/v1/series/fsb/Atlantis/study/chart.{ext}"),
                400,
                "Atlantis",
            ),
        ] {
            let (got, ct, body) = gw.fetch(&path).await;
            assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
            assert!(ct.starts_with("application/json"), "{path}: {ct}");
            let body: Value = serde_json::from_slice(&body).unwrap();
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{path}: {message}");
        }
    }
    let (status, _, _) = gw.fetch("/v1/series/fsb/PRK/study/chart.gif").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn charts_are_read_as_the_series_are_with_the_read_token() {
    let gw = start(GatewayConfig {
        api_token: Some("write-tok".into()),
        read_token: Some("read-tok".into()),
        ..GatewayConfig::default()
    })
    .await;
    seed(&gw).await;
    for path in [
        "/v1/series/fsb/PRK/study/chart.svg",
        "/v1/series/fsb/PRK/study/chart.png",
    ] {
        let url = format!("{}{path}", gw.base);
        // An <img> elsewhere sends no token: refused, as every series read is.
        let r = gw
            .http
            .get(&url)
            .header("accept", "image/*")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        for token in ["read-tok", "write-tok"] {
            let r = gw.http.get(&url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path} with {token}");
        }
        let r = gw.http.get(&url).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn the_series_page_offers_the_chart_to_embed_and_its_snippets() {
    let gw = start(GatewayConfig {
        public_url: Some("https://bw.example.org/".into()),
        ..GatewayConfig::default()
    })
    .await;
    seed(&gw).await;
    let html = gw.get("/series/fsb/PRK/study").await.text().await.unwrap();
    assert!(
        html.contains(
            r#"<img class="chart-image" src="/v1/series/fsb/PRK/study/chart.svg?period=2025-Q1""#
        ),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="/v1/series/fsb/PRK/study/chart.png?period=2025-Q1">PNG</a>"#)
    );
    assert!(html.contains(r#"<a href="/v1/series/fsb/PRK/study?format=csv">CSV</a>"#));
    // The snippets name the public URL, escaped as text of the page.
    assert!(
        html.contains(r#"<textarea id="embed-iframe" class="snippet" readonly rows="3">&lt;iframe src=&quot;https://bw.example.org/v1/series/fsb/PRK/study/chart.svg?period=2025-Q1&quot;"#),
        "{html}"
    );
    assert!(html.contains(r#"&lt;img src=&quot;https://bw.example.org/v1/series/fsb/PRK/study/chart.svg?period=2025-Q1&quot;"#));
    assert!(!html.contains("start the gateway with --public-url"));
    // The image the page shows is the route itself.
    let (status, ct, _) = gw
        .fetch("/v1/series/fsb/PRK/study/chart.svg?period=2025-Q1")
        .await;
    assert_eq!((status, ct.as_str()), (200, "image/svg+xml"));

    // Without a public URL the snippet is relative, and the page says how to fix that.
    let gw = start(GatewayConfig::default()).await;
    seed(&gw).await;
    let html = gw.get("/series/fsb/PRK/study").await.text().await.unwrap();
    assert!(
        html.contains(
            "&lt;iframe src=&quot;/v1/series/fsb/PRK/study/chart.svg?period=2025-Q1&quot;"
        )
    );
    assert!(html.contains("start the gateway with --public-url"));
}

#[tokio::test]
async fn a_series_in_csv_carries_the_expected_value_and_upper_bound() {
    let gw = start(GatewayConfig::default()).await;
    seed(&gw).await;
    let r = gw.get("/v1/series/fsb/PRK/study?format=csv").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The input format's columns keep their places; the band's come after them.
    assert_eq!(
        lines[0],
        "source,period,country,category,count,expected,upper"
    );
    assert_eq!(lines.len(), 1 + COUNTS.len());
    // Before the band starts, empty; then the fitted values.
    assert_eq!(lines[1], "fsb,2023-Q1,PRK,study,20,,");
    assert_eq!(lines[2], "fsb,2023-Q2,PRK,study,25,,");
    assert_eq!(lines[3], "fsb,2023-Q3,PRK,study,22,25.5,41.25");
    assert_eq!(lines[9], "fsb,2025-Q1,PRK,study,3765,25.5,41.25");
}
