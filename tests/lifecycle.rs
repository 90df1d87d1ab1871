//! Handshake rules, heartbeats and graceful shutdown.
mod common;
#[path = "common/raw.rs"]
mod raw;
use common::*;
use futures_lite::StreamExt;
use lapin::{Connection, ConnectionProperties};
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn wrong_password_is_refused_with_403() {
    let b = start().await;
    let url = b.url.replace("guest:guest", "guest:wrong");
    let err = within(Connection::connect(&url, ConnectionProperties::default()))
        .await
        .expect_err("refused");
    assert_eq!(reply_code(&err), Some(403), "{err:?}");
}

#[tokio::test]
async fn unknown_vhost_is_refused_with_530() {
    let b = start().await;
    let url = b.url.replace("/%2f", "/nowhere");
    let err = within(Connection::connect(&url, ConnectionProperties::default()))
        .await
        .expect_err("refused");
    assert_eq!(reply_code(&err), Some(530), "{err:?}");
}

#[tokio::test]
async fn a_handshake_that_never_finishes_is_dropped() {
    let b = start_with(|c| c.handshake_timeout_ms = 300).await;
    let mut s = tokio::net::TcpStream::connect(b.addr)
        .await
        .expect("connect");
    let mut buf = vec![];
    // Say nothing; the broker must hang up on its own.
    let n = within(s.read_to_end(&mut buf)).await.expect("eof");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn silent_client_is_disconnected_after_two_heartbeat_intervals() {
    let b = start_with(|c| c.heartbeat = 1).await;
    // Negotiate a 1 s heartbeat, then say nothing at all.
    let mut s = tokio::net::TcpStream::connect(b.addr)
        .await
        .expect("connect");
    use tokio::io::AsyncWriteExt;
    s.write_all(b"AMQP\x00\x00\x09\x01").await.expect("w");
    let mut args = 0u32.to_be_bytes().to_vec();
    args.extend(raw::short_str("PLAIN"));
    args.extend_from_slice(&12u32.to_be_bytes());
    args.extend_from_slice(b"\0guest\0guest");
    args.extend(raw::short_str("en_US"));
    s.write_all(&raw::method(0, 10, 11, &args))
        .await
        .expect("w");
    s.write_all(&raw::method(0, 10, 31, &[0x07, 0xFF, 0, 2, 0, 0, 0, 1]))
        .await
        .expect("w");
    let mut open = raw::short_str("/");
    open.extend_from_slice(&[0, 0]);
    s.write_all(&raw::method(0, 10, 40, &open))
        .await
        .expect("w");
    let started = std::time::Instant::now();
    let mut buf = vec![];
    within(s.read_to_end(&mut buf)).await.expect("eof");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "dropped too early: {waited:?}"
    );
    // The broker heartbeated us meanwhile.
    assert!(buf.windows(8).any(|w| w == [8, 0, 0, 0, 0, 0, 0, 0xCE]));
}

#[tokio::test]
async fn shutdown_closes_connections_with_320() {
    let mut b = start().await;
    let c = b.connect().await;
    let mut events = c.events_listener();
    b.shutdown().await;
    let code = within(async {
        while let Some(ev) = events.next().await {
            if let lapin::Event::Error(e) = ev {
                return reply_code(&e);
            }
        }
        None
    })
    .await;
    assert_eq!(code, Some(320));
}

/// A vhost created while the broker runs gets its timers too: a TTL there
/// expires and dead-letters on time.
#[tokio::test]
async fn a_vhost_created_at_runtime_expires_messages() {
    let b = start().await;
    let broker = &b.running.as_ref().expect("running").broker;
    broker.add_vhost("later").expect("vhost");
    broker
        .set_permissions("guest", "later", ".*", ".*", ".*")
        .expect("permissions");
    let url = b.url.replace("/%2f", "/later");
    let c = within(Connection::connect(&url, ConnectionProperties::default()))
        .await
        .expect("connect to the new vhost");
    let ch = within(c.create_channel()).await.expect("channel");
    declare(&ch, "dead").await;
    let mut args = lapin::types::FieldTable::default();
    args.insert("x-message-ttl".into(), lapin::types::AMQPValue::LongInt(1));
    args.insert(
        "x-dead-letter-exchange".into(),
        lapin::types::AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        lapin::types::AMQPValue::LongString("dead".into()),
    );
    within(ch.queue_declare("brief".into(), Default::default(), args))
        .await
        .expect("declare");
    let mut dead = consume(&ch, "dead", true).await;
    publish(&ch, "", "brief", b"gone soon").await;
    assert_eq!(next(&mut dead).await.data, b"gone soon");
}
