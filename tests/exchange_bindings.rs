//! Exchange-to-exchange bindings and alternate exchanges.
mod common;
use common::*;
use lapin::ExchangeKind;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};

#[tokio::test]
async fn messages_flow_through_exchange_to_exchange_bindings_once() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    for (x, kind) in [("src", ExchangeKind::Topic), ("mid", ExchangeKind::Fanout)] {
        within(ch.exchange_declare(x.into(), kind, Default::default(), FieldTable::default()))
            .await
            .expect("declare");
    }
    declare(&ch, "sink").await;
    within(ch.exchange_bind(
        "mid".into(),
        "src".into(),
        "a.#".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("e2e bind");
    // A cycle back to the source must not loop or duplicate.
    within(ch.exchange_bind(
        "src".into(),
        "mid".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("cycle");
    within(ch.queue_bind(
        "sink".into(),
        "mid".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("bind");
    within(ch.queue_bind(
        "sink".into(),
        "src".into(),
        "a.b".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("bind");
    publish(&ch, "src", "a.b", b"1").await;
    publish(&ch, "src", "x.y", b"2").await;
    assert_eq!(depth(&ch, "sink").await, 1);
    within(ch.exchange_unbind(
        "mid".into(),
        "src".into(),
        "a.#".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("unbind");
    publish(&ch, "src", "a.c", b"3").await;
    assert_eq!(depth(&ch, "sink").await, 1);
}

#[tokio::test]
async fn binding_a_missing_exchange_is_404() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let err = within(ch.exchange_bind(
        "nope".into(),
        "amq.direct".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("missing");
    assert_eq!(reply_code(&err), Some(404));
}

#[tokio::test]
async fn unroutable_messages_go_to_the_alternate_exchange() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.exchange_declare(
        "ae".into(),
        ExchangeKind::Fanout,
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("ae");
    let mut args = FieldTable::default();
    args.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString("ae".into()),
    );
    within(ch.exchange_declare(
        "main".into(),
        ExchangeKind::Direct,
        Default::default(),
        args,
    ))
    .await
    .expect("main");
    declare(&ch, "routed").await;
    declare(&ch, "unrouted").await;
    within(ch.queue_bind(
        "routed".into(),
        "main".into(),
        "k".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("bind");
    within(ch.queue_bind(
        "unrouted".into(),
        "ae".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("bind");
    publish(&ch, "main", "k", b"1").await;
    publish(&ch, "main", "other", b"2").await;
    assert_eq!(depth(&ch, "routed").await, 1);
    assert_eq!(depth(&ch, "unrouted").await, 1);
}

#[tokio::test]
async fn deleting_an_exchange_removes_bindings_to_it() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.exchange_declare(
        "gone".into(),
        ExchangeKind::Fanout,
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("declare");
    declare(&ch, "q").await;
    within(ch.queue_bind(
        "q".into(),
        "gone".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("bind");
    within(ch.exchange_bind(
        "gone".into(),
        "amq.fanout".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("e2e");
    within(ch.exchange_delete("gone".into(), ExchangeDeleteOptions::default()))
        .await
        .expect("delete");
    within(ch.exchange_declare(
        "gone".into(),
        ExchangeKind::Fanout,
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("redeclare");
    publish(&ch, "amq.fanout", "", b"x").await;
    assert_eq!(
        depth(&ch, "q").await,
        0,
        "the old binding went with the old exchange"
    );
}

#[tokio::test]
async fn consistent_hash_sends_a_key_to_one_queue_and_honours_weights() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.exchange_declare(
        "ch".into(),
        ExchangeKind::Custom("x-consistent-hash".into()),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("declare");
    for (q, w) in [("light", "1"), ("heavy", "3")] {
        declare(&ch, q).await;
        within(ch.queue_bind(
            q.into(),
            "ch".into(),
            w.into(),
            Default::default(),
            FieldTable::default(),
        ))
        .await
        .expect("bind");
    }
    for i in 0..1000 {
        publish(&ch, "ch", &format!("k{i}"), b"").await;
    }
    let (light, heavy) = (depth(&ch, "light").await, depth(&ch, "heavy").await);
    assert_eq!(light + heavy, 1000);
    assert!(heavy > light * 3 / 2, "weights ignored: {light} vs {heavy}");
    within(ch.queue_purge("light".into(), Default::default()))
        .await
        .expect("purge");
    within(ch.queue_purge("heavy".into(), Default::default()))
        .await
        .expect("purge");
    for _ in 0..5 {
        publish(&ch, "ch", "same", b"").await;
    }
    let mut d = [depth(&ch, "light").await, depth(&ch, "heavy").await];
    d.sort_unstable();
    assert_eq!(d, [0, 5]);
    let err = within(ch.queue_bind(
        "light".into(),
        "ch".into(),
        "lots".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("weight must be an integer");
    assert_eq!(reply_code(&err), Some(406));
}

/// An auto-delete queue going with its last consumer takes the auto-delete
/// exchanges that are left without bindings with it, through
/// exchange-to-exchange bindings too, as in RabbitMQ.
#[tokio::test]
async fn auto_delete_cascades_from_a_queue_through_exchange_bindings() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    let auto = ExchangeDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    for (x, kind) in [
        ("outer", ExchangeKind::Fanout),
        ("inner", ExchangeKind::Direct),
    ] {
        within(ch.exchange_declare(x.into(), kind, auto, FieldTable::default()))
            .await
            .expect("exchange");
    }
    within(ch.exchange_bind(
        "inner".into(),
        "outer".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("e2e bind");
    within(ch.queue_declare(
        "leaf".into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("queue");
    bind(&ch, "leaf", "inner", "k").await;
    let c = consume(&ch, "leaf", true).await;
    within(ch.basic_cancel(c.tag(), Default::default()))
        .await
        .expect("cancel");
    for x in ["inner", "outer"] {
        let (_c, probe) = b.channel().await;
        let r = within(probe.exchange_declare(
            x.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await;
        assert!(r.is_err(), "{x} should be gone");
    }
}
