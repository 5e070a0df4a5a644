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
    let Ok(batch) = serde_json::from_slice::<SeriesFigures>(&msg.payload) else {
        return;
    };
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
}

/// How long a read of stored messages waits for the next one before giving up.
const STORED_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Series read with one consumer by [`series_as_of`]: a release's part (500 series) is one
/// read; the subjects of a read travel in the consumer's configuration (about 25 bytes
/// each, far below the server's 1 MiB request limit).
const SERIES_PER_READ: usize = 1_000;

/// Reads of [`SERIES_PER_READ`] series at once by [`series_as_of`].
const READS_IN_FLIGHT: usize = 4;

/// Reads the stored messages of `filter` from the start, folding each into its series, up to
/// and including sequence `end` (a message at `end` matching `filter` must exist, so the read
/// ends), leaving out those above `as_of`.
async fn fold_until(
    bus: &dyn Transport,
    filter: &str,
    end: u64,
    as_of: Option<u64>,
) -> Result<HashMap<Series, Figures>> {
    let mut out: HashMap<Series, Figures> = HashMap::new();
    let mut stored = bus.replay(OBS_STREAM, filter, 1).await?;
    loop {
        let next = tokio::time::timeout(STORED_READ_TIMEOUT, stored.next())
            .await
            .map_err(|_| BusError::Timeout {
                subject: filter.to_string(),
                timeout: STORED_READ_TIMEOUT,
            })?;
        let Some(msg) = next else { break };
        let msg = msg?;
        if as_of.is_some_and(|as_of| msg.seq > as_of) {
            break;
        }
        if let Some(series) = Series::of_subject(&msg.subject) {
            fold(out.entry(series).or_default(), &msg);
        }
        if msg.seq >= end {
            break;
        }
    }
    Ok(out)
}

/// The current figures of every series of `source`: each series' messages folded. One
/// read of the source's messages, from the start to the last one stored when it began.
pub async fn source_figures(bus: &dyn Transport, source: &str) -> Result<HashMap<Series, Figures>> {
    figures_of(bus, &names::obs_series_of_source(source)).await
}

/// The current figures of every series whose subject matches `filter` (for instance
/// [`names::ALL_OBS_SERIES`]), as [`source_figures`] reads them.
pub async fn figures_of(bus: &dyn Transport, filter: &str) -> Result<HashMap<Series, Figures>> {
    let last = bus.last_per_subject(OBS_STREAM, &[filter]).await?;
    let Some(end) = last.iter().map(|m| m.seq).max() else {
        return Ok(HashMap::new());
    };
    fold_until(bus, filter, end, None).await
}

/// The figures of the series named, as the stream held them at sequence `as_of` (the
/// marker's `obs_seq`: what its release saw; `None`: now), and the series with messages
/// stored after `as_of`. A series with no message at or below `as_of` is absent.
///
/// The last message of each series is read first (it says where the read ends and which
/// series have newer messages); then the series' messages up to there, a thousand
/// series per read ([`Transport::read_subjects`]: one consumer that skips every other
/// series, not one per series).
pub async fn series_as_of(
    bus: &dyn Transport,
    series: &[Series],
    as_of: Option<u64>,
) -> Result<(HashMap<Series, Figures>, HashSet<Series>)> {
    let reads: Vec<futures::future::BoxFuture<'_, Result<ReadPart>>> = series
        .chunks(SERIES_PER_READ)
        .map(|chunk| Box::pin(read_part(bus, chunk, as_of)) as _)
        .collect();
    let parts: Vec<Result<ReadPart>> = futures::stream::iter(reads)
        .buffer_unordered(READS_IN_FLIGHT)
        .collect()
        .await;
    let mut out: HashMap<Series, Figures> = HashMap::new();
    let mut newer: HashSet<Series> = HashSet::new();
    for part in parts {
        let (figures, part_newer) = part?;
        out.extend(figures);
        newer.extend(part_newer);
    }
    Ok((out, newer))
}

/// What [`read_part`] gives: figures by series, and the series with newer messages.
type ReadPart = (HashMap<Series, Figures>, HashSet<Series>);

/// [`series_as_of`] for up to [`SERIES_PER_READ`] series: two consumers in all.
async fn read_part(bus: &dyn Transport, series: &[Series], as_of: Option<u64>) -> Result<ReadPart> {
    let subjects: Vec<String> = series.iter().map(Series::subject).collect();
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    let last = bus.last_per_subject(OBS_STREAM, &subjects).await?;
    let mut newer: HashSet<Series> = HashSet::new();
    let mut end = 0;
    for msg in &last {
        let Some(s) = Series::of_subject(&msg.subject) else {
            continue;
        };
        if as_of.is_some_and(|as_of| msg.seq > as_of) {
            newer.insert(s);
        }
        end = end.max(msg.seq);
    }
    if let Some(as_of) = as_of {
        end = end.min(as_of);
    }
    let mut out: HashMap<Series, Figures> = HashMap::new();
    if end == 0 {
        return Ok((out, newer));
    }
    let mut stored = bus.read_subjects(OBS_STREAM, &subjects, end).await?;
    loop {
        let next = tokio::time::timeout(STORED_READ_TIMEOUT, stored.next())
            .await
            .map_err(|_| BusError::Timeout {
                subject: OBS_STREAM.to_string(),
                timeout: STORED_READ_TIMEOUT,
            })?;
        let Some(msg) = next else { break };
        let msg = msg?;
        if msg.seq > end {
            break;
        }
        if let Some(s) = Series::of_subject(&msg.subject) {
            fold(out.entry(s).or_default(), &msg);
        }
    }
    Ok((out, newer))
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
}
