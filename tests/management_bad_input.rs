//! Bad input over HTTP: each case answered with RabbitMQ's status and JSON
//! body (taken from RabbitMQ 3.10.8 with the same requests), nothing
//! changed, and the broker still serving afterwards.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use http::{http, http_headers, start_http};
use serde_json::json;

const GUEST: Option<&str> = Some("guest:guest");

fn bad(reason: &str) -> (u16, String) {
    (
        400,
        json!({"error":"bad_request","reason":reason}).to_string(),
    )
}

#[tokio::test]
async fn names_longer_than_a_short_string_are_refused_not_crashed_on() {
    let b = start_http().await;
    let long = "a".repeat(300);
    assert_eq!(
        http(&b, "PUT", &format!("/api/queues/%2F/{long}"), GUEST, "{}").await,
        bad("queue should be less than 255 bytes, actually was 300\n")
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            &format!("/api/exchanges/%2F/{long}"),
            GUEST,
            "{}"
        )
        .await,
        bad("exchange should be less than 255 bytes, actually was 300\n")
    );
    assert_eq!(
        http(&b, "PUT", "/api/exchanges/%2F/x", GUEST, "{}").await.0,
        201
    );
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/q", GUEST, "{}").await.0,
        201
    );
    let body = json!({ "routing_key": long }).to_string();
    assert_eq!(
        http(&b, "POST", "/api/bindings/%2F/e/x/q/q", GUEST, &body).await,
        bad("routing_key should be less than 255 bytes, actually was 300\n")
    );
    let body =
        json!({"properties":{},"routing_key":long,"payload":"x","payload_encoding":"string"})
            .to_string();
    assert_eq!(
        http(&b, "POST", "/api/exchanges/%2F/x/publish", GUEST, &body).await,
        (
            400,
            r#"{"error":"bad_request","reason":["too_long","routing_key"]}"#.into()
        )
    );
    // A definitions file naming such a queue is refused whole.
    let defs = json!({"queues":[
        {"name":"fine","vhost":"/","durable":true,"auto_delete":false,"arguments":{}},
        {"name":long,"vhost":"/","durable":true,"auto_delete":false,"arguments":{}}]});
    let (code, _) = http(&b, "POST", "/api/definitions", GUEST, &defs.to_string()).await;
    assert_eq!(code, 400);
    assert_eq!(
        http(&b, "GET", "/api/queues/%2F/fine", GUEST, "").await.0,
        404,
        "nothing applied"
    );
    let (_c, ch) = b.channel().await;
    assert_eq!(depth(&ch, "q").await, 0, "AMQP still served");
}

#[tokio::test]
async fn malformed_bodies_wrong_types_and_unknown_things() {
    let b = start_http().await;
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/q", GUEST, "{").await,
        bad("not_json")
    );
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/q", GUEST, "[1]").await,
        bad("not_json")
    );
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/q", GUEST, r#"{"durable":3}"#).await,
        (
            400,
            r#"{"error":"bad_request","reason":["not_boolean","3"]}"#.into()
        )
    );
    assert_eq!(
        http(&b, "PUT", "/api/queues/nov/q", GUEST, "{}").await,
        (
            404,
            r#"{"error":"not_found","reason":"vhost_not_found"}"#.into()
        )
    );
    assert_eq!(
        http(&b, "GET", "/api/nope", GUEST, "").await,
        (
            404,
            r#"{"error":"Object Not Found","reason":"Not Found"}"#.into()
        )
    );
    let (code, head, _) = http_headers(&b, "POST", "/api/overview", GUEST, "").await;
    assert_eq!(code, 405);
    assert!(
        head.to_ascii_lowercase().contains("\r\nallow: get,head"),
        "{head}"
    );
    assert_eq!(
        http(&b, "PATCH", "/api/queues/%2F/q", GUEST, "{}").await.0,
        405
    );
    for path in ["/api/queues/%2F/q", "/api/exchanges/%2F/x"] {
        assert_eq!(
            http(&b, "GET", path, GUEST, "").await.0,
            404,
            "{path}: nothing made"
        );
    }
}

#[tokio::test]
async fn names_with_slashes_and_control_characters_are_names() {
    let b = start_http().await;
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/a%2Fb", GUEST, "{}")
            .await
            .0,
        201
    );
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/a%01b", GUEST, "{}")
            .await
            .0,
        201
    );
    let (_c, ch) = b.channel().await;
    for name in ["a/b", "a\u{1}b"] {
        publish(&ch, "", name, b"m").await;
    }
    within(async { while depth(&ch, "a/b").await == 0 || depth(&ch, "a\u{1}b").await == 0 {} })
        .await;
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/%FF", GUEST, "{}").await.0,
        400,
        "not UTF-8"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_they_are_read_whole() {
    let b = start_http().await;
    let huge = "x".repeat(21_000_000);
    let (code, body) = http(&b, "POST", "/api/definitions", GUEST, &huge).await;
    assert_eq!(code, 413);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["error"],
        "payload_too_large"
    );
    assert_eq!(http(&b, "GET", "/api/overview", GUEST, "").await.0, 200);
}
