//! Subscriptions: `POST /v1/subscriptions` (a webhook and its filter), `GET` (the list,
//! without secrets), `GET`, `PATCH` (a JSON merge patch) and `DELETE
//! /v1/subscriptions/{id}`, kept in the `bw_subscriptions` bucket that notify reads; and
//! `POST /v1/subscriptions/{id}/test`, a signed test event sent through notify's POST.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use std::time::Duration;

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use borderwatch_bus::names;
use borderwatch_model::{
    DigestSpec, EventKind, HistoryDelivery, Matchers, PayloadFormat, Subscription,
    SubscriptionFilter, Webhook, WebhookHost, default_kinds, now_rfc3339, refused_address,
    refused_name, webhook_host,
};
use serde::Deserialize;
use serde_json::json;
use tracing::info;
use utoipa::OpenApi;

use super::{KeyPageParams, key_page, merge_patch, notify_config, read_patch, schema};
use crate::error::ApiError;
use crate::page::{self, ApiQuery};
use crate::state::AppState;

/// The subscriptions' part of the OpenAPI document (their delivery log is in
/// [`super::deliveries`]).
#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        create_subscription,
        list_subscriptions,
        get_subscription,
        patch_subscription,
        delete_subscription,
        test_subscription
    ),
    components(schemas(
        doc::SubscriptionRequest,
        doc::SubscriptionFilter,
        doc::WebhookRequest,
        doc::Webhook,
        doc::PayloadFormat,
        doc::DigestSpec,
        doc::HistoryDelivery,
        doc::EventKind,
        doc::Subscription,
        doc::SubscriptionList,
        doc::SubscriptionPatch,
        doc::WebhookPatch,
        doc::TestResult,
        schema::Token,
    ))
)]
pub(crate) struct SubscriptionsApi;

/// `POST /v1/subscriptions`' body (schema: [`doc::SubscriptionRequest`]).
#[derive(Debug, Deserialize)]
struct SubscriptionRequest {
    #[serde(default)]
    filter: SubscriptionFilter,
    webhook: Webhook,
    #[serde(default)]
    format: PayloadFormat,
    #[serde(default)]
    digest: Option<DigestSpec>,
    #[serde(default)]
    history: HistoryDelivery,
    #[serde(default)]
    max_per_release: Option<u32>,
    #[serde(default)]
    resolved: bool,
    #[serde(default)]
    falls: bool,
    #[serde(default = "default_kinds")]
    kinds: Vec<EventKind>,
    /// Read as it came, so that a bad matcher is a 422 naming it (see [`parse_matchers`]).
    #[serde(default)]
    matchers: Option<serde_json::Value>,
}

/// The longest digest grouping wait: a day.
const MAX_GROUP_WAIT_SECS: u64 = 24 * 3600;

fn validate_webhook(w: &Webhook) -> Result<(), ApiError> {
    webhook_host(&w.url).map_err(ApiError::bad_request)?;
    if w.secret.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "webhook.secret is required: it keys the X-Borderwatch-Signature HMAC",
        ));
    }
    Ok(())
}

/// An email target (`"format": "email"`, `mailto:ADDRESS[,ADDRESS…]`): format and scheme
/// must agree (400 otherwise), and every address must be one notify would send to (422,
/// `email_address_invalid`: bare addresses, no header fields, no address literal or
/// `localhost`). No secret is needed: an email is not signed.
fn validate_email(req: &SubscriptionRequest) -> Result<(), ApiError> {
    let mailto = borderwatch_notify::email::is_email_target(&req.webhook.url);
    match (req.format == PayloadFormat::Email, mailto) {
        (true, true) => {}
        (true, false) => {
            return Err(ApiError::bad_request(
                "format email needs webhook.url mailto:ADDRESS[,ADDRESS…]",
            ));
        }
        (false, _) => {
            return Err(ApiError::bad_request(
                "webhook.url is a mailto: target: give \"format\": \"email\"",
            ));
        }
    }
    borderwatch_notify::email::recipients(&req.webhook.url).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_address_invalid",
            format!("webhook.url: {e}"),
        )
    })?;
    Ok(())
}

/// Whether `req` is an email subscription (by its format or its target).
fn is_email(req: &SubscriptionRequest) -> bool {
    req.format == PayloadFormat::Email
        || borderwatch_notify::email::is_email_target(&req.webhook.url)
}

/// How long resolving a webhook's host may take at subscription time.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Refuses (422) a webhook whose host is, or resolves to, a loopback, private, link-local or
/// other non-public address, unless the gateway allows private targets: a subscription must
/// not make notify call into the network it runs in. Notify checks again when it connects
/// (a name may resolve elsewhere later); this check tells the subscriber now.
async fn check_target(url: &str, allow_private: bool) -> Result<(), ApiError> {
    // An email target's addresses were checked by `validate_email`; the SMTP server is the
    // operator's.
    if allow_private || borderwatch_notify::email::is_email_target(url) {
        return Ok(());
    }
    let refused = |host: &str, why: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook_target_refused",
            format!(
                "webhook.url: {host} {why}: only public addresses are accepted (webhooks to \
                 private addresses need the gateway and notify started with \
                 --webhook-allow-private)"
            ),
        )
    };
    let (name, port) = match webhook_host(url).map_err(ApiError::bad_request)? {
        WebhookHost::Ip(ip) => {
            return match refused_address(ip) {
                Some(why) => Err(refused(&ip.to_string(), format!("is {why}"))),
                None => Ok(()),
            };
        }
        WebhookHost::Domain { name, port } => (name, port),
    };
    if let Some(why) = refused_name(&name) {
        return Err(refused(&name, format!("is {why}")));
    }
    let resolved: Vec<std::net::SocketAddr> = match tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((name.as_str(), port)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            return Err(refused(&name, format!("does not resolve ({e})")));
        }
        Err(_) => return Err(refused(&name, "did not resolve in time".into())),
    };
    // Every address must be public: a name that also resolves to a private one could be
    // turned there (DNS rebinding).
    if let Some((ip, why)) = resolved
        .iter()
        .find_map(|a| refused_address(a.ip()).map(|why| (a.ip(), why)))
    {
        return Err(refused(&name, format!("resolves to {ip}, {why}")));
    }
    if resolved.is_empty() {
        return Err(refused(&name, "resolves to no address".into()));
    }
    Ok(())
}

fn validate_filter(f: &SubscriptionFilter) -> Result<(), ApiError> {
    let named = [
        ("filter.categories", &f.categories),
        ("filter.sources", &f.sources),
        ("filter.detectors", &f.detectors),
    ];
    for (field, list) in named {
        if let Some(bad) = list.iter().find(|t| !borderwatch_model::is_token(t)) {
            return Err(ApiError::bad_request(format!(
                "{field}: `{bad}` is not a name (lowercase letters, digits, - and _)"
            )));
        }
    }
    Ok(())
}

/// Create a webhook subscription. The secret keys the signature of every POST and is never
/// returned.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    request_body(content = doc::SubscriptionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "the stored subscription, without its secret and with its URL masked", body = doc::Subscription),
        (status = 400, description = "the body is wrong: the message names the field", body = schema::ErrorBody),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
        (status = 422, description = "a matcher is wrong (`invalid_matcher`, naming it: `matchers[1]: …`), or the webhook's host is, or resolves to, a loopback, private, link-local or other non-public address (allowed only with --webhook-allow-private)", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn create_subscription(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    let req: SubscriptionRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid subscription: {e}")))?;
    let matchers = validate(&req)?;
    check_target(&req.webhook.url, state.cfg.webhook_allow_private).await?;
    let sub = req.into_subscription(
        format!("sub-{}", uuid::Uuid::new_v4().simple()),
        now_rfc3339(),
        matchers,
    );
    store(&state, &sub).await?;
    info!(subscription = %sub.id, "subscription created");
    Ok((StatusCode::CREATED, Json(sub.redacted())))
}

/// Everything but the webhook's target that a subscription must satisfy, on create and on
/// edit alike.
fn validate(req: &SubscriptionRequest) -> Result<Matchers, ApiError> {
    if is_email(req) {
        validate_email(req)?;
    } else {
        validate_webhook(&req.webhook)?;
    }
    validate_filter(&req.filter)?;
    if req.kinds.is_empty() {
        return Err(ApiError::bad_request(
            "kinds is empty: list at least one of surge, revision, missing (or leave it out for surges)",
        ));
    }
    let matchers = parse_matchers(req.matchers.as_ref())?;
    if let Some(d) = &req.digest
        && d.group_wait_secs > MAX_GROUP_WAIT_SECS
    {
        return Err(ApiError::bad_request(format!(
            "digest.group_wait_secs is {}: at most {MAX_GROUP_WAIT_SECS} (a day)",
            d.group_wait_secs
        )));
    }
    if req.max_per_release == Some(0) {
        return Err(ApiError::bad_request(
            "max_per_release is 0: at least 1, or leave it out for every surge",
        ));
    }
    Ok(matchers)
}

/// The subscription's matchers, checked as a silence's are (names, values, anchored and
/// size-limited regexes, at most 32): a bad one is refused 422 `invalid_matcher`, naming it
/// (`matchers[1]: …`).
fn parse_matchers(v: Option<&serde_json::Value>) -> Result<Matchers, ApiError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(Matchers::default()),
        Some(v) => Matchers::from_json(v)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_matcher", e)),
    }
}

impl SubscriptionRequest {
    fn into_subscription(self, id: String, created_at: String, matchers: Matchers) -> Subscription {
        let mut kinds = self.kinds;
        kinds.sort();
        kinds.dedup();
        Subscription {
            id,
            filter: self.filter,
            webhook: self.webhook,
            created_at,
            format: self.format,
            digest: self.digest,
            history: self.history,
            max_per_release: self.max_per_release,
            resolved: self.resolved,
            falls: self.falls,
            kinds,
            matchers,
        }
    }
}

async fn store(state: &AppState, sub: &Subscription) -> Result<(), ApiError> {
    state
        .bus
        .kv_put(
            names::SUBSCRIPTIONS_BUCKET,
            &sub.id,
            serde_json::to_vec(sub).unwrap_or_default().into(),
        )
        .await?;
    Ok(())
}

/// The stored subscription `id`, secret included (for the gateway's own use only).
pub(crate) async fn load(state: &AppState, id: &str) -> Result<Subscription, ApiError> {
    let missing = || ApiError::not_found(format!("no subscription {id}"));
    if !borderwatch_bus::valid_key(id) {
        return Err(missing());
    }
    let raw = state
        .bus
        .kv_get(names::SUBSCRIPTIONS_BUCKET, id)
        .await?
        .ok_or_else(missing)?;
    serde_json::from_slice(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("subscription {id} is stored in a form this gateway cannot read: {e}"),
        )
    })
}

/// One subscription, without its secret and with its URL masked. With an API token,
/// reading it needs it (the read token is not enough).
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "the subscription id (`sub-…`)")),
    responses(
        (status = 200, description = "the subscription, without its secret and with its URL masked", body = doc::Subscription),
        (status = 401, description = "the gateway has an API token and it is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such subscription", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn get_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(load(&state, &id).await?.redacted()))
}

/// Edit a subscription with a JSON merge patch (RFC 7396: the members given replace the
/// stored ones, `null` removes one): it keeps its id, and the result is checked as a new
/// subscription is, the webhook's target included when its URL changes. The secret stays
/// unless the patch gives `webhook.secret`; a URL sent back as reads show it (masked) keeps
/// the stored one.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "the subscription id (`sub-…`)")),
    request_body(content = doc::SubscriptionPatch, description = "a JSON merge patch (RFC 7396) of the subscription; `application/json` is taken too", content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "the edited subscription, without its secret and with its URL masked", body = doc::Subscription),
        (status = 400, description = "the patch, or the subscription it makes, is wrong: the message names the field", body = schema::ErrorBody),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such subscription", body = schema::ErrorBody),
        (status = 422, description = "a matcher is wrong (`invalid_matcher`, naming it), or the new webhook's host is, or resolves to, a non-public address (allowed only with --webhook-allow-private)", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn patch_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Subscription>, ApiError> {
    let stored = load(&state, &id).await?;
    let mut current = serde_json::to_value(&stored).unwrap_or_default();
    let mut patch = read_patch(&body, "subscription", &current, &["id", "created_at"])?;
    keep_masked_url(&mut patch, &stored.webhook.url);
    if let Some(o) = current.as_object_mut() {
        o.remove("id");
        o.remove("created_at");
    }
    merge_patch(&mut current, &serde_json::Value::Object(patch));
    let req: SubscriptionRequest = serde_json::from_value(current)
        .map_err(|e| ApiError::bad_request(format!("invalid subscription: {e}")))?;
    let matchers = validate(&req)?;
    if req.webhook.url != stored.webhook.url {
        check_target(&req.webhook.url, state.cfg.webhook_allow_private).await?;
    }
    let sub = req.into_subscription(stored.id, stored.created_at, matchers);
    store(&state, &sub).await?;
    info!(subscription = %sub.id, "subscription edited");
    Ok(Json(sub.redacted()))
}

/// A patch that sends back the masked URL a read showed (`https://host/…`) means "no
/// change", not "post to that literal URL": drop it from the patch.
fn keep_masked_url(patch: &mut serde_json::Map<String, serde_json::Value>, stored_url: &str) {
    let masked = borderwatch_model::mask_webhook_url(stored_url);
    if masked == stored_url {
        return;
    }
    if let Some(serde_json::Value::Object(w)) = patch.get_mut("webhook")
        && w.get("url").and_then(|u| u.as_str()) == Some(masked.as_str())
    {
        w.remove("url");
    }
}

/// Send the subscription a signed test event now: a surge-shaped example in its format with
/// `"test": true`, POSTed once as every delivery is (the same signature headers) and logged
/// in its delivery log. Not retried: the answer says what the receiver did.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/test", tag = "subscriptions",
    params(("id" = String, Path, description = "the subscription id (`sub-…`)")),
    responses(
        (status = 202, description = "the test event was sent once: its event id and what the receiver answered (`outcome` delivered on a 2xx, failed otherwise)", body = doc::TestResult),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such subscription", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn test_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let sub = load(&state, &id).await?;
    let sent =
        borderwatch_notify::send_test(state.bus.clone(), notify_config(&state.cfg), &sub).await?;
    info!(subscription = %sub.id, event = %sent.event_id, outcome = ?sent.outcome, "test event sent");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "subscription": sub.id,
            "event_id": sent.event_id,
            "outcome": sent.outcome,
            "status": sent.status,
            "error": sent.error,
            "latency_ms": sent.latency_ms,
        })),
    ))
}

/// Subscriptions in id order, without their secrets and with their URLs masked to scheme,
/// host and port. With an API token, reading them needs it (the read token is not enough).
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", params(KeyPageParams),
    responses(
        (status = 200, description = "a page of subscriptions", body = doc::SubscriptionList),
        (status = 400, description = "a parameter is wrong", body = schema::ErrorBody),
        (status = 401, description = "the gateway has an API token and it is missing or wrong", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn list_subscriptions(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(params): ApiQuery<KeyPageParams>,
) -> Result<Response, ApiError> {
    let (raw, next_cursor) = key_page(&state.bus, names::SUBSCRIPTIONS_BUCKET, &params).await?;
    let subs: Vec<Subscription> = raw
        .iter()
        .filter_map(|(_, r)| serde_json::from_slice::<Subscription>(r).ok())
        .map(|s| s.redacted())
        .collect();
    let next = next_cursor.as_deref().map(|c| page::next_link(&uri, c));
    let resp = Json(json!({ "subscriptions": subs, "next_cursor": next_cursor, "next": next }))
        .into_response();
    Ok(page::with_next(resp, next.as_deref()))
}

/// Delete a subscription: nothing more is sent to its webhook.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "the subscription id (`sub-…`)")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "the API token is missing or wrong", body = schema::ErrorBody),
        (status = 404, description = "no such subscription", body = schema::ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub(crate) async fn delete_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !borderwatch_bus::valid_key(&id)
        || state
            .bus
            .kv_get(names::SUBSCRIPTIONS_BUCKET, &id)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found(format!("no subscription {id}")));
    }
    state
        .bus
        .kv_delete(names::SUBSCRIPTIONS_BUCKET, &id)
        .await?;
    info!(subscription = %id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// This resource's bodies as schema-only mirrors of `borderwatch-model`'s JSON, for the
/// document only.
mod doc {
    use utoipa::ToSchema;

    use crate::api::schema::{Severity, Token};

    /// Which surges a subscription wants; an empty or missing list matches everything.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SubscriptionFilter {
        /// Countries: ISO alpha-2, alpha-3 or names.
        #[schema(required = false)]
        countries: Vec<String>,
        #[schema(required = false)]
        categories: Vec<Token>,
        #[schema(required = false)]
        sources: Vec<Token>,
        #[schema(required = false)]
        min_severity: Severity,
        /// Matches when any finding came from a listed detector.
        #[schema(required = false)]
        detectors: Vec<Token>,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct WebhookRequest {
        /// An http:// or https:// URL whose host is a public address (or resolves only to
        /// public ones) unless the gateway runs with --webhook-allow-private; with format
        /// `email`, `mailto:ADDRESS[,ADDRESS…]` (at most 10 bare addresses).
        #[schema(pattern = "^(https?://[^/?#]+|mailto:[^?%<>\\s]+$)")]
        url: String,
        /// Keys the `X-Borderwatch-Signature` HMAC; never returned. Required for webhooks;
        /// an email needs none.
        #[schema(required = false, min_length = 1, pattern = "\\S")]
        secret: String,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Webhook {
        /// Scheme, host and port only (`https://hooks.slack.com/…`): userinfo, path and query
        /// are masked, since they are often the secret.
        url: String,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub(crate) enum PayloadFormat {
        Json,
        Slack,
        Teams,
        Alertmanager,
        /// An email (text and HTML) through the operator's SMTP server to the `mailto:`
        /// addresses of `webhook.url`.
        Email,
    }

    /// One message per release instead of one per surge.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct DigestSpec {
        /// At most 86400 (a day).
        #[schema(maximum = 86400)]
        group_wait_secs: u64,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SubscriptionRequest {
        #[schema(required = false)]
        filter: SubscriptionFilter,
        webhook: WebhookRequest,
        #[schema(required = false)]
        format: PayloadFormat,
        #[schema(required = false)]
        digest: Option<DigestSpec>,
        /// `summary` (default): one message per release for its historical surges; `each`:
        /// every historical surge on its own.
        #[schema(required = false)]
        history: HistoryDelivery,
        /// At most this many live surges of one release, the highest scores first, in one
        /// message (at least 1); absent: every surge on its own.
        #[schema(required = false, minimum = 1)]
        max_per_release: Option<u32>,
        /// Also the closing notice of an incident it was told of, when its series comes back
        /// inside its band (default false).
        #[schema(required = false)]
        resolved: bool,
        /// Also falls: significant drops of a series (`direction: fall`), detected and scored
        /// like surges (default false).
        #[schema(required = false)]
        falls: bool,
        /// The kinds of event it is sent: `surge` (default `["surge"]`), `revision` (a
        /// figure of a known period that a release changed: `"kind": "revision"` with
        /// `old_count`, `new_count`, `release_id`), `missing` (a category a source left out:
        /// `"kind": "missing"` with its countries). Filter lists and matchers apply to all;
        /// `min_severity` and `detectors` to surges only.
        #[schema(required = false, min_items = 1)]
        kinds: Vec<EventKind>,
        /// Alertmanager matchers in their text form (`country=~"PRK|CHN"`,
        /// `category!=tourism`) on `source`, `country`, `category`, `severity`, `direction`,
        /// `detector`: every one must match, besides the filter. Regexes are anchored, at most
        /// 1024 bytes and of bounded compiled size; at most 32 matchers.
        #[schema(required = false, max_items = 32)]
        matchers: Vec<String>,
    }

    /// A kind of event a subscription is sent.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub(crate) enum EventKind {
        Surge,
        Revision,
        Missing,
    }

    /// How historical surges (not at their series' live edge) reach a subscription.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub(crate) enum HistoryDelivery {
        Summary,
        Each,
    }

    /// A stored subscription, without its secret and with its URL masked.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct Subscription {
        id: String,
        filter: SubscriptionFilter,
        webhook: Webhook,
        created_at: String,
        format: PayloadFormat,
        #[schema(required = false)]
        digest: Option<DigestSpec>,
        history: HistoryDelivery,
        #[schema(required = false)]
        max_per_release: Option<u32>,
        resolved: bool,
        falls: bool,
        kinds: Vec<EventKind>,
        /// Absent when there are none.
        #[schema(required = false)]
        matchers: Vec<String>,
    }

    /// A JSON merge patch (RFC 7396) of a subscription: the members to change, `null` to
    /// remove one (`digest`, `max_per_release`). `id` and `created_at` cannot change.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SubscriptionPatch {
        #[schema(required = false)]
        filter: SubscriptionFilter,
        #[schema(required = false)]
        webhook: WebhookPatch,
        #[schema(required = false)]
        format: PayloadFormat,
        #[schema(required = false)]
        digest: Option<DigestSpec>,
        #[schema(required = false)]
        history: HistoryDelivery,
        #[schema(required = false, minimum = 1)]
        max_per_release: Option<u32>,
        #[schema(required = false)]
        resolved: bool,
        #[schema(required = false)]
        falls: bool,
        #[schema(required = false, min_items = 1)]
        kinds: Vec<EventKind>,
        /// Replaces the list; `null` removes every matcher.
        #[schema(required = false, max_items = 32)]
        matchers: Option<Vec<String>>,
    }

    /// The webhook members to change: a new URL (checked as on create; the masked URL a
    /// read shows keeps the stored one) and/or a new secret.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct WebhookPatch {
        #[schema(required = false, pattern = "^(https?://[^/?#]+|mailto:[^?%<>\\s]+$)")]
        url: String,
        #[schema(required = false, min_length = 1, pattern = "\\S")]
        secret: String,
    }

    /// What the one POST of a test event did.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct TestResult {
        subscription: String,
        /// `test-…`: the `X-Borderwatch-Event-Id` the receiver saw, and the attempt's line in
        /// the delivery log.
        event_id: String,
        /// `delivered` (2xx) or `failed`.
        outcome: crate::api::deliveries::doc::Outcome,
        status: Option<u16>,
        /// Why it failed, briefly (never the receiver's answer).
        error: Option<String>,
        latency_ms: u64,
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub(crate) struct SubscriptionList {
        subscriptions: Vec<Subscription>,
        next_cursor: Option<String>,
        next: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_need_a_scheme_and_host() {
        let ok = Webhook {
            url: "https://example.org/hook".into(),
            secret: Some("s".into()),
        };
        assert!(validate_webhook(&ok).is_ok());
        for bad in [
            "ftp://example.org/x",
            "example.org",
            "http://",
            "/just/a/path",
        ] {
            let w = Webhook {
                url: bad.into(),
                secret: Some("s".into()),
            };
            assert!(validate_webhook(&w).is_err(), "{bad}");
        }
        assert!(
            validate_filter(&SubscriptionFilter {
                detectors: vec!["record_high".into()],
                ..Default::default()
            })
            .is_ok()
        );
        assert!(
            validate_filter(&SubscriptionFilter {
                detectors: vec!["Record High".into()],
                ..Default::default()
            })
            .is_err()
        );
        let no_secret = Webhook {
            url: "https://example.org".into(),
            secret: None,
        };
        assert!(validate_webhook(&no_secret).is_err());
    }
}
