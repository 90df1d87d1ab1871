//! Prometheus metrics on rabbitmq_prometheus's paths: queue depths per
//! object and summed, counters that move with publishing and consuming and
//! stay when channels and queues go, /metrics/detailed's vhost filter, and
//! `promtool check metrics` on every endpoint.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use lapin::options::*;
use std::time::{Duration, Instant};

async fn start_prometheus() -> TestBroker {
    start_with(|c| c.prometheus_listen = vec!["127.0.0.1:0".parse().expect("addr")]).await
}

/// GET a metrics path: (status, head, body).
async fn scrape_full(b: &TestBroker, path: &str) -> (u16, String, String) {
    let addr = b.running.as_ref().expect("running").prometheus_addrs[0];
    http::http_at(addr, "GET", path, None, "").await
}

async fn scrape(b: &TestBroker, path: &str) -> String {
    let (code, _, body) = scrape_full(b, path).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// The value of one series (name and labels exactly as written).
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Scrape until `series` reads `want`: statistics are read at scrape time,
/// but a publish reaches its queue after basic_publish returns.
async fn wait_for(b: &TestBroker, path: &str, series: &str, want: f64) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = scrape(b, path).await;
        if value(&body, series) == Some(want) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never read {want}; last scrape:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn counter(body: &str, series: &str) -> f64 {
    value(body, series).unwrap_or_else(|| panic!("no {series} in:\n{body}"))
}

#[tokio::test]
async fn queue_depths_show_per_object_and_summed() {
    let b = start_prometheus().await;
    let (_conn, ch) = b.channel().await;
    declare(&ch, "q").await;
    for _ in 0..5 {
        publish(&ch, "", "q", b"hello").await;
    }
    let per = wait_for(
        &b,
        "/metrics/per-object",
        r#"rabbitmq_queue_messages_ready{vhost="/",queue="q"}"#,
        5.0,
    )
    .await;
    assert_eq!(
        value(
            &per,
            r#"rabbitmq_queue_messages_ready_bytes{vhost="/",queue="q"}"#
        ),
        Some(25.0)
    );
    let agg = scrape(&b, "/metrics").await;
    assert_eq!(value(&agg, "rabbitmq_queues"), Some(1.0));
    assert_eq!(value(&agg, "rabbitmq_queue_messages_ready"), Some(5.0));
    assert_eq!(value(&agg, "rabbitmq_connections"), Some(1.0));
    assert_eq!(value(&agg, "rabbitmq_channels"), Some(1.0));
    // Aggregated: no per-queue series.
    assert!(!agg.contains("queue=\""), "{agg}");
    let identity = agg
        .lines()
        .find(|l| l.starts_with("rabbitmq_identity_info{"))
        .expect("identity info");
    for label in [
        "rabbitmq_node=",
        "rabbitmq_cluster=",
        "rabbitmq_cluster_permanent_id=",
    ] {
        assert!(identity.contains(label), "{identity}");
    }
    assert!(
        agg.contains("# TYPE rabbitmq_build_info untyped\n"),
        "{agg}"
    );
}

#[tokio::test]
async fn counters_move_with_traffic_and_outlive_channels_and_queues() {
    let b = start_prometheus().await;
    let conn = b.connect().await;
    let ch = within(conn.create_channel()).await.expect("channel");
    declare(&ch, "q").await;
    for _ in 0..4 {
        publish(&ch, "", "q", b"x").await;
    }
    // Unroutable, not mandatory: dropped.
    publish(&ch, "", "nowhere", b"x").await;
    let mut c = consume(&ch, "q", false).await;
    for _ in 0..4 {
        let d = next(&mut c).await;
        within(d.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    let agg = wait_for(&b, "/metrics", "rabbitmq_channel_messages_acked_total", 4.0).await;
    assert_eq!(
        counter(&agg, "rabbitmq_channel_messages_published_total"),
        5.0
    );
    assert_eq!(
        counter(&agg, "rabbitmq_channel_messages_unroutable_dropped_total"),
        1.0
    );
    assert_eq!(
        counter(&agg, "rabbitmq_channel_messages_delivered_ack_total"),
        4.0
    );
    assert_eq!(
        counter(
            &agg,
            r#"rabbitmq_global_messages_received_total{protocol="amqp091"}"#
        ),
        5.0
    );
    assert_eq!(
        counter(
            &agg,
            r#"rabbitmq_global_messages_routed_total{protocol="amqp091"}"#
        ),
        4.0
    );
    assert_eq!(
        counter(&agg, "rabbitmq_queue_messages_published_total"),
        4.0
    );
    assert_eq!(counter(&agg, "rabbitmq_consumers"), 1.0);
    // Five one-byte bodies: all in the first bucket.
    let size = |s: &str| format!("rabbitmq_message_size_bytes{s}");
    assert_eq!(
        counter(&agg, &size(r#"_bucket{protocol="amqp091",le="100"}"#)),
        5.0
    );
    assert_eq!(counter(&agg, &size(r#"_sum{protocol="amqp091"}"#)), 5.0);
    assert_eq!(counter(&agg, &size(r#"_count{protocol="amqp091"}"#)), 5.0);
    assert_eq!(counter(&agg, "rabbitmq_connections_opened_total"), 1.0);
    assert_eq!(counter(&agg, "rabbitmq_channels_opened_total"), 1.0);
    assert!(counter(&agg, "rabbitmq_queues_declared_total") >= 1.0);
    assert_eq!(counter(&agg, "rabbitmq_queues_created_total"), 1.0);

    // Closing the channel and deleting the queue keep what they counted.
    within(ch.queue_delete("q".into(), QueueDeleteOptions::default()))
        .await
        .expect("delete");
    within(ch.close(200, "bye".into())).await.expect("close");
    let agg = wait_for(&b, "/metrics", "rabbitmq_channels_closed_total", 1.0).await;
    assert_eq!(counter(&agg, "rabbitmq_queues_deleted_total"), 1.0);
    assert_eq!(counter(&agg, "rabbitmq_queues"), 0.0);
    assert_eq!(counter(&agg, "rabbitmq_channels"), 0.0);
    assert_eq!(counter(&agg, "rabbitmq_channel_messages_acked_total"), 4.0);
    assert_eq!(
        counter(&agg, "rabbitmq_channel_messages_published_total"),
        5.0
    );
    let received = counter(&agg, "rabbitmq_connection_incoming_bytes_total");
    within(conn.close(200, "bye".into())).await.expect("close");
    let agg = wait_for(&b, "/metrics", "rabbitmq_connections_closed_total", 1.0).await;
    assert_eq!(counter(&agg, "rabbitmq_connections"), 0.0);
    assert!(counter(&agg, "rabbitmq_connection_incoming_bytes_total") >= received);
    assert_eq!(
        counter(&agg, "rabbitmq_channel_messages_published_total"),
        5.0
    );
}

#[tokio::test]
async fn detailed_metrics_are_filtered_by_family_and_vhost() {
    let b = start_prometheus().await;
    let (_conn, ch) = b.channel().await;
    declare(&ch, "q").await;
    publish(&ch, "", "q", b"x").await;
    let ready = r#"rabbitmq_detailed_queue_messages_ready{vhost="/",queue="q"}"#;
    let body = wait_for(
        &b,
        "/metrics/detailed?family=queue_coarse_metrics&vhost=%2F",
        ready,
        1.0,
    )
    .await;
    assert!(
        !body.contains("rabbitmq_detailed_queue_consumers"),
        "{body}"
    );
    assert!(!body.contains("rabbitmq_queue_messages_ready"), "{body}");
    assert!(body.contains("rabbitmq_identity_info{"), "{body}");
    let other = scrape(
        &b,
        "/metrics/detailed?family=queue_coarse_metrics&vhost=other",
    )
    .await;
    assert!(!other.contains("queue=\"q\""), "{other}");
    let both = scrape(
        &b,
        "/metrics/detailed?family=queue_consumer_count&family=queue_metrics",
    )
    .await;
    assert_eq!(
        value(
            &both,
            r#"rabbitmq_detailed_queue_consumers{vhost="/",queue="q"}"#
        ),
        Some(0.0)
    );
    // Both families carry consumers; the family is written once.
    assert_eq!(
        both.matches("# TYPE rabbitmq_detailed_queue_consumers ")
            .count(),
        1
    );
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text_without_auth() {
    let b = start_prometheus().await;
    let (code, head, _) = scrape_full(&b, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
}

/// promtool, unless it is missing outside CI (where .ci/run installs it).
fn promtool() -> Option<&'static str> {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("promtool");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "promtool is missing (apt-get install prometheus); CI must run this test"
    );
    eprintln!("promtool not installed: skipping");
    None
}

#[tokio::test]
async fn every_endpoint_passes_promtool_check_metrics() {
    let Some(promtool) = promtool() else { return };
    let b = start_prometheus().await;
    let (_conn, ch) = b.channel().await;
    declare(&ch, "q").await;
    declare(&ch, "with \"quotes\" \\ and\nnewline").await;
    publish(&ch, "", "q", b"x").await;
    let _c = consume(&ch, "q", false).await;
    for path in [
        "/metrics",
        "/metrics/per-object",
        "/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count&family=queue_metrics",
        "/metrics/detailed?family=queue_coarse_metrics&vhost=%2F",
    ] {
        let body = scrape(&b, path).await;
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(body.as_bytes()).expect("write to promtool");
        }
        let out = child.wait_with_output().expect("promtool finishes");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "promtool on {path}: {said}\n{body}"
        );
    }
}

#[tokio::test]
async fn confirms_are_counted() {
    let b = start_prometheus().await;
    let (_conn, ch) = b.channel().await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm.select");
    declare(&ch, "q").await;
    for _ in 0..3 {
        publish_persistent(&ch, "", "q", b"x").await;
    }
    let agg = wait_for(
        &b,
        "/metrics",
        "rabbitmq_channel_messages_confirmed_total",
        3.0,
    )
    .await;
    assert_eq!(counter(&agg, "rabbitmq_channel_messages_unconfirmed"), 0.0);
    assert_eq!(
        counter(
            &agg,
            r#"rabbitmq_global_messages_received_confirm_total{protocol="amqp091"}"#
        ),
        3.0
    );
    assert_eq!(
        counter(
            &agg,
            r#"rabbitmq_global_messages_confirmed_total{protocol="amqp091"}"#
        ),
        3.0
    );
}
