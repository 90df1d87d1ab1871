//! Unit tests of paging: the memory window, runs of paged messages, and a
//! durable backlog recovered from its log.

use super::tests::{accepted, bodies, consumer, deliveries};
use super::*;
use crate::message::Meter;
use bytes::Bytes;

fn paged_queue(
    scratch: &std::path::Path,
    meter: Meter,
    args: QueueArgs,
    log: Option<QueueLog>,
    recovered: Vec<crate::store::queue_log::Recovered>,
) -> Arc<Queue> {
    Queue::with_log(
        "q".into(),
        log.is_some(),
        None,
        false,
        FieldTable::default(),
        log,
        Some(pager::Pager::new(scratch.to_path_buf(), meter)),
        recovered,
        args,
        None,
        Clock::System,
    )
}

/// Message `n`: its number in the body; persistent if asked.
fn numbered(n: u16, persistent: bool, meter: Meter) -> Arc<Message> {
    let mut props = amq_protocol::protocol::BasicProperties::default();
    if persistent {
        props = props.with_delivery_mode(2);
    }
    let header = crate::message::encode_header(&props, 2);
    Arc::new(Message::new(
        "".into(),
        "q".into(),
        props,
        header,
        Bytes::copy_from_slice(&n.to_be_bytes()),
        meter,
    ))
}

fn number(d: &Delivery) -> u16 {
    u16::from_be_bytes([d.entry.msg.body[0], d.entry.msg.body[1]])
}

#[test]
fn messages_past_the_memory_window_are_paged_out_and_come_back_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("scratch");
    let meter = crate::message::Meter::new();
    let args = QueueArgs {
        max_in_memory_length: Some(3),
        ..QueueArgs::default()
    };
    let q = paged_queue(&scratch, meter, args, None, Vec::new());
    let held = |n: u8| {
        Arc::new(Message::new(
            "".into(),
            "q".into(),
            Default::default(),
            crate::message::encode_header(&Default::default(), 1000),
            Bytes::from(vec![n; 1000]),
            meter,
        ))
    };
    for i in 0..50 {
        assert!(accepted(q.publish(held(i))));
    }
    assert_eq!(q.lock().ready.in_memory().0, 3, "only the window in memory");
    assert!(meter.held() < 10 * 1300, "{} bytes held", meter.held());
    assert!(scratch.exists(), "paged out to the scratch log");
    // Memory short broker-wide: even a queue with room pages.
    meter.set_paging(true);
    let (sink, mut rx) = Sink::new();
    q.add_consumer(consumer(&sink, 0, true)).expect("consumer");
    assert_eq!(bodies(&mut rx), (0..50).collect::<Vec<u8>>());
    for i in 50..60 {
        assert!(accepted(q.publish(held(i))));
    }
    assert_eq!(bodies(&mut rx), (50..60).collect::<Vec<u8>>());
    drop(q);
    assert_eq!(meter.held(), 0);
}

#[test]
fn a_deleted_queue_removes_its_paged_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("scratch");
    let meter = crate::message::Meter::new();
    meter.set_paging(true);
    let q = paged_queue(&scratch, meter, QueueArgs::default(), None, Vec::new());
    for i in 0..5 {
        let m = Message::new(
            "".into(),
            "q".into(),
            Default::default(),
            crate::message::encode_header(&Default::default(), 1),
            Bytes::from(vec![i]),
            meter,
        );
        assert!(accepted(q.publish(Arc::new(m))));
    }
    assert!(scratch.exists());
    assert_eq!(q.purge(), 5);
    q.delete();
    assert!(!scratch.exists(), "scratch log removed with the queue");
}

#[test]
fn a_paged_backlog_is_kept_as_runs_and_requeued_messages_keep_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meter = Meter::new();
    meter.set_paging(true);
    let q = paged_queue(
        &dir.path().join("scratch"),
        meter,
        QueueArgs::default(),
        None,
        Vec::new(),
    );
    for i in 0..1000 {
        assert!(accepted(q.publish(numbered(i, false, meter))));
    }
    assert_eq!(q.lock().counts().0, 1000);
    assert!(q.lock().ready.slots() <= 2, "a run, not a slot per message");
    let (sink, mut rx) = Sink::new();
    let c = consumer(&sink, 10, false);
    q.add_consumer(c.clone()).expect("consumer");
    let first = deliveries(&mut rx);
    assert_eq!(
        first.iter().map(number).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    // 2 and 5 come back; the rest are acked.
    let back: Vec<u64> = [2, 5].iter().map(|&i| first[i].entry.seq).collect();
    let done: Vec<u64> = first
        .iter()
        .map(|d| d.entry.seq)
        .filter(|s| !back.contains(s))
        .collect();
    c.credit.give_back(10);
    assert!(q.requeue(&back).is_empty());
    q.ack(&done);
    let mut order = Vec::new();
    loop {
        let got = deliveries(&mut rx);
        if got.is_empty() {
            break;
        }
        order.extend(got.iter().map(|d| (number(d), d.entry.redelivered)));
        c.credit.give_back(got.len() as u32);
        q.ack(&got.iter().map(|d| d.entry.seq).collect::<Vec<_>>());
    }
    let want: Vec<(u16, bool)> = [(2, true), (5, true)]
        .into_iter()
        .chain((10..1000).map(|i| (i, false)))
        .collect();
    assert_eq!(order, want);
    assert_eq!(q.lock().counts(), (0, 0, 1));
}

#[test]
fn a_purged_run_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("scratch");
    let meter = Meter::new();
    meter.set_paging(true);
    let q = paged_queue(&scratch, meter, QueueArgs::default(), None, Vec::new());
    for i in 0..500 {
        assert!(accepted(q.publish(numbered(i, false, meter))));
    }
    assert_eq!(q.purge(), 500);
    assert_eq!(q.lock().counts(), (0, 0, 0));
    for i in 500..510 {
        assert!(accepted(q.publish(numbered(i, false, meter))));
    }
    let (sink, mut rx) = Sink::new();
    q.add_consumer(consumer(&sink, 0, true)).expect("consumer");
    let got: Vec<u16> = deliveries(&mut rx).iter().map(number).collect();
    assert_eq!(got, (500..510).collect::<Vec<_>>());
}

#[test]
fn a_recovered_backlog_with_a_gap_comes_back_in_order_and_numbers_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logdir = dir.path().join("log");
    let scratch = dir.path().join("scratch");
    let meter = Meter::new();
    meter.set_paging(true);
    let sync = crate::store::SyncState::unsynced();
    let (log, rec) = QueueLog::open(&logdir, sync.clone(), meter).expect("open");
    assert!(rec.is_empty());
    let q = paged_queue(&scratch, meter, QueueArgs::default(), Some(log), Vec::new());
    for i in 0..300 {
        assert!(accepted(q.publish(numbered(i, true, meter))));
    }
    // One in the middle goes: the log still holds its record.
    let gone = q.lock().ready.drain_seqs()[0].0 + 150;
    assert_eq!(q.lock().counts().0, 0);
    drop(q);

    let (log, rec) = QueueLog::open(&logdir, sync.clone(), meter).expect("reopen");
    assert_eq!(rec.len(), 300, "nothing was acked in the log");
    drop(log);
    // Settle the one in the middle, as an ack before a restart would.
    let (mut log, _) = QueueLog::open(&logdir, sync.clone(), meter).expect("reopen");
    log.ack([gone]);
    drop(log);

    let (log, rec) = QueueLog::open(&logdir, sync.clone(), meter).expect("reopen");
    assert_eq!(rec.len(), 299);
    let q = paged_queue(&scratch, meter, QueueArgs::default(), Some(log), rec);
    assert!(q.lock().ready.slots() <= 2, "recovered as runs");
    assert!(accepted(q.publish(numbered(300, true, meter))));
    let (sink, mut rx) = Sink::new();
    q.add_consumer(consumer(&sink, 0, true)).expect("consumer");
    let got = deliveries(&mut rx);
    let want: Vec<u16> = (0..=300).filter(|&i| i != 150).collect();
    assert_eq!(got.iter().map(number).collect::<Vec<_>>(), want);
    assert!(
        got[..299].iter().all(|d| d.entry.redelivered),
        "recovered: redelivered"
    );
    assert!(!got[299].entry.redelivered);
    let seqs: Vec<u64> = got.iter().map(|d| d.entry.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "numbered on: {seqs:?}"
    );
    drop(q);
    let (_log, rec) = QueueLog::open(&logdir, sync, meter).expect("reopen");
    assert!(rec.is_empty(), "no-ack deliveries settle the log");
}

#[test]
fn a_transient_message_that_expires_on_disk_is_dead_lettered_from_the_scratch_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meter = Meter::new();
    meter.set_paging(true);
    let args = QueueArgs {
        message_ttl: Some(0),
        dead_letter_exchange: Some("dlx".into()),
        ..QueueArgs::default()
    };
    let q = paged_queue(&dir.path().join("scratch"), meter, args, None, Vec::new());
    let (published, dead) = q.publish(numbered(7, false, meter));
    assert!(matches!(published, Published::Accepted { .. }));
    let bodies: Vec<&[u8]> = dead.0.iter().map(|d| &d.msg.body[..]).collect();
    assert_eq!(
        bodies,
        [&7u16.to_be_bytes()[..]],
        "read back and dead-lettered"
    );
    assert_eq!(q.lock().counts(), (0, 0, 0));
}
