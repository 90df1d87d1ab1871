//! Paging: past a queue's memory window, transient messages wait on disk
//! (a scratch store discarded at restart) and come back intact and in order.
mod common;
use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use common::*;
use lapin::BasicProperties;
use lapin::options::*;

fn body(i: u32) -> Vec<u8> {
    (0..4096u32)
        .map(|j| (i.wrapping_mul(31).wrapping_add(j) % 251) as u8)
        .collect()
}

/// Bytes under the data dir's scratch space for paged-out messages.
fn paged_bytes(data: &std::path::Path) -> u64 {
    fn walk(p: &std::path::Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        rd.filter_map(|e| e.ok())
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(&data.join("paged"))
}

#[tokio::test]
async fn a_transient_backlog_past_the_window_is_paged_and_drains_in_order() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-max-in-memory-length"),
        AMQPValue::LongInt(50),
    );
    declare_with(&ch, "backlog", false, args).await;
    let props = BasicProperties::default().with_message_id("m".into());
    for i in 0..2000u32 {
        within(ch.basic_publish(
            "".into(),
            "backlog".into(),
            Default::default(),
            &body(i),
            props.clone(),
        ))
        .await
        .expect("publish");
    }
    assert_eq!(depth(&ch, "backlog").await, 2000);
    let on_disk = paged_bytes(b.data_dir());
    assert!(
        on_disk > 1900 * 4096,
        "all but the window paged out: {on_disk} bytes on disk"
    );
    let mut consumer = consume(&ch, "backlog", true).await;
    for i in 0..2000u32 {
        let d = next(&mut consumer).await;
        assert_eq!(d.data, body(i), "message {i}");
        assert_eq!(
            d.properties.message_id().as_ref().map(|m| m.as_str()),
            Some("m")
        );
    }
    assert_eq!(paged_bytes(b.data_dir()), 0, "drained: the space is back");
}

#[tokio::test]
async fn paged_messages_go_with_their_queue_and_do_not_outlive_a_restart() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-max-in-memory-bytes"),
        AMQPValue::LongInt(0),
    );
    for q in ["gone", "kept"] {
        declare_with(&ch, q, true, args.clone()).await;
        for i in 0..100u32 {
            publish(&ch, "", q, &body(i)).await;
        }
    }
    assert_eq!(depth(&ch, "kept").await, 100);
    // Each queue's last records (under 64 KiB) may still wait to be written.
    assert!(paged_bytes(b.data_dir()) >= 2 * (100 * 4096 - 64 * 1024));
    within(ch.queue_delete("gone".into(), Default::default()))
        .await
        .expect("delete");
    let left = paged_bytes(b.data_dir());
    assert!(
        left < 110 * 4096,
        "the deleted queue's pages are gone: {left}"
    );

    let b = b.restart().await;
    assert_eq!(
        paged_bytes(b.data_dir()),
        0,
        "scratch space emptied at start"
    );
    let (_c, ch) = b.channel().await;
    // Transient messages do not survive a restart, paged or not.
    assert_eq!(depth(&ch, "kept").await, 0);
}

#[tokio::test]
async fn a_paged_persistent_backlog_partly_acked_comes_back_whole_after_a_restart() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-max-in-memory-length"),
        AMQPValue::LongInt(10),
    );
    declare_with(&ch, "kept", true, args).await;
    for i in 0..500u32 {
        publish_persistent(&ch, "", "kept", &body(i)).await;
    }
    // The first 100 are consumed and acked: the log holds their records
    // still, inside the span of what is left.
    within(ch.basic_qos(100, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = consume(&ch, "kept", false).await;
    for i in 0..100u32 {
        let d = next(&mut consumer).await;
        assert_eq!(d.data, body(i), "message {i}");
        within(d.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    drop(consumer);
    // Close-Ok comes after every ack before it was taken.
    within(ch.close(200, "done".into())).await.expect("close");

    let b = b.restart().await;
    let (_c, ch) = b.channel().await;
    assert_eq!(depth(&ch, "kept").await, 400);
    let mut consumer = consume(&ch, "kept", true).await;
    for i in 100..500u32 {
        let d = next(&mut consumer).await;
        assert_eq!(d.data, body(i), "message {i}");
    }
}
