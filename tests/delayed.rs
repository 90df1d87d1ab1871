//! The x-delayed-message exchange: messages with x-delay are held and routed
//! (by the x-delayed-type's rules) when due, on time, and survive restarts.
mod common;
use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use std::time::{Duration, Instant};

async fn delayed_exchange(ch: &Channel, name: &str, durable: bool) {
    let mut args = FieldTable::default();
    args.insert(
        "x-delayed-type".into(),
        AMQPValue::LongString(LongString::from("direct")),
    );
    let opts = ExchangeDeclareOptions {
        durable,
        ..Default::default()
    };
    within(ch.exchange_declare(
        name.into(),
        ExchangeKind::Custom("x-delayed-message".into()),
        opts,
        args,
    ))
    .await
    .expect("declare delayed exchange");
}

fn delayed(ms: i64) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert("x-delay".into(), AMQPValue::LongLongInt(ms));
    BasicProperties::default()
        .with_headers(h)
        .with_delivery_mode(2)
}

#[tokio::test]
async fn delayed_messages_arrive_when_due_in_due_order() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    delayed_exchange(&ch, "later", false).await;
    declare(&ch, "out").await;
    within(ch.queue_bind(
        "out".into(),
        "later".into(),
        "k".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("bind");
    let mut consumer = consume(&ch, "out", true).await;
    let sent = Instant::now();
    for (body, ms) in [(b"c", 600), (b"a", 200), (b"b", 400)] {
        within(ch.basic_publish(
            "later".into(),
            "k".into(),
            Default::default(),
            body,
            delayed(ms),
        ))
        .await
        .expect("pub");
    }
    publish(&ch, "later", "k", b"now").await;
    assert_eq!(next(&mut consumer).await.data, b"now");
    for (body, ms) in [(b"a", 200u64), (b"b", 400), (b"c", 600)] {
        let d = next(&mut consumer).await;
        let at = sent.elapsed();
        assert_eq!(d.data, body);
        assert!(
            at >= Duration::from_millis(ms - 5),
            "{body:?} early: {at:?}"
        );
        assert!(
            at < Duration::from_millis(ms + 150),
            "{body:?} late: {at:?}"
        );
    }
}

#[tokio::test]
async fn invalid_delayed_type_is_406() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = within(ch.exchange_declare(
        "bad-later".into(),
        ExchangeKind::Custom("x-delayed-message".into()),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("no x-delayed-type");
    assert_eq!(reply_code(&err), Some(406));
}

#[tokio::test]
async fn delayed_messages_of_a_durable_exchange_survive_a_restart() {
    let b = start().await;
    {
        let (_c, ch) = b.channel().await;
        within(ch.confirm_select(Default::default()))
            .await
            .expect("confirms");
        delayed_exchange(&ch, "durable-later", true).await;
        within(ch.queue_declare(
            "dout".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await
        .expect("q");
        within(ch.queue_bind(
            "dout".into(),
            "durable-later".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        ))
        .await
        .expect("bind");
        within(ch.basic_publish(
            "durable-later".into(),
            "k".into(),
            Default::default(),
            b"kept",
            delayed(1500),
        ))
        .await
        .expect("pub")
        .await
        .expect("confirmed");
        assert_eq!(depth(&ch, "dout").await, 0, "still held");
    }
    let b = b.restart().await;
    let (_c, ch) = b.channel().await;
    let mut consumer = consume(&ch, "dout", true).await;
    assert_eq!(next(&mut consumer).await.data, b"kept");
}

#[tokio::test]
async fn a_delayed_exchange_reached_through_bindings_still_delays() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    delayed_exchange(&ch, "later", false).await;
    within(ch.exchange_declare(
        "front".into(),
        ExchangeKind::Topic,
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("front");
    within(ch.exchange_bind(
        "later".into(),
        "front".into(),
        "#".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("e2e bind");
    declare(&ch, "out").await;
    bind(&ch, "out", "later", "k").await;
    // Dead-lettering into a delayed exchange delays too.
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from("later")),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(LongString::from("k")),
    );
    within(ch.queue_declare("retry".into(), Default::default(), args))
        .await
        .expect("retry queue");

    let sent = Instant::now();
    let confirm = within(async {
        ch.basic_publish(
            "front".into(),
            "k".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"via-e2e",
            delayed(300),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm")
    })
    .await;
    assert!(confirm.take_message().is_none(), "held, so not returned");
    within(ch.basic_publish(
        "".into(),
        "retry".into(),
        Default::default(),
        b"via-dlx",
        delayed(300),
    ))
    .await
    .expect("publish")
    .await
    .expect("confirm");
    let m = get(&ch, "retry").await.expect("to reject");
    within(m.reject(BasicRejectOptions { requeue: false }))
        .await
        .expect("reject");
    assert_eq!(depth(&ch, "out").await, 0, "both held");

    let mut consumer = consume(&ch, "out", true).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(next(&mut consumer).await.data);
    }
    assert!(sent.elapsed() >= Duration::from_millis(295), "not delayed");
    got.sort();
    assert_eq!(got, [b"via-dlx".to_vec(), b"via-e2e".to_vec()]);
}
