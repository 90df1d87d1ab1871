//! The consumer acknowledgement timeout (RabbitMQ's consumer_timeout, and
//! the per-queue x-consumer-timeout): a channel holding a delivery
//! unacknowledged for too long is closed with 406 and its messages requeued.
mod common;
use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};
use std::time::{Duration, Instant};

/// The error that ends a consumer's stream when the broker closes its channel.
async fn stream_error(c: &mut Consumer) -> lapin::Error {
    within(async {
        loop {
            match c.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return e,
                None => panic!("consumer stream ended without an error"),
            }
        }
    })
    .await
}

fn timeout_text(e: &lapin::Error) -> Option<(u16, String)> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(a) => Some((a.get_id(), a.get_message().to_string())),
        _ => None,
    }
}

async fn declare_with(ch: &Channel, name: &str, args: FieldTable) {
    within(ch.queue_declare(name.into(), QueueDeclareOptions::default(), args))
        .await
        .expect("declare");
}

#[tokio::test]
async fn broker_timeout_closes_the_late_channel_and_requeues() {
    let b = start_with(|c| c.consumer_timeout = Some(300)).await;
    let conn = b.connect().await;
    let slow = within(conn.create_channel()).await.expect("channel");
    let prompt = within(conn.create_channel()).await.expect("channel");
    declare(&slow, "work").await;
    publish(&slow, "", "work", b"job-1").await;
    publish(&slow, "", "work", b"job-2").await;

    within(slow.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut held = consume(&slow, "work", false).await;
    let first = next(&mut held).await;
    let taken = Instant::now();
    assert_eq!(first.data, b"job-1");
    // A consumer that acks in time is left alone.
    let mut fine = consume(&prompt, "work", false).await;
    let d = next(&mut fine).await;
    assert_eq!(d.data, b"job-2");
    within(d.ack(BasicAckOptions::default()))
        .await
        .expect("ack");

    let err = stream_error(&mut held).await;
    assert!(
        taken.elapsed() >= Duration::from_millis(290),
        "closed early"
    );
    let (code, text) = timeout_text(&err).expect("a protocol error");
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 300 ms. This timeout value can be configured, see consumers doc guide to learn more"
    );
    // The unacked message went back and reaches the prompt consumer, redelivered.
    let again = next(&mut fine).await;
    assert_eq!(again.data, b"job-1");
    assert!(again.redelivered);
    within(again.ack(BasicAckOptions::default()))
        .await
        .expect("prompt channel still open");
}

#[tokio::test]
async fn queue_argument_sets_the_timeout_per_queue() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-consumer-timeout".into(), AMQPValue::LongInt(200));
    declare_with(&ch, "timed", args).await;
    declare(&ch, "untimed").await;
    publish(&ch, "", "timed", b"t").await;
    publish(&ch, "", "untimed", b"u").await;

    // Unacked from a queue without a timeout: no deadline on this channel.
    let other = within(b.connect().await.create_channel())
        .await
        .expect("channel");
    let kept = within(other.basic_get("untimed".into(), BasicGetOptions::default()))
        .await
        .expect("get")
        .expect("a message");

    // Basic.Get deliveries are held to the timeout too.
    let got = within(ch.basic_get("timed".into(), BasicGetOptions::default()))
        .await
        .expect("get");
    assert!(got.is_some());
    let mut watcher = consume(&ch, "untimed", false).await;
    let err = stream_error(&mut watcher).await;
    let (code, text) = timeout_text(&err).expect("a protocol error");
    assert_eq!(code, 406);
    assert!(text.contains("Timeout value used: 200 ms"), "{text}");

    within(kept.ack(BasicAckOptions::default()))
        .await
        .expect("the other channel is untouched");
    let (_c2, ch2) = b.channel().await;
    assert_eq!(depth(&ch2, "timed").await, 1, "requeued");
}

#[tokio::test]
async fn no_timeout_unless_configured() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "q").await;
    publish(&ch, "", "q", b"m").await;
    let m = get(&ch, "q").await.expect("message");
    // Well past any test timeout used above, the channel is still usable.
    tokio::time::sleep(Duration::from_millis(500)).await;
    within(m.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    assert_eq!(depth(&ch, "q").await, 0);
}

#[tokio::test]
async fn a_negative_queue_timeout_is_406() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-consumer-timeout".into(), AMQPValue::LongInt(-1));
    let err = within(ch.queue_declare("bad".into(), QueueDeclareOptions::default(), args))
        .await
        .expect_err("refused");
    assert!(closed_with(&err, 406), "{err:?}");
}
