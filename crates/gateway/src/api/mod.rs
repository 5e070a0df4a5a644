//! The JSON API, one module per resource: its handlers, their request and response types,
//! and its part of the OpenAPI document (a `#[derive(OpenApi)]` each, merged in
//! `openapi.rs`). What several resources share (country parsing, key-ordered pages of a
//! bucket) is here; the shared body schemas are in [`schema`].

pub(crate) mod chart;
pub(crate) mod deliveries;
pub(crate) mod health;
pub(crate) mod incidents;
pub(crate) mod ingest;
pub(crate) mod releases;
pub(crate) mod schema;
pub(crate) mod series;
pub(crate) mod silences;
pub(crate) mod subscriptions;
pub(crate) mod surges;

use axum::body::Bytes;
use borderwatch_bus::Bus;
use borderwatch_model::Country;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::page;

pub(crate) fn parse_country(value: &str) -> Result<Country, ApiError> {
    Country::parse(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The filters of a list of series-keyed records (`bw_series`, `bw_incidents`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeriesFilter<'a> {
    pub(crate) source: Option<&'a str>,
    pub(crate) category: Option<&'a str>,
    pub(crate) country: Option<Country>,
}

impl SeriesFilter<'_> {
    /// Whether a series key (`<source>.<country>.<category>`) passes.
    pub(crate) fn matches(&self, key: &str) -> bool {
        let mut parts = key.splitn(3, '.');
        let (Some(source), Some(code), Some(category)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        self.source.is_none_or(|s| s == source)
            && self.category.is_none_or(|c| c == category)
            && self.country.is_none_or(|c| c.code() == code)
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyPageParams {
    /// Page size, 1 to 1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One page of a bucket's values in key order, and the cursor of the next page.
pub(crate) async fn key_page(
    bus: &Bus,
    bucket: &str,
    params: &KeyPageParams,
) -> Result<(Vec<(String, Bytes)>, Option<String>), ApiError> {
    let limit = page::limit(params.limit, 1000, 1000)?;
    let cursor = page::key_cursor(params.cursor.as_deref())?;
    let mut keys = bus.kv_keys(bucket).await?;
    keys.sort();
    let mut out = Vec::new();
    let mut next = None;
    for key in keys {
        if cursor.is_some_and(|c| key.as_str() <= c) {
            continue;
        }
        let Some(raw) = bus.kv_get(bucket, &key).await? else {
            continue;
        };
        if out.len() == limit {
            next = out.last().map(|(k, _): &(String, Bytes)| k.clone());
            break;
        }
        out.push((key, raw));
    }
    Ok((out, next))
}

/// Applies a JSON merge patch (RFC 7396) to `target`: members of `patch` replace those of
/// `target`, objects merge member by member, and `null` removes a member.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in members {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// A `PATCH` body: a JSON object (a merge patch of a whole resource; anything else would
/// replace it). `fixed` are the members an edit keeps (the id, the creation time): the patch
/// may repeat them unchanged, not change them. Returns the patch without them.
pub(crate) fn read_patch(
    body: &[u8],
    what: &str,
    stored: &Value,
    fixed: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid {what} patch: {e}")))?;
    let Value::Object(mut patch) = patch else {
        return Err(ApiError::bad_request(format!(
            "a {what} patch is a JSON object of the members to change (a JSON merge patch, RFC 7396)"
        )));
    };
    for key in fixed {
        if let Some(v) = patch.remove(*key)
            && stored.get(*key) != Some(&v)
        {
            return Err(ApiError::bad_request(format!(
                "`{key}` cannot change: an edit keeps the {what}'s {key}"
            )));
        }
    }
    Ok(patch)
}

/// The notify settings with which the gateway itself POSTs (a subscription's test event, a
/// dead letter's redelivery): its own target rule and public URL, notify's defaults else.
pub(crate) fn notify_config(
    cfg: &crate::config::GatewayConfig,
) -> borderwatch_notify::NotifyConfig {
    borderwatch_notify::NotifyConfig {
        allow_private_targets: cfg.webhook_allow_private,
        public_url: cfg.public_url.clone(),
        smtp: cfg.smtp.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396, appendix A (a few).
        for (target, patch, want) in [
            (
                serde_json::json!({"a": "b"}),
                serde_json::json!({"a": "c"}),
                serde_json::json!({"a": "c"}),
            ),
            (
                serde_json::json!({"a": "b"}),
                serde_json::json!({"a": null}),
                serde_json::json!({}),
            ),
            (
                serde_json::json!({"a": {"b": "c"}}),
                serde_json::json!({"a": {"b": "d", "c": null}}),
                serde_json::json!({"a": {"b": "d"}}),
            ),
            (
                serde_json::json!({"a": [{"b": "c"}]}),
                serde_json::json!({"a": [1]}),
                serde_json::json!({"a": [1]}),
            ),
            (
                serde_json::json!({"e": null}),
                serde_json::json!({"a": 1}),
                serde_json::json!({"e": null, "a": 1}),
            ),
            (
                serde_json::json!({}),
                serde_json::json!({"a": {"bb": {"ccc": null}}}),
                serde_json::json!({"a": {"bb": {}}}),
            ),
        ] {
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, want, "{target} + {patch}");
        }
        let stored = serde_json::json!({"id": "sub-1", "x": 1});
        assert!(read_patch(br#"{"id": "sub-1", "x": 2}"#, "s", &stored, &["id"]).is_ok());
        assert!(read_patch(br#"{"id": "sub-2"}"#, "s", &stored, &["id"]).is_err());
        assert!(read_patch(b"[1]", "s", &stored, &["id"]).is_err());
    }

    #[test]
    fn series_filter_matches_each_part_of_the_key() {
        let prk = Country::parse("PRK").unwrap();
        let all = SeriesFilter::default();
        assert!(all.matches("fsb.PRK.study"));
        assert!(!all.matches("not-a-series-key"));
        let f = SeriesFilter {
            source: Some("fsb"),
            category: Some("study"),
            country: Some(prk),
        };
        assert!(f.matches("fsb.PRK.study"));
        assert!(!f.matches("fsb.PRK.work"));
        assert!(!f.matches("cbp.PRK.study"));
        assert!(!f.matches("fsb.CHN.study"));
    }
}
