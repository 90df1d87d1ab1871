//! message_stats of exchanges and vhosts over HTTP: what was published to an
//! exchange and routed out of it, and the vhost's queues' counters summed,
//! with rates from the sampler.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use http::http;
use serde_json::Value;
use std::time::{Duration, Instant};

const GUEST: Option<&str> = Some("guest:guest");

async fn get_json(b: &TestBroker, path: &str) -> Value {
    let (code, body) = http(b, "GET", path, GUEST, "").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

async fn start_sampling_fast() -> TestBroker {
    start_with(|c| {
        c.management_listen = vec!["127.0.0.1:0".parse().expect("addr")];
        c.collect_statistics_interval = 100;
    })
    .await
}

/// GET `path` until `ok` holds of it (the sampler runs every 100 ms).
async fn eventually(b: &TestBroker, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = get_json(b, path).await;
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never matched: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_exchange_counts_what_was_published_to_it_and_routed_out() {
    let b = start_sampling_fast().await;
    let (_c, ch) = b.channel().await;
    within(ch.exchange_declare(
        "fan.stats".into(),
        lapin::ExchangeKind::Fanout,
        Default::default(),
        Default::default(),
    ))
    .await
    .expect("declare");
    let x = get_json(&b, "/api/exchanges/%2F/fan.stats").await;
    assert!(x.get("message_stats").is_none(), "none before traffic: {x}");
    for q in ["fan.a", "fan.b"] {
        declare(&ch, q).await;
        bind(&ch, q, "fan.stats", "").await;
    }
    for _ in 0..3 {
        publish(&ch, "fan.stats", "", b"m").await;
    }
    // Over HTTP too: the same counters.
    let (code, _) = http(
        &b,
        "POST",
        "/api/exchanges/%2F/fan.stats/publish",
        GUEST,
        r#"{"properties":{},"routing_key":"","payload":"h","payload_encoding":"string"}"#,
    )
    .await;
    assert_eq!(code, 200);
    let x = eventually(&b, "/api/exchanges/%2F/fan.stats", |x| {
        x["message_stats"]["publish_in"] == 4 && x["message_stats"]["publish_out"] == 8
    })
    .await;
    assert!(x["message_stats"]["publish_in_details"]["rate"].is_f64());

    // Unroutable: published in, nothing out.
    publish(&ch, "amq.direct", "nowhere", b"lost").await;
    let x = eventually(&b, "/api/exchanges/%2F/amq.direct", |x| {
        x["message_stats"]["publish_in"] == 1
    })
    .await;
    assert!(x["message_stats"].get("publish_out").is_none(), "{x}");

    // The vhost: one publish per message published, whatever it reached;
    // the rest summed over its queues.
    let v = eventually(&b, "/api/vhosts/%2F", |v| {
        v["message_stats"]["publish"] == 5
    })
    .await;
    assert_eq!(v["message_stats"]["deliver_get"], 0);
    let (_, o) = http(&b, "GET", "/api/overview", GUEST, "").await;
    let o: Value = serde_json::from_str(&o).expect("json");
    assert_eq!(o["message_stats"]["publish"], 5);
    assert_eq!(v["messages"], 8);
    assert_eq!(v["messages_ready"], 8);

    // Rates move while messages flow.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        publish(&ch, "fan.stats", "", b"m").await;
        let x = get_json(&b, "/api/exchanges/%2F/fan.stats").await;
        let rate = |k: &str| x["message_stats"][k]["rate"].as_f64().unwrap_or(0.0);
        if rate("publish_in_details") > 0.0 && rate("publish_out_details") > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "rates never moved: {x}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_vhost_counts_its_channels_confirms_and_unroutables_after_they_close() {
    let b = start_sampling_fast().await;
    let (conn, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirm mode");
    declare(&ch, "counted").await;
    let opts = lapin::options::BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    for (exchange, key, opts) in [
        ("", "counted", Default::default()),
        ("amq.direct", "nowhere", opts),
        ("amq.direct", "nowhere", Default::default()),
    ] {
        within(async {
            ch.basic_publish(exchange.into(), key.into(), opts, b"m", Default::default())
                .await
                .expect("publish")
                .await
                .expect("confirm")
        })
        .await;
    }
    within(conn.close(200, "bye".into())).await.expect("close");
    let v = eventually(&b, "/api/vhosts/%2F", |v| {
        v["message_stats"]["confirm"] == 3
    })
    .await;
    let stats = &v["message_stats"];
    assert_eq!(stats["return_unroutable"], 1, "{v}");
    assert_eq!(stats["drop_unroutable"], 1, "{v}");
    assert_eq!(stats["publish"], 3, "{v}");
    assert!(stats["confirm_details"]["rate"].is_f64());
    let (_, o) = http(&b, "GET", "/api/overview", GUEST, "").await;
    let o: Value = serde_json::from_str(&o).expect("json");
    assert_eq!(o["message_stats"]["confirm"], 3);
    assert_eq!(o["message_stats"]["return_unroutable"], 1);
}
