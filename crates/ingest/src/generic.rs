//! The generic input format: one observation per row, as CSV or JSON lines.
//!
//! Column (or key) names are `source, period, country, category, count`, matched without
//! regard to case or surrounding spaces; `purpose` may stand for `category` and `source` may
//! come with the upload instead. A file-level problem (no header, a missing column, no source)
//! refuses the file; a bad row is rejected on its own, with its line, column and reason, and
//! the good rows around it are kept.

use std::collections::HashMap;

use borderwatch_model::{Country, Observation, Period, TOTAL_CATEGORY, tokenize};

use crate::error::IngestError;
use crate::rows::{Lines, ParseLimits, Parsed, RowSink};

/// The Russian purposes of trip as the FSB writes them, and their tokens.
const RUSSIAN_CATEGORIES: &[(&str, &str)] = &[
    ("учеба", "study"),
    ("учёба", "study"),
    ("работа", "work"),
    ("туризм", "tourism"),
    ("деловая", "business"),
    ("частная", "private"),
    ("служебная", "official"),
    ("транзит", "transit"),
    ("пмж", "permanent_residence"),
    ("постоянное место жительства", "permanent_residence"),
    ("обслуживающий персонал", "transport_crew"),
    ("всего", TOTAL_CATEGORY),
    ("итого", TOTAL_CATEGORY),
];

/// The generic format in the format table.
pub const FORMAT: crate::formats::Format = crate::formats::Format {
    name: "generic",
    description: "one figure per row: CSV or JSON lines with source, period, country, category \
                  (or purpose) and count",
    sniff: sniff_generic,
    parse: parse_bytes,
};

/// A generic file names its columns `period`, `country` and `count` in its first line.
fn sniff_generic(sniff: &crate::formats::Sniff<'_>) -> bool {
    let Some(first) = sniff.first_line() else {
        return false;
    };
    let first = first.to_lowercase();
    ["period", "country", "count"]
        .iter()
        .all(|name| first.contains(name))
}

fn parse_bytes(bytes: &[u8], options: &crate::formats::Options<'_>) -> Result<Parsed, IngestError> {
    let text = crate::decode::decode(bytes)?;
    parse_generic_with_limits(&text, options.source, options.limits)
}

/// Parses a generic-format file (CSV or JSON lines, told apart by the first non-blank
/// character) with the default limits. `default_source` names the source for rows that
/// have none.
pub fn parse_generic(text: &str, default_source: Option<&str>) -> Result<Parsed, IngestError> {
    parse_generic_with_limits(text, default_source, ParseLimits::default())
}

/// [`parse_generic`] with explicit limits.
pub fn parse_generic_with_limits(
    text: &str,
    default_source: Option<&str>,
    limits: ParseLimits,
) -> Result<Parsed, IngestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let default_source = default_source_token(default_source)?;
    let mut sink = RowSink::new(limits);
    // Room for every row up front rather than growing by doubling: a row takes a line and
    // at least 12 bytes (`,2024,KP,a,1`), so this never reserves more than a file of valid
    // rows of the same size would fill.
    let lines = text.bytes().filter(|b| *b == b'\n').count() as u64 + 1;
    sink.reserve(lines.min(text.len() as u64 / 12).min(limits.max_rows));
    let mut rows = Rows {
        default_source,
        sink,
        memo: Memos::default(),
    };
    match text.trim_start().chars().next() {
        None => return Err(IngestError::EmptyFile),
        Some('{') => parse_json_lines(text, &mut rows)?,
        Some(_) => parse_csv(text, &mut rows)?,
    }
    Ok(rows.sink.finish())
}

/// How [`parse_generic_reader`] reads: bytes per read, and observations per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    pub chunk_bytes: usize,
    pub batch_rows: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            chunk_bytes: 1 << 20,
            batch_rows: 50_000,
        }
    }
}

/// The generic format read from a stream: the text is decoded and parsed a piece at a time
/// (pieces end at a line end outside quotes) and accepted observations are handed to
/// `on_batch` as they pile up, so memory holds one piece, one batch, and what finding
/// repeats needs (tens of bytes per accepted row), not the file. The [`Parsed`] returned
/// has every count and rejected row but no observations: they all went to `on_batch`.
/// Batches are provisional until it returns `Ok`: a file found bad further on (binary
/// data, a wrong encoding, too many rows) is an error, and its batches must be dropped.
///
/// Gives the same rows, rejections and errors as [`crate::parse`] for UTF-8 and
/// windows-1251 CSV. What is not read piecewise: UTF-16 files and JSON lines are read whole
/// first; a file whose first 64 KiB are UTF-8 but which is not UTF-8 further on is refused
/// (read whole, it would be taken for windows-1251).
pub fn parse_generic_reader(
    mut input: impl std::io::Read,
    default_source: Option<&str>,
    limits: ParseLimits,
    read: ReadOptions,
    mut on_batch: impl FnMut(Vec<Observation>) -> Result<(), IngestError>,
) -> Result<Parsed, IngestError> {
    let chunk_bytes = read.chunk_bytes.max(1);
    let batch_rows = read.batch_rows.max(1);
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    fill(
        &mut input,
        &mut pending,
        crate::formats::SNIFF_BYTES,
        &mut eof,
    )?;
    if pending.iter().all(u8::is_ascii_whitespace) && eof {
        return Err(IngestError::EmptyFile);
    }
    let piecewise = crate::decode::piecewise(&pending, eof)?;
    let bom = match piecewise {
        Some(crate::decode::Piecewise::Utf8 { bom }) => bom,
        _ => 0,
    };
    let json = pending[bom..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let Some(piecewise) = piecewise.filter(|_| !json) else {
        // Read whole: UTF-16 (pieces would need cutting between code units) and JSON lines.
        input
            .read_to_end(&mut pending)
            .map_err(|e| read_error(&e))?;
        let options = crate::formats::Options {
            source: default_source,
            limits,
        };
        let mut parsed = parse_bytes(&pending, &options)?;
        hand_out(
            std::mem::take(&mut parsed.observations),
            batch_rows,
            &mut on_batch,
        )?;
        return Ok(parsed);
    };
    // Refused up front as a whole file is, before any row: binary data in the head.
    if pending.contains(&0) {
        return Err(IngestError::NotText {
            kind: "binary data",
        });
    }
    let head = crate::decode::decode_head(&pending).unwrap_or_default();
    let delimiter = sniff_delimiter(head.trim_start_matches('\u{feff}'));
    let mut rows = Rows {
        default_source: default_source_token(default_source)?,
        sink: RowSink::new(limits),
        memo: Memos::default(),
    };
    pending.drain(..bom);
    let mut offset = bom; // bytes of the file before `pending`
    let mut line = 1u64;
    let mut header: Option<Header> = None;
    let mut any_text = false;
    let mut record = csv::ByteRecord::new();
    loop {
        if !eof && pending.len() < chunk_bytes {
            fill(&mut input, &mut pending, chunk_bytes, &mut eof)?;
        }
        let window = pending.len().min(chunk_bytes);
        let cut = if eof && pending.len() <= chunk_bytes {
            pending.len()
        } else if let Some(cut) = last_record_end(pending.get(..window).unwrap_or(&[]), delimiter) {
            cut
        } else if let Some(cut) = last_record_end(&pending, delimiter) {
            cut // a record longer than a chunk
        } else if eof {
            pending.len()
        } else {
            // No line end outside quotes yet: read on.
            let want = pending.len() + chunk_bytes;
            fill(&mut input, &mut pending, want, &mut eof)?;
            continue;
        };
        let piece = pending.get(..cut).unwrap_or(&[]);
        let text: std::borrow::Cow<'_, str> = match piecewise {
            crate::decode::Piecewise::Utf8 { bom } => match std::str::from_utf8(piece) {
                Ok(t) => t.into(),
                Err(e) if bom > 0 => {
                    return Err(IngestError::BadEncoding {
                        encoding: "UTF-8",
                        offset: offset + e.valid_up_to(),
                    });
                }
                Err(e) => {
                    return Err(IngestError::Csv {
                        line: line + count_lines(piece.get(..e.valid_up_to()).unwrap_or(&[])),
                        message: format!(
                            "byte {} is not UTF-8, though the file starts as UTF-8; save \
                             it again as UTF-8",
                            offset + e.valid_up_to()
                        ),
                    });
                }
            },
            crate::decode::Piecewise::Windows1251 => {
                encoding_rs::WINDOWS_1251
                    .decode_without_bom_handling(piece)
                    .0
            }
        };
        if text.as_bytes().contains(&0) {
            return Err(IngestError::NotText {
                kind: "binary data",
            });
        }
        any_text |= !text.trim().is_empty();
        let mut reader = csv_reader(&text, delimiter);
        let mut lines = Lines::starting_at(&text, line);
        if header.is_none() {
            header = read_header(&mut reader, &mut record, &mut lines, delimiter, &rows)?;
        }
        if let Some(h) = &header {
            read_records(&mut reader, &mut record, &mut lines, &text, h, &mut rows)?;
        }
        line += count_lines(piece);
        offset += cut;
        pending.drain(..cut);
        if rows.sink.observation_count() >= batch_rows {
            hand_out(rows.sink.take_observations(), batch_rows, &mut on_batch)?;
        }
        if eof && pending.is_empty() {
            break;
        }
    }
    if header.is_none() {
        return Err(if any_text {
            IngestError::NoHeader
        } else {
            IngestError::EmptyFile
        });
    }
    hand_out(rows.sink.take_observations(), batch_rows, &mut on_batch)?;
    Ok(rows.sink.finish())
}

/// Hands `observations` to `on_batch` in batches of at most `batch_rows`.
fn hand_out(
    observations: Vec<Observation>,
    batch_rows: usize,
    on_batch: &mut impl FnMut(Vec<Observation>) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let mut observations = observations.into_iter().peekable();
    while observations.peek().is_some() {
        on_batch(observations.by_ref().take(batch_rows).collect())?;
    }
    Ok(())
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

fn read_error(e: &std::io::Error) -> IngestError {
    IngestError::Unavailable(format!("reading the file failed: {e}"))
}

/// Reads until `buf` holds `want` bytes or the input ends.
fn fill(
    input: &mut impl std::io::Read,
    buf: &mut Vec<u8>,
    want: usize,
    eof: &mut bool,
) -> Result<(), IngestError> {
    let mut chunk = vec![0u8; 64 * 1024];
    while !*eof && buf.len() < want {
        match input.read(&mut chunk) {
            Ok(0) => *eof = true,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(&e)),
        }
    }
    Ok(())
}

/// Where the last complete record of `bytes` ends: just after its last line end outside
/// quotes (quotes as [`scan_quotes`] reads them).
fn last_record_end(bytes: &[u8], delimiter: u8) -> Option<usize> {
    scan_quotes(bytes, delimiter).1
}

/// Reads CSV quoting over `bytes`: a quote opens a value only at the value's start, `""`
/// inside is a quote. Answers whether the bytes end inside a quoted value, and where the
/// last line end outside quotes is (just after it).
fn scan_quotes(bytes: &[u8], delimiter: u8) -> (bool, Option<usize>) {
    let (mut quoted, mut at_start, mut last) = (false, true, None);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if b == b'"' && at_start {
            quoted = true;
            at_start = false;
        } else {
            if b == b'\n' {
                last = Some(i + 1);
            }
            at_start = b == delimiter || b == b'\n' || b == b'\r';
        }
        i += 1;
    }
    (quoted, last)
}

/// The default source as a token, or the error for one that cannot be.
fn default_source_token(default_source: Option<&str>) -> Result<Option<String>, IngestError> {
    match default_source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Some(tokenize(s).ok_or_else(|| IngestError::BadSource {
            value: s.to_string(),
        })?)),
        None => Ok(None),
    }
}

/// One data row's raw values, before checking.
struct Raw<'a> {
    /// `None` when the file has no source column or the object no source key.
    source: Option<&'a str>,
    period: &'a str,
    country: &'a str,
    /// The column the category came from (`category` or `purpose`), for messages.
    category_column: &'static str,
    category: &'a str,
    count: &'a str,
}

/// Distinct cell texts remembered per column before a memo starts over (a bound on memory
/// for files whose every cell differs).
const MEMO_CAP: usize = 1 << 16;

/// What each distinct cell text of a column parses to. A file repeats a few sources,
/// periods, countries and categories millions of times: each text is checked once.
#[derive(Debug)]
struct Memo<T>(hashbrown::HashMap<Box<str>, T>);

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo(hashbrown::HashMap::default())
    }
}

impl<T> Memo<T> {
    fn get(&mut self, key: &str, compute: impl FnOnce(&str) -> T) -> &T {
        if self.0.len() >= MEMO_CAP {
            self.0.clear();
        }
        self.0.entry_ref(key).or_insert_with(|| compute(key))
    }
}

/// The memos of the four checked columns; an `Err` holds the reason quoted back.
#[derive(Debug, Default)]
struct Memos {
    source: Memo<Result<String, String>>,
    period: Memo<Result<Period, String>>,
    country: Memo<Result<Country, String>>,
    category: Memo<Result<String, String>>,
}

/// Checks rows one by one and hands what they give to the sink.
struct Rows {
    default_source: Option<String>,
    sink: RowSink,
    memo: Memos,
}

impl Rows {
    fn count_row(&mut self) -> Result<(), IngestError> {
        self.sink.count_row()
    }

    fn reject(&mut self, line: u64, column: &str, value: &str, reason: String) {
        self.sink.reject(line, column, value, reason);
    }

    fn accept(&mut self, line: u64, raw: &Raw<'_>) {
        match self.check(raw) {
            Ok(obs) => self.sink.keep(line, obs, raw.count),
            Err((column, value, reason)) => self.sink.reject(line, column, value, reason),
        }
    }

    /// The observation a row gives, or the first column that is wrong with it (its name,
    /// its value and the reason).
    fn check<'r>(&mut self, raw: &Raw<'r>) -> Result<Observation, (&'static str, &'r str, String)> {
        let source = match raw.source.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => match self.memo.source.get(s, |s| {
                tokenize(s).ok_or_else(|| {
                    format!(
                        "`{s}` is not a usable source name: use Latin letters, digits, spaces, \
                         `-` and `_` (at most 64), e.g. `fsb`"
                    )
                })
            }) {
                Ok(token) => token.clone(),
                Err(reason) => return Err(("source", s, reason.clone())),
            },
            None => match &self.default_source {
                Some(s) => s.clone(),
                None => {
                    return Err((
                        "source",
                        "",
                        "the source is empty and none was given with the file: fill it in, or \
                         name the source with the upload"
                            .to_string(),
                    ));
                }
            },
        };
        let period = match self.memo.period.get(raw.period, |p| {
            p.trim()
                .parse::<Period>()
                .map_err(|e: borderwatch_model::PeriodError| e.to_string())
        }) {
            Ok(p) => *p,
            Err(reason) => return Err(("period", raw.period, reason.clone())),
        };
        let country = match self.memo.country.get(raw.country, |c| {
            Country::parse(c).map_err(|e| e.to_string())
        }) {
            Ok(c) => *c,
            Err(reason) => return Err(("country", raw.country, reason.clone())),
        };
        let category = match self.memo.category.get(raw.category, category_token) {
            Ok(token) => token.clone(),
            Err(reason) => return Err((raw.category_column, raw.category, reason.clone())),
        };
        let count = parse_count(raw.count).map_err(|reason| ("count", raw.count, reason))?;
        Ok(Observation {
            source,
            country,
            category,
            period,
            count,
            release_id: String::new(),
        })
    }
}

/// A category token from a label: a Russian purpose of trip, or any Latin label tokenized.
pub fn category_token(label: &str) -> Result<String, String> {
    let t = label.trim();
    if t.is_empty() {
        return Err("the category is empty: name the purpose or category, e.g. `study`".into());
    }
    let lower = t
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if let Some((_, token)) = RUSSIAN_CATEGORIES.iter().find(|(ru, _)| *ru == lower) {
        return Ok((*token).to_string());
    }
    tokenize(t).ok_or_else(|| {
        format!(
            "`{t}` cannot be a category name: use Latin letters, digits, spaces, `-` and `_` \
             (at most 64), or an FSB purpose of trip (учеба, работа, туризм, деловая, частная, \
             служебная, транзит, ПМЖ, обслуживающий персонал, всего)"
        )
    })
}

/// A count in the generic format: plain digits, nothing else.
fn parse_count(value: &str) -> Result<u64, String> {
    let t = value.trim();
    if t.is_empty() {
        return Err(
            "the count is empty: write 0 for none, or leave the row out if the figure \
                    is unknown"
                .into(),
        );
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| format!("the count `{t}` is too large"));
    }
    let digits_and = |extra: &[char]| t.chars().all(|c| c.is_ascii_digit() || extra.contains(&c));
    Err(if t.starts_with('-') {
        format!("the count `{t}` is negative: counts are whole numbers from 0 up")
    } else if digits_and(&[',', ' ', '\u{a0}', '\u{202f}', '\'']) {
        format!("the count `{t}` has a thousands separator: write plain digits (1234, not 1,234)")
    } else if digits_and(&['.', 'e', 'E', '+']) {
        format!("the count `{t}` is not a whole number in plain digits: write e.g. 12, not 12.0")
    } else {
        format!("`{t}` is not a count: write a whole number from 0 up in plain digits")
    })
}

/// The delimiter of the header line: whichever of `,`, `;` and tab occurs most outside
/// quotes (`,` on a tie or when none does).
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let (mut comma, mut semicolon, mut tab) = (0usize, 0usize, 0usize);
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => comma += 1,
            ';' if !quoted => semicolon += 1,
            '\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    if semicolon > comma && semicolon >= tab {
        b';'
    } else if tab > comma && tab > semicolon {
        b'\t'
    } else {
        b','
    }
}

/// A cell as text, trimmed. The csv reader splits UTF-8 text at ASCII bytes only, so every
/// cell is UTF-8; an empty cell stands in should one not be.
fn cell(record: &csv::ByteRecord, i: usize) -> &str {
    record
        .get(i)
        .and_then(|f| std::str::from_utf8(f).ok())
        .unwrap_or("")
        .trim()
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    (0..record.len()).all(|i| cell(record, i).is_empty())
}

fn csv_error(e: csv::Error) -> IngestError {
    IngestError::Csv {
        line: e.position().map(|p| p.line()).unwrap_or(0),
        message: e.to_string(),
    }
}

/// Whether a record (its bytes up to the end of the file) ends inside a quoted value: a
/// quote opened at the start of a value and never closed, as in a file cut off mid-value.
fn ends_inside_quotes(bytes: &[u8], delimiter: u8) -> bool {
    scan_quotes(bytes, delimiter).0
}

/// The columns of a CSV file, from its header line.
struct Header {
    names: Vec<String>,
    line: u64,
    delimiter: u8,
    source: Option<usize>,
    period: usize,
    country: usize,
    category: usize,
    category_column: &'static str,
    count: usize,
}

fn csv_reader(text: &str, delimiter: u8) -> csv::Reader<&[u8]> {
    // Byte records, reused, trimmed here: no allocation per row.
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
}

/// Reads up to the header line; `None` when `text` holds only blank lines.
fn read_header(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut csv::ByteRecord,
    lines: &mut Lines<'_>,
    delimiter: u8,
    rows: &Rows,
) -> Result<Option<Header>, IngestError> {
    let line = loop {
        if !reader.read_byte_record(record).map_err(csv_error)? {
            return Ok(None);
        }
        if !is_blank(record) {
            break lines.of(record.position());
        }
    };
    let names: Vec<String> = (0..record.len())
        .map(|i| {
            cell(record, i)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_lowercase()
        })
        .collect();
    let find = |name: &str| names.iter().position(|n| n == name);
    let missing = |column: &'static str| IngestError::MissingColumn {
        line,
        column,
        found: names.clone(),
    };
    let period = find("period").ok_or_else(|| missing("period"))?;
    let country = find("country").ok_or_else(|| missing("country"))?;
    let (category, category_column) = match (find("category"), find("purpose")) {
        (Some(i), _) => (i, "category"),
        (None, Some(i)) => (i, "purpose"),
        (None, None) => return Err(missing("category")),
    };
    let count = find("count").ok_or_else(|| missing("count"))?;
    let source = find("source");
    if source.is_none() && rows.default_source.is_none() {
        return Err(IngestError::NoSource);
    }
    Ok(Some(Header {
        names,
        line,
        delimiter,
        source,
        period,
        country,
        category,
        category_column,
        count,
    }))
}

fn parse_csv(text: &str, rows: &mut Rows) -> Result<(), IngestError> {
    let delimiter = sniff_delimiter(text);
    let mut reader = csv_reader(text, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut lines = Lines::new(text);
    let header = read_header(&mut reader, &mut record, &mut lines, delimiter, rows)?
        .ok_or(IngestError::NoHeader)?;
    read_records(&mut reader, &mut record, &mut lines, text, &header, rows)
}

/// Reads the data rows of `text` (all of the file, or a piece of it that ends at a record
/// boundary) into `rows`.
fn read_records(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut csv::ByteRecord,
    lines: &mut Lines<'_>,
    text: &str,
    header: &Header,
    rows: &mut Rows,
) -> Result<(), IngestError> {
    let names = &header.names;
    let delimiter_text = char::from(header.delimiter).to_string();
    let joined = |record: &csv::ByteRecord| {
        (0..record.len())
            .map(|i| cell(record, i))
            .collect::<Vec<_>>()
            .join(&delimiter_text)
    };
    while reader.read_byte_record(record).map_err(csv_error)? {
        if is_blank(record) {
            continue;
        }
        rows.count_row()?;
        let line = lines.of(record.position());
        // Only the last record can run into the end of the file inside quotes.
        if reader.position().byte() as usize >= text.len()
            && let Some(start) = record.position().map(|p| p.byte() as usize)
            && ends_inside_quotes(
                text.as_bytes().get(start..).unwrap_or(&[]),
                header.delimiter,
            )
        {
            let last = record.len().saturating_sub(1);
            let column = names.get(last).map(String::as_str).unwrap_or("");
            rows.reject(
                line,
                column,
                &joined(record),
                "a double quote opened in this row is never closed: the file ends inside \
                 it, so it was probably cut off; send the whole file, or close the quote"
                    .to_string(),
            );
            continue;
        }
        if record.len() != names.len() {
            let reason = format!(
                "expected {} fields as in the header (line {}), found {}; a value \
                 with a `{delimiter_text}` in it must be in double quotes",
                names.len(),
                header.line,
                record.len()
            );
            rows.reject(line, "", &joined(record), reason);
            continue;
        }
        let raw = Raw {
            source: header.source.map(|i| cell(record, i)),
            period: cell(record, header.period),
            country: cell(record, header.country),
            category_column: header.category_column,
            category: cell(record, header.category),
            count: cell(record, header.count),
        };
        rows.accept(line, &raw);
    }
    Ok(())
}

fn parse_json_lines(text: &str, rows: &mut Rows) -> Result<(), IngestError> {
    let mut keys_checked = false;
    for (i, line_text) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let t = line_text.trim();
        if t.is_empty() {
            continue;
        }
        rows.count_row()?;
        let object = match serde_json::from_str::<serde_json::Value>(t) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                rows.reject(
                    line,
                    "",
                    t,
                    "expected one JSON object per line, e.g. {\"period\": \"2024-Q3\", …}".into(),
                );
                continue;
            }
            Err(e) => {
                rows.reject(line, "", t, format!("not a JSON object: {e}"));
                continue;
            }
        };
        let fields: HashMap<String, &serde_json::Value> = object
            .iter()
            .map(|(k, v)| (k.trim().to_lowercase(), v))
            .collect();
        let category_column = if fields.contains_key("category") || !fields.contains_key("purpose")
        {
            "category"
        } else {
            "purpose"
        };
        if !keys_checked {
            // The first object stands for the header: a key it lacks is missing everywhere.
            keys_checked = true;
            let mut found: Vec<String> = object.keys().map(|k| k.trim().to_lowercase()).collect();
            found.sort();
            for column in ["period", "country", category_column, "count"] {
                if !fields.contains_key(column) {
                    return Err(IngestError::MissingColumn {
                        line,
                        column: if column == "purpose" {
                            "category"
                        } else {
                            column
                        },
                        found,
                    });
                }
            }
            if !fields.contains_key("source") && rows.default_source.is_none() {
                return Err(IngestError::NoSource);
            }
        }
        let mut text_of = |key: &'static str| -> Option<Option<String>> {
            match fields.get(key) {
                None | Some(serde_json::Value::Null) => Some(None),
                Some(serde_json::Value::String(s)) => Some(Some(s.clone())),
                Some(serde_json::Value::Number(n)) => Some(Some(n.to_string())),
                Some(other) => {
                    rows.reject(
                        line,
                        key,
                        &other.to_string(),
                        format!("`{key}` must be text or a number"),
                    );
                    None
                }
            }
        };
        let Some(source) = text_of("source") else {
            continue;
        };
        let Some(period) = text_of("period") else {
            continue;
        };
        let Some(country) = text_of("country") else {
            continue;
        };
        let Some(category) = text_of(category_column) else {
            continue;
        };
        let Some(count) = text_of("count") else {
            continue;
        };
        let required = [
            ("period", &period),
            ("country", &country),
            (category_column, &category),
            ("count", &count),
        ];
        if let Some((key, _)) = required.iter().find(|(_, v)| v.is_none()) {
            rows.reject(line, key, "", format!("the `{key}` key is missing or null"));
            continue;
        }
        let raw = Raw {
            source: source.as_deref(),
            period: period.as_deref().unwrap_or_default(),
            country: country.as_deref().unwrap_or_default(),
            category_column,
            category: category.as_deref().unwrap_or_default(),
            count: count.as_deref().unwrap_or_default(),
        };
        rows.accept(line, &raw);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prk() -> Country {
        Country::parse("PRK").unwrap()
    }

    #[test]
    fn parses_csv_with_purpose_header() {
        let text = "Source, Period ,Country,Purpose,Count\n\
                    fsb,2024-Q3,KP,Study,3765\n\
                    FSB,2024-Q2,North Korea,учеба,332\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.rows, 2);
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.observations.len(), 2);
        let o = &p.observations[0];
        assert_eq!(
            (
                o.source.as_str(),
                o.country,
                o.category.as_str(),
                o.period,
                o.count
            ),
            ("fsb", prk(), "study", Period::Quarter(2024, 3), 3765)
        );
        assert_eq!(p.observations[1].category, "study");
        assert_eq!(p.observations[1].source, "fsb");
    }

    #[test]
    fn parses_json_lines() {
        let text = "{\"source\":\"fsb\",\"period\":\"2024-Q3\",\"country\":\"PRK\",\"category\":\"study\",\"count\":3765}\n\
                    \n\
                    {\"Period\":\"2024-Q4\",\"COUNTRY\":\"КНДР\",\"purpose\":\"учеба\",\"count\":\"3752\",\"note\":1}\n";
        let p = parse_generic(text, Some("fsb")).unwrap();
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.rows, 2);
        assert_eq!(p.observations[0].count, 3765);
        assert_eq!(p.observations[1].period, Period::Quarter(2024, 4));
        assert_eq!(p.observations[1].count, 3752);
        assert_eq!(p.observations[1].source, "fsb");
    }

    #[test]
    fn json_lines_count_must_be_a_whole_number() {
        let text = "{\"source\":\"fsb\",\"period\":\"2024\",\"country\":\"PRK\",\"category\":\"study\",\"count\":12.0}\n\
                    {\"source\":\"fsb\",\"period\":\"2023\",\"country\":\"PRK\",\"category\":\"study\",\"count\":-1}\n\
                    {\"source\":\"fsb\",\"period\":\"2022\",\"country\":\"PRK\",\"category\":\"study\",\"count\":[1]}\n";
        let p = parse_generic(text, None).unwrap();
        assert!(p.observations.is_empty());
        let rows: Vec<(u64, &str)> = p
            .rejected
            .iter()
            .map(|r| (r.row, r.column.as_str()))
            .collect();
        assert_eq!(rows, vec![(1, "count"), (2, "count"), (3, "count")]);
    }

    #[test]
    fn json_lines_missing_key_in_first_object_is_a_file_error() {
        let text =
            "{\"source\":\"fsb\",\"period\":\"2024\",\"country\":\"PRK\",\"category\":\"study\"}\n";
        let e = parse_generic(text, None).unwrap_err();
        assert!(
            matches!(
                &e,
                IngestError::MissingColumn {
                    column: "count",
                    line: 1,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn malformed_json_line_is_rejected_and_others_kept() {
        let text = "{\"source\":\"fsb\",\"period\":\"2024\",\"country\":\"PRK\",\"category\":\"study\",\"count\":1}\n\
                    {\"source\":\"fsb\",\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].row, 2);
        assert!(p.rejected[0].reason.contains("not a JSON object"));
    }

    #[test]
    fn rejects_unknown_country_with_row_and_column() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q3,PRK,study,3765\n\
                    fsb,2024-Q3,Atlantis,study,5\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.rejected.len(), 1);
        let r = &p.rejected[0];
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (3, "country", "Atlantis")
        );
        assert!(r.reason.contains("not a known country"), "{}", r.reason);
    }

    #[test]
    fn rejects_bad_period_with_row_and_column() {
        let p = parse_generic(
            "source,period,country,category,count\nfsb,2024-Q5,PRK,study,1\n",
            None,
        )
        .unwrap();
        let r = &p.rejected[0];
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (2, "period", "2024-Q5")
        );
        assert!(r.reason.contains("not a period"));
    }

    #[test]
    fn counts_must_be_plain_non_negative_integers() {
        let text = "source;period;country;category;count\n\
                    fsb;2024-Q1;PRK;study;\"1,234\"\n\
                    fsb;2024-Q2;PRK;study;12.0\n\
                    fsb;2024-Q3;PRK;study;-3\n\
                    fsb;2024-Q4;PRK;study;many\n\
                    fsb;2025-Q1;PRK;study;\n\
                    fsb;2025-Q2;PRK;study;0\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.observations[0].count, 0);
        let reasons: Vec<&str> = p.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].contains("thousands separator"), "{reasons:?}");
        assert!(reasons[1].contains("not a whole number"), "{reasons:?}");
        assert!(reasons[2].contains("negative"), "{reasons:?}");
        assert!(reasons[3].contains("not a count"), "{reasons:?}");
        assert!(reasons[4].contains("empty"), "{reasons:?}");
        assert!(p.rejected.iter().all(|r| r.column == "count"));
        assert_eq!(
            p.rejected.iter().map(|r| r.row).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn empty_or_unusable_category_is_rejected() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q1,PRK,,1\n\
                    fsb,2024-Q2,PRK,学习,1\n";
        let p = parse_generic(text, None).unwrap();
        assert!(p.observations.is_empty());
        assert!(p.rejected[0].reason.contains("category is empty"));
        assert!(p.rejected[1].reason.contains("cannot be a category name"));
        assert!(p.rejected.iter().all(|r| r.column == "category"));
    }

    #[test]
    fn russian_purposes_map_to_tokens() {
        for (ru, token) in [
            ("учеба", "study"),
            ("Учёба", "study"),
            ("работа", "work"),
            ("туризм", "tourism"),
            ("деловая", "business"),
            ("частная", "private"),
            ("служебная", "official"),
            ("транзит", "transit"),
            ("ПМЖ", "permanent_residence"),
            ("Обслуживающий  персонал", "transport_crew"),
            ("ВСЕГО", TOTAL_CATEGORY),
            ("Transport crew", "transport_crew"),
        ] {
            assert_eq!(category_token(ru).as_deref(), Ok(token), "{ru}");
        }
    }

    #[test]
    fn unusable_source_is_rejected_per_row() {
        let p = parse_generic(
            "source,period,country,category,count\nФСБ,2024,PRK,study,1\n",
            None,
        )
        .unwrap();
        assert_eq!(p.rejected[0].column, "source");
        assert!(p.rejected[0].reason.contains("not a usable source name"));
    }

    #[test]
    fn wrong_number_of_fields_is_rejected() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q1,PRK,study\n\
                    fsb,2024-Q2,PRK,study,1,2\n\
                    fsb,2024-Q3,PRK,study,3\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.rejected.len(), 2);
        assert!(
            p.rejected[0].reason.contains("expected 5 fields"),
            "{}",
            p.rejected[0].reason
        );
        assert_eq!(p.rejected[1].row, 3);
    }

    #[test]
    fn missing_count_column_is_a_file_error() {
        let e = parse_generic(
            "source,period,country,category,value\nfsb,2024,PRK,study,1\n",
            None,
        )
        .unwrap_err();
        match &e {
            IngestError::MissingColumn {
                column,
                found,
                line,
            } => {
                assert_eq!(*column, "count");
                assert_eq!(*line, 1);
                assert_eq!(found, &["source", "period", "country", "category", "value"]);
            }
            other => panic!("expected a missing column, got {other:?}"),
        }
        assert!(e.to_string().contains("no `count` column"), "{e}");
    }

    #[test]
    fn no_source_anywhere_is_a_file_error() {
        let text = "period,country,category,count\n2024,PRK,study,1\n";
        assert!(matches!(
            parse_generic(text, None),
            Err(IngestError::NoSource)
        ));
        let p = parse_generic(text, Some("FSB")).unwrap();
        assert_eq!(p.observations[0].source, "fsb");
    }

    #[test]
    fn source_column_wins_over_the_default_and_fills_empty_cells() {
        let text =
            "source,period,country,category,count\ncbp,2024,MEX,encounters,1\n,2024,PRK,study,2\n";
        let p = parse_generic(text, Some("fsb")).unwrap();
        let sources: Vec<&str> = p.observations.iter().map(|o| o.source.as_str()).collect();
        assert_eq!(sources, vec!["cbp", "fsb"]);
    }

    #[test]
    fn unusable_default_source_is_a_file_error() {
        let e = parse_generic("period,country,category,count\n", Some("ФСБ")).unwrap_err();
        assert!(matches!(e, IngestError::BadSource { .. }), "{e:?}");
    }

    #[test]
    fn blank_file_has_no_header() {
        assert!(matches!(
            parse_generic("", None),
            Err(IngestError::EmptyFile)
        ));
        assert!(matches!(
            parse_generic("\n\n", None),
            Err(IngestError::EmptyFile)
        ));
        assert!(matches!(
            parse_generic(",,\n", None),
            Err(IngestError::NoHeader)
        ));
    }

    #[test]
    fn conflicting_duplicate_rows_are_rejected() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q3,PRK,study,3765\n\
                    fsb,2024-Q3,KP,Study,24\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.observations[0].count, 3765);
        let r = &p.rejected[0];
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (3, "count", "24")
        );
        assert!(r.reason.contains("conflicts with line 2"), "{}", r.reason);
    }

    #[test]
    fn identical_duplicate_rows_are_kept_once() {
        let text = "source,period,country,category,count\n\
                    fsb,2024-Q3,PRK,study,3765\n\
                    fsb,2024-Q3,PRK,study,3765\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert!(p.rejected.is_empty());
        assert_eq!((p.rows, p.duplicates), (2, 1));
    }

    #[test]
    fn extra_columns_are_ignored_and_delimiters_sniffed() {
        for sep in [",", ";", "\t"] {
            let text = ["note", "source", "period", "country", "category", "count"].join(sep)
                + "\n"
                + &["x", "fsb", "2024-07", "PRK", "study", "5"].join(sep)
                + "\n";
            let p = parse_generic(&text, None).unwrap();
            assert_eq!(
                p.observations.len(),
                1,
                "separator {sep:?}: {:?}",
                p.rejected
            );
            assert_eq!(p.observations[0].period, Period::Month(2024, 7));
        }
    }

    #[test]
    fn row_numbers_count_lines_including_blank_ones_and_quoted_newlines() {
        let text = "\nsource,period,country,category,count\n\n\"fsb\",2024,\"PRK\",study,\"1\n2\"\nfsb,2024,XX,study,1\n";
        let p = parse_generic(text, None).unwrap();
        let rows: Vec<u64> = p.rejected.iter().map(|r| r.row).collect();
        let e = parse_generic("\n\nsource,period\n", None).unwrap_err();
        assert!(
            matches!(e, IngestError::MissingColumn { line: 3, .. }),
            "{e:?}"
        );
        // line 4 starts a row whose quoted count spans two lines; line 6 has an unknown country.
        assert_eq!(rows, vec![4, 6]);
        assert_eq!(p.rows, 2);
    }

    #[test]
    fn too_many_rows_is_a_file_error() {
        let text =
            "source,period,country,category,count\nfsb,2024,PRK,study,1\nfsb,2023,PRK,study,1\n";
        let limits = ParseLimits { max_rows: 1 };
        let e = parse_generic_with_limits(text, None, limits).unwrap_err();
        assert!(matches!(e, IngestError::TooManyRows { limit: 1 }), "{e:?}");
        assert!(parse_generic_with_limits(text, None, ParseLimits { max_rows: 2 }).is_ok());
    }

    #[test]
    fn long_values_are_cut_when_quoted_back() {
        let long = "x".repeat(1000);
        let text = format!("source,period,country,category,count\nfsb,2024,{long},study,1\n");
        let p = parse_generic(&text, None).unwrap();
        assert!(p.rejected[0].value.chars().count() <= crate::rows::MAX_QUOTED + 1);
    }
}
