//! Reading the reference files of `testdata/` (at the repository root), for the parity tests
//! and the quality benchmark. A missing file is a failure that names it, never a skip.

// Each test or bench that includes this module uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// `testdata/<sub>`, at the repository root.
pub(crate) fn data_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(sub)
}

/// The text of `testdata/<sub>/<rel>`.
pub(crate) fn read(sub: &str, rel: &str) -> String {
    let path = data_dir(sub).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reference file {} is missing ({e}): testdata/ is part of the repository",
            path.display()
        )
    })
}

/// A CSV of `testdata/<sub>/<rel>` as its header and rows (quoted fields allowed).
pub(crate) fn read_csv(sub: &str, rel: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = read(sub, rel);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap_or_else(|e| panic!("{sub}/{rel}: no CSV header ({e})"))
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("{sub}/{rel}: bad CSV ({e})"))
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    (header, rows)
}
