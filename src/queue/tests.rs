//! Unit tests of the queue: dispatch, prefetch, limits, expiry, driven
//! without a tokio runtime and, where time matters, with a manual clock.

use super::args::Overflow;
use super::consumer::Credit;
use super::inbox::InboxRx;
use super::*;
use crate::clock::Now;
use bytes::Bytes;

pub(super) fn msg(n: u8) -> Arc<Message> {
    Arc::new(Message::new(
        "".into(),
        "q".into(),
        Default::default(),
        Bytes::new(),
        Bytes::from(vec![n]),
        crate::message::Meter::new(),
    ))
}

pub(super) fn consumer(sink: &Sink, prefetch: u16, no_ack: bool) -> Arc<ConsumerHandle> {
    Arc::new(ConsumerHandle {
        tag: "c".into(),
        connection: 1,
        channel: 1,
        no_ack,
        exclusive: false,
        priority: 0,
        arguments: Default::default(),
        credit: Arc::new(Credit::new(prefetch)),
        channel_credit: Arc::new(Credit::new(0)),
        sink: sink.clone(),
        cancelled: Default::default(),
    })
}

pub(super) fn bodies(rx: &mut InboxRx) -> Vec<u8> {
    deliveries(rx).iter().map(|d| d.entry.msg.body[0]).collect()
}

pub(super) fn deliveries(rx: &mut InboxRx) -> Vec<Delivery> {
    rx.try_recv_all()
        .into_iter()
        .filter_map(|ev| match ev {
            InboxEvent::Deliver(d) => Some(d),
            _ => None,
        })
        .collect()
}

pub(super) fn accepted(p: (Published, Dead)) -> bool {
    matches!(p.0, Published::Accepted { .. }) && p.1.is_empty()
}

#[test]
fn prefetch_limits_deliveries_until_credit_returns() {
    let q = Queue::new("q".into(), false, None, false, FieldTable::default());
    let (sink, mut rx) = Sink::new();
    let c = consumer(&sink, 2, false);
    q.add_consumer(c.clone()).expect("added");
    for i in 0..5 {
        assert!(accepted(q.publish(msg(i))));
    }
    let first = deliveries(&mut rx);
    assert_eq!(first.len(), 2);
    c.credit.give_back(1);
    q.ack(&[first[0].entry.seq]);
    assert_eq!(bodies(&mut rx), vec![2]);
    assert_eq!(q.counts(), (2, 1));
    assert_eq!(q.lock().counts(), (2, 2, 1));
}

#[test]
fn consumers_take_turns() {
    let q = Queue::new("q".into(), false, None, false, FieldTable::default());
    let (s1, mut r1) = Sink::new();
    let (s2, mut r2) = Sink::new();
    q.add_consumer(consumer(&s1, 0, true)).expect("c1");
    q.add_consumer(consumer(&s2, 0, true)).expect("c2");
    for i in 0..6 {
        assert!(accepted(q.publish(msg(i))));
    }
    assert_eq!(bodies(&mut r1), vec![0, 2, 4]);
    assert_eq!(bodies(&mut r2), vec![1, 3, 5]);
}

#[test]
fn a_vanished_connection_gives_its_delivery_back() {
    let q = Queue::new("q".into(), false, None, false, FieldTable::default());
    let (sink, mut rx) = Sink::new();
    let _ = rx.close();
    let c = consumer(&sink, 1, false);
    q.add_consumer(c.clone()).expect("added");
    assert!(accepted(q.publish(msg(1))));
    assert_eq!(q.lock().counts(), (1, 0, 1));
    assert!(c.credit.try_take(), "its credit was given back");
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
    on_clock(args, &Clock::System)
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
        dead.extend(q.publish(msg(i)).1.0);
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
    assert!(accepted(q.publish(msg(0))));
    let (p, dead) = q.publish(msg(1));
    assert_eq!(p, Published::Rejected);
    assert!(dead.is_empty());
    assert_eq!(q.counts().0, 1);
}

#[test]
fn a_message_expires_at_its_own_time_even_behind_longer_ttls() {
    let q = with_args(QueueArgs::default());
    for m in [expiring(0, "600000"), expiring(1, "1000"), msg(2)] {
        assert!(accepted(q.publish(m)));
    }
    assert_eq!(q.counts().0, 3);
    let (_, Dead(dead)) = q.expire(crate::clock::system_now_ms() + 5_000);
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
    for n in 0..5 {
        assert!(accepted(q.publish(expiring(n, "60000"))));
    }
    let Dead(dead) = q.set_args(QueueArgs {
        max_length: Some(2),
        ..QueueArgs::default()
    });
    assert_eq!(q.counts().0, 2);
    let dropped: Vec<u8> = dead.iter().map(|d| d.msg.body[0]).collect();
    assert_eq!(dropped, [0, 1, 2]);
    assert!(dead.iter().all(|d| d.reason == DeathReason::Maxlen));
}

fn on_clock(args: QueueArgs, clock: &Clock) -> Arc<Queue> {
    Queue::with_log(
        "q".into(),
        false,
        None,
        false,
        FieldTable::default(),
        None,
        None,
        Vec::new(),
        args,
        None,
        clock.clone(),
    )
}

#[test]
fn a_queue_ttl_runs_on_the_queue_clock() {
    let clock = Clock::manual(1_000_000);
    let q = on_clock(
        QueueArgs {
            message_ttl: Some(1_000),
            ..Default::default()
        },
        &clock,
    );
    assert!(accepted(q.publish(msg(7))));
    clock.advance(999);
    let (_, dead) = q.expire(clock.now_ms());
    assert!(dead.is_empty(), "not due yet");
    clock.advance(1);
    let (_, Dead(dead)) = q.expire(clock.now_ms());
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeathReason::Expired);
    assert_eq!(q.counts().0, 0);
}

#[test]
fn publishing_with_a_ttl_arms_the_timer_once_for_the_earliest_deadline() {
    let mut st = QueueState {
        timed: true,
        args: Arc::new(QueueArgs {
            message_ttl: Some(500),
            ..Default::default()
        }),
        ..QueueState::default()
    };
    let clock = Clock::manual(10_000);
    let mut fx = Effects::default();
    st.publish(msg(0), None, &Now::of(&clock), &mut fx);
    assert_eq!(fx.arm, Some(10_500));
    clock.advance(100);
    let mut fx = Effects::default();
    st.publish(msg(1), None, &Now::of(&clock), &mut fx);
    assert_eq!(fx.arm, None, "an earlier deadline is already armed");
}

#[test]
fn the_queue_keeps_what_it_delivered_until_it_is_settled() {
    let q = with_args(QueueArgs {
        delivery_limit: Some(1),
        dead_letter_exchange: Some("dlx".into()),
        ..Default::default()
    });
    let (sink, mut rx) = Sink::new();
    q.add_consumer(consumer(&sink, 0, false)).expect("added");
    for i in 0..3 {
        assert!(accepted(q.publish(msg(i))));
    }
    let d = deliveries(&mut rx);
    assert_eq!(q.lock().counts(), (0, 3, 1));
    // Requeued: back in front, redelivered, delivered again at once.
    assert!(q.requeue(&[d[0].entry.seq]).is_empty());
    let again = deliveries(&mut rx);
    assert_eq!(again.len(), 1);
    assert!(again[0].entry.redelivered);
    assert_eq!(again[0].entry.msg.body[0], 0);
    // Past its delivery limit it is dead-lettered instead.
    let Dead(dead) = q.requeue(&[again[0].entry.seq]);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeathReason::DeliveryLimit);
    // Rejected: dead-lettered (the queue has a DLX); acked: gone.
    let Dead(dead) = q.reject(&[d[1].entry.seq]);
    assert_eq!(dead[0].reason, DeathReason::Rejected);
    q.ack(&[d[2].entry.seq]);
    assert_eq!(q.lock().counts(), (0, 0, 1));
    // Settling what is not checked out any more does nothing.
    q.ack(&[d[2].entry.seq]);
    assert!(q.reject(&[d[1].entry.seq]).is_empty());
}

#[test]
fn a_rejected_message_without_a_dead_letter_exchange_is_just_dropped() {
    let q = with_args(QueueArgs::default());
    assert!(accepted(q.publish(msg(0))));
    let (e, _) = q.get(false).expect("a message");
    assert!(q.reject(&[e.seq]).is_empty());
    assert_eq!(q.lock().counts(), (0, 0, 0));
}

#[test]
fn deleting_cancels_consumers_and_forgets_checked_out_messages() {
    let q = with_args(QueueArgs::default());
    let (sink, mut rx) = Sink::new();
    q.add_consumer(consumer(&sink, 0, false)).expect("added");
    assert!(accepted(q.publish(msg(0))));
    let d = deliveries(&mut rx);
    assert_eq!(q.delete(), 0);
    assert!(matches!(
        rx.try_recv_all().as_slice(),
        [InboxEvent::Cancelled(_)]
    ));
    assert!(q.requeue(&[d[0].entry.seq]).is_empty());
    assert_eq!(q.lock().counts(), (0, 0, 0));
}

#[test]
fn a_no_ack_consumer_is_handed_a_backlog_a_watermark_at_a_time() {
    let q = Queue::new("q".into(), false, None, false, FieldTable::default());
    let kib = |n: u8| {
        Arc::new(Message::new(
            "".into(),
            "q".into(),
            Default::default(),
            Bytes::new(),
            Bytes::from(vec![n; 1024]),
            crate::message::Meter::new(),
        ))
    };
    for i in 0..10_000u32 {
        assert!(accepted(q.publish(kib(i as u8))));
    }
    let (sink, mut rx) = Sink::new();
    q.add_consumer(consumer(&sink, 0, true)).expect("consumer");
    let first = deliveries(&mut rx).len();
    assert!(
        (1000..3000).contains(&first),
        "about 2 MiB handed over, not the backlog: {first}"
    );
    // The connection writes them out and asks for more.
    assert!(sink.written(first * (1024 + super::consumer::DELIVERY_OVERHEAD)));
    q.dispatch();
    let second = deliveries(&mut rx).len();
    assert!((1000..3000).contains(&second), "{second}");
    assert_eq!(q.counts().0, 10_000 - first - second);
}
