//! The layout of the figures in [`OBS_STREAM`]: one subject per series,
//! `bw.obs.<source>.<country>.<category>` ([`names::obs_series_subject`]), and one message
//! per release and series holding that release's new and revised figures of the series
//! ([`SeriesFigures`]). A series' messages, in stream order, are its revision history;
//! folding them (the latest figure per period wins) gives its figures, and folding only
//! those at or below a sequence gives them as a release saw them.
//!
//! Why: nats-server keeps state per subject in memory. With one subject per figure (the
//! layout before, [`names::obs_subject`]) that cost about 400 bytes per stored figure per
//! node; per series it is shared by the series' figures, and what is left follows the
//! stored bytes, about 18 a figure (BENCHMARKS.md, "nats-server memory per stored
//! figure"). The layout is the transport's business only: the model crate knows nothing of
//! it, and ingest, analytics and `borderwatch migrate` read and write through here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::names::{self, OBS_STREAM};
use crate::{BusError, Message, Outgoing, Result, Transport};

/// Figures per message at most: a series message stays far below NATS's 1 MiB payload
/// (about 20 bytes a figure) however long the series; a longer release of one series is cut
/// into parts.
pub const FIGURES_PER_MESSAGE: usize = 20_000;

/// One release's new and revised figures of one series: the payload of a message on the
/// series' subject. Compact JSON, `{"r":"rel-…","f":[["2024-Q3",3765],…]}`: about 18 bytes
/// a figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesFigures {
    /// The release the figures came from.
    #[serde(rename = "r", default, skip_serializing_if = "String::is_empty")]
    pub release_id: String,
    /// `(period, count)`, periods as `2024`, `2024-Q3` or `2024-07`.
    #[serde(rename = "f")]
    pub figures: Vec<(String, u64)>,
}

/// A series: source, country code and category, as its subject names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Series {
    pub source: String,
    pub country: String,
    pub category: String,
}

impl Series {
    pub fn new(source: &str, country: &str, category: &str) -> Series {
        Series {
            source: source.to_string(),
            country: country.to_string(),
            category: category.to_string(),
        }
    }

    /// The series a subject of the series layout names (`None` for any other subject,
    /// among them the per-figure subjects of the layout before).
    pub fn of_subject(subject: &str) -> Option<Series> {
        let mut t = subject.split('.');
        let (Some("bw"), Some("obs"), Some(source), Some(country), Some(category), None) =
            (t.next(), t.next(), t.next(), t.next(), t.next(), t.next())
        else {
            return None;
        };
        Some(Series::new(source, country, category))
    }

    pub fn subject(&self) -> String {
        names::obs_series_subject(&self.source, &self.country, &self.category)
    }
}

/// One stored figure: its count, the release it came from and the stream sequence of the
/// message that stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub count: u64,
    pub release_id: String,
    pub seq: u64,
}

/// The figures of a series, by period.
pub type Figures = BTreeMap<String, Figure>;

/// The messages that store `figures` of `series` for release `release_id`, in parts of at
/// most [`FIGURES_PER_MESSAGE`]. With `dedup`, each carries as message id a 64-bit hash
/// (16 hex digits) of its subject and payload (which names the release): the same figures
/// published twice within the duplicate window (a retried release) are stored once, and
/// different figures do not share an id. Short, because every message stores its id: a
/// longer one (release, series and part spelled out) cost 40 bytes more per message. Without it (a replay restoring what the stream lost, which must
/// store again what the window still remembers), none.
pub fn series_messages(
    series: &Series,
    release_id: &str,
    figures: &[(String, u64)],
    dedup: bool,
) -> Vec<Outgoing> {
    figures
        .chunks(FIGURES_PER_MESSAGE)
        .map(|chunk| {
            let payload = serde_json::to_vec(&SeriesFigures {
                release_id: release_id.to_string(),
                figures: chunk.to_vec(),
            })
            .unwrap_or_default();
            let subject = series.subject();
            let id = format!(
                "{:016x}",
                fnv1a(&[subject.as_bytes(), b" ", &payload].concat())
            );
            let msg = Outgoing::new(subject, payload);
            if dedup { msg.with_id(id) } else { msg }
        })
        .collect()
}

/// FNV-1a, 64 bits: a hash that stays the same across builds and versions (message ids are
/// compared across processes and restarts).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Adds one stored message of a series to its figures: later messages win per period.
/// A payload that does not parse is skipped (nothing else writes the stream's subjects).
pub fn fold(figures: &mut Figures, msg: &Message) {
    fold_as_of(figures, msg, None);
}

/// [`fold`] as the stream stood at sequence `as_of` (`None`: now): only versions stored at
/// or below it count. A plain message above `as_of` adds nothing; a snapshot
/// ([`SeriesSnapshot`]), wherever it lies, replaces what was folded from the messages it
/// covers with its versions at or below `as_of`, so a series compacted after `as_of` reads
/// as its messages did. Returns whether the message holds versions stored after `as_of`
/// (newer figures than the read asked for).
pub fn fold_as_of(figures: &mut Figures, msg: &Message, as_of: Option<u64>) -> bool {
    let after = |seq: u64| as_of.is_some_and(|as_of| seq > as_of);
    match Content::of(msg) {
        Some(Content::Figures(batch)) => {
            if after(msg.seq) {
                return !batch.figures.is_empty();
            }
            for (period, count) in batch.figures {
                figures.insert(
                    period,
                    Figure {
                        count,
                        release_id: batch.release_id.clone(),
                        seq: msg.seq,
                    },
                );
            }
            false
        }
        Some(Content::Snapshot(snapshot)) => {
            let covered = snapshot.covered();
            figures.retain(|_, f| f.seq > covered);
            let newer = as_of.is_some_and(|as_of| snapshot.holds_after(as_of));
            for (period, versions) in snapshot.history {
                if let Some(version) = versions.into_iter().rev().find(|v| !after(v.seq)) {
                    figures.entry(period).or_insert(version);
                }
            }
            newer
        }
        None => false,
    }
}

/// Every stored version of every period of a series, oldest first: what a snapshot keeps.
pub type History = BTreeMap<String, Vec<Figure>>;

/// Adds one stored message of a series to its history: a plain message adds a version of
/// each of its periods; a snapshot replaces the versions of the messages it covers with its
/// own (the same ones, unless those messages are gone).
pub fn add_to_history(history: &mut History, msg: &Message) {
    match Content::of(msg) {
        Some(Content::Figures(batch)) => {
            for (period, count) in batch.figures {
                let versions = history.entry(period).or_default();
                let version = Figure {
                    count,
                    release_id: batch.release_id.clone(),
                    seq: msg.seq,
                };
                // A period twice in one message: the later one counts, as in `fold`.
                match versions.last_mut() {
                    Some(last) if last.seq == msg.seq => *last = version,
                    _ => versions.push(version),
                }
            }
        }
        Some(Content::Snapshot(snapshot)) => {
            let covered = snapshot.covered();
            for versions in history.values_mut() {
                versions.retain(|v| v.seq > covered);
            }
            for (period, mut versions) in snapshot.history {
                let kept = history.entry(period).or_default();
                versions.append(kept);
                *kept = versions;
            }
            history.retain(|_, versions| !versions.is_empty());
        }
        None => {}
    }
}

/// What a message of a series holds.
enum Content {
    Figures(SeriesFigures),
    Snapshot(SeriesSnapshot),
}

impl Content {
    /// `None` for a payload that is neither.
    fn of(msg: &Message) -> Option<Content> {
        if msg.payload.starts_with(SNAPSHOT_MAGIC) {
            return SeriesSnapshot::decode(&msg.payload).map(Content::Snapshot);
        }
        serde_json::from_slice(&msg.payload)
            .ok()
            .map(Content::Figures)
    }
}

/// How a snapshot's payload starts: a JSON payload ([`SeriesFigures`]) never starts with NUL.
const SNAPSHOT_MAGIC: &[u8] = b"\0S1";

/// A series compacted into one message: every version of every period its messages held,
/// with the release and stream sequence each came from, so that a read "as of" any earlier
/// sequence gets what the messages gave it ([`fold_as_of`]).
///
/// Binary, because a series that grows a period per release has one release per figure,
/// and spelling each out in JSON cost about 50 bytes a figure. Integers are LEB128 varints:
///
/// ```text
/// "\0S1"
/// sources: n, then per message a version came from (by sequence):
///     release: 0 + 8 bytes (`rel-` and 16 lowercase hex digits) | 1 + len + bytes
///     sequence − the previous source's sequence
/// runs: n, then per run of consecutive periods:
///     first period: kind (1 year, 4 quarter, 12 month) + periods since year 0
///                   | 0 + len + bytes (a period that does not parse; a run of one)
///     periods in the run, then per period: versions, then per version (by sequence):
///         zigzag(source index − the previous version's source index), count
/// ```
///
/// About 14 bytes a figure for a series grown one release at a time (8 of them the
/// release id), 4 for one brought by few releases (BENCHMARKS.md, "nats-server memory
/// per stored figure").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeriesSnapshot {
    pub history: History,
}

impl SeriesSnapshot {
    /// The highest sequence a version came from: the snapshot stands for every message of
    /// the series up to there.
    pub fn covered(&self) -> u64 {
        self.history
            .values()
            .flatten()
            .map(|v| v.seq)
            .max()
            .unwrap_or(0)
    }

    /// Whether it holds versions stored after `as_of`.
    fn holds_after(&self, as_of: u64) -> bool {
        self.covered() > as_of
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut sources: Vec<(u64, &str)> = self
            .history
            .values()
            .flatten()
            .map(|v| (v.seq, v.release_id.as_str()))
            .collect();
        sources.sort_unstable();
        sources.dedup_by_key(|(seq, _)| *seq);
        let index: HashMap<u64, u64> = sources
            .iter()
            .enumerate()
            .map(|(i, (seq, _))| (*seq, i as u64))
            .collect();
        let mut out = SNAPSHOT_MAGIC.to_vec();
        put_varint(&mut out, sources.len() as u64);
        let mut previous = 0;
        for (seq, release) in &sources {
            put_release(&mut out, release);
            put_varint(&mut out, seq - previous);
            previous = *seq;
        }
        // Periods in time order, frequency by frequency; those that do not parse last.
        let mut periods: Vec<PeriodVersions<'_>> = self
            .history
            .iter()
            .map(|(p, versions)| (PeriodKey::parse(p), p, versions))
            .collect();
        periods.sort_by(|a, b| (a.0.is_none(), a.0, a.1).cmp(&(b.0.is_none(), b.0, b.1)));
        let mut runs: Vec<Vec<PeriodVersions<'_>>> = Vec::new();
        for period in periods {
            match runs.last_mut() {
                Some(run)
                    if matches!((run.last().and_then(|p| p.0), period.0),
                        (Some(last), Some(key)) if last.next() == key) =>
                {
                    run.push(period)
                }
                _ => runs.push(vec![period]),
            }
        }
        put_varint(&mut out, runs.len() as u64);
        let mut last_source: u64 = 0;
        for run in runs {
            match run[0].0 {
                Some(key) => {
                    out.push(key.per_year as u8);
                    put_varint(&mut out, key.index as u64);
                }
                None => {
                    out.push(0);
                    put_bytes(&mut out, run[0].1.as_bytes());
                }
            }
            put_varint(&mut out, run.len() as u64);
            for (_, _, versions) in run {
                put_varint(&mut out, versions.len() as u64);
                for v in versions {
                    let source = index[&v.seq];
                    let step = source as i64 - last_source as i64;
                    put_varint(&mut out, ((step << 1) ^ (step >> 63)) as u64);
                    put_varint(&mut out, v.count);
                    last_source = source;
                }
            }
        }
        out
    }

    /// `None` for a payload that is not a whole snapshot.
    pub fn decode(payload: &[u8]) -> Option<SeriesSnapshot> {
        let mut r = Reader(payload.strip_prefix(SNAPSHOT_MAGIC)?);
        let n = r.varint()?;
        let mut sources: Vec<(String, u64)> = Vec::new();
        let mut seq = 0u64;
        for _ in 0..n {
            let release = r.release()?;
            seq = seq.checked_add(r.varint()?)?;
            sources.push((release, seq));
        }
        let mut history = History::new();
        let mut source: i64 = 0;
        for _ in 0..r.varint()? {
            let kind = r.byte()?;
            let first = match kind {
                0 => Err(String::from_utf8(r.bytes()?.to_vec()).ok()?),
                1 | 4 | 12 => Ok(PeriodKey {
                    per_year: i64::from(kind),
                    index: i64::try_from(r.varint()?).ok()?,
                }),
                _ => return None,
            };
            let len = r.varint()?;
            if first.is_err() && len != 1 {
                return None;
            }
            for i in 0..len {
                let period = match &first {
                    Ok(key) => key.offset(i as i64).to_string(),
                    Err(raw) => raw.clone(),
                };
                let versions = history.entry(period).or_default();
                for _ in 0..r.varint()? {
                    let zigzag = r.varint()?;
                    source += ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
                    let (release_id, seq) = sources.get(usize::try_from(source).ok()?)?;
                    versions.push(Figure {
                        count: r.varint()?,
                        release_id: release_id.clone(),
                        seq: *seq,
                    });
                }
            }
        }
        if !r.0.is_empty() {
            return None;
        }
        history.retain(|_, versions| !versions.is_empty());
        Some(SeriesSnapshot { history })
    }
}

/// A period of a snapshot being written: its key (`None`: it does not parse), its text and
/// its versions.
type PeriodVersions<'a> = (Option<PeriodKey>, &'a String, &'a Vec<Figure>);

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A release id: 8 bytes when it is `rel-` and 16 lowercase hex digits (as ingest names
/// releases), else spelled out.
fn put_release(out: &mut Vec<u8>, release: &str) {
    let hex = release
        .strip_prefix("rel-")
        .filter(|h| h.len() == 16 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    match hex.and_then(|h| u64::from_str_radix(h, 16).ok()) {
        Some(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_be_bytes());
        }
        None => {
            out.push(1);
            put_bytes(out, release.as_bytes());
        }
    }
}

/// Reads a snapshot's payload front to back; every read is `None` past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(bytes)
    }

    fn release(&mut self) -> Option<String> {
        match self.byte()? {
            0 => {
                let mut n = [0u8; 8];
                for b in &mut n {
                    *b = self.byte()?;
                }
                Some(format!("rel-{:016x}", u64::from_be_bytes(n)))
            }
            1 => String::from_utf8(self.bytes()?.to_vec()).ok(),
            _ => None,
        }
    }
}

/// A period as a frequency and a count of periods since year 0, for runs of consecutive
/// periods: `2024` (years), `2024-Q3` (quarters), `2024-07` (months), as the model writes
/// them (`borderwatch_model::Period`, which this crate does not depend on). Only the exact
/// spelling parses, so writing a key back gives the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PeriodKey {
    /// 1 (years), 4 (quarters) or 12 (months) a year.
    per_year: i64,
    index: i64,
}

impl PeriodKey {
    fn parse(period: &str) -> Option<PeriodKey> {
        let year = |y: &str| -> Option<i64> {
            (y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
                .then(|| y.parse().ok())
                .flatten()
        };
        let key = match period.split_once('-') {
            None => PeriodKey {
                per_year: 1,
                index: year(period)?,
            },
            Some((y, q)) if q.len() == 2 && q.starts_with('Q') => {
                let q: i64 = q[1..].parse().ok().filter(|q| (1..=4).contains(q))?;
                PeriodKey {
                    per_year: 4,
                    index: year(y)? * 4 + q - 1,
                }
            }
            Some((y, m)) if m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()) => {
                let m: i64 = m.parse().ok().filter(|m| (1..=12).contains(m))?;
                PeriodKey {
                    per_year: 12,
                    index: year(y)? * 12 + m - 1,
                }
            }
            Some(_) => return None,
        };
        (key.to_string() == period).then_some(key)
    }

    fn offset(self, n: i64) -> PeriodKey {
        PeriodKey {
            index: self.index + n,
            ..self
        }
    }

    fn next(self) -> PeriodKey {
        self.offset(1)
    }
}

impl std::fmt::Display for PeriodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (year, within) = (
            self.index.div_euclid(self.per_year),
            self.index.rem_euclid(self.per_year) + 1,
        );
        match self.per_year {
            4 => write!(f, "{year:04}-Q{within}"),
            12 => write!(f, "{year:04}-{within:02}"),
            _ => write!(f, "{year:04}"),
        }
    }
}

/// The message that stores `history` of `series` as one [`SeriesSnapshot`]. Never with a
/// message id: a snapshot the server took for a duplicate would not be stored, and
/// [`compact_source`] then purges the messages it stands for. A retried publish stores a
/// second snapshot of the same history, which reads fold the same and the next compaction
/// folds into one.
pub fn snapshot_message(series: &Series, history: &History) -> Outgoing {
    let payload = SeriesSnapshot {
        history: history.clone(),
    }
    .encode();
    Outgoing::new(series.subject(), payload)
}

/// How long a read of stored messages waits for the next one before giving up.
const STORED_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How many messages each series holds, by series.
pub type MessageCounts = HashMap<Series, u64>;

/// The current figures of every series of `source`: each series' messages folded. One
/// read of the source's messages, from the start to the last one stored when it began.
pub async fn source_figures(bus: &dyn Transport, source: &str) -> Result<HashMap<Series, Figures>> {
    figures_of(bus, &names::obs_series_of_source(source)).await
}

/// [`source_figures`], and how many messages each series holds (ingest compacts those
/// holding more than [`COMPACT_ABOVE`] with [`compact_source`]).
pub async fn source_figures_counted(
    bus: &dyn Transport,
    source: &str,
) -> Result<(HashMap<Series, Figures>, MessageCounts)> {
    figures_counted(bus, &names::obs_series_of_source(source)).await
}

/// The current figures of every series whose subject matches `filter` (for instance
/// [`names::ALL_OBS_SERIES`]), as [`source_figures`] reads them.
///
/// Not safe against a compaction of the same series while it reads (it could miss messages
/// purged before it got to them): its readers are the series' writer itself (ingest, under
/// the source's turn), `borderwatch migrate` with every role stopped, and tests.
pub async fn figures_of(bus: &dyn Transport, filter: &str) -> Result<HashMap<Series, Figures>> {
    Ok(figures_counted(bus, filter).await?.0)
}

/// Reads the stored messages of `filter` from the start to the last one it matches (one
/// read: [`Transport::read_subjects`] ends there by itself), folding each into its series,
/// and counts each series' messages on the way.
async fn figures_counted(
    bus: &dyn Transport,
    filter: &str,
) -> Result<(HashMap<Series, Figures>, MessageCounts)> {
    let mut out: HashMap<Series, Figures> = HashMap::new();
    let mut counts = MessageCounts::new();
    for_each_stored(bus, &[filter], u64::MAX, |msg| {
        if let Some(series) = Series::of_subject(&msg.subject) {
            *counts.entry(series.clone()).or_default() += 1;
            fold(out.entry(series).or_default(), &msg);
        }
    })
    .await?;
    out.retain(|_, figures| !figures.is_empty());
    Ok((out, counts))
}

/// The figures of the series named, as the stream held them at sequence `as_of` (the
/// marker's `obs_seq`: what its release saw; `None`: now), and the series with messages
/// stored after `as_of`. A series with no figure at or below `as_of` is absent.
///
/// Each series is read on its own, from message to message
/// ([`Transport::next_on_subject`]) to the last one stored, 64 series at a time, and its
/// messages folded as of `as_of`.
///
/// Safe against a compaction ([`compact_source`]) running meanwhile, with no second look: a
/// compaction stores each series' snapshot before it purges anything, and a snapshot
/// stands for every message it covers ([`fold_as_of`] drops what those gave). A message
/// purged before the read reached it was purged after its series' snapshot was stored, so
/// before the read ended; the read, going on to the last message stored, meets that
/// snapshot. The read goes past `as_of` for the same reason: a snapshot stored later
/// answers for the messages it covers, and [`fold_as_of`] leaves out what came after.
///
/// (Until 2026-12 one consumer read a thousand series at once. nats-server looks for a
/// consumer's next message block by block, matching every subject of each block against
/// every subject the consumer names, so series with a message in the history and one in
/// the newest release paid for every block in between: a new quarter over 500,000 series
/// read at 0.63 ms a series against 0.21 at 100,000, BENCHMARKS.md "Scale". Followed one
/// subject at a time, the server looks up one subject per block. Before that the read
/// ended at each series' last sequence, taken with [`Transport::last_per_subject`] before
/// it and again after it: two more consumers naming every series, which cost nats-server
/// more than the read itself; "Analytics scaling".)
pub async fn series_as_of(
    bus: &dyn Transport,
    series: &[Series],
    as_of: Option<u64>,
) -> Result<(HashMap<Series, Figures>, HashSet<Series>)> {
    let reads: Vec<futures::future::BoxFuture<'_, Result<(Series, Figures, bool)>>> = series
        .iter()
        .map(|s| Box::pin(read_series(bus, s, as_of)) as _)
        .collect();
    let mut read = futures::stream::iter(reads).buffer_unordered(SERIES_IN_FLIGHT);
    let mut out: HashMap<Series, Figures> = HashMap::new();
    let mut newer: HashSet<Series> = HashSet::new();
    while let Some(one) = read.next().await {
        let (s, figures, has_newer) = one?;
        if has_newer {
            newer.insert(s.clone());
        }
        if !figures.is_empty() {
            out.insert(s, figures);
        }
    }
    Ok((out, newer))
}

/// Series [`series_as_of`] reads at once, each one request at a time.
const SERIES_IN_FLIGHT: usize = 64;

/// One series' messages, first to last stored, folded as of `as_of`; and whether it has
/// messages stored after `as_of`.
async fn read_series(
    bus: &dyn Transport,
    series: &Series,
    as_of: Option<u64>,
) -> Result<(Series, Figures, bool)> {
    let subject = series.subject();
    let mut figures = Figures::new();
    let mut newer = false;
    let mut from = 1;
    while let Some(msg) = bus.next_on_subject(OBS_STREAM, &subject, from).await? {
        from = msg.seq + 1;
        newer |= fold_as_of(&mut figures, &msg, as_of);
    }
    Ok((series.clone(), figures, newer))
}

/// Messages a series may hold before ingest compacts its source ([`compact_source`]): a
/// series grown one period per release then holds at most this many messages besides its
/// snapshot, and each compaction rewrites the source once per this many releases
/// (BENCHMARKS.md, "nats-server memory per stored figure").
pub const COMPACT_ABOVE: u64 = 8;

/// What [`compact_source`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Series whose snapshot was stored.
    pub series: u64,
    /// Messages removed (the snapshots stand for them).
    pub purged: u64,
}

/// Series whose histories [`compact_source`] holds at once: it reads the source's messages
/// once per this many series, so its memory is what this many series hold (about what
/// analytics holds reading two releases' parts), however large the source.
const COMPACTION_SERIES_PER_PASS: usize = 10_000;

/// Snapshots [`compact_source`] stores per [`Transport::publish_all`] (pipelined).
const SNAPSHOTS_PER_PUBLISH: usize = 500;

/// Largest snapshot payload [`compact_source`] stores: far below NATS's 1 MiB message limit
/// (at about 5 bytes a figure, a series of 100,000 figures).
const MAX_SNAPSHOT_BYTES: usize = 512 * 1024;

/// Compacts every series of `source` into one snapshot each ([`snapshot_message`]): reads
/// the source's messages up to the last one (`end`), stores each series' snapshot after
/// them, then removes every message of the source's series up to `end` with **one purge of
/// the source's filter** ([`names::obs_series_of_source`]).
///
/// Why the whole source, and one purge: nats-server removes a subject's messages (a purge
/// by subject, or a rollup) by walking every stored message from the subject's first to its
/// last, and a series grown one message a release has its messages between every other
/// series' messages, so removing series by series costs the source's messages once per
/// series: 1.7 ms a series at 10,000 series, growing with them. One purge of the source's
/// filter walks the stream once: 10,000 series' snapshots stored and 90,000 messages
/// removed in 0.21 s against 16.7 s by rollups (BENCHMARKS.md, "nats-server memory per
/// stored figure", the subjects bench's `replace` case). Every series of the source is rewritten, the ones holding one message too.
///
/// Safe for readers and against failures: every snapshot is stored before anything is
/// removed, and a snapshot stands for every message of its series up to the versions it
/// holds ([`SeriesSnapshot::covered`]), so a read meeting both the snapshot and the
/// messages it stands for folds the same figures, and a failure half-way (some snapshots
/// stored, nothing purged) loses nothing: the next compaction folds the snapshots and the
/// messages into new ones. A reader meets the snapshot of any message purged before it got
/// to it by reading on to the last message stored ([`series_as_of`]). A message stored after `end` (none should be: see below) is
/// not purged, and reads after the snapshot keep it (its versions are newer than what the
/// snapshot covers).
///
/// Memory: the histories of 10,000 series at once; a larger source is read once per that
/// many series. A series whose snapshot would pass 512 KiB cannot be stored in one message:
/// then nothing is purged with the source's filter, and each series whose snapshot was
/// stored has its own messages before it removed instead (the slow way above), the large
/// series keeping its messages.
///
/// Only the series' writer calls it: ingest, holding the source's turn, after a release's
/// markers (analytics may be reading the series meanwhile: see [`series_as_of`]), and
/// `borderwatch migrate` with every role stopped.
pub async fn compact_source(bus: &dyn Transport, source: &str) -> Result<Compacted> {
    let filter = names::obs_series_of_source(source);
    let mut done = Compacted::default();
    // Each series' position among the source's series, in the order its first message
    // came: pass `p` holds the histories of positions p × PASS to (p + 1) × PASS.
    let mut position: HashMap<String, usize> = HashMap::new();
    // The source's last message, learnt in pass 0 (later passes read up to it).
    let mut end = 0;
    let mut stored: Vec<(String, u64)> = Vec::new();
    let mut too_large = false;
    let mut pass = 0;
    while pass == 0 || pass * COMPACTION_SERIES_PER_PASS < position.len() {
        let mut histories: HashMap<String, History> = HashMap::new();
        let to_seq = if pass == 0 { u64::MAX } else { end };
        for_each_stored(bus, &[filter.as_str()], to_seq, |msg| {
            end = end.max(msg.seq);
            let at = match position.get(msg.subject.as_str()) {
                Some(&at) => at,
                None => {
                    let at = position.len();
                    position.insert(msg.subject.clone(), at);
                    at
                }
            };
            if at / COMPACTION_SERIES_PER_PASS == pass {
                add_to_history(histories.entry(msg.subject.clone()).or_default(), &msg);
            }
        })
        .await?;
        let mut snapshots = Vec::new();
        let mut histories: Vec<(String, History)> = histories.into_iter().collect();
        histories.sort_by(|a, b| a.0.cmp(&b.0));
        for (subject, history) in histories {
            let Some(series) = Series::of_subject(&subject) else {
                continue;
            };
            let msg = snapshot_message(&series, &history);
            if msg.payload.len() > MAX_SNAPSHOT_BYTES.min(bus.max_payload()) {
                tracing::warn!(
                    series = %subject,
                    bytes = msg.payload.len(),
                    "series too large for one snapshot: left uncompacted"
                );
                too_large = true;
                continue;
            }
            snapshots.push(msg);
        }
        for chunk in snapshots.chunks(SNAPSHOTS_PER_PUBLISH) {
            let acks = bus.publish_all(chunk.to_vec()).await?;
            for (msg, ack) in chunk.iter().zip(acks) {
                stored.push((msg.subject.clone(), ack.seq));
            }
        }
        pass += 1;
    }
    if stored.is_empty() {
        return Ok(done);
    }
    done.series = stored.len() as u64;
    if !too_large {
        done.purged = bus
            .purge_subject_below(OBS_STREAM, &filter, end + 1)
            .await?;
        return Ok(done);
    }
    for (subject, seq) in &stored {
        done.purged += bus.purge_subject_below(OBS_STREAM, subject, *seq).await?;
    }
    Ok(done)
}

/// Calls `each` with every stored message of `subjects` (subjects or filters), in stream
/// order, up to sequence `end` ([`Transport::read_subjects`]); a read that stalls for
/// [`STORED_READ_TIMEOUT`] is an error.
async fn for_each_stored(
    bus: &dyn Transport,
    subjects: &[&str],
    end: u64,
    mut each: impl FnMut(Message),
) -> Result<()> {
    let mut stored = bus.read_subjects(OBS_STREAM, subjects, end).await?;
    loop {
        let next = tokio::time::timeout(STORED_READ_TIMEOUT, stored.next())
            .await
            .map_err(|_| BusError::Timeout {
                subject: OBS_STREAM.to_string(),
                timeout: STORED_READ_TIMEOUT,
            })?;
        let Some(msg) = next else { return Ok(()) };
        let msg = msg?;
        if msg.seq > end {
            return Ok(());
        }
        each(msg);
    }
}

/// Subjects of the layout before (one per figure, `bw.obs.<source>.<country>.<category>.<period>`).
pub const LEGACY_FILTER: &str = "bw.obs.*.*.*.*";

/// Whether [`OBS_STREAM`] still holds figures in the layout before (one subject per figure):
/// they must be moved with `borderwatch migrate` before any role runs on it.
pub async fn holds_legacy_figures(bus: &dyn Transport) -> Result<bool> {
    if bus.last_seq(OBS_STREAM).await? == 0 {
        return Ok(false);
    }
    // Without legacy subjects this is one round trip (nothing pending); with them it reads
    // their latest versions once, before the role refuses to start.
    Ok(!bus
        .last_per_subject(OBS_STREAM, &[LEGACY_FILTER])
        .await?
        .is_empty())
}

/// The error a role gives when [`holds_legacy_figures`].
pub fn legacy_layout_error() -> String {
    format!(
        "stream {OBS_STREAM} holds figures in the layout before (one subject per figure, \
         bw.obs.<source>.<country>.<category>.<period>); stop every role and run \
         `borderwatch migrate` (with the same --nats or --data) to move them to one subject \
         per series (ARCHITECTURE.md, \"Figures: one subject per series\")"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_subjects_parse_and_figure_subjects_do_not() {
        let s = Series::new("fsb", "PRK", "study");
        assert_eq!(s.subject(), "bw.obs.fsb.PRK.study");
        assert_eq!(Series::of_subject(&s.subject()), Some(s));
        assert_eq!(
            Series::of_subject(&names::obs_subject("fsb", "PRK", "study", "2024-Q3")),
            None
        );
        assert_eq!(Series::of_subject("bw.release.fsb"), None);
    }

    #[test]
    fn messages_are_cut_in_parts_with_ids_that_follow_their_content() {
        let s = Series::new("fsb", "PRK", "study");
        let figures: Vec<(String, u64)> = (0..FIGURES_PER_MESSAGE + 1)
            .map(|i| (format!("{}", 1000 + i), i as u64))
            .collect();
        let msgs = series_messages(&s, "rel-1", &figures, true);
        assert_eq!(msgs.len(), 2);
        assert!(msgs.iter().all(|m| m.payload.len() < 512 * 1024));
        let again = series_messages(&s, "rel-1", &figures, true);
        assert_eq!(msgs[0].msg_id, again[0].msg_id);
        assert_ne!(msgs[0].msg_id, msgs[1].msg_id);
        let mut other = figures.clone();
        other[0].1 += 1;
        let other = series_messages(&s, "rel-1", &other, true);
        assert_ne!(msgs[0].msg_id, other[0].msg_id);
        assert!(
            series_messages(&s, "rel-1", &figures, false)[0]
                .msg_id
                .is_none()
        );
        let payload = std::str::from_utf8(&msgs[1].payload).unwrap();
        assert_eq!(payload, r#"{"r":"rel-1","f":[["21000",20000]]}"#);
    }

    #[test]
    fn folding_keeps_the_latest_figure_per_period() {
        let msg = |seq: u64, payload: &str| Message {
            subject: "bw.obs.fsb.PRK.study".into(),
            headers: Vec::new(),
            payload: payload.to_string().into(),
            seq,
        };
        let mut figures = Figures::new();
        fold(
            &mut figures,
            &msg(1, r#"{"r":"a","f":[["2024-Q1",1],["2024-Q2",2]]}"#),
        );
        fold(&mut figures, &msg(2, "not json"));
        fold(&mut figures, &msg(3, r#"{"r":"b","f":[["2024-Q2",20]]}"#));
        assert_eq!(figures.len(), 2);
        assert_eq!(figures["2024-Q1"].release_id, "a");
        assert_eq!(
            figures["2024-Q2"],
            Figure {
                count: 20,
                release_id: "b".into(),
                seq: 3
            }
        );
    }

    fn series_msg(seq: u64, release: &str, figures: &[(&str, u64)]) -> Message {
        let figures: Vec<(String, u64)> =
            figures.iter().map(|(p, c)| (p.to_string(), *c)).collect();
        let out = series_messages(&Series::new("fsb", "PRK", "study"), release, &figures, true);
        Message {
            subject: out[0].subject.clone(),
            headers: Vec::new(),
            payload: out[0].payload.clone(),
            seq,
        }
    }

    fn stored(out: Outgoing, seq: u64) -> Message {
        Message {
            subject: out.subject,
            headers: Vec::new(),
            payload: out.payload,
            seq,
        }
    }

    fn history_of(msgs: &[Message]) -> History {
        let mut history = History::new();
        for m in msgs {
            add_to_history(&mut history, m);
        }
        history
    }

    fn folded(msgs: &[Message], as_of: Option<u64>) -> Figures {
        let mut figures = Figures::new();
        for m in msgs {
            fold_as_of(&mut figures, m, as_of);
        }
        figures
    }

    /// A series with revisions (one revised twice), periods of three frequencies, a period
    /// given twice in one message, gaps, and a period that does not parse.
    fn revised_series() -> Vec<Message> {
        vec![
            series_msg(
                2,
                "rel-a",
                &[
                    ("2023-Q1", 10),
                    ("2023-Q2", 11),
                    ("2023-Q3", 12),
                    ("2023", 40),
                ],
            ),
            series_msg(
                5,
                "rel-b",
                &[("2023-Q4", 13), ("2023-Q2", 111), ("2024-01", 7)],
            ),
            series_msg(
                6,
                "rel-c",
                &[("2024-Q1", 14), ("2024-02", 8), ("odd", 1), ("2024-Q1", 15)],
            ),
            series_msg(
                9,
                "rel-d",
                &[
                    ("2023-Q2", 112),
                    ("2024-Q2", 16),
                    ("2024-Q4", 18),
                    ("2023", 41),
                ],
            ),
        ]
    }

    #[test]
    fn a_snapshot_reads_as_its_messages_did_as_of_every_sequence() {
        let msgs = revised_series();
        let snapshot = snapshot_message(&Series::new("fsb", "PRK", "study"), &history_of(&msgs));
        // Stored after the messages; read alone (they were purged), or after them (not yet).
        let alone = vec![stored(snapshot.clone(), 12)];
        let mut both = msgs.clone();
        both.push(stored(snapshot, 12));
        for as_of in (0..=13).map(Some).chain([None]) {
            let expected = folded(&msgs, as_of);
            assert_eq!(
                folded(&alone, as_of),
                expected,
                "snapshot alone, as of {as_of:?}"
            );
            assert_eq!(
                folded(&both, as_of),
                expected,
                "messages and snapshot, as of {as_of:?}"
            );
        }
        let now = folded(&alone, None);
        assert_eq!(
            now["2023-Q2"],
            Figure {
                count: 112,
                release_id: "rel-d".into(),
                seq: 9
            }
        );
        assert_eq!(
            now["2024-Q1"].count, 15,
            "the later of a period given twice"
        );
        assert_eq!(now["odd"].count, 1);
        let then = folded(&alone, Some(5));
        assert_eq!(
            then["2023-Q2"],
            Figure {
                count: 111,
                release_id: "rel-b".into(),
                seq: 5
            }
        );
        assert!(!then.contains_key("2024-Q1"));
        assert!(folded(&alone, Some(1)).is_empty());
    }

    #[test]
    fn a_snapshot_of_a_snapshot_and_later_messages_keeps_every_version() {
        let msgs = revised_series();
        let series = Series::new("fsb", "PRK", "study");
        let first = stored(snapshot_message(&series, &history_of(&msgs[..2])), 7);
        // Compacted again later: the first snapshot, the messages after it, and one message
        // the first compaction left behind (stored between its read and its snapshot).
        let later = vec![
            msgs[2].clone(),
            first.clone(),
            msgs[3].clone(),
            series_msg(14, "rel-e", &[("2023-Q1", 100), ("2025-Q1", 19)]),
        ];
        let second = stored(snapshot_message(&series, &history_of(&later)), 20);
        let mut all = msgs.clone();
        all.push(series_msg(
            14,
            "rel-e",
            &[("2023-Q1", 100), ("2025-Q1", 19)],
        ));
        for as_of in (0..=21).map(Some).chain([None]) {
            let expected = folded(&all, as_of);
            assert_eq!(
                folded(std::slice::from_ref(&second), as_of),
                expected,
                "as of {as_of:?}"
            );
            assert_eq!(
                folded(&later, as_of),
                expected,
                "uncompacted, as of {as_of:?}"
            );
        }
    }

    #[test]
    fn snapshots_cost_a_few_bytes_a_figure_and_say_what_is_newer() {
        let series = Series::new("fsb", "PRK", "study");
        let first: PeriodKey = PeriodKey::parse("2001-Q1").unwrap();
        let msgs: Vec<Message> = (0..100u64)
            .map(|i| {
                let period = first.offset(i as i64).to_string();
                let release = format!("rel-{:016x}", i);
                series_msg(10_000 * i + 1, &release, &[(&period, 3000 + i)])
            })
            .collect();
        let snapshot = snapshot_message(&series, &history_of(&msgs));
        let per_figure = snapshot.payload.len() as f64 / 100.0;
        // One release per figure: the release table dominates (8 bytes a release id).
        assert!(per_figure < 16.0, "{per_figure} bytes a figure");
        let cut = msg_payload_cut(&snapshot);
        assert_eq!(
            SeriesSnapshot::decode(&cut),
            None,
            "a truncated snapshot is refused"
        );
        let msg = stored(snapshot, 2_000_000);
        assert_eq!(
            folded(std::slice::from_ref(&msg), None),
            folded(&msgs, None)
        );
        let mut figures = Figures::new();
        assert!(
            fold_as_of(&mut figures, &msg, Some(500_000)),
            "versions after 500,000"
        );
        assert_eq!(figures.len(), 50);
        assert!(!fold_as_of(&mut Figures::new(), &msg, Some(990_001)));
        // One release of a long series: one run, about 4 bytes a figure.
        let one: Vec<(String, u64)> = (0..400)
            .map(|i| (first.offset(i).to_string(), 3000 + i as u64))
            .collect();
        let one: Vec<(&str, u64)> = one.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let snapshot = snapshot_message(&series, &history_of(&[series_msg(3, "rel-x", &one)]));
        assert!(
            snapshot.payload.len() < 400 * 5,
            "{} bytes",
            snapshot.payload.len()
        );
    }

    #[test]
    fn periods_step_and_only_their_exact_spelling_parses() {
        for (p, next) in [
            ("2024", "2025"),
            ("2024-Q4", "2025-Q1"),
            ("2024-12", "2025-01"),
            ("0999-09", "0999-10"),
        ] {
            let key = PeriodKey::parse(p).unwrap();
            assert_eq!(key.to_string(), p);
            assert_eq!(key.next().to_string(), next);
        }
        for bad in [
            "24", " 2024", "2024-Q5", "2024-Q0", "2024-13", "2024-00", "2024-1", "2024-q1", "odd",
            "",
        ] {
            assert_eq!(PeriodKey::parse(bad), None, "{bad}");
        }
    }

    fn msg_payload_cut(out: &Outgoing) -> Vec<u8> {
        out.payload[..out.payload.len() - 1].to_vec()
    }
}
