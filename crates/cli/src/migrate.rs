//! `borderwatch migrate`: moves the figures of `BW_OBS` from the layout before (one subject
//! per figure, `bw.obs.<source>.<country>.<category>.<period>`) to one subject per series
//! (`borderwatch_bus::obs`), keeping every stored version in order, so that the series fold
//! to the same figures and revision history. Run with every role stopped, once analytics has
//! finished every release (see ARCHITECTURE.md, "Figures: one subject per series").
//!
//! Over NATS the series messages are published first and the per-figure subjects purged
//! after (a migration stopped half-way is run again: republishing appends the same versions
//! in the same order, which folds to the same figures). In a data directory the stream's log
//! is set aside as `streams/BW_OBS.log.before-migrate` (kept: remove it once satisfied) and a
//! new one written.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use borderwatch_bus::obs::{self, Series};
use borderwatch_bus::{MemoryBus, Message, Outgoing, Transport, names};
use borderwatch_model::Observation;
use futures::StreamExt;

use crate::MigrateArgs;

/// What a migration moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    /// Per-figure messages read (every stored version).
    pub versions: u64,
    /// Series messages written for them.
    pub series_messages: u64,
    /// Series.
    pub series: u64,
}

/// How long a read of stored messages waits for the next one.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Every message of `BW_OBS`, in order, up to the last stored when the read began.
async fn all_messages(bus: &dyn Transport) -> anyhow::Result<Vec<Message>> {
    let last = bus.last_seq(names::OBS_STREAM).await?;
    let mut out = Vec::new();
    if last == 0 {
        return Ok(out);
    }
    let mut stored = bus.replay(names::OBS_STREAM, names::ALL_OBS, 1).await?;
    loop {
        let Ok(next) = tokio::time::timeout(READ_TIMEOUT, stored.next()).await else {
            bail!(
                "reading {} timed out after {READ_TIMEOUT:?}",
                names::OBS_STREAM
            );
        };
        let Some(msg) = next else { break };
        let msg = msg?;
        let seq = msg.seq;
        out.push(msg);
        if seq >= last {
            break;
        }
    }
    Ok(out)
}

/// Consecutive versions of one series from one release: the release and its figures.
type Run = (String, Vec<(String, u64)>);

/// The series messages that hold the per-figure messages among `messages`, in order: per
/// series, one message per run of consecutive versions from the same release (so that a
/// later version of a period stays later).
fn series_messages_of(messages: &[Message]) -> anyhow::Result<(Vec<Outgoing>, Moved)> {
    // Per series, its runs in order: (release, figures).
    let mut runs: HashMap<Series, Vec<Run>> = HashMap::new();
    let mut order: Vec<Series> = Vec::new();
    let mut moved = Moved::default();
    for m in messages {
        if !names_a_figure(&m.subject) {
            continue;
        }
        let o: Observation = serde_json::from_slice(&m.payload)
            .with_context(|| format!("message {} on {} is not an observation", m.seq, m.subject))?;
        moved.versions += 1;
        let series = Series::new(&o.source, o.country.code(), &o.category);
        let series_runs = runs.entry(series.clone()).or_insert_with(|| {
            order.push(series);
            Vec::new()
        });
        let figure = (o.period.to_string(), o.count);
        match series_runs.last_mut() {
            Some((release, figures)) if *release == o.release_id => {
                // A second version of a period within one run starts a new run: the fold
                // must see both, in order.
                if figures.iter().any(|(p, _)| *p == figure.0) {
                    series_runs.push((o.release_id, vec![figure]));
                } else {
                    figures.push(figure);
                }
            }
            _ => series_runs.push((o.release_id, vec![figure])),
        }
    }
    let mut out = Vec::new();
    for series in order {
        for (release, figures) in &runs[&series] {
            out.extend(obs::series_messages(&series, release, figures, false));
        }
    }
    moved.series = runs.len() as u64;
    moved.series_messages = out.len() as u64;
    Ok((out, moved))
}

/// Whether `subject` is a per-figure subject of the layout before.
fn names_a_figure(subject: &str) -> bool {
    borderwatch_bus::subject_matches(obs::LEGACY_FILTER, subject)
}

/// Refuses while analytics has release markers left (over NATS: its durable consumer's
/// pending and unacknowledged messages): a marker's `obs_seq` is below every moved message,
/// so its series would read as empty. (In a data directory the consumer's position is not
/// known to this process: ARCHITECTURE.md asks to let analytics finish first.)
async fn analytics_finished(bus: &dyn Transport) -> anyhow::Result<()> {
    let lag = bus
        .consumer_lag(names::RELEASE_STREAM, names::ANALYTICS_CONSUMER)
        .await?;
    if let Some(lag) = lag
        && lag.pending + lag.ack_pending > 0
    {
        bail!(
            "analytics has {} release markers left ({} not delivered, {} in progress): start \
             analytics alone until they are done, stop it, then run migrate (their figures are \
             read as their release saw them only in the layout they were stored in)",
            lag.pending + lag.ack_pending,
            lag.pending,
            lag.ack_pending
        );
    }
    Ok(())
}

/// Migrates `BW_OBS` over NATS at `urls`.
///
/// The stream is not created or otherwise changed (its replicas and limits stay as the
/// operator set them), but for its versions per subject: unlimited from now on, as a
/// series' messages are its history (a stream from before kept 16 per subject).
pub async fn migrate_nats(urls: &str) -> anyhow::Result<Moved> {
    let client = async_nats::connect(urls)
        .await
        .with_context(|| format!("connecting to NATS at {urls}"))?;
    let js = async_nats::jetstream::new(client);
    let Ok(mut stream) = js.get_stream(names::OBS_STREAM).await else {
        return Ok(Moved::default());
    };
    let bus = borderwatch_bus::NatsBus::connect(urls, "borderwatch-migrate")
        .await
        .with_context(|| format!("connecting to NATS at {urls}"))?;
    analytics_finished(&bus).await?;
    let mut config = stream
        .info()
        .await
        .with_context(|| format!("reading stream {}", names::OBS_STREAM))?
        .config
        .clone();
    if config.max_messages_per_subject != -1 {
        config.max_messages_per_subject = -1;
        js.update_stream(&config).await.with_context(|| {
            format!("keeping every message per subject in {}", names::OBS_STREAM)
        })?;
    }
    let messages = all_messages(&bus).await?;
    let (series, moved) = series_messages_of(&messages)?;
    drop(messages);
    let due = long_series(&series);
    bus.publish_all(series)
        .await
        .context("publishing the series messages")?;
    stream
        .purge()
        .filter(obs::LEGACY_FILTER)
        .await
        .with_context(|| format!("purging {} from {}", obs::LEGACY_FILTER, names::OBS_STREAM))?;
    if obs::holds_legacy_figures(&bus).await? {
        bail!(
            "{} still holds per-figure subjects after the purge",
            names::OBS_STREAM
        );
    }
    compact(&bus, &due).await?;
    Ok(moved)
}

/// Migrates `BW_OBS` in the data directory `data` (nothing else may have it open).
pub async fn migrate_data_dir(data: &Path) -> anyhow::Result<Moved> {
    let open = || async {
        let bus = MemoryBus::open(data)
            .await
            .with_context(|| format!("opening the data directory {}", data.display()))?;
        names::ensure_all(&bus, 1)
            .await
            .context("creating streams and buckets")?;
        anyhow::Ok(bus)
    };
    let bus = open().await?;
    if !obs::holds_legacy_figures(&bus).await? {
        return Ok(Moved::default());
    }
    let messages = all_messages(&bus).await?;
    let (mut series, moved) = series_messages_of(&messages)?;
    // Series messages already there (a migration run before) come after, as they did.
    series.extend(
        messages
            .iter()
            .filter(|m| Series::of_subject(&m.subject).is_some())
            .map(|m| {
                let mut out = Outgoing::new(m.subject.clone(), m.payload.clone());
                out.headers.clone_from(&m.headers);
                out
            }),
    );
    drop(messages);
    drop(bus);
    let log = data
        .join("streams")
        .join(format!("{}.log", names::OBS_STREAM));
    let aside = log.with_extension("log.before-migrate");
    if aside.exists() {
        bail!(
            "{} exists (from a migration before): move it away, then run migrate again",
            aside.display()
        );
    }
    std::fs::rename(&log, &aside)
        .with_context(|| format!("setting {} aside as {}", log.display(), aside.display()))?;
    let bus = open().await?;
    let due = long_series(&series);
    bus.publish_all(series)
        .await
        .context("publishing the series messages")?;
    if obs::holds_legacy_figures(&bus).await? {
        bail!("{} still holds per-figure subjects", names::OBS_STREAM);
    }
    compact(&bus, &due).await?;
    Ok(moved)
}

/// The series given more than [`obs::COMPACT_ABOVE`] messages among `published`: a
/// history brought by many releases, which ingest would have compacted.
fn long_series(published: &[Outgoing]) -> Vec<Series> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for m in published {
        *counts.entry(m.subject.as_str()).or_default() += 1;
    }
    let mut due: Vec<Series> = counts
        .into_iter()
        .filter(|(_, n)| *n > obs::COMPACT_ABOVE)
        .filter_map(|(subject, _)| Series::of_subject(subject))
        .collect();
    due.sort();
    due
}

/// Compacts the sources of `due` as ingest does ([`obs::compact_source`]: every series of
/// each source; every role is stopped, so nothing else writes the series).
async fn compact(bus: &dyn Transport, due: &[Series]) -> anyhow::Result<()> {
    let sources: std::collections::BTreeSet<&str> = due.iter().map(|s| s.source.as_str()).collect();
    for source in sources {
        obs::compact_source(bus, source).await.with_context(|| {
            format!("compacting the series of {source} in {}", names::OBS_STREAM)
        })?;
    }
    Ok(())
}

/// `borderwatch migrate`.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let moved = match args.nats.as_deref() {
        Some(urls) => migrate_nats(urls).await?,
        None => migrate_data_dir(&args.data).await?,
    };
    if moved.versions == 0 {
        println!(
            "{}: nothing to migrate (every figure is stored per series)",
            names::OBS_STREAM
        );
    } else {
        println!(
            "{}: {} stored figure versions moved into {} messages of {} series",
            names::OBS_STREAM,
            moved.versions,
            moved.series_messages,
            moved.series
        );
        if args.nats.is_none() {
            println!(
                "the stream's log before is kept as streams/{}.log.before-migrate in {}: remove it once satisfied",
                names::OBS_STREAM,
                args.data.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(seq: u64, country: &str, period: &str, count: u64, release: &str) -> Message {
        Message {
            subject: names::obs_subject("fsb", country, "study", period),
            headers: Vec::new(),
            payload: format!(
                r#"{{"source":"fsb","country":"{country}","category":"study","period":"{period}","count":{count},"release_id":"{release}"}}"#
            )
            .into(),
            seq,
        }
    }

    #[test]
    fn versions_become_runs_per_series_that_fold_to_the_last_version() {
        let messages = vec![
            figure(1, "PRK", "2024-Q1", 1, "a"),
            figure(2, "PRK", "2024-Q2", 2, "a"),
            figure(3, "CHN", "2024-Q1", 9, "a"),
            figure(4, "PRK", "2024-Q2", 20, "b"),
            figure(5, "PRK", "2024-Q2", 200, "b"),
        ];
        let (out, moved) = series_messages_of(&messages).unwrap();
        assert_eq!(
            moved,
            Moved {
                versions: 5,
                series_messages: 4,
                series: 2
            }
        );
        let mut figures = obs::Figures::new();
        for (i, m) in out.iter().enumerate() {
            if m.subject == "bw.obs.fsb.PRK.study" {
                let msg = Message {
                    subject: m.subject.clone(),
                    headers: Vec::new(),
                    payload: m.payload.clone(),
                    seq: i as u64 + 1,
                };
                obs::fold(&mut figures, &msg);
            }
        }
        assert_eq!(figures["2024-Q1"].count, 1);
        assert_eq!(figures["2024-Q2"].count, 200);
        assert_eq!(figures["2024-Q2"].release_id, "b");
    }

    #[test]
    fn series_brought_by_more_releases_than_ingest_keeps_are_compacted() {
        let k = obs::COMPACT_ABOVE as usize;
        let mut messages = Vec::new();
        for r in 0..=k {
            let period = format!("{}", 2000 + r);
            messages.push(figure(r as u64 + 1, "PRK", &period, 1, &format!("rel-{r}")));
            if r < k {
                messages.push(figure(
                    100 + r as u64,
                    "SYR",
                    &period,
                    1,
                    &format!("rel-{r}"),
                ));
            }
        }
        let (out, _) = series_messages_of(&messages).unwrap();
        assert_eq!(long_series(&out), vec![Series::new("fsb", "PRK", "study")]);
    }
}
