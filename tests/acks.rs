//! Ack, nack, reject and recover, with RabbitMQ's requeue order and errors.
mod common;
use common::*;
use lapin::options::*;

#[tokio::test]
async fn nack_requeues_at_original_position_marked_redelivered() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = declare(&ch, "requeue").await;
    for i in 0..4u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    let m0 = get(&ch, &q).await.expect("m0");
    let m1 = get(&ch, &q).await.expect("m1");
    within(ch.basic_nack(
        m1.delivery.delivery_tag,
        BasicNackOptions {
            multiple: false,
            requeue: true,
        },
    ))
    .await
    .expect("nack");
    within(ch.basic_reject(
        m0.delivery.delivery_tag,
        BasicRejectOptions { requeue: true },
    ))
    .await
    .expect("reject");
    let order: Vec<(u8, bool)> = {
        let mut v = vec![];
        while let Some(m) = get(&ch, &q).await {
            v.push((m.delivery.data[0], m.delivery.redelivered));
        }
        v
    };
    assert_eq!(order, vec![(0, true), (1, true), (2, false), (3, false)]);
}

#[tokio::test]
async fn ack_multiple_and_reject_without_requeue_remove_messages() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = declare(&ch, "ackm").await;
    for i in 0..5u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    let mut tags = vec![];
    for _ in 0..5 {
        tags.push(get(&ch, &q).await.expect("msg").delivery.delivery_tag);
    }
    within(ch.basic_ack(tags[2], BasicAckOptions { multiple: true }))
        .await
        .expect("ack");
    within(ch.basic_reject(tags[3], BasicRejectOptions { requeue: false }))
        .await
        .expect("reject");
    within(ch.basic_recover(BasicRecoverOptions { requeue: true }))
        .await
        .expect("recover");
    let m = get(&ch, &q).await.expect("only the unsettled one is back");
    assert_eq!(m.delivery.data, vec![4]);
    assert!(m.delivery.redelivered);
    assert!(get(&ch, &q).await.is_none());
}

#[tokio::test]
async fn unknown_or_double_ack_closes_only_the_channel_with_406() {
    let b = start().await;
    let c = b.connect().await;
    let ch = within(c.create_channel()).await.expect("ch");
    let q = declare(&ch, "dbl").await;
    publish(&ch, "", &q, b"x").await;
    let m = get(&ch, &q).await.expect("msg");
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default()))
        .await
        .expect("ack");
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default()))
        .await
        .expect("sent");
    // The error arrives asynchronously as a Channel.Close; the next call sees it.
    let err = within(ch.queue_declare(q.as_str().into(), Default::default(), Default::default()))
        .await
        .expect_err("channel closed");
    assert!(closed_with(&err, 406), "{err:?}");
    // The connection and its other channels are fine.
    let ch2 = within(c.create_channel())
        .await
        .expect("connection still open");
    assert_eq!(depth(&ch2, &q).await, 0);
}

#[tokio::test]
async fn unacked_messages_return_when_the_channel_closes() {
    let b = start().await;
    let (c, ch) = b.channel().await;
    let q = declare(&ch, "onclose").await;
    publish(&ch, "", &q, b"a").await;
    publish(&ch, "", &q, b"b").await;
    let mut consumer = consume(&ch, &q, false).await;
    next(&mut consumer).await;
    next(&mut consumer).await;
    within(ch.close(200, "bye".into())).await.expect("close");
    let ch2 = within(c.create_channel()).await.expect("ch2");
    let m = get(&ch2, &q).await.expect("requeued");
    assert_eq!(m.delivery.data, b"a");
    assert!(m.delivery.redelivered);
}
