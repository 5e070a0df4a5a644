//! The binary as a user runs it: `borderwatch analyze` offline and `borderwatch import`
//! against a running gateway. (Being an integration test, this also makes `cargo test`
//! build the binary that the process-level tests in `tests/` start.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_borderwatch");

#[test]
fn analyze_prints_the_headline_surge_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nk.csv");
    std::fs::write(&file, borderwatch_ingest::demo::demo_nk_only_csv()).unwrap();
    let out = Command::new(BIN)
        .args(["analyze", file.to_str().unwrap(), "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    let headline = events
        .iter()
        .find(|e| e["category"] == "study" && e["period"] == "2024-Q3")
        .expect("the headline surge");
    assert_eq!(headline["value"], 3765);
    assert_eq!(headline["severity"], "critical");
    assert!(
        headline["explanation"]
            .as_str()
            .unwrap()
            .contains("more than in the whole of 2019 (3,200); the highest quarter on record")
    );
}

fn nk_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nk.csv");
    std::fs::write(&file, borderwatch_ingest::demo::demo_nk_only_csv()).unwrap();
    let path = file.to_str().unwrap().to_string();
    (dir, path)
}

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("analyze")
        .args(args)
        .output()
        .unwrap()
}

fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn analyze_all_prints_one_row_per_series_period_and_detector() {
    let (_dir, file) = nk_file();
    let rows = json_lines(&analyze(&[&file, "--all"]));
    assert!(!rows.is_empty());
    let mut per_period: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in &rows {
        for field in [
            "source",
            "country",
            "category",
            "period",
            "value",
            "detector",
            "expected",
            "upper_bound",
            "alarm",
            "p_value",
        ] {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
        assert!(r["alarm"].is_boolean());
        let key = format!(
            "{}/{}/{}/{}",
            r["source"], r["country"], r["category"], r["period"]
        );
        per_period
            .entry(key)
            .or_default()
            .push(r["detector"].as_str().unwrap().to_string());
    }
    let default = [
        "exceeds_prior_year",
        "record_high",
        "year_over_year",
        "farrington",
        "ears_c2",
        "cusum",
        "fall",
    ];
    for (key, detectors) in &per_period {
        assert_eq!(detectors, &default, "{key}");
    }
    let headline = rows
        .iter()
        .find(|r| {
            r["category"] == "study" && r["period"] == "2024-Q3" && r["detector"] == "record_high"
        })
        .expect("the headline period");
    assert_eq!(headline["value"], 3765);
    assert_eq!(headline["alarm"], true);
}

#[test]
fn analyze_runs_the_named_detectors_with_the_given_settings() {
    let (_dir, file) = nk_file();
    let with_bounds = |b: &str| {
        let set = format!("farrington.b={b}");
        let rows = json_lines(&analyze(&[
            &file,
            "--all",
            "--detectors",
            "farrington",
            "--set",
            &set,
            "--set",
            "farrington.w=1",
        ]));
        assert!(rows.iter().all(|r| r["detector"] == "farrington"));
        rows.iter().filter(|r| !r["upper_bound"].is_null()).count()
    };
    let (b2, b3) = (with_bounds("2"), with_bounds("3"));
    assert!(b3 > 0, "farrington evaluates the long series");
    assert!(b2 > b3, "b=2 needs a year less history: {b2} vs {b3}");
}

#[test]
fn analyze_rejects_an_unknown_setting_by_name() {
    let (_dir, file) = nk_file();
    let out = analyze(&[&file, "--set", "farrington.bogus=1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`farrington.bogus` is not a setting"),
        "{stderr}"
    );
    let out = analyze(&[&file, "--set", "farrington.b=three"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("setting `farrington.b`: `three`"),
        "{stderr}"
    );
}

#[test]
fn analyze_names_the_file_when_it_cannot_be_read() {
    let out = Command::new(BIN)
        .args(["analyze", "/no/such/file.csv"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/file.csv"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_sends_a_file_to_the_gateway_and_reports_rejected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let running = borderwatch::start(borderwatch::UpOptions::embedded(dir.path().join("data")))
        .await
        .unwrap();
    let file = dir.path().join("upload.csv");
    std::fs::write(
        &file,
        "source,period,country,category,count\nfsb,2024-Q1,PRK,study,38\nfsb,2024-Q2,Atlantis,study,5\n",
    )
    .unwrap();
    let gateway = running.gateway_url().unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["import", file.to_str().unwrap(), "--gateway", &gateway])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 rows accepted, 1 rejected"), "{stdout}");
    assert!(stdout.contains("row 3 column country"), "{stdout}");
    running.shutdown().await;
}

async fn import_cmd(file: &std::path::Path, gateway: &str) -> std::process::Output {
    tokio::process::Command::new(BIN)
        .args(["import", file.to_str().unwrap(), "--gateway", gateway])
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_prints_a_summary_with_the_first_rejected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let running = borderwatch::start(borderwatch::UpOptions::embedded(dir.path().join("data")))
        .await
        .unwrap();
    let gateway = running.gateway_url().unwrap();
    let mut csv = String::from("source,period,country,category,count\n");
    csv.push_str("fsb,2024-Q1,PRK,study,38\nfsb,2024-Q2,PRK,study,41\n");
    for i in 0..7 {
        csv.push_str(&format!("fsb,2024-Q{},Atlantis{i},study,5\n", 1 + i % 4));
    }
    let file = dir.path().join("summary.csv");
    std::fs::write(&file, &csv).unwrap();

    let out = import_cmd(&file, &gateway).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains(": release rel-"), "{stdout}");
    assert!(
        lines[0].ends_with("2 rows accepted, 7 rejected, 2 new observations"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("source fsb, format generic")
            && lines[1].contains("periods 2024-Q1 to 2024-Q2"),
        "{stdout}"
    );
    assert_eq!(lines[2], "  rejected rows (first 5 of 7):", "{stdout}");
    assert!(
        lines[3].starts_with("    row 4 column country value \"Atlantis0\": "),
        "{stdout}"
    );
    assert!(lines[7].starts_with("    row 8 column country"), "{stdout}");
    assert!(lines[8].contains("… and 2 more rejected rows"), "{stdout}");
    // Not a terminal: no progress bar anywhere.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("sending ["), "{stderr}");

    let again = import_cmd(&file, &gateway).await;
    let stdout = String::from_utf8(again.stdout).unwrap();
    assert!(
        stdout.contains("0 new observations (the same file was ingested before"),
        "{stdout}"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_limit_is_refused_with_413_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = borderwatch::UpOptions::embedded(dir.path().join("data"));
    opts.gateway.max_body_bytes = 1000;
    let running = borderwatch::start(opts).await.unwrap();
    let gateway = running.gateway_url().unwrap();
    let mut csv = String::from("source,period,country,category,count\n");
    for y in 1900..2100 {
        csv.push_str(&format!("fsb,{y},PRK,study,1\n"));
    }
    assert!(csv.len() > 1000);
    let file = dir.path().join("big.csv");
    std::fs::write(&file, &csv).unwrap();

    let out = import_cmd(&file, &gateway).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("413") && stderr.contains("larger than 1000 bytes"),
        "{stderr}"
    );

    let resp = reqwest::Client::new()
        .post(format!("{gateway}/v1/ingest"))
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-upload-bytes"),
        "{body}"
    );
    // Under the limit, the same gateway takes it.
    std::fs::write(&file, &csv[..900]).unwrap();
    let out = import_cmd(&file, &gateway).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_a_sources_file_ingests_a_dropped_file() {
    let dir = tempfile::tempdir().unwrap();
    let drop_dir = dir.path().join("incoming");
    std::fs::create_dir(&drop_dir).unwrap();
    std::fs::write(
        drop_dir.join("nk.csv"),
        "period,country,category,count\n2024-Q3,PRK,study,3765\n",
    )
    .unwrap();
    let sources = dir.path().join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            "[[source]]\nname = \"fsb\"\ndir = {:?}\nevery = \"1h\"\n",
            drop_dir.display().to_string()
        ),
    )
    .unwrap();
    let mut opts = borderwatch::UpOptions::embedded(dir.path().join("data"));
    opts.sources = Some(sources);
    let running = borderwatch::start(opts).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let keys = running
            .bus
            .kv_keys(borderwatch_bus::names::RELEASES_BUCKET)
            .await
            .unwrap();
        if keys.len() == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing ingested");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    running.shutdown().await;
}

#[tokio::test]
async fn a_bad_sources_file_stops_start_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("sources.toml");
    std::fs::write(&sources, "[[source]]\nname = \"fsb\"\nevery = \"1h\"\n").unwrap();
    let mut opts = borderwatch::UpOptions::embedded(dir.path().join("data"));
    opts.sources = Some(sources);
    let e = borderwatch::start(opts).await.unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("sources.toml") && msg.contains("exactly one of `url` and `dir`"),
        "{msg}"
    );
}

/// `--live` runs the file as the replay does: each series' newest period is the release's
/// live edge, so on the North Korea file cut at 2024-Q3 the headline is the only news, while
/// without the flag earlier periods are reported too.
#[test]
fn analyze_live_reports_only_each_series_newest_period() {
    let csv: String = borderwatch_ingest::demo::demo_nk_only_csv()
        .lines()
        .enumerate()
        .filter(|(n, line)| *n == 0 || line.split(',').nth(1).is_some_and(|p| p <= "2024-Q3"))
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nk-2024q3.csv");
    std::fs::write(&file, csv).unwrap();
    let file = file.to_str().unwrap();

    let live = json_lines(&analyze(&[file, "--live", "--output", "json"]));
    assert!(!live.is_empty(), "the headline is live");
    for e in &live {
        assert_eq!(e["period"], "2024-Q3", "{e}");
        assert_eq!(e["historical"], false, "{e}");
    }
    let headline = live
        .iter()
        .find(|e| e["source"] == "fsb" && e["country"] == "PRK" && e["category"] == "study")
        .expect("the headline surge");
    assert_eq!(headline["severity"], "critical");
    assert!(
        headline["explanation"]
            .as_str()
            .unwrap()
            .contains("more than in the whole of 2019 (3,200)"),
        "{headline}"
    );

    let every = json_lines(&analyze(&[file, "--output", "json"]));
    assert!(
        every.iter().any(|e| e["period"] != "2024-Q3"),
        "without --live earlier periods are reported: {every:?}"
    );
    assert!(every.len() > live.len());

    // The flag also comes from BORDERWATCH_LIVE, like the other analyze flags.
    let out = Command::new(BIN)
        .args(["analyze", file, "--output", "json"])
        .env("BORDERWATCH_LIVE", "true")
        .output()
        .unwrap();
    let ids = |events: &[serde_json::Value]| -> Vec<String> {
        events.iter().map(|e| e["id"].to_string()).collect()
    };
    assert_eq!(ids(&json_lines(&out)), ids(&live));
}

/// Variables deliberately shared by flags of several commands whose help or defaults differ,
/// each with why it means the same everywhere. Flags that are alike in everything (one
/// flattened struct, such as `--nats`) need no entry.
const SHARED_VARIABLES: &[(&str, &str)] = &[
    (
        "BORDERWATCH_NATS",
        "the NATS servers of one deployment, for every role and tool",
    ),
    (
        "BORDERWATCH_DATA",
        "the data directory of `up`'s in-process bus, which the tools open",
    ),
    (
        "BORDERWATCH_CONFIG",
        "the one configuration file every role reads (analyze: [analytics])",
    ),
    (
        "BORDERWATCH_HTTP",
        "the gateway's listening address, in `up` or alone",
    ),
    (
        "BORDERWATCH_HEALTH",
        "the health-probe address of a role, one role per process",
    ),
    (
        "BORDERWATCH_STARTUP_TIMEOUT",
        "how long a role retries NATS at start",
    ),
    (
        "BORDERWATCH_STREAM_REPLICAS",
        "copies of each stream and bucket of one deployment",
    ),
    (
        "BORDERWATCH_PUBLIC_URL",
        "the gateway's public base URL, for links in what is sent",
    ),
    (
        "BORDERWATCH_WEBHOOK_ALLOW_PRIVATE",
        "whether webhooks may have non-public addresses",
    ),
    (
        "BORDERWATCH_MAX_UPLOAD_BYTES",
        "the gateway's upload limit, in `up` or alone",
    ),
    (
        "BORDERWATCH_SOURCES",
        "the sources file ingest polls, in `up` or alone",
    ),
    (
        "BORDERWATCH_API_TOKEN",
        "the deployment's API token: required by the gateway, sent by import",
    ),
    (
        "BORDERWATCH_FORMAT",
        "the format of the input file, for import and analyze alike",
    ),
    (
        "BORDERWATCH_GATEWAY",
        "the gateway's base URL, for import and the client",
    ),
    (
        "BORDERWATCH_OUTPUT",
        "json or table, for analyze and the client",
    ),
];

/// A user's environment for one command must never change another's meaning: every
/// variable that two flags share either names flags alike in everything (long name, help,
/// values, defaults), or is listed in [`SHARED_VARIABLES`] with the reason it means the
/// same to each. (The client's `--format`, `--source` and `--timeout` once took
/// `import`'s and `probe`'s variables: `BORDERWATCH_FORMAT=generic` set for `import` made
/// `subscriptions add` refuse it.)
#[test]
fn no_environment_variable_is_shared_by_flags_of_different_meanings() {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    /// What a flag means, as far as clap can tell.
    #[derive(Debug, PartialEq)]
    struct Meaning {
        long: Option<String>,
        help: String,
        values: Vec<String>,
        defaults: Vec<String>,
    }
    fn walk(
        cmd: &clap::Command,
        path: &str,
        by_var: &mut BTreeMap<String, Vec<(String, Meaning)>>,
    ) {
        for arg in cmd.get_arguments() {
            let Some(var) = arg.get_env() else { continue };
            let meaning = Meaning {
                long: arg.get_long().map(str::to_string),
                help: arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
                values: arg
                    .get_possible_values()
                    .iter()
                    .map(|v| v.get_name().to_string())
                    .collect(),
                defaults: arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect(),
            };
            let flag = format!(
                "{path} --{}",
                arg.get_long().unwrap_or(arg.get_id().as_str())
            );
            by_var
                .entry(var.to_string_lossy().into_owned())
                .or_default()
                .push((flag, meaning));
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), by_var);
        }
    }
    let mut by_var = BTreeMap::new();
    walk(&borderwatch::Cli::command(), "borderwatch", &mut by_var);
    assert!(by_var.len() > 30, "only {} variables found", by_var.len());

    let mut clashes = Vec::new();
    for (var, flags) in &by_var {
        let first = &flags[0].1;
        if flags.iter().all(|(_, m)| m == first) {
            continue;
        }
        // A listed variable may differ in help and defaults, never in the flag it is.
        let listed = SHARED_VARIABLES.iter().any(|(v, _)| v == var);
        if listed && flags.iter().all(|(_, m)| m.long == first.long) {
            continue;
        }
        let names: Vec<&str> = flags.iter().map(|(f, _)| f.as_str()).collect();
        clashes.push(format!("{var}: {}", names.join(", ")));
    }
    assert!(
        clashes.is_empty(),
        "variables shared by flags that differ (give one a distinct variable, or list it in SHARED_VARIABLES with why it means the same):\n{}",
        clashes.join("\n")
    );
    // The list holds nothing stale: each entry is still shared.
    for (var, _) in SHARED_VARIABLES {
        assert!(
            by_var.get(*var).is_some_and(|f| f.len() > 1),
            "{var} is no longer shared"
        );
    }
}
