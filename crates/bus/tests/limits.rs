//! Stream limits and reads by sequence, on both transports: `BW_OBS` refuses figures past its
//! byte limit with a clear error (nothing dropped, nothing stored), a role not told a limit
//! keeps the one another role set, and `message_at` reads one stored message back.

use std::sync::Arc;

use borderwatch_bus::names::{self, OBS_STREAM, SURGE_STREAM, StreamLimits};
use borderwatch_bus::{Bus, BusError, MemoryBus, NatsBus, Outgoing};
use borderwatch_test_support::NatsServer;
use futures::StreamExt;

macro_rules! both {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test]
            async fn memory() {
                let dir = tempfile::tempdir().expect("temp dir");
                let bus = borderwatch_bus::MemoryBus::open(dir.path())
                    .await
                    .expect("memory bus opens");
                super::$check(super::shared(bus)).await;
            }

            #[tokio::test]
            async fn nats() {
                let server = borderwatch_test_support::NatsServer::start();
                let bus = super::nats_bus(&server).await;
                super::$check(bus).await;
            }
        }
    )*};
}

both!(
    a_full_figure_store_refuses_new_figures_and_keeps_the_old,
    a_role_without_a_limit_keeps_the_limit_another_role_set,
    message_at_reads_one_stored_message,
);

fn shared(bus: MemoryBus) -> Bus {
    Arc::new(bus)
}

async fn nats_bus(server: &NatsServer) -> Bus {
    Arc::new(
        NatsBus::connect(&server.url(), "limits-test")
            .await
            .expect("connects to nats-server"),
    )
}

/// A figure of about 1 KiB on its own subject.
fn figure(i: usize) -> Outgoing {
    Outgoing::new(
        names::obs_subject("fsb", "PRK", "study", &format!("{}", 1000 + i)),
        vec![b'7'; 1000],
    )
    .with_id(format!("fig-{i}"))
}

/// Publishes figures one at a time until one is refused; returns how many were stored and
/// the error.
async fn fill(bus: &Bus) -> (usize, BusError) {
    for i in 0..1000 {
        if let Err(e) = bus.publish(figure(i)).await {
            return (i, e);
        }
    }
    panic!("1,000 figures of 1 KiB fit in a 64 KiB store");
}

async fn a_full_figure_store_refuses_new_figures_and_keeps_the_old(bus: Bus) {
    let limits = StreamLimits {
        obs_max_bytes: Some(64 * 1024),
    };
    names::ensure_all_with(bus.as_ref(), 1, limits)
        .await
        .expect("streams");
    let (stored, error) = fill(&bus).await;
    assert!((40..=64).contains(&stored), "{stored} figures of 1 KiB fit");
    let message = error.to_string();
    assert!(
        matches!(&error, BusError::StreamFull { stream, .. } if stream == OBS_STREAM),
        "{error:?}"
    );
    assert!(message.contains("the figure store is full"), "{message}");
    assert!(message.contains("65536 bytes (64 KiB)"), "{message}");
    assert!(message.contains("--obs-max-bytes"), "{message}");
    // Nothing was dropped to make room: every stored figure is still there, in order.
    assert_eq!(bus.last_seq(OBS_STREAM).await.unwrap(), stored as u64);
    let first = bus.message_at(OBS_STREAM, 1).await.unwrap().expect("kept");
    assert_eq!(first.subject, figure(0).subject);
    // Still full on a second try; raising the limit lets the same figure in.
    assert!(matches!(
        bus.publish(figure(stored)).await,
        Err(BusError::StreamFull { .. })
    ));
    let raised = StreamLimits {
        obs_max_bytes: Some(1 << 20),
    };
    names::ensure_all_with(bus.as_ref(), 1, raised)
        .await
        .expect("limit raised");
    let ack = bus.publish(figure(stored)).await.expect("fits now");
    assert_eq!(ack.seq, stored as u64 + 1);
    // Other streams have no byte limit.
    let surge = Outgoing::new(names::surge_subject("PRK", "study"), vec![b'x'; 200_000]);
    bus.publish(surge).await.expect("surges are not limited");
}

async fn a_role_without_a_limit_keeps_the_limit_another_role_set(bus: Bus) {
    let limits = StreamLimits {
        obs_max_bytes: Some(32 * 1024),
    };
    names::ensure_all_with(bus.as_ref(), 1, limits)
        .await
        .expect("streams");
    // Another role starts without the flag: the limit stays.
    names::ensure_all(bus.as_ref(), 1).await.expect("streams");
    let (stored, error) = fill(&bus).await;
    assert!(
        stored <= 32,
        "{stored} figures of 1 KiB stored past a 32 KiB limit"
    );
    assert!(
        error.to_string().contains("32768 bytes (32 KiB)"),
        "{error}"
    );
    // 0 means no limit.
    let none = StreamLimits {
        obs_max_bytes: Some(0),
    };
    names::ensure_all_with(bus.as_ref(), 1, none)
        .await
        .expect("streams");
    for i in stored..stored + 100 {
        bus.publish(figure(i)).await.expect("no limit");
    }
}

async fn message_at_reads_one_stored_message(bus: Bus) {
    names::ensure_all(bus.as_ref(), 1).await.expect("streams");
    for i in 0..5 {
        let msg = Outgoing::new(names::surge_subject("PRK", "study"), format!("surge {i}"));
        bus.publish(msg).await.unwrap();
    }
    let third = bus
        .message_at(SURGE_STREAM, 3)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(third.seq, 3);
    assert_eq!(&third.payload[..], b"surge 2");
    assert_eq!(third.subject, "bw.surge.PRK.study");
    assert!(bus.message_at(SURGE_STREAM, 6).await.unwrap().is_none());
    assert!(bus.message_at(SURGE_STREAM, 0).await.unwrap().is_none());
    assert!(matches!(
        bus.message_at("NO_SUCH_STREAM", 1).await,
        Err(BusError::NoStream(_))
    ));
    // The same messages a replay gives.
    let mut replay = bus
        .replay(SURGE_STREAM, names::ALL_SURGES, 1)
        .await
        .unwrap();
    for seq in 1..=5 {
        let m = replay.next().await.unwrap().unwrap();
        let direct = bus.message_at(SURGE_STREAM, seq).await.unwrap().unwrap();
        assert_eq!((m.seq, m.payload), (direct.seq, direct.payload));
    }
}
