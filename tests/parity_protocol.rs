//! Connection- and channel-level behaviour where real clients' suites
//! caught us differing from RabbitMQ: closing, channel_max, IPv6, identity,
//! declare and unbind edge cases, expiration and user_id checks.
mod common;
#[path = "common/raw.rs"]
mod raw;
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use raw::Peer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client that sends Connection.Close with more frames behind it still
/// gets its Close-Ok, and the broker keeps the socket until the client
/// hangs up: it reads a clean EOF, not a reset.
#[tokio::test]
async fn close_ok_reaches_a_client_with_frames_still_buffered() {
    let b = start().await;
    let mut p = Peer::connect(b.addr).await;
    p.open_channel(1).await;
    let mut burst = raw::method(0, 10, 50, &[0, 200, 0, 0, 0, 0, 0]);
    burst.extend(raw::frame(8, 0, &[]));
    burst.extend(raw::publish(1, "", "nowhere"));
    burst.extend(raw::header(1, 3));
    burst.extend(raw::frame(3, 1, b"abc"));
    p.send(&burst).await;
    p.expect(10, 51).await;
    // Still open: more bytes are taken (and dropped) without a reset.
    p.send(&raw::frame(8, 0, &[])).await;
    p.sock.shutdown().await.expect("shutdown write");
    let mut rest = Vec::new();
    let n = within(p.sock.read_to_end(&mut rest))
        .await
        .expect("a clean EOF after our own shutdown, not a reset");
    assert_eq!(n, 0, "nothing follows Close-Ok");
}

#[tokio::test]
async fn channel_max_limits_how_many_channels_are_open_not_their_numbers() {
    let b = start().await;
    let (mut p, _) = Peer::connect_tuned(b.addr, 4).await;
    for ch in [100, 65535, 1, 2] {
        p.open_channel(ch).await;
    }
    // Closing one frees a slot.
    p.send(&raw::method(2, 20, 40, &[0, 200, 0, 0, 0, 0, 0]))
        .await;
    p.expect(20, 41).await;
    p.open_channel(3).await;
    p.send(&raw::method(7, 20, 10, &[0])).await;
    let (ch, code, text) = p.next_close().await.expect("connection close");
    assert_eq!((ch, code), (0, 530));
    assert_eq!(
        text,
        "NOT_ALLOWED - number of channels opened (4) has reached the negotiated channel_max (4)"
    );
}

#[tokio::test]
async fn ipv6_loopback_and_dual_stack_listeners_work() {
    let b = start_with(|c| {
        c.listen = vec!["[::]:0".parse().expect("addr")];
    })
    .await;
    let port = b.addr.port();
    for url in [
        format!("amqp://guest:guest@[::1]:{port}/%2f"),
        format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
    ] {
        let c = within(lapin::Connection::connect(&url, Default::default()))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        within(c.close(200, "bye".into())).await.expect("close");
    }
    let only6 = start_with(|c| c.listen = vec!["[::1]:0".parse().expect("addr")]).await;
    assert!(only6.addr.is_ipv6());
    // The raw peer logs in as guest: ::1 counts as loopback.
    let mut p = Peer::connect(only6.addr).await;
    p.open_channel(1).await;
    // And over the dual-stack listener, both families by address.
    for addr in [format!("[::1]:{port}"), format!("127.0.0.1:{port}")] {
        let mut p = Peer::connect(addr.parse().expect("addr")).await;
        p.open_channel(1).await;
    }
}

fn has_longstr(props: &[u8], key: &str, value: Option<&str>) -> bool {
    let mut pat = raw::short_str(key);
    pat.push(b'S');
    let Some(at) = props.windows(pat.len()).position(|w| w == pat.as_slice()) else {
        return false;
    };
    let v = &props[at + pat.len()..];
    let n = u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as usize;
    value.is_none_or(|want| &v[4..4 + n] == want.as_bytes())
}

#[tokio::test]
async fn server_properties_are_rabbitmqs_and_product_is_configurable() {
    let b = start().await;
    let (_p, start_args) = Peer::connect_tuned(b.addr, 0).await;
    for key in [
        "product",
        "version",
        "platform",
        "cluster_name",
        "copyright",
        "information",
    ] {
        assert!(has_longstr(&start_args, key, None), "{key} as a longstr");
    }
    assert!(has_longstr(&start_args, "product", Some("ferretmq")));
    let b = start_with(|c| {
        c.product = "RabbitMQ".into();
        c.product_version = Some("3.13.7".into());
        c.cluster_name = "rabbit@ci".into();
    })
    .await;
    let (_p, start_args) = Peer::connect_tuned(b.addr, 0).await;
    assert!(has_longstr(&start_args, "product", Some("RabbitMQ")));
    assert!(has_longstr(&start_args, "version", Some("3.13.7")));
    assert!(has_longstr(&start_args, "cluster_name", Some("rabbit@ci")));
}

async fn publish_close(b: &TestBroker, header: Vec<u8>) -> (u16, u16, String) {
    let mut p = Peer::connect(b.addr).await;
    p.open_channel(1).await;
    let mut m = raw::publish(1, "", "q");
    m.extend(header);
    m.extend(raw::frame(3, 1, b"x"));
    p.send(&m).await;
    p.next_close().await.expect("a close")
}

#[tokio::test]
async fn a_bad_expiration_closes_the_channel_with_rabbitmqs_text() {
    let b = start().await;
    for (exp, why) in [
        ("abc", "no_integer"),
        ("-1", "{value_negative,-1}"),
        ("1.5", "{leftover_string,\".5\"}"),
        ("315360000001", "{value_too_large,315360000001}"),
    ] {
        let (ch, code, text) = publish_close(&b, raw::header_with_expiration(1, 1, exp)).await;
        assert_eq!((ch, code), (1, 406), "{exp}");
        assert_eq!(
            text,
            format!("PRECONDITION_FAILED - invalid expiration '{exp}': {why}")
        );
    }
}

#[tokio::test]
async fn a_user_id_that_is_not_the_users_is_refused() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "uid").await;
    let props = lapin::BasicProperties::default().with_user_id("guest".into());
    within(ch.basic_publish("".into(), "uid".into(), Default::default(), b"ok", props))
        .await
        .expect("own user id");
    assert_eq!(depth(&ch, "uid").await, 1);
    let props = lapin::BasicProperties::default().with_user_id("mallory".into());
    let _ = ch
        .basic_publish("".into(), "uid".into(), Default::default(), b"no", props)
        .await;
    let e = within(ch.queue_declare("uid".into(), Default::default(), FieldTable::default()))
        .await
        .expect_err("channel closed");
    assert!(closed_with(&e, 406), "{e}");
}

fn protocol_error(e: &lapin::Error) -> (u16, String) {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(a) => (a.get_id(), a.get_message().to_string()),
        other => panic!("not a protocol error: {other:?}"),
    }
}

#[tokio::test]
async fn redeclaring_an_exclusive_queue_without_exclusive_is_locked_even_for_its_owner() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let excl = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    within(ch.queue_declare("mine".into(), excl, FieldTable::default()))
        .await
        .expect("declare");
    within(ch.queue_declare("mine".into(), excl, FieldTable::default()))
        .await
        .expect("the same declare again");
    let e = within(ch.queue_declare("mine".into(), Default::default(), FieldTable::default()))
        .await
        .expect_err("405");
    assert_eq!(
        protocol_error(&e),
        (
            405,
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.".into()
        )
    );
}

#[tokio::test]
async fn declaring_the_default_exchange_is_refused_passive_or_not() {
    let b = start().await;
    let c = b.connect().await;
    for passive in [true, false] {
        let ch = within(c.create_channel()).await.expect("channel");
        let e = within(ch.exchange_declare(
            "".into(),
            lapin::ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await
        .expect_err("403");
        assert_eq!(
            protocol_error(&e),
            (
                403,
                "ACCESS_REFUSED - operation not permitted on the default exchange".into()
            ),
            "passive {passive}"
        );
    }
    assert!(c.status().connected(), "only the channels closed");
}

#[tokio::test]
async fn unbinding_what_is_already_gone_succeeds() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "kept").await;
    within(ch.exchange_declare(
        "kept.x".into(),
        lapin::ExchangeKind::Direct,
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("exchange");
    let args = FieldTable::default;
    for (q, x) in [
        ("gone", "kept.x"),
        ("kept", "gone.x"),
        ("gone", "gone.x"),
        ("kept", "kept.x"),
    ] {
        within(ch.queue_unbind(q.into(), x.into(), "k".into(), args()))
            .await
            .unwrap_or_else(|e| panic!("queue.unbind {q} from {x}: {e}"));
    }
    for (d, s) in [
        ("gone.x", "kept.x"),
        ("kept.x", "gone.x"),
        ("kept.x", "amq.direct"),
    ] {
        within(ch.exchange_unbind(d.into(), s.into(), "k".into(), Default::default(), args()))
            .await
            .unwrap_or_else(|e| panic!("exchange.unbind {d} from {s}: {e}"));
    }
    let e = within(ch.queue_unbind("kept".into(), "".into(), "kept".into(), args()))
        .await
        .expect_err("the default exchange");
    assert_eq!(protocol_error(&e).0, 403);
}

#[tokio::test]
async fn an_empty_exchange_type_is_invalid_and_closes_the_connection() {
    let b = start().await;
    let c = b.connect().await;
    let ch = within(c.create_channel()).await.expect("channel");
    let e = within(ch.exchange_declare(
        "typeless".into(),
        lapin::ExchangeKind::Custom(String::new()),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("503");
    assert_eq!(
        protocol_error(&e),
        (503, "COMMAND_INVALID - invalid exchange type ''".into())
    );
}

/// Connection.StartOk with `mechanism`, `response`; the server's answer.
async fn start_ok_with(b: &TestBroker, mechanism: &str, response: &[u8]) -> Peer0 {
    let mut sock = tokio::net::TcpStream::connect(b.addr)
        .await
        .expect("connect");
    sock.write_all(b"AMQP\x00\x00\x09\x01")
        .await
        .expect("header");
    let mut p = Peer0 { sock };
    p.method().await; // Start
    let mut args = 0u32.to_be_bytes().to_vec();
    args.extend(raw::short_str(mechanism));
    args.extend_from_slice(&(response.len() as u32).to_be_bytes());
    args.extend_from_slice(response);
    args.extend(raw::short_str("en_US"));
    p.sock
        .write_all(&raw::method(0, 10, 11, &args))
        .await
        .expect("start-ok");
    p
}

/// A peer before Tune, reading whole method frames on channel 0.
struct Peer0 {
    sock: tokio::net::TcpStream,
}

impl Peer0 {
    /// (class, method, arguments) of the next frame.
    async fn method(&mut self) -> (u16, u16, Vec<u8>) {
        let mut head = [0u8; 7];
        within(self.sock.read_exact(&mut head))
            .await
            .expect("frame");
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        let mut rest = vec![0u8; size + 1];
        within(self.sock.read_exact(&mut rest))
            .await
            .expect("payload");
        let class = u16::from_be_bytes([rest[0], rest[1]]);
        let method = u16::from_be_bytes([rest[2], rest[3]]);
        (class, method, rest[4..size].to_vec())
    }
}

#[tokio::test]
async fn rabbit_cr_demo_logs_in_when_configured_and_is_refused_otherwise() {
    let b = start_with(|c| c.auth_mechanisms.push("RABBIT-CR-DEMO".into())).await;
    let mut p = start_ok_with(&b, "RABBIT-CR-DEMO", b"guest").await;
    let (class, method, args) = p.method().await;
    assert_eq!((class, method), (10, 20), "Connection.Secure");
    assert_eq!(&args[4..], b"Please tell me your password");
    let answer = b"My password is guest";
    let mut ok = (answer.len() as u32).to_be_bytes().to_vec();
    ok.extend_from_slice(answer);
    p.sock
        .write_all(&raw::method(0, 10, 21, &ok))
        .await
        .expect("secure-ok");
    let (class, method, _) = p.method().await;
    assert_eq!((class, method), (10, 30), "logged in: Connection.Tune");
    // Not offered (RabbitMQ's default): as RabbitMQ, the socket closes
    // without a Close method.
    let b = start().await;
    let mut p = start_ok_with(&b, "RABBIT-CR-DEMO", b"guest").await;
    let mut rest = Vec::new();
    let n = within(p.sock.read_to_end(&mut rest)).await.unwrap_or(0);
    assert_eq!(n, 0, "no frame, just the end of the stream");
}
