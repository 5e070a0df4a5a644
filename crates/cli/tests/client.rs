//! The client in the binary (`borderwatch surges`, `subscriptions`, `silences`) against a
//! real gateway: every role started in this process on the embedded bus, on loopback, with
//! an API token and a read token, and a loopback webhook receiver for test events.

use std::process::Output;
use std::time::{Duration, Instant};

use borderwatch_test_support::webhook::{Behaviour, ScriptedReceiver};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_borderwatch");
const API_TOKEN: &str = "client-test-api-token";
const READ_TOKEN: &str = "client-test-read-token";

/// Which tokens the command finds in its environment.
#[derive(Clone, Copy)]
enum Tokens<'a> {
    Api(&'a str),
    ReadOnly,
}

/// Runs `borderwatch ARGS --gateway GATEWAY` with only the given token variables set (any
/// `BORDERWATCH_*` of the test's own environment is removed first). Its stdout is a pipe, so
/// the output is JSON unless `-o table` is given.
async fn bw(gateway: &str, tokens: Tokens<'_>, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("BORDERWATCH_") {
            cmd.env_remove(k);
        }
    }
    match tokens {
        Tokens::Api(t) => cmd.env("BORDERWATCH_API_TOKEN", t),
        Tokens::ReadOnly => cmd.env("BORDERWATCH_READ_TOKEN", READ_TOKEN),
    };
    cmd.args(args)
        .args(["--gateway", gateway])
        .output()
        .await
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    ok(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn start(dir: &std::path::Path) -> borderwatch::Running {
    let mut opts = borderwatch::UpOptions::embedded(dir.join("data"));
    opts.gateway.api_token = Some(API_TOKEN.into());
    opts.gateway.read_token = Some(READ_TOKEN.into());
    opts.allow_private_webhooks();
    borderwatch::start(opts).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_add_list_test_and_rm() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let gw = running.gateway_url().unwrap();
    let receiver = ScriptedReceiver::start(Behaviour::default()).await;
    let api = Tokens::Api(API_TOKEN);

    let hook = receiver.url("hook");
    let added = lines(
        &bw(
            &gw,
            api,
            &[
                "subscriptions",
                "add",
                "--url",
                &hook,
                "--country",
                "PRK,KAZ",
                "--category",
                "study",
                "--severity",
                "high",
            ],
        )
        .await,
    );
    assert_eq!(added.len(), 1, "{added:?}");
    let sub = &added[0];
    let id = sub["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sub-"), "{sub}");
    assert_eq!(
        sub["filter"]["countries"],
        serde_json::json!(["PRK", "KAZ"])
    );
    assert_eq!(sub["filter"]["min_severity"], "high");
    // Generated and shown once, in the answer only.
    let secret = sub["webhook"]["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64, "{sub}");

    let listed = lines(&bw(&gw, api, &["subscriptions", "list"]).await);
    let mine = listed
        .iter()
        .find(|s| s["id"] == id.as_str())
        .expect("listed");
    assert!(mine["webhook"].get("secret").is_none(), "{mine}");
    let table = ok(&bw(&gw, api, &["subscriptions", "list", "-o", "table"]).await);
    let mut rows = table.lines();
    assert!(rows.next().unwrap().starts_with("ID "), "{table}");
    let row = rows.find(|r| r.starts_with(&id)).expect("a row for it");
    assert!(
        row.contains("country=PRK,KAZ category=study severity>=high"),
        "{table}"
    );

    // A test event reaches the receiver, signed with the secret printed at `add`.
    let tested = lines(&bw(&gw, api, &["subscriptions", "test", &id]).await);
    assert_eq!(tested[0]["outcome"], "delivered", "{tested:?}");
    let event_id = tested[0]["event_id"].as_str().unwrap();
    let got = receiver
        .attempts()
        .into_iter()
        .find(|a| a.event_id == event_id)
        .expect("the test event arrived");
    assert_eq!(got.path, "/hook");
    assert!(borderwatch_model::verify_signature(
        secret.as_bytes(),
        &got.body,
        &got.signature
    ));

    // The read token does not read subscriptions: the API's own message, exit 1.
    let refused = bw(&gw, Tokens::ReadOnly, &["subscriptions", "list"]).await;
    assert_eq!(refused.status.code(), Some(1));
    let e = stderr(&refused);
    assert!(
        e.contains("401") && e.contains("subscriptions and their delivery logs name webhooks"),
        "{e}"
    );
    // A wrong API token neither.
    let wrong = bw(&gw, Tokens::Api("wrong"), &["subscriptions", "rm", &id]).await;
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("BORDERWATCH_API_TOKEN"),
        "{}",
        stderr(&wrong)
    );

    let removed = ok(&bw(&gw, api, &["subscriptions", "rm", &id, "-o", "table"]).await);
    assert_eq!(removed.trim(), format!("deleted {id}"));
    let listed = lines(&bw(&gw, api, &["subscriptions", "list"]).await);
    assert!(listed.iter().all(|s| s["id"] != id.as_str()), "{listed:?}");
    let gone = bw(&gw, api, &["subscriptions", "test", &id]).await;
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        stderr(&gone).contains(&format!("no subscription {id}")),
        "{}",
        stderr(&gone)
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_take_matchers_kinds_and_email_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let gw = running.gateway_url().unwrap();
    let receiver = ScriptedReceiver::start(Behaviour::default()).await;
    let api = Tokens::Api(API_TOKEN);

    // Matchers (a regex with a comma stays whole) and kinds, repeated or comma-separated.
    let hook = receiver.url("hook");
    let added = lines(
        &bw(
            &gw,
            api,
            &[
                "subscriptions",
                "add",
                "--url",
                &hook,
                "--matcher",
                "country=~\"PRK|CHN\"",
                "--matcher",
                "category!~\"work,study\"",
                "--kind",
                "surge,revision",
                "--kind",
                "missing",
            ],
        )
        .await,
    );
    let id = added[0]["id"].as_str().unwrap().to_string();
    let listed = lines(&bw(&gw, api, &["subscriptions", "list"]).await);
    let mine = listed
        .iter()
        .find(|s| s["id"] == id.as_str())
        .expect("listed");
    assert_eq!(
        mine["matchers"],
        serde_json::json!(["country=~\"PRK|CHN\"", "category!~\"work,study\""]),
        "{mine}"
    );
    assert_eq!(
        mine["kinds"],
        serde_json::json!(["surge", "revision", "missing"]),
        "{mine}"
    );
    let table = ok(&bw(&gw, api, &["subscriptions", "list", "-o", "table"]).await);
    let row = table.lines().find(|r| r.starts_with(&id)).expect("a row");
    assert!(
        row.contains("country=~\"PRK|CHN\" category!~\"work,study\" kinds=surge,revision,missing"),
        "{table}"
    );

    // A matcher this side cannot read: refused before anything is sent, exit 1, and no
    // subscription made.
    let before = listed.len();
    for (matcher, says) in [
        ("colour=red", "`colour` is not a matcher name"),
        ("country=~\"(PRK\"", "is not a valid regex"),
    ] {
        let bad = bw(
            &gw,
            api,
            &["subscriptions", "add", "--url", &hook, "--matcher", matcher],
        )
        .await;
        assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
        assert!(stderr(&bad).contains(says), "{matcher}: {}", stderr(&bad));
        assert!(
            !stderr(&bad).contains("gateway answered"),
            "{}",
            stderr(&bad)
        );
    }
    let listed = lines(&bw(&gw, api, &["subscriptions", "list"]).await);
    assert_eq!(listed.len(), before, "{listed:?}");

    // An email subscription: format email, a mailto: target, no secret made up for it.
    let added = lines(
        &bw(
            &gw,
            api,
            &[
                "subscriptions",
                "add",
                "--email",
                "desk@example.org,ops@example.org",
                "--country",
                "PRK",
            ],
        )
        .await,
    );
    let mail = &added[0];
    let mail_id = mail["id"].as_str().unwrap().to_string();
    assert_eq!(mail["format"], "email", "{mail}");
    assert!(mail["webhook"].get("secret").is_none(), "{mail}");
    let listed = lines(&bw(&gw, api, &["subscriptions", "list"]).await);
    let mine = listed
        .iter()
        .find(|s| s["id"] == mail_id.as_str())
        .expect("listed");
    assert_eq!(mine["format"], "email", "{mine}");
    assert!(
        mine["webhook"]["url"]
            .as_str()
            .unwrap()
            .starts_with("mailto:"),
        "{mine}"
    );
    let table = ok(&bw(&gw, api, &["subscriptions", "list", "-o", "table"]).await);
    let row = table
        .lines()
        .find(|r| r.starts_with(&mail_id))
        .expect("a row");
    assert!(row.contains("mailto:") && row.contains("email"), "{table}");
    // An address notify would not send to is named, exit 1.
    let bad = bw(
        &gw,
        api,
        &[
            "subscriptions",
            "add",
            "--email",
            "desk@example.org?bcc=x@example.org",
        ],
    )
    .await;
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--email"), "{}", stderr(&bad));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_add_list_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let gw = running.gateway_url().unwrap();
    let api = Tokens::Api(API_TOKEN);

    let before = time::OffsetDateTime::now_utc();
    let added = lines(
        &bw(
            &gw,
            api,
            &[
                "silences",
                "add",
                "country=PRK",
                "category=~\"study|work\"",
                "--duration",
                "2h",
                "--comment",
                "known story",
            ],
        )
        .await,
    );
    let sil = &added[0];
    let id = sil["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sil-"), "{sil}");
    let until = time::OffsetDateTime::parse(
        sil["until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ahead = until - before;
    assert!(
        ahead > time::Duration::minutes(119) && ahead < time::Duration::minutes(121),
        "{sil}"
    );

    // Silences are reads: the read token lists them.
    let listed = lines(&bw(&gw, Tokens::ReadOnly, &["silences", "list"]).await);
    let mine = listed
        .iter()
        .find(|s| s["id"] == id.as_str())
        .expect("listed");
    assert_eq!(mine["active"], true, "{mine}");
    let table = ok(&bw(&gw, api, &["silences", "list", "-o", "table"]).await);
    let row = table.lines().find(|r| r.starts_with(&id)).expect("a row");
    assert!(
        row.contains("country=\"PRK\" category=~\"study|work\"")
            && row.contains("active")
            && row.ends_with("known story"),
        "{table}"
    );

    // A matcher this side cannot read is named before anything is sent; what the gateway
    // refuses comes back with its message.
    let bad = bw(&gw, api, &["silences", "add", "colour=red"]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("`colour` is not a matcher name"),
        "{}",
        stderr(&bad)
    );
    let past = bw(
        &gw,
        api,
        &[
            "silences",
            "add",
            "country=PRK",
            "--ends",
            "2001-01-01T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(past.status.code(), Some(1));
    assert!(
        stderr(&past).contains("is in the past"),
        "{}",
        stderr(&past)
    );

    let expired = lines(&bw(&gw, api, &["silences", "expire", &id]).await);
    assert_eq!(expired[0]["id"], id.as_str());
    let listed = lines(&bw(&gw, api, &["silences", "list"]).await);
    assert!(listed.iter().all(|s| s["id"] != id.as_str()), "{listed:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surges_follow_the_pages_and_take_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let gw = running.gateway_url().unwrap();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{gw}/v1/ingest?format=generic"))
        .bearer_auth(API_TOKEN)
        .header("content-type", "text/csv")
        .body(borderwatch_ingest::demo::demo_nk_only_csv())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    // Every surge of the release, as the API lists them in one page.
    let deadline = Instant::now() + Duration::from_secs(60);
    let all: Vec<Value> = loop {
        let page: Value = http
            .get(format!("{gw}/v1/surges?limit=10000"))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let surges = page["surges"].as_array().unwrap().clone();
        if surges.len() >= 3 {
            // Analytics publishes a release's surges together; give stragglers a moment.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let again: Value = http
                .get(format!("{gw}/v1/surges?limit=10000"))
                .bearer_auth(READ_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if again["surges"].as_array().unwrap().len() == surges.len() {
                break surges;
            }
        }
        assert!(Instant::now() < deadline, "no surges: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ids = |v: &[Value]| v.iter().map(|s| s["id"].clone()).collect::<Vec<_>>();

    // Two at a time, page after page: the same surges in the same order. No `-o`: stdout is
    // a pipe, so JSON.
    let paged = lines(&bw(&gw, Tokens::ReadOnly, &["surges", "--page-size", "2"]).await);
    assert_eq!(ids(&paged), ids(&all));
    let two = lines(
        &bw(
            &gw,
            Tokens::ReadOnly,
            &[
                "surges",
                "--limit",
                "3",
                "--page-size",
                "2",
                "--output",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(ids(&two), ids(&all)[..3]);

    let headline = lines(
        &bw(
            &gw,
            Tokens::ReadOnly,
            &[
                "surges",
                "--country",
                "KP",
                "--category",
                "study",
                "--severity",
                "critical",
                "--since",
                "2024-Q3",
            ],
        )
        .await,
    );
    assert!(!headline.is_empty());
    assert!(
        headline.iter().all(|s| s["country"] == "PRK"
            && s["category"] == "study"
            && s["severity"] == "critical"),
        "{headline:?}"
    );
    assert!(
        headline
            .iter()
            .any(|s| s["period"] == "2024-Q3" && s["value"] == 3765),
        "{headline:?}"
    );
    let table = ok(&bw(
        &gw,
        Tokens::ReadOnly,
        &["surges", "-o", "table", "--limit", "1"],
    )
    .await);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].starts_with("ID ") && rows[0].ends_with("EXPLANATION"),
        "{table}"
    );
    assert!(
        rows[1].starts_with(all[0]["id"].as_str().unwrap()),
        "{table}"
    );

    // The gateway's message for a bad filter, exit 1.
    let bad = bw(&gw, Tokens::ReadOnly, &["surges", "--since", "yesterday"]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("`since=yesterday`"),
        "{}",
        stderr(&bad)
    );
    running.shutdown().await;
}

/// Nothing listens: one line naming the URL and the cause, exit 2.
#[tokio::test]
async fn an_unreachable_gateway_exits_2_with_one_line() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gw = format!("http://127.0.0.1:{port}");
    let out = bw(&gw, Tokens::Api(API_TOKEN), &["surges"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains(&format!("cannot reach the gateway at {gw}/v1/surges"))
            && e.to_lowercase().contains("connection refused"),
        "{e}"
    );
    assert!(out.stdout.is_empty());
}
