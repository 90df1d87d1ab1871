//! Durability: definitions and persistent messages survive restarts and
//! kill -9; confirms mean the data is on disk; a torn tail is cut, not fatal;
//! disk space comes back when a queue drains.
mod common;
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};

fn durable_q() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn definitions_and_persistent_messages_survive_a_restart() {
    let b = start().await;
    {
        let (_c, ch) = b.channel().await;
        within(ch.confirm_select(Default::default()))
            .await
            .expect("confirms");
        let durable_x = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        within(ch.exchange_declare(
            "orders".into(),
            ExchangeKind::Fanout,
            durable_x,
            FieldTable::default(),
        ))
        .await
        .expect("x");
        within(ch.exchange_declare(
            "transient-x".into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ))
        .await
        .expect("x");
        within(ch.queue_declare("payments".into(), durable_q(), FieldTable::default()))
            .await
            .expect("q");
        let named = within(ch.queue_declare("".into(), durable_q(), FieldTable::default()))
            .await
            .expect("q");
        assert!(named.name().as_str().starts_with("amq.gen-"));
        declare(&ch, "transient-q").await;
        within(ch.queue_bind(
            "payments".into(),
            "orders".into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        ))
        .await
        .expect("bind");
        for i in 0..10u8 {
            publish_persistent(&ch, "orders", "", &[i]).await;
        }
        // A transient message in a durable queue does not survive.
        within(ch.basic_publish(
            "".into(),
            "payments".into(),
            Default::default(),
            b"transient",
            BasicProperties::default(),
        ))
        .await
        .expect("publish")
        .await
        .expect("confirm");
        // Ack the first three, leave two delivered but unacked.
        for _ in 0..3 {
            let m = get(&ch, "payments").await.expect("msg");
            within(ch.basic_ack(m.delivery.delivery_tag, Default::default()))
                .await
                .expect("ack");
        }
        get(&ch, "payments").await.expect("unacked 3");
        get(&ch, "payments").await.expect("unacked 4");
        std::fs::write(b.data_dir().join("server-named"), named.name().as_str()).expect("note");
    }
    let b = b.restart().await;
    let (_c, ch) = b.channel().await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let named = std::fs::read_to_string(b.data_dir().join("server-named")).expect("note");
    within(ch.queue_declare(named.as_str().into(), passive, FieldTable::default()))
        .await
        .expect("server-named durable queue kept its name");
    let err = within(ch.queue_declare("transient-q".into(), passive, FieldTable::default()))
        .await
        .expect_err("transient queue gone");
    assert_eq!(reply_code(&err), Some(404));
    let (_c, ch) = b.channel().await;
    let err = within(ch.exchange_declare(
        "transient-x".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect_err("transient exchange gone");
    assert_eq!(reply_code(&err), Some(404));
    let (_c, ch) = b.channel().await;
    let mut seen = vec![];
    while let Some(m) = get(&ch, "payments").await {
        assert!(m.delivery.redelivered);
        seen.push(m.delivery.data[0]);
    }
    assert_eq!(
        seen,
        vec![3, 4, 5, 6, 7, 8, 9],
        "acked ones gone, order kept, transient lost"
    );
    // The binding survived too.
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    publish_persistent(&ch, "orders", "", b"again").await;
    assert_eq!(depth(&ch, "payments").await, 1);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_rest_recovered() {
    let b = start().await;
    {
        let (_c, ch) = b.channel().await;
        within(ch.confirm_select(Default::default()))
            .await
            .expect("confirms");
        within(ch.queue_declare("torn".into(), durable_q(), FieldTable::default()))
            .await
            .expect("q");
        for i in 0..5u8 {
            publish_persistent(&ch, "", "torn", &[i; 100]).await;
        }
    }
    let b = {
        let mut b = b;
        b.shutdown().await;
        // Tear the last record in half, as a crash mid-write would.
        let seg = find_segments(b.data_dir())
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .expect("a segment");
        let len = std::fs::metadata(&seg).expect("meta").len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open");
        f.set_len(len - 50).expect("truncate");
        b.restart().await
    };
    let (_c, ch) = b.channel().await;
    assert_eq!(depth(&ch, "torn").await, 4);
}

fn find_segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(find_segments(&p));
        } else if p.extension().is_some_and(|x| x == "seg") {
            out.push(p);
        }
    }
    out
}

fn segment_bytes(dir: &std::path::Path) -> u64 {
    find_segments(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test]
async fn disk_space_comes_back_when_a_queue_drains() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    within(ch.queue_declare("space".into(), durable_q(), FieldTable::default()))
        .await
        .expect("q");
    let body = vec![7u8; 64 * 1024];
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut confirms = vec![];
    for _ in 0..600 {
        confirms.push(
            within(ch.basic_publish(
                "".into(),
                "space".into(),
                Default::default(),
                &body,
                props.clone(),
            ))
            .await
            .expect("publish"),
        );
    }
    for c in confirms {
        within(c).await.expect("confirm");
    }
    assert!(
        segment_bytes(b.data_dir()) > 30 * 1024 * 1024,
        "messages are on disk"
    );
    within(ch.basic_qos(100, Default::default()))
        .await
        .expect("qos");
    let mut consumer = consume(&ch, "space", false).await;
    for _ in 0..600 {
        let d = next(&mut consumer).await;
        within(d.acker.ack(Default::default())).await.expect("ack");
    }
    let _ = within(ch.queue_declare(
        "space".into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await;
    assert!(
        segment_bytes(b.data_dir()) < 1024 * 1024,
        "segments deleted: {} bytes left",
        segment_bytes(b.data_dir())
    );
    within(ch.queue_delete("space".into(), Default::default()))
        .await
        .expect("delete");
    assert_eq!(segment_bytes(b.data_dir()), 0);
}

#[tokio::test]
async fn a_backlog_paged_to_disk_comes_back_intact_and_in_order() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    within(ch.queue_declare("paged".into(), durable_q(), FieldTable::default()))
        .await
        .expect("q");
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id("m".into());
    let body = |i: u32| -> Vec<u8> {
        (0..32 * 1024u32)
            .map(|j| (i.wrapping_mul(31).wrapping_add(j) % 251) as u8)
            .collect()
    };
    let mut confirms = vec![];
    for i in 0..400u32 {
        confirms.push(
            within(ch.basic_publish(
                "".into(),
                "paged".into(),
                Default::default(),
                &body(i),
                props.clone(),
            ))
            .await
            .expect("publish"),
        );
    }
    for c in confirms {
        within(c).await.expect("confirm");
    }
    let mut consumer = consume(&ch, "paged", true).await;
    for i in 0..400u32 {
        let d = next(&mut consumer).await;
        assert_eq!(d.data, body(i), "message {i}");
        assert_eq!(
            d.properties.message_id().as_ref().map(|m| m.as_str()),
            Some("m")
        );
    }
}

#[tokio::test]
async fn a_priority_queue_keeps_its_order_across_a_restart() {
    let b = start().await;
    let mut args = FieldTable::default();
    args.insert(
        "x-max-priority".into(),
        lapin::types::AMQPValue::LongInt(10),
    );
    {
        let (_c, ch) = b.channel().await;
        within(ch.queue_declare(
            "prio".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        ))
        .await
        .expect("declare");
        within(ch.confirm_select(Default::default()))
            .await
            .expect("confirms");
        for (body, p) in [(b"low", 1u8), (b"top", 9), (b"mid", 5), (b"no-", 0)] {
            within(async {
                ch.basic_publish(
                    "".into(),
                    "prio".into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_priority(p),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm")
            })
            .await;
        }
    }
    let b = b.restart().await;
    let (_c, ch) = b.channel().await;
    let mut order = Vec::new();
    while let Some(m) = get(&ch, "prio").await {
        order.push(String::from_utf8_lossy(&m.data).into_owned());
    }
    assert_eq!(order, ["top", "mid", "low", "no-"]);
}

#[tokio::test]
async fn a_quorum_queue_keeps_its_delivery_count_across_a_restart() {
    let b = start().await;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    {
        let (_c, ch) = b.channel().await;
        within(ch.queue_declare("qq".into(), durable_q(), args))
            .await
            .expect("declare");
        within(ch.confirm_select(Default::default()))
            .await
            .expect("confirms");
        publish_persistent(&ch, "", "qq", b"poison").await;
        for _ in 0..2 {
            let m = get(&ch, "qq").await.expect("message");
            within(m.nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            }))
            .await
            .expect("nack");
        }
        assert_eq!(depth(&ch, "qq").await, 1);
    }
    let b = b.restart().await;
    let (_c, ch) = b.channel().await;
    let m = get(&ch, "qq").await.expect("message");
    let count = m
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned());
    assert_eq!(count, Some(lapin::types::AMQPValue::LongLongInt(2)));
}

/// What was deleted stays deleted: a durable queue and an auto-delete
/// exchange cascade are gone after a restart too.
#[tokio::test]
async fn deleted_durable_things_stay_deleted_across_a_restart() {
    let b = start().await;
    {
        let (_c, ch) = b.channel().await;
        within(ch.queue_declare("doomed".into(), durable_q(), FieldTable::default()))
            .await
            .expect("declare");
        within(ch.queue_delete("doomed".into(), Default::default()))
            .await
            .expect("delete");
        // A durable auto-delete exchange whose last binding goes to a
        // transient queue: deleting the queue takes the exchange.
        within(ch.exchange_declare(
            "fleeting".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await
        .expect("exchange");
        declare(&ch, "transient").await;
        bind(&ch, "transient", "fleeting", "k").await;
        within(ch.queue_delete("transient".into(), Default::default()))
            .await
            .expect("delete");
    }
    let b = b.restart().await;
    let (_c, probe) = b.channel().await;
    let gone = within(probe.exchange_declare(
        "fleeting".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await;
    assert!(gone.is_err(), "the auto-deleted exchange came back");
    let (_c, ch) = b.channel().await;
    let r = within(ch.queue_declare(
        "doomed".into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await;
    assert!(r.is_err(), "the deleted queue came back");
}
