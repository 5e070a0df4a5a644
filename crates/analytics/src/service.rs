//! The analytics service: for each release marker, aggregate the touched series, run the
//! detectors on the changed periods (on every core), announce new surges and store
//! per-series results; the last part of a release to finish runs the release-wide
//! false-discovery control and announces the statistical surges.
//!
//! Replicas share the durable consumer `analytics` on `BW_RELEASES`; a replica that dies
//! mid-release leaves the marker unacknowledged and another one takes it. Surge ids are
//! stable and checked against `bw_announced` before publishing (and deduplicated by the
//! stream's `Nats-Msg-Id` window), so a redelivered release announces nothing twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use borderwatch_bus::{Bus, BusError, Delivery, Outgoing, Transport, names, obs};
use borderwatch_model::{
    AnalyzedRelease, Band, Country, Direction, IncidentUpdate, Observation, Period, ReleaseMarker,
    SeriesKey, SeriesView, SurgeEvent, now_rfc3339,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use serde::{Deserialize, Serialize};

mod unreadable;

use crate::incidents::{self, IncidentWork};
use crate::{
    AnalysisConfig, Assessment, SeriesFrame, aggregate, assess_frames, evaluate_frames, fall_event,
    fall_survivors, fdr_survivors, story, surge_event,
};

/// How long a release part may go without a sign of life before another replica gets it.
/// While a replica works on a part it marks it in progress every [`HEARTBEAT`], so a slow
/// part is never taken away from a live replica, and a dead replica's part comes back
/// within this.
const ACK_WAIT: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Parts a replica holds at once: the one it works on. A replica that pulled several would
/// keep them from idle replicas (a 25,000-series release is only 50 parts).
const PREFETCH: usize = 1;

/// How long a stopping replica waits for parts already on their way to it, to hand them
/// back at once rather than after [`ACK_WAIT`].
const HAND_BACK: Duration = Duration::from_millis(300);

/// Processes releases until `cancel` fires. The part in hand is finished and acknowledged
/// first; parts that reach a stopping replica are handed back (nak) for another one. Lost
/// connections, failed acknowledgements and consumer errors are logged and outlived: the
/// part comes back and processing it again is safe.
pub async fn run(
    bus: Bus,
    cfg: Arc<AnalysisConfig>,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let mut deliveries = subscribe(bus.as_ref()).await?;
    info!(ready = "analytics", "analytics consuming releases");
    tokio::spawn(crate::telemetry::run_sampler(bus.clone(), cancel.clone()));
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => break,
            d = deliveries.next() => d,
        };
        match next {
            Some(Ok(delivery)) => handle(bus.as_ref(), &cfg, delivery).await,
            Some(Err(e)) => {
                warn!(error = %e, "release consumer failed; going on");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            None => {
                warn!("release consumer ended; subscribing again");
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => { info!("analytics stopped"); return Ok(()) }
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    match subscribe(bus.as_ref()).await {
                        Ok(d) => break deliveries = d,
                        Err(e) => warn!(error = %e, "cannot subscribe to releases yet"),
                    }
                }
            }
        }
    }
    hand_back(&mut deliveries).await;
    info!("analytics stopped");
    Ok(())
}

async fn subscribe(
    bus: &dyn Transport,
) -> Result<futures::stream::BoxStream<'static, Result<Delivery, BusError>>, BusError> {
    bus.consume_prefetch(
        names::RELEASE_STREAM,
        names::ANALYTICS_CONSUMER,
        names::ALL_RELEASES,
        ACK_WAIT,
        PREFETCH,
    )
    .await
}

/// Naks whatever reaches a stopping replica within [`HAND_BACK`].
async fn hand_back(
    deliveries: &mut futures::stream::BoxStream<'static, Result<Delivery, BusError>>,
) {
    let until = tokio::time::Instant::now() + HAND_BACK;
    while let Ok(Some(next)) = tokio::time::timeout_at(until, deliveries.next()).await {
        if let Ok(delivery) = next {
            if let Err(e) = delivery.nak(None).await {
                warn!(error = %e, seq = delivery.message.seq, "could not hand a release part back; it returns after the ack wait");
            } else {
                info!(seq = delivery.message.seq, "release part handed back");
            }
        }
    }
}

/// Analyses one delivered part, keeping it marked in progress, and settles it.
async fn handle(bus: &dyn Transport, cfg: &AnalysisConfig, delivery: Delivery) {
    let seq = delivery.message.seq;
    let marker: ReleaseMarker = match serde_json::from_slice(&delivery.message.payload) {
        Ok(m) => m,
        Err(e) => {
            // Never acknowledged away (its figures would never be analysed): kept, retried
            // slowly, and noted for ingest (unreadable.rs).
            unreadable::settle(bus, &delivery, &e).await;
            return;
        }
    };
    info!(release = %marker.release_id, source = %marker.source, part = marker.part, parts = marker.parts, delivered = delivery.delivered, "analysing release part");
    let work = process(bus, cfg, &marker);
    tokio::pin!(work);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    let outcome = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = ticker.tick() => {
                if let Err(e) = delivery.in_progress().await {
                    warn!(error = %e, seq, "cannot mark a release part in progress");
                }
            }
        }
    };
    match outcome {
        Ok(done) => {
            info!(release = %marker.release_id, source = %marker.source, part = marker.part, parts = marker.parts, series = done.series, surges = done.surges.len(), delivered = delivery.delivered, "release analysed");
            settle(&delivery, true).await;
        }
        Err(e) => {
            warn!(release = %marker.release_id, part = marker.part, error = %e, "release analysis failed; will retry");
            settle(&delivery, false).await;
        }
    }
}

/// Acks (or naks, to retry in 5 s). A failure is logged, not fatal: the part comes back
/// after the ack wait and is analysed again, announcing nothing twice.
async fn settle(delivery: &Delivery, done: bool) {
    let settled = if done {
        delivery.ack().await
    } else {
        delivery.nak(Some(Duration::from_secs(5))).await
    };
    if let Err(e) = settled {
        warn!(error = %e, seq = delivery.message.seq, done, "could not settle a release part; it will be redelivered");
    }
}

/// Why a release could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Analytics(#[from] crate::AnalyticsError),
    #[error("the aggregation worker failed: {0}")]
    Worker(String),
}

/// Series of a part whose view and incidents are read and written at once: enough to hide
/// the round trips, few enough not to crowd the bus.
const SERIES_IO_IN_FLIGHT: usize = 32;

/// One series of a part, evaluated, before its view is stored.
struct SeriesOutcome {
    /// Its index in the part's frames.
    frame: usize,
    /// The periods evaluated.
    periods: Vec<Period>,
    /// Whether it brought a live period.
    live: bool,
    tested: u64,
    tested_falls: u64,
    /// Its assessments that may pass the release-wide false-discovery control.
    candidates: Vec<Assessment>,
    /// Its evidence surges.
    events: Vec<SurgeEvent>,
    /// Periods an evidence rule flagged under the score gate.
    held: Vec<Period>,
    view: SeriesView,
    /// Whether the stream holds newer figures of it than its release saw.
    newer_exists: bool,
}

/// What a release part leaves in `bw_analyzed`: the model's [`AnalyzedRelease`] (readers
/// that only know that type ignore the rest) and this part's share of the release-wide
/// false-discovery control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartRecord {
    #[serde(flatten)]
    pub analyzed: AnalyzedRelease,
    /// How many parts the release has for this source.
    #[serde(default)]
    pub parts: u32,
    /// (series, period) pairs of this part with a p-value: its share of the BH family.
    #[serde(default)]
    pub tested: u64,
    /// (series, period) pairs of this part tested for a fall: its share of the falls' family.
    #[serde(default)]
    pub tested_falls: u64,
    /// The pairs whose combined p-value is at most the FDR rate: the only ones BH can declare
    /// (a larger p-value never passes, and ranks below the rate do not depend on the others).
    #[serde(default)]
    pub candidates: Vec<Assessment>,
    /// The series of this part whose incidents the release may change (a surge, a
    /// candidate or an open incident), with the periods evaluated.
    #[serde(default)]
    pub incidents: Vec<IncidentWork>,
    /// How many series of this part the release brought a live period for: the base of a
    /// source-wide story.
    #[serde(default)]
    pub live_series: u64,
    /// Set by the part that ran BH over the whole release.
    #[serde(default)]
    pub fdr_done: bool,
}

/// Analyses one release marker; safe to repeat.
///
/// Only the periods new to a series (`SeriesChange::periods`) are tested; revised periods
/// (`revised`) are read with their latest figures (the stream's last version per subject)
/// and shown in the series view, but a revision is never a surge by itself.
///
/// Each part stores its evidence surges and its statistical candidates with its record, and
/// the series whose incidents the release may change. The part that finds every part of its
/// release and source recorded (it checks before and after writing its own record, so at
/// least one part always does) runs Benjamini–Hochberg over all candidates, advances the
/// incidents of the release's series (`bw_incidents`: each surge gets its incident and
/// whether it opened, continued or escalated it) and announces every surge of the release,
/// evidence and statistical; the statistical ones are then in its `AnalyzedRelease.surges`.
/// Announcing waits for the whole release because whether a period continues an incident or
/// closes it is only known once its statistical verdict is. Two replicas doing that at once
/// announce nothing twice: surge ids are stable, `announce` skips known ones, and incidents
/// record through which period they are advanced.
pub async fn process(
    bus: &dyn Transport,
    cfg: &AnalysisConfig,
    marker: &ReleaseMarker,
) -> Result<AnalyzedRelease, ProcessError> {
    let touched: HashMap<(String, String), Vec<Period>> = marker
        .changes
        .iter()
        .map(|c| {
            (
                (c.country.code().to_string(), c.category.clone()),
                c.periods.clone(),
            )
        })
        .collect();
    let series: Vec<obs::Series> = marker
        .changes
        .iter()
        .map(|c| obs::Series::new(&marker.source, c.country.code(), &c.category))
        .collect();
    let started = std::time::Instant::now();
    let (observations, superseded) = observations_as_of(bus, &series, marker.obs_seq).await?;
    let read_at = started.elapsed();
    let observations: Vec<Observation> = observations
        .into_iter()
        .filter(|o| touched.contains_key(&(o.country.code().to_string(), o.category.clone())))
        .collect();
    let work_cfg = cfg.clone();
    let (frames, assessed) =
        tokio::task::spawn_blocking(move || analyse(&observations, &touched, &work_cfg))
            .await
            .map_err(|e| ProcessError::Worker(e.to_string()))??;
    let evaluated_at = started.elapsed();

    let detected_at = now_rfc3339();
    let fingerprint = cfg.fingerprint();
    let mut surges = Vec::new();
    let mut periods_evaluated = 0u64;
    let mut tested = 0u64;
    let mut tested_falls = 0u64;
    let mut candidates = Vec::new();
    let mut incident_work = Vec::new();
    let mut live_series = 0u64;
    // Per series, first what needs no bus (its events, its view, its candidates), then its
    // reads and writes (its view; whether it has an open incident), SERIES_IO_IN_FLIGHT
    // series at a time: one after another, three round trips per series made a part of
    // 500 series take over a second on a loaded machine however little it evaluated.
    let mut outcomes: Vec<SeriesOutcome> = Vec::with_capacity(assessed.len());
    for (i, periods, assessments, bands) in assessed {
        let frame = &frames[i];
        let mut events: Vec<SurgeEvent> = Vec::new();
        let mut held = Vec::new();
        for a in &assessments {
            // Evidence surges now: `significant = false` makes events of evidence only. An
            // evidence rule that fired under the score gate still holds an open incident
            // open.
            let event = surge_event(
                a,
                false,
                &fingerprint,
                &cfg.alert,
                &marker.release_id,
                &detected_at,
            );
            match event {
                Some(e) => events.push(e),
                None if !a.evidence.is_empty() => held.push(a.period),
                None => {}
            }
        }
        let mut view = frame.to_view(&marker.release_id, &detected_at);
        view.bands = bands;
        let candidate = |p: Option<f64>| p.is_some_and(|p| p <= cfg.fdr);
        outcomes.push(SeriesOutcome {
            frame: i,
            live: assessments.iter().any(|a| a.live),
            tested: crate::tested(&assessments) as u64,
            tested_falls: crate::tested_falls(&assessments) as u64,
            candidates: assessments
                .into_iter()
                .filter(|a| candidate(a.p_value) || candidate(a.fall_p))
                .collect(),
            newer_exists: superseded.contains(&frame.key),
            view,
            events,
            held,
            periods,
        });
    }
    // Boxed one by one (not a closure over the iterator): the future stays `Send` for the
    // runtime that spawns `process`.
    // Each series' incident work: none (no evidence surge, no candidate, no open
    // incident), or whether it is there only as a candidate (`candidate_only`).
    let io: Vec<futures::future::BoxFuture<'_, Result<Option<bool>, BusError>>> = outcomes
        .iter()
        .map(|o| {
            let key = &frames[o.frame].key;
            Box::pin(async move {
                store_view(bus, o.view.clone(), &o.events, o.newer_exists).await?;
                if !o.events.is_empty() {
                    return Ok(Some(false));
                }
                let open = incidents::has_open(bus, key).await?;
                Ok((open || !o.candidates.is_empty()).then_some(!open))
            }) as _
        })
        .collect();
    let stored: Vec<Result<Option<bool>, BusError>> = futures::stream::iter(io)
        .buffered(SERIES_IO_IN_FLIGHT)
        .collect()
        .await;
    for (o, work) in outcomes.into_iter().zip(stored) {
        let frame = &frames[o.frame];
        periods_evaluated += o.periods.len() as u64;
        live_series += u64::from(o.live);
        tested += o.tested;
        tested_falls += o.tested_falls;
        candidates.extend(o.candidates);
        if let Some(candidate_only) = work? {
            let values = o
                .periods
                .iter()
                .map(|&p| frame.value_at(p).unwrap_or(0))
                .collect();
            incident_work.push(IncidentWork {
                key: frame.key.clone(),
                evaluated: o.periods,
                values,
                held: o.held,
                held_falls: Vec::new(),
                candidate_only,
            });
        }
        surges.extend(o.events);
    }
    let stored_at = started.elapsed();
    let mut record = PartRecord {
        analyzed: AnalyzedRelease {
            release_id: marker.release_id.clone(),
            source: marker.source.clone(),
            part: marker.part,
            series: frames.len() as u64,
            periods_evaluated,
            surges,
            finished_at: now_rfc3339(),
        },
        parts: marker.parts.max(1),
        tested,
        tested_falls,
        candidates,
        incidents: incident_work,
        live_series,
        fdr_done: false,
    };
    let key = names::analyzed_key(&marker.release_id, &marker.source, marker.part);
    let others = match other_parts(bus, marker).await? {
        Some(others) => Some(others),
        None => {
            put_record(bus, &key, &record).await?;
            other_parts(bus, marker).await?
        }
    };
    // Where a part's time goes, for `RUST_LOG=borderwatch_analytics=debug`: reading its
    // series, evaluating them, storing their views, recording the part (and reading the
    // other parts' records); the release-wide work has its own line below.
    debug!(
        part = marker.part,
        series = series.len(),
        read_ms = read_at.as_millis() as u64,
        evaluated_ms = evaluated_at.as_millis() as u64,
        stored_ms = stored_at.as_millis() as u64,
        recorded_ms = started.elapsed().as_millis() as u64,
        "part timings"
    );
    if let Some(others) = others {
        let release_wide = std::time::Instant::now();
        let (statistical, held) =
            statistical_surges(&record, &others, cfg, &marker.release_id, &detected_at);
        for event in &statistical {
            add_to_view(bus, event).await?;
        }
        info!(release = %marker.release_id, source = %marker.source, surges = statistical.len(), "release-wide false-discovery control done");
        record.analyzed.surges.extend(statistical);
        // Every surge of the release, each once, with its incident, then announced.
        let mut all: Vec<SurgeEvent> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for e in std::iter::once(&record)
            .chain(&others)
            .flat_map(|r| &r.analyzed.surges)
        {
            if seen.insert(e.id.as_str()) {
                all.push(e.clone());
            }
        }
        drop(seen);
        let mut work: Vec<IncidentWork> = std::iter::once(&record)
            .chain(&others)
            .flat_map(|r| r.incidents.iter().cloned())
            .collect();
        for (key, period, direction) in held {
            if let Some(w) = work.iter_mut().find(|w| w.key == key) {
                match direction {
                    Direction::Rise => w.held.push(period),
                    Direction::Fall => w.held_falls.push(period),
                }
            }
        }
        // A series there only as a candidate (no open incident when its part ran) that the
        // control did not make a surge has nothing to advance: a held period never opens an
        // incident (`alert::advance`). Most candidates of a large release are such (every
        // p-value at most the FDR rate: 5 % of all periods where nothing changed), and
        // reading and writing each one's incident record made the release-wide step the
        // larger part of a large release's analysis (BENCHMARKS.md, "Analytics scaling").
        let surged: HashSet<SeriesKey> = all.iter().map(SurgeEvent::series).collect();
        work.retain(|w| !w.candidate_only || surged.contains(&w.key));
        let closings = incidents::apply(
            bus,
            &work,
            &mut all,
            &fingerprint,
            &marker.release_id,
            &detected_at,
        )
        .await?;
        let incidents_at = release_wide.elapsed();
        let live_series = std::iter::once(&record)
            .chain(&others)
            .map(|r| r.live_series as usize)
            .sum();
        story::group(&mut all, live_series, &marker.release_id, &cfg.alert);
        all.sort_by(|a, b| a.series().cmp(&b.series()).then(a.period.cmp(&b.period)));
        for event in all.iter().chain(&closings) {
            announce(bus, event).await?;
        }
        debug!(
            parts = others.len() + 1,
            incident_work = work.len(),
            surges = all.len(),
            incidents_ms = incidents_at.as_millis() as u64,
            announced_ms = release_wide.elapsed().as_millis() as u64,
            "release-wide timings"
        );
        let done: HashMap<&str, &SurgeEvent> = all.iter().map(|a| (a.id.as_str(), a)).collect();
        for e in &mut record.analyzed.surges {
            if let Some(done) = done.get(e.id.as_str()) {
                *e = (*done).clone();
            }
        }
        record.fdr_done = true;
        record.analyzed.finished_at = now_rfc3339();
        put_record(bus, &key, &record).await?;
    }
    Ok(record.analyzed)
}

/// The figures of the series named as the stream held them at sequence `as_of` (the
/// marker's `obs_seq`: what its release saw), and the series that have figures stored
/// after it.
///
/// Each series' messages (one per release that brought or revised figures of it) are folded
/// up to `as_of` (`borderwatch_bus::obs::series_as_of`): a period a later release brought is
/// left out and a later revision read as it was. Without `as_of` (a marker from before it
/// existed), the latest figures.
async fn observations_as_of(
    bus: &dyn Transport,
    series: &[obs::Series],
    as_of: Option<u64>,
) -> Result<(Vec<Observation>, HashSet<SeriesKey>), BusError> {
    let (figures, newer) = obs::series_as_of(bus, series, as_of).await?;
    let mut observations = Vec::new();
    for (s, figures) in figures {
        let Ok(country) = Country::parse(&s.country) else {
            continue;
        };
        for (period, figure) in figures {
            let Ok(period) = period.parse::<Period>() else {
                continue;
            };
            observations.push(Observation {
                source: s.source.clone(),
                country,
                category: s.category.clone(),
                period,
                count: figure.count,
                release_id: figure.release_id,
            });
        }
    }
    let superseded: HashSet<SeriesKey> = newer
        .iter()
        .filter_map(|s| {
            let country = Country::parse(&s.country).ok()?;
            Some(SeriesKey::new(&s.source, country, &s.category))
        })
        .collect();
    if !superseded.is_empty() {
        info!(
            series = superseded.len(),
            as_of = as_of.unwrap_or_default(),
            "series with figures newer than their release read as the release saw them"
        );
    }
    Ok((observations, superseded))
}

/// The CPU part: aggregation, then every detector on every touched series, then each
/// series' assessments and bands, each step on every core. Returns the frames and, per
/// touched frame, its index, the periods tested, its assessments (each marked live when at
/// the series' live edge) and the bands of the tested periods.
#[allow(clippy::type_complexity)]
fn analyse(
    observations: &[Observation],
    touched: &HashMap<(String, String), Vec<Period>>,
    cfg: &AnalysisConfig,
) -> Result<
    (
        Vec<SeriesFrame>,
        Vec<(usize, Vec<Period>, Vec<Assessment>, Vec<Band>)>,
    ),
    crate::AnalyticsError,
> {
    let frames = aggregate(observations)?;
    let picked: Vec<(usize, Vec<Period>)> = frames
        .iter()
        .enumerate()
        .filter_map(|(i, frame)| {
            let key = &frame.key;
            let periods = touched.get(&(key.country.code().to_string(), key.category.clone()))?;
            let periods: Vec<Period> = periods
                .iter()
                .copied()
                .filter(|p| p.freq() == frame.freq)
                .collect();
            Some((i, periods))
        })
        .collect();
    let jobs: Vec<(&SeriesFrame, Vec<Period>)> = picked
        .iter()
        .map(|(i, periods)| (&frames[*i], periods.clone()))
        .collect();
    let evaluations = evaluate_frames(&jobs, cfg);
    let assessed = assess_frames(&jobs, &evaluations, cfg.alert.live_window);
    let assessed = picked
        .into_iter()
        .zip(assessed)
        .map(|((i, periods), s)| (i, periods, s.assessments, s.bands))
        .collect();
    Ok((frames, assessed))
}

/// The records of every other part of the marker's release and source, in part order, or
/// `None` while one is missing.
///
/// Read from the last part down: parts are mostly analysed in order, so a part that is not
/// the release's last finds a later part missing at the first read. Read from the first
/// up, each part read every earlier record (twice) before finding that: quadratic in the
/// parts, and a release of 50 parts spent seconds on it.
async fn other_parts(
    bus: &dyn Transport,
    marker: &ReleaseMarker,
) -> Result<Option<Vec<PartRecord>>, BusError> {
    let mut out = Vec::new();
    for part in (0..marker.parts.max(1)).rev().filter(|&p| p != marker.part) {
        let key = names::analyzed_key(&marker.release_id, &marker.source, part);
        let Some(raw) = bus.kv_get(names::ANALYZED_BUCKET, &key).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<PartRecord>(&raw) {
            Ok(r) => out.push(r),
            Err(e) => {
                warn!(key, error = %e, "an analysed part does not parse; counting it as missing");
                return Ok(None);
            }
        }
    }
    out.reverse();
    Ok(Some(out))
}

/// Benjamini–Hochberg over the candidates of every part (rises and falls, each their own
/// family): the statistical-only surges and the falls that survive (evidence surges were
/// announced by their parts), and the survivors whose score stayed under the gate, which
/// hold an open incident open.
#[allow(clippy::type_complexity)]
fn statistical_surges(
    own: &PartRecord,
    others: &[PartRecord],
    cfg: &AnalysisConfig,
    release_id: &str,
    detected_at: &str,
) -> (Vec<SurgeEvent>, Vec<(SeriesKey, Period, Direction)>) {
    let parts = || std::iter::once(own).chain(others);
    let all: Vec<Assessment> = parts().flat_map(|r| r.candidates.iter().cloned()).collect();
    let tested = parts().map(|r| r.tested as usize).sum::<usize>();
    let tested_falls = parts().map(|r| r.tested_falls as usize).sum::<usize>();
    let fingerprint = cfg.fingerprint();
    let rises = fdr_survivors(&all, tested, cfg.fdr);
    let falls = fall_survivors(&all, tested_falls, cfg.fdr);
    let mut events = Vec::new();
    let mut held = Vec::new();
    for ((rise, fall), a) in rises.into_iter().zip(falls).zip(&all) {
        if rise && a.evidence.is_empty() {
            match surge_event(a, true, &fingerprint, &cfg.alert, release_id, detected_at) {
                Some(e) => events.push(e),
                None => held.push((a.key.clone(), a.period, Direction::Rise)),
            }
        }
        if fall {
            match fall_event(a, true, &fingerprint, &cfg.alert, release_id, detected_at) {
                Some(e) => events.push(e),
                None => held.push((a.key.clone(), a.period, Direction::Fall)),
            }
        }
    }
    (events, held)
}

async fn put_record(bus: &dyn Transport, key: &str, record: &PartRecord) -> Result<(), BusError> {
    bus.kv_put(
        names::ANALYZED_BUCKET,
        key,
        serde_json::to_vec(record).unwrap_or_default().into(),
    )
    .await
}

/// Publishes a surge unless it was announced before.
async fn announce(bus: &dyn Transport, event: &SurgeEvent) -> Result<(), BusError> {
    if bus
        .kv_get(names::ANNOUNCED_BUCKET, &event.id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let payload = serde_json::to_vec(event).unwrap_or_default();
    bus.publish(
        Outgoing::new(
            names::surge_subject(event.country.code(), &event.category),
            payload,
        )
        .with_id(event.id.clone()),
    )
    .await?;
    bus.kv_put(
        names::ANNOUNCED_BUCKET,
        &event.id,
        bytes_of(&event.release_id),
    )
    .await?;
    info!(id = %event.id, series = %event.series(), period = %event.period, severity = %event.severity, "surge announced");
    if event.incident_update != IncidentUpdate::Closed {
        metrics::counter!("borderwatch_surges_total", "severity" => event.severity.to_string())
            .increment(1);
    }
    Ok(())
}

fn bytes_of(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

/// Adds a surge found after its series view was stored to that view.
async fn add_to_view(bus: &dyn Transport, event: &SurgeEvent) -> Result<(), BusError> {
    let kv_key = names::series_key(&event.source, event.country.code(), &event.category);
    let Some(raw) = bus.kv_get(names::SERIES_BUCKET, &kv_key).await? else {
        return Ok(());
    };
    let Ok(mut view) = SeriesView::from_stored(&raw) else {
        return Ok(());
    };
    if view.surges.contains(&event.id) {
        return Ok(());
    }
    view.surges.push(event.id.clone());
    bus.kv_put(names::SERIES_BUCKET, &kv_key, view.to_stored().into())
        .await
}

/// Stores the series view, keeping the ids of surges found in earlier releases and the bands
/// of periods this release did not evaluate. When the stream already holds newer figures of
/// the series (`newer_exists`: a late analysis), a stored view keeps its figures and only
/// gains this release's bands and surges; the later release's analysis stores the newer
/// figures.
async fn store_view(
    bus: &dyn Transport,
    mut view: SeriesView,
    events: &[SurgeEvent],
    newer_exists: bool,
) -> Result<(), BusError> {
    let key = SeriesKey::new(&view.source, view.country, &view.category);
    let kv_key = names::series_key(&key.source, key.country.code(), &key.category);
    let mut ids: Vec<String> = Vec::new();
    if let Some(prev) = bus.kv_get(names::SERIES_BUCKET, &kv_key).await?
        && let Ok(prev) = SeriesView::from_stored(&prev)
    {
        if newer_exists && prev.freq == view.freq {
            // Keep the stored (newer) figures; take this release's bands.
            let bands = std::mem::take(&mut view.bands);
            view = SeriesView {
                bands,
                surges: Vec::new(),
                ..prev.clone()
            };
        }
        ids = prev.surges;
        let fresh: Vec<Period> = view.bands.iter().map(|b| b.period).collect();
        view.bands.extend(
            prev.bands
                .into_iter()
                .filter(|b| !fresh.contains(&b.period) && b.period.freq() == view.freq),
        );
        view.bands.sort_by_key(|b| b.period);
    }
    for e in events {
        if !ids.contains(&e.id) {
            ids.push(e.id.clone());
        }
    }
    view.surges = ids;
    bus.kv_put(names::SERIES_BUCKET, &kv_key, view.to_stored().into())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderwatch_bus::MemoryBus;
    use borderwatch_model::SeriesChange;

    /// One figure as ingest stores it: a message of its series with that figure alone.
    fn figure_msg(o: &Observation) -> Outgoing {
        let series = obs::Series::new(&o.source, o.country.code(), &o.category);
        obs::series_messages(
            &series,
            &o.release_id,
            &[(o.period.to_string(), o.count)],
            false,
        )
        .remove(0)
    }

    fn wobble(level: u64, n: usize) -> Vec<u64> {
        (0..n as u64)
            .map(|i| level + (i * 37 % 23) * level / 100 - 11 * level / 100)
            .collect()
    }

    async fn publish_series(
        bus: &Bus,
        country: &str,
        category: &str,
        values: &[u64],
    ) -> SeriesChange {
        let country = Country::parse(country).unwrap();
        let first: Period = "2013-Q1".parse().unwrap();
        let mut periods = Vec::new();
        for (i, &count) in values.iter().enumerate() {
            let period = first.offset(i as i64);
            let o = Observation {
                source: "fsb".into(),
                country,
                category: category.into(),
                period,
                count,
                release_id: "rel-1".into(),
            };
            bus.publish(figure_msg(&o)).await.unwrap();
            periods.push(period);
        }
        SeriesChange {
            country,
            category: category.into(),
            periods,
            revised: Vec::new(),
        }
    }

    fn marker(part: u32, changes: Vec<SeriesChange>) -> ReleaseMarker {
        ReleaseMarker {
            release_id: "rel-1".into(),
            source: "fsb".into(),
            part,
            parts: 2,
            changes,
            obs_seq: None,
        }
    }

    /// Publishes one figure of `fsb/VNM/work` and analyses the release that brings it.
    async fn live_release(bus: &Bus, release: &str, period: &str, count: u64) -> AnalyzedRelease {
        let country = Country::parse("VNM").unwrap();
        let period: Period = period.parse().unwrap();
        let o = Observation {
            source: "fsb".into(),
            country,
            category: "work".into(),
            period,
            count,
            release_id: release.into(),
        };
        bus.publish(figure_msg(&o)).await.unwrap();
        let change = SeriesChange {
            country,
            category: "work".into(),
            periods: vec![period],
            revised: Vec::new(),
        };
        let marker = ReleaseMarker {
            release_id: release.into(),
            source: "fsb".into(),
            part: 0,
            parts: 1,
            changes: vec![change],
            obs_seq: None,
        };
        process(bus.as_ref(), &AnalysisConfig::default(), &marker)
            .await
            .unwrap()
    }

    async fn incidents_of(bus: &Bus) -> borderwatch_model::SeriesIncidents {
        let raw = bus
            .kv_get(
                names::INCIDENTS_BUCKET,
                &names::series_key("fsb", "VNM", "work"),
            )
            .await
            .unwrap()
            .expect("the series' incidents are kept");
        serde_json::from_slice(&raw).unwrap()
    }

    #[tokio::test]
    async fn history_is_marked_and_a_live_episode_is_one_incident_until_it_ends() {
        use borderwatch_model::IncidentUpdate;
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        // A first load: ten years, with a one-quarter spike in 2017 that is history.
        let mut values = wobble(300, 40);
        values[18] = 3000;
        let history = publish_series(&bus, "VNM", "work", &values).await;
        let first = process(
            bus.as_ref(),
            &AnalysisConfig::default(),
            &ReleaseMarker {
                release_id: "rel-history".into(),
                source: "fsb".into(),
                part: 0,
                parts: 1,
                changes: vec![history],
                obs_seq: None,
            },
        )
        .await
        .unwrap();
        assert!(!first.surges.is_empty(), "the 2017 spike is found");
        assert!(
            first.surges.iter().all(|e| e.historical),
            "{:?}",
            first.surges
        );
        let kept = incidents_of(&bus).await;
        assert!(kept.incidents.iter().all(|i| !i.announced && !i.live));

        // The next quarter jumps: live, and it opens an incident.
        let opened = live_release(&bus, "rel-2", "2023-Q1", 3000).await;
        let e = &opened.surges[0];
        assert!(!e.historical);
        assert_eq!(e.incident_update, IncidentUpdate::Opened);
        assert!(e.score >= AnalysisConfig::default().alert.min_score);
        let incident = e.incident_id.clone().expect("an incident");

        // It stays high: the same incident, not announced again unless louder.
        let more = live_release(&bus, "rel-3", "2023-Q2", 3300).await;
        let e = &more.surges[0];
        assert_eq!(e.incident_id.as_deref(), Some(incident.as_str()));
        assert_ne!(e.incident_update, IncidentUpdate::Opened);

        // Back to normal: the incident closes there.
        let quiet = live_release(&bus, "rel-4", "2023-Q3", 310).await;
        assert!(quiet.surges.is_empty());
        let kept = incidents_of(&bus).await;
        let last = kept.incidents.last().unwrap();
        assert_eq!(last.id, incident);
        assert_eq!(last.closed, Some("2023-Q3".parse().unwrap()));
        assert!(last.announced && last.live);
        assert_eq!(last.surges.len(), 2);
        // Its closing notice is announced once, for subscriptions that ask for it.
        let notice = format!("rs-{}", incident.trim_start_matches("in-"));
        assert!(
            bus.kv_get(names::ANNOUNCED_BUCKET, &notice)
                .await
                .unwrap()
                .is_some(),
            "the closing notice {notice} is announced"
        );

        // The same release analysed again changes nothing.
        let again = live_release(&bus, "rel-3", "2023-Q2", 3300).await;
        assert_eq!(
            again.surges[0].incident_id.as_deref(),
            Some(incident.as_str())
        );
        assert_eq!(incidents_of(&bus).await, kept);
    }

    #[tokio::test]
    async fn the_view_keeps_a_band_per_evaluated_period_across_releases() {
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        let change = publish_series(&bus, "VNM", "work", &wobble(300, 40)).await;
        let one_part = |release: &str, changes| ReleaseMarker {
            release_id: release.into(),
            source: "fsb".into(),
            part: 0,
            parts: 1,
            changes,
            obs_seq: None,
        };
        let cfg = AnalysisConfig::default();
        process(bus.as_ref(), &cfg, &one_part("rel-1", vec![change.clone()]))
            .await
            .unwrap();
        let key = names::series_key("fsb", "VNM", "work");
        let read = || async {
            let raw = bus
                .kv_get(names::SERIES_BUCKET, &key)
                .await
                .unwrap()
                .unwrap();
            SeriesView::from_stored(&raw).unwrap()
        };
        let first = read().await;
        // farrington needs three years of history: the later periods have a band.
        assert!(first.bands.len() >= 20, "{} bands", first.bands.len());
        let last = first.bands.last().unwrap();
        assert_eq!(last.period, *change.periods.last().unwrap());
        assert_eq!(last.detector, "farrington");
        assert!(
            last.upper_bound > last.expected && last.expected > 100.0,
            "{last:?}"
        );

        // The next release changes only the last period: the other bands stay.
        let period = *change.periods.last().unwrap();
        let country = Country::parse("VNM").unwrap();
        let revised = Observation {
            source: "fsb".into(),
            country,
            category: "work".into(),
            period,
            count: 310,
            release_id: "rel-2".into(),
        };
        bus.publish(figure_msg(&revised)).await.unwrap();
        let only_last = SeriesChange {
            periods: vec![period],
            ..change
        };
        process(bus.as_ref(), &cfg, &one_part("rel-2", vec![only_last]))
            .await
            .unwrap();
        let second = read().await;
        assert_eq!(second.bands.len(), first.bands.len());
        assert_eq!(
            second.bands[..first.bands.len() - 1],
            first.bands[..first.bands.len() - 1]
        );
        assert!(second.bands.windows(2).all(|w| w[0].period < w[1].period));
    }

    #[tokio::test]
    async fn the_last_part_of_a_release_announces_its_statistical_surges() {
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        let quiet = publish_series(&bus, "VNM", "work", &wobble(300, 46)).await;
        // Chinese tourism: a record 650 years ago, ~150 since, then 420: statistics only.
        let mut values = vec![650; 8];
        values.extend(wobble(150, 33));
        values.extend([150; 4]);
        values.push(420);
        let surge = publish_series(&bus, "CHN", "tourism", &values).await;
        // Without the score gate (420 against 150 scores below it): the release-wide
        // false-discovery control is what is tested.
        let mut cfg = AnalysisConfig::default();
        cfg.alert.min_score = 0.0;

        let first = process(bus.as_ref(), &cfg, &marker(0, vec![quiet]))
            .await
            .unwrap();
        assert!(first.surges.is_empty());
        let record = record_of(&bus, 0).await;
        assert!(!record.fdr_done && record.tested > 0);

        let last = process(bus.as_ref(), &cfg, &marker(1, vec![surge]))
            .await
            .unwrap();
        let found: Vec<String> = last
            .surges
            .iter()
            .map(|s| format!("{}/{}", s.category, s.period))
            .collect();
        assert!(found.contains(&"tourism/2024-Q2".to_string()), "{found:?}");
        let e = last
            .surges
            .iter()
            .find(|s| s.category == "tourism")
            .unwrap();
        assert!(
            e.explanation.starts_with(
                "420 entries of Chinese citizens for tourism in 2024-Q2: far above the expected"
            ),
            "statistics only: {}",
            e.explanation
        );
        assert!(
            bus.kv_get(names::ANNOUNCED_BUCKET, &e.id)
                .await
                .unwrap()
                .is_some()
        );
        let view = bus
            .kv_get(
                names::SERIES_BUCKET,
                &names::series_key("fsb", "CHN", "tourism"),
            )
            .await
            .unwrap()
            .unwrap();
        let view = SeriesView::from_stored(&view).unwrap();
        assert!(view.surges.contains(&e.id));

        // A redelivered part 0 runs the same control again: the same surge, announced once.
        let again = process(bus.as_ref(), &cfg, &marker(0, vec![quiet_change()])).await;
        assert!(again.is_ok());
        let readers_view: AnalyzedRelease = serde_json::from_slice(
            &bus.kv_get(
                names::ANALYZED_BUCKET,
                &names::analyzed_key("rel-1", "fsb", 1),
            )
            .await
            .unwrap()
            .unwrap(),
        )
        .unwrap();
        let ids = |s: &[SurgeEvent]| s.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&readers_view.surges), ids(&last.surges));
    }

    /// What an analysis found, without the times it ran at.
    fn found(done: &AnalyzedRelease) -> Vec<(String, Period, u64, bool, String)> {
        done.surges
            .iter()
            .map(|e| {
                let e = SurgeEvent {
                    detected_at: String::new(),
                    ..e.clone()
                };
                (
                    e.id.clone(),
                    e.period,
                    e.value,
                    e.historical,
                    serde_json::to_string(&e).unwrap(),
                )
            })
            .collect()
    }

    async fn view_of(bus: &Bus) -> SeriesView {
        let raw = bus
            .kv_get(
                names::SERIES_BUCKET,
                &names::series_key("fsb", "VNM", "work"),
            )
            .await
            .unwrap()
            .expect("a view");
        SeriesView::from_stored(&raw).unwrap()
    }

    /// A release analysed after a later one landed (a backlog, or a part redone by another
    /// replica) finds what it finds analysed alone: the later release's new period and its
    /// revisions of the baseline are not read.
    #[tokio::test]
    async fn a_release_analysed_after_a_later_one_landed_sees_only_its_own_figures() {
        let mut values = wobble(300, 40);
        values[39] = 1500;
        let values = &values;
        let release_one = |bus: Bus| async move {
            let change = publish_series(&bus, "VNM", "work", values).await;
            ReleaseMarker {
                release_id: "rel-1".into(),
                source: "fsb".into(),
                part: 0,
                parts: 1,
                changes: vec![change],
                obs_seq: Some(bus.last_seq(names::OBS_STREAM).await.unwrap()),
            }
        };
        let cfg = AnalysisConfig::default();

        let alone: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(alone.as_ref(), 1).await.unwrap();
        let marker = release_one(alone.clone()).await;
        let expected = process(alone.as_ref(), &cfg, &marker).await.unwrap();
        assert!(
            expected.surges.iter().any(|e| e.value == 1500),
            "the jump is found: {:?}",
            found(&expected)
        );

        let late: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(late.as_ref(), 1).await.unwrap();
        let marker = release_one(late.clone()).await;
        // Release 2 lands first: the next quarter, and the last three years revised up to
        // the level of the jump (read with them, the jump would be ordinary).
        let country = Country::parse("VNM").unwrap();
        let first: Period = "2013-Q1".parse().unwrap();
        for (i, count) in (28..39).map(|i| (i, 1500)).chain([(40, 320)]) {
            let period = first.offset(i);
            let o = Observation {
                source: "fsb".into(),
                country,
                category: "work".into(),
                period,
                count,
                release_id: "rel-2".into(),
            };
            late.publish(figure_msg(&o)).await.unwrap();
        }
        let analysed_late = process(late.as_ref(), &cfg, &marker).await.unwrap();
        assert_eq!(found(&analysed_late), found(&expected));
        assert_eq!(
            (analysed_late.series, analysed_late.periods_evaluated),
            (expected.series, expected.periods_evaluated)
        );
        assert_eq!(view_of(&late).await.bands, view_of(&alone).await.bands);
        // Redone once more (another replica): the same again.
        let redone = process(late.as_ref(), &cfg, &marker).await.unwrap();
        assert_eq!(found(&redone), found(&expected));
    }

    /// The record of part `part` of `rel-1`, which must be there.
    async fn record_of(bus: &Bus, part: u32) -> PartRecord {
        let raw = bus
            .kv_get(
                names::ANALYZED_BUCKET,
                &names::analyzed_key("rel-1", "fsb", part),
            )
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("part {part} is recorded"));
        serde_json::from_slice(&raw).unwrap()
    }

    /// Figures around `level` with a seeded ±15 % noise and nothing else.
    fn noise(seed: u64, level: u64, n: usize) -> Vec<u64> {
        (0..n as u64)
            .map(|i| {
                let mut x = (seed + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i + 1);
                x ^= x >> 33;
                x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
                x ^= x >> 33;
                level * (85 + x % 31) / 100
            })
            .collect()
    }

    /// A series there only as a candidate of the release-wide control (a p-value under
    /// the FDR rate, no evidence surge, no open incident), which the control does not make
    /// a surge, is left alone: no incident record is read or written for it.
    #[tokio::test]
    async fn candidates_the_control_turns_down_get_no_incident_record() {
        let bus: Bus = Arc::new(MemoryBus::ephemeral());
        names::ensure_all(bus.as_ref(), 1).await.unwrap();
        let mut changes = Vec::new();
        for seed in 0..60 {
            let values = noise(seed, 400, 40);
            changes.push(publish_series(&bus, "VNM", &format!("c{seed}"), &values).await);
        }
        let marker = ReleaseMarker {
            parts: 1,
            ..marker(0, changes)
        };
        let done = process(bus.as_ref(), &AnalysisConfig::default(), &marker)
            .await
            .unwrap();
        let record = record_of(&bus, 0).await;
        let surged: HashSet<SeriesKey> = done.surges.iter().map(SurgeEvent::series).collect();
        let turned_down: Vec<&IncidentWork> = record
            .incidents
            .iter()
            .filter(|w| w.candidate_only && !surged.contains(&w.key))
            .collect();
        assert!(
            !turned_down.is_empty(),
            "noise gives candidates the control turns down ({} candidates, {} surges)",
            record.candidates.len(),
            done.surges.len()
        );
        for w in turned_down {
            let key = names::series_key("fsb", "VNM", &w.key.category);
            assert_eq!(
                bus.kv_get(names::INCIDENTS_BUCKET, &key).await.unwrap(),
                None,
                "{key}"
            );
        }
    }

    fn quiet_change() -> SeriesChange {
        SeriesChange {
            country: Country::parse("VNM").unwrap(),
            category: "work".into(),
            periods: vec!["2024-Q2".parse().unwrap()],
            revised: Vec::new(),
        }
    }
}
