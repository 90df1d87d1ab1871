//! Message deduplication (x-message-deduplication) on queues and exchanges,
//! as the RabbitMQ plugin and LavinMQ define it.
mod common;
use common::*;
use lapin::options::*;

use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind};
use std::time::{Duration, Instant};

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

fn with_id(header: &str, id: &str) -> BasicProperties {
    BasicProperties::default().with_headers(table(&[(header, s(id))]))
}

fn dedup_id(id: &str) -> BasicProperties {
    with_id("x-deduplication-header", id)
}

async fn queue_with(ch: &Channel, name: &str, args: &[(&str, AMQPValue)]) {
    within(ch.queue_declare(name.into(), QueueDeclareOptions::default(), table(args)))
        .await
        .expect("declare");
}

/// Publish with confirms on; the confirmation says whether it was returned.
async fn send(
    ch: &Channel,
    exchange: &str,
    key: &str,
    props: BasicProperties,
    mandatory: bool,
) -> Confirmation {
    within(async {
        ch.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions {
                mandatory,
                ..Default::default()
            },
            b"m",
            props,
        )
        .await
        .expect("publish")
        .await
        .expect("confirm")
    })
    .await
}

async fn confirming(b: &TestBroker) -> (lapin::Connection, Channel) {
    let (c, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirm.select");
    (c, ch)
}

/// A broker with queue "q" deduplicating, plus these arguments, and a
/// confirming channel.
async fn dedup_queue(extra: &[(&str, AMQPValue)]) -> (TestBroker, lapin::Connection, Channel) {
    let b = start().await;
    let (c, ch) = confirming(&b).await;
    let mut args = vec![("x-message-deduplication", AMQPValue::Boolean(true))];
    args.extend(extra.iter().cloned());
    queue_with(&ch, "q", &args).await;
    (b, c, ch)
}

#[tokio::test]
async fn queue_drops_a_duplicate_of_a_message_it_still_holds() {
    let (_b, _c, ch) = dedup_queue(&[]).await;
    for id in ["a", "a", "b"] {
        // A duplicate is confirmed (it was routed), just not enqueued.
        assert!(send(&ch, "", "q", dedup_id(id), true).await.is_ack());
    }
    for _ in 0..2 {
        send(&ch, "", "q", BasicProperties::default(), false).await;
    }
    assert_eq!(depth(&ch, "q").await, 4, "a, b and two without the header");

    // Held while unacknowledged; free again once acknowledged.
    let m = get(&ch, "q").await.expect("a");
    send(&ch, "", "q", dedup_id("a"), false).await;
    assert_eq!(depth(&ch, "q").await, 3);
    within(m.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    send(&ch, "", "q", dedup_id("a"), false).await;
    assert_eq!(depth(&ch, "q").await, 4);
    // A purge frees every key.
    purge(&ch, "q").await;
    send(&ch, "", "q", dedup_id("b"), false).await;
    assert_eq!(depth(&ch, "q").await, 1);
}

#[tokio::test]
async fn queue_cache_size_remembers_the_latest_values() {
    let (_b, _c, ch) = dedup_queue(&[("x-cache-size", AMQPValue::LongInt(2))]).await;
    for id in ["a", "b", "c", "a", "c"] {
        send(&ch, "", "q", dedup_id(id), false).await;
    }
    // "a" was pushed out by "c", so it is new again; "c" is a duplicate.
    assert_eq!(depth(&ch, "q").await, 4);
    // A window does not depend on the queue's contents.
    purge(&ch, "q").await;
    send(&ch, "", "q", dedup_id("a"), false).await;
    assert_eq!(depth(&ch, "q").await, 0);
}

#[tokio::test]
async fn queue_cache_ttl_forgets_a_value_when_it_runs_out() {
    let (_b, _c, ch) = dedup_queue(&[
        ("x-cache-ttl", AMQPValue::LongInt(300)),
        ("x-deduplication-header", s("order-id")),
    ])
    .await;
    let first = Instant::now();
    send(&ch, "", "q", with_id("order-id", "42"), false).await;
    // The same id keeps being a duplicate until 300 ms have passed.
    within(async {
        loop {
            let before = first.elapsed();
            send(&ch, "", "q", with_id("order-id", "42"), false).await;
            if depth(&ch, "q").await == 2 {
                assert!(before >= Duration::from_millis(290), "forgotten too early");
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn exchange_argument_deduplicates_before_routing() {
    let b = start().await;
    let (_c, ch) = confirming(&b).await;
    within(ch.exchange_declare(
        "orders".into(),
        ExchangeKind::Topic,
        Default::default(),
        table(&[
            ("x-message-deduplication", AMQPValue::Boolean(true)),
            ("x-cache-size", AMQPValue::LongInt(100)),
        ]),
    ))
    .await
    .expect("declare");
    for q in ["q1", "q2"] {
        declare(&ch, q).await;
        bind(&ch, q, "orders", "#").await;
    }
    let first = send(&ch, "orders", "o.created", dedup_id("o-1"), true).await;
    assert!(first.is_ack() && first.take_message().is_none());
    // A duplicate routes nowhere: a mandatory one comes back.
    let dup = send(&ch, "orders", "o.created", dedup_id("o-1"), true).await;
    let returned = dup.take_message().expect("duplicate returned");
    assert_eq!(returned.reply_code, 312);
    send(&ch, "orders", "o.created", dedup_id("o-2"), true).await;
    assert_eq!(depth(&ch, "q1").await, 2);
    assert_eq!(depth(&ch, "q2").await, 2);
}

#[tokio::test]
async fn plugin_exchange_type_needs_a_cache_size_and_fans_out() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = within(ch.exchange_declare(
        "d".into(),
        ExchangeKind::Custom("x-message-deduplication".into()),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("x-cache-size is required");
    assert!(closed_with(&err, 406), "{err:?}");

    let (_c, ch) = confirming(&b).await;
    within(ch.exchange_declare(
        "d".into(),
        ExchangeKind::Custom("x-message-deduplication".into()),
        Default::default(),
        table(&[
            ("x-cache-size", AMQPValue::LongInt(10)),
            ("x-cache-ttl", AMQPValue::LongInt(60_000)),
        ]),
    ))
    .await
    .expect("declare");
    declare(&ch, "q").await;
    bind(&ch, "q", "d", "ignored").await;
    // The message's own x-cache-ttl overrides the exchange's.
    let short = BasicProperties::default().with_headers(table(&[
        ("x-deduplication-header", s("k")),
        ("x-cache-ttl", AMQPValue::LongInt(1)),
    ]));
    send(&ch, "d", "any", short, false).await;
    within(async {
        while depth(&ch, "q").await < 2 {
            send(&ch, "d", "any", dedup_id("k"), false).await;
        }
    })
    .await;
    // Now remembered for the exchange's minute.
    send(&ch, "d", "any", dedup_id("k"), false).await;
    assert_eq!(depth(&ch, "q").await, 2);
}

#[tokio::test]
async fn delayed_exchange_deduplicates_at_publish_not_when_due() {
    let b = start().await;
    let (_c, ch) = confirming(&b).await;
    within(ch.exchange_declare(
        "later".into(),
        ExchangeKind::Custom("x-delayed-message".into()),
        Default::default(),
        table(&[
            ("x-delayed-type", s("fanout")),
            ("x-message-deduplication", AMQPValue::Boolean(true)),
        ]),
    ))
    .await
    .expect("declare");
    declare(&ch, "out").await;
    bind(&ch, "out", "later", "").await;
    let props = BasicProperties::default().with_headers(table(&[
        ("x-deduplication-header", s("once")),
        ("x-delay", AMQPValue::LongInt(200)),
    ]));
    send(&ch, "later", "", props.clone(), false).await;
    send(&ch, "later", "", props, false).await;
    let mut c = consume(&ch, "out", true).await;
    next(&mut c).await;
    // Only one arrives.
    send(&ch, "", "out", BasicProperties::default(), false).await;
    let d = next(&mut c).await;
    assert!(d.properties.headers().is_none(), "the marker came second");
}

#[tokio::test]
async fn bad_deduplication_arguments_are_refused() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = within(ch.queue_declare(
        "q".into(),
        QueueDeclareOptions::default(),
        table(&[
            ("x-message-deduplication", AMQPValue::Boolean(true)),
            ("x-cache-size", s("lots")),
        ]),
    ))
    .await
    .expect_err("refused");
    assert!(closed_with(&err, 406), "{err:?}");
}

#[tokio::test]
async fn queue_frees_a_value_once_delivered_without_ack() {
    let (_b, _c, ch) = dedup_queue(&[]).await;
    let mut c = consume(&ch, "q", true).await;
    send(&ch, "", "q", dedup_id("a"), false).await;
    next(&mut c).await;
    // Delivered with no-ack, it has left the queue: the value is free again.
    send(&ch, "", "q", dedup_id("a"), false).await;
    next(&mut c).await;
}

#[tokio::test]
async fn a_durable_queue_remembers_what_it_holds_across_a_restart() {
    let b = start().await;
    {
        let (_c, ch) = confirming(&b).await;
        within(ch.queue_declare(
            "dq".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            table(&[("x-message-deduplication", AMQPValue::Boolean(true))]),
        ))
        .await
        .expect("declare");
        send(&ch, "", "dq", dedup_id("a").with_delivery_mode(2), false).await;
    }
    let b = b.restart().await;
    let (_c, ch) = confirming(&b).await;
    send(&ch, "", "dq", dedup_id("a").with_delivery_mode(2), false).await;
    send(&ch, "", "dq", dedup_id("b").with_delivery_mode(2), false).await;
    assert_eq!(depth(&ch, "dq").await, 2, "a is still held, b is new");
}
