//! Publishing and consuming: routing, properties byte for byte, body sizes.
mod common;
use common::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString};

#[tokio::test]
async fn publish_then_consume_round_trip() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = declare(&ch, "").await;
    assert!(q.starts_with("amq.gen-"), "server-named queue: {q}");
    let mut consumer = consume(&ch, &q, true).await;
    publish(&ch, "", &q, b"hello").await;
    let d = next(&mut consumer).await;
    assert_eq!(d.data, b"hello");
    assert_eq!(d.routing_key.as_str(), q);
    assert!(!d.redelivered);
}

#[tokio::test]
async fn every_property_and_field_type_arrives_unchanged() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = declare(&ch, "props").await;
    let mut inner = FieldTable::default();
    inner.insert(
        "deep".into(),
        AMQPValue::LongString(LongString::from("yes")),
    );
    let mut h = FieldTable::default();
    h.insert("bool".into(), AMQPValue::Boolean(true));
    h.insert("i8".into(), AMQPValue::ShortShortInt(-8));
    h.insert("u8".into(), AMQPValue::ShortShortUInt(8));
    h.insert("i16".into(), AMQPValue::ShortInt(-16));
    h.insert("u16".into(), AMQPValue::ShortUInt(16));
    h.insert("i32".into(), AMQPValue::LongInt(-32));
    h.insert("u32".into(), AMQPValue::LongUInt(32));
    h.insert("i64".into(), AMQPValue::LongLongInt(-64));
    h.insert("f32".into(), AMQPValue::Float(1.5));
    h.insert("f64".into(), AMQPValue::Double(2.25));
    h.insert(
        "dec".into(),
        AMQPValue::DecimalValue(DecimalValue {
            scale: 2,
            value: 12345,
        }),
    );
    h.insert(
        "str".into(),
        AMQPValue::LongString(LongString::from("text ünïcode")),
    );
    h.insert(
        "arr".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![
            AMQPValue::LongInt(1),
            AMQPValue::Boolean(false),
        ])),
    );
    h.insert("ts".into(), AMQPValue::Timestamp(1_700_000_000));
    h.insert("table".into(), AMQPValue::FieldTable(inner));
    h.insert(
        "bytes".into(),
        AMQPValue::ByteArray(ByteArray::from(vec![0u8, 1, 255])),
    );
    h.insert("void".into(), AMQPValue::Void);
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("gzip".into())
        .with_headers(h)
        .with_delivery_mode(2)
        .with_priority(5)
        .with_correlation_id("corr".into())
        .with_reply_to("replies".into())
        .with_expiration("60000".into())
        .with_message_id("m-1".into())
        .with_timestamp(1_600_000_000)
        .with_type("order".into())
        .with_user_id("guest".into())
        .with_app_id("tests".into())
        .with_cluster_id("c1".into());
    within(ch.basic_publish(
        "".into(),
        q.as_str().into(),
        BasicPublishOptions::default(),
        b"{}",
        props.clone(),
    ))
    .await
    .expect("publish");
    let m = get(&ch, &q).await.expect("a message");
    assert_eq!(m.delivery.properties, props);
    assert_eq!(m.delivery.data, b"{}");
}

#[tokio::test]
async fn large_bodies_span_frames_and_empty_bodies_work() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = declare(&ch, "sizes").await;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    publish(&ch, "", &q, &big).await;
    publish(&ch, "", &q, b"").await;
    let mut consumer = consume(&ch, &q, true).await;
    assert_eq!(next(&mut consumer).await.data, big);
    assert!(next(&mut consumer).await.data.is_empty());
}

#[tokio::test]
async fn direct_key_bound_to_two_queues_reaches_both_once() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    for q in ["d1", "d2"] {
        declare(&ch, q).await;
        within(ch.queue_bind(
            q.into(),
            "amq.direct".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        ))
        .await
        .expect("bind");
    }
    // A second binding with the same key changes nothing.
    within(ch.queue_bind(
        "d1".into(),
        "amq.direct".into(),
        "k".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("rebind");
    publish(&ch, "amq.direct", "k", b"x").await;
    publish(&ch, "amq.direct", "other", b"y").await;
    assert_eq!(depth(&ch, "d1").await, 1);
    assert_eq!(depth(&ch, "d2").await, 1);
}

#[tokio::test]
async fn fanout_topic_and_headers_route_like_rabbitmq() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    for q in ["f", "t_star", "t_hash", "h_all", "h_any"] {
        declare(&ch, q).await;
    }
    let bind = |q: &'static str, x: &'static str, k: &'static str, args: FieldTable| {
        let ch = ch.clone();
        async move {
            within(ch.queue_bind(q.into(), x.into(), k.into(), Default::default(), args))
                .await
                .expect("bind")
        }
    };
    bind("f", "amq.fanout", "ignored", FieldTable::default()).await;
    bind("t_star", "amq.topic", "order.*", FieldTable::default()).await;
    bind("t_hash", "amq.topic", "order.#", FieldTable::default()).await;
    let mut all = FieldTable::default();
    all.insert("x-match".into(), AMQPValue::LongString("all".into()));
    all.insert("kind".into(), AMQPValue::LongString("a".into()));
    all.insert("n".into(), AMQPValue::LongInt(1));
    bind("h_all", "amq.headers", "", all).await;
    let mut any = FieldTable::default();
    any.insert("x-match".into(), AMQPValue::LongString("any".into()));
    any.insert("kind".into(), AMQPValue::LongString("a".into()));
    any.insert("n".into(), AMQPValue::LongInt(1));
    bind("h_any", "amq.headers", "", any).await;

    publish(&ch, "amq.fanout", "whatever", b"1").await;
    publish(&ch, "amq.topic", "order.created", b"2").await;
    publish(&ch, "amq.topic", "order.created.eu", b"3").await;
    publish(&ch, "amq.topic", "order", b"4").await;
    let mut h = FieldTable::default();
    h.insert("kind".into(), AMQPValue::LongString("a".into()));
    let props = BasicProperties::default().with_headers(h.clone());
    within(ch.basic_publish(
        "amq.headers".into(),
        "".into(),
        Default::default(),
        b"5",
        props,
    ))
    .await
    .expect("pub");
    h.insert("n".into(), AMQPValue::ShortShortUInt(1));
    let props = BasicProperties::default().with_headers(h);
    within(ch.basic_publish(
        "amq.headers".into(),
        "".into(),
        Default::default(),
        b"6",
        props,
    ))
    .await
    .expect("pub");

    assert_eq!(depth(&ch, "f").await, 1);
    assert_eq!(depth(&ch, "t_star").await, 1);
    assert_eq!(depth(&ch, "t_hash").await, 3);
    assert_eq!(depth(&ch, "h_all").await, 1);
    assert_eq!(depth(&ch, "h_any").await, 2);
}

#[tokio::test]
async fn consumers_of_one_queue_take_turns() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = declare(&ch, "rr").await;
    let mut c1 = consume(&ch, &q, true).await;
    let mut c2 = consume(&ch, &q, true).await;
    for i in 0..6u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    let mut a = vec![];
    let mut b2 = vec![];
    for _ in 0..3 {
        a.push(next(&mut c1).await.data[0]);
        b2.push(next(&mut c2).await.data[0]);
    }
    assert_eq!(a, vec![0, 2, 4]);
    assert_eq!(b2, vec![1, 3, 5]);
}
