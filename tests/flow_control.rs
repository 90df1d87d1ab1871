//! Publisher flow control: above the memory limit, connections that publish
//! are blocked (Connection.Blocked to clients that understand it) until the
//! held messages drain; nothing published is lost.
mod common;
use common::*;
use futures_lite::StreamExt;
use lapin::Event;
use lapin::options::*;

const BODY: usize = 64 * 1024;
const COUNT: usize = 200;

#[tokio::test]
async fn a_publisher_is_blocked_above_the_memory_limit_and_resumes() {
    let b = start_with(|c| c.memory_limit = Some(2 * 1024 * 1024)).await;
    let publisher = b.connect().await;
    let mut events = publisher.events_listener();
    let ch = within(publisher.create_channel()).await.expect("channel");
    declare(&ch, "big").await;

    let sender = tokio::spawn(async move {
        let body = vec![7u8; BODY];
        for _ in 0..COUNT {
            ch.basic_publish(
                "".into(),
                "big".into(),
                BasicPublishOptions::default(),
                &body,
                Default::default(),
            )
            .await
            .expect("publish");
        }
        ch
    });

    within(async {
        loop {
            match events.next().await {
                Some(Event::ConnectionBlocked(reason)) => {
                    assert_eq!(reason, "low on memory");
                    return;
                }
                Some(_) => continue,
                None => panic!("events ended"),
            }
        }
    })
    .await;
    // Blocked well short of everything: the queue holds about the limit.
    let (_c, other) = b.channel().await;
    let held = depth(&other, "big").await as usize;
    assert!(held < COUNT, "{held} queued while blocked");

    // A consumer on another connection drains it; the publisher resumes.
    let mut c = consume(&other, "big", true).await;
    for _ in 0..COUNT {
        assert_eq!(next(&mut c).await.data.len(), BODY);
    }
    within(async {
        loop {
            if let Some(Event::ConnectionUnblocked) = events.next().await {
                return;
            }
        }
    })
    .await;
    let ch = within(sender).await.expect("sender finished");
    assert_eq!(depth(&ch, "big").await, 0);
}

/// Memory is counted per broker: one broker's full queues do not block the
/// publishers of another broker in the same process.
#[tokio::test]
async fn brokers_in_one_process_count_their_memory_apart() {
    let full = start_with(|c| c.memory_limit = Some(BODY as u64)).await;
    let (_c, ch) = full.channel().await;
    declare(&ch, "hoard").await;
    // Two bodies, so the second fits in socket buffers once the broker
    // stops reading this publisher.
    let body = vec![1u8; BODY];
    for _ in 0..2 {
        publish(&ch, "", "hoard", &body).await;
    }
    // Its alarm goes on: 128 KiB held against a 64 KiB limit.
    let alarm = &full.running.as_ref().expect("running").broker.memory;
    let mut changes = alarm.subscribe();
    within(changes.wait_for(|on| *on)).await.expect("alarm on");
    let other = start_with(|c| c.memory_limit = Some(BODY as u64)).await;
    let other_alarm = &other.running.as_ref().expect("running").broker.memory;
    other_alarm.check();
    assert!(!other_alarm.is_on(), "the other broker holds nothing");
    let (_c2, ch2) = other.channel().await;
    declare(&ch2, "free").await;
    publish(&ch2, "", "free", b"not blocked").await;
    assert_eq!(depth(&ch2, "free").await, 1);
}
