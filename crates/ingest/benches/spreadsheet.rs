//! Wide Russian spreadsheets: figures per second from an xlsx's bytes to normalized
//! observations (`ru_sheet`: open, find the headers, read every cell), and the peak memory,
//! beside the same figures as a generic CSV in the same run.
//!
//! Run: `cargo bench -p borderwatch-ingest --bench spreadsheet`. `BENCH_COUNTRIES` (default
//! 250), `BENCH_QUARTERS` (default 40) and `BENCH_REPEAT` (default 3; the median is reported)
//! size it: one FSB-style sheet, a row per country, nine purposes × the quarters as columns
//! under merged quarter headers. Results are kept in BENCHMARKS.md.

use std::time::{Duration, Instant};

use borderwatch_model::{Country, Period};
use rust_xlsxwriter::{Format, Workbook};

const PURPOSES: [&str; 9] = [
    "служебная",
    "деловая",
    "туризм",
    "частная",
    "транзит",
    "ПМЖ",
    "обслуживающий персонал",
    "учеба",
    "работа",
];
const TOKENS: [&str; 9] = [
    "official",
    "business",
    "tourism",
    "private",
    "transit",
    "permanent_residence",
    "transport_crew",
    "study",
    "work",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` distinct ISO 3166 alpha-3 codes that `Country::parse` reads.
fn countries(n: usize) -> Vec<Country> {
    let mut out = Vec::new();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            for c in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b, c]).unwrap_or_default();
                if let Ok(country) = Country::parse(&code)
                    && !country.is_aggregate()
                    && country.code() == code
                    && !out.contains(&country)
                {
                    out.push(country);
                }
                if out.len() == n {
                    return out;
                }
            }
        }
    }
    out
}

fn count(row: usize, col: usize) -> u64 {
    ((row * 7919 + col * 104_729) % 50_000) as u64
}

const ROMAN: [&str; 4] = ["I", "II", "III", "IV"];

/// The wide xlsx and the same figures as a generic CSV.
fn files(countries: &[Country], quarters: usize) -> (Vec<u8>, String) {
    let mut book = Workbook::new();
    let merged = Format::new();
    let sheet = book.add_worksheet();
    let width = (quarters * PURPOSES.len()) as u16;
    sheet
        .merge_range(
            0,
            0,
            0,
            width,
            "Въезд иностранных граждан в Российскую Федерацию по странам",
            &merged,
        )
        .expect("title");
    let first = Period::Quarter(2015, 1);
    for q in 0..quarters {
        let Period::Quarter(year, n) = first.offset(q as i64) else {
            unreachable!("quarters stay quarters")
        };
        let col = 1 + (q * PURPOSES.len()) as u16;
        let label = format!("{} квартал {year}", ROMAN[usize::from(n) - 1]);
        sheet
            .merge_range(1, col, 1, col + PURPOSES.len() as u16 - 1, &label, &merged)
            .expect("quarter header");
        for (i, p) in PURPOSES.iter().enumerate() {
            sheet.write_string(2, col + i as u16, *p).expect("purpose");
        }
    }
    let mut csv = String::from("source,period,country,category,count\n");
    for (r, country) in countries.iter().enumerate() {
        let row = 3 + r as u32;
        sheet.write_string(row, 0, country.code()).expect("country");
        for q in 0..quarters {
            let period = first.offset(q as i64);
            for (i, token) in TOKENS.iter().enumerate() {
                let col = 1 + q * PURPOSES.len() + i;
                let n = count(r, col);
                sheet
                    .write_number(row, col as u16, n as f64)
                    .expect("figure");
                csv.push_str(&format!("fsb,{period},{country},{token},{n}\n"));
            }
        }
    }
    (book.save_to_buffer().expect("xlsx"), csv)
}

/// Peak resident memory of this process in KiB (`VmHWM`), and its current size (`VmRSS`).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets the peak to the current size (Linux: `5` to clear_refs); false where it cannot.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Case {
    name: &'static str,
    time: Duration,
    peak_kib: u64,
    base_kib: u64,
}

fn run(name: &'static str, format: &str, bytes: &[u8], figures: usize, repeat: usize) -> Case {
    let mut times = Vec::new();
    let mut peak_kib = 0;
    let mut base_kib = 0;
    for _ in 0..repeat {
        let reset = reset_peak();
        let (_, before) = memory();
        let start = Instant::now();
        let parsed = borderwatch_ingest::parse(format, bytes, None).expect("bench file parses");
        let time = start.elapsed();
        let (peak, _) = memory();
        assert_eq!(
            parsed.observations.len(),
            figures,
            "{name}: every figure read"
        );
        assert!(
            parsed.rejected.is_empty(),
            "{name}: {:?}",
            &parsed.rejected[..1]
        );
        drop(parsed);
        times.push(time);
        if reset {
            peak_kib = peak_kib.max(peak);
            base_kib = before;
        }
    }
    times.sort();
    Case {
        name,
        time: times[times.len() / 2],
        peak_kib,
        base_kib,
    }
}

fn main() {
    let n = env_usize("BENCH_COUNTRIES", 250);
    let quarters = env_usize("BENCH_QUARTERS", 40);
    let repeat = env_usize("BENCH_REPEAT", 3).max(1);
    let countries = countries(n);
    let figures = countries.len() * quarters * PURPOSES.len();
    let (xlsx, csv) = files(&countries, quarters);
    println!(
        "{} countries × {} purposes × {quarters} quarters = {figures} figures; xlsx {:.1} MiB, \
         generic CSV {:.1} MiB; median of {repeat}",
        countries.len(),
        PURPOSES.len(),
        xlsx.len() as f64 / 1048576.0,
        csv.len() as f64 / 1048576.0,
    );
    let cases = [
        run(
            "generic CSV (same figures)",
            "generic",
            csv.as_bytes(),
            figures,
            repeat,
        ),
        run(
            "ru_sheet xlsx (format named)",
            "ru_sheet",
            &xlsx,
            figures,
            repeat,
        ),
        run("ru_sheet xlsx (detected)", "", &xlsx, figures, repeat),
    ];
    let base = cases[0].time;
    println!(
        "| case | time | figures/s | sheet rows/s | vs generic CSV | peak RSS (MiB) | RSS before (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for c in &cases {
        let secs = c.time.as_secs_f64();
        println!(
            "| {} | {:.3} s | {:.0} | {:.0} | {:.2}× | {} | {} |",
            c.name,
            secs,
            figures as f64 / secs,
            countries.len() as f64 / secs,
            base.as_secs_f64() / secs,
            if c.peak_kib > 0 {
                format!("{:.0}", c.peak_kib as f64 / 1024.0)
            } else {
                "n/a".into()
            },
            if c.peak_kib > 0 {
                format!("{:.0}", c.base_kib as f64 / 1024.0)
            } else {
                "n/a".into()
            },
        );
    }
}
