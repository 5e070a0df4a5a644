//! Fuzzing every parser entry point (issue 13): format detection, the generic reader (whole
//! and streamed), each native format's sniffer and parser, the period parser and the count
//! parsers. Every input must give `Ok` or a clean `Err`: no panic, no abort, within a time
//! and memory budget per case.
//!
//! cargo-fuzz needs a nightly toolchain and an install CI does not have, so this is proptest:
//! arbitrary bytes, byte-level mutations of the seed files, and mutations that know the
//! formats (a cell replaced by a huge, negative or odd value, a line repeated, deep XML
//! nesting, workbooks with cells far out, ods files declaring huge repeated ranges).
//!
//! The memory budget is the growth of the process's peak resident size over one case (cases
//! run one at a time); `.ci/run` also runs the file under `prlimit --as`, so that an
//! allocation far past the budget fails there instead of taking the machine.
//!
//! The corpus is `crates/ingest/fuzz/corpus/<target>/`: small seed files, and every input
//! that once crashed a parser (kept as a regression). Each test runs `PROPTEST_CASES` cases
//! (see [`cases`]); to fuzz longer:
//! `PROPTEST_CASES=20000 cargo test --release -p borderwatch-ingest --test fuzz`. A failing
//! case is shrunk and written to `$CARGO_TARGET_TMPDIR/fuzz-failures/`: fix the parser and
//! copy the file into the corpus.

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use borderwatch_ingest::format::{Options, SNIFF_BYTES, Sniff};
use borderwatch_ingest::rows::MAX_COUNT;
use borderwatch_ingest::{
    FORMATS, IngestError, ParseLimits, Parsed, ReadOptions, decode_text, formats, parse,
    parse_generic_reader,
};
use borderwatch_model::Period;
use proptest::prelude::*;

mod ods_support;
use ods_support::ods;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

// ---- the budget of one case ------------------------------------------------------------

/// The most one case may take. A linear parser of most of these small inputs takes
/// milliseconds, but a workbook of under 1 KB can legitimately declare a sheet at the caps
/// (`MAX_SHEET_ROWS`, `MAX_SHEET_CELLS`: a row repeated 600,000 times is within them), and a
/// workbook case reads it seven times (three detections, `auto`, three formats). Measured on
/// such a case found by this fuzzer (2026-12-03, debug build, an idle 2-core machine): 17 s,
/// 2.4 s per pass; it failed the earlier 20 s cap in CI. So the cap leaves room for
/// cap-bound work in a debug build on a busy machine; an unbounded blow-up still exceeds it.
const TIME_CAP: Duration = Duration::from_secs(60);
/// The most memory one case may add to the process's peak resident size.
const MEMORY_CAP_KIB: u64 = 768 << 10;

/// Cases run one at a time, so that the process's peak resident size is one case's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A line of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`); 0 where there is none.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak resident size to the current one (Linux: `5` to `clear_refs`); false
/// where that cannot be done, and the memory check is skipped.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `check` on `bytes` within the budget: a panic, a broken invariant, too much time or
/// too much memory is a failure naming the target.
fn within_budget(
    target: &str,
    bytes: &[u8],
    check: fn(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let metered = reset_peak();
    let before = status_kib("VmRSS");
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| check(bytes)));
    let took = start.elapsed();
    let peak = status_kib("VmHWM").saturating_sub(before);
    let what = format!("{target} on {} bytes", bytes.len());
    if std::env::var_os("FUZZ_VERBOSE").is_some() {
        eprintln!(
            "{what}: {took:?}, {} KiB",
            status_kib("VmHWM").saturating_sub(before)
        );
    }
    match outcome {
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(format!("{what}: panicked: {message}"));
        }
        Ok(Err(broken)) => return Err(format!("{what}: {broken}")),
        Ok(Ok(())) => {}
    }
    if took > TIME_CAP {
        return Err(format!("{what}: took {took:?}, more than {TIME_CAP:?}"));
    }
    if metered && peak > MEMORY_CAP_KIB {
        return Err(format!(
            "{what}: the process grew {} MiB, more than {} MiB",
            peak >> 10,
            MEMORY_CAP_KIB >> 10
        ));
    }
    Ok(())
}

// ---- what every answer must be ---------------------------------------------------------

/// A parse's result: figures in range and readable back, rejected rows that say why, or an
/// error with a code and a message.
fn sound(result: Result<Parsed, IngestError>) -> Result<(), String> {
    let parsed = match result {
        Ok(p) => p,
        Err(e) => {
            let (code, message) = (e.code(), e.to_string());
            if code.is_empty() || message.trim().is_empty() {
                return Err(format!("an error without a code or a message: {e:?}"));
            }
            return Ok(());
        }
    };
    for obs in &parsed.observations {
        if !obs.period.in_years() || obs.count > MAX_COUNT {
            return Err(format!("kept a figure out of range: {obs:?}"));
        }
        if obs.period.to_string().parse::<Period>() != Ok(obs.period) {
            return Err(format!("kept a period that does not read back: {obs:?}"));
        }
        if obs.source.is_empty() || obs.category.is_empty() {
            return Err(format!(
                "kept a figure without a source or category: {obs:?}"
            ));
        }
    }
    if (parsed.rejected.len() as u64) > parsed.rejected_total {
        return Err(format!(
            "{} rejected rows listed but {} counted",
            parsed.rejected.len(),
            parsed.rejected_total
        ));
    }
    if let Some(r) = parsed.rejected.iter().find(|r| r.reason.trim().is_empty()) {
        return Err(format!("a rejected row without a reason: {r:?}"));
    }
    Ok(())
}

fn options() -> Options<'static> {
    Options {
        source: Some("fuzz"),
        limits: ParseLimits::default(),
    }
}

/// Detection (with and without a file name), then the detected format's parse.
fn check_detect(bytes: &[u8]) -> Result<(), String> {
    for name in [None, Some("upload.csv"), Some("upload.xlsx")] {
        match formats::detect(bytes, name) {
            Ok(f) if !FORMATS.iter().any(|g| g.name == f.name) => {
                return Err(format!("detected an unlisted format {}", f.name));
            }
            Ok(_) => {}
            Err(e) => sound(Err(e))?,
        }
    }
    sound(parse("auto", bytes, None))
}

/// One format's sniffer and parser, directly.
fn check_format(name: &str, bytes: &[u8]) -> Result<(), String> {
    let format = FORMATS
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| format!("no format {name}"))?;
    let head = borderwatch_ingest::decode::decode_head(&bytes[..bytes.len().min(SNIFF_BYTES)]);
    let _ = (format.sniff)(&Sniff {
        bytes,
        text_head: head.as_deref(),
        file_name: None,
    });
    sound((format.parse)(bytes, &options()))
}

/// The generic reader whole, and streamed in small pieces: both sound, and the same rows.
fn check_generic(bytes: &[u8]) -> Result<(), String> {
    let whole = parse("generic", bytes, Some("fuzz"));
    let mut kept = Vec::new();
    let streamed = parse_generic_reader(
        bytes,
        Some("fuzz"),
        ParseLimits::default(),
        ReadOptions {
            chunk_bytes: 7,
            batch_rows: 3,
        },
        |batch| {
            kept.extend(batch);
            Ok(())
        },
    )
    .map(|mut p| {
        p.observations = std::mem::take(&mut kept);
        p
    });
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) if a != b => {
            return Err(format!("whole {a:?} but streamed {b:?}"));
        }
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
            return Err(format!("one way read it, the other refused it: {e}"));
        }
        _ => {}
    }
    let _ = decode_text(bytes);
    sound(streamed)?;
    sound(whole)
}

macro_rules! format_check {
    ($name:literal) => {
        |bytes: &[u8]| check_format($name, bytes)
    };
}

/// The period parser: what it reads prints back as itself; through a file, what is kept
/// lies in [`Period::YEARS`].
fn check_period(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(p) = text.parse::<Period>()
        && p.to_string().parse::<Period>() != Ok(p)
    {
        return Err(format!("`{text}` read as {p:?}, which does not read back"));
    }
    let file = format!(
        "source,period,country,category,count\nfsb,{},PRK,study,1\n",
        csv_cell(&text)
    );
    sound(parse("generic", file.as_bytes(), None))
}

/// The count parsers (the generic reader's and the native formats'): a kept count is the
/// number its digits say, at most [`MAX_COUNT`].
fn check_count(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let cell = csv_cell(&text);
    let generic = format!("source,period,country,category,count\nfsb,2024-Q1,PRK,study,{cell}\n");
    let fsb = format!(
        "ENG,Trans,Type,Value,ISO_A2,ISO_A3,M49,Date\nChina,Car,In,{cell},CN,CHN,156,3/31/2010\n"
    );
    for (format, file) in [("generic", generic), ("fsb_csv", fsb)] {
        let result = parse(format, file.as_bytes(), Some("fsb"));
        if let Ok(p) = &result {
            for obs in &p.observations {
                let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                if digits.trim_start_matches('0').parse::<u64>().unwrap_or(0) != obs.count {
                    return Err(format!("{format} read `{text}` as {}", obs.count));
                }
            }
        }
        sound(result)?;
    }
    Ok(())
}

/// `text` as one CSV cell: quoted, quotes doubled.
fn csv_cell(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

// ---- targets and their corpus ----------------------------------------------------------

type Check = fn(&[u8]) -> Result<(), String>;

/// Every target: the corpus directory it reads and what it runs on each input.
const TARGETS: &[(&str, Check)] = &[
    ("detect", check_detect),
    ("generic", check_generic),
    ("fsb_csv", format_check!("fsb_csv")),
    ("emiss_sdmx", format_check!("emiss_sdmx")),
    ("ru_sheet", format_check!("ru_sheet")),
    ("cbp_csv", format_check!("cbp_csv")),
    ("ohss_csv", format_check!("ohss_csv")),
    ("ohss_xlsx", format_check!("ohss_xlsx")),
    ("wide", format_check!("wide")),
    ("period", check_period),
    ("count", check_count),
];

fn check_of(target: &str) -> Check {
    TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .unwrap_or_else(|| panic!("no target {target}"))
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// Real files too big to copy into the corpus, used as seeds where they are.
const EXTRA_SEEDS: &[(&str, &str)] = &[(
    "ru_sheet",
    "testdata/borders/mvd_migration_registration_by_country_purpose_2016.xls",
)];

/// Every seed: (target, file name, bytes), the corpus directories' files and [`EXTRA_SEEDS`].
static SEEDS: LazyLock<Vec<(String, String, Vec<u8>)>> = LazyLock::new(|| {
    let mut seeds = Vec::new();
    for (target, _) in TARGETS {
        let Ok(dir) = std::fs::read_dir(corpus_dir().join(target)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = dir.filter_map(|e| Some(e.ok()?.path())).collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            seeds.push((target.to_string(), name, bytes));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (target, path) in EXTRA_SEEDS {
        let bytes = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        seeds.push((target.to_string(), path.to_string(), bytes));
    }
    seeds
});

fn seeds_of(target: &str) -> Vec<Vec<u8>> {
    SEEDS
        .iter()
        .filter(|(t, _, _)| t == target)
        .map(|(_, _, b)| b.clone())
        .collect()
}

/// Cases per proptest: `PROPTEST_CASES` when set, else `default` (sized so that the whole
/// file takes about a minute in a debug build on two cores).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `check` under the budget on `cases` inputs drawn from `strategy`; a failure is
/// shrunk, written to `$CARGO_TARGET_TMPDIR/fuzz-failures/` and reported.
fn fuzz(target: &str, cases: u32, strategy: impl Strategy<Value = Vec<u8>>, check: Check) {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |bytes| {
        within_budget(target, &bytes, check).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        let saved = match &e {
            TestError::Fail(_, bytes) => save_failure(target, bytes),
            TestError::Abort(_) => String::new(),
        };
        panic!("{target}: {e}{saved}");
    }
}

fn save_failure(target: &str, bytes: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{:016x}", fnv(bytes)));
    match std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes)) {
        Ok(()) => format!("\n(the input is in {})", path.display()),
        Err(_) => String::new(),
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

// ---- mutations -------------------------------------------------------------------------

/// Values that have broken parsers: huge, negative, fractional, exotic digits, years out of
/// range, quotes, separators, control characters, long text.
const ODD_VALUES: &[&str] = &[
    "",
    "0",
    "-1",
    "-0",
    "+5",
    "1e3",
    "1e308",
    "NaN",
    "inf",
    "0x7f",
    "1,000",
    "1.000",
    "1 000",
    "1,00,000",
    "999999999999",
    "1000000000000",
    "1000000000001",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "٣٤٥",
    "１２",
    "0999",
    "9999-Q4",
    "2024-Q0",
    "2024-Q5",
    "2024-13",
    "2024-00",
    "-2024",
    "2024-",
    "Q3 2024",
    "31/12/2024",
    "2/30/2024",
    "0/0/0",
    "3/31/99999",
    "FY2024",
    "\"",
    "\"\"\"",
    "a\nb",
    "\r",
    "\t",
    "\0",
    "\u{feff}",
    "\u{202e}KP",
    "=HYPERLINK(\"x\")",
    "Côte d'Ivoire",
    "e1.x",
    "КНДР",
    ":",
    "n/a",
];

fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(ODD_VALUES).prop_map(str::to_string),
        1 => (1usize..20_000, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
        1 => any::<String>(),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| n.to_string()),
    ]
}

/// One change to a file.
#[derive(Debug, Clone)]
enum Edit {
    Set(Index, u8),
    Delete(Index),
    Insert(Index, u8),
    /// A byte that means something to a CSV, a JSON line or XML.
    Special(Index, u8),
    Truncate(Index),
    /// A piece of the file copied elsewhere.
    Splice(Index, usize, Index),
    /// A line repeated many times.
    RepeatLine(Index, u16),
    /// One cell of one line replaced by an odd value.
    Cell(Index, Index, String),
    /// Elements (or JSON arrays) opened `depth` deep at a point, closed or not.
    Nest(Index, u16, bool),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        2 => any::<Index>().prop_map(Edit::Delete),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Special(i, b)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), 1usize..512, any::<Index>()).prop_map(|(a, n, b)| Edit::Splice(a, n, b)),
        1 => (any::<Index>(), 2u16..3000).prop_map(|(i, n)| Edit::RepeatLine(i, n)),
        6 => (any::<Index>(), any::<Index>(), odd_value()).prop_map(|(l, c, v)| Edit::Cell(l, c, v)),
        1 => (any::<Index>(), 1u16..20_000, any::<bool>()).prop_map(|(i, d, c)| Edit::Nest(i, d, c)),
    ]
}

const SPECIAL: &[u8] = b",;\t\"\n\r{}[]<>/&=':\\";

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    if bytes.is_empty() {
        bytes.push(b'x');
    }
    let n = bytes.len();
    match edit {
        Edit::Set(i, b) => bytes[i.index(n)] = *b,
        Edit::Delete(i) => {
            bytes.remove(i.index(n));
        }
        Edit::Insert(i, b) => bytes.insert(i.index(n + 1), *b),
        Edit::Special(i, b) => {
            bytes.insert(i.index(n + 1), SPECIAL[usize::from(*b) % SPECIAL.len()])
        }
        Edit::Truncate(i) => bytes.truncate(i.index(n + 1)),
        Edit::Splice(from, len, to) => {
            let start = from.index(n);
            let piece = bytes[start..(start + len).min(n)].to_vec();
            let at = to.index(n + 1);
            bytes.splice(at..at, piece);
        }
        Edit::RepeatLine(i, times) => {
            let (start, end) = line_at(bytes, i.index(n));
            let line = bytes[start..end].to_vec();
            let at = end;
            // At most 256 KiB more: enough for a file of many rows, not a slow one to make.
            let times = usize::from(*times).min((256 << 10) / (line.len() + 1));
            let copies: Vec<u8> = (0..times).flat_map(|_| line.iter().copied()).collect();
            bytes.splice(at..at, copies);
        }
        Edit::Cell(line, cell, value) => {
            let (start, end) = line_at(bytes, line.index(n));
            let text = &bytes[start..end];
            let delimiter = [b'\t', b';', b',']
                .into_iter()
                .find(|d| text.contains(d))
                .unwrap_or(b',');
            let cells: Vec<(usize, usize)> = cells_of(text, delimiter);
            let (a, b) = cells[cell.index(cells.len())];
            bytes.splice(start + a..start + b, value.bytes());
        }
        Edit::Nest(i, depth, closed) => {
            let at = i.index(n + 1);
            let xml = bytes.iter().take(256).any(|&b| b == b'<');
            let (open, close): (&[u8], &[u8]) = if xml { (b"<a>", b"</a>") } else { (b"[", b"]") };
            let mut nest = open.repeat(usize::from(*depth));
            if *closed {
                nest.extend(close.repeat(usize::from(*depth)));
            }
            bytes.splice(at..at, nest);
        }
    }
}

/// The line around byte `at`: its start and its end (before the newline).
fn line_at(bytes: &[u8], at: usize) -> (usize, usize) {
    let start = bytes[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let end = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| at + p);
    (start, end.max(start))
}

/// The byte ranges of a line's cells, split at `delimiter` (quotes not minded: a mutation
/// may well cut one).
fn cells_of(line: &[u8], delimiter: u8) -> Vec<(usize, usize)> {
    let mut cells = Vec::new();
    let mut start = 0;
    for (i, &b) in line.iter().enumerate() {
        if b == delimiter {
            cells.push((start, i));
            start = i + 1;
        }
    }
    cells.push((start, line.len()));
    cells
}

/// A seed of `seeds`, changed by up to eight edits.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    assert!(!seeds.is_empty(), "no seeds");
    (any::<Index>(), prop::collection::vec(edit(), 0..8)).prop_map(move |(seed, edits)| {
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        bytes
    })
}

/// Mutated seeds of `target`, now and then arbitrary bytes.
fn inputs_of(target: &str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => mutated(seeds_of(target)),
        1 => prop::collection::vec(any::<u8>(), 0..4096),
    ]
}

// ---- the corpus replays ----------------------------------------------------------------

#[test]
fn every_corpus_file_is_read_cleanly_by_its_target_detection_and_every_format() {
    let mut failures = Vec::new();
    for (target, name, bytes) in SEEDS.iter() {
        let mut checks: Vec<(String, Check)> = vec![
            (target.clone(), check_of(target)),
            ("detect".into(), check_detect),
        ];
        if !matches!(target.as_str(), "period" | "count") {
            checks.push(("generic".into(), check_generic));
            for (t, check) in TARGETS
                .iter()
                .filter(|(t, _)| FORMATS.iter().any(|f| f.name == *t))
            {
                checks.push((t.to_string(), *check));
            }
        }
        for (t, check) in checks {
            if let Err(e) = within_budget(&format!("{t} ({target}/{name})"), bytes, check) {
                failures.push(e);
            }
        }
    }
    assert!(SEEDS.len() >= 20, "{} seeds", SEEDS.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_target_has_seeds() {
    for (target, _) in TARGETS {
        if *target != "detect" {
            assert!(!seeds_of(target).is_empty(), "no seeds for {target}");
        }
    }
}

// ---- the proptests ---------------------------------------------------------------------

#[test]
fn fuzz_detection_on_every_seed_mutated_and_arbitrary_bytes() {
    let all: Vec<Vec<u8>> = SEEDS.iter().map(|(_, _, b)| b.clone()).collect();
    let inputs = prop_oneof![
        4 => mutated(all),
        1 => prop::collection::vec(any::<u8>(), 0..4096),
    ];
    fuzz("detect", cases(96), inputs, check_detect);
}

#[test]
fn fuzz_generic() {
    fuzz("generic", cases(256), inputs_of("generic"), check_generic);
}

#[test]
fn fuzz_fsb_csv() {
    fuzz(
        "fsb_csv",
        cases(128),
        inputs_of("fsb_csv"),
        check_of("fsb_csv"),
    );
}

#[test]
fn fuzz_emiss_sdmx() {
    fuzz(
        "emiss_sdmx",
        cases(128),
        inputs_of("emiss_sdmx"),
        check_of("emiss_sdmx"),
    );
}

#[test]
fn fuzz_cbp_csv() {
    fuzz(
        "cbp_csv",
        cases(128),
        inputs_of("cbp_csv"),
        check_of("cbp_csv"),
    );
}

#[test]
fn fuzz_ohss_csv() {
    fuzz(
        "ohss_csv",
        cases(128),
        inputs_of("ohss_csv"),
        check_of("ohss_csv"),
    );
}

#[test]
fn fuzz_wide() {
    fuzz("wide", cases(128), inputs_of("wide"), check_of("wide"));
}

#[test]
fn fuzz_ohss_xlsx() {
    fuzz(
        "ohss_xlsx",
        cases(48),
        inputs_of("ohss_xlsx"),
        check_of("ohss_xlsx"),
    );
}

#[test]
fn fuzz_ru_sheet() {
    fuzz(
        "ru_sheet",
        cases(24),
        inputs_of("ru_sheet"),
        check_of("ru_sheet"),
    );
}

#[test]
fn fuzz_period() {
    let inputs = prop_oneof![
        2 => mutated(seeds_of("period")),
        2 => "[0-9Qq\\- ]{0,12}".prop_map(String::into_bytes),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => odd_value().prop_map(String::into_bytes),
    ];
    fuzz("period", cases(512), inputs, check_period);
}

#[test]
fn fuzz_count() {
    let inputs = prop_oneof![
        2 => mutated(seeds_of("count")),
        2 => "[0-9,. \\-+e]{0,24}".prop_map(String::into_bytes),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => odd_value().prop_map(String::into_bytes),
    ];
    fuzz("count", cases(512), inputs, check_count);
}

// ---- generated workbooks ---------------------------------------------------------------

/// A cell's place: mostly near the top left, sometimes anywhere a sheet allows.
fn place() -> impl Strategy<Value = (u32, u16)> {
    prop_oneof![
        4 => (0u32..60, 0u16..12),
        1 => (0u32..1_048_576, 0u16..16_384),
        1 => (Just(1_048_575u32), Just(16_383u16)),
    ]
}

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Number(f64),
}

fn value() -> impl Strategy<Value = Value> {
    const WORDS: &[&str] = &[
        "country",
        "Citizenship",
        "Fiscal\nYear",
        "Month",
        "Quantity",
        "туризм",
        "учёба",
        "работа",
        "частная",
        "иное",
        "всего",
        "КНДР",
        "Китай",
        "2024-Q3",
        "2024",
        "Jan 2024",
        "01 October",
        "Mexico",
        "Korea, South",
        "Detections",
        "III квартал 2024",
        "за январь - декабрь 2016 года",
    ];
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(|w| Value::Text(w.to_string())),
        2 => odd_value().prop_map(Value::Text),
        2 => (0u32..100_000).prop_map(|n| Value::Number(f64::from(n))),
        1 => any::<f64>().prop_map(Value::Number),
    ]
}

/// An xlsx of one or two sheets with cells anywhere, named as the formats look for.
fn workbook() -> impl Strategy<Value = Vec<u8>> {
    const SHEETS: &[&str] = &["Data", "Monthly Citizenship", "2-РД страны", "Detections"];
    let cells = prop::collection::vec((place(), value()), 0..40);
    (prop::sample::select(SHEETS), cells, any::<bool>()).prop_map(|(name, cells, two)| {
        let mut book = rust_xlsxwriter::Workbook::new();
        if two {
            book.add_worksheet().set_name("Notes").unwrap();
        }
        let sheet = book.add_worksheet();
        sheet.set_name(name).unwrap();
        for ((row, col), value) in cells {
            let _ = match value {
                Value::Text(t) => {
                    sheet.write_string(row, col, t.chars().take(32_000).collect::<String>())
                }
                Value::Number(n) if n.is_finite() => sheet.write_number(row, col, n),
                Value::Number(_) => sheet.write_string(row, col, "NaN"),
            };
        }
        book.save_to_buffer().unwrap()
    })
}

fn check_workbook(bytes: &[u8]) -> Result<(), String> {
    check_detect(bytes)?;
    for name in ["wide", "ru_sheet", "ohss_xlsx"] {
        check_format(name, bytes)?;
    }
    Ok(())
}

#[test]
fn fuzz_generated_xlsx_with_cells_anywhere() {
    fuzz("xlsx", cases(48), workbook(), check_workbook);
}

// ---- the corpus's spreadsheets ---------------------------------------------------------

/// Writes the corpus's generated spreadsheets again (run by hand, `--ignored`): small
/// workbooks in each spreadsheet format's layout, and the hostile ones of issue 13.
#[test]
#[ignore = "writes the corpus; run by hand after changing it"]
fn write_spreadsheet_seeds() {
    let write = |target: &str, name: &str, bytes: Vec<u8>| {
        std::fs::write(corpus_dir().join(target).join(name), bytes).unwrap();
    };
    write(
        "ohss_xlsx",
        "small.xlsx",
        sheet_of(
            "Monthly Citizenship",
            &[
                &["Fiscal\nYear", "Month", "Citizenship", "Quantity"],
                &["2024", "01 October", "Mexico", "49780"],
                &["2024", "02 November", "Korea, South", "10"],
                &["2025", "01 October", "Unknown", "20"],
            ],
        ),
    );
    write(
        "wide",
        "monthly.xlsx",
        sheet_of(
            "Detections",
            &[
                &["Detections of illegal border-crossings, monthly"],
                &[],
                &["Route", "Nationality", "2009-01", "2009-02", "2009-03"],
                &[
                    "Eastern Mediterranean route (land)",
                    "Syria",
                    "120",
                    "",
                    "310",
                ],
                &["Western Balkan route", "Afghanistan", "5", "7", "9"],
            ],
        ),
    );
    write(
        "ru_sheet",
        "mvd_like.xlsx",
        sheet_of(
            "2-РД страны",
            &[
                &["ОТДЕЛЬНЫЕ ПОКАЗАТЕЛИ МИГРАЦИОННОЙ СИТУАЦИИ В РОССИЙСКОЙ ФЕДЕРАЦИИ"],
                &["за январь - декабрь 2016 года"],
                &[],
                &[
                    "",
                    "Поставлено на миграционный учет",
                    "первично",
                    "туризм",
                    "учёба",
                    "работа",
                    "частная",
                    "иное",
                ],
                &[
                    "ВСЕГО по странам",
                    "14337084",
                    "9677910",
                    "2245217",
                    "406052",
                    "4284181",
                    "1907378",
                    "835082",
                ],
                &[
                    "Абхазия",
                    "7329",
                    "6555",
                    "591",
                    "616",
                    "613",
                    "3584",
                    "1151",
                ],
                &[
                    "Австралия",
                    "22244",
                    "21904",
                    "17177",
                    "183",
                    "1277",
                    "1211",
                    "2056",
                ],
            ],
        ),
    );
    // Issue 13, finding 1: A1 and XFD1048576 declared 17 billion cells (512 GiB).
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Data").unwrap();
    sheet.write_string(0, 0, "country").unwrap();
    sheet.write_number(1_048_575, 16_383, 1.0).unwrap();
    write(
        "wide",
        "hostile_far_cell.xlsx",
        book.save_to_buffer().unwrap(),
    );
    // An ods sheet in the wide layout padded as spreadsheet programs pad it, and ods sheets
    // whose repeats calamine expanded to hundreds of millions of cells (ods_guard.rs).
    let header = "<table:table-row>\
        <table:table-cell office:value-type=\"string\"><text:p>country</text:p></table:table-cell>\
        <table:table-cell office:value-type=\"string\"><text:p>2024-01</text:p></table:table-cell>\
        <table:table-cell table:number-columns-repeated=\"1022\"/></table:table-row>";
    let figures = "<table:table-row>\
        <table:table-cell office:value-type=\"string\"><text:p>Syria</text:p></table:table-cell>\
        <table:table-cell office:value-type=\"float\" office:value=\"120\"><text:p>120</text:p>\
        </table:table-cell><table:table-cell table:number-columns-repeated=\"1022\"/>\
        </table:table-row><table:table-row table:number-rows-repeated=\"1048574\">\
        <table:table-cell table:number-columns-repeated=\"1024\"/></table:table-row>";
    write("wide", "padded.ods", ods(&format!("{header}{figures}")));
    let numbers = |cols: u32| {
        format!(
            "<table:table-cell table:number-columns-repeated=\"{cols}\" \
             office:value-type=\"float\" office:value=\"1\"/>"
        )
    };
    let repeated_row = format!(
        "<table:table-row table:number-rows-repeated=\"6000\">{}</table:table-row>",
        numbers(16_384)
    );
    write(
        "wide",
        "hostile_repeated_row.ods",
        ods(&format!("{header}{repeated_row}")),
    );
    let many_rows = format!("<table:table-row>{}</table:table-row>", numbers(4_096)).repeat(25_000);
    write("ru_sheet", "hostile_many_rows.ods", ods(&many_rows));
}

/// A one-sheet xlsx of text rows; cells that read as numbers are written as numbers.
fn sheet_of(name: &str, rows: &[&[&str]]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(name).unwrap();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            match cell.parse::<f64>() {
                Ok(n) if r > 0 => sheet.write_number(r, c, n).unwrap(),
                _ if cell.is_empty() => sheet,
                _ => sheet.write_string(r, c, *cell).unwrap(),
            };
        }
    }
    book.save_to_buffer().unwrap()
}

// ---- generated ods files ---------------------------------------------------------------

/// A repeat count: mostly 1, sometimes large, sometimes the most a sheet has.
fn repeats(most: u32) -> impl Strategy<Value = u32> {
    prop_oneof![6 => Just(1u32), 2 => 2u32..64, 1 => 1u32..=most, 1 => Just(most)]
}

/// One ods cell: repeated or not, empty, a number or text.
fn ods_cell() -> impl Strategy<Value = String> {
    (repeats(16_384), prop::option::of(value())).prop_map(|(n, value)| {
        let repeat = format!("table:number-columns-repeated=\"{n}\"");
        match value {
            None => format!("<table:table-cell {repeat}/>"),
            Some(Value::Number(x)) => format!(
                "<table:table-cell {repeat} office:value-type=\"float\" office:value=\"{x}\">\
                 <text:p>{x}</text:p></table:table-cell>"
            ),
            Some(Value::Text(t)) => {
                let t = t
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('"', "&quot;");
                format!(
                    "<table:table-cell {repeat} office:value-type=\"string\"><text:p>{t}</text:p>\
                     </table:table-cell>"
                )
            }
        }
    })
}

/// An ods of up to 30 row elements, each possibly repeated up to the most rows a sheet has.
fn ods_file() -> impl Strategy<Value = Vec<u8>> {
    let row =
        (repeats(1_048_576), prop::collection::vec(ods_cell(), 0..6)).prop_map(|(n, cells)| {
            format!(
                "<table:table-row table:number-rows-repeated=\"{n}\">{}</table:table-row>",
                cells.concat()
            )
        });
    prop::collection::vec(row, 0..30).prop_map(|rows| ods(&rows.concat()))
}

#[test]
fn fuzz_generated_ods_with_huge_repeats() {
    fuzz("ods", cases(64), ods_file(), check_workbook);
}
