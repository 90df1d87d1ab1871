//! The management API's users, vhosts, permissions and definitions:
//! RabbitMQ 3.10's status codes and bodies (taken from a real one with the
//! same requests), who may use them, and imports refused whole.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use http::{http, start_http};
use serde_json::{Value, json};

const GUEST: Option<&str> = Some("guest:guest");

fn parse(body: &str) -> Value {
    serde_json::from_str(body).expect("json")
}

#[tokio::test]
async fn users_are_created_replaced_shown_and_deleted_as_in_rabbitmq() {
    let b = start_http().await;
    let put = |body: &'static str| http(&b, "PUT", "/api/users/u2", GUEST, body);
    assert_eq!(
        put(r#"{"password":"p"}"#).await,
        (
            400,
            r#"{"error":"bad_request","reason":"tags_not_present"}"#.into()
        )
    );
    assert_eq!(
        put(r#"{"password":"p","tags":"management,foo"}"#).await.0,
        201
    );
    assert_eq!(
        put(r#"{"password":"p2","tags":["management"]}"#).await.0,
        204
    );
    assert_eq!(
        put("notjson").await,
        (400, r#"{"error":"bad_request","reason":"not_json"}"#.into())
    );
    let (code, body) = http(&b, "GET", "/api/users/u2", GUEST, "").await;
    assert_eq!(code, 200);
    let u = parse(&body);
    assert_eq!(u["name"], "u2");
    assert_eq!(u["tags"], json!(["management"]));
    assert_eq!(u["hashing_algorithm"], "rabbit_password_hashing_sha256");
    assert_eq!(u["limits"], json!({}));
    assert_eq!(
        http(&b, "GET", "/api/whoami", Some("u2:p2"), "").await,
        (200, r#"{"name":"u2","tags":["management"]}"#.into())
    );
    assert_eq!(
        http(&b, "GET", "/api/whoami", Some("u2:p"), "").await.0,
        401,
        "the old password no longer works"
    );

    let (_, all) = http(&b, "GET", "/api/users", GUEST, "").await;
    let names: Vec<String> = parse(&all)
        .as_array()
        .expect("list")
        .iter()
        .map(|u| u["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["guest", "u2"]);

    assert_eq!(http(&b, "DELETE", "/api/users/u2", GUEST, "").await.0, 204);
    assert_eq!(
        http(&b, "DELETE", "/api/users/u2", GUEST, "").await,
        (
            404,
            r#"{"error":"Object Not Found","reason":"Not Found"}"#.into()
        )
    );
}

#[tokio::test]
async fn users_are_deleted_in_bulk_all_or_none() {
    let b = start_http().await;
    for name in ["bulk1", "bulk2"] {
        let path = format!("/api/users/{name}");
        let (code, _) = http(&b, "PUT", &path, GUEST, r#"{"password":"p","tags":""}"#).await;
        assert_eq!(code, 201);
    }
    let body = r#"{"users":["bulk1","nobody"]}"#;
    assert_eq!(
        http(&b, "POST", "/api/users/bulk-delete", GUEST, body).await,
        (
            400,
            r#"{"error":"bad_request","reason":["no_such_user","nobody"]}"#.into()
        )
    );
    assert_eq!(
        http(&b, "GET", "/api/users/bulk1", GUEST, "").await.0,
        200,
        "none deleted"
    );
    assert_eq!(
        http(&b, "POST", "/api/users/bulk-delete", GUEST, r#"{"x":1}"#).await,
        (
            400,
            r#"{"error":"bad_request","reason":"[{key_missing,users}]"}"#.into()
        )
    );
    let body = r#"{"users":["bulk1","bulk2"]}"#;
    assert_eq!(
        http(&b, "POST", "/api/users/bulk-delete", GUEST, body)
            .await
            .0,
        204
    );
    for name in ["bulk1", "bulk2"] {
        let path = format!("/api/users/{name}");
        assert_eq!(http(&b, "GET", &path, GUEST, "").await.0, 404);
    }
}

#[tokio::test]
async fn only_management_users_log_in_and_only_administrators_manage_users() {
    let b = start_http().await;
    for (user, tags) in [("plain", r#""""#), ("watcher", r#""monitoring""#)] {
        let body = format!(r#"{{"password":"pw","tags":{tags}}}"#);
        assert_eq!(
            http(&b, "PUT", &format!("/api/users/{user}"), GUEST, &body)
                .await
                .0,
            201
        );
    }
    assert_eq!(
        http(&b, "GET", "/api/whoami", Some("plain:pw"), "").await,
        (
            401,
            r#"{"error":"not_authorised","reason":"Not management user"}"#.into()
        )
    );
    assert_eq!(
        http(&b, "GET", "/api/whoami", Some("watcher:pw"), "")
            .await
            .0,
        200
    );
    assert_eq!(
        http(&b, "GET", "/api/users", Some("watcher:pw"), "").await,
        (
            401,
            r#"{"error":"not_authorised","reason":"Not administrator user"}"#.into()
        )
    );
    assert_eq!(
        http(&b, "GET", "/api/whoami", Some("watcher:bad"), "").await,
        (
            401,
            r#"{"error":"not_authorized","reason":"Login failed"}"#.into()
        )
    );
}

#[tokio::test]
async fn vhosts_and_permissions_are_managed_as_in_rabbitmq() {
    let b = start_http().await;
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/vhosts/v9",
            GUEST,
            r#"{"description":"d","tags":"a,b"}"#
        )
        .await
        .0,
        201
    );
    assert_eq!(http(&b, "PUT", "/api/vhosts/v9", GUEST, "").await.0, 204);
    let (code, body) = http(&b, "GET", "/api/vhosts/v9", GUEST, "").await;
    assert_eq!(code, 200);
    let v = parse(&body);
    assert_eq!(
        (
            v["name"].clone(),
            v["description"].clone(),
            v["tags"].clone()
        ),
        (json!("v9"), json!(""), json!([]))
    );
    assert_eq!(v["metadata"], json!({"description": "", "tags": []}));
    assert_eq!(v["messages"], 0);

    let perms = r#"{"configure":".*","write":".*","read":".*"}"#;
    assert_eq!(
        http(&b, "PUT", "/api/permissions/nosuch/guest", GUEST, perms).await,
        (
            400,
            r#"{"error":"bad_request","reason":"vhost_or_user_not_found"}"#.into()
        )
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/permissions/v9/guest",
            GUEST,
            r#"{"configure":".*","write":".*"}"#
        )
        .await,
        (
            400,
            r#"{"error":"bad_request","reason":"[{key_missing,read}]"}"#.into()
        )
    );
    assert_eq!(
        http(&b, "PUT", "/api/permissions/v9/guest", GUEST, perms)
            .await
            .0,
        204,
        "replaced: creating v9 over HTTP gave guest full permissions, as RabbitMQ does"
    );
    assert_eq!(
        http(&b, "PUT", "/api/permissions/v9/guest", GUEST, perms)
            .await
            .0,
        204
    );
    let (code, body) = http(&b, "GET", "/api/permissions/v9/guest", GUEST, "").await;
    assert_eq!(
        (code, parse(&body)),
        (
            200,
            json!({"user":"guest","vhost":"v9","configure":".*","write":".*","read":".*"})
        )
    );
    let (_, list) = http(&b, "GET", "/api/vhosts/v9/permissions", GUEST, "").await;
    assert_eq!(parse(&list).as_array().map(Vec::len), Some(1));

    // The vhost works over AMQP once guest may use it.
    let url = b.url.replace("/%2f", "/v9");
    let c = within(lapin::Connection::connect(
        &url,
        lapin::ConnectionProperties::default(),
    ))
    .await
    .expect("connects to v9");
    drop(c);

    assert_eq!(
        http(&b, "DELETE", "/api/permissions/v9/guest", GUEST, "")
            .await
            .0,
        204
    );
    assert_eq!(
        http(&b, "DELETE", "/api/permissions/v9/guest", GUEST, "")
            .await
            .0,
        404
    );
    assert_eq!(http(&b, "DELETE", "/api/vhosts/v9", GUEST, "").await.0, 204);
    assert_eq!(http(&b, "DELETE", "/api/vhosts/v9", GUEST, "").await.0, 404);
    assert_eq!(http(&b, "GET", "/api/vhosts/v9", GUEST, "").await.0, 404);
}

/// The access part of RabbitMQ 3.10.8's export_definitions, plus a queue
/// and a binding in a vhost it creates.
fn rabbitmq_export() -> Value {
    json!({
        "rabbit_version": "3.10.8",
        "users": [
            {"hashing_algorithm": "rabbit_password_hashing_sha256", "limits": {"max-channels": 7, "max-connections": 3},
             "name": "alice", "password_hash": "kdkc3piHkBMiqVlnsMt13KDfvkcrRTkG4MkztK7DAN9pM1Q3", "tags": ["monitoring", "policymaker"]}
        ],
        "vhosts": [{"limits": [["max-connections", 10]], "metadata": {"description": "", "tags": ""}, "name": "v1"}],
        "permissions": [{"configure": ".*", "read": ".*", "user": "alice", "vhost": "v1", "write": ".*"}],
        "topic_permissions": [{"exchange": "amq.topic", "read": "^y", "user": "alice", "vhost": "v1", "write": "^x"}],
        "parameters": [{"component": "vhost-limits", "name": "limits", "value": {"max-connections": 10}, "vhost": "v1"}],
        "queues": [{"name": "orders", "vhost": "v1", "durable": true, "auto_delete": false, "arguments": {"x-max-length": 5}}],
        "exchanges": [{"name": "events", "vhost": "v1", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}],
        "bindings": [{"source": "events", "vhost": "v1", "destination": "orders", "destination_type": "queue", "routing_key": "", "arguments": {}}]
    })
}

#[tokio::test]
async fn a_rabbitmq_export_imports_its_users_log_in_and_the_export_round_trips() {
    let b = start_http().await;
    let doc = rabbitmq_export();
    assert_eq!(
        http(&b, "POST", "/api/definitions", GUEST, &doc.to_string())
            .await
            .0,
        204
    );

    // alice's hash from RabbitMQ logs her in with her password.
    let url = format!("amqp://alice:secret@{}/v1", b.addr);
    let c = within(lapin::Connection::connect(
        &url,
        lapin::ConnectionProperties::default(),
    ))
    .await
    .expect("alice logs in");
    let ch = within(c.create_channel()).await.expect("channel");
    publish(&ch, "events", "", b"x").await;
    assert_eq!(depth(&ch, "orders").await, 1);

    let (code, body) = http(&b, "GET", "/api/definitions", GUEST, "").await;
    assert_eq!(code, 200);
    let out = parse(&body);
    let find = |k: &str, pred: &dyn Fn(&Value) -> bool| {
        out[k]
            .as_array()
            .expect(k)
            .iter()
            .find(|v| pred(v))
            .cloned()
    };
    let alice = find("users", &|u| u["name"] == "alice").expect("alice exported");
    assert_eq!(alice, doc["users"][0]);
    assert_eq!(
        find("permissions", &|p| p["user"] == "alice"),
        Some(doc["permissions"][0].clone())
    );
    assert_eq!(
        find("topic_permissions", &|p| p["user"] == "alice"),
        Some(doc["topic_permissions"][0].clone())
    );
    assert_eq!(
        find("parameters", &|p| p["vhost"] == "v1"),
        Some(doc["parameters"][0].clone())
    );
    assert_eq!(
        find("queues", &|q| q["name"] == "orders"),
        Some(doc["queues"][0].clone())
    );
    assert_eq!(
        find("exchanges", &|x| x["name"] == "events"),
        Some(doc["exchanges"][0].clone())
    );
    assert_eq!(
        find("bindings", &|x| x["source"] == "events"),
        Some(doc["bindings"][0].clone())
    );
    assert_eq!(
        find("vhosts", &|v| v["name"] == "v1").map(|v| v["limits"].clone()),
        Some(json!([["max-connections", 10]]))
    );
}

#[tokio::test]
async fn a_bad_definitions_file_is_refused_whole_naming_the_entry() {
    let b = start_http().await;
    type Spoil = fn(&mut Value);
    let cases: [(&str, Spoil); 4] = [
        ("user 'alice'", |d| {
            d["users"][0]["hashing_algorithm"] = json!("rabbit_password_hashing_sha1")
        }),
        ("permissions of user 'alice' in vhost 'v1'", |d| {
            d["permissions"][0]["write"] = json!("(")
        }),
        (
            "binding from 'events' to 'orders' in vhost 'v1': no such queue 'orders'",
            |d| d["queues"] = json!([]),
        ),
        (
            "exchange 'events' in vhost 'v1': unknown exchange type 'nope'",
            |d| d["exchanges"][0]["type"] = json!("nope"),
        ),
    ];
    for (named, spoil) in cases {
        let mut doc = rabbitmq_export();
        spoil(&mut doc);
        let (code, body) = http(&b, "POST", "/api/definitions", GUEST, &doc.to_string()).await;
        assert_eq!(code, 400, "{named}");
        assert!(body.contains(named), "{named}: {body}");
    }
    // Nothing of them was applied.
    assert_eq!(http(&b, "GET", "/api/users/alice", GUEST, "").await.0, 404);
    assert_eq!(http(&b, "GET", "/api/vhosts/v1", GUEST, "").await.0, 404);
}

#[tokio::test]
async fn management_users_see_their_vhosts_and_need_permissions_to_delete_or_purge() {
    let b = start_http().await;
    assert_eq!(http(&b, "PUT", "/api/vhosts/v1", GUEST, "").await.0, 201);
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/users/m",
            GUEST,
            r#"{"password":"pw","tags":"management"}"#
        )
        .await
        .0,
        201
    );
    let perms = r#"{"configure":"^a","write":".*","read":"^b"}"#;
    assert_eq!(
        http(&b, "PUT", "/api/permissions/v1/m", GUEST, perms)
            .await
            .0,
        201
    );
    let (_, vhosts) = http(&b, "GET", "/api/vhosts", Some("m:pw"), "").await;
    let names: Vec<Value> = parse(&vhosts)
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v["name"].clone())
        .collect();
    assert_eq!(names, [json!("v1")], "only the vhost m has permissions in");
    assert_eq!(
        http(&b, "GET", "/api/queues/%2F", Some("m:pw"), "").await.0,
        404
    );

    let url = b.url.replace("/%2f", "/v1");
    let guest = Some("guest:guest");
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/permissions/v1/guest",
            guest,
            r#"{"configure":".*","write":".*","read":".*"}"#
        )
        .await
        .0,
        204,
        "guest created v1 over HTTP and so has permissions there already"
    );
    let c = within(lapin::Connection::connect(
        &url,
        lapin::ConnectionProperties::default(),
    ))
    .await
    .expect("connects");
    let ch = within(c.create_channel()).await.expect("channel");
    declare(&ch, "zq").await;
    let refused = (
        401,
        r#"{"error":"not_authorised","reason":"Access refused."}"#.to_string(),
    );
    assert_eq!(
        http(&b, "DELETE", "/api/queues/v1/zq", Some("m:pw"), "").await,
        refused
    );
    assert_eq!(
        http(&b, "DELETE", "/api/queues/v1/zq/contents", Some("m:pw"), "").await,
        refused
    );
    assert_eq!(
        http(&b, "DELETE", "/api/queues/v1/zq", guest, "").await.0,
        204
    );
    let (_, conns) = http(&b, "GET", "/api/connections", Some("m:pw"), "").await;
    assert_eq!(
        parse(&conns),
        json!([]),
        "guest's connection is not m's to see"
    );
}

#[tokio::test]
async fn an_import_clashing_with_an_existing_queue_changes_nothing() {
    let b = start_http().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "orders").await;
    // "orders" exists in / as a transient queue without arguments: the
    // file's durable one with x-max-length clashes, and its user stays out.
    let doc = json!({
        "users": [{"name": "late", "password": "pw", "tags": ""}],
        "queues": [{"name": "orders", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}]
    });
    let (code, body) = http(&b, "POST", "/api/definitions", GUEST, &doc.to_string()).await;
    assert_eq!(code, 400);
    assert!(
        body.contains("queue 'orders' in vhost '/'") && body.contains("inequivalent arg 'durable'"),
        "{body}"
    );
    assert_eq!(http(&b, "GET", "/api/users/late", GUEST, "").await.0, 404);
}

#[tokio::test]
async fn unknown_limits_and_missing_values_get_rabbitmqs_errors() {
    let b = start_http().await;
    assert_eq!(
        http(&b, "PUT", "/api/vhost-limits/%2F/max-bogus", GUEST, r#"{"value":3}"#).await,
        (400, r#"{"error":"bad_request","reason":"Validation failed\n\nUnrecognised terms [{<<\"max-bogus\">>,3}] in limits\n"}"#.into())
    );
    assert_eq!(
        http(&b, "PUT", "/api/user-limits/guest/max-bogus", GUEST, r#"{"value":3}"#).await,
        (400, r#"{"error":"bad_request","reason":"Unrecognised terms [{<<\"max-bogus\">>,3}] in user-limits"}"#.into())
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/user-limits/guest/max-channels",
            GUEST,
            "{}"
        )
        .await,
        (
            400,
            r#"{"error":"bad_request","reason":"[{key_missing,value}]"}"#.into()
        )
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/user-limits/guest/max-channels",
            GUEST,
            r#"{"value":4}"#
        )
        .await
        .0,
        204
    );
    let (_, body) = http(&b, "GET", "/api/user-limits/guest", GUEST, "").await;
    assert_eq!(
        parse(&body),
        json!([{"user": "guest", "value": {"max-channels": 4}}])
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/user-limits/guest/max-channels",
            GUEST,
            r#"{"value":-1}"#
        )
        .await
        .0,
        204
    );
    assert_eq!(
        http(&b, "GET", "/api/user-limits/guest", GUEST, "").await.1,
        "[]"
    );
}
