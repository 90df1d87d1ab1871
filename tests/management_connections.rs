//! The management API's /api/connections: the open connections with
//! RabbitMQ's fields, and DELETE closing one with 320 CONNECTION_FORCED.
mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/raw.rs"]
mod raw;
use common::*;
use http::{http, start_http};

const GUEST: Option<&str> = Some("guest:guest");

fn connections(body: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(body)
        .expect("json")
        .as_array()
        .expect("a list")
        .clone()
}

#[tokio::test]
async fn connections_are_listed_with_rabbitmqs_fields() {
    let b = start_http().await;
    let props = lapin::ConnectionProperties::default().with_connection_name("orders-api".into());
    let c = within(lapin::Connection::connect(&b.url, props))
        .await
        .expect("connect");
    // A channel round trip: the connection task (which registers it) runs.
    let _ch = within(c.create_channel()).await.expect("channel");
    let (code, body) = http(&b, "GET", "/api/connections/", GUEST, "").await;
    assert_eq!(code, 200);
    let list = connections(&body);
    let c = list
        .iter()
        .find(|c| c["client_properties"]["connection_name"] == "orders-api")
        .expect("the named connection");
    let name = c["name"].as_str().expect("name");
    assert!(name.starts_with("127.0.0.1:") && name.ends_with(&format!(" -> {}", b.addr)));
    assert_eq!(c["user"], "guest");
    assert_eq!(c["vhost"], "/");
    assert_eq!(c["user_provided_name"], "orders-api");
    assert_eq!(c["state"], "running");
    assert_eq!(c["protocol"], "AMQP 0-9-1");
    assert_eq!(c["channels"], 1);
    assert!(c["recv_oct"].as_u64().expect("recv_oct") > 0);
    assert!(c["recv_cnt"].as_u64().expect("recv_cnt") > 0);
    assert!(c["send_oct_details"]["rate"].is_number());
    let (code, _) = http(&b, "GET", "/api/vhosts/%2F/connections", GUEST, "").await;
    assert_eq!(code, 200);
}

async fn only_connection_name(b: &TestBroker) -> String {
    let (_, body) = http(b, "GET", "/api/connections", GUEST, "").await;
    let list = connections(&body);
    assert_eq!(list.len(), 1, "{body}");
    list[0]["name"].as_str().expect("name").to_string()
}

fn path_of(name: &str) -> String {
    format!(
        "/api/connections/{}",
        name.replace(' ', "%20").replace('>', "%3E")
    )
}

#[tokio::test]
async fn delete_closes_the_connection_with_320_and_the_reason() {
    let b = start_http().await;
    let mut p = raw::Peer::connect(b.addr).await;
    p.open_channel(1).await;
    let name = only_connection_name(&b).await;
    assert_eq!(http(&b, "DELETE", &path_of(&name), GUEST, "").await.0, 204);
    let (ch, code, text) = p.next_close().await.expect("close");
    assert_eq!(
        (ch, code, text.as_str()),
        (0, 320, "CONNECTION_FORCED - Closed via management plugin")
    );
    assert_eq!(
        http(&b, "DELETE", "/api/connections/nobody", GUEST, "").await,
        (
            404,
            r#"{"error":"Object Not Found","reason":"Not Found"}"#.into()
        )
    );
}

#[tokio::test]
async fn bytes_sent_are_counted_once_written() {
    let b = start_http().await;
    let mut p = raw::Peer::connect(b.addr).await;
    p.open_channel(1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, body) = http(&b, "GET", "/api/connections", GUEST, "").await;
        let c = connections(&body).pop().expect("one connection");
        // Channel.Open-Ok went out (the handshake is not counted).
        if c["send_oct"].as_u64().expect("send_oct") > 0 {
            assert!(c["send_cnt"].as_u64().expect("send_cnt") > 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing counted: {c}");
        tokio::task::yield_now().await;
    }
}
