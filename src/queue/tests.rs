//! Unit tests of the queue: dispatch, prefetch, limits, expiry (no tokio runtime).

use super::consumer::{Credit, Sink};
use super::*;
use bytes::Bytes;

fn msg(n: u8) -> Arc<Message> {
    Arc::new(Message::new(
        "".into(),
        "q".into(),
        Default::default(),
        Bytes::new(),
        Bytes::from(vec![n]),
        crate::message::Meter::new(),
    ))
}

fn consumer(sink: &Sink, prefetch: u16, no_ack: bool) -> Arc<ConsumerHandle> {
    Arc::new(ConsumerHandle {
        tag: "c".into(),
        channel: 1,
        no_ack,
        exclusive: false,
        priority: 0,
        credit: Arc::new(Credit::new(prefetch)),
        channel_credit: Arc::new(Credit::new(0)),
        sink: sink.clone(),
    })
}

fn bodies(rx: &mut tokio::sync::mpsc::UnboundedReceiver<InboxEvent>) -> Vec<u8> {
    let mut out = vec![];
    while let Ok(ev) = rx.try_recv() {
        if let InboxEvent::Deliver(d) = ev {
            out.push(d.entry.msg.body[0]);
        }
    }
    out
}

#[test]
fn prefetch_limits_deliveries_until_credit_returns() {
    let q = Queue::new("q".into(), false, None, false, FieldTable::default());
    let (sink, mut rx) = Sink::new();
    let c = consumer(&sink, 2, false);
    q.add_consumer(c.clone()).expect("added");
    for i in 0..5 {
        assert_eq!(
            q.publish(msg(i), &mut vec![]),
            Published::Accepted { ticket: 0 }
        );
    }
    assert_eq!(bodies(&mut rx), vec![0, 1]);
    c.credit.give_back(1);
    q.settle(&[0]);
    q.dispatch();
    assert_eq!(bodies(&mut rx), vec![2]);
    assert_eq!(q.counts(), (2, 1));
}

#[test]
fn consumers_take_turns() {
    let q = Queue::new("q".into(), false, None, false, FieldTable::default());
    let (s1, mut r1) = Sink::new();
    let (s2, mut r2) = Sink::new();
    q.add_consumer(consumer(&s1, 0, true)).expect("c1");
    q.add_consumer(consumer(&s2, 0, true)).expect("c2");
    for i in 0..6 {
        q.publish(msg(i), &mut vec![]);
    }
    assert_eq!(bodies(&mut r1), vec![0, 2, 4]);
    assert_eq!(bodies(&mut r2), vec![1, 3, 5]);
}

#[test]
fn a_vanished_connection_gives_its_delivery_back() {
    let q = Queue::new("q".into(), false, None, false, FieldTable::default());
    let (sink, rx) = Sink::new();
    drop(rx);
    q.add_consumer(consumer(&sink, 0, false)).expect("added");
    q.publish(msg(1), &mut vec![]);
    assert_eq!(q.counts().0, 1);
}

#[test]
fn exclusive_consumer_keeps_others_out() {
    let q = Queue::new("q".into(), false, None, false, FieldTable::default());
    let (sink, _rx) = Sink::new();
    let mut ex = consumer(&sink, 0, true);
    Arc::get_mut(&mut ex).expect("unique").exclusive = true;
    q.add_consumer(ex).expect("first");
    assert_eq!(
        q.add_consumer(consumer(&sink, 0, true)),
        Err(ConsumeRefused::InExclusiveUse)
    );
}

fn with_args(args: QueueArgs) -> Arc<Queue> {
    Queue::with_log(
        "q".into(),
        false,
        None,
        false,
        FieldTable::default(),
        None,
        Vec::new(),
        args,
        None,
    )
}

fn expiring(n: u8, ttl_ms: &str) -> Arc<Message> {
    Arc::new(Message::new(
        "".into(),
        "q".into(),
        amq_protocol::protocol::BasicProperties::default().with_expiration(ttl_ms.into()),
        Bytes::new(),
        Bytes::from(vec![n]),
        crate::message::Meter::new(),
    ))
}

#[test]
fn drop_head_keeps_the_newest_and_reports_the_dropped() {
    let q = with_args(QueueArgs {
        max_length: Some(2),
        ..Default::default()
    });
    let mut dead = vec![];
    for i in 0..4 {
        q.publish(msg(i), &mut dead);
    }
    let dropped: Vec<u8> = dead.iter().map(|d| d.msg.body[0]).collect();
    assert_eq!(dropped, vec![0, 1]);
    assert!(dead.iter().all(|d| d.reason == DeathReason::Maxlen));
    assert_eq!(q.get(true).map(|(e, _)| e.msg.body[0]), Some(2));
}

#[test]
fn reject_publish_refuses_when_full() {
    let q = with_args(QueueArgs {
        max_length: Some(1),
        overflow: Overflow::RejectPublish,
        ..Default::default()
    });
    let mut dead = vec![];
    assert!(matches!(
        q.publish(msg(0), &mut dead),
        Published::Accepted { .. }
    ));
    assert_eq!(q.publish(msg(1), &mut dead), Published::Rejected);
    assert!(dead.is_empty());
    assert_eq!(q.counts().0, 1);
}

#[test]
fn a_message_expires_at_its_own_time_even_behind_longer_ttls() {
    let q = with_args(QueueArgs::default());
    let mut dead = vec![];
    q.publish(expiring(0, "600000"), &mut dead);
    q.publish(expiring(1, "1000"), &mut dead);
    q.publish(msg(2), &mut dead);
    assert_eq!(q.counts().0, 3);
    q.expire(now_ms() + 5_000, &mut dead);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].msg.body[0], 1);
    assert_eq!(dead[0].reason, DeathReason::Expired);
    assert_eq!(q.counts().0, 2);
    let left: Vec<u8> = std::iter::from_fn(|| q.get(true))
        .map(|(e, _)| e.msg.body[0])
        .collect();
    assert_eq!(left, vec![0, 2]);
}

#[test]
fn a_new_max_length_applies_at_once() {
    let q = with_args(QueueArgs::default());
    let mut dead = Vec::new();
    for n in 0..5 {
        q.publish(expiring(n, "60000"), &mut dead);
    }
    q.set_args(
        QueueArgs {
            max_length: Some(2),
            ..QueueArgs::default()
        },
        &mut dead,
    );
    assert_eq!(q.counts().0, 2);
    let dropped: Vec<u8> = dead.iter().map(|d| d.msg.body[0]).collect();
    assert_eq!(dropped, [0, 1, 2]);
    assert!(dead.iter().all(|d| d.reason == DeathReason::Maxlen));
}
