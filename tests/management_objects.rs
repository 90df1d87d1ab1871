//! Exchanges, queues and bindings declared and deleted over HTTP, and
//! messages published and fetched over HTTP: RabbitMQ 3.10's status codes
//! and bodies (taken from a real one with the same requests), the same
//! permission checks as AMQP, and the same messages either way in.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use http::{http, http_headers, start_http};
use serde_json::{Value, json};

const GUEST: Option<&str> = Some("guest:guest");

fn parse(body: &str) -> Value {
    serde_json::from_str(body).expect("json")
}

fn bad(reason: &str) -> (u16, String) {
    (
        400,
        json!({"error":"bad_request","reason":reason}).to_string(),
    )
}

const REFUSED: &str = r#"{"error":"not_authorised","reason":"Access refused."}"#;
const NOT_FOUND: &str = r#"{"error":"Object Not Found","reason":"Not Found"}"#;

#[tokio::test]
async fn exchanges_are_declared_and_deleted_with_rabbitmqs_answers() {
    let b = start_http().await;
    let put = |path: &'static str, body: &'static str| http(&b, "PUT", path, GUEST, body);
    assert_eq!(
        put(
            "/api/exchanges/%2F/hx",
            r#"{"type":"direct","durable":true}"#
        )
        .await
        .0,
        201
    );
    assert_eq!(
        put(
            "/api/exchanges/%2F/hx",
            r#"{"type":"direct","durable":true}"#
        )
        .await
        .0,
        204
    );
    assert_eq!(
        put(
            "/api/exchanges/%2F/hx",
            r#"{"type":"fanout","durable":true}"#
        )
        .await,
        bad(
            "inequivalent arg 'type' for exchange 'hx' in vhost '/': received 'fanout' but current is 'direct'"
        )
    );
    assert_eq!(put("/api/exchanges/%2F/hy", "{}").await.0, 201);
    let (_, body) = http(&b, "GET", "/api/exchanges/%2F/hy", GUEST, "").await;
    let x = parse(&body);
    assert_eq!(
        (x["type"].clone(), x["durable"].clone()),
        (json!("direct"), json!(false))
    );
    assert_eq!(
        put("/api/exchanges/%2F/hn", r#"{"type":"nope"}"#).await,
        bad("unknown exchange type 'nope'")
    );
    assert_eq!(put("/api/exchanges/%2F/hn", "xx").await, bad("not_json"));
    assert_eq!(
        put("/api/exchanges/nov/hn", r#"{"type":"direct"}"#).await,
        (
            404,
            r#"{"error":"not_found","reason":"vhost_not_found"}"#.into()
        )
    );
    assert_eq!(
        put("/api/exchanges/%2F/amq.foo", "{}").await,
        (401, REFUSED.into())
    );
    assert_eq!(
        put("/api/exchanges/%2F/hn", r#"{"durable":"yes"}"#).await,
        (
            400,
            r#"{"error":"bad_request","reason":["not_boolean","yes"]}"#.into()
        )
    );
    assert_eq!(
        http(&b, "GET", "/api/exchanges/%2F/hn", GUEST, "").await.0,
        404,
        "a refused declare made nothing"
    );

    let del = |path: &'static str| http(&b, "DELETE", path, GUEST, "");
    assert_eq!(
        put("/api/queues/%2F/hq", "{}").await.0,
        201,
        "a queue to bind"
    );
    let (code, _) = http(&b, "POST", "/api/bindings/%2F/e/hx/q/hq", GUEST, "{}").await;
    assert_eq!(code, 201);
    assert_eq!(
        del("/api/exchanges/%2F/hx?if-unused=true").await,
        bad("exchange 'hx' in vhost '/' in use")
    );
    assert_eq!(
        del("/api/exchanges/%2F/amq.direct").await,
        (401, REFUSED.into())
    );
    assert_eq!(del("/api/exchanges/%2F/nox").await, (404, NOT_FOUND.into()));
    assert_eq!(del("/api/exchanges/%2F/hx").await.0, 204);
    assert_eq!(
        http(&b, "GET", "/api/exchanges/%2F/hx", GUEST, "").await.0,
        404
    );
}

#[tokio::test]
async fn queues_are_declared_over_http_as_over_amqp() {
    let b = start_http().await;
    let put = |path: &'static str, body: &'static str| http(&b, "PUT", path, GUEST, body);
    let args = r#"{"durable":true,"arguments":{"x-max-length":10}}"#;
    assert_eq!(put("/api/queues/%2F/hq", args).await.0, 201);
    assert_eq!(put("/api/queues/%2F/hq", args).await.0, 204);
    assert_eq!(
        put("/api/queues/%2F/hq", r#"{"durable":false}"#).await,
        bad(
            "inequivalent arg 'durable' for queue 'hq' in vhost '/': received 'false' but current is 'true'"
        )
    );
    assert_eq!(
        put(
            "/api/queues/%2F/hq2",
            r#"{"arguments":{"x-max-length":"ten"}}"#
        )
        .await,
        bad(
            "invalid arg 'x-max-length' for queue 'hq2' in vhost '/': \"expected integer, got longstr\""
        )
    );
    assert_eq!(
        put("/api/queues/%2F/amq.q", "{}").await,
        (401, REFUSED.into())
    );
    assert_eq!(put("/api/queues/%2F/hq4", "[1]").await, bad("not_json"));
    assert_eq!(
        put("/api/queues/%2F/a%2Fb", "{}").await.0,
        201,
        "a name with a slash"
    );

    // The queue is the one AMQP sees: passive declare, durable, its limit.
    let (_c, ch) = b.channel().await;
    let q = ch
        .queue_declare(
            "hq".into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect("declared over HTTP");
    assert_eq!(q.message_count(), 0);
    ch.queue_declare(
        "a/b".into(),
        lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .expect("a/b");
    let (_, body) = http(&b, "GET", "/api/queues/%2F/hq", GUEST, "").await;
    let q = parse(&body);
    assert_eq!(q["durable"], json!(true));
    assert_eq!(q["arguments"], json!({"x-max-length": 10}));

    assert_eq!(
        http(&b, "DELETE", "/api/queues/%2F/hq", GUEST, "").await.0,
        204
    );
    assert_eq!(
        http(&b, "DELETE", "/api/queues/%2F/hq", GUEST, "").await,
        (404, NOT_FOUND.into())
    );
}

#[tokio::test]
async fn bindings_are_made_found_and_removed_by_their_properties_key() {
    let b = start_http().await;
    for (path, body) in [
        ("/api/exchanges/%2F/hx", r#"{"type":"direct"}"#),
        ("/api/exchanges/%2F/hy", r#"{"type":"fanout"}"#),
        ("/api/queues/%2F/hq", "{}"),
    ] {
        assert_eq!(http(&b, "PUT", path, GUEST, body).await.0, 201, "{path}");
    }
    let post = |path: &'static str, body: &'static str| http_headers(&b, "POST", path, GUEST, body);
    let (code, head, _) = post(
        "/api/bindings/%2F/e/hx/q/hq",
        r#"{"routing_key":"k1","arguments":{}}"#,
    )
    .await;
    assert_eq!(code, 201);
    assert!(head.contains("\r\nlocation: hq/k1"), "{head}");
    let (_, head, _) = post("/api/bindings/%2F/e/hx/q/hq", "{}").await;
    assert!(head.contains("\r\nlocation: hq/~"), "{head}");
    let (_, head, _) = post(
        "/api/bindings/%2F/e/hx/q/hq",
        r#"{"routing_key":"k2","arguments":{"a":1}}"#,
    )
    .await;
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .expect("location")
        .to_string();
    assert!(location.starts_with("hq/k2~"), "{location}");
    let (code, _, body) = post("/api/bindings/%2F/e/hx/q/nope", "{}").await;
    assert_eq!(
        (code, body),
        (
            404,
            r#"{"error":"not_found","reason":"no queue 'nope' in vhost '/'"}"#.into()
        )
    );
    let (code, _, body) = post("/api/bindings/%2F/e/nox/q/hq", "{}").await;
    assert_eq!(
        (code, body),
        (
            404,
            r#"{"error":"not_found","reason":"no exchange 'nox' in vhost '/'"}"#.into()
        )
    );
    assert_eq!(
        post("/api/bindings/%2F/e/hx/e/hy", r#"{"routing_key":"ee"}"#)
            .await
            .0,
        201
    );

    let (_, body) = http(&b, "GET", "/api/bindings/%2F/e/hx/q/hq/k1", GUEST, "").await;
    assert_eq!(
        parse(&body),
        json!({"source":"hx","vhost":"/","destination":"hq","destination_type":"queue",
               "routing_key":"k1","arguments":{},"properties_key":"k1"})
    );
    let keys = |body: String| -> Vec<String> {
        parse(&body)
            .as_array()
            .expect("list")
            .iter()
            .map(|b| {
                format!(
                    "{}>{}",
                    b["source"].as_str().unwrap_or("?"),
                    b["properties_key"].as_str().unwrap_or("?")
                )
            })
            .collect()
    };
    let (_, body) = http(&b, "GET", "/api/queues/%2F/hq/bindings", GUEST, "").await;
    assert_eq!(
        keys(body),
        vec![
            ">hq".to_string(),
            "hx>~".into(),
            "hx>k1".into(),
            location
                .trim_start_matches("hq/")
                .to_string()
                .replace("k2", "hx>k2")
        ]
    );
    let (_, body) = http(
        &b,
        "GET",
        "/api/exchanges/%2F/hy/bindings/destination",
        GUEST,
        "",
    )
    .await;
    assert_eq!(keys(body), vec!["hx>ee".to_string()]);
    let (_, body) = http(
        &b,
        "GET",
        "/api/exchanges/%2F/hx/bindings/source",
        GUEST,
        "",
    )
    .await;
    assert_eq!(keys(body).len(), 4);

    // Deleting by the key in the Location removes that binding only.
    let path = format!("/api/bindings/%2F/e/hx/q/{location}");
    assert_eq!(http(&b, "DELETE", &path, GUEST, "").await.0, 204);
    assert_eq!(
        http(&b, "DELETE", &path, GUEST, "").await,
        (404, NOT_FOUND.into())
    );
    assert_eq!(
        http(&b, "GET", "/api/bindings/%2F/e/hx/q/hq/zz", GUEST, "").await,
        (404, NOT_FOUND.into())
    );
    let (_c, ch) = b.channel().await;
    publish(&ch, "hx", "k1", b"still bound").await;
    publish(&ch, "hx", "k2", b"unbound").await;
    let m = within(async {
        loop {
            if let Some(m) = get(&ch, "hq").await {
                return m;
            }
        }
    })
    .await;
    assert_eq!(m.delivery.data, b"still bound");
    assert!(get(&ch, "hq").await.is_none(), "k2 is no longer bound");
}

#[tokio::test]
async fn messages_published_over_http_are_consumed_over_amqp_and_back() {
    let b = start_http().await;
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/queues/%2F/hq",
            GUEST,
            r#"{"durable":true}"#
        )
        .await
        .0,
        201
    );
    let publish_http = |body: &'static str| {
        http(
            &b,
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            GUEST,
            body,
        )
    };
    assert_eq!(
        publish_http(r#"{"properties":{"delivery_mode":2,"headers":{"h":1},"content_type":"text/plain","priority":3},"routing_key":"hq","payload":"hello","payload_encoding":"string"}"#).await,
        (200, r#"{"routed":true}"#.into())
    );
    assert_eq!(
        publish_http(
            r#"{"properties":{},"routing_key":"none","payload":"aGk=","payload_encoding":"base64"}"#
        )
        .await,
        (200, r#"{"routed":false}"#.into())
    );
    assert_eq!(
        publish_http(
            r#"{"properties":{},"routing_key":"hq","payload":"!!","payload_encoding":"base64"}"#
        )
        .await,
        (
            400,
            r#"{"error":"bad_request","reason":["not_base64","!!"]}"#.into()
        )
    );
    assert_eq!(
        publish_http(r#"{"properties":{},"routing_key":"hq"}"#).await,
        bad("[{key_missing,payload},{key_missing,payload_encoding}]")
    );
    assert_eq!(
        publish_http(r#"{"properties":{"expiration":"abc"},"routing_key":"hq","payload":"x","payload_encoding":"string"}"#).await,
        bad("406 PRECONDITION_FAILED - invalid expiration 'abc': no_integer")
    );
    assert_eq!(
        publish_http(r#"{"properties":{"delivery_mode":"x"},"routing_key":"hq","payload":"x","payload_encoding":"string"}"#).await,
        (400, r#"{"error":"bad_request","reason":["not_int","delivery_mode"]}"#.into())
    );
    assert_eq!(
        http(
            &b,
            "POST",
            "/api/exchanges/%2F/nox/publish",
            GUEST,
            r#"{"properties":{},"routing_key":"k","payload":"x","payload_encoding":"string"}"#
        )
        .await,
        bad("404 NOT_FOUND - no exchange 'nox' in vhost '/'")
    );

    // Over AMQP it is the message published, properties and all.
    let (_c, ch) = b.channel().await;
    let m = get(&ch, "hq").await.expect("published over HTTP");
    assert_eq!(m.delivery.data, b"hello");
    let p = &m.delivery.properties;
    assert_eq!(p.delivery_mode(), &Some(2));
    assert_eq!(p.priority(), &Some(3));
    assert_eq!(
        p.content_type().as_ref().map(|s| s.as_str()),
        Some("text/plain")
    );
    m.delivery
        .nack(lapin::options::BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .expect("requeue");
    publish(&ch, "", "hq", &[1, 0xff, b'x']).await;

    let get_http = |body: &'static str| http(&b, "POST", "/api/queues/%2F/hq/get", GUEST, body);
    let (code, body) = within(async {
        loop {
            let r = get_http(
                r#"{"count":5,"ackmode":"ack_requeue_true","encoding":"auto","truncate":2}"#,
            )
            .await;
            if parse(&r.1).as_array().is_some_and(|a| a.len() == 2) {
                return r;
            }
        }
    })
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        parse(&body),
        json!([
            {"payload_bytes":5,"redelivered":true,"exchange":"","routing_key":"hq","message_count":1,
             "properties":{"priority":3,"delivery_mode":2,"headers":{"h":1},"content_type":"text/plain"},
             "payload":"he","payload_encoding":"string"},
            {"payload_bytes":3,"redelivered":false,"exchange":"","routing_key":"hq","message_count":0,
             "properties":{},"payload":"Af8=","payload_encoding":"base64"}
        ])
    );
    assert_eq!(
        get_http(r#"{"count":5,"ackmode":"ack_requeue_true","encoding":"x"}"#).await,
        bad("Unsupported encoding. Please use auto or base64.")
    );
    assert_eq!(
        get_http(r#"{"ackmode":"ack_requeue_true","encoding":"auto"}"#).await,
        bad("[{key_missing,count}]")
    );
    assert_eq!(
        http(
            &b,
            "POST",
            "/api/queues/%2F/nope/get",
            GUEST,
            r#"{"count":1,"ackmode":"ack_requeue_true","encoding":"auto"}"#
        )
        .await,
        (
            404,
            r#"{"error":"not_found","reason":"NOT_FOUND - no queue 'nope' in vhost '/'"}"#.into()
        )
    );
    let (_, body) =
        get_http(r#"{"count":1,"ackmode":"ack_requeue_false","encoding":"base64"}"#).await;
    assert_eq!(parse(&body)[0]["payload"], "aGVsbG8=");
    assert_eq!(
        depth(&ch, "hq").await,
        1,
        "the first was acked, the second requeued"
    );
    let (_, body) =
        get_http(r#"{"count":3,"ackmode":"ack_requeue_false","encoding":"auto"}"#).await;
    assert_eq!(parse(&body).as_array().map(Vec::len), Some(1));
    assert_eq!(
        get_http(r#"{"count":3,"ackmode":"ack_requeue_false","encoding":"auto"}"#).await,
        (200, "[]".into())
    );
}

#[tokio::test]
async fn http_declares_and_publishes_need_the_permissions_amqp_needs() {
    let b = start_http().await;
    let broker = &b.running.as_ref().expect("running").broker;
    broker
        .add_user("dev", "dev", &["management"])
        .expect("user");
    // May configure and write only "dev.*", read nothing.
    broker
        .set_permissions("dev", "/", "^dev\\.", "^dev\\.", "^$")
        .expect("permissions");
    let dev = Some("dev:dev");
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/dev.q", dev, "{}").await.0,
        201
    );
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/other", dev, "{}").await,
        (401, REFUSED.into())
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/exchanges/%2F/dev.x",
            dev,
            r#"{"type":"fanout"}"#
        )
        .await
        .0,
        201
    );
    assert_eq!(
        http(&b, "POST", "/api/bindings/%2F/e/dev.x/q/dev.q", dev, "{}").await,
        (401, REFUSED.into()),
        "binding needs read on the source exchange"
    );
    assert_eq!(
        http(&b, "POST", "/api/bindings/%2F/e/dev.x/q/dev.q", GUEST, "{}")
            .await
            .0,
        201
    );
    assert_eq!(
        http(
            &b,
            "POST",
            "/api/exchanges/%2F/dev.x/publish",
            dev,
            r#"{"properties":{},"routing_key":"","payload":"x","payload_encoding":"string"}"#
        )
        .await,
        (200, r#"{"routed":true}"#.into())
    );
    assert_eq!(
        http(
            &b,
            "POST",
            "/api/exchanges/%2F/amq.fanout/publish",
            dev,
            r#"{"properties":{},"routing_key":"","payload":"x","payload_encoding":"string"}"#
        )
        .await,
        bad(
            "403 ACCESS_REFUSED - access to exchange 'amq.fanout' in vhost '/' refused for user 'dev'"
        )
    );
    assert_eq!(
        http(
            &b,
            "POST",
            "/api/queues/%2F/dev.q/get",
            dev,
            r#"{"count":1,"ackmode":"ack_requeue_true","encoding":"auto"}"#
        )
        .await,
        (401, REFUSED.into())
    );
    assert_eq!(
        http(&b, "DELETE", "/api/queues/%2F/dev.q", dev, "").await.0,
        204
    );
}

#[tokio::test]
async fn lists_page_sort_filter_and_pick_columns_as_rabbitmq() {
    let b = start_http().await;
    for name in ["alpha", "beta", "gamma", "delta"] {
        let path = format!("/api/queues/%2F/{name}");
        assert_eq!(http(&b, "PUT", &path, GUEST, "{}").await.0, 201);
    }
    let (_, body) = http(
        &b,
        "GET",
        "/api/queues?page=1&page_size=3&columns=name",
        GUEST,
        "",
    )
    .await;
    assert_eq!(
        parse(&body),
        json!({"filtered_count":4,"item_count":3,"items":[{"name":"alpha"},{"name":"beta"},{"name":"delta"}],
               "page":1,"page_count":2,"page_size":3,"total_count":4})
    );
    let (_, body) = http(
        &b,
        "GET",
        "/api/queues/%2F?page=1&name=ta&columns=name,vhost",
        GUEST,
        "",
    )
    .await;
    assert_eq!(
        parse(&body)["items"],
        json!([{"name":"beta","vhost":"/"},{"name":"delta","vhost":"/"}])
    );
    let (_, body) = http(
        &b,
        "GET",
        "/api/queues?sort=name&sort_reverse=true&columns=name",
        GUEST,
        "",
    )
    .await;
    assert_eq!(
        parse(&body),
        json!([{"name":"gamma"},{"name":"delta"},{"name":"beta"},{"name":"alpha"}])
    );
    // A page in name order is cut before rendering: across vhosts with
    // sort=name, reversed, filtered, the same as the generic path would.
    assert_eq!(http(&b, "PUT", "/api/vhosts/v2", GUEST, "").await.0, 201);
    assert_eq!(
        http(&b, "PUT", "/api/queues/v2/beta2", GUEST, "{}").await.0,
        201
    );
    let (_, body) = http(
        &b,
        "GET",
        "/api/queues?page=1&page_size=2&sort=name&sort_reverse=true&name=ta&columns=name,vhost",
        GUEST,
        "",
    )
    .await;
    assert_eq!(
        parse(&body),
        json!({"filtered_count":3,"item_count":2,"items":[{"name":"delta","vhost":"/"},{"name":"beta2","vhost":"v2"}],
               "page":1,"page_count":2,"page_size":2,"total_count":5})
    );
    let (_, body) = http(
        &b,
        "GET",
        "/api/queues?page=1&page_size=2&sort=vhost&sort_reverse=true&columns=name",
        GUEST,
        "",
    )
    .await;
    assert_eq!(
        parse(&body)["items"][0],
        json!({"name":"beta2"}),
        "sorted by vhost"
    );
    let publish =
        r#"{"properties":{},"routing_key":"gamma","payload":"x","payload_encoding":"string"}"#;
    assert_eq!(
        http(
            &b,
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            GUEST,
            publish
        )
        .await
        .0,
        200
    );
    // Depths and statistics sort without rendering the queues.
    for sort in ["messages", "message_stats.publish"] {
        let path =
            format!("/api/queues?page=1&page_size=1&sort={sort}&sort_reverse=true&columns=name");
        let (_, body) = http(&b, "GET", &path, GUEST, "").await;
        assert_eq!(parse(&body)["items"], json!([{"name":"gamma"}]), "{sort}");
    }
    assert_eq!(
        http(&b, "GET", "/api/queues?page=1&page_size=600", GUEST, "").await,
        (400, r#"{"error":"invalid_pagination_parameters","reason":"Invalid pagination parameters: page number 1, page size 600"}"#.into())
    );
    assert_eq!(
        http(&b, "GET", "/api/exchanges?page=9&page_size=2", GUEST, "")
            .await
            .0,
        400
    );
}
