//! Basic.Qos: per-consumer and per-channel (global) prefetch, as RabbitMQ.
mod common;
use common::*;
use lapin::options::*;
use std::time::Duration;

/// Deliveries arriving within a short window (used only to prove that more
/// do NOT arrive; the positive path always waits on the event itself).
async fn drain_for(c: &mut lapin::Consumer, window: Duration) -> Vec<lapin::message::Delivery> {
    use futures_lite::StreamExt;
    let mut v = vec![];
    while let Ok(Some(Ok(d))) = tokio::time::timeout(window, c.next()).await {
        v.push(d);
    }
    v
}

#[tokio::test]
async fn consumer_prefetch_caps_unacked_deliveries() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = declare(&ch, "pf").await;
    for i in 0..10u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    within(ch.basic_qos(3, BasicQosOptions { global: false }))
        .await
        .expect("qos");
    let mut consumer = consume(&ch, &q, false).await;
    let first = drain_for(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(first.len(), 3);
    within(first[2].acker.ack(BasicAckOptions { multiple: true }))
        .await
        .expect("ack");
    let second = drain_for(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(second.len(), 3);
    assert_eq!(second[0].data, vec![3]);
}

#[tokio::test]
async fn global_prefetch_is_shared_by_the_channels_consumers() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let qa = declare(&ch, "ga").await;
    let qb = declare(&ch, "gb").await;
    for i in 0..5u8 {
        publish(&ch, "", &qa, &[i]).await;
        publish(&ch, "", &qb, &[i]).await;
    }
    within(ch.basic_qos(4, BasicQosOptions { global: true }))
        .await
        .expect("qos");
    let mut ca = consume(&ch, &qa, false).await;
    let mut cb = consume(&ch, &qb, false).await;
    let a = drain_for(&mut ca, Duration::from_millis(300)).await;
    let bb = drain_for(&mut cb, Duration::from_millis(300)).await;
    assert_eq!(a.len() + bb.len(), 4);
}

#[tokio::test]
async fn no_ack_consumers_ignore_prefetch() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let q = declare(&ch, "noack").await;
    within(ch.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("qos");
    for i in 0..20u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    let mut consumer = consume(&ch, &q, true).await;
    for i in 0..20u8 {
        assert_eq!(next(&mut consumer).await.data, vec![i]);
    }
}
