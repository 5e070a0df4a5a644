//! `borderwatch analyze` on a file with nothing to analyse fails and says why (issue 13: a
//! header without data rows printed nothing and exited 0, as a file without surges does).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_borderwatch");

fn analyze(contents: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("figures.csv");
    std::fs::write(&file, contents).unwrap();
    Command::new(BIN)
        .args(["analyze", file.to_str().unwrap(), "--format", "generic"])
        .output()
        .unwrap()
}

#[test]
fn a_header_without_data_rows_exits_non_zero_and_says_so() {
    let out = analyze("source,period,country,category,count\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no data rows"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_file_of_rejected_rows_only_exits_non_zero_and_says_so() {
    let out = analyze("source,period,country,category,count\nfsb,2024-Q1,Atlantis,work,1\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("rejected row 2 column country"), "{stderr}");
    assert!(stderr.contains("all 1 data rows were rejected"), "{stderr}");
}
