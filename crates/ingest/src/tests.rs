//! Tests across modules: bytes in, observations out.

use borderwatch_model::{Country, Period};
use encoding_rs::WINDOWS_1251;

use super::*;

const RUSSIAN: &str = "source;period;country;purpose;count\n\
                       fsb;2024-Q3;КНДР (Северная Корея);Учеба;3765\n\
                       fsb;2024-Q3;КНДР;деловая;1021\n\
                       fsb;2024-Q3;Китай;Обслуживающий персонал;77\n\
                       fsb;2024-Q3;Казахстан;ВСЕГО;123456\n";

#[test]
fn windows_1251_russian_purposes_decode() {
    let (bytes, _, unmappable) = WINDOWS_1251.encode(RUSSIAN);
    assert!(!unmappable);
    let p = parse("generic", &bytes, None).unwrap();
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    let got: Vec<(String, &str, u64)> = p
        .observations
        .iter()
        .map(|o| (o.country.to_string(), o.category.as_str(), o.count))
        .collect();
    assert_eq!(
        got,
        vec![
            ("PRK".to_string(), "study", 3765),
            ("PRK".to_string(), "business", 1021),
            ("CHN".to_string(), "transport_crew", 77),
            ("KAZ".to_string(), "total", 123456),
        ]
    );
}

#[test]
fn utf16_file_with_bom_parses() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in RUSSIAN.replace(';', "\t").encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    let p = parse("", &bytes, None).unwrap();
    assert_eq!(p.observations.len(), 4, "{:?}", p.rejected);
    assert_eq!(p.observations[0].country, Country::parse("PRK").unwrap());
    assert_eq!(p.observations[0].period, Period::Quarter(2024, 3));
}

#[test]
fn unknown_format_names_the_known_ones() {
    let e = parse("emiss-xml", b"x", None).unwrap_err();
    assert_eq!(e.code(), "unknown_format");
    assert!(e.to_string().contains("generic"), "{e}");
}

#[test]
fn empty_upload_is_an_empty_file_error() {
    let e = parse("generic", b"", Some("fsb")).unwrap_err();
    assert_eq!(e.code(), "empty_file");
}

/// xorshift64*: the inputs of the no-panic test, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that are sometimes valid files, often nearly so, and sometimes noise.
fn random_input(rng: &mut Rng) -> Vec<u8> {
    const PIECES: &[&str] = &[
        "source",
        "period",
        "country",
        "category",
        "purpose",
        "count",
        ",",
        ";",
        "\t",
        "\n",
        "\r\n",
        "\"",
        "{",
        "}",
        ":",
        "\"count\"",
        "\"period\"",
        "2024-Q3",
        "2024",
        "2024-13",
        "PRK",
        "КНДР",
        "Atlantis",
        "study",
        "учеба",
        "3765",
        "-1",
        "12.0",
        "1,234",
        " ",
        "",
        "\u{feff}",
        "null",
        "[1]",
        "18446744073709551616",
    ];
    let mut out = Vec::new();
    match rng.below(4) {
        // Pure noise.
        0 => {
            for _ in 0..rng.below(300) {
                out.push(rng.next() as u8);
            }
        }
        // Plausible pieces glued at random.
        1 | 2 => {
            if rng.below(2) == 0 {
                out.extend(b"source,period,country,category,count\n");
            }
            for _ in 0..rng.below(80) {
                out.extend(PIECES[rng.below(PIECES.len())].as_bytes());
            }
        }
        // A valid file with a few bytes flipped.
        _ => {
            out.extend(
                crate::demo_nk_only_csv()
                    .as_bytes()
                    .iter()
                    .take(rng.below(3000)),
            );
            for _ in 0..rng.below(8) {
                if !out.is_empty() {
                    let i = rng.below(out.len());
                    out[i] = rng.next() as u8;
                }
            }
        }
    }
    out
}

#[test]
fn random_bytes_never_panic_and_every_row_is_accounted_for() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for _ in 0..3000 {
        let bytes = random_input(&mut rng);
        let source = if rng.below(2) == 0 { Some("fsb") } else { None };
        let limits = ParseLimits {
            max_rows: rng.below(200) as u64,
        };
        if let Ok(p) = parse_with_limits("generic", &bytes, source, limits) {
            assert_eq!(
                p.observations.len() as u64 + p.rejected_total + p.duplicates,
                p.rows,
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
            assert!(p.rows <= limits.max_rows);
        }
    }
}
