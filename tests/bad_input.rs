//! Bad input gets RabbitMQ's reply code, closes only what RabbitMQ closes,
//! and disturbs neither the broker nor other connections.
mod common;
#[path = "common/raw.rs"]
mod raw;
use common::*;
use raw::{Outcome, Peer};

async fn outcome_of(b: &TestBroker, bytes: Vec<u8>) -> Outcome {
    let mut p = Peer::connect(b.addr).await;
    p.open_channel(1).await;
    p.send(&bytes).await;
    let o = p.outcome().await;
    if matches!(o, Outcome::ConnectionClose(_)) {
        p.expect_eof().await;
    }
    o
}

/// A bystander connection that must keep working through all of it.
async fn bystander_still_works(b: &TestBroker, ch: &lapin::Channel) {
    publish(ch, "", "bystander", b"still here").await;
    let m = get(ch, "bystander").await.expect("bystander message");
    assert_eq!(m.delivery.data, b"still here");
    let _ = b;
}

#[tokio::test]
async fn frame_level_garbage_is_a_connection_error() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "bystander").await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown frame type", raw::frame(9, 1, b"xx"), 501),
        (
            "bad frame end",
            {
                let mut f = raw::method(1, 20, 10, &[0]);
                let n = f.len();
                f[n - 1] = 0;
                f
            },
            501,
        ),
        ("truncated method args", raw::method(1, 50, 10, &[0]), 501),
        (
            "method on unopened channel",
            raw::queue_declare(5, "q"),
            504,
        ),
        ("header without publish", raw::header(1, 5), 505),
        ("body without publish", raw::frame(3, 1, b"abc"), 505),
        (
            "method where content was due",
            [raw::publish(1, "", "q"), raw::method(1, 20, 10, &[0])].concat(),
            505,
        ),
        ("heartbeat on a channel", raw::frame(8, 1, b""), 505),
        ("second channel.open", raw::method(1, 20, 10, &[0]), 504),
        ("queue method on channel 0", raw::queue_declare(0, "q"), 504),
        (
            "immediate publish",
            {
                let mut a = vec![0, 0];
                a.extend(raw::short_str(""));
                a.extend(raw::short_str("q"));
                a.push(2);
                [raw::method(1, 60, 40, &a), raw::header(1, 0)].concat()
            },
            540,
        ),
        (
            "prefetch_size",
            raw::method(1, 60, 10, &[0, 0, 0, 5, 0, 0, 0]),
            540,
        ),
        (
            "channel.flow active=false",
            raw::method(1, 20, 20, &[0]),
            540,
        ),
        (
            "unknown exchange type",
            {
                let mut a = vec![0, 0];
                a.extend(raw::short_str("e1"));
                a.extend(raw::short_str("bogus"));
                a.push(0);
                a.extend_from_slice(&0u32.to_be_bytes());
                raw::method(1, 40, 10, &a)
            },
            503,
        ),
    ];
    for (name, bytes, code) in cases {
        assert_eq!(
            outcome_of(&b, bytes).await,
            Outcome::ConnectionClose(code),
            "{name}"
        );
        bystander_still_works(&b, &ch).await;
    }
}

#[tokio::test]
async fn oversized_frame_is_rejected_before_it_is_buffered() {
    let b = start().await;
    let mut p = Peer::connect(b.addr).await;
    p.open_channel(1).await;
    // Announce a 1 GiB body frame and send only its header: the broker must
    // answer from the 7-byte header alone.
    let mut hdr = vec![3u8, 0, 1];
    hdr.extend_from_slice(&(1u32 << 30).to_be_bytes());
    p.send(&hdr).await;
    assert_eq!(p.outcome().await, Outcome::ConnectionClose(501));
}

#[tokio::test]
async fn unknown_methods_and_overlong_bodies_end_the_connection() {
    let b = start().await;
    // RabbitMQ drops the socket for these; we send a Close first. Either way
    // the connection ends and nothing else is disturbed.
    for bytes in [
        raw::method(1, 99, 10, &[]),
        raw::method(1, 60, 99, &[]),
        [
            raw::publish(1, "", "q"),
            raw::header(1, 2),
            raw::frame(3, 1, b"abcd"),
        ]
        .concat(),
    ] {
        match outcome_of(&b, bytes).await {
            Outcome::ConnectionClose(_) | Outcome::Dropped => {}
            other => panic!("expected the connection to end, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn soft_errors_close_only_the_channel() {
    let b = start().await;
    let mut p = Peer::connect(b.addr).await;
    p.open_channel(1).await;
    p.open_channel(2).await;
    p.send(&raw::method(1, 60, 80, &[0, 0, 0, 0, 0, 0, 0, 5, 0]))
        .await;
    assert_eq!(p.outcome().await, Outcome::ChannelClose(406));
    p.send(&raw::queue_declare(2, "amq.reserved")).await;
    assert_eq!(p.outcome().await, Outcome::ChannelClose(403));
    // The connection is alive: a new channel 1 opens and works.
    p.open_channel(1).await;
    p.send(&raw::queue_declare(1, "fine")).await;
    p.expect(50, 11).await;
}

#[tokio::test]
async fn wrong_protocol_header_gets_ours_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = start().await;
    let mut s = tokio::net::TcpStream::connect(b.addr)
        .await
        .expect("connect");
    s.write_all(b"AMQP\x01\x01\x00\x0a").await.expect("write");
    let mut got = vec![];
    within(s.read_to_end(&mut got)).await.expect("read");
    assert_eq!(got, b"AMQP\x00\x00\x09\x01");
}

#[tokio::test]
async fn a_client_vanishing_mid_message_loses_nothing_else() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "bystander").await;
    for _ in 0..20 {
        let mut p = Peer::connect(b.addr).await;
        p.open_channel(1).await;
        let mut bytes = raw::publish(1, "", "bystander");
        bytes.extend(raw::header(1, 1000));
        bytes.extend(&raw::frame(3, 1, &[1u8; 400])[..100]);
        p.send(&bytes).await;
        drop(p);
    }
    bystander_still_works(&b, &ch).await;
    assert_eq!(
        depth(&ch, "bystander").await,
        0,
        "half-sent messages are not enqueued"
    );
}
