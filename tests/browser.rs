//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against `borderwatch up --demo`. It finds the headline surge on `/`, follows it to the
//! series page, checks the chart, and saves desktop and phone screenshots under the target
//! directory (`browser/`), checking that they are not blank and that nothing is wider than a
//! phone's screen. Then it follows an alert's link to the series page with its surge marked,
//! and checks that the chart offered for embedding loads there, from its snippet pasted into
//! another page, and as the PNG chat messages carry.
//!
//! Needs `chromium` and `chromedriver` on PATH (Debian: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them). Without them the test fails: it never skips.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use borderwatch_e2e::RoleProcess;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

fn start_driver() -> Driver {
    let port = free_port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromedriver ({e}): install Chromium and its driver \
                 (Debian: apt-get install chromium chromium-driver; .ci/run does this)"
            )
        });
    // chromedriver says "… started successfully" once it listens.
    let stdout = child.stdout.take().expect("chromedriver stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.any(|l| l.is_ok_and(|l| l.contains("started successfully")));
    assert!(ready, "chromedriver exited before it was ready");
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn chromium_binary() -> String {
    for cand in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(cand).output()
            && out.status.success()
        {
            return String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
    }
    panic!("no chromium on PATH: apt-get install chromium chromium-driver (.ci/run does this)")
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium_binary(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--hide-scrollbars", "--window-size=1280,1000", "--force-device-scale-factor=1"],
        }),
    );
    // chromedriver listens on plain HTTP on loopback: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session from chromedriver")
}

/// Starts `borderwatch up --demo` on a free port; returns it and the dashboard's URL once
/// the demo's surges are in.
fn start_demo(dir: &Path) -> (RoleProcess, String) {
    let data = dir.join("data");
    let up = RoleProcess::start(
        &[
            "up",
            "--demo",
            "--http",
            "127.0.0.1:0",
            "--data",
            data.to_str().expect("utf-8 temp path"),
        ],
        dir,
        "up",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let log = std::fs::read_to_string(&up.log).unwrap_or_default();
        // `up` prints "  dashboard  http://127.0.0.1:PORT/" once the demo is analysed.
        if let Some(url) = log
            .lines()
            .find_map(|l| l.trim().strip_prefix("dashboard"))
            .map(|u| u.trim().trim_end_matches('/').to_string())
        {
            return (up, url);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "borderwatch up --demo did not print its dashboard URL within 120 s; log {}:\n{log}",
            up.log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where the screenshots go: kept after the test for a human to look at.
fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// What a screenshot shows, in numbers.
#[derive(Debug)]
struct Picture {
    width: u32,
    height: u32,
    distinct_colours: usize,
    /// Share of pixels that are not (nearly) white.
    inked: f64,
    /// Pixels of the surge red (#b00020 and its anti-aliased neighbours).
    red: usize,
}

fn inspect(png_bytes: &[u8], path: &Path) -> Picture {
    std::fs::write(path, png_bytes).expect("write screenshot");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG from the browser");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "a colour screenshot, got {:?}",
        info.color_type
    );
    let mut colours = std::collections::HashSet::new();
    let (mut inked, mut red) = (0usize, 0usize);
    let pixels = buf[..info.buffer_size()].chunks_exact(channels);
    let total = pixels.len();
    for px in pixels {
        let (r, g, b) = (px[0], px[1], px[2]);
        colours.insert((r, g, b));
        if u16::from(r) + u16::from(g) + u16::from(b) < 3 * 245 {
            inked += 1;
        }
        if r > 140 && g < 70 && b < 90 {
            red += 1;
        }
    }
    Picture {
        width: info.width,
        height: info.height,
        distinct_colours: colours.len(),
        inked: inked as f64 / total.max(1) as f64,
        red,
    }
}

fn assert_not_blank(p: &Picture, what: &str) {
    assert!(
        p.distinct_colours >= 64 && p.inked > 0.03,
        "{what} looks blank: {p:?}"
    );
}

async fn page_fits_width(c: &Client) -> (u64, u64) {
    let v = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .expect("run a script");
    (
        v[0].as_u64().expect("scrollWidth"),
        v[1].as_u64().expect("innerWidth"),
    )
}

/// Waits until the image `selector` picks has loaded; its natural size (a broken image has
/// none).
async fn loaded_image(c: &Client, selector: &str) -> (u64, u64) {
    let script = format!(
        "const i = document.querySelector({selector:?}); \
         return i && i.complete ? [i.naturalWidth, i.naturalHeight] : null;"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = c.execute(&script, vec![]).await.expect("look at the image");
        if let (Some(w), Some(h)) = (v[0].as_u64(), v[1].as_u64()) {
            return (w, h);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the image {selector} did not load within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An alert's link (the surge's `url`, which every message carries) opens the series page
/// with that surge marked; the page's own chart image, the `<img>` snippet it offers pasted
/// into another page, and the PNG a chat message shows all load and mark the same period.
async fn alert_link_to_the_marked_chart(c: &Client, base: &str, shots: &Path) {
    c.set_window_size(1280, 1000).await.expect("desktop size");
    let surges: serde_json::Value = reqwest::get(format!(
        "{base}/v1/surges?source=fsb&country=PRK&category=study"
    ))
    .await
    .expect("list the surges")
    .json()
    .await
    .expect("surges as JSON");
    let headline = surges["surges"]
        .as_array()
        .expect("surges")
        .iter()
        .find(|s| s["period"] == "2024-Q3")
        .expect("the headline surge");
    let link = headline["url"].as_str().expect("the surge's url");
    assert!(
        link.starts_with(&format!("{base}/series/fsb/PRK/study?surge=sg-"))
            && link.ends_with("#chart"),
        "{link}"
    );
    c.goto(link).await.expect("follow the alert's link");
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(
            "svg.chart circle.surge.selected[data-period='2024-Q3']",
        ))
        .await
        .expect("the alert's surge marked on the page's chart");

    // The chart to embed, marking the same period, has loaded on the page.
    let chart = "/v1/series/fsb/PRK/study/chart.svg?period=2024-Q3";
    let img = c
        .find(Locator::Css("#embed img.chart-image"))
        .await
        .expect("the chart to embed");
    assert_eq!(img.attr("src").await.expect("src").as_deref(), Some(chart));
    img.click().await.ok(); // scrolls it into view for the screenshot; a click does nothing
    assert_eq!(loaded_image(c, "#embed img.chart-image").await, (640, 410));
    let embed = inspect(
        &c.screenshot().await.expect("screenshot"),
        &shots.join("series-embed.png"),
    );
    assert_not_blank(&embed, "the embed section");
    // The snippets name the chart under the public URL (`up`'s own address here).
    let snippet = |id: &'static str| async move {
        c.find(Locator::Id(id))
            .await
            .expect("a snippet")
            .prop("value")
            .await
            .expect("its text")
            .unwrap_or_default()
    };
    let iframe = snippet("embed-iframe").await;
    assert!(
        iframe.starts_with(&format!("<iframe src=\"{base}{chart}\"")),
        "{iframe}"
    );
    let tag = snippet("embed-img").await;
    assert!(
        tag.starts_with(&format!("<img src=\"{base}{chart}\"")),
        "{tag}"
    );

    // Pasted into a page of another site (`localhost` is another origin than `127.0.0.1`,
    // and like it on loopback, so the browser lets it load from there), the <img> snippet
    // shows the chart; so does the PNG that Slack and Teams messages carry.
    let elsewhere = base.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(elsewhere, base, "the demo listens on 127.0.0.1");
    c.goto(&format!("{elsewhere}/healthz"))
        .await
        .expect("a page of another origin");
    let png = format!("{base}/v1/series/fsb/PRK/study/chart.png?period=2024-Q3");
    c.execute(
        "document.body.innerHTML = arguments[0] + '<img id=\"png\" src=\"' + arguments[1] + '\">';",
        vec![json!(tag), json!(png)],
    )
    .await
    .expect("paste the snippet");
    assert_eq!(loaded_image(c, "body > img:first-child").await, (640, 410));
    assert_eq!(loaded_image(c, "#png").await, (1280, 820));
    c.goto(&png).await.expect("open the PNG");
    let picture = inspect(
        &c.screenshot().await.expect("screenshot"),
        &shots.join("chart-png.png"),
    );
    assert!(picture.red > 100, "no surge red in the PNG: {picture:?}");
}

/// The `n`th quarter from 2019-Q1.
fn quarter(n: u32) -> String {
    format!("{}-Q{}", 2019 + n / 4, n % 4 + 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_headline_surge_and_its_chart_in_chromium() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_up, base) = start_demo(dir.path());
    let driver = start_driver();
    let c = browser(&driver).await;
    let shots = shots_dir();
    let result = async {
        // The headline: the critical North Korea study surge tops the list.
        c.goto(&format!("{base}/")).await.expect("open /");
        let first = c
            .find(Locator::Css("ul#surges > li"))
            .await
            .expect("a surge on the page");
        let text = first.text().await.expect("its text");
        assert!(
            text.contains("3,765 entries of North Korean citizens for study in 2024-Q3"),
            "the first surge is not the headline: {text}"
        );
        assert_eq!(
            first.attr("class").await.expect("class").as_deref(),
            Some("critical")
        );
        let home = inspect(&c.screenshot().await.expect("screenshot"), &shots.join("home-desktop.png"));
        assert_not_blank(&home, "the home page");

        // Its link leads to the series page with the chart.
        first
            .find(Locator::Css("a.series"))
            .await
            .expect("the series link")
            .click()
            .await
            .expect("follow it");
        let chart = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("svg.chart"))
            .await
            .expect("the chart on the series page");
        let url = c.current_url().await.expect("url");
        assert_eq!(url.path(), "/series/fsb/PRK/study");
        let surges = chart
            .find_all(Locator::Css("circle.surge"))
            .await
            .expect("surge markers");
        assert!(surges.len() >= 2, "{} surge markers", surges.len());
        chart
            .find(Locator::Css("circle.surge.selected[data-period='2024-Q3']"))
            .await
            .expect("the headline period marked as the chart's surge");
        chart
            .find(Locator::Css("polygon.band"))
            .await
            .expect("the expected band");
        let baseline = chart
            .find(Locator::Css("g.baseline.span text"))
            .await
            .expect("the cited baseline year");
        assert_eq!(
            baseline.text().await.expect("label"),
            "baseline 2019: 3,200"
        );
        // The chart has a real size on the page.
        let size = c
            .execute(
                "const r = document.querySelector('svg.chart').getBoundingClientRect(); return [r.width, r.height];",
                vec![],
            )
            .await
            .expect("chart size");
        assert!(size[0].as_f64() > Some(600.0) && size[1].as_f64() > Some(250.0), "chart is {size}");
        let desktop = inspect(&c.screenshot().await.expect("screenshot"), &shots.join("series-desktop.png"));
        assert_not_blank(&desktop, "the series page");
        assert!(desktop.red > 100, "no surge red in the chart: {desktop:?}");

        // A phone: 390 CSS pixels wide. Nothing may be wider than the screen.
        c.set_window_size(390, 844).await.expect("phone size");
        c.refresh().await.expect("reload");
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("svg.chart"))
            .await
            .expect("the chart on a phone");
        let (scroll, inner) = page_fits_width(&c).await;
        assert!(scroll <= inner, "the series page is {scroll}px wide on a {inner}px phone");
        let phone = inspect(&c.screenshot().await.expect("screenshot"), &shots.join("series-phone.png"));
        assert_not_blank(&phone, "the series page on a phone");
        assert!(phone.width < 500 && phone.height > 600 && phone.red > 30, "{phone:?}");
        c.goto(&format!("{base}/")).await.expect("open / on a phone");
        let (scroll, inner) = page_fits_width(&c).await;
        assert!(scroll <= inner, "the home page is {scroll}px wide on a {inner}px phone");
        let phone_home = inspect(&c.screenshot().await.expect("screenshot"), &shots.join("home-phone.png"));
        assert_not_blank(&phone_home, "the home page on a phone");

        // Live updates: a release ingested while the page is open shows up on top.
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#live.on"))
            .await
            .expect("the live stream connected");
        let mut csv = String::from("source,period,country,category,count\n");
        for q in 0..20 {
            csv.push_str(&format!("livetest,{},FRA,study,{}\n", quarter(q), 100 + q % 3));
        }
        csv.push_str(&format!("livetest,{},FRA,study,5000\n", quarter(20)));
        let answer = reqwest::Client::new()
            .post(format!("{base}/v1/ingest?format=generic"))
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("ingest a release");
        assert!(answer.status().is_success(), "ingest answered {}", answer.status());
        let fresh = c
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::XPath(
                "//ul[@id='surges']/li[contains(@class, 'new')][contains(., 'livetest/FRA/study')][contains(., '2024-Q1')]",
            ))
            .await
            .expect("the new surge added to the open page");
        let href = fresh
            .find(Locator::Css("a.series"))
            .await
            .expect("its series link")
            .attr("href")
            .await
            .expect("href");
        assert_eq!(href.as_deref(), Some("/series/livetest/FRA/study"));

        alert_link_to_the_marked_chart(&c, &base, &shots).await;
        eprintln!("screenshots in {}", shots.display());
    }
    .await;
    let _ = c.close().await;
    result
}
