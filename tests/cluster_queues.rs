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
use lapin::{BasicProperties, Channel, ExchangeKind};

async fn durable_queue(ch: &Channel, name: &str) {
    declare_with(ch, name, true, FieldTable::default()).await;
}

/// Whether a passive declare on `node` finds the queue.
async fn queue_on(node: &Node, name: &str) -> bool {
    let (_c, ch) = channel_on(node).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(ch.queue_declare(name.into(), passive, FieldTable::default()))
        .await
        .is_ok()
}

async fn until_queue(node: &Node, name: &str, wanted: bool) {
    let what = format!(
        "queue '{name}' {}on {}",
        if wanted { "" } else { "gone " },
        node.name
    );
    eventually(&what, CLUSTER_DEADLINE, || async {
        (queue_on(node, name).await == wanted).then_some(())
    })
    .await;
}

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

async fn publish_confirmed(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    let persistent = BasicProperties::default().with_delivery_mode(2);
    let confirm = within(ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        persistent,
    ))
    .await
    .expect("publish");
    assert!(within(confirm).await.expect("confirm").is_ack());
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

#[tokio::test]
async fn a_consumer_on_any_node_gets_acks_requeues_and_gives_back_as_on_the_queues_node() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = replicating(root.path(), "").await;
    let (_c2, home) = channel_on(&nodes[1]).await;
    durable_queue(&home, "jobs").await;
    until_queue(&nodes[0], "jobs", true).await;
    let (_c3, producer) = channel_on(&nodes[2]).await;
    within(producer.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    for i in 0..10 {
        publish_confirmed(&producer, "", "jobs", format!("job {i}").as_bytes()).await;
    }

    // A consumer on n1, prefetch 1: in order, acked one by one.
    let (c1, worker) = channel_on(&nodes[0]).await;
    within(worker.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut jobs = consume(&worker, "jobs", false).await;
    for i in 0..6 {
        let d = next(&mut jobs).await;
        assert_eq!(d.data, format!("job {i}").as_bytes());
        assert!(!d.redelivered);
        within(d.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    // Rejected with requeue: back at its home, delivered again, redelivered.
    let d = next(&mut jobs).await;
    assert_eq!(d.data, b"job 6");
    within(d.nack(BasicNackOptions {
        requeue: true,
        ..Default::default()
    }))
    .await
    .expect("nack");
    let d = next(&mut jobs).await;
    assert_eq!(d.data, b"job 6");
    assert!(d.redelivered, "requeued at its home");
    within(d.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    // Taken but not acked when the connection closes: back at the home.
    let held = next(&mut jobs).await;
    assert_eq!(held.data, b"job 7");
    within(c1.close(200, "bye".into())).await.expect("close");
    eventually("job 7 back at its home", CLUSTER_DEADLINE, || async {
        (depth(&home, "jobs").await == 3).then_some(())
    })
    .await;

    // A consumer elsewhere counts at its home.
    let (_c1, worker) = channel_on(&nodes[0]).await;
    within(worker.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut jobs = consume(&worker, "jobs", false).await;
    let d = next(&mut jobs).await;
    assert_eq!(d.data, b"job 7");
    assert!(d.redelivered);
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let ok = within(home.queue_declare("jobs".into(), passive, FieldTable::default()))
        .await
        .expect("passive declare at its home");
    assert_eq!(
        ok.consumer_count(),
        1,
        "the consumer on n1 counts at its home"
    );
    // Cancelled with a delivery outstanding: still acked afterwards.
    within(worker.basic_cancel(jobs.tag(), BasicCancelOptions::default()))
        .await
        .expect("cancel");
    within(d.ack(BasicAckOptions::default()))
        .await
        .expect("ack after cancel");
    eventually("the rest ready at its home", CLUSTER_DEADLINE, || async {
        (depth(&home, "jobs").await == 2).then_some(())
    })
    .await;
    // Basic.Get through n1: checked out at its home until settled; given
    // back when the channel closes unsettled.
    let (_c1, getter) = channel_on(&nodes[0]).await;
    let got = within(getter.basic_get("jobs".into(), BasicGetOptions::default()))
        .await
        .expect("get through n1")
        .expect("a message");
    assert_eq!(got.delivery.data, b"job 8");
    assert_eq!(got.message_count, 1);
    assert_eq!(depth(&home, "jobs").await, 1);
    within(getter.close(200, "bye".into()))
        .await
        .expect("close");
    eventually("job 8 back at its home", CLUSTER_DEADLINE, || async {
        (depth(&home, "jobs").await == 2).then_some(())
    })
    .await;
    let (_c1, getter) = channel_on(&nodes[0]).await;
    let got = within(getter.basic_get("jobs".into(), BasicGetOptions::default()))
        .await
        .expect("get through n1")
        .expect("a message");
    assert!(got.delivery.redelivered);
    within(got.delivery.ack(BasicAckOptions::default()))
        .await
        .expect("ack");
    // The management API's get too: job 9, requeued.
    let (status, list) = nodes[0]
        .api(
            "POST",
            "/api/queues/%2F/jobs/get",
            r#"{"count":5,"ackmode":"ack_requeue_true","encoding":"auto"}"#,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["payload"], "job 9", "{list}");
    // Purged through n1, by its home.
    let (_c1, purger) = channel_on(&nodes[0]).await;
    let purged = within(purger.queue_purge("jobs".into(), QueuePurgeOptions::default()))
        .await
        .expect("purge through n1");
    assert_eq!(purged, 1);
    assert_eq!(depth(&home, "jobs").await, 0);
    // An exclusive consumer at its home keeps one elsewhere out, with
    // RabbitMQ's 403.
    let _only = within(home.basic_consume(
        "jobs".into(),
        "only".into(),
        BasicConsumeOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("exclusive at its home");
    let (_c1, other) = channel_on(&nodes[0]).await;
    let e = within(other.basic_consume(
        "jobs".into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect_err("in exclusive use");
    assert_eq!(reply_code(&e), Some(403));
    assert_eq!(
        error_text(&e),
        "ACCESS_REFUSED - queue 'jobs' in vhost '/' in exclusive use"
    );
}

#[tokio::test]
async fn a_consumer_elsewhere_is_cancelled_when_its_queues_node_goes_down() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c3, home) = channel_on(&nodes[2]).await;
    durable_queue(&home, "alerts").await;
    until_queue(&nodes[0], "alerts", true).await;
    let (c1, watcher) = channel_on(&nodes[0]).await;
    let mut alerts = consume(&watcher, "alerts", true).await;
    publish(&home, "", "alerts", b"one").await;
    assert_eq!(next(&mut alerts).await.data, b"one");
    drop(home);
    nodes[2].kill();
    // Basic.Cancel from the broker ends lapin's consumer stream; the
    // channel and connection stay open.
    let end = tokio::time::timeout(CLUSTER_DEADLINE, futures_lite::StreamExt::next(&mut alerts))
        .await
        .expect("cancelled within the deadline");
    assert!(end.is_none(), "no more deliveries: {end:?}");
    assert!(c1.status().connected());
    within(watcher.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("the channel is still open");
}

#[tokio::test]
async fn direct_reply_to_answers_a_client_on_another_node() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = replicating(root.path(), "").await;
    let (_c2, ch2) = channel_on(&nodes[1]).await;
    declare(&ch2, "rpc").await;
    until_queue(&nodes[2], "rpc", true).await;
    // The server consumes through n3; the client is on n1.
    let (_c3, server) = channel_on(&nodes[2]).await;
    let mut requests = consume(&server, "rpc", true).await;
    let (_c1, client) = channel_on(&nodes[0]).await;
    let mut replies = consume(&client, "amq.rabbitmq.reply-to", true).await;
    within(client.basic_publish(
        "".into(),
        "rpc".into(),
        BasicPublishOptions::default(),
        b"ping",
        BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into()),
    ))
    .await
    .expect("request");
    let req = next(&mut requests).await;
    let reply_to = req.properties.reply_to().clone().expect("reply_to");
    assert!(reply_to.as_str().starts_with("amq.rabbitmq.reply-to."));
    publish(&server, "", reply_to.as_str(), b"pong").await;
    assert_eq!(next(&mut replies).await.data, b"pong");
}

#[tokio::test]
async fn forgetting_a_node_deletes_the_queues_it_was_home_to() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c3, ch3) = channel_on(&nodes[2]).await;
    durable_queue(&ch3, "orphan").await;
    until_queue(&nodes[0], "orphan", true).await;
    drop(ch3);
    nodes[2].kill();
    nodes[0].ok(&["forget_cluster_node", "n3"]).await;
    // Gone everywhere, as RabbitMQ's forget_cluster_node deletes them; the
    // name is free for a queue homed elsewhere.
    for n in &nodes[..2] {
        eventually(
            "the queue to go with its node",
            CLUSTER_DEADLINE,
            || async {
                let (_c, ch) = channel_on(n).await;
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                let r =
                    within(ch.queue_declare("orphan".into(), passive, FieldTable::default())).await;
                r.err()
                    .filter(|e| error_text(e) == "NOT_FOUND - no queue 'orphan' in vhost '/'")
                    .map(|_| ())
            },
        )
        .await;
    }
    let (_c1, ch1) = channel_on(&nodes[0]).await;
    durable_queue(&ch1, "orphan").await;
    publish(&ch1, "", "orphan", b"adopted").await;
    assert_eq!(depth(&ch1, "orphan").await, 1);
}
