//! Every subject, stream, bucket and consumer name of borderwatch, in one place.
//! ARCHITECTURE.md lists them; keep the two in step.

use std::time::Duration;

use crate::{MaxBytes, StreamSpec};

/// Observations: `bw.obs.<source>.<country>.<category>`, one subject per series
/// ([`obs_series_subject`]), one message per release and series with its new and revised
/// figures; the layout is in [`crate::obs`].
pub const OBS_STREAM: &str = "BW_OBS";
/// Release markers: `bw.release.<source>`, published after a release's observations.
pub const RELEASE_STREAM: &str = "BW_RELEASES";
/// Surge events: `bw.surge.<country>.<category>`.
pub const SURGE_STREAM: &str = "BW_SURGES";

/// Every webhook attempt (the delivery log): `bw.attempt.<subscription>`.
pub const ATTEMPT_STREAM: &str = "BW_ATTEMPTS";
/// Deliveries given up on, for `borderwatch notify replay`: `bw.deadletter.<subscription>`.
pub const DEADLETTER_STREAM: &str = "BW_DEADLETTER";
/// Attempts kept per subscription in `BW_ATTEMPTS`.
pub const ATTEMPTS_KEPT_PER_SUBSCRIPTION: i64 = 10_000;

/// Release records (key: the content SHA-256 of the file, then `.source` when the upload named
/// one), so the same bytes twice add nothing; each record names the object that keeps its
/// exact bytes.
pub const RELEASES_BUCKET: &str = "bw_releases";
/// The latest per-series results the gateway serves (key: `<source>.<country>.<category>`).
pub const SERIES_BUCKET: &str = "bw_series";
/// Subscriptions (key: subscription id).
pub const SUBSCRIPTIONS_BUCKET: &str = "bw_subscriptions";
/// Delivery records (key: `<subscription>.<event>`): what was delivered, so nothing twice.
pub const DELIVERIES_BUCKET: &str = "bw_deliveries";
/// Surge ids announced (key: surge id), so a surge found again is not published again.
pub const ANNOUNCED_BUCKET: &str = "bw_announced";

/// Silences (key: silence id).
pub const SILENCES_BUCKET: &str = "bw_silences";
/// Surges waiting for their digest (key: `<subscription>.<release>.<surge>`) and the
/// claims of digest senders (key: `<subscription>.<release>.claim.<generation>`).
pub const DIGESTS_BUCKET: &str = "bw_digests";
/// Dead letters resent by `notify replay` (key: `<subscription>.<event>`).
pub const DEADLETTER_DONE_BUCKET: &str = "bw_deadletter_done";

/// Release parts analytics has finished (key: `<release id>.<source>.<part>`), with the
/// surges each produced.
pub const ANALYZED_BUCKET: &str = "bw_analyzed";

/// Each series' incidents, runs of consecutive alarming periods (key: the series key
/// `<source>.<country>.<category>`, as in [`SERIES_BUCKET`]), written by analytics.
pub const INCIDENTS_BUCKET: &str = "bw_incidents";

/// Object store of the exact bytes of every release (object: [`raw_object_name`]) and of
/// uploads too big for one request while they wait for ingest (object: `upload-…`).
pub const RAW_OBJECT_STORE: &str = "bw_raw";

/// The object that keeps the bytes with content hash `sha256` (hex).
pub fn raw_object_name(sha256: &str) -> String {
    format!("sha256-{sha256}")
}

/// Revisions: `bw.revision.<source>.<country>.<category>`, one event per figure a release
/// changed (old value, new value, both release ids).
pub const REVISION_STREAM: &str = "BW_REVISIONS";
/// Categories a source stopped publishing: `bw.missing.<source>.<category>`.
pub const MISSING_STREAM: &str = "BW_MISSING";

pub fn revision_subject(source: &str, country: &str, category: &str) -> String {
    format!("bw.revision.{source}.{country}.{category}")
}

pub fn missing_subject(source: &str, category: &str) -> String {
    format!("bw.missing.{source}.{category}")
}
/// What ingest's scheduled-source poller last saw of each source (key: source name): ETag,
/// Last-Modified and content hash, so a restart does not fetch or ingest it again.
pub const SOURCES_BUCKET: &str = "bw_sources";

/// The leases ingest replicas hold while one of them builds a release of a source (key
/// `source.<name>` or `sha.<content hash>`): one replica at a time per source, cluster-wide.
pub const LOCKS_BUCKET: &str = "bw_locks";

/// Ingest serves uploads here (queue group `ingest`).
pub const INGEST_SUBJECT: &str = "bw.ingest.submit";
pub const INGEST_QUEUE: &str = "ingest";

/// The durable consumer analytics replicas share.
pub const ANALYTICS_CONSUMER: &str = "analytics";
/// The durable consumer notify replicas share.
pub const NOTIFY_CONSUMER: &str = "notify";
/// Notify's durable consumer on [`REVISION_STREAM`]: revisions for subscriptions that take
/// them.
pub const NOTIFY_REVISIONS_CONSUMER: &str = "notify-revisions";
/// Notify's durable consumer on [`MISSING_STREAM`]: missing categories for subscriptions that
/// take them.
pub const NOTIFY_MISSING_CONSUMER: &str = "notify-missing";

/// The subject of one series' figures in [`OBS_STREAM`] (see [`crate::obs`]).
pub fn obs_series_subject(source: &str, country: &str, category: &str) -> String {
    format!("bw.obs.{source}.{country}.{category}")
}

/// The series subjects of `source` (and none of the per-figure subjects of the layout
/// before).
pub fn obs_series_of_source(source: &str) -> String {
    format!("bw.obs.{source}.*.*")
}

/// The subject of one figure in the layout before (one subject per figure), which
/// `borderwatch migrate` moves to [`obs_series_subject`]; nothing publishes it any more.
pub fn obs_subject(source: &str, country: &str, category: &str, period: &str) -> String {
    format!("bw.obs.{source}.{country}.{category}.{period}")
}

pub fn obs_filter_for_source(source: &str) -> String {
    format!("bw.obs.{source}.>")
}

pub fn release_subject(source: &str) -> String {
    format!("bw.release.{source}")
}

pub fn surge_subject(country: &str, category: &str) -> String {
    format!("bw.surge.{country}.{category}")
}

pub fn attempt_subject(subscription: &str) -> String {
    format!("bw.attempt.{subscription}")
}

pub fn deadletter_subject(subscription: &str) -> String {
    format!("bw.deadletter.{subscription}")
}

pub fn analyzed_key(release_id: &str, source: &str, part: u32) -> String {
    format!("{release_id}.{source}.{part}")
}

/// The note analytics leaves in [`ANALYZED_BUCKET`] beside a part's [`analyzed_key`] when it
/// cannot read that part's marker: ingest then marks the release again when the same file
/// comes again, instead of answering that it has nothing to add.
pub fn unreadable_marker_key(analyzed_key: &str) -> String {
    format!("{analyzed_key}.unreadable")
}

/// The filter of one series: its subject (see [`obs_series_subject`]).
pub fn obs_filter_for_series(source: &str, country: &str, category: &str) -> String {
    obs_series_subject(source, country, category)
}

pub fn series_key(source: &str, country: &str, category: &str) -> String {
    format!("{source}.{country}.{category}")
}

/// Every observation: the subjects of [`OBS_STREAM`].
pub const ALL_OBS: &str = "bw.obs.>";
/// Every series subject of [`OBS_STREAM`] (and none of the per-figure subjects of the
/// layout before).
pub const ALL_OBS_SERIES: &str = "bw.obs.*.*.*";
/// Every release marker: the subjects of [`RELEASE_STREAM`].
pub const ALL_RELEASES: &str = "bw.release.>";
/// Every surge event: the subjects of [`SURGE_STREAM`].
pub const ALL_SURGES: &str = "bw.surge.>";
/// Every webhook attempt: the subjects of [`ATTEMPT_STREAM`].
pub const ALL_ATTEMPTS: &str = "bw.attempt.>";
/// Every revision event: the subjects of [`REVISION_STREAM`].
pub const ALL_REVISIONS: &str = "bw.revision.>";
/// Every missing-category event: the subjects of [`MISSING_STREAM`].
pub const ALL_MISSING: &str = "bw.missing.>";
/// Every dead letter: the subjects of [`DEADLETTER_STREAM`].
pub const ALL_DEADLETTERS: &str = "bw.deadletter.>";

/// The start of every revision subject of `source` (`bw.revision.<source>.`; see
/// [`revision_subject`]), to pick that source's revisions out of [`ALL_REVISIONS`].
pub fn revisions_of(source: &str) -> String {
    format!("bw.revision.{source}.")
}

/// What [`OBS_STREAM`] may hold on the embedded bus when no limit was set: 64 GiB, far
/// more than any border statistics (the 9,926 figures of the demo take about 4 MiB), few
/// enough that a runaway source does not fill the disk. Past it ingest refuses new figures
/// with a clear error ([`crate::BusError::StreamFull`]) instead of dropping old ones. Over
/// NATS a stream's limit is reserved from the server's storage when it is created, so
/// there the stream is limited only when `--obs-max-bytes` is given (and otherwise by the
/// server's `max_file_store`).
pub const DEFAULT_OBS_MAX_BYTES: u64 = 64 << 30;

/// Limits an operator sets on the streams (flags and the configuration file); `None` keeps
/// what the stream has (or the default for a new one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamLimits {
    /// Bytes [`OBS_STREAM`] may hold (`--obs-max-bytes`); 0 means no limit.
    pub obs_max_bytes: Option<u64>,
}

/// What a full stream is to a reader and the setting that raises its limit, for
/// [`crate::BusError::StreamFull`].
pub fn stream_limit_setting(stream: &str) -> (&'static str, &'static str) {
    match stream {
        OBS_STREAM => (
            "figure store",
            "--obs-max-bytes (BORDERWATCH_OBS_MAX_BYTES, or obs_max_bytes in the [bus] table of the configuration file) on every role",
        ),
        _ => ("stream", "its max_bytes"),
    }
}

/// The streams every role expects, with `replicas` copies each.
pub fn streams(replicas: usize) -> Vec<StreamSpec> {
    streams_with(replicas, StreamLimits::default())
}

/// [`streams`] with the limits an operator set.
pub fn streams_with(replicas: usize, limits: StreamLimits) -> Vec<StreamSpec> {
    let obs_max_bytes = match limits.obs_max_bytes {
        None => MaxBytes::Default(DEFAULT_OBS_MAX_BYTES),
        Some(0) => MaxBytes::Unlimited,
        Some(n) => MaxBytes::Set(n),
    };
    vec![
        StreamSpec {
            name: OBS_STREAM.into(),
            subjects: vec![ALL_OBS.into()],
            // A series' messages are its revision history: all are kept.
            max_msgs_per_subject: -1,
            duplicate_window: Duration::from_secs(3600),
            replicas,
            max_bytes: obs_max_bytes,
        },
        StreamSpec {
            name: RELEASE_STREAM.into(),
            subjects: vec![ALL_RELEASES.into()],
            max_msgs_per_subject: -1,
            duplicate_window: Duration::from_secs(3600),
            replicas,
            max_bytes: MaxBytes::Unlimited,
        },
        StreamSpec {
            name: SURGE_STREAM.into(),
            subjects: vec![ALL_SURGES.into()],
            max_msgs_per_subject: -1,
            duplicate_window: Duration::from_secs(3600),
            replicas,
            max_bytes: MaxBytes::Unlimited,
        },
        StreamSpec {
            name: ATTEMPT_STREAM.into(),
            subjects: vec![ALL_ATTEMPTS.into()],
            max_msgs_per_subject: ATTEMPTS_KEPT_PER_SUBSCRIPTION,
            duplicate_window: Duration::from_secs(3600),
            replicas,
            max_bytes: MaxBytes::Unlimited,
        },
        StreamSpec {
            name: REVISION_STREAM.into(),
            subjects: vec![ALL_REVISIONS.into()],
            max_msgs_per_subject: -1,
            duplicate_window: Duration::from_secs(3600),
            replicas,
            max_bytes: MaxBytes::Unlimited,
        },
        StreamSpec {
            name: MISSING_STREAM.into(),
            subjects: vec![ALL_MISSING.into()],
            max_msgs_per_subject: -1,
            duplicate_window: Duration::from_secs(3600),
            replicas,
            max_bytes: MaxBytes::Unlimited,
        },
        StreamSpec {
            name: DEADLETTER_STREAM.into(),
            subjects: vec![ALL_DEADLETTERS.into()],
            max_msgs_per_subject: -1,
            duplicate_window: Duration::from_secs(3600),
            replicas,
            max_bytes: MaxBytes::Unlimited,
        },
    ]
}

pub const BUCKETS: &[&str] = &[
    RELEASES_BUCKET,
    SERIES_BUCKET,
    SUBSCRIPTIONS_BUCKET,
    DELIVERIES_BUCKET,
    ANNOUNCED_BUCKET,
    ANALYZED_BUCKET,
    INCIDENTS_BUCKET,
    SILENCES_BUCKET,
    DIGESTS_BUCKET,
    DEADLETTER_DONE_BUCKET,
    SOURCES_BUCKET,
    LOCKS_BUCKET,
];

/// Creates every stream and bucket (idempotent); each role calls it at start.
pub async fn ensure_all(bus: &dyn crate::Transport, replicas: usize) -> crate::Result<()> {
    ensure_all_with(bus, replicas, StreamLimits::default()).await
}

/// [`ensure_all`] with the limits an operator set.
pub async fn ensure_all_with(
    bus: &dyn crate::Transport,
    replicas: usize,
    limits: StreamLimits,
) -> crate::Result<()> {
    for spec in streams_with(replicas, limits) {
        bus.ensure_stream(&spec).await?;
    }
    for bucket in BUCKETS {
        bus.ensure_bucket(bucket, replicas).await?;
    }
    bus.ensure_object_store(RAW_OBJECT_STORE, replicas).await?;
    Ok(())
}
