//! The embedded bus's bookkeeping stays bounded: a consumer keeps an ack floor and only the
//! acks above it, the duplicate window forgets ids older than the window, and the acks log
//! is rewritten before it grows without end. Restarts keep the same answers.

use std::path::Path;
use std::time::Duration;

use borderwatch_bus::{Delivery, MemoryBus, Outgoing, StreamSpec, Transport};
use futures::StreamExt;
use futures::stream::BoxStream;

const STREAM: &str = "T";

fn spec(window: Duration) -> StreamSpec {
    StreamSpec {
        name: STREAM.into(),
        subjects: vec!["t.>".into()],
        max_msgs_per_subject: -1,
        duplicate_window: window,
        replicas: 1,
        max_bytes: borderwatch_bus::MaxBytes::Unlimited,
    }
}

async fn open(dir: &Path, window: Duration) -> MemoryBus {
    let bus = MemoryBus::open(dir).await.unwrap();
    bus.ensure_stream(&spec(window)).await.unwrap();
    bus
}

async fn publish(bus: &MemoryBus, n: usize) {
    let msgs = (0..n)
        .map(|i| Outgoing::new(format!("t.{}", i % 7), format!("m{i}")))
        .collect();
    bus.publish_all(msgs).await.unwrap();
}

async fn consumer(bus: &MemoryBus) -> BoxStream<'static, borderwatch_bus::Result<Delivery>> {
    bus.consume(STREAM, "c", "t.>", Duration::from_secs(30))
        .await
        .unwrap()
}

/// The next delivery, or `None` if none comes within 200 ms.
async fn next(
    deliveries: &mut BoxStream<'static, borderwatch_bus::Result<Delivery>>,
) -> Option<Delivery> {
    tokio::time::timeout(Duration::from_millis(200), deliveries.next())
        .await
        .ok()
        .flatten()
        .map(|d| d.unwrap())
}

#[tokio::test]
async fn acks_in_order_leave_nothing_above_the_floor_and_a_short_log() {
    let tmp = tempfile::tempdir().unwrap();
    let bus = open(tmp.path(), Duration::from_secs(60)).await;
    publish(&bus, 20_000).await;
    let mut deliveries = consumer(&bus).await;
    for _ in 0..20_000 {
        next(&mut deliveries).await.unwrap().ack().await.unwrap();
    }
    assert!(next(&mut deliveries).await.is_none());
    let f = bus.footprint();
    assert_eq!(f.acks_above_floor, 0, "{f:?}");
    assert_eq!(f.pending, 0, "{f:?}");
    let log = tmp
        .path()
        .join("consumers")
        .join(format!("{STREAM}.c.acks"));
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(
        lines < 10_000,
        "the acks log kept {lines} lines for 20,000 acks"
    );
    drop(deliveries);
    drop(bus);
    // Reopened: nothing is delivered again, and a new message is.
    let bus = open(tmp.path(), Duration::from_secs(60)).await;
    let mut deliveries = consumer(&bus).await;
    assert!(next(&mut deliveries).await.is_none());
    publish(&bus, 1).await;
    let d = next(&mut deliveries).await.unwrap();
    assert_eq!(d.message.seq, 20_001);
}

#[tokio::test]
async fn an_unacked_delivery_holds_the_floor_and_is_redelivered_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let bus = open(tmp.path(), Duration::from_secs(60)).await;
    publish(&bus, 1_000).await;
    let mut deliveries = consumer(&bus).await;
    let mut held = None;
    for _ in 0..1_000 {
        let d = next(&mut deliveries).await.unwrap();
        if d.message.seq == 10 {
            held = Some(d);
        } else {
            d.ack().await.unwrap();
        }
    }
    assert_eq!(held.as_ref().unwrap().message.seq, 10);
    let f = bus.footprint();
    assert_eq!(f.pending, 1, "{f:?}");
    assert_eq!(
        f.acks_above_floor, 990,
        "acks above the unacked seq 10: {f:?}"
    );
    held.take().unwrap().ack().await.unwrap();
    assert_eq!(bus.footprint().acks_above_floor, 0);

    // Again with seq 1,010 left unacked across a restart: only it comes back.
    publish(&bus, 20).await;
    for _ in 0..20 {
        let d = next(&mut deliveries).await.unwrap();
        if d.message.seq != 1_010 {
            d.ack().await.unwrap();
        }
    }
    drop(deliveries);
    drop(bus);
    let bus = open(tmp.path(), Duration::from_secs(60)).await;
    let mut deliveries = consumer(&bus).await;
    let again = next(&mut deliveries).await.unwrap();
    assert_eq!(again.message.seq, 1_010);
    again.ack().await.unwrap();
    assert!(next(&mut deliveries).await.is_none());
}

#[tokio::test]
async fn the_duplicate_window_forgets_ids_older_than_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let window = Duration::from_millis(300);
    let bus = open(tmp.path(), window).await;
    for i in 0..1_000 {
        bus.publish(Outgoing::new("t.a", "x").with_id(format!("id{i}")))
            .await
            .unwrap();
    }
    assert_eq!(bus.footprint().remembered_ids, 1_000);
    // Within the window an id is still a duplicate.
    let dup = bus
        .publish(Outgoing::new("t.a", "x").with_id("id999"))
        .await
        .unwrap();
    assert!(dup.duplicate);
    tokio::time::sleep(window * 2).await;
    let fresh = bus
        .publish(Outgoing::new("t.a", "x").with_id("id0"))
        .await
        .unwrap();
    assert!(!fresh.duplicate, "an id past the window is new again");
    assert_eq!(bus.footprint().remembered_ids, 1);
    drop(bus);
    // A restart loads only the ids still inside the window.
    let bus = open(tmp.path(), window).await;
    assert!(bus.footprint().remembered_ids <= 1);
}

#[tokio::test]
async fn payloads_stay_in_the_log_and_are_read_back_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bus = open(tmp.path(), Duration::from_secs(60)).await;
    publish(&bus, 1_000).await;
    let f = bus.footprint();
    assert_eq!(f.messages, 1_000);
    if cfg!(unix) {
        assert_eq!(f.payload_bytes, 0, "{f:?}");
        assert!(f.payload_bytes_on_disk >= 1_000 * 2, "{f:?}");
    }
    let check = |bus: MemoryBus| async move {
        let last = bus.last_per_subject(STREAM, &["t.>"]).await.unwrap();
        assert_eq!(last.len(), 7);
        for m in &last {
            assert_eq!(m.payload, format!("m{}", m.seq - 1).into_bytes());
        }
        let mut replay = bus.replay(STREAM, "t.3", 1).await.unwrap();
        let first = replay.next().await.unwrap().unwrap();
        assert_eq!((first.seq, &first.payload[..]), (4, &b"m3"[..]));
    };
    check(bus.clone()).await;
    drop(bus);
    // Reopened: the offsets are rebuilt from the log.
    let bus = open(tmp.path(), Duration::from_secs(60)).await;
    assert_eq!(bus.footprint().messages, 1_000);
    check(bus).await;
}

/// A purge is written to the stream's log: a restart does not bring the purged messages
/// back, and what stays (other subjects, later messages) keeps its sequences.
#[tokio::test]
async fn purged_messages_stay_gone_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let seqs: Vec<u64> = {
        let bus = open(tmp.path(), Duration::from_secs(60)).await;
        publish(&bus, 21).await;
        // t.0 holds m0, m7, m14 (sequences 1, 8, 15).
        assert_eq!(bus.purge_subject_below(STREAM, "t.0", 15).await.unwrap(), 2);
        assert_eq!(bus.footprint().messages, 19);
        stored_seqs(&bus).await
    };
    let bus = open(tmp.path(), Duration::from_secs(60)).await;
    assert_eq!(bus.footprint().messages, 19);
    assert_eq!(stored_seqs(&bus).await, seqs);
    assert!(!seqs.contains(&1) && !seqs.contains(&8) && seqs.contains(&15));
    assert_eq!(bus.last_seq(STREAM).await.unwrap(), 21);
    let ack = bus.publish(Outgoing::new("t.0", "m21")).await.unwrap();
    assert_eq!(ack.seq, 22);
}

/// The sequences the stream holds, in order.
async fn stored_seqs(bus: &MemoryBus) -> Vec<u64> {
    let last = bus.last_seq(STREAM).await.unwrap();
    let mut out = Vec::new();
    let mut all = bus.replay(STREAM, "t.>", 1).await.unwrap();
    while let Some(msg) = all.next().await {
        let seq = msg.unwrap().seq;
        out.push(seq);
        if seq >= last {
            break;
        }
    }
    out
}
