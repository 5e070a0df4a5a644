//! The raw JetStream baseline of the ingest benches: the messages ingest would publish for a
//! file, sent with async-nats alone. `tests/benches/scale.rs` includes this file too.

use async_nats::jetstream;
use borderwatch_model::Observation;

/// The messages borderwatch publishes for a file, for the raw publisher to send as is: per
/// series, its figures in messages of the series layout (`borderwatch_bus::obs`), under
/// `raw.` instead of `bw.obs.`.
pub(crate) fn raw_messages(csv: &str) -> Vec<(String, String, Vec<u8>)> {
    let parsed =
        borderwatch_ingest::parse("generic", csv.as_bytes(), None).expect("bench csv parses");
    let mut by_series: std::collections::BTreeMap<(String, String, String), Vec<(String, u64)>> =
        std::collections::BTreeMap::new();
    for o in &parsed.observations {
        let o: &Observation = o;
        by_series
            .entry((
                o.source.clone(),
                o.country.code().to_string(),
                o.category.clone(),
            ))
            .or_default()
            .push((o.period.to_string(), o.count));
    }
    by_series
        .into_iter()
        .flat_map(|((source, country, category), figures)| {
            let series = borderwatch_bus::obs::Series::new(&source, &country, &category);
            borderwatch_bus::obs::series_messages(&series, "rel-0123456789abcdef", &figures, true)
        })
        .map(|m| {
            let subject = m.subject.replacen("bw.obs.", "raw.", 1);
            (subject, m.msg_id.unwrap_or_default(), m.payload.to_vec())
        })
        .collect()
}

pub(crate) async fn raw_publish(js: &jetstream::Context, msgs: &[(String, String, Vec<u8>)]) {
    for chunk in msgs.chunks(512) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (subject, id, payload) in chunk {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            acks.push(
                js.publish_with_headers(subject.clone(), headers, payload.clone().into())
                    .await
                    .expect("raw publish sent"),
            );
        }
        for ack in acks {
            ack.await.expect("raw publish acknowledged");
        }
    }
}
