//! Bad input, case by case: every way a file or a row can be wrong gets its own clear error
//! (file-level: what is wrong and what to do; row-level: row, column, value and reason), a
//! refused file changes nothing stored before, and no input makes a parser panic.

use borderwatch_bus::{MemoryBus, Transport, names};
use borderwatch_ingest::service::{Submission, ingest};
use borderwatch_ingest::{
    IngestError, ParseLimits, Parsed, ReadOptions, decode_text, parse, parse_generic_reader,
    parse_with_limits,
};
use borderwatch_model::RejectedRow;
use encoding_rs::WINDOWS_1251;
use proptest::prelude::*;

const HEADER: &str = "source,period,country,category,count\n";

fn generic(bytes: &[u8]) -> Result<Parsed, IngestError> {
    parse("generic", bytes, None)
}

fn csv(rows: &str) -> Parsed {
    let text = format!("{HEADER}{rows}");
    generic(text.as_bytes()).unwrap_or_else(|e| panic!("file refused: {e}"))
}

/// The one rejected row of a file, checked to be the only one.
fn only_rejected(p: &Parsed) -> &RejectedRow {
    assert_eq!(p.rejected.len(), 1, "{:?}", p.rejected);
    &p.rejected[0]
}

fn assert_rejected(r: &RejectedRow, row: u64, column: &str, value: &str, reason: &str) {
    assert_eq!(
        (r.row, r.column.as_str(), r.value.as_str()),
        (row, column, value),
        "{r:?}"
    );
    assert!(
        r.reason.contains(reason),
        "reason {:?} lacks {reason:?}",
        r.reason
    );
}

// ---- unreadable files ------------------------------------------------------------------

#[test]
fn empty_file_is_refused_as_empty() {
    for bytes in [
        &b""[..],
        b"   ",
        b"\n\r\n\n",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF\n \n",
    ] {
        let e = generic(bytes).unwrap_err();
        assert_eq!(e.code(), "empty_file", "{bytes:?}: {e}");
        assert!(e.to_string().contains("the file is empty"), "{e}");
    }
}

#[test]
fn header_only_file_has_no_rows_and_no_error() {
    let p = csv("");
    assert_eq!((p.rows, p.observations.len(), p.rejected.len()), (0, 0, 0));
}

#[test]
fn file_cut_mid_row_rejects_the_last_row_and_keeps_the_others() {
    let p = csv("fsb,2024-Q1,PRK,study,10\nfsb,2024-Q2,PRK,stu");
    assert_eq!(p.observations.len(), 1);
    let r = only_rejected(&p);
    assert_eq!((r.row, r.column.as_str()), (3, ""));
    assert_eq!(r.value, "fsb,2024-Q2,PRK,stu");
    assert!(r.reason.contains("expected 5 fields"), "{}", r.reason);
}

#[test]
fn file_cut_mid_quote_says_the_quote_is_never_closed() {
    let p = csv("fsb,2024-Q1,PRK,study,10\nfsb,2024-Q2,\"PRK,study,1");
    assert_eq!(p.observations.len(), 1);
    let r = only_rejected(&p);
    assert_eq!(r.row, 3);
    assert!(
        r.reason.contains("quote") && r.reason.contains("never closed"),
        "{}",
        r.reason
    );
}

#[test]
fn utf16_with_a_bom_and_an_odd_number_of_bytes_is_an_encoding_error() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "source,period,country,category,count\nfsb,2024,PRK,study,1\n".encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    bytes.push(b'x'); // half a code unit: the file was cut
    let e = generic(&bytes).unwrap_err();
    assert!(
        matches!(
            e,
            IngestError::BadEncoding {
                encoding: "UTF-16LE",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("save it again as UTF-8"), "{e}");
}

#[test]
fn invalid_utf8_after_a_utf8_bom_is_an_encoding_error_with_its_offset() {
    let mut bytes = b"\xEF\xBB\xBFsource,period,country,category,count\n".to_vec();
    let offset = bytes.len();
    bytes.extend(b"fsb,2024,\xFF\xFE\xFD,study,1\n");
    let e = generic(&bytes).unwrap_err();
    match e {
        IngestError::BadEncoding {
            encoding: "UTF-8",
            offset: at,
        } => assert_eq!(at, offset + 9),
        other => panic!("expected an encoding error, got {other:?}"),
    }
}

#[test]
fn windows_1251_text_is_read_not_refused() {
    let text = format!("{HEADER}fsb,2024-Q3,КНДР,учеба,3765\nfsb,2024-Q3,Китай,работа,5\n");
    let (bytes, _, unmappable) = WINDOWS_1251.encode(&text);
    assert!(!unmappable && std::str::from_utf8(&bytes).is_err());
    let p = generic(&bytes).unwrap();
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    assert_eq!(p.observations.len(), 2);
    assert_eq!(p.observations[0].category, "study");
}

#[test]
fn spreadsheets_archives_and_pdfs_given_as_generic_are_refused_by_kind() {
    for (bytes, kind) in [
        (
            &b"PK\x03\x04\x14\x00\x06\x00rest of an xlsx"[..],
            "ZIP archive",
        ),
        (
            &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0][..],
            ".xls",
        ),
        (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj", "PDF"),
        (&[0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 3][..], "gzip"),
    ] {
        let e = generic(bytes).unwrap_err();
        assert_eq!(e.code(), "not_text", "{kind}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(kind) && msg.contains("export it as CSV"),
            "{msg}"
        );
    }
}

#[test]
fn binary_noise_is_refused_as_not_text() {
    let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let e = generic(&noise).unwrap_err();
    assert!(
        matches!(
            e.code(),
            "not_text" | "bad_encoding" | "no_header" | "missing_column"
        ),
        "{e:?}"
    );
}

#[test]
fn a_header_without_the_needed_columns_names_what_it_found() {
    let e = generic(b"Name,Value\nPRK,1\n").unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.code(), "missing_column");
    assert!(
        msg.contains("line 1") && msg.contains("found: name, value"),
        "{msg}"
    );
}

// ---- limits ----------------------------------------------------------------------------

#[test]
fn more_rows_than_the_limit_refuses_the_whole_file() {
    let rows: String = (0..11)
        .map(|i| format!("fsb,{},PRK,study,{i}\n", 2000 + i))
        .collect();
    let text = format!("{HEADER}{rows}");
    let e = parse_with_limits(
        "generic",
        text.as_bytes(),
        None,
        ParseLimits { max_rows: 10 },
    )
    .unwrap_err();
    assert!(matches!(e, IngestError::TooManyRows { limit: 10 }), "{e:?}");
    assert!(e.to_string().contains("split it into smaller files"), "{e}");
    let p = parse_with_limits(
        "generic",
        text.as_bytes(),
        None,
        ParseLimits { max_rows: 11 },
    )
    .unwrap();
    assert_eq!(p.observations.len(), 11);
}

#[test]
fn blank_lines_do_not_count_against_the_row_limit() {
    let text = format!("{HEADER}\n\nfsb,2024,PRK,study,1\n\n , , , , \n");
    let p = parse_with_limits(
        "generic",
        text.as_bytes(),
        None,
        ParseLimits { max_rows: 1 },
    )
    .unwrap();
    assert_eq!(p.rows, 1);
}

#[test]
fn json_lines_obey_the_row_limit_too() {
    let line = r#"{"source":"fsb","period":"2024","country":"PRK","category":"study","count":1}"#;
    let text = format!("{line}\n{line}\n{line}\n");
    let e = parse_with_limits(
        "generic",
        text.as_bytes(),
        None,
        ParseLimits { max_rows: 2 },
    )
    .unwrap_err();
    assert_eq!(e.code(), "too_many_rows");
}

// ---- every kind of malformed row -------------------------------------------------------

#[test]
fn too_few_and_too_many_fields() {
    let p = csv("fsb,2024,PRK,study\nfsb,2024,PRK,work,1,2\n");
    assert_rejected(
        &p.rejected[0],
        2,
        "",
        "fsb,2024,PRK,study",
        "expected 5 fields",
    );
    assert_rejected(&p.rejected[1], 3, "", "fsb,2024,PRK,work,1,2", "found 6");
    assert!(p.rejected[1].reason.contains("double quotes"));
}

#[test]
fn bad_source_and_missing_source() {
    let p = csv("ФСБ,2024,PRK,study,1\n");
    assert_rejected(
        only_rejected(&p),
        2,
        "source",
        "ФСБ",
        "not a usable source name",
    );
    let p = csv(",2024,PRK,study,1\n");
    assert_rejected(only_rejected(&p), 2, "source", "", "the source is empty");
}

#[test]
fn bad_periods() {
    for value in ["2024-Q5", "2024-13", "24", "Q3 2024x", ""] {
        let p = csv(&format!("fsb,{value},PRK,study,1\n"));
        let r = only_rejected(&p);
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (2, "period", value)
        );
        assert!(!r.reason.is_empty());
    }
}

#[test]
fn unknown_and_empty_countries() {
    let p = csv("fsb,2024,Atlantis,study,1\nfsb,2024,,study,1\n");
    assert_rejected(
        &p.rejected[0],
        2,
        "country",
        "Atlantis",
        "not a known country",
    );
    assert_eq!(
        (p.rejected[1].row, p.rejected[1].column.as_str()),
        (3, "country")
    );
}

#[test]
fn empty_and_unusable_categories_name_the_column_they_came_from() {
    let p = csv("fsb,2024,PRK,,1\n");
    assert_rejected(only_rejected(&p), 2, "category", "", "category is empty");
    let text = "source,period,country,purpose,count\nfsb,2024,PRK,学习,1\n";
    let p = generic(text.as_bytes()).unwrap();
    assert_rejected(
        only_rejected(&p),
        2,
        "purpose",
        "学习",
        "cannot be a category name",
    );
}

#[test]
fn every_bad_count() {
    let cases = [
        ("", "empty"),
        ("-3", "negative"),
        ("\"1,234\"", "thousands separator"),
        ("12.0", "not a whole number"),
        ("1e3", "not a whole number"),
        ("many", "not a count"),
        ("99999999999999999999999", "too large"),
    ];
    for (value, reason) in cases {
        let p = csv(&format!("fsb,2024,PRK,study,{value}\n"));
        let r = only_rejected(&p);
        assert_rejected(r, 2, "count", value.trim_matches('"'), reason);
    }
}

#[test]
fn conflicting_repeat_is_rejected_and_identical_repeat_counted() {
    let p = csv("fsb,2024,PRK,study,5\nfsb,2024,KP,Study,6\nfsb,2024,PRK,study,5\n");
    assert_rejected(only_rejected(&p), 3, "count", "6", "conflicts with line 2");
    assert_eq!((p.observations.len(), p.duplicates, p.rows), (1, 1, 3));
}

#[test]
fn json_line_kinds() {
    let good = r#"{"source":"fsb","period":"2024","country":"PRK","category":"study","count":1}"#;
    let text = format!(
        "{good}\n[1,2]\n{{\"source\":\n{}\n{}\n",
        r#"{"source":"fsb","period":"2024","country":"PRK","category":"work","count":[1]}"#,
        r#"{"source":"fsb","period":null,"country":"PRK","category":"work","count":1}"#,
    );
    let p = generic(text.as_bytes()).unwrap();
    assert_eq!(p.observations.len(), 1);
    let got: Vec<(u64, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.row, r.column.as_str()))
        .collect();
    assert_eq!(got, vec![(2, ""), (3, ""), (4, "count"), (5, "period")]);
    assert!(p.rejected[0].reason.contains("one JSON object per line"));
    assert!(p.rejected[1].reason.contains("not a JSON object"));
    assert!(p.rejected[2].reason.contains("must be text or a number"));
    assert!(p.rejected[3].reason.contains("missing or null"));
}

#[test]
fn long_values_are_quoted_back_shortened() {
    let long = "Q".repeat(5000);
    let p = csv(&format!("fsb,2024,{long},study,1\n"));
    let r = only_rejected(&p);
    assert!(r.value.chars().count() <= 201, "{}", r.value.len());
    assert!(r.value.ends_with('…'));
}

// ---- a refused file changes nothing ----------------------------------------------------

async fn stored_state(bus: &dyn Transport) -> (u64, u64, Vec<String>) {
    let mut keys = bus.kv_keys(names::RELEASES_BUCKET).await.unwrap();
    keys.sort();
    (
        bus.last_seq(names::OBS_STREAM).await.unwrap(),
        bus.last_seq(names::RELEASE_STREAM).await.unwrap(),
        keys,
    )
}

#[tokio::test]
async fn a_refused_file_changes_nothing_stored_before() {
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::open(dir.path()).await.unwrap();
    names::ensure_all(&bus, 1).await.unwrap();
    let submit = |bytes: Vec<u8>| Submission {
        format: Some("generic".into()),
        source: None,
        bytes: bytes.into(),
    };
    let good = format!("{HEADER}fsb,2024-Q1,PRK,study,10\nfsb,2024-Q2,PRK,study,20\n");
    let release = ingest(&bus, submit(good.into_bytes())).await.unwrap();
    assert_eq!(release.new_observations, 2);
    let before = stored_state(&bus).await;
    assert_eq!(before.2.len(), 1);

    let mut utf16_cut = vec![0xFF, 0xFE];
    utf16_cut.extend(b"s\0o\0u\0r\0c\0e\0x");
    let refused: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "empty_file"),
        (b"PK\x03\x04 an xlsx".to_vec(), "not_text"),
        (utf16_cut, "bad_encoding"),
        (b"Name,Value\nfsb,1\n".to_vec(), "missing_column"),
        (
            b"period,country,category,count\n2024,PRK,study,3\n".to_vec(),
            "no_source",
        ),
    ];
    for (bytes, code) in refused {
        let e = ingest(&bus, submit(bytes)).await.unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert_eq!(stored_state(&bus).await, before, "after a {code} file");
    }
    // A file whose every row is bad is refused and leaves nothing (it was a 201 and a
    // release of nothing, bytes kept).
    let all_bad = format!("{HEADER}fsb,2024-Q1,PRK,study,many\nfsb,2024-Q2,Atlantis,study,1\n");
    let e = ingest(&bus, submit(all_bad.into_bytes()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "nothing_accepted", "{e}");
    assert!(
        e.to_string().contains("all 2 data rows were rejected"),
        "{e}"
    );
    assert_eq!(e.to_body().error.details.len(), 2);
    assert_eq!(stored_state(&bus).await, before, "after a file of bad rows");
}

// ---- no input panics -------------------------------------------------------------------

const VALID: &str = "source,period,country,category,count\n\
                     fsb,2024-Q3,PRK,study,3765\n\
                     fsb,2024-Q3,KP,study,3765\n\
                     fsb,2024-Q2,КНДР,учеба,332\n\
                     cbp,2024-07,Mexico,encounters,\"1\"\n\
                     fsb,2024,CHN,total,99\n";

const VALID_JSON: &str = r#"{"source":"fsb","period":"2024-Q3","country":"PRK","category":"study","count":3765}
{"source":"fsb","period":"2024-Q2","country":"PRK","category":"study","count":"332"}
{"source":"cbp","period":"2024-07","country":"MEX","purpose":"encounters","count":1}
"#;

/// Every data row is exactly one of: kept, rejected or a repeat.
fn rows_add_up(p: &Parsed) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        p.rows,
        p.observations.len() as u64 + p.rejected.len() as u64 + p.duplicates,
        "rows {} != kept {} + rejected {} + repeats {}",
        p.rows,
        p.observations.len(),
        p.rejected.len(),
        p.duplicates
    );
    Ok(())
}

/// Byte-level mutations of a valid file: flips, deletions, insertions, a cut.
fn mutated(base: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 0..8);
    (edits, any::<prop::sample::Index>(), any::<bool>()).prop_map(move |(edits, cut, do_cut)| {
        let mut b = base.to_vec();
        for (at, kind, byte) in edits {
            if b.is_empty() {
                b.push(byte);
                continue;
            }
            let i = at.index(b.len());
            match kind {
                0 => b[i] = byte,
                1 => {
                    b.remove(i);
                }
                2 => b.insert(i, byte),
                _ => b.insert(
                    i,
                    *b",;\"\n\r\t{}".get(usize::from(byte) % 10).unwrap_or(&b'"'),
                ),
            }
        }
        if do_cut && !b.is_empty() {
            b.truncate(cut.index(b.len()));
        }
        b
    })
}

/// [`parse_generic_reader`] with the batches put back together, for comparison.
fn streamed(bytes: &[u8], chunk_bytes: usize, batch_rows: usize) -> Result<Parsed, IngestError> {
    let mut observations = Vec::new();
    let mut parsed = parse_generic_reader(
        bytes,
        None,
        ParseLimits::default(),
        ReadOptions {
            chunk_bytes,
            batch_rows,
        },
        |batch| {
            assert!(!batch.is_empty() && batch.len() <= batch_rows.max(1));
            observations.extend(batch);
            Ok(())
        },
    )?;
    assert!(parsed.observations.is_empty());
    parsed.observations = observations;
    Ok(parsed)
}

fn same_as_whole(bytes: &[u8], chunk: usize, batch: usize) -> Result<(), TestCaseError> {
    match (generic(bytes), streamed(bytes, chunk, batch)) {
        (Ok(whole), Ok(piecewise)) => prop_assert_eq!(whole, piecewise),
        (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
        (a, b) => prop_assert!(false, "whole {:?} but piecewise {:?}", a, b),
    }
    Ok(())
}

#[test]
fn a_big_file_read_piecewise_gives_what_the_whole_file_gives() {
    let mut text = String::from(HEADER);
    for i in 0..20_000u32 {
        let country = ["PRK", "KP", "Atlantis", "CHN"][i as usize % 4];
        text.push_str(&format!(
            "fsb,{}-{:02},{country},\"cat\n{}\",{}\n",
            1900 + i % 200,
            1 + i % 12,
            i % 13,
            i % 7
        ));
    }
    assert!(text.len() > 200_000);
    let mut batches = 0;
    let streamed_parse = parse_generic_reader(
        text.as_bytes(),
        None,
        ParseLimits::default(),
        ReadOptions {
            chunk_bytes: 4096,
            batch_rows: 1000,
        },
        |_| {
            batches += 1;
            Ok(())
        },
    )
    .unwrap();
    assert!(batches > 3, "{batches}");
    let whole = generic(text.as_bytes()).unwrap();
    assert_eq!(streamed_parse.rows, whole.rows);
    assert_eq!(streamed_parse.rejected, whole.rejected);
    assert_eq!(streamed_parse.duplicates, whole.duplicates);
    assert_eq!(streamed(text.as_bytes(), 4096, 1000).unwrap(), whole);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(text) = decode_text(&bytes) {
            prop_assert!(!text.trim().is_empty());
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for format in ["generic", ""] {
            if let Ok(p) = parse(format, &bytes, Some("fsb")) {
                rows_add_up(&p)?;
            }
        }
    }

    #[test]
    fn mutated_csv_never_panics_and_rows_add_up(bytes in mutated(VALID.as_bytes())) {
        if let Ok(p) = generic(&bytes) {
            rows_add_up(&p)?;
            for r in &p.rejected {
                prop_assert!(r.row >= 1 && !r.reason.is_empty());
            }
        }
    }

    #[test]
    fn mutated_json_lines_never_panic_and_rows_add_up(bytes in mutated(VALID_JSON.as_bytes())) {
        if let Ok(p) = parse("generic", &bytes, Some("fsb")) {
            rows_add_up(&p)?;
        }
    }

    #[test]
    fn reading_piecewise_gives_what_the_whole_file_gives(
        bytes in mutated(VALID.as_bytes()),
        chunk in 1usize..48,
        batch in 1usize..4,
        cp1251 in any::<bool>(),
    ) {
        let bytes = if cp1251 {
            WINDOWS_1251.encode(&String::from_utf8_lossy(&bytes)).0.into_owned()
        } else {
            bytes
        };
        same_as_whole(&bytes, chunk, batch)?;
    }

    #[test]
    fn row_limit_holds_for_any_limit(limit in 0u64..8, extra in 0usize..4) {
        let rows: String = (0..(limit as usize + extra))
            .map(|i| format!("fsb,{},PRK,study,1\n", 1990 + i))
            .collect();
        let text = format!("{HEADER}{rows}");
        match parse_with_limits("generic", text.as_bytes(), None, ParseLimits { max_rows: limit }) {
            Ok(p) => prop_assert!(extra == 0 && p.rows == limit),
            Err(e) => prop_assert!(extra > 0 && e.code() == "too_many_rows"),
        }
    }

    #[test]
    fn utf16_and_windows_1251_reencodings_give_the_same_rows(big_endian in any::<bool>(), bom in any::<bool>()) {
        let expected = generic(VALID.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        if bom {
            bytes.extend(if big_endian { [0xFE, 0xFF] } else { [0xFF, 0xFE] });
        }
        for unit in VALID.encode_utf16() {
            bytes.extend(if big_endian { unit.to_be_bytes() } else { unit.to_le_bytes() });
        }
        prop_assert_eq!(&generic(&bytes).unwrap(), &expected);
        let (cp1251, _, _) = WINDOWS_1251.encode(VALID);
        prop_assert_eq!(&generic(&cp1251).unwrap(), &expected);
    }
}
