//! Queues of a three-node cluster replicating its topology: every node
//! knows every queue, whose messages live on its home (the node its
//! declaring client was on); a message published on any node reaches it,
//! confirmed only once its home has it; exclusivity, equivalence and
//! deletion answer alike on every node.
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/http.rs"]
mod http;
use cluster::*;
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};

#[tokio::test]
async fn a_message_published_on_any_node_reaches_queues_on_every_node_and_is_confirmed() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = replicating(root.path(), "").await;
    let (_c1, pub_ch) = channel_on(&nodes[0]).await;
    let (_c2, pay) = channel_on(&nodes[1]).await;
    let (_c3, mail) = channel_on(&nodes[2]).await;
    within(pub_ch.exchange_declare(
        "orders".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("exchange");
    // Each service declares and binds its own queue on its own node.
    durable_queue(&pay, "payments").await;
    bind(&pay, "payments", "orders", "").await;
    durable_queue(&mail, "emails").await;
    bind(&mail, "emails", "orders", "").await;
    for n in &nodes {
        until_queue(n, "payments", true).await;
        until_queue(n, "emails", true).await;
    }

    within(pub_ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    let persistent = BasicProperties::default().with_delivery_mode(2);
    for i in 0..20 {
        let body = format!("order {i}");
        let confirm = within(pub_ch.basic_publish(
            "orders".into(),
            "".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body.as_bytes(),
            persistent.clone(),
        ))
        .await
        .expect("publish");
        let c = within(confirm).await.expect("confirm");
        assert!(c.is_ack(), "order {i} confirmed: {c:?}");
        assert!(c.take_message().is_none(), "order {i} routed, not returned");
    }
    // The default exchange reaches a queue on another node too.
    publish(&pub_ch, "", "payments", b"direct").await;
    // A node that is not its home answers a declare with its home's counts.
    let (_c, counting) = channel_on(&nodes[2]).await;
    let ok = within(counting.queue_declare(
        "payments".into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("passive declare on n3");
    assert_eq!(ok.message_count(), 21);
    // So does the management API, naming its node.
    let (status, shown) = nodes[2].api("GET", "/api/queues/%2F/payments", "").await;
    assert_eq!(status, 200);
    assert_eq!(shown["node"], "n2", "{shown}");
    assert_eq!(shown["messages_ready"], 21, "{shown}");
    // Not empty, its home says, wherever it is asked.
    let e = within(counting.queue_delete(
        "payments".into(),
        QueueDeleteOptions {
            if_empty: true,
            ..Default::default()
        },
    ))
    .await
    .expect_err("not empty");
    assert_eq!(reply_code(&e), Some(406));
    assert_eq!(
        error_text(&e),
        "PRECONDITION_FAILED - queue 'payments' in vhost '/' is not empty"
    );

    for (ch, queue) in [(&pay, "payments"), (&mail, "emails")] {
        let mut consumer = consume(ch, queue, false).await;
        for i in 0..20 {
            let d = next(&mut consumer).await;
            assert_eq!(d.data, format!("order {i}").as_bytes(), "{queue} in order");
            assert_eq!(d.exchange.as_str(), "orders");
            assert_eq!(d.properties.delivery_mode(), &Some(2));
            within(d.ack(BasicAckOptions::default()))
                .await
                .expect("ack");
        }
        if queue == "payments" {
            let d = next(&mut consumer).await;
            assert_eq!(d.data, b"direct");
        }
    }
}

#[tokio::test]
async fn every_node_answers_a_declare_a_bind_and_a_delete_alike() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = replicating(root.path(), "").await;
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    durable_queue(&ch2, "q").await;
    until_queue(&nodes[0], "q", true).await;

    // Declared again elsewhere with other properties: RabbitMQ's 406.
    let (_c1, ch1) = channel_on(&nodes[0]).await;
    let e = within(ch1.queue_declare(
        "q".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("inequivalent");
    assert_eq!(reply_code(&e), Some(406));
    assert_eq!(
        error_text(&e),
        "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': \
         received 'false' but current is 'true'"
    );

    // An exclusive queue is its connection's, whichever node is asked.
    let (owner, och) = channel_on(&nodes[0]).await;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    within(och.queue_declare("mine".into(), exclusive, FieldTable::default()))
        .await
        .expect("exclusive declare");
    until_queue_locked(&nodes[2], "mine").await;
    let (_c3, ch3) = channel_on(&nodes[2]).await;
    let e = within(ch3.queue_bind(
        "mine".into(),
        "amq.fanout".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("locked");
    assert_eq!(reply_code(&e), Some(405));
    // Its owner closes: it goes on every node.
    within(owner.close(200, "bye".into())).await.expect("close");
    for n in &nodes {
        until_queue(n, "mine", false).await;
    }

    // An auto-delete queue goes everywhere when its last consumer does.
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    let auto = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    within(ch2.queue_declare("fleeting".into(), auto, FieldTable::default()))
        .await
        .expect("declare");
    let consumer = consume(&ch2, "fleeting", true).await;
    until_queue(&nodes[2], "fleeting", true).await;
    within(ch2.basic_cancel(consumer.tag(), BasicCancelOptions::default()))
        .await
        .expect("cancel");
    for n in &nodes {
        until_queue(n, "fleeting", false).await;
    }

    // Deleted from a node that is not its home, if empty (its home says
    // it is): gone everywhere.
    let (_c3, ch3) = channel_on(&nodes[2]).await;
    let if_empty = QueueDeleteOptions {
        if_empty: true,
        ..Default::default()
    };
    within(ch3.queue_delete("q".into(), if_empty))
        .await
        .expect("delete on n3");
    for n in &nodes {
        until_queue(n, "q", false).await;
    }
}

/// Wait until a passive declare on `node` of `name` is refused as locked
/// (the queue exists there, exclusive to a connection elsewhere).
async fn until_queue_locked(node: &Node, name: &str) {
    eventually(
        "the exclusive queue to be known",
        CLUSTER_DEADLINE,
        || async {
            let (_c, ch) = channel_on(node).await;
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let r = within(ch.queue_declare(name.into(), passive, FieldTable::default())).await;
            matches!(r, Err(e) if reply_code(&e) == Some(405)).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn restarted_nodes_keep_the_clusters_queues_and_their_own_transient_ones_go() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    within(ch2.exchange_declare(
        "orders".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("a transient exchange");
    durable_queue(&ch2, "payments").await;
    bind(&ch2, "payments", "orders", "").await;
    declare(&ch2, "scratch").await;
    for n in &nodes {
        until_queue(n, "scratch", true).await;
    }

    // n1 restarts: it still knows n2's queue, its binding and the
    // transient exchange, and sends n2 what is published to it.
    nodes[0].kill();
    nodes[0].start();
    formed(&nodes[0], &["n1", "n2", "n3"]).await;
    let (_c1, ch1) = channel_on(&nodes[0]).await;
    within(ch1.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    publish_confirmed(&ch1, "orders", "", b"after n1 restarted").await;

    // n2, the queues' home, restarts: the durable queue keeps its
    // messages, the transient one is gone everywhere.
    drop(ch2);
    nodes[1].kill();
    nodes[1].start();
    formed(&nodes[1], &["n1", "n2", "n3"]).await;
    for n in &nodes {
        until_queue(n, "scratch", false).await;
    }
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    let mut c = consume(&ch2, "payments", true).await;
    assert_eq!(next(&mut c).await.data, b"after n1 restarted");
    // And what n3 publishes still reaches it.
    let (_c3, ch3) = channel_on(&nodes[2]).await;
    within(ch3.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    publish_confirmed(&ch3, "", "payments", b"from n3").await;
    assert_eq!(next(&mut c).await.data, b"from n3");
}

#[tokio::test]
async fn the_management_api_declares_binds_imports_and_deletes_through_the_log() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = replicating(root.path(), "").await;
    // Homed where the body says, as RabbitMQ's "node"; a node the cluster
    // does not have is refused.
    let (status, _) = nodes[2]
        .api(
            "PUT",
            "/api/queues/%2F/hq",
            r#"{"durable":true,"node":"n1"}"#,
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = nodes[2]
        .api("PUT", "/api/queues/%2F/nowhere", r#"{"node":"n9"}"#)
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = nodes[1]
        .api(
            "POST",
            "/api/bindings/%2F/e/amq.direct/q/hq",
            r#"{"routing_key":"k"}"#,
        )
        .await;
    assert_eq!(status, 201);
    let (_c1, ch1) = channel_on(&nodes[0]).await;
    let mut c = consume(&ch1, "hq", true).await;
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    eventually("the binding to route on n2", CLUSTER_DEADLINE, || async {
        within(ch2.confirm_select(ConfirmSelectOptions::default()))
            .await
            .ok()?;
        let confirm = within(ch2.basic_publish(
            "amq.direct".into(),
            "k".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"over http",
            BasicProperties::default(),
        ))
        .await
        .ok()?;
        within(confirm)
            .await
            .ok()?
            .take_message()
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(next(&mut c).await.data, b"over http");

    // Imported definitions: their queues are homed on the importing node.
    let doc = r#"{"queues":[{"name":"imported","vhost":"/","durable":true,"auto_delete":false,"arguments":{}}]}"#;
    let (status, body) = nodes[1].api("POST", "/api/definitions", doc).await;
    assert_eq!(status, 204, "{body}");
    for n in &nodes {
        until_queue(n, "imported", true).await;
    }
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    consume(&ch2, "imported", true).await;

    let (status, _) = nodes[1].api("DELETE", "/api/queues/%2F/hq", "").await;
    assert_eq!(status, 204);
    for n in &nodes {
        until_queue(n, "hq", false).await;
    }
}

#[tokio::test]
async fn a_message_for_a_queue_whose_node_is_down_is_nacked_and_what_was_confirmed_stays() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c3, ch3) = channel_on(&nodes[2]).await;
    durable_queue(&ch3, "ledger").await;
    until_queue(&nodes[0], "ledger", true).await;
    let (_c1, ch1) = channel_on(&nodes[0]).await;
    within(ch1.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    for i in 0..5 {
        publish_confirmed(&ch1, "", "ledger", format!("entry {i}").as_bytes()).await;
    }
    drop(ch3);
    // Its home is SIGKILLed: what was confirmed is on its disk; what is
    // published meanwhile is nacked, never acked.
    nodes[2].kill();
    let confirm = within(ch1.basic_publish(
        "".into(),
        "ledger".into(),
        BasicPublishOptions::default(),
        b"while n3 is down",
        BasicProperties::default().with_delivery_mode(2),
    ))
    .await
    .expect("publish");
    let c = tokio::time::timeout(CLUSTER_DEADLINE, confirm)
        .await
        .expect("an answer")
        .expect("confirm");
    assert!(c.is_nack(), "{c:?}");
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    let e = within(ch2.queue_declare(
        "ledger".into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect_err("its home is down");
    assert_eq!(reply_code(&e), Some(404));
    assert_eq!(
        error_text(&e),
        "NOT_FOUND - home node 'n3' of durable queue 'ledger' in vhost '/' is down or inaccessible"
    );
    nodes[2].start();
    formed(&nodes[2], &["n1", "n2", "n3"]).await;
    let (_c3, ch3) = channel_on(&nodes[2]).await;
    let mut c = consume(&ch3, "ledger", false).await;
    for i in 0..5 {
        let d = next(&mut c).await;
        assert_eq!(d.data, format!("entry {i}").as_bytes());
        within(d.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    assert_eq!(depth(&ch3, "ledger").await, 0, "nothing else arrived");
}

#[tokio::test]
async fn forwarding_goes_on_after_the_queues_node_restarts() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    durable_queue(&ch2, "work").await;
    until_queue(&nodes[0], "work", true).await;
    let (_c1, ch1) = channel_on(&nodes[0]).await;
    within(ch1.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    publish_confirmed(&ch1, "", "work", b"before").await;
    drop(ch2);
    // n1 keeps its link to n2 open between messages; n2 restarts under it.
    nodes[1].kill();
    nodes[1].start();
    formed(&nodes[1], &["n1", "n2", "n3"]).await;
    publish_confirmed(&ch1, "", "work", b"after").await;
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    let mut c = consume(&ch2, "work", true).await;
    assert_eq!(next(&mut c).await.data, b"before");
    assert_eq!(next(&mut c).await.data, b"after");
}
