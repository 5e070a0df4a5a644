//! `emiss_sdmx`: an EMISS (fedstat.ru) indicator exported as SDMX-ML 1.0 GenericData, the
//! format fedstat exports every indicator in (the FSB's 38479 and 38480 included).
//!
//! Each `generic:Series` has its dimensions in `generic:SeriesKey` (codelist ids, named in the
//! message's `CodeLists` when present), its period label as the `PERIOD` attribute (Russian
//! text: `III квартал`, `январь-сентябрь`, `год`) and one `generic:Obs` per year (`Time`) with
//! its `ObsValue` (decimal comma). The country dimension is the one whose codelist is OKSM
//! (ISO 3166 numeric codes); a purpose-of-trip dimension (codelist named `Цел…`) gives the
//! category, else the category is `total`; any other dimension must keep one value in the
//! file. Year-to-date labels are differenced into quarters or months (`ytd.rs`).

use std::collections::HashMap;

use borderwatch_model::{Country, Observation, Period, TOTAL_CATEGORY, tokenize};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::ytd::{self, Label, ToDate};
use crate::error::IngestError;
use crate::format::{Format, Options, Sniff};
use crate::rows::{Parsed, RowSink};

const NAME: &str = "emiss_sdmx";

/// How deep elements may nest: an SDMX message nests about eight deep; a file nested deeper
/// is refused before it can cost more than a linear read.
pub(crate) const MAX_DEPTH: usize = 64;

/// Source when the file names no known indicator and none is given with it.
const DEFAULT_SOURCE: &str = "emiss";

/// Words in the message's header that name the FSB indicators, and their sources (the same
/// names as `fsb_csv`'s, so both exports of one indicator feed one series).
const INDICATORS: &[(&str, &str)] = &[
    ("38479", "fsb"),
    ("въезд иностранных граждан", "fsb"),
    ("38480", "fsb_exits"),
    ("выезд граждан росси", "fsb_exits"),
];

pub(crate) const FORMAT: Format = Format {
    name: NAME,
    description: "EMISS (fedstat.ru) SDMX-ML 1.0 GenericData export: OKSM country dimension, \
                  purposes as categories, Russian period labels, year-to-date differenced",
    sniff,
    parse,
};

fn sniff(sniff: &Sniff<'_>) -> bool {
    let Some(head) = sniff.text_head else {
        return false;
    };
    let lower = head.to_lowercase();
    (lower.contains("<genericdata") || lower.contains(":genericdata"))
        && lower.contains("sdmxml/schemas/v1_0")
}

/// A codelist: its Russian name and its codes' Russian descriptions.
#[derive(Debug, Default)]
struct CodeList {
    name: String,
    codes: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct Series {
    key: Vec<(String, String)>,
    attributes: Vec<(String, String)>,
    obs: Vec<Obs>,
}

#[derive(Debug, Default)]
struct Obs {
    line: u64,
    time: String,
    value: Option<String>,
    /// Attributes of the observation itself (a `PERIOD` here wins over the series').
    attributes: Vec<(String, String)>,
}

/// Where text being read goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Capture {
    None,
    CodeListName,
    CodeDescription,
    Time,
    Header,
}

/// Everything the message says, read in one pass.
#[derive(Debug, Default)]
struct Message {
    codelists: HashMap<String, CodeList>,
    series: Vec<Series>,
    /// Text of the header and description blocks, lowercase, to recognise the indicator.
    header_text: String,
}

fn layout(message: String) -> IngestError {
    IngestError::BadLayout {
        format: NAME,
        message,
    }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        let key = a.key.as_ref();
        (key == name || a.key.local_name().as_ref() == name && !key.contains(':'))
            .then(|| {
                a.normalized_value(XmlVersion::Implicit1_0)
                    .map(|v| v.into_owned())
                    .ok()
            })
            .flatten()
    })
}

/// Whether an element's `xml:lang` is Russian or absent (a Russian text wins over others).
fn russian_or_unmarked(e: &BytesStart<'_>) -> bool {
    attr(e, "xml:lang").is_none_or(|l| l.eq_ignore_ascii_case("ru"))
}

/// 1-based line of a byte offset, counting forward only.
#[derive(Debug)]
struct LineOf<'a> {
    text: &'a [u8],
    pos: usize,
    line: u64,
}

impl LineOf<'_> {
    fn at(&mut self, offset: usize) -> u64 {
        let offset = offset.min(self.text.len()).max(self.pos);
        self.line += self.text[self.pos..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.pos = offset;
        self.line
    }
}

fn read_message(text: &str, sink: &mut RowSink) -> Result<Message, IngestError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut lines = LineOf {
        text: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut msg = Message::default();
    let mut stack: Vec<String> = Vec::new();
    // How many `DataSet` and `CodeLists` elements are open: kept as the stack changes, so an
    // element costs the same however deep it is.
    let (mut datasets, mut codelists) = (0usize, 0usize);
    let mut capture = Capture::None;
    let mut buffer = String::new();
    let mut codelist: Option<(String, CodeList)> = None;
    let mut code: Option<String> = None;
    let mut series: Option<Series> = None;
    let mut obs: Option<Obs> = None;
    let mut root_seen = false;
    loop {
        let start = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            let line = lines.at(reader.error_position() as usize);
            layout(format!("line {line}: the XML cannot be read ({e})"))
        })?;
        let (element, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = element {
            let name = e.local_name().as_ref().to_string();
            if !root_seen {
                root_seen = true;
                if name != "GenericData" {
                    return Err(layout(format!(
                        "the root element is `{name}`, not `GenericData`: export the indicator \
                         from fedstat.ru as SDMX (SDMX-ML 1.0 generic data)"
                    )));
                }
            }
            let parent = stack.last().map(String::as_str).unwrap_or("");
            let (in_dataset, in_codelists) = (datasets > 0, codelists > 0);
            match name.as_str() {
                "CodeList" => {
                    codelist = Some((attr(&e, "id").unwrap_or_default(), CodeList::default()));
                }
                "Name" if parent == "CodeList" && russian_or_unmarked(&e) => {
                    buffer.clear();
                    capture = Capture::CodeListName;
                }
                "Code" if codelist.is_some() => code = attr(&e, "value"),
                "Description" if parent == "Code" && russian_or_unmarked(&e) => {
                    buffer.clear();
                    capture = Capture::CodeDescription;
                }
                "Series" => series = Some(Series::default()),
                "Obs" if series.is_some() => {
                    sink.count_row()?;
                    obs = Some(Obs {
                        line: lines.at(start),
                        ..Obs::default()
                    });
                }
                "Value" if parent == "SeriesKey" => {
                    if let Some(s) = series.as_mut() {
                        s.key.push((
                            attr(&e, "concept").unwrap_or_default(),
                            attr(&e, "value").unwrap_or_default(),
                        ));
                    }
                }
                "Value" if parent == "Attributes" => {
                    let pair = (
                        attr(&e, "concept").unwrap_or_default(),
                        attr(&e, "value").unwrap_or_default(),
                    );
                    if let Some(o) = obs.as_mut() {
                        o.attributes.push(pair);
                    } else if let Some(s) = series.as_mut() {
                        s.attributes.push(pair);
                    }
                }
                "Time" if obs.is_some() => {
                    buffer.clear();
                    capture = Capture::Time;
                }
                "ObsValue" => {
                    if let Some(o) = obs.as_mut() {
                        o.value = attr(&e, "value");
                    }
                }
                _ if !in_dataset
                    && !in_codelists
                    && !matches!(name.as_str(), "DataSet" | "CodeLists")
                    && !stack.is_empty() =>
                {
                    // Header and description blocks: their text and attribute values.
                    for a in e.attributes().flatten() {
                        if let Ok(v) = a.normalized_value(XmlVersion::Implicit1_0) {
                            msg.header_text.push_str(&v.to_lowercase());
                            msg.header_text.push(' ');
                        }
                    }
                    capture = Capture::Header;
                }
                _ => {}
            }
            if empty {
                finish(
                    &name,
                    &mut msg,
                    &mut codelist,
                    &mut code,
                    &mut series,
                    &mut obs,
                    &mut capture,
                    &mut buffer,
                );
            } else {
                if stack.len() >= MAX_DEPTH {
                    let line = lines.at(start);
                    return Err(layout(format!(
                        "line {line}: elements nest more than {MAX_DEPTH} deep, deeper than \
                         any SDMX message: export the indicator from fedstat.ru again"
                    )));
                }
                match name.as_str() {
                    "DataSet" => datasets += 1,
                    "CodeLists" => codelists += 1,
                    _ => {}
                }
                stack.push(name);
            }
            continue;
        }
        match event {
            Event::Text(t) if capture != Capture::None => buffer.push_str(&t.xml10_content()),
            Event::CData(t) if capture != Capture::None => buffer.push_str(&t),
            Event::GeneralRef(r) if capture != Capture::None => match r.resolve_char_ref() {
                Ok(Some(c)) => buffer.push(c),
                _ => match &*r.into_inner() {
                    "amp" => buffer.push('&'),
                    "lt" => buffer.push('<'),
                    "gt" => buffer.push('>'),
                    "quot" => buffer.push('"'),
                    "apos" => buffer.push('\''),
                    _ => {}
                },
            },
            Event::End(e) => {
                let name = e.local_name().as_ref().to_string();
                match stack.pop().as_deref() {
                    Some("DataSet") => datasets = datasets.saturating_sub(1),
                    Some("CodeLists") => codelists = codelists.saturating_sub(1),
                    _ => {}
                }
                finish(
                    &name,
                    &mut msg,
                    &mut codelist,
                    &mut code,
                    &mut series,
                    &mut obs,
                    &mut capture,
                    &mut buffer,
                );
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err(layout(
            "there is no XML element in it: export the indicator from fedstat.ru as SDMX".into(),
        ));
    }
    Ok(msg)
}

/// What the end of an element completes.
#[allow(clippy::too_many_arguments)]
fn finish(
    name: &str,
    msg: &mut Message,
    codelist: &mut Option<(String, CodeList)>,
    code: &mut Option<String>,
    series: &mut Option<Series>,
    obs: &mut Option<Obs>,
    capture: &mut Capture,
    buffer: &mut String,
) {
    let text = std::mem::take(buffer).trim().to_string();
    match (*capture, name) {
        (Capture::CodeListName, "Name") => {
            if let Some((_, list)) = codelist.as_mut()
                && list.name.is_empty()
            {
                list.name = text;
            }
        }
        (Capture::CodeDescription, "Description") => {
            if let (Some((_, list)), Some(c)) = (codelist.as_mut(), code.as_ref()) {
                list.codes.entry(c.clone()).or_insert(text);
            }
        }
        (Capture::Time, "Time") => {
            if let Some(o) = obs.as_mut() {
                o.time = text;
            }
        }
        (Capture::Header, _) => {
            msg.header_text.push_str(&text.to_lowercase());
            msg.header_text.push(' ');
            // Nested header elements keep capturing; the outer end stops at the same state.
            *capture = Capture::Header;
            if matches!(name, "Header" | "Description") {
                *capture = Capture::None;
            }
            return;
        }
        _ => {}
    }
    *capture = Capture::None;
    match name {
        "CodeList" => {
            if let Some((id, list)) = codelist.take() {
                msg.codelists.insert(id, list);
            }
        }
        "Code" => *code = None,
        "Obs" => {
            if let (Some(o), Some(s)) = (obs.take(), series.as_mut()) {
                s.obs.push(o);
            }
        }
        "Series" => {
            if let Some(s) = series.take() {
                msg.series.push(s);
            }
        }
        _ => {}
    }
}

/// How a series dimension is used.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Country,
    Purpose,
    /// Must keep one value in the file.
    Fixed,
}

fn role(concept: &str, list: Option<&CodeList>) -> Role {
    let id = concept.to_lowercase();
    let name = list.map(|l| l.name.to_lowercase()).unwrap_or_default();
    if id.contains("oksm")
        || name.contains("оксм")
        || name.contains("стран")
        || name.contains("гражданств")
    {
        Role::Country
    } else if name.contains("цел") || id.contains("purpose") {
        Role::Purpose
    } else {
        Role::Fixed
    }
}

/// A count written with a decimal comma: whole, or with a zero fraction (`3765`, `3765,0`);
/// spaces group thousands (`3 765`). A `,` or `.` followed by exactly three digits (`1,000`,
/// `1.000`) could be a thousands separator or a decimal one, so it is refused as ambiguous
/// rather than read as 1.
fn whole_count(value: &str) -> Result<u64, String> {
    let t: String = value
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    if t.is_empty() {
        return Err("the value is empty: a figure is a whole number from 0 up".into());
    }
    let (int, frac) = match t.split_once([',', '.']) {
        Some((i, f)) => (i, f),
        None => (t.as_str(), ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if frac.len() == 3 && digits(frac) && !int.is_empty() && digits(int) {
        return Err(format!(
            "`{value}` is ambiguous: `,` or `.` before three digits may group thousands or \
             mark decimals; EMISS writes counts with a decimal comma and no grouping (3765 or \
             3765,0): write the count without a separator"
        ));
    }
    if int.is_empty() || !digits(int) || !digits(frac) {
        return Err(if t.starts_with('-') {
            format!("`{value}` is negative: a count of crossings is a whole number from 0 up")
        } else {
            format!("`{value}` is not a number (EMISS writes e.g. 3765 or 3765,0)")
        });
    }
    if frac.bytes().any(|b| b != b'0') {
        return Err(format!(
            "`{value}` is fractional: a count of crossings must be whole (is this indicator a \
             count?)"
        ));
    }
    int.parse()
        .map_err(|_| format!("`{value}` is too large to be a count"))
}

fn parse(bytes: &[u8], options: &Options<'_>) -> Result<Parsed, IngestError> {
    let text = crate::decode::decode_text(bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut sink = RowSink::new(options.limits);
    let msg = read_message(text, &mut sink)?;
    let source = match options.source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => tokenize(s).ok_or_else(|| IngestError::BadSource {
            value: s.to_string(),
        })?,
        None => INDICATORS
            .iter()
            .find(|(word, _)| msg.header_text.contains(word))
            .map_or(DEFAULT_SOURCE, |(_, source)| source)
            .to_string(),
    };

    // The role of every dimension, and the values of those that must stay fixed.
    let mut roles: Vec<(String, Role)> = Vec::new();
    let mut fixed: HashMap<String, String> = HashMap::new();
    let mut varying: Vec<String> = Vec::new();
    for s in &msg.series {
        for (concept, value) in &s.key {
            if !roles.iter().any(|(c, _)| c == concept) {
                roles.push((concept.clone(), role(concept, msg.codelists.get(concept))));
            }
            if roles.iter().any(|(c, r)| c == concept && *r == Role::Fixed) {
                let first = fixed
                    .entry(concept.clone())
                    .or_insert_with(|| value.clone());
                if first != value && !varying.contains(concept) {
                    varying.push(concept.clone());
                }
            }
        }
    }
    if !msg.series.is_empty() && !roles.iter().any(|(_, r)| *r == Role::Country) {
        let dims: Vec<String> = roles
            .iter()
            .map(|(c, _)| match msg.codelists.get(c) {
                Some(l) if !l.name.is_empty() => format!("{c} ({})", l.name),
                _ => c.clone(),
            })
            .collect();
        return Err(layout(format!(
            "no country dimension: borderwatch reads EMISS indicators of crossings by country \
             (a SeriesKey dimension with the OKSM codelist); this file's dimensions are {}",
            dims.join(", ")
        )));
    }
    let describe = |concept: &str, value: &str| -> String {
        msg.codelists
            .get(concept)
            .and_then(|l| l.codes.get(value))
            .cloned()
            .unwrap_or_else(|| value.to_string())
    };

    // Year-to-date figures wait for their series and year: (source-less series key, year).
    type Group = (Country, String, i32);
    let mut groups: HashMap<Group, Vec<(ToDate, u64, String)>> = HashMap::new();
    let mut group_order: Vec<Group> = Vec::new();
    let mut singles: Vec<(Group, Label, u64, u64, String, String)> = Vec::new();
    for s in &msg.series {
        for o in &s.obs {
            let checked = (|| {
                if let Some(concept) = varying.first() {
                    let name = msg
                        .codelists
                        .get(concept)
                        .map(|l| l.name.clone())
                        .unwrap_or_default();
                    return Err((
                        "SeriesKey",
                        concept.clone(),
                        format!(
                            "the dimension `{concept}` ({name}) takes more than one value in \
                             this file, and borderwatch has no series for it: export the \
                             indicator with one value of it selected"
                        ),
                    ));
                }
                let mut country = None;
                let mut category = TOTAL_CATEGORY.to_string();
                for (concept, value) in &s.key {
                    let described = describe(concept, value);
                    match roles.iter().find(|(c, _)| c == concept).map(|(_, r)| *r) {
                        Some(Role::Country) => {
                            let c = Country::from_oksm(value)
                                .or_else(|_| Country::parse(&described))
                                .map_err(|_| {
                                    (
                                        "SeriesKey",
                                        value.clone(),
                                        format!(
                                            "`{value}` ({described}) is neither an OKSM country \
                                             code nor a known country name"
                                        ),
                                    )
                                })?;
                            country = Some(c);
                        }
                        Some(Role::Purpose) => {
                            category = crate::purpose::category_token(&described)
                                .map_err(|reason| ("SeriesKey", described.clone(), reason))?;
                        }
                        _ => {}
                    }
                }
                let country = country.ok_or_else(|| {
                    (
                        "SeriesKey",
                        String::new(),
                        "this series has no country dimension value".to_string(),
                    )
                })?;
                let label = o
                    .attributes
                    .iter()
                    .chain(&s.attributes)
                    .find(|(c, _)| c.eq_ignore_ascii_case("PERIOD"))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        (
                            "PERIOD",
                            String::new(),
                            "the series has no PERIOD attribute (e.g. `III квартал`)".to_string(),
                        )
                    })?;
                let parsed =
                    ytd::parse_label(&label).map_err(|reason| ("PERIOD", label.clone(), reason))?;
                let year = o.time.trim();
                let year: i32 = (year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| year.parse().ok())
                    .flatten()
                    .ok_or_else(|| {
                        (
                            "Time",
                            o.time.clone(),
                            "expected the year as four digits (2019)".to_string(),
                        )
                    })?;
                let raw = o.value.clone().unwrap_or_default();
                let count =
                    whole_count(&raw).map_err(|reason| ("ObsValue", raw.clone(), reason))?;
                Ok(((country, category, year), parsed, count, label, raw))
            })();
            match checked {
                Err((column, value, reason)) => sink.reject(o.line, column, &value, reason),
                Ok((group, label, count, text, raw)) => {
                    singles.push((group, label, count, o.line, raw, text));
                }
            }
        }
    }
    // A group with any year-to-date label reads January and the first quarter as
    // year-to-date too (`январь`, `I квартал` open the year's running total).
    let ytd_groups: std::collections::HashSet<Group> = singles
        .iter()
        .filter(|(_, l, ..)| matches!(l, Label::ToDate(_)))
        .map(|(g, ..)| g.clone())
        .collect();
    for (group, label, count, line, raw, text) in singles {
        let end = match label {
            Label::ToDate(end) => Some(end),
            Label::Month(1) if ytd_groups.contains(&group) => Some(1),
            Label::Quarter(1) if ytd_groups.contains(&group) => Some(3),
            _ => None,
        };
        match end {
            Some(end) => {
                if !groups.contains_key(&group) {
                    group_order.push(group.clone());
                }
                groups.entry(group).or_default().push((
                    ToDate {
                        end,
                        value: count,
                        label: text,
                    },
                    line,
                    raw,
                ));
            }
            None => {
                let (country, category, year) = group;
                if let Some(period) = label.single(year) {
                    keep(
                        &mut sink, &source, country, &category, period, count, line, &raw,
                    );
                }
            }
        }
    }
    for group in group_order {
        let Some(points) = groups.remove(&group) else {
            continue;
        };
        let (country, category, year) = group;
        let todate: Vec<ToDate> = points.iter().map(|(t, ..)| t.clone()).collect();
        for (pieces, (_, line, raw)) in ytd::difference(year, &todate).into_iter().zip(&points) {
            match pieces {
                Ok(pieces) => {
                    for (period, count) in pieces {
                        keep(
                            &mut sink, &source, country, &category, period, count, *line, raw,
                        );
                    }
                }
                Err(reason) => sink.reject(
                    *line,
                    "ObsValue",
                    raw,
                    format!("{source}/{country}/{category}: {reason}"),
                ),
            }
        }
    }
    Ok(sink.finish())
}

#[allow(clippy::too_many_arguments)]
fn keep(
    sink: &mut RowSink,
    source: &str,
    country: Country,
    category: &str,
    period: Period,
    count: u64,
    line: u64,
    raw: &str,
) {
    let obs = Observation {
        source: source.to_string(),
        country,
        category: category.to_string(),
        period,
        count,
        release_id: String::new(),
    };
    sink.keep(line, obs, raw);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_with_a_decimal_comma_allowed() {
        assert_eq!(whole_count("3765"), Ok(3765));
        assert_eq!(whole_count("3765,0"), Ok(3765));
        assert_eq!(whole_count("3 765"), Ok(3765));
        assert!(whole_count("190,8").unwrap_err().contains("fractional"));
        assert!(whole_count("-5").unwrap_err().contains("negative"));
        assert!(whole_count("").is_err());
        assert!(whole_count(",5").is_err());
        // Read as 1 before: a thousands separator or a decimal one, it cannot be told.
        for v in ["1,000", "1.000", "12,500"] {
            assert!(whole_count(v).unwrap_err().contains("ambiguous"), "{v}");
        }
        assert!(whole_count("1.000,0").is_err());
        assert_eq!(whole_count("1 000"), Ok(1000));
        assert_eq!(whole_count("1000,00"), Ok(1000));
    }
}
