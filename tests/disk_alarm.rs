//! The disk alarm and a full disk, on a small tmpfs made for each test (it
//! needs root to mount; without it the tests say so and pass vacuously).
mod common;
use common::*;
use futures_lite::StreamExt;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Event};
use std::process::Command;

const MIB: u64 = 1024 * 1024;

/// A tmpfs of `size` bytes mounted on a fresh temporary dir, unmounted when
/// dropped.
struct SmallFs {
    dir: Option<tempfile::TempDir>,
}

impl SmallFs {
    fn mount(size: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("cannot mount a tmpfs here (not root?): skipped");
            return None;
        }
        Some(SmallFs { dir: Some(dir) })
    }

    fn take(&mut self) -> tempfile::TempDir {
        self.dir.take().expect("taken once")
    }
}

fn unmount(path: &std::path::Path) {
    let _ = Command::new("umount").arg("-l").arg(path).status();
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

#[tokio::test]
async fn publishers_are_blocked_low_on_disk_and_unblocked_when_space_returns() {
    let Some(mut fs) = SmallFs::mount(64 * MIB) else {
        return;
    };
    let b = start_in(fs.take(), |c| c.disk_free_limit = 40 * MIB).await;
    let path = b.data_dir().to_path_buf();
    let publisher = b.connect().await;
    let mut events = publisher.events_listener();
    let ch = within(publisher.create_channel()).await.expect("channel");
    declare_with(&ch, "fill", true, FieldTable::default()).await;
    // Persistent messages, one confirmed at a time, until the alarm stops
    // them: past 24 MiB less than 40 MiB is free.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    let body = vec![5u8; 256 * 1024];
    let stopped = stop.clone();
    let sender = tokio::spawn(async move {
        for _ in 0..200 {
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let confirm = ch
                .basic_publish(
                    "".into(),
                    "fill".into(),
                    Default::default(),
                    &body,
                    persistent(),
                )
                .await
                .expect("publish");
            assert!(confirm.await.expect("confirm").is_ack());
        }
        ch
    });
    within(async {
        loop {
            match events.next().await {
                Some(Event::ConnectionBlocked(reason)) => {
                    assert_eq!(reason, "low on disk");
                    return;
                }
                Some(_) => continue,
                None => panic!("events ended"),
            }
        }
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let broker = b.running.as_ref().expect("running").broker.clone();
    assert!(broker.alarms.disk_alarm());
    // Purging frees the space: the alarm clears and the publisher goes on.
    let (_c, other) = b.channel().await;
    within(async {
        loop {
            within(other.queue_purge("fill".into(), Default::default()))
                .await
                .expect("purge");
            tokio::select! {
                ev = events.next() => if let Some(Event::ConnectionUnblocked) = ev { return },
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            }
        }
    })
    .await;
    within(sender).await.expect("sender finished");
    drop(b);
    unmount(&path);
}

#[tokio::test]
async fn a_full_disk_nacks_what_it_cannot_write_and_confirms_nothing_lost() {
    full_disk(true).await;
}

/// Transient messages paged out of memory meet the full disk instead.
#[tokio::test]
async fn a_full_disk_nacks_transient_messages_it_cannot_page_out() {
    full_disk(false).await;
}

/// Publish 12.5 MiB into an 8 MiB file system: persistent messages into a
/// durable queue, or transient ones into a queue that keeps nothing in
/// memory. Some are nacked; every confirmed one comes back intact.
async fn full_disk(persistent_messages: bool) {
    let Some(mut fs) = SmallFs::mount(8 * MIB) else {
        return;
    };
    // No alarm: let the disk really fill.
    let b = start_in(fs.take(), |c| c.disk_free_limit = 0).await;
    let path = b.data_dir().to_path_buf();
    let (_c, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    let mut args = FieldTable::default();
    if !persistent_messages {
        args.insert("x-max-in-memory-bytes".into(), AMQPValue::LongInt(0));
    }
    declare_with(&ch, "full", persistent_messages, args).await;
    let props = match persistent_messages {
        true => persistent(),
        false => BasicProperties::default(),
    };
    let body = |i: u32| -> Vec<u8> { (0..64 * 1024u32).map(|j| ((i + j) % 251) as u8).collect() };
    let mut confirmed = vec![];
    let mut nacked = 0;
    for i in 0..200u32 {
        let c = within(ch.basic_publish(
            "".into(),
            "full".into(),
            Default::default(),
            &body(i),
            props.clone(),
        ))
        .await
        .expect("publish");
        match within(c).await.expect("confirm") {
            lapin::Confirmation::Ack(_) => confirmed.push(i),
            lapin::Confirmation::Nack(_) => nacked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        nacked > 0,
        "8 MiB cannot hold 12.5 MiB: some publishes nacked"
    );
    assert!(!confirmed.is_empty());
    // Every confirmed message is there, intact, in order; the broker lives.
    let mut consumer = consume(&ch, "full", true).await;
    for i in &confirmed {
        assert_eq!(next(&mut consumer).await.data, body(*i), "message {i}");
    }
    assert_eq!(depth(&ch, "full").await, 0);
    // A new connection still works.
    let (_c2, ch2) = b.channel().await;
    declare(&ch2, "after").await;
    drop(b);
    unmount(&path);
}
