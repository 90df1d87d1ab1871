//! Routing and queue behaviour where real clients' suites caught us
//! differing from RabbitMQ: CC/BCC, topic edge cases, shared prefetch,
//! refused publishes, and policies (set at runtime).
mod common;
use common::*;
use ferretmq::broker::policy::Policy;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use lapin::{BasicProperties, Confirmation, ExchangeKind};

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v.as_bytes()))
}

fn keys(ks: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        ks.iter().map(|k| s(k)).collect::<Vec<_>>(),
    ))
}

async fn exchange(ch: &lapin::Channel, name: &str, kind: ExchangeKind) {
    within(ch.exchange_declare(name.into(), kind, Default::default(), FieldTable::default()))
        .await
        .expect("exchange.declare");
}

async fn queue_with(ch: &lapin::Channel, name: &str, args: FieldTable) {
    within(ch.queue_declare(name.into(), Default::default(), args))
        .await
        .expect("queue.declare");
}

async fn publish_props(ch: &lapin::Channel, x: &str, key: &str, props: BasicProperties) {
    within(ch.basic_publish(x.into(), key.into(), Default::default(), b"m", props))
        .await
        .expect("publish");
}

fn header<'a>(m: &'a lapin::message::Delivery, k: &str) -> Option<&'a AMQPValue> {
    m.properties.headers().as_ref()?.inner().get(k)
}

#[tokio::test]
async fn cc_and_bcc_route_with_their_keys_each_queue_once() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "ssd", ExchangeKind::Direct).await;
    for q in ["ssd.key", "ssd.cc", "ssd.bcc", "ssd.none"] {
        declare(&ch, q).await;
        bind(&ch, q, "ssd", q).await;
    }
    let props = BasicProperties::default().with_headers(table(&[
        ("CC", keys(&["ssd.cc", "ssd.key"])),
        ("BCC", keys(&["ssd.bcc", "ssd.cc"])),
    ]));
    publish_props(&ch, "ssd", "ssd.key", props).await;
    for (q, n) in [
        ("ssd.key", 1),
        ("ssd.cc", 1),
        ("ssd.bcc", 1),
        ("ssd.none", 0),
    ] {
        assert_eq!(depth(&ch, q).await, n, "{q}");
    }
    let mut c = consume(&ch, "ssd.bcc", true).await;
    let m = next(&mut c).await;
    assert_eq!(m.routing_key.as_str(), "ssd.key");
    assert!(header(&m, "BCC").is_none(), "BCC never reaches a consumer");
    assert_eq!(header(&m, "CC"), Some(&keys(&["ssd.cc", "ssd.key"])));
}

#[tokio::test]
async fn a_cc_that_is_not_an_array_makes_the_message_invalid() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "ssd.bad").await;
    let props = BasicProperties::default().with_headers(table(&[("CC", s("ssd.bad"))]));
    let _ = ch
        .basic_publish("".into(), "x".into(), Default::default(), b"m", props)
        .await;
    let e = within(ch.queue_declare("ssd.bad".into(), Default::default(), FieldTable::default()))
        .await
        .expect_err("the channel is closed");
    assert!(closed_with(&e, 406), "{e}");
    let (_c, ch) = b.channel().await;
    assert_eq!(depth(&ch, "ssd.bad").await, 0, "nothing was enqueued");
}

#[tokio::test]
async fn dead_letters_route_with_the_cc_keys_unless_given_a_routing_key() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "dlx", ExchangeKind::Direct).await;
    // Keys that name no queue, so the default exchange routes none of them.
    for (q, k) in [("dl.cc", "k.cc"), ("dl.bcc", "k.bcc"), ("dl.own", "k.own")] {
        declare(&ch, q).await;
        bind(&ch, q, "dlx", k).await;
    }
    let dlx = ("x-dead-letter-exchange", s("dlx"));
    queue_with(&ch, "work.all", table(std::slice::from_ref(&dlx))).await;
    queue_with(
        &ch,
        "work.own",
        table(&[dlx, ("x-dead-letter-routing-key", s("k.own"))]),
    )
    .await;
    let props = BasicProperties::default()
        .with_headers(table(&[("CC", keys(&["k.cc"])), ("BCC", keys(&["k.bcc"]))]));
    publish_props(&ch, "", "work.all", props.clone()).await;
    let mut c = consume(&ch, "work.all", false).await;
    let m = next(&mut c).await;
    within(m.reject(BasicRejectOptions { requeue: false }))
        .await
        .expect("reject");
    // Routed by "work.all" (nothing bound), "k.cc" and "k.bcc".
    let mut c = consume(&ch, "dl.cc", true).await;
    let m = next(&mut c).await;
    assert_eq!(header(&m, "CC"), Some(&keys(&["k.cc"])));
    let Some(AMQPValue::FieldArray(deaths)) = header(&m, "x-death") else {
        panic!("x-death");
    };
    let AMQPValue::FieldTable(death) = &deaths.as_slice()[0] else {
        panic!("x-death entry");
    };
    assert_eq!(
        death.inner().get("routing-keys"),
        Some(&keys(&["work.all", "k.cc"])),
        "x-death lists the routing key and CC's keys, not BCC's"
    );
    assert_eq!(depth(&ch, "dl.bcc").await, 1);
    // With x-dead-letter-routing-key only that key is used, and CC goes.
    publish_props(&ch, "", "work.own", props).await;
    let mut c = consume(&ch, "work.own", false).await;
    let m = next(&mut c).await;
    within(m.reject(BasicRejectOptions { requeue: false }))
        .await
        .expect("reject");
    let mut c = consume(&ch, "dl.own", true).await;
    let m = next(&mut c).await;
    assert!(header(&m, "CC").is_none());
    assert_eq!(
        (depth(&ch, "dl.cc").await, depth(&ch, "dl.bcc").await),
        (0, 1)
    );
}

/// The matrix observed on RabbitMQ 3.10.8: which patterns match which keys.
#[tokio::test]
async fn topic_edge_cases_match_as_in_rabbitmq() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "edges", ExchangeKind::Topic).await;
    let patterns = [
        "*", "*.#", "#.#", "#", "a.#.b", "#.a.#", "a.*", "*.a", "a.*.b", "",
    ];
    for (i, p) in patterns.iter().enumerate() {
        let q = format!("edge.{i}");
        declare(&ch, &q).await;
        bind(&ch, &q, "edges", p).await;
    }
    let matrix: [(&str, &[&str]); 8] = [
        ("", &["#.#", "#", ""]),
        (".", &["*.#", "#.#", "#"]),
        ("a.", &["*.#", "#.#", "#", "#.a.#", "a.*"]),
        (".a", &["*.#", "#.#", "#", "#.a.#", "*.a"]),
        ("a..b", &["*.#", "#.#", "#", "a.#.b", "#.a.#", "a.*.b"]),
        ("a", &["*", "*.#", "#.#", "#", "#.a.#"]),
        ("a.b", &["*.#", "#.#", "#", "a.#.b", "#.a.#", "a.*"]),
        ("a.b.c", &["*.#", "#.#", "#", "#.a.#"]),
    ];
    for (key, want) in matrix {
        publish(&ch, "edges", key, b"m").await;
        for (i, p) in patterns.iter().enumerate() {
            let q = format!("edge.{i}");
            let got = depth(&ch, &q).await;
            assert_eq!(got == 1, want.contains(p), "key {key:?} pattern {p:?}");
            purge(&ch, &q).await;
        }
    }
}

#[tokio::test]
async fn room_freed_under_a_shared_prefetch_goes_to_every_queue_of_the_channel() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "shared.a").await;
    declare(&ch, "shared.b").await;
    for i in 0..2u8 {
        publish(&ch, "", "shared.a", &[i]).await;
    }
    for i in 0..4u8 {
        publish(&ch, "", "shared.b", &[i]).await;
    }
    within(ch.basic_qos(2, BasicQosOptions { global: true }))
        .await
        .expect("qos");
    let mut a = consume(&ch, "shared.a", false).await;
    let first = [next(&mut a).await, next(&mut a).await];
    let mut bq = consume(&ch, "shared.b", false).await;
    assert_eq!(
        depth(&ch, "shared.b").await,
        4,
        "the shared limit is reached"
    );
    for m in &first {
        within(m.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    // Queue a is empty: both freed slots must go to queue b.
    next(&mut bq).await;
    next(&mut bq).await;
    assert_eq!(
        depth(&ch, "shared.b").await,
        2,
        "exactly the two freed slots"
    );
}

#[tokio::test]
async fn a_full_queue_refusing_a_mandatory_publish_nacks_without_a_return() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    within(ch.confirm_select(Default::default()))
        .await
        .expect("confirms");
    for overflow in ["reject-publish", "reject-publish-dlx"] {
        let q = format!("full.{overflow}");
        queue_with(
            &ch,
            &q,
            table(&[
                ("x-max-length", AMQPValue::LongInt(1)),
                ("x-overflow", s(overflow)),
            ]),
        )
        .await;
        let mandatory = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let c = within(async {
                ch.basic_publish(
                    "".into(),
                    q.as_str().into(),
                    mandatory,
                    b"m",
                    Default::default(),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm")
            })
            .await;
            outcomes.push(c);
        }
        assert!(matches!(outcomes[0], Confirmation::Ack(None)), "{overflow}");
        assert!(
            matches!(outcomes[1], Confirmation::Nack(None)),
            "{overflow}: a nack and no Basic.Return, got {:?}",
            outcomes[1]
        );
    }
}

fn set_policy(b: &TestBroker, name: &str, pattern: &str, apply_to: &str, prio: i64, def: &str) {
    let v: serde_json::Value = serde_json::from_str(def).expect("json");
    let p = Policy::new(
        name,
        pattern,
        apply_to,
        prio,
        ferretmq::broker::policy::json_table(&v),
    )
    .expect("policy");
    let running = b.running.as_ref().expect("running");
    running
        .broker
        .vhost("/")
        .expect("vhost")
        .set_policy(p)
        .expect("policy saved");
}

#[tokio::test]
async fn a_policy_alternate_exchange_takes_unroutable_messages_and_an_argument_beats_it() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    for x in ["ae.policy", "ae.arg"] {
        exchange(&ch, x, ExchangeKind::Fanout).await;
        declare(&ch, x).await;
        bind(&ch, x, x, "").await;
    }
    within(ch.exchange_declare(
        "pae.own".into(),
        ExchangeKind::Direct,
        Default::default(),
        table(&[("alternate-exchange", s("ae.arg"))]),
    ))
    .await
    .expect("exchange");
    exchange(&ch, "pae.plain", ExchangeKind::Direct).await;
    set_policy(
        &b,
        "ae",
        "^pae\\.",
        "exchanges",
        0,
        r#"{"alternate-exchange":"ae.policy"}"#,
    );
    publish(&ch, "pae.plain", "nowhere", b"1").await;
    publish(&ch, "pae.own", "nowhere", b"2").await;
    assert_eq!(depth(&ch, "ae.policy").await, 1);
    assert_eq!(depth(&ch, "ae.arg").await, 1);
    // A policy for queues only does not apply to exchanges.
    set_policy(
        &b,
        "ae",
        "^pae\\.",
        "queues",
        0,
        r#"{"alternate-exchange":"ae.arg"}"#,
    );
    publish(&ch, "pae.plain", "nowhere", b"3").await;
    assert_eq!(depth(&ch, "ae.arg").await, 1);
}

#[tokio::test]
async fn policy_ttl_and_dead_lettering_apply_to_an_existing_queue() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "pdlx", ExchangeKind::Direct).await;
    declare(&ch, "pdl.expired").await;
    bind(&ch, "pdl.expired", "pdlx", "expired").await;
    declare(&ch, "pol.ttl").await;
    set_policy(
        &b,
        "ttl",
        "^pol\\.",
        "queues",
        0,
        r#"{"message-ttl":1,"dead-letter-exchange":"pdlx","dead-letter-routing-key":"expired"}"#,
    );
    publish(&ch, "", "pol.ttl", b"short-lived").await;
    let mut c = consume(&ch, "pdl.expired", true).await;
    let m = next(&mut c).await;
    assert_eq!(m.data, b"short-lived");
    assert_eq!(m.routing_key.as_str(), "expired");
}

#[tokio::test]
async fn only_the_highest_priority_policy_applies_and_it_can_be_cleared() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "prio.q").await;
    set_policy(&b, "low", "^prio\\.", "queues", 1, r#"{"max-length":1}"#);
    set_policy(
        &b,
        "high",
        "^prio\\.",
        "all",
        2,
        r#"{"overflow":"reject-publish"}"#,
    );
    for i in 0..3u8 {
        publish(&ch, "", "prio.q", &[i]).await;
    }
    assert_eq!(depth(&ch, "prio.q").await, 3, "definitions are not merged");
    assert!(
        b.running
            .as_ref()
            .expect("running")
            .broker
            .vhost("/")
            .expect("vhost")
            .delete_policy("high")
            .expect("saved")
    );
    assert_eq!(depth(&ch, "prio.q").await, 1, "the low one applies now");
}

#[tokio::test]
async fn a_policy_expires_deletes_an_unused_queue() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "exp.q").await;
    set_policy(&b, "exp", "^exp\\.", "queues", 0, r#"{"expires":1}"#);
    let gone = async {
        loop {
            let (_c, probe) = b.channel().await;
            let r = probe
                .queue_declare(
                    "exp.q".into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await;
            if r.is_err() {
                return;
            }
            // A passive declare renews the lease: give it a moment to lapse.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    within(gone).await;
}

#[tokio::test]
async fn a_policy_delivery_limit_dead_letters_after_that_many_returns() {
    let b = start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "pdl.limit", ExchangeKind::Fanout).await;
    declare(&ch, "pdl.limited").await;
    bind(&ch, "pdl.limited", "pdl.limit", "").await;
    within(ch.queue_declare(
        "lim.q".into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        table(&[("x-queue-type", s("quorum"))]),
    ))
    .await
    .expect("quorum queue");
    set_policy(
        &b,
        "lim",
        "^lim\\.",
        "queues",
        0,
        r#"{"delivery-limit":1,"dead-letter-exchange":"pdl.limit"}"#,
    );
    publish(&ch, "", "lim.q", b"poison").await;
    let mut c = consume(&ch, "lim.q", false).await;
    for _ in 0..2 {
        let m = next(&mut c).await;
        within(m.nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        }))
        .await
        .expect("nack");
    }
    let mut dead = consume(&ch, "pdl.limited", true).await;
    let m = within(dead.next()).await.expect("dead letter").expect("ok");
    assert_eq!(m.data, b"poison");
}
