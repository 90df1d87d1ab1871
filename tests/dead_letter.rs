//! Dead-lettering, TTL and length limits.
mod common;
use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use std::time::{Duration, Instant};

fn arg_str(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

async fn dlx_pair(ch: &Channel, src: &str, extra: &[(&str, AMQPValue)]) -> lapin::Consumer {
    within(ch.exchange_declare(
        "dlx".into(),
        ExchangeKind::Fanout,
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("dlx");
    declare(ch, "dlq").await;
    within(ch.queue_bind(
        "dlq".into(),
        "dlx".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("bind");
    let mut args = FieldTable::default();
    args.insert("x-dead-letter-exchange".into(), arg_str("dlx"));
    for (k, v) in extra {
        args.insert((*k).into(), v.clone());
    }
    within(ch.queue_declare(src.into(), Default::default(), args))
        .await
        .expect("src");
    consume(ch, "dlq", true).await
}

fn death(d: &lapin::message::Delivery) -> FieldTable {
    let h = d.properties.headers().as_ref().expect("headers");
    match h.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => match &a.as_slice()[0] {
            AMQPValue::FieldTable(t) => t.clone(),
            other => panic!("x-death entry {other:?}"),
        },
        other => panic!("x-death {other:?}"),
    }
}

#[tokio::test]
async fn rejected_messages_are_dead_lettered_with_their_history() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut dead = dlx_pair(&ch, "src", &[]).await;
    publish(&ch, "", "src", b"bad").await;
    let m = get(&ch, "src").await.expect("msg");
    within(ch.basic_reject(
        m.delivery.delivery_tag,
        BasicRejectOptions { requeue: false },
    ))
    .await
    .expect("reject");
    let d = next(&mut dead).await;
    assert_eq!(d.data, b"bad");
    assert_eq!(d.exchange.as_str(), "dlx");
    let x = death(&d);
    assert_eq!(x.inner().get("reason"), Some(&arg_str("rejected")));
    assert_eq!(x.inner().get("queue"), Some(&arg_str("src")));
    assert_eq!(x.inner().get("count"), Some(&AMQPValue::LongLongInt(1)));
}

#[tokio::test]
async fn a_message_expires_at_its_own_time_even_behind_a_longer_ttl() {
    // The one deliberate difference from RabbitMQ, which expires only at the
    // head of the queue: here the 200 ms message dies at 200 ms although a
    // 60 s message sits in front of it.
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut dead = dlx_pair(&ch, "src", &[]).await;
    let long = BasicProperties::default().with_expiration("60000".into());
    let short = BasicProperties::default().with_expiration("200".into());
    within(ch.basic_publish("".into(), "src".into(), Default::default(), b"long", long))
        .await
        .expect("p");
    let sent = Instant::now();
    within(ch.basic_publish("".into(), "src".into(), Default::default(), b"short", short))
        .await
        .expect("p");
    let d = next(&mut dead).await;
    let took = sent.elapsed();
    assert_eq!(d.data, b"short");
    assert!(took >= Duration::from_millis(190), "too early: {took:?}");
    assert!(took < Duration::from_millis(1500), "too late: {took:?}");
    assert_eq!(
        death(&d).inner().get("original-expiration"),
        Some(&arg_str("200"))
    );
    assert_eq!(depth(&ch, "src").await, 1);
}

#[tokio::test]
async fn queue_ttl_counts_from_enqueue_and_empties_the_queue() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut dead = dlx_pair(&ch, "src", &[("x-message-ttl", AMQPValue::LongInt(100))]).await;
    for i in 0..5u8 {
        publish(&ch, "", "src", &[i]).await;
    }
    for i in 0..5u8 {
        assert_eq!(next(&mut dead).await.data, vec![i]);
    }
    assert_eq!(depth(&ch, "src").await, 0);
}

#[tokio::test]
async fn max_length_drop_head_dead_letters_the_oldest() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut dead = dlx_pair(&ch, "src", &[("x-max-length", AMQPValue::LongInt(2))]).await;
    for i in 0..4u8 {
        publish(&ch, "", "src", &[i]).await;
    }
    assert_eq!(next(&mut dead).await.data, vec![0]);
    assert_eq!(next(&mut dead).await.data, vec![1]);
    assert_eq!(depth(&ch, "src").await, 2);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), dead.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn invalid_arguments_are_406() {
    let b = start().await;
    for (k, v) in [
        ("x-message-ttl", AMQPValue::LongInt(-1)),
        ("x-expires", AMQPValue::LongInt(0)),
        ("x-overflow", arg_str("sideways")),
        ("x-max-length", arg_str("ten")),
    ] {
        let (_c, ch) = b.channel().await;
        let mut args = FieldTable::default();
        args.insert(k.into(), v);
        let err = within(ch.queue_declare("bad".into(), Default::default(), args))
            .await
            .expect_err("invalid");
        assert_eq!(reply_code(&err), Some(406), "{k}");
    }
}

#[tokio::test]
async fn an_unused_queue_is_deleted_after_its_x_expires() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(150));
    within(ch.queue_declare("brief".into(), Default::default(), args))
        .await
        .expect("declare");
    let started = Instant::now();
    // Poll less often than x-expires: a passive declare counts as use.
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (_c, probe) = b.channel().await;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        match within(probe.queue_declare("brief".into(), passive, FieldTable::default())).await {
            Err(e) => {
                assert_eq!(reply_code(&e), Some(404));
                break;
            }
            Ok(_) => assert!(started.elapsed() < DEADLINE, "queue never expired"),
        }
    }
}

#[tokio::test]
async fn priority_queues_deliver_higher_priorities_first() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(5));
    within(ch.queue_declare("prio".into(), Default::default(), args))
        .await
        .expect("declare");
    for (body, prio) in [
        (b"p1", Some(1u8)),
        (b"p0", None),
        (b"p5", Some(5)),
        (b"p9", Some(9)),
        (b"p3", Some(3)),
    ] {
        let props = match prio {
            Some(p) => BasicProperties::default().with_priority(p),
            None => BasicProperties::default(),
        };
        within(ch.basic_publish("".into(), "prio".into(), Default::default(), body, props))
            .await
            .expect("pub");
    }
    let mut order = vec![];
    while let Some(m) = get(&ch, "prio").await {
        order.push(String::from_utf8(m.delivery.data).expect("utf8"));
    }
    assert_eq!(order, ["p5", "p9", "p3", "p1", "p0"]);
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_after_the_delivery_limit() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut dead = dlx_pair(&ch, "unused-src", &[]).await;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), arg_str("quorum"));
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(1));
    args.insert("x-dead-letter-exchange".into(), arg_str("dlx"));
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(ch.queue_declare("qq".into(), durable, args))
        .await
        .expect("quorum");
    publish(&ch, "", "qq", b"poison").await;
    for attempt in 0..2i64 {
        let m = get(&ch, "qq").await.expect("delivery");
        let count = m
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-delivery-count").cloned());
        assert_eq!(count, Some(AMQPValue::LongLongInt(attempt)));
        within(ch.basic_nack(
            m.delivery.delivery_tag,
            BasicNackOptions {
                requeue: true,
                ..Default::default()
            },
        ))
        .await
        .expect("nack");
    }
    let d = next(&mut dead).await;
    assert_eq!(d.data, b"poison");
    assert_eq!(
        death(&d).inner().get("reason"),
        Some(&arg_str("delivery_limit"))
    );
}
