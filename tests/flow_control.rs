//! Publisher flow control: above the memory limit, connections that publish
//! are blocked (Connection.Blocked to clients that understand it) until the
//! held messages drain; before it, queues page; nothing published is lost.
mod common;
use common::*;
use ferretmq::broker::alarms::MemoryStrategy;
use futures_lite::StreamExt;
use lapin::Event;
use lapin::options::*;

const BODY: usize = 64 * 1024;
const COUNT: usize = 200;

/// Count only message data, so that brokers sharing this test process do
/// not see each other's memory in their RSS.
fn limited(limit: u64) -> impl FnOnce(&mut ferretmq::config::Config) {
    move |c| {
        c.memory_limit = Some(limit);
        c.vm_memory_calculation_strategy = MemoryStrategy::Messages;
    }
}

/// Messages checked out to a consumer that does not acknowledge cannot be
/// paged: they fill memory until the alarm blocks the publisher; acks
/// free it and publishing resumes, nothing lost.
#[tokio::test]
async fn a_publisher_is_blocked_above_the_memory_limit_and_resumes() {
    let b = start_with(limited(2 * 1024 * 1024)).await;
    let publisher = b.connect().await;
    let mut events = publisher.events_listener();
    let ch = within(publisher.create_channel()).await.expect("channel");
    declare(&ch, "big").await;
    let (_c, other) = b.channel().await;
    let mut c = consume(&other, "big", false).await;

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

    let mut received = 0;
    let mut last_tag = 0;
    within(async {
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Event::ConnectionBlocked(reason)) => {
                        assert_eq!(reason, "low on memory");
                        return;
                    }
                    Some(_) => continue,
                    None => panic!("events ended"),
                },
                d = c.next() => {
                    let d = d.expect("delivery").expect("delivery");
                    assert_eq!(d.data.len(), BODY);
                    last_tag = d.delivery_tag;
                    received += 1;
                }
            }
        }
    })
    .await;
    assert!(received < COUNT, "{received} delivered before the block");

    // Acknowledging frees the memory; the publisher resumes.
    let mut acked_to = 0;
    let mut unblocked = false;
    within(async {
        while received < COUNT || !unblocked {
            if last_tag > acked_to {
                other
                    .basic_ack(last_tag, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack");
                acked_to = last_tag;
            }
            tokio::select! {
                ev = events.next(), if !unblocked => {
                    if let Some(Event::ConnectionUnblocked) = ev {
                        unblocked = true;
                    }
                }
                d = c.next(), if received < COUNT => {
                    let d = d.expect("delivery").expect("delivery");
                    assert_eq!(d.data.len(), BODY);
                    last_tag = d.delivery_tag;
                    received += 1;
                }
            }
        }
    })
    .await;
    other
        .basic_ack(last_tag, BasicAckOptions { multiple: true })
        .await
        .expect("ack");
    let ch = within(sender).await.expect("sender finished");
    assert_eq!(depth(&ch, "big").await, 0);
}

/// A backlog nobody consumes is paged to disk from half the watermark on,
/// so its publisher is never blocked, however far past the watermark the
/// backlog grows.
#[tokio::test]
async fn a_backlog_is_paged_before_the_memory_alarm_fires() {
    let b = start_with(limited(4 * 1024 * 1024)).await;
    let publisher = b.connect().await;
    let ch = within(publisher.create_channel()).await.expect("channel");
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    declare(&ch, "backlog").await;
    let broker = b.running.as_ref().expect("running").broker.clone();
    let body = vec![3u8; BODY];
    // 25 MiB against a 4 MiB watermark. Each publish waits for its
    // confirm, so the alarm's checker sees memory between any two.
    for i in 0..400 {
        let confirm = within(ch.basic_publish(
            "".into(),
            "backlog".into(),
            BasicPublishOptions::default(),
            &body,
            Default::default(),
        ))
        .await
        .expect("publish");
        within(confirm).await.expect("confirmed");
        assert!(!broker.alarms.memory_alarm(), "alarm at message {i}");
    }
    assert!(
        broker.store.meter.held() < 4 * 1024 * 1024,
        "{} bytes held",
        broker.store.meter.held()
    );
    let (_c, other) = b.channel().await;
    assert_eq!(depth(&other, "backlog").await, 400);
    let mut c = consume(&other, "backlog", true).await;
    for _ in 0..400 {
        assert_eq!(next(&mut c).await.data, body);
    }
}

/// Memory is counted per broker: one broker's full queues do not block the
/// publishers of another broker in the same process.
#[tokio::test]
async fn brokers_in_one_process_count_their_memory_apart() {
    // Paging off (a ratio above 1, as in RabbitMQ), so the queue holds its
    // messages in memory.
    let no_paging = |c: &mut ferretmq::config::Config| {
        limited(BODY as u64)(c);
        c.vm_memory_high_watermark_paging_ratio = 2.0;
    };
    let full = start_with(no_paging).await;
    let (_c, ch) = full.channel().await;
    declare(&ch, "hoard").await;
    // Two bodies, so the second fits in socket buffers once the broker
    // stops reading this publisher.
    let body = vec![1u8; BODY];
    for _ in 0..2 {
        publish(&ch, "", "hoard", &body).await;
    }
    // Its alarm goes on: 128 KiB held against a 64 KiB limit.
    let alarm = &full.running.as_ref().expect("running").broker.alarms;
    let mut changes = alarm.subscribe();
    within(changes.wait_for(|_| alarm.memory_alarm()))
        .await
        .expect("alarm on");
    let other = start_with(no_paging).await;
    let other_alarm = &other.running.as_ref().expect("running").broker.alarms;
    other_alarm.check_memory();
    assert!(!other_alarm.is_on(), "the other broker holds nothing");
    let (_c2, ch2) = other.channel().await;
    declare(&ch2, "free").await;
    publish(&ch2, "", "free", b"not blocked").await;
    assert_eq!(depth(&ch2, "free").await, 1);
}
