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
