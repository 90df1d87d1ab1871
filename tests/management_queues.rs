//! The management API's /api/queues: depths, message counters and rates in
//! RabbitMQ's shape, and its 404 bodies.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use http::http;
use lapin::options::*;

const GUEST: Option<&str> = Some("guest:guest");

async fn start_sampling_fast() -> TestBroker {
    start_with(|c| {
        c.management_listen = vec!["127.0.0.1:0".parse().expect("addr")];
        c.collect_statistics_interval = 100;
    })
    .await
}

async fn queue_json(b: &TestBroker, path: &str) -> serde_json::Value {
    let (code, body) = http(b, "GET", path, GUEST, "").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[tokio::test]
async fn a_queue_shows_its_depths_and_counters() {
    let b = start_sampling_fast().await;
    let (_conn, ch) = b.channel().await;
    declare(&ch, "stats").await;
    for _ in 0..3 {
        publish(&ch, "", "stats", b"x").await;
    }
    // One taken and held unacknowledged, one taken and acked.
    let held = within(ch.basic_get("stats".into(), BasicGetOptions::default()))
        .await
        .expect("get")
        .expect("a message");
    let acked = within(ch.basic_get("stats".into(), BasicGetOptions::default()))
        .await
        .expect("get")
        .expect("a message");
    within(acked.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    let q = queue_json(&b, "/api/queues/%2F/stats").await;
    assert_eq!(q["name"], "stats");
    assert_eq!(q["vhost"], "/");
    assert_eq!(q["durable"], false);
    assert_eq!(q["state"], "running");
    assert_eq!(q["messages"], 2);
    assert_eq!(q["messages_ready"], 1);
    assert_eq!(q["messages_unacknowledged"], 1);
    assert_eq!(q["message_bytes"], 2);
    assert_eq!(q["consumers"], 0);
    assert!(
        q["consumer_utilisation"].is_null(),
        "none without consumers"
    );
    assert!(
        q["memory"].as_u64() > Some(2),
        "at least its messages' bytes"
    );
    assert!(q["policy"].is_null());
    assert_eq!(q["effective_policy_definition"], serde_json::json!({}));
    assert!(
        q["idle_since"]
            .as_str()
            .expect("idle_since")
            .ends_with("+00:00")
    );
    let s = &q["message_stats"];
    assert_eq!(s["publish"], 3);
    assert_eq!(s["get"], 2);
    assert_eq!(s["ack"], 1);
    assert_eq!(s["deliver_get"], 2);
    assert!(s["publish_details"]["rate"].is_number());
    drop(held);
    let all = queue_json(&b, "/api/queues").await;
    assert!(
        all.as_array()
            .expect("list")
            .iter()
            .any(|q| q["name"] == "stats")
    );
    let in_vhost = queue_json(&b, "/api/queues/%2F").await;
    assert_eq!(in_vhost.as_array().expect("list").len(), 1);
}

#[tokio::test]
async fn publish_rates_come_from_the_sampler() {
    let b = start_sampling_fast().await;
    let (_conn, ch) = b.channel().await;
    declare(&ch, "rated").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        for _ in 0..50 {
            publish(&ch, "", "rated", b"x").await;
        }
        let q = queue_json(&b, "/api/queues/%2F/rated").await;
        let rate = q["message_stats"]["publish_details"]["rate"]
            .as_f64()
            .expect("rate");
        if rate > 0.0 {
            assert!(q["messages_details"]["rate"].as_f64().expect("rate") > 0.0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no rate: {q}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn unknown_queues_and_vhosts_are_rabbitmqs_404s() {
    let b = start_sampling_fast().await;
    assert_eq!(
        http(&b, "GET", "/api/queues/%2F/nothing", GUEST, "").await,
        (
            404,
            r#"{"error":"Object Not Found","reason":"Not Found"}"#.into()
        )
    );
    assert_eq!(
        http(&b, "GET", "/api/queues/nowhere", GUEST, "").await,
        (
            404,
            r#"{"error":"not_found","reason":"vhost_not_found"}"#.into()
        )
    );
    assert_eq!(http(&b, "GET", "/api/queues", None, "").await.0, 401);
}

#[tokio::test]
async fn a_page_of_queues_shows_queues_as_they_come_and_go() {
    let b = start_sampling_fast().await;
    let (_conn, ch) = b.channel().await;
    let page = "/api/queues?page=1&page_size=10&columns=name";
    let names = |v: serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|q| q["name"].as_str().expect("name").to_string())
            .collect()
    };
    declare(&ch, "order.b").await;
    assert_eq!(names(queue_json(&b, page).await), ["order.b"]);
    declare(&ch, "order.a").await;
    assert_eq!(names(queue_json(&b, page).await), ["order.a", "order.b"]);
    within(ch.queue_delete("order.b".into(), Default::default()))
        .await
        .expect("delete");
    assert_eq!(names(queue_json(&b, page).await), ["order.a"]);
}

#[tokio::test]
async fn consumers_that_keep_up_are_fully_utilised() {
    let b = start_sampling_fast().await;
    let (_conn, ch) = b.channel().await;
    declare(&ch, "kept.up").await;
    let _consumer = consume(&ch, "kept.up", true).await;
    publish(&ch, "", "kept.up", b"x").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let q = queue_json(&b, "/api/queues/%2F/kept.up").await;
        if q["consumer_utilisation"].as_f64() == Some(1.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{q}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
