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
