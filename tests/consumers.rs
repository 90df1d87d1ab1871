//! Consumer lifecycle: exclusive consumers, cancel, server-sent cancel, and
//! no message lost when a consumer's connection goes away.
mod common;
use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;

#[tokio::test]
async fn exclusive_consumer_refuses_a_second_with_403() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "exc").await;
    let _first = within(ch.basic_consume(
        "exc".into(),
        "first".into(),
        BasicConsumeOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("first consumer");
    let (_c2, ch2) = b.channel().await;
    let err = within(ch2.basic_consume(
        "exc".into(),
        "second".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("refused");
    assert_eq!(reply_code(&err), Some(403));
}

#[tokio::test]
async fn deleting_a_queue_cancels_its_consumers() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "gone").await;
    let mut consumer = consume(&ch, "gone", true).await;
    let (_c2, ch2) = b.channel().await;
    within(ch2.queue_delete("gone".into(), Default::default()))
        .await
        .expect("delete");
    // lapin ends the consumer stream when the broker cancels it.
    assert!(within(consumer.next()).await.is_none());
}

#[tokio::test]
async fn messages_in_flight_to_a_vanished_consumer_are_not_lost() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "backlog").await;
    for i in 0..200u32 {
        publish(&ch, "", "backlog", &i.to_be_bytes()).await;
    }
    {
        let (c2, ch2) = b.channel().await;
        let mut consumer = consume(&ch2, "backlog", false).await;
        for _ in 0..10 {
            next(&mut consumer).await;
        }
        // Drop the TCP connection without acking anything.
        drop(consumer);
        within(c2.close(200, "crash".into())).await.expect("close");
    }
    assert_eq!(depth(&ch, "backlog").await, 200);
    let mut seen = vec![];
    while let Some(m) = get(&ch, "backlog").await {
        seen.push(u32::from_be_bytes(
            m.delivery.data[..4].try_into().expect("4 bytes"),
        ));
    }
    assert_eq!(seen, (0..200).collect::<Vec<_>>(), "order kept");
}

#[tokio::test]
async fn reusing_a_consumer_tag_on_a_channel_is_530() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "tags").await;
    within(ch.basic_consume(
        "tags".into(),
        "t".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("first");
    let err = within(ch.basic_consume(
        "tags".into(),
        "t".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("reuse");
    assert_eq!(reply_code(&err), Some(530));
    assert!(!c.status().connected(), "530 closes the connection");
}

#[tokio::test]
async fn single_active_consumer_gets_everything_until_it_is_cancelled() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert(
        "x-single-active-consumer".into(),
        lapin::types::AMQPValue::Boolean(true),
    );
    within(ch.queue_declare("sac".into(), Default::default(), args))
        .await
        .expect("declare");
    let mut first = consume(&ch, "sac", true).await;
    let (_c2, ch2) = b.channel().await;
    let mut second = consume(&ch2, "sac", true).await;
    for i in 0..4u8 {
        publish(&ch, "", "sac", &[i]).await;
    }
    for i in 0..4u8 {
        assert_eq!(next(&mut first).await.data, vec![i]);
    }
    within(ch.basic_cancel(first.tag(), Default::default()))
        .await
        .expect("cancel");
    publish(&ch, "", "sac", &[9]).await;
    assert_eq!(next(&mut second).await.data, vec![9]);
}

#[tokio::test]
async fn higher_priority_consumers_are_served_first() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "cp").await;
    within(ch.basic_qos(2, Default::default()))
        .await
        .expect("qos");
    let mut low_args = FieldTable::default();
    low_args.insert("x-priority".into(), lapin::types::AMQPValue::LongInt(1));
    let mut high_args = FieldTable::default();
    high_args.insert("x-priority".into(), lapin::types::AMQPValue::LongInt(10));
    let mut low = within(ch.basic_consume("cp".into(), "low".into(), Default::default(), low_args))
        .await
        .expect("low");
    let mut high =
        within(ch.basic_consume("cp".into(), "high".into(), Default::default(), high_args))
            .await
            .expect("high");
    for i in 0..3u8 {
        publish(&ch, "", "cp", &[i]).await;
    }
    assert_eq!(next(&mut high).await.data, vec![0]);
    assert_eq!(next(&mut high).await.data, vec![1]);
    assert_eq!(
        next(&mut low).await.data,
        vec![2],
        "overflow to the lower priority once the higher is full"
    );
}
