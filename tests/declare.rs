//! Declare, delete, bind and purge with RabbitMQ's rules and reply codes.
mod common;
use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

async fn fresh(b: &TestBroker) -> Channel {
    b.channel().await.1
}

fn code<T: std::fmt::Debug>(r: Result<T, lapin::Error>) -> u16 {
    reply_code(&r.expect_err("should fail")).expect("an AMQP error")
}

#[tokio::test]
async fn redeclare_with_other_properties_is_406() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "q1").await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    assert_eq!(
        code(within(ch.queue_declare("q1".into(), durable, FieldTable::default())).await),
        406
    );
    let ch = fresh(&b).await;
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongInt(1000));
    assert_eq!(
        code(within(ch.queue_declare("q1".into(), Default::default(), args)).await),
        406
    );
    let ch = fresh(&b).await;
    within(ch.exchange_declare(
        "x1".into(),
        ExchangeKind::Direct,
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("declare");
    assert_eq!(
        code(
            within(ch.exchange_declare(
                "x1".into(),
                ExchangeKind::Fanout,
                Default::default(),
                FieldTable::default()
            ))
            .await
        ),
        406
    );
}

#[tokio::test]
async fn passive_declare_of_missing_entities_is_404() {
    let b = start().await;
    let ch = fresh(&b).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    assert_eq!(
        code(within(ch.queue_declare("nope".into(), passive, FieldTable::default())).await),
        404
    );
    let ch = fresh(&b).await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    assert_eq!(
        code(
            within(ch.exchange_declare(
                "nope".into(),
                ExchangeKind::Direct,
                passive,
                FieldTable::default()
            ))
            .await
        ),
        404
    );
}

#[tokio::test]
async fn reserved_names_are_403() {
    let b = start().await;
    let ch = fresh(&b).await;
    assert_eq!(
        code(
            within(ch.queue_declare("amq.mine".into(), Default::default(), FieldTable::default()))
                .await
        ),
        403
    );
    let ch = fresh(&b).await;
    assert_eq!(
        code(
            within(ch.exchange_declare(
                "amq.mine".into(),
                ExchangeKind::Topic,
                Default::default(),
                FieldTable::default()
            ))
            .await
        ),
        403
    );
    let ch = fresh(&b).await;
    assert_eq!(
        code(within(ch.exchange_delete("amq.direct".into(), Default::default())).await),
        403
    );
}

#[tokio::test]
async fn exclusive_queue_is_locked_to_its_connection_and_goes_with_it() {
    let b = start().await;
    let (c1, ch1) = b.channel().await;
    let ex = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    within(ch1.queue_declare("mine".into(), ex, FieldTable::default()))
        .await
        .expect("declare");
    let ch2 = fresh(&b).await;
    assert_eq!(
        code(within(ch2.queue_declare("mine".into(), ex, FieldTable::default())).await),
        405
    );
    let ch2 = fresh(&b).await;
    assert_eq!(
        code(within(ch2.basic_get("mine".into(), Default::default())).await),
        405
    );
    within(c1.close(200, "bye".into())).await.expect("close");
    let ch3 = fresh(&b).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    assert_eq!(
        code(within(ch3.queue_declare("mine".into(), passive, FieldTable::default())).await),
        404
    );
}

#[tokio::test]
async fn delete_if_unused_if_empty_and_purge() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "dq").await;
    publish(&ch, "", "dq", b"1").await;
    publish(&ch, "", "dq", b"2").await;
    let e = QueueDeleteOptions {
        if_empty: true,
        ..Default::default()
    };
    assert_eq!(code(within(ch.queue_delete("dq".into(), e)).await), 406);
    let ch = fresh(&b).await;
    let _consumer = consume(&ch, "dq", false).await;
    let ch2 = fresh(&b).await;
    let u = QueueDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    assert_eq!(code(within(ch2.queue_delete("dq".into(), u)).await), 406);
    let ch3 = fresh(&b).await;
    declare(&ch3, "pq").await;
    for _ in 0..3 {
        publish(&ch3, "", "pq", b"x").await;
    }
    assert_eq!(
        within(ch3.queue_purge("pq".into(), Default::default()))
            .await
            .expect("purge"),
        3
    );
    assert_eq!(
        within(ch3.queue_delete("pq".into(), Default::default()))
            .await
            .expect("delete"),
        0
    );
}

#[tokio::test]
async fn auto_delete_queue_goes_when_its_last_consumer_cancels() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let ad = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    within(ch.queue_declare("ad".into(), ad, FieldTable::default()))
        .await
        .expect("declare");
    let consumer = consume(&ch, "ad", true).await;
    within(ch.basic_cancel(consumer.tag(), Default::default()))
        .await
        .expect("cancel");
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    assert_eq!(
        code(within(ch.queue_declare("ad".into(), passive, FieldTable::default())).await),
        404
    );
}

#[tokio::test]
async fn declare_ok_reports_messages_and_consumers() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "counts").await;
    publish(&ch, "", "counts", b"1").await;
    publish(&ch, "", "counts", b"2").await;
    let (_c2, ch2) = b.channel().await;
    let q = within(ch2.queue_declare("counts".into(), Default::default(), FieldTable::default()))
        .await
        .expect("redeclare");
    assert_eq!(q.message_count(), 2);
    assert_eq!(q.consumer_count(), 0);
}
