//! The node, health checks, aliveness test and runtime parameters over
//! HTTP, with RabbitMQ 3.10's codes and bodies (taken from a real one with
//! the same requests).
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use http::{http, start_http};
use serde_json::{Value, json};

const GUEST: Option<&str> = Some("guest:guest");

/// The bytes of the broker's Connection.Start, read off a raw socket.
async fn connection_start(b: &TestBroker) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(b.addr).await.expect("tcp");
    sock.write_all(b"AMQP\x00\x00\x09\x01")
        .await
        .expect("header");
    let mut header = [0u8; 7];
    within(sock.read_exact(&mut header))
        .await
        .expect("frame header");
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    let mut payload = vec![0u8; size];
    within(sock.read_exact(&mut payload))
        .await
        .expect("payload");
    payload
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).expect("json")
}

#[tokio::test]
async fn the_node_reports_its_resources_to_monitoring_users_only() {
    let b = start_http().await;
    let (code, body) = http(&b, "GET", "/api/nodes", GUEST, "").await;
    assert_eq!(code, 200);
    let nodes = parse(&body);
    let n = &nodes[0];
    for key in [
        "mem_used",
        "mem_limit",
        "fd_used",
        "fd_total",
        "disk_free",
        "uptime",
        "sockets_used",
    ] {
        assert!(n[key].is_u64(), "{key}: {n}");
    }
    assert_eq!(n["running"], json!(true));
    let name = n["name"].as_str().expect("name").to_string();
    assert_eq!(
        http(&b, "GET", &format!("/api/nodes/{name}"), GUEST, "")
            .await
            .0,
        200
    );
    assert_eq!(http(&b, "GET", "/api/nodes/nope@x", GUEST, "").await.0, 404);
    let (_, body) = http(&b, "GET", "/api/cluster-name", GUEST, "").await;
    assert_eq!(parse(&body), json!({ "name": name }));

    let broker = &b.running.as_ref().expect("running").broker;
    broker
        .add_user("mon", "mon", &["management"])
        .expect("user");
    assert_eq!(
        http(&b, "GET", "/api/nodes", Some("mon:mon"), "").await,
        (
            401,
            r#"{"error":"not_authorised","reason":"Not monitor user"}"#.into()
        )
    );
}

#[tokio::test]
async fn the_cluster_is_renamed_by_an_administrator_and_the_node_keeps_its_name() {
    let b = start_http().await;
    let (_, node) = http(&b, "GET", "/api/cluster-name", GUEST, "").await;
    let node = parse(&node)["name"].as_str().expect("name").to_string();
    let broker = &b.running.as_ref().expect("running").broker;
    broker
        .add_user("mon", "mon", &["monitoring"])
        .expect("user");
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/cluster-name",
            Some("mon:mon"),
            r#"{"name":"x"}"#
        )
        .await
        .0,
        401
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/cluster-name",
            GUEST,
            r#"{"name":"orders-eu"}"#
        )
        .await
        .0,
        204
    );
    let (_, body) = http(&b, "GET", "/api/cluster-name", GUEST, "").await;
    assert_eq!(parse(&body), json!({ "name": "orders-eu" }));
    let (_, overview) = http(&b, "GET", "/api/overview", GUEST, "").await;
    let overview = parse(&overview);
    assert_eq!(overview["cluster_name"], "orders-eu");
    assert_eq!(overview["node"], node.as_str(), "the node keeps its name");
    assert!(
        connection_start(&b)
            .await
            .windows(9)
            .any(|w| w == b"orders-eu"),
        "Connection.Start's cluster_name is the new one"
    );
    let (_, params) = http(&b, "GET", "/api/global-parameters/cluster_name", GUEST, "").await;
    assert_eq!(
        parse(&params),
        json!({"name": "cluster_name", "value": "orders-eu"})
    );
}

#[tokio::test]
async fn the_old_node_healthcheck_and_the_overview_contexts_are_served() {
    let b = start_http().await;
    let (_, o) = http(&b, "GET", "/api/overview", GUEST, "").await;
    let o = parse(&o);
    let node = o["node"].as_str().expect("node").to_string();
    let port = b.running.as_ref().expect("running").management_addrs[0].port();
    assert_eq!(o["contexts"][0]["node"], node.as_str());
    assert_eq!(o["contexts"][0]["port"], port.to_string());
    assert_eq!(o["contexts"][0]["description"], "RabbitMQ Management");
    for path in [
        "/api/healthchecks/node",
        &format!("/api/healthchecks/node/{node}"),
    ] {
        assert_eq!(
            http(&b, "GET", path, GUEST, "").await,
            (200, r#"{"status":"ok"}"#.into())
        );
    }
    assert_eq!(
        http(&b, "GET", "/api/healthchecks/node/nope@x", GUEST, "").await,
        (
            404,
            r#"{"error":"Object Not Found","reason":"Not Found"}"#.into()
        )
    );
}

#[tokio::test]
async fn health_checks_answer_as_rabbitmqs() {
    let b = start_http().await;
    let ok = (200, r#"{"status":"ok"}"#.to_string());
    for path in [
        "/api/health/checks/alarms",
        "/api/health/checks/local-alarms",
        "/api/health/checks/virtual-hosts",
        "/api/aliveness-test/%2F",
    ] {
        assert_eq!(http(&b, "GET", path, GUEST, "").await, ok, "{path}");
    }
    let amqp = b.addr.port();
    let (_, body) = http(
        &b,
        "GET",
        &format!("/api/health/checks/port-listener/{amqp}"),
        GUEST,
        "",
    )
    .await;
    assert_eq!(parse(&body), json!({"status":"ok","port":amqp}));
    let (code, body) = http(&b, "GET", "/api/health/checks/port-listener/1", GUEST, "").await;
    assert_eq!(code, 503);
    let v = parse(&body);
    assert_eq!(
        (v["status"].clone(), v["missing"].clone()),
        (json!("failed"), json!(1))
    );
    let (_, body) = http(
        &b,
        "GET",
        "/api/health/checks/protocol-listener/amqp",
        GUEST,
        "",
    )
    .await;
    assert_eq!(parse(&body), json!({"status":"ok","protocol":"amqp"}));
    let (code, body) = http(
        &b,
        "GET",
        "/api/health/checks/protocol-listener/foo",
        GUEST,
        "",
    )
    .await;
    assert_eq!(code, 503);
    assert_eq!(parse(&body)["reason"], "No active listener");
    let (_, body) = http(
        &b,
        "GET",
        "/api/health/checks/node-is-quorum-critical",
        GUEST,
        "",
    )
    .await;
    assert_eq!(
        parse(&body),
        json!({"status":"ok","reason":"single node cluster"})
    );
    assert_eq!(
        http(&b, "GET", "/api/aliveness-test/nov", GUEST, "").await,
        (
            404,
            r#"{"error":"Object Not Found","reason":"Not Found"}"#.into()
        )
    );
}

#[tokio::test]
async fn parameters_are_kept_across_restarts_and_exported() {
    let b = start_http().await;
    let put = |path: &'static str, body: &'static str| http(&b, "PUT", path, GUEST, body);
    assert_eq!(
        put(
            "/api/parameters/foo/%2F/up1",
            r#"{"value":{"uri":"amqp://x"}}"#
        )
        .await,
        (
            400,
            r#"{"error":"bad_request","reason":"Validation failed\n\ncomponent foo not found\n"}"#
                .into()
        )
    );
    assert_eq!(
        put(
            "/api/parameters/federation-upstream/%2F/up1",
            r#"{"value":{"uri":"amqp://x"}}"#
        )
        .await
        .0,
        201
    );
    assert_eq!(
        put("/api/global-parameters/g1", r#"{"value":{"a":1}}"#)
            .await
            .0,
        201
    );
    assert_eq!(
        put("/api/global-parameters/g1", r#"{"value":{"a":2}}"#)
            .await
            .0,
        204
    );
    assert_eq!(
        put("/api/global-parameters/g2", r#"{"x":1}"#).await,
        (
            400,
            r#"{"error":"bad_request","reason":"[{key_missing,value}]"}"#.into()
        )
    );
    assert_eq!(
        put(
            "/api/parameters/vhost-limits/%2F/limits",
            r#"{"value":{"max-queues":100}}"#
        )
        .await
        .0,
        201
    );
    let b = b
        .restart_with(|c| c.management_listen = vec!["127.0.0.1:0".parse().expect("addr")])
        .await;
    let (_, body) = http(&b, "GET", "/api/global-parameters/g1", GUEST, "").await;
    assert_eq!(parse(&body), json!({"name":"g1","value":{"a":2}}));
    let (_, body) = http(&b, "GET", "/api/parameters", GUEST, "").await;
    assert_eq!(
        parse(&body),
        json!([
            {"vhost":"/","component":"vhost-limits","name":"limits","value":{"max-queues":100}},
            {"vhost":"/","component":"federation-upstream","name":"up1","value":{"uri":"amqp://x"}}
        ])
    );
    let (_, body) = http(&b, "GET", "/api/definitions", GUEST, "").await;
    let d = parse(&body);
    assert_eq!(
        d["global_parameters"],
        json!([{"name":"g1","value":{"a":2}}])
    );
    assert_eq!(d["parameters"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        http(
            &b,
            "DELETE",
            "/api/parameters/federation-upstream/%2F/up1",
            GUEST,
            ""
        )
        .await
        .0,
        204
    );
    assert_eq!(
        http(
            &b,
            "DELETE",
            "/api/parameters/federation-upstream/%2F/up1",
            GUEST,
            ""
        )
        .await
        .0,
        404
    );
    assert_eq!(
        http(&b, "DELETE", "/api/global-parameters/g1", GUEST, "")
            .await
            .0,
        204
    );
    assert_eq!(
        http(&b, "DELETE", "/api/global-parameters/g1", GUEST, "")
            .await
            .0,
        404
    );
}
