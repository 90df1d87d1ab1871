//! Exchanges and exchange bindings replicated through a three-node
//! cluster's log (`replicate_topology`): declared on one node, they exist
//! on every node; every node answers a declare, a bind or a delete alike;
//! a majority is needed to change them.
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/http.rs"]
mod http;
use cluster::*;
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};

async fn declare_exchange(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(ch.exchange_declare(name.into(), kind, durable, FieldTable::default())).await
}

/// Whether a passive declare on `node` finds the exchange.
async fn exists_on(node: &Node, name: &str) -> bool {
    let (_c, ch) = channel_on(node).await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let r = ch.exchange_declare(
        name.into(),
        ExchangeKind::Direct,
        passive,
        FieldTable::default(),
    );
    within(r).await.is_ok()
}

async fn until_exists(node: &Node, name: &str, wanted: bool) {
    let what = format!(
        "exchange '{name}' to be {}on {}",
        if wanted { "" } else { "gone " },
        node.name
    );
    eventually(&what, CLUSTER_DEADLINE, || async {
        (exists_on(node, name).await == wanted).then_some(())
    })
    .await;
}

#[tokio::test]
async fn exchanges_declared_on_one_node_exist_on_all_and_every_node_answers_alike() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = replicating(root.path(), "").await;
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    declare_exchange(&ch2, "orders", ExchangeKind::Fanout)
        .await
        .expect("declare on n2");
    // The node a client declared on has it at once: the client's next
    // method may use it.
    within(ch2.exchange_declare(
        "orders".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("passive declare on n2 right after");
    for n in [&nodes[0], &nodes[2]] {
        until_exists(n, "orders", true).await;
    }

    // Declared again elsewhere with another type: RabbitMQ's 406.
    let (_c3, ch3) = channel_on(&nodes[2]).await;
    let e = declare_exchange(&ch3, "orders", ExchangeKind::Direct)
        .await
        .expect_err("inequivalent");
    assert_eq!(reply_code(&e), Some(406));
    assert_eq!(
        error_text(&e),
        "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'orders' in vhost '/': \
         received 'direct' but current is 'fanout'"
    );

    // An exchange binding made on n1 routes on n3, into n3's own queue.
    let (_c1, ch1) = channel_on(&nodes[0]).await;
    declare_exchange(&ch1, "audit", ExchangeKind::Topic)
        .await
        .expect("declare audit");
    within(ch1.exchange_bind(
        "audit".into(),
        "orders".into(),
        "".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("exchange.bind on n1");
    let (_c3, ch3) = channel_on(&nodes[2]).await;
    declare(&ch3, "audit-log").await;
    bind(&ch3, "audit-log", "audit", "#").await;
    eventually("the binding to reach n3", CLUSTER_DEADLINE, || async {
        publish(&ch3, "orders", "created", b"order 1").await;
        get(&ch3, "audit-log").await.map(|_| ())
    })
    .await;
    let (status, list) = nodes[2].api("GET", "/api/bindings/%2F", "").await;
    assert_eq!(status, 200);
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .any(|b| b["source"] == "orders"
                && b["destination"] == "audit"
                && b["destination_type"] == "exchange"),
        "{list}"
    );

    // In use through its exchange binding, wherever it is asked.
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    let in_use = ExchangeDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    let e = within(ch2.exchange_delete("orders".into(), in_use))
        .await
        .expect_err("in use");
    assert_eq!(reply_code(&e), Some(406));
    assert_eq!(
        error_text(&e),
        "PRECONDITION_FAILED - exchange 'orders' in vhost '/' in use"
    );

    // Unbound and deleted on n2: gone everywhere.
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    within(ch2.exchange_unbind(
        "audit".into(),
        "orders".into(),
        "".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("exchange.unbind on n2");
    within(ch2.exchange_delete("orders".into(), in_use))
        .await
        .expect("delete on n2");
    for n in &nodes {
        until_exists(n, "orders", false).await;
    }

    // The management API's declares go through the log too.
    let (status, _) = nodes[2]
        .api("PUT", "/api/exchanges/%2F/billing", r#"{"type":"direct"}"#)
        .await;
    assert_eq!(status, 201);
    until_exists(&nodes[0], "billing", true).await;
}

#[tokio::test]
async fn a_node_that_was_down_gets_the_exchanges_declared_meanwhile_and_a_minority_declares_none() {
    let root = tempfile::tempdir().expect("dir");
    // Snapshots every 3 changes: n3 comes back behind the log's start,
    // and catches up from a snapshot.
    let mut nodes = replicating(root.path(), "snapshot_after = 3\n").await;
    let (_c1, ch1) = channel_on(&nodes[0]).await;
    declare_exchange(&ch1, "doomed", ExchangeKind::Direct)
        .await
        .expect("declare");
    until_exists(&nodes[2], "doomed", true).await;
    nodes[2].kill();
    within(ch1.exchange_delete("doomed".into(), ExchangeDeleteOptions::default()))
        .await
        .expect("delete");
    declare_exchange(&ch1, "while-n3-was-down", ExchangeKind::Direct)
        .await
        .expect("a majority declares");
    declare_exchange(&ch1, "bound", ExchangeKind::Fanout)
        .await
        .expect("declare");
    for i in 0..6 {
        let key = format!("k{i}");
        within(ch1.exchange_bind(
            "while-n3-was-down".into(),
            "bound".into(),
            key.as_str().into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .expect("exchange.bind");
    }
    nodes[2].start();
    until_exists(&nodes[2], "while-n3-was-down", true).await;
    until_exists(&nodes[2], "doomed", false).await;
    let (_, list) = nodes[2].api("GET", "/api/bindings/%2F", "").await;
    let from_bound = list
        .as_array()
        .map_or(0, |l| l.iter().filter(|b| b["source"] == "bound").count());
    assert_eq!(from_bound, 6, "{list}");
    assert!(
        nodes[2].logged("installing a snapshot"),
        "n3 caught up from a snapshot"
    );

    // Two nodes down: the one left cannot change anything, and says so
    // with RabbitMQ's internal error once it gives up; what it has it
    // still serves.
    nodes[1].kill();
    nodes[2].kill();
    let (c1, ch1) = channel_on(&nodes[0]).await;
    let e = tokio::time::timeout(
        CLUSTER_DEADLINE,
        ch1.exchange_declare(
            "in-a-minority".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("an answer within the deadline")
    .expect_err("no majority");
    assert_eq!(reply_code(&e), Some(541), "{e}");
    assert!(
        error_text(&e).contains("in-a-minority"),
        "{}",
        error_text(&e)
    );
    assert!(!c1.status().connected());
    assert!(exists_on(&nodes[0], "while-n3-was-down").await);
}
