//! Test harness for borderwatch's end-to-end tests: roles as OS processes (`process`) and
//! surge events fed straight to notify (`surges`); the scripted webhook receiver that records
//! every POST with its exact bytes comes from `borderwatch-test-support`, re-exported here.

pub mod process;
pub mod surges;

pub use borderwatch_test_support::{Attempt, Behaviour, ScriptedReceiver};
pub use process::{RoleProcess, built_borderwatch_bin};

/// The demo's North Korea figures as a generic CSV, the input of the headline case.
pub fn headline_csv() -> String {
    borderwatch_ingest::demo::demo_nk_only_csv()
}

/// The headline figures up to `last` (a quarter such as `2024-Q2`), as the FSB had published
/// them by then: replaying releases one period at a time.
pub fn headline_csv_until(last: &str) -> String {
    let last: borderwatch_model::Period = last.parse().expect("a period");
    let csv = headline_csv();
    let mut lines = csv.lines();
    let mut out = format!("{}\n", lines.next().expect("a header"));
    for line in lines {
        let period: borderwatch_model::Period = line
            .split(',')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a period in the second column");
        if period <= last {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The `borderwatch` binary that `cargo test` built beside this test (the cli crate's own
/// integration tests make cargo build it).
pub fn borderwatch_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join("borderwatch");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p borderwatch` first)",
        bin.display()
    );
    bin
}
