//! Subscriptions and silences as people manage them, against a real gateway on a random
//! port over the embedded bus: read and edit one (a JSON merge patch keeps the id and is
//! checked as a new one is), Alertmanager's matchers, a signed test event reaching a
//! receiver on loopback, dead letters listed and redelivered, and the releases ingest
//! recorded. Every webhook here is a receiver on 127.0.0.1.

mod support;
use support::{Gateway, start};

use std::time::Duration;

use borderwatch_bus::{Outgoing, names};
use borderwatch_gateway::GatewayConfig;
use borderwatch_model::{SurgeEvent, verify_signature, verify_standard};
use borderwatch_notify::DeadLetter;
use borderwatch_notify::notice::Notice;
use borderwatch_test_support::ScriptedReceiver;
use serde_json::{Value, json};

/// Private targets allowed: the receivers are on loopback.
fn local() -> GatewayConfig {
    GatewayConfig {
        rate_limit: None,
        webhook_allow_private: true,
        ..GatewayConfig::default()
    }
}

impl Gateway {
    async fn send(&self, method: &str, path: &str, body: Option<(&str, Value)>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some((content_type, body)) = body {
            r = r
                .header("content-type", content_type)
                .body(body.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(("application/json", body)))
            .await
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("PATCH", path, Some(("application/merge-patch+json", body)))
            .await
    }

    /// The stored form, secret and whole URL included, as notify reads it.
    async fn stored(&self, bucket: &str, id: &str) -> Value {
        serde_json::from_slice(&self.bus.kv_get(bucket, id).await.unwrap().unwrap()).unwrap()
    }
}

#[tokio::test]
async fn a_subscription_is_read_and_edited_by_merge_patch_and_keeps_its_id() {
    let gw = start(local()).await;
    let (status, created) = gw
        .post(
            "/v1/subscriptions",
            json!({"filter": {"countries": ["PRK"]}, "webhook": {"url": "http://127.0.0.1:9/hook/secret-path?k=v", "secret": "s1"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/subscriptions/{id}");
    let (status, one) = gw.get(&path).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one, created, "GET shows what POST answered");
    assert_eq!(one["webhook"], json!({"url": "http://127.0.0.1:9/…"}));

    // A merge patch: members given replace, null removes, the rest stays.
    let (status, edited) = gw
        .patch(
            &path,
            json!({"filter": {"categories": ["study"], "countries": null}, "max_per_release": 3, "falls": true}),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["id"], id);
    assert_eq!(edited["created_at"], created["created_at"]);
    assert_eq!(edited["filter"]["categories"], json!(["study"]));
    assert_eq!(edited["filter"]["countries"], json!([]));
    assert_eq!(
        (edited["max_per_release"].clone(), edited["falls"].clone()),
        (json!(3), json!(true))
    );
    assert!(edited["webhook"].get("secret").is_none(), "{edited}");
    let stored = gw.stored(names::SUBSCRIPTIONS_BUCKET, &id).await;
    assert_eq!(
        stored["webhook"],
        json!({"url": "http://127.0.0.1:9/hook/secret-path?k=v", "secret": "s1"}),
        "the URL and secret stay when the patch does not name them"
    );

    // Sending back what a read showed (the masked URL) changes nothing; application/json
    // is taken as well as application/merge-patch+json.
    let (status, again) = gw
        .send(
            "PATCH",
            &path,
            Some((
                "application/json",
                json!({"webhook": one["webhook"], "max_per_release": null}),
            )),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert!(again.get("max_per_release").is_none(), "{again}");
    let stored = gw.stored(names::SUBSCRIPTIONS_BUCKET, &id).await;
    assert_eq!(
        stored["webhook"]["url"],
        "http://127.0.0.1:9/hook/secret-path?k=v"
    );

    // A new URL and secret replace the old.
    let (status, _) = gw
        .patch(
            &path,
            json!({"webhook": {"url": "http://127.0.0.1:10/other", "secret": "s2"}}),
        )
        .await;
    assert_eq!(status, 200);
    let stored = gw.stored(names::SUBSCRIPTIONS_BUCKET, &id).await;
    assert_eq!(
        stored["webhook"],
        json!({"url": "http://127.0.0.1:10/other", "secret": "s2"})
    );

    // Checked as on create; nothing changes when refused.
    for (bad, words) in [
        (json!({"id": "sub-other"}), "cannot change"),
        (json!({"webhook": {"secret": null}}), "secret is required"),
        (json!({"webhook": {"url": "ftp://x/"}}), "http"),
        (
            json!({"filter": {"categories": ["Not A Name"]}}),
            "filter.categories",
        ),
        (
            json!({"digest": {"group_wait_secs": 999999}}),
            "group_wait_secs",
        ),
        (json!({"max_per_release": 0}), "max_per_release"),
        (json!({"format": "fax"}), "`fax`"),
        (json!(["not", "an", "object"]), "JSON object"),
    ] {
        let (status, err) = gw.patch(&path, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{bad}: {message}");
    }
    assert_eq!(
        gw.stored(names::SUBSCRIPTIONS_BUCKET, &id).await,
        stored,
        "refused patches changed nothing"
    );
    let (status, _) = gw
        .send(
            "PATCH",
            &path,
            Some(("text/plain", json!({"falls": false}))),
        )
        .await;
    assert_eq!(status, 415);
    let (status, _) = gw
        .patch("/v1/subscriptions/sub-none", json!({"falls": true}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = gw.get("/v1/subscriptions/sub-none").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_patched_webhook_url_is_checked_like_a_new_one_and_reads_need_the_api_token() {
    let gw = start(GatewayConfig {
        rate_limit: None,
        api_token: Some("api-token".into()),
        read_token: Some("read-token".into()),
        ..GatewayConfig::default()
    })
    .await;
    // Stored as if made earlier; the URL is never resolved (it does not change below).
    let sub = json!({"id": "sub-1", "filter": {}, "webhook": {"url": "https://hooks.example.org/x", "secret": "s"}, "created_at": "2025-01-01T00:00:00Z"});
    gw.bus
        .kv_put(
            names::SUBSCRIPTIONS_BUCKET,
            "sub-1",
            sub.to_string().into_bytes().into(),
        )
        .await
        .unwrap();
    for url in [
        "http://127.0.0.1:9/x",
        "http://10.0.0.1/x",
        "http://[::1]/x",
        "http://169.254.169.254/",
    ] {
        let (status, err) = gw
            .patch("/v1/subscriptions/sub-1", json!({"webhook": {"url": url}}))
            .await;
        assert_eq!(status, 422, "{url}: {err}");
        assert_eq!(err["error"]["code"], "webhook_target_refused");
    }
    // Another member changes without the URL being looked at again.
    let (status, edited) = gw
        .patch("/v1/subscriptions/sub-1", json!({"resolved": true}))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["webhook"]["url"], "https://hooks.example.org/…");
    // Reading one needs the API token, as the list does: the read token is not enough.
    for (token, want) in [
        (None, 401),
        (Some("read-token"), 401),
        (Some("api-token"), 200),
    ] {
        let mut r = gw.http.get(format!("{}/v1/subscriptions/sub-1", gw.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        assert_eq!(r.send().await.unwrap().status().as_u16(), want, "{token:?}");
    }
    // Writes need it too.
    let r = gw
        .http
        .patch(format!("{}/v1/subscriptions/sub-1", gw.base))
        .header("content-type", "application/merge-patch+json")
        .body("{\"falls\": true}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn silences_take_alertmanager_matchers_and_are_read_and_edited_one_at_a_time() {
    let gw = start(local()).await;
    // Alertmanager's shape, beside the older one.
    let (status, created) = gw
        .post(
            "/v1/silences",
            json!({"matchers": [
                {"name": "country", "value": "PRK", "isRegex": false, "isEqual": true},
                {"name": "category", "value": "study|work", "isRegex": true},
            ], "until": "2999-01-01T00:00:00Z", "comment": "known story"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["matchers"][1],
        json!({"name": "category", "value": "study|work", "isRegex": true, "isEqual": true})
    );
    let (status, old) = gw
        .post(
            "/v1/silences",
            json!({"matchers": {"country": "CHN"}, "until": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        old["matchers"],
        json!({"country": "CHN"}),
        "the older shape stays as it was"
    );
    let (status, text) = gw
        .post("/v1/silences", json!({"matchers": ["country!=\"PRK\"", "severity=~\"high|critical\""], "until": "2999-01-01T00:00:00Z"}))
        .await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(text["matchers"][0]["isEqual"], false);

    let path = format!("/v1/silences/{id}");
    let (status, one) = gw.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(one["active"], true);
    assert_eq!(one["matchers"], created["matchers"]);

    // An edit keeps the id; a list of matchers replaces the stored list.
    let (status, edited) = gw
        .patch(&path, json!({"matchers": ["source=~\"fsb|mvd\""], "until": "2998-01-01T00:00:00+03:00", "comment": null}))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["id"], id);
    assert_eq!(edited["until"], "2997-12-31T21:00:00Z");
    assert!(edited.get("comment").is_none());
    assert_eq!(
        edited["matchers"],
        json!([{"name": "source", "value": "fsb|mvd", "isRegex": true, "isEqual": true}])
    );
    assert_eq!(
        gw.stored(names::SILENCES_BUCKET, &id).await["matchers"],
        edited["matchers"]
    );
    // The older object merges field by field.
    let old_path = format!("/v1/silences/{}", old["id"].as_str().unwrap());
    let (status, merged) = gw
        .patch(&old_path, json!({"matchers": {"category": "study"}}))
        .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(
        merged["matchers"],
        json!({"country": "CHN", "category": "study"})
    );

    // Invalid matchers are refused with what is wrong, on create and on edit.
    for (bad, words) in [
        (
            json!([{"name": "category", "value": "stud(y", "isRegex": true}]),
            "not a valid regex",
        ),
        (
            json!([{"name": "category", "value": "(a{1000}){1000}", "isRegex": true}]),
            "not a valid regex",
        ),
        (json!(["colour=red"]), "colour"),
        (json!(["country=XXX"]), "XXX"),
        (json!([]), "at least one"),
        (json!({}), "at least one"),
    ] {
        let (status, err) = gw.patch(&path, json!({"matchers": bad})).await;
        assert_eq!(status, 400, "{bad}: {err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{bad}: {message}");
        let (status, err) = gw
            .post(
                "/v1/silences",
                json!({"matchers": bad, "until": "2999-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {err}");
    }
    for (bad, words) in [
        (json!({"until": "2001-01-01T00:00:00Z"}), "in the past"),
        (json!({"id": "sil-x"}), "cannot change"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let (status, err) = gw.patch(&path, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(words),
            "{bad}: {err}"
        );
    }
    assert_eq!(gw.get("/v1/silences/sil-none").await.0, 404);
    assert_eq!(
        gw.patch("/v1/silences/sil-none", json!({"comment": "x"}))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_test_event_is_signed_and_reaches_the_receiver_once() {
    let gw = start(local()).await;
    let receiver = ScriptedReceiver::start(&[200, 503]).await;
    let (_, sub) = gw
        .post(
            "/v1/subscriptions",
            json!({"filter": {"countries": ["CHN"], "categories": ["work"]}, "webhook": {"url": receiver.url("hook"), "secret": "test-secret"}}),
        )
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    // An action: no body, no content type needed.
    let (status, sent) = gw
        .send("POST", &format!("/v1/subscriptions/{id}/test"), None)
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["outcome"], "delivered");
    assert_eq!(sent["status"], 200);
    let event_id = sent["event_id"].as_str().unwrap().to_string();
    assert!(event_id.starts_with("test-"), "{event_id}");

    let got = receiver.wait_for(1, "the test event").await;
    assert_eq!(got.len(), 1);
    let post = &got[0];
    assert_eq!(post.path, "/hook");
    assert_eq!(post.event_id, event_id);
    assert!(verify_signature(
        b"test-secret",
        &post.body,
        &post.signature
    ));
    let header = |n: &str| post.headers.get(n).unwrap().to_str().unwrap().to_string();
    assert!(verify_standard(
        b"test-secret",
        &event_id,
        header("webhook-timestamp").parse().unwrap(),
        &post.body,
        &header("webhook-signature"),
    ));
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(body["test"], true);
    assert_eq!(body["id"], event_id);
    // Shaped as a surge, in the subscription's own country and category.
    let event: SurgeEvent = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(
        (event.country.code(), event.category.as_str()),
        ("CHN", "work")
    );

    // The attempt is in the delivery log.
    let (_, log) = gw.get(&format!("/v1/subscriptions/{id}/deliveries")).await;
    let logged: Vec<&Value> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event_id"] == event_id)
        .collect();
    assert_eq!(logged.len(), 1, "{log}");
    assert_eq!(logged[0]["outcome"], "delivered");

    // A receiver that refuses: the answer says so, and it is not retried.
    let (status, failed) = gw
        .send("POST", &format!("/v1/subscriptions/{id}/test"), None)
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        (failed["outcome"].clone(), failed["status"].clone()),
        (json!("failed"), json!(503))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen(), 2, "one POST per test, no retry");
    assert_eq!(
        gw.send("POST", "/v1/subscriptions/sub-none/test", None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn dead_letters_are_listed_and_redelivered_once() {
    let gw = start(local()).await;
    let receiver = ScriptedReceiver::start(&[500]).await;
    let (_, sub) = gw
        .post(
            "/v1/subscriptions",
            json!({"webhook": {"url": receiver.url("dl"), "secret": "k"}}),
        )
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    // A notice notify gave up on, as it publishes one.
    let event: SurgeEvent = serde_json::from_value(json!({
        "id": "sg-dead1", "source": "fsb", "country": "PRK", "category": "study",
        "period": "2024-Q3", "value": 3765, "severity": "critical", "explanation": "x",
        "findings": [], "release_id": "rel-1", "detected_at": "2025-01-01T00:00:00Z",
    }))
    .unwrap();
    let dead = DeadLetter {
        subscription: id.clone(),
        event_id: "sg-dead1".into(),
        notice: Notice::Surge(event),
        attempts: 50,
        last_status: Some(503),
        last_error: "HTTP 503 Service Unavailable".into(),
        failed_at: "2025-01-02T00:00:00Z".into(),
    };
    gw.bus
        .publish(Outgoing::new(
            names::deadletter_subject(&id),
            serde_json::to_vec(&dead).unwrap(),
        ))
        .await
        .unwrap();
    let list_path = format!("/v1/subscriptions/{id}/dead-letters");
    let (status, list) = gw.get(&list_path).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["dead_letters"],
        json!([{"event_id": "sg-dead1", "kind": "surge", "attempts": 50, "last_status": 503,
                "last_error": "HTTP 503 Service Unavailable", "failed_at": "2025-01-02T00:00:00Z",
                "redelivered_at": null}])
    );
    let redeliver = format!("/v1/subscriptions/{id}/dead-letters/sg-dead1/redeliver");
    // The receiver still refuses: still dead.
    let (status, out) = gw.send("POST", &redeliver, None).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (
            out["outcome"].clone(),
            out["attempt"].clone(),
            out["status"].clone()
        ),
        (json!("failed"), json!(51), json!(500))
    );
    // Now it takes it: delivered, signed, marked done.
    let (status, out) = gw.send("POST", &redeliver, None).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["outcome"], "delivered");
    let got = receiver.wait_for(1, "the redelivered dead letter").await;
    assert_eq!(got[0].event_id, "sg-dead1");
    assert!(verify_signature(b"k", &got[0].body, &got[0].signature));
    let (_, list) = gw.get(&list_path).await;
    assert!(
        list["dead_letters"][0]["redelivered_at"].is_string(),
        "{list}"
    );
    // Once: a second redelivery is refused, and `notify replay` would skip it too.
    let (status, err) = gw.send("POST", &redeliver, None).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "already_redelivered");
    assert_eq!(receiver.accepted_count(), 1);
    let (status, _) = gw
        .send(
            "POST",
            &format!("/v1/subscriptions/{id}/dead-letters/sg-none/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        gw.get("/v1/subscriptions/sub-none/dead-letters").await.0,
        404
    );
}

fn release(id: &str, ms: u64, revisions: u64) -> Value {
    json!({
        "id": id, "source": "fsb", "format": "generic", "content_sha256": format!("{id}-sha"),
        "bytes": 100, "accepted": 10,
        "rejected": [{"row": 3, "column": "count", "value": "-1", "reason": "negative"}],
        "rejected_total": 1200, "new_observations": 9, "first_period": "2024-Q1",
        "last_period": "2024-Q3", "duplicate": false, "analyses": [],
        "received_at": "2025-01-01T00:00:00Z", "received_at_ms": ms, "revisions": revisions,
        "missing": [{"source": "fsb", "category": "tourism", "countries": ["PRK"],
                     "last_period": "2024-Q2", "release_first_period": "2024-Q1",
                     "release_last_period": "2024-Q3", "release_id": id}],
    })
}

#[tokio::test]
async fn releases_are_listed_newest_first_with_their_rows_revisions_and_missing_categories() {
    let gw = start(local()).await;
    for (key, r) in [
        ("k1", release("rel-old", 1_000, 0)),
        ("k2", release("rel-new", 2_000, 1)),
    ] {
        gw.bus
            .kv_put(
                names::RELEASES_BUCKET,
                key,
                r.to_string().into_bytes().into(),
            )
            .await
            .unwrap();
    }
    for (release_id, old, new) in [("rel-new", 5, 7), ("rel-other", 7, 9)] {
        let rev = json!({"source": "fsb", "country": "PRK", "category": "study", "period": "2024-Q1",
                         "old_count": old, "new_count": new, "old_release_id": "rel-old", "release_id": release_id});
        gw.bus
            .publish(Outgoing::new(
                names::revision_subject("fsb", "PRK", "study"),
                rev.to_string().into_bytes(),
            ))
            .await
            .unwrap();
    }
    let (status, page) = gw.get("/v1/releases?limit=1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["releases"].as_array().unwrap().len(), 1);
    let first = &page["releases"][0];
    assert_eq!(first["id"], "rel-new");
    assert_eq!(
        (
            first["rejected_total"].clone(),
            first["revisions"].clone(),
            first["missing_categories"].clone()
        ),
        (json!(1200), json!(1), json!(1))
    );
    assert_eq!(page["next_cursor"], "rel-new");
    let (_, rest) = gw.get("/v1/releases?limit=1&cursor=rel-new").await;
    assert_eq!(rest["releases"][0]["id"], "rel-old");
    assert_eq!(rest["next_cursor"], Value::Null);
    assert_eq!(gw.get("/v1/releases?cursor=rel-none").await.0, 400);

    let (status, one) = gw.get("/v1/releases/rel-new").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["rejected"][0]["reason"], "negative");
    assert_eq!(one["rejected_total"], 1200);
    assert_eq!(one["missing"][0]["category"], "tourism");
    assert_eq!(
        one["revised"].as_array().unwrap().len(),
        1,
        "only its own revisions: {one}"
    );
    assert_eq!(
        (
            one["revised"][0]["old_count"].clone(),
            one["revised"][0]["new_count"].clone()
        ),
        (json!(5), json!(7))
    );
    assert_eq!(one["revised_complete"], true);
    let (_, old) = gw.get("/v1/releases/rel-old").await;
    assert_eq!(old["revised"], json!([]));
    assert_eq!(gw.get("/v1/releases/rel-none").await.0, 404);
}
