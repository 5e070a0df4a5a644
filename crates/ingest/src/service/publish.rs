//! Publishing a release, a batch of figures at a time: what is new or revised against the
//! stream is announced first, then stored, and the markers that ask analytics to test it go
//! last. A release is never held whole: what the markers and the missing-category check need
//! is summed up as the figures go by ([`Shape`], and the periods per series).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use borderwatch_bus::{BusError, Outgoing, Transport, names, obs};
use borderwatch_model::{
    Country, Freq, MissingCategory, Observation, Period, RejectedRow, ReleaseMarker, Revision,
    SeriesChange,
};
use futures::StreamExt;

use super::stored::Stored;

/// What a release brings of one source, summed up as its figures go by: per country and
/// frequency, the periods and the categories. Enough to tell which categories it leaves out,
/// without its figures.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Shape {
    by_country: HashMap<(Country, Freq), CountryShape>,
    /// Figures of the source in the release.
    pub(super) accepted: u64,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct CountryShape {
    periods: BTreeSet<Period>,
    categories: BTreeSet<String>,
}

impl Shape {
    pub(super) fn add(&mut self, o: &Observation) {
        let entry = self
            .by_country
            .entry((o.country, o.period.freq()))
            .or_default();
        entry.periods.insert(o.period);
        if !entry.categories.contains(&o.category) {
            entry.categories.insert(o.category.clone());
        }
        self.accepted += 1;
    }

    pub(super) fn first_period(&self) -> Option<Period> {
        self.by_country
            .values()
            .filter_map(|c| c.periods.first())
            .min()
            .copied()
    }

    pub(super) fn last_period(&self) -> Option<Period> {
        self.by_country
            .values()
            .filter_map(|c| c.periods.last())
            .max()
            .copied()
    }
}

/// The shapes of a release's sources, by source.
pub(super) type Shapes = BTreeMap<String, Shape>;

/// Adds a batch of figures to the shapes of their sources.
pub(super) fn add_to_shapes(shapes: &mut Shapes, observations: &[Observation]) {
    for o in observations {
        match shapes.get_mut(&o.source) {
            Some(shape) => shape.add(o),
            None => shapes.entry(o.source.clone()).or_default().add(o),
        }
    }
}

/// What publishing a release (or replaying one) did.
#[derive(Debug, Default)]
pub(super) struct Applied {
    pub(super) published: u64,
    pub(super) revisions: u64,
    pub(super) superseded: u64,
    pub(super) analyses: Vec<String>,
    pub(super) missing: Vec<MissingCategory>,
    /// Figures refused against the stream (another frequency than their stored series), the
    /// first [`crate::rows::MAX_REJECTED_KEPT`] of them, and how many there were.
    pub(super) rejected: Vec<RejectedRow>,
    pub(super) rejected_total: u64,
}

/// When each release was received, to tell a figure a later release revised (left alone by
/// a replay) from one an earlier release left (replaced).
#[derive(Debug, Default)]
pub(super) struct ReplayOrder {
    pub(super) received_at: HashMap<String, (String, u64)>,
}

impl ReplayOrder {
    /// Whether release `a` was received after release `b` (unknown releases are not later).
    fn is_later(&self, a: &str, b: &str) -> bool {
        match (self.received_at.get(a), self.received_at.get(b)) {
            // Milliseconds where both have them (records from before have only seconds).
            (Some((_, a)), Some((_, b))) if *a > 0 && *b > 0 => a > b,
            (Some((a, _)), Some((b, _))) => a > b,
            _ => false,
        }
    }
}

/// How a figure of a release relates to what the stream holds.
enum Change {
    /// The period is new to the series.
    New,
    /// The period was known with another figure.
    Revised(Revision),
    /// The period is stored and is only marked again, not stored again: its figure came from
    /// a release that was never recorded (it failed half-way, perhaps before its markers), so
    /// that a corrected file gets it analysed; or this release is marked again
    /// ([`Publisher::remarking`]). `revised` when this release announced it as a revision.
    Remark { revised: bool },
}

/// Per series, the periods new to it and the periods it revised.
type SeriesPeriods = (Country, Vec<Period>, Vec<Period>);

/// What the publisher knows of one source of the release.
struct SourceState {
    /// The current figure of every period the stream held for the source.
    current: Stored,
    /// Revisions an earlier, interrupted attempt at this release announced.
    announced: HashMap<(Country, String, Period), Revision>,
    /// The periods published so far, by (country code, category): the markers' content.
    changes: BTreeMap<(String, String), SeriesPeriods>,
    /// The frequencies of the figures the stream held for each series before this release.
    stored_freqs: HashMap<(Country, String), FreqSet>,
    /// Releases whose figures the stream holds but which have no record (they failed
    /// half-way): their figures are marked again ([`Change::Remark`]).
    unrecorded: HashSet<String>,
    /// Messages each series of the source holds, this release's included: those holding
    /// more than [`obs::COMPACT_ABOVE`] have their source compacted after the markers.
    messages: obs::MessageCounts,
}

/// The frequencies a series has figures of.
#[derive(Debug, Default, Clone, Copy)]
struct FreqSet {
    month: bool,
    quarter: bool,
    year: bool,
}

impl FreqSet {
    fn add(&mut self, f: Freq) {
        match f {
            Freq::Month => self.month = true,
            Freq::Quarter => self.quarter = true,
            Freq::Year => self.year = true,
        }
    }

    fn has(self, f: Freq) -> bool {
        match f {
            Freq::Month => self.month,
            Freq::Quarter => self.quarter,
            Freq::Year => self.year,
        }
    }

    /// What analytics reads the series as: its monthly or quarterly figures, else its years.
    fn established(self) -> Freq {
        if self.month {
            Freq::Month
        } else if self.quarter {
            Freq::Quarter
        } else {
            Freq::Year
        }
    }
}

/// The frequencies of the figures stored for each series, not counting those of
/// `release_id` (an interrupted attempt at the same release).
fn stored_freqs(current: &Stored, release_id: &str) -> HashMap<(Country, String), FreqSet> {
    // Keyed by borrowed categories while walking every figure (a source can hold millions):
    // owned keys are made once per series at the end.
    let mut out: HashMap<(Country, &str), FreqSet> = HashMap::new();
    for o in current.iter().filter(|o| o.release_id != release_id) {
        out.entry((o.country, o.category))
            .or_default()
            .add(o.period.freq());
    }
    out.into_iter()
        .map(|((country, category), set)| ((country, category.to_string()), set))
        .collect()
}

/// Why a figure may not join its stored series: it is monthly or quarterly and the series is
/// stored at another frequency. One such figure would switch the series in analytics and drop
/// its stored periods from detection. Year figures join any series (they are totals).
fn switches_stored_frequency(o: &Observation, stored: Option<&FreqSet>) -> Option<String> {
    let freq = o.period.freq();
    let stored = stored?;
    if freq == Freq::Year || stored.has(freq) {
        return None;
    }
    let (is, would) = (
        crate::rows::adjective(stored.established()),
        crate::rows::adjective(freq),
    );
    Some(format!(
        "{}/{}/{} is stored as a {is} series: a {would} figure ({}) would switch it to \
         {would} and drop its {is} figures from detection; send {would} figures as a \
         category of their own (row 0: found against the stored series, after the file was \
         read)",
        o.source, o.country, o.category, o.period
    ))
}

/// Publishes one release's figures, batch by batch, for every source in it.
///
/// Per source, in order: the categories the release leaves out (when the source's first batch
/// comes), then per batch its revisions and its new and changed figures; the markers of all
/// sources come last, from [`Publisher::finish`]. With `replay` (the received time of every
/// release), it restores only figures the stream lost, announces nothing and publishes no
/// marker.
pub(super) struct Publisher<'a> {
    bus: &'a dyn Transport,
    release_id: String,
    replay: Option<&'a ReplayOrder>,
    shapes: &'a Shapes,
    sources: BTreeMap<String, SourceState>,
    applied: Applied,
    /// Set when a recorded release is marked again: its markers need message ids the
    /// stream has not seen (the first ones may be within the duplicate window).
    remark: Option<String>,
}

impl<'a> Publisher<'a> {
    /// `shapes` must cover every figure that will be published (the whole release).
    pub(super) fn new(
        bus: &'a dyn Transport,
        release_id: &str,
        replay: Option<&'a ReplayOrder>,
        shapes: &'a Shapes,
    ) -> Publisher<'a> {
        Publisher {
            bus,
            release_id: release_id.to_string(),
            replay,
            shapes,
            sources: BTreeMap::new(),
            applied: Applied::default(),
            remark: None,
        }
    }

    /// Marks a recorded release again (its analysis never happened): markers go out under
    /// message ids ending in `:remark-<tag>`.
    pub(super) fn remarking(mut self, tag: &str) -> Publisher<'a> {
        self.remark = Some(tag.to_string());
        self
    }

    /// Publishes one batch of the release's figures (of any sources, `release_id` not set).
    pub(super) async fn publish(&mut self, batch: Vec<Observation>) -> Result<(), BusError> {
        let mut by_source: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
        for mut o in batch {
            o.release_id.clone_from(&self.release_id);
            match by_source.get_mut(&o.source) {
                Some(v) => v.push(o),
                None => by_source.entry(o.source.clone()).or_default().push(o),
            }
        }
        for (source, observations) in &by_source {
            self.publish_source(source, observations).await?;
        }
        Ok(())
    }

    /// Reads what the stream holds for `source`, and announces the categories the release
    /// leaves out: once, before the source's first figure.
    async fn open(&mut self, source: &str) -> Result<(), BusError> {
        if self.sources.contains_key(source) {
            return Ok(());
        }
        let bus = self.bus;
        let started = std::time::Instant::now();
        let (read, messages) = obs::source_figures_counted(bus, source).await?;
        let current = Stored::from_series(read);
        let read_ms = started.elapsed().as_millis() as u64;
        // Figures an earlier, interrupted attempt at this same release stored are still its
        // own: new, or the revisions that attempt announced (announcements go first).
        let earlier_attempt = self.replay.is_none() && current.holds_release(&self.release_id);
        let announced = if earlier_attempt {
            announced_revisions(bus, source, &self.release_id).await?
        } else {
            HashMap::new()
        };
        if self.replay.is_none()
            && self.remark.is_none()
            && let Some(shape) = self.shapes.get(source)
        {
            let missing = missing_categories(&self.release_id, source, shape, &current);
            if !missing.is_empty() {
                let msgs = missing
                    .iter()
                    .map(|m| {
                        Outgoing::new(
                            names::missing_subject(&m.source, &m.category),
                            serde_json::to_vec(m).unwrap_or_default(),
                        )
                        .with_id(format!(
                            "{}:{}:{}:{}",
                            m.release_id, m.source, m.category, m.last_period
                        ))
                    })
                    .collect();
                bus.publish_all(msgs).await?;
            }
            self.applied.missing.extend(missing);
        }
        let stored_freqs = stored_freqs(&current, &self.release_id);
        let unrecorded = if self.replay.is_none() {
            unrecorded_releases(bus, &current, &self.release_id).await?
        } else {
            HashSet::new()
        };
        // Where opening a source goes, for `RUST_LOG=borderwatch_ingest=debug`: reading and
        // folding what the stream holds for it, then the checks over those figures.
        tracing::debug!(
            source,
            figures = current.len(),
            read_ms,
            checked_ms = started.elapsed().as_millis() as u64 - read_ms,
            "source opened"
        );
        self.sources.insert(
            source.to_string(),
            SourceState {
                current,
                announced,
                changes: BTreeMap::new(),
                stored_freqs,
                unrecorded,
                messages,
            },
        );
        Ok(())
    }

    async fn publish_source(
        &mut self,
        source: &str,
        observations: &[Observation],
    ) -> Result<(), BusError> {
        self.open(source).await?;
        let (bus, release_id, replay) = (self.bus, self.release_id.as_str(), self.replay);
        let remarking = self.remark.is_some();
        let Some(state) = self.sources.get_mut(source) else {
            return Ok(());
        };
        let applied = &mut self.applied;
        let mut changed: Vec<(&Observation, Change)> = Vec::new();
        for o in observations {
            if remarking {
                // Only what this release stored is marked again: a figure a later release
                // changed is that release's, and one the stream lost is replay's to restore.
                match state.current.get(o.country, &o.category, o.period) {
                    Some(c) if c.release_id == release_id => {
                        let figure = (o.country, o.category.clone(), o.period);
                        let revised = state.announced.contains_key(&figure);
                        changed.push((o, Change::Remark { revised }));
                    }
                    _ => {}
                }
                continue;
            }
            if replay.is_none()
                && let Some(reason) = switches_stored_frequency(
                    o,
                    state.stored_freqs.get(&(o.country, o.category.clone())),
                )
            {
                applied.rejected_total += 1;
                if applied.rejected.len() < crate::rows::MAX_REJECTED_KEPT {
                    applied.rejected.push(RejectedRow {
                        row: 0,
                        column: "period".into(),
                        value: o.period.to_string(),
                        reason,
                    });
                }
                continue;
            }
            let change = match state.current.get(o.country, &o.category, o.period) {
                None => Change::New,
                Some(c) if c.release_id == release_id && replay.is_none() => {
                    match state
                        .announced
                        .get(&(o.country, o.category.clone(), o.period))
                    {
                        Some(r) => Change::Revised(r.clone()),
                        None => Change::New,
                    }
                }
                Some(c) if c.count == o.count && state.unrecorded.contains(c.release_id) => {
                    Change::Remark { revised: false }
                }
                Some(c) if c.count == o.count => continue,
                Some(c) => match replay {
                    Some(order) if order.is_later(c.release_id, release_id) => {
                        applied.superseded += 1;
                        continue;
                    }
                    _ => Change::Revised(Revision {
                        source: source.to_string(),
                        country: o.country,
                        category: o.category.clone(),
                        period: o.period,
                        old_count: c.count,
                        new_count: o.count,
                        old_release_id: c.release_id.to_string(),
                        release_id: release_id.to_string(),
                    }),
                },
            };
            changed.push((o, change));
        }
        if replay.is_none() {
            // Announcements first: a failure after them leaves no release record, and the
            // same file sent again finds the same revisions (and publishes them under the
            // same message ids), whereas figures stored first would hide them from a retry.
            let revisions: Vec<Outgoing> = changed
                .iter()
                .filter_map(|(_, change)| match change {
                    Change::Revised(r) => Some(
                        Outgoing::new(
                            names::revision_subject(&r.source, r.country.code(), &r.category),
                            serde_json::to_vec(r).unwrap_or_default(),
                        )
                        // The source too: one file may carry two sources' figures for the
                        // same country, category and period, and two revisions must not share
                        // an id (the stream would keep one).
                        .with_id(format!(
                            "{}:{}:{}:{}:{}",
                            r.release_id,
                            r.source,
                            r.country.code(),
                            r.category,
                            r.period
                        )),
                    ),
                    Change::New | Change::Remark { .. } => None,
                })
                .collect();
            applied.revisions += revisions.len() as u64;
            if !revisions.is_empty() {
                bus.publish_all(revisions).await?;
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        // One message per series (obs::series_messages): the figures of this batch.
        let mut by_series: BTreeMap<(&str, &str), Vec<(String, u64)>> = BTreeMap::new();
        for (o, change) in &changed {
            if matches!(change, Change::Remark { .. }) {
                continue;
            }
            by_series
                .entry((o.country.code(), o.category.as_str()))
                .or_default()
                .push((o.period.to_string(), o.count));
            applied.published += 1;
        }
        let msgs: Vec<Outgoing> = by_series
            .into_iter()
            .flat_map(|((country, category), figures)| {
                let series = obs::Series::new(source, country, category);
                // A lost figure must be stored again even if the stream still remembers
                // its message id (a purge keeps the duplicate window): no id in a replay.
                obs::series_messages(&series, release_id, &figures, replay.is_none())
            })
            .collect();
        if !msgs.is_empty() {
            let subjects: Vec<String> = msgs.iter().map(|m| m.subject.clone()).collect();
            let acks = bus.publish_all(msgs).await?;
            for (subject, ack) in subjects.iter().zip(acks) {
                if let (false, Some(series)) = (ack.duplicate, obs::Series::of_subject(subject)) {
                    *state.messages.entry(series).or_default() += 1;
                }
            }
        }
        if replay.is_none() {
            for (o, change) in &changed {
                let entry = state
                    .changes
                    .entry((o.country.code().to_string(), o.category.clone()))
                    .or_insert_with(|| (o.country, Vec::new(), Vec::new()));
                match change {
                    Change::New | Change::Remark { revised: false } => entry.1.push(o.period),
                    Change::Revised(_) | Change::Remark { revised: true } => entry.2.push(o.period),
                }
            }
        }
        Ok(())
    }

    /// Publishes the markers of every source that changed, and says what was done.
    pub(super) async fn finish(mut self) -> Result<Applied, BusError> {
        if self.replay.is_some() {
            return Ok(self.applied);
        }
        let due = self.due_for_compaction();
        // What the release saw: every figure it stored (or marks again) is at or below this
        // sequence, so analytics can read the series as they were, however late it gets to
        // a part (docs/guarantees.md, "No look-ahead").
        let mut obs_seq = None;
        for (source, state) in std::mem::take(&mut self.sources) {
            if state.changes.is_empty() {
                continue;
            }
            if obs_seq.is_none() {
                obs_seq = Some(self.bus.last_seq(names::OBS_STREAM).await?);
            }
            // Markers in parts of bounded size: each stays far below NATS's 1 MiB message
            // limit and is a unit of work another analytics replica can take.
            let chunks = chunk_changes(changes_of(state.changes));
            let parts = chunks.len() as u32;
            for (part, changes) in chunks.into_iter().enumerate() {
                let part = part as u32;
                let marker = ReleaseMarker {
                    release_id: self.release_id.clone(),
                    source: source.clone(),
                    part,
                    parts,
                    changes,
                    obs_seq,
                };
                self.bus
                    .publish(
                        Outgoing::new(
                            names::release_subject(&source),
                            serde_json::to_vec(&marker).unwrap_or_default(),
                        )
                        .with_id(match &self.remark {
                            Some(tag) => {
                                format!("{}:{source}:{part}:remark-{tag}", self.release_id)
                            }
                            None => format!("{}:{source}:{part}", self.release_id),
                        }),
                    )
                    .await?;
                self.applied
                    .analyses
                    .push(names::analyzed_key(&self.release_id, &source, part));
            }
        }
        compact(self.bus, due).await;
        Ok(self.applied)
    }
}

impl Publisher<'_> {
    /// The release's sources with a series holding more than [`obs::COMPACT_ABOVE`]
    /// messages.
    fn due_for_compaction(&self) -> Vec<String> {
        self.sources
            .iter()
            .filter(|(_, state)| state.messages.values().any(|n| *n > obs::COMPACT_ABOVE))
            .map(|(source, _)| source.clone())
            .collect()
    }
}

/// Compacts each source in `due` ([`obs::compact_source`]: every series of the source one
/// snapshot, then one purge of what they stand for): a series that grows a period per
/// release would otherwise cost the server a message (about 150 bytes) per figure
/// (BENCHMARKS.md, "nats-server memory per stored figure").
///
/// Here because ingest holds the source's turn (nothing else writes its series), and
/// **after** the markers: a release's analysis, so its alerts, must not wait for it.
/// Analytics reads a series up to its last message whatever the marker's `obs_seq`, keeps
/// only the versions at or below it (a snapshot keeps every version's sequence), and reads
/// again a series whose last message moved while it read, so a snapshot stored after the
/// marker reads the same. A compaction that fails is logged and left for the source's next
/// release: the figures are all stored, only not yet compacted. Not on a replay, which does
/// not hold the turn.
async fn compact(bus: &dyn Transport, due: Vec<String>) {
    for source in due {
        let started = std::time::Instant::now();
        match obs::compact_source(bus, &source).await {
            Ok(done) => tracing::info!(
                source = %source,
                series = done.series,
                purged = done.purged,
                ms = started.elapsed().as_millis() as u64,
                "series compacted"
            ),
            Err(e) => tracing::warn!(
                source = %source,
                error = %e,
                "compacting the source's series failed; its next release tries again"
            ),
        }
    }
}

/// The releases other than `release_id` whose figures `current` holds and which have no
/// record in `bw_releases`: they failed half-way, and may never have published their
/// markers. (A release's id follows from its record's key, so the keys suffice.)
async fn unrecorded_releases(
    bus: &dyn Transport,
    current: &Stored,
    release_id: &str,
) -> Result<HashSet<String>, BusError> {
    let mut ids: HashSet<String> = current
        .release_ids()
        .filter(|id| *id != release_id && !id.is_empty())
        .map(|id| id.to_string())
        .collect();
    if ids.is_empty() {
        return Ok(ids);
    }
    for key in bus.kv_keys(names::RELEASES_BUCKET).await? {
        ids.remove(&super::release::release_id_of(&key));
        if ids.is_empty() {
            break;
        }
    }
    Ok(ids)
}

/// How long a read of stored messages waits for the next one before giving up.
const STORED_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The revisions `release_id` announced for `source`, by (country, category, period): read
/// only when retrying a release whose earlier attempt failed half-way.
async fn announced_revisions(
    bus: &dyn Transport,
    source: &str,
    release_id: &str,
) -> Result<HashMap<(Country, String, Period), Revision>, BusError> {
    let mut out = HashMap::new();
    let last = bus.last_seq(names::REVISION_STREAM).await?;
    if last == 0 {
        return Ok(out);
    }
    // Unfiltered, so that the message at the last sequence comes and ends the read.
    let mut stored = bus
        .replay(names::REVISION_STREAM, names::ALL_REVISIONS, 1)
        .await?;
    let prefix = names::revisions_of(source);
    loop {
        let next = tokio::time::timeout(STORED_READ_TIMEOUT, stored.next()).await;
        let Ok(Some(msg)) = next else {
            return Err(BusError::Timeout {
                subject: names::REVISION_STREAM.to_string(),
                timeout: STORED_READ_TIMEOUT,
            });
        };
        let msg = msg?;
        if msg.subject.starts_with(&prefix)
            && let Ok(r) = serde_json::from_slice::<Revision>(&msg.payload)
            && r.release_id == release_id
        {
            out.insert((r.country, r.category.clone(), r.period), r);
        }
        if msg.seq >= last {
            break;
        }
    }
    Ok(out)
}

/// Categories the stream has for a country of this release, up to the period just before
/// the release's first period of that country or later, that the release leaves out while
/// it brings periods of that country (same frequency) that are later than the category's last
/// and new to the country. A category that stopped before the release's periods, or whose
/// absence an earlier release already showed (its periods are not new), is not announced
/// again.
fn missing_categories(
    release_id: &str,
    source: &str,
    shape: &Shape,
    current: &Stored,
) -> Vec<MissingCategory> {
    // (country, freq) → periods the stream has for any category of that country.
    // Figures an interrupted attempt at this same release stored are not history.
    // (country, freq, category) → last period the stream has. One pass over every figure
    // (a source can hold millions), into hash maps: the order does not matter below.
    let mut known: HashMap<(Country, Freq), HashSet<Period>> = HashMap::new();
    let mut last_seen: HashMap<(Country, Freq, &str), Period> = HashMap::new();
    for o in current.iter().filter(|o| o.release_id != release_id) {
        let freq = o.period.freq();
        known.entry((o.country, freq)).or_default().insert(o.period);
        let entry = last_seen
            .entry((o.country, freq, o.category))
            .or_insert(o.period);
        *entry = (*entry).max(o.period);
    }
    // (category, last period seen) → countries and the release's periods of them.
    let mut grouped: BTreeMap<(String, Period), (Vec<Country>, Period, Period)> = BTreeMap::new();
    for ((country, freq, category), last) in last_seen {
        let Some(covered) = shape.by_country.get(&(country, freq)) else {
            continue;
        };
        let (Some(&first), Some(&release_last)) = (covered.periods.first(), covered.periods.last())
        else {
            continue;
        };
        // The latest period of the release new to that country.
        let known = known.get(&(country, freq));
        let newest = covered
            .periods
            .iter()
            .rev()
            .find(|p| known.is_none_or(|k| !k.contains(p)));
        let brings_later = newest.is_some_and(|&newest| newest > last);
        if covered.categories.contains(category) || !brings_later || last < first.offset(-1) {
            continue;
        }
        let entry = grouped.entry((category.to_string(), last)).or_insert((
            Vec::new(),
            first,
            release_last,
        ));
        entry.0.push(country);
        entry.1 = entry.1.min(first);
        entry.2 = entry.2.max(release_last);
    }
    grouped
        .into_iter()
        .map(|((category, last), (mut countries, first, release_last))| {
            countries.sort();
            MissingCategory {
                source: source.to_string(),
                category,
                countries,
                last_period: last,
                release_first_period: first,
                release_last_period: release_last,
                release_id: release_id.to_string(),
            }
        })
        .collect()
}

/// Series per release marker part.
const SERIES_PER_PART: usize = 500;
/// Periods (new and revised) per release marker part: with the series bound, a part stays
/// far below NATS's 1 MiB however long the series are (a long series is split over parts).
const PERIODS_PER_PART: usize = 20_000;

fn chunk_changes(changes: Vec<SeriesChange>) -> Vec<Vec<SeriesChange>> {
    let mut parts: Vec<Vec<SeriesChange>> = Vec::new();
    let mut part: Vec<SeriesChange> = Vec::new();
    let mut periods = 0usize;
    for change in changes.into_iter().flat_map(split_change) {
        let n = change.periods.len() + change.revised.len();
        if !part.is_empty() && (part.len() == SERIES_PER_PART || periods + n > PERIODS_PER_PART) {
            parts.push(std::mem::take(&mut part));
            periods = 0;
        }
        periods += n;
        part.push(change);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

/// A series change with more periods than a part holds, cut into pieces that fit.
fn split_change(change: SeriesChange) -> Vec<SeriesChange> {
    if change.periods.len() + change.revised.len() <= PERIODS_PER_PART {
        return vec![change];
    }
    let piece = |periods: &[Period], revised: &[Period]| SeriesChange {
        country: change.country,
        category: change.category.clone(),
        periods: periods.to_vec(),
        revised: revised.to_vec(),
    };
    let mut out: Vec<SeriesChange> = change
        .periods
        .chunks(PERIODS_PER_PART)
        .map(|p| piece(p, &[]))
        .collect();
    out.extend(
        change
            .revised
            .chunks(PERIODS_PER_PART)
            .map(|r| piece(&[], r)),
    );
    out
}

/// The series changes, by country code and category, periods sorted.
fn changes_of(by_series: BTreeMap<(String, String), SeriesPeriods>) -> Vec<SeriesChange> {
    by_series
        .into_iter()
        .map(|((_, category), (country, mut periods, mut revised))| {
            periods.sort();
            revised.sort();
            SeriesChange {
                country,
                category,
                periods,
                revised,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(country: &str, category: &str, periods: usize, revised: usize) -> SeriesChange {
        let first: Period = "1900-01".parse().unwrap();
        SeriesChange {
            country: Country::parse(country).unwrap(),
            category: category.into(),
            periods: (0..periods as i64).map(|i| first.offset(i)).collect(),
            revised: (0..revised as i64)
                .map(|i| first.offset(periods as i64 + i))
                .collect(),
        }
    }

    #[test]
    fn marker_parts_stay_small_however_long_the_series_and_lose_no_period() {
        let mut changes = vec![change("PRK", "study", 45_000, 3_000)];
        for i in 0..700 {
            changes.push(change("CHN", &format!("c{i}"), 30, 0));
        }
        let total: usize = changes
            .iter()
            .map(|c| c.periods.len() + c.revised.len())
            .sum();
        let parts = chunk_changes(changes);
        let mut seen = 0;
        for part in &parts {
            let periods: usize = part.iter().map(|c| c.periods.len() + c.revised.len()).sum();
            assert!(part.len() <= SERIES_PER_PART);
            assert!(periods <= PERIODS_PER_PART, "{periods}");
            let marker = ReleaseMarker {
                release_id: "rel-0123456789abcdef".into(),
                source: "a".repeat(64),
                part: 0,
                parts: 1,
                changes: part.clone(),
                obs_seq: Some(u64::MAX),
            };
            let size = serde_json::to_vec(&marker).unwrap().len();
            assert!(size < 512 * 1024, "{size} bytes");
            seen += periods;
        }
        assert_eq!(seen, total);
        assert!(parts.len() >= 4, "{}", parts.len());
    }
}
