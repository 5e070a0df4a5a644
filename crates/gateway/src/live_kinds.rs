//! Revisions and missing categories on the live stream (`GET /v1/surges/stream`), as SSE
//! events of their own type (`event: revision`, `event: missing`), so a client listening
//! for `surge` events sees nothing new. Each stream reads `BW_REVISIONS` and `BW_MISSING`
//! from their ends on: these events are live only and carry no `id:`, so the client's
//! `Last-Event-ID` stays the last surge's sequence and a reconnect resumes surges as before
//! (revisions published meanwhile are in `GET /v1/releases/{id}`). A leaf: reads the bus.

use axum::response::sse::Event;
use borderwatch_bus::{Bus, BusError, names};
use borderwatch_model::{
    Country, EventKind, MissingCategory, MissingEvent, Revision, RevisionEvent,
};
use futures::StreamExt;
use futures::stream::{self, BoxStream};

/// Which series a client asked for: source, country, category.
pub(crate) type SeriesFilter = dyn Fn(&str, Country, &str) -> bool + Send + Sync;

/// The live events of `kinds` (surges excluded: the caller serves them) whose series `keep`
/// selects; a missing category lists only the countries it selects.
pub(crate) async fn live(
    bus: &Bus,
    kinds: &[EventKind],
    keep: std::sync::Arc<SeriesFilter>,
) -> Result<BoxStream<'static, Event>, BusError> {
    let mut streams: Vec<BoxStream<'static, Event>> = Vec::new();
    if kinds.contains(&EventKind::Revision) {
        let from = bus.last_seq(names::REVISION_STREAM).await? + 1;
        let keep = keep.clone();
        let s = bus
            .replay(names::REVISION_STREAM, names::ALL_REVISIONS, from)
            .await?
            .filter_map(move |m| {
                let event = m
                    .ok()
                    .and_then(|m| serde_json::from_slice::<Revision>(&m.payload).ok())
                    .filter(|r| keep(&r.source, r.country, &r.category))
                    .and_then(|r| sse("revision", &RevisionEvent::new(r)));
                std::future::ready(event)
            });
        streams.push(s.boxed());
    }
    if kinds.contains(&EventKind::Missing) {
        let from = bus.last_seq(names::MISSING_STREAM).await? + 1;
        let s = bus
            .replay(names::MISSING_STREAM, names::ALL_MISSING, from)
            .await?
            .filter_map(move |m| {
                let event = m
                    .ok()
                    .and_then(|m| serde_json::from_slice::<MissingCategory>(&m.payload).ok())
                    .and_then(|c| {
                        MissingEvent::new(c).narrowed(|one| {
                            let m = &one.missing;
                            m.countries.iter().all(|c| keep(&m.source, *c, &m.category))
                        })
                    })
                    .and_then(|e| sse("missing", &e));
                std::future::ready(event)
            });
        streams.push(s.boxed());
    }
    Ok(stream::select_all(streams).boxed())
}

/// An SSE event of type `kind`, without an id (see the module's doc).
fn sse<T: serde::Serialize>(kind: &str, data: &T) -> Option<Event> {
    Event::default().event(kind).json_data(data).ok()
}

/// Reads `kinds=surge,revision` (a comma-separated list; absent: every kind).
pub(crate) fn parse_kinds(v: Option<&str>) -> Result<Vec<EventKind>, String> {
    let Some(v) = v else {
        return Ok(vec![
            EventKind::Surge,
            EventKind::Revision,
            EventKind::Missing,
        ]);
    };
    let kinds = v
        .split(',')
        .map(|k| {
            serde_json::from_value::<EventKind>(serde_json::Value::String(k.trim().into()))
                .map_err(|_| format!("`kinds={v}`: `{k}` is not surge, revision or missing"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if kinds.is_empty() {
        return Err("kinds is empty".into());
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_default_to_all_and_refuse_unknown_ones() {
        assert_eq!(parse_kinds(None).unwrap().len(), 3);
        assert_eq!(
            parse_kinds(Some("surge, revision")).unwrap(),
            [EventKind::Surge, EventKind::Revision]
        );
        assert!(
            parse_kinds(Some("surge,fall"))
                .unwrap_err()
                .contains("fall")
        );
        assert!(parse_kinds(Some("")).is_err());
    }
}
