//! Queues of a three-node cluster replicating its topology, used through a
//! node that is not their home: consumers, Basic.Get, purge, direct
//! reply-to, a home going down or forgotten.
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/http.rs"]
mod http;
use cluster::*;
use common::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;

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
    let got = get_one(&getter, "jobs").await;
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
    let got = get_one(&getter, "jobs").await;
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

/// Basic.Get that must find a message.
async fn get_one(ch: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    within(ch.basic_get(queue.into(), BasicGetOptions::default()))
        .await
        .expect("basic.get")
        .expect("a message")
}

#[tokio::test]
async fn a_consumer_through_another_node_leaves_no_link_behind_when_cancelled() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = replicating(root.path(), "").await;
    let (_c2, home) = channel_on(&nodes[1]).await;
    durable_queue(&home, "brief").await;
    until_queue(&nodes[0], "brief", true).await;
    let fds = |n: &Node| {
        let n = n.http;
        async move {
            let (_, _, body) = http::http_at(n, "GET", "/api/nodes", Some("guest:guest"), "").await;
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            let list = v.as_array().expect("nodes");
            let n2 = list.iter().find(|n| n["name"] == "n2").expect("n2 listed");
            n2["fd_used"].as_u64().expect("fd_used")
        }
    };
    let before = fds(&nodes[1]).await;
    let (_c1, ch) = channel_on(&nodes[0]).await;
    for _ in 0..30 {
        let c = consume(&ch, "brief", false).await;
        within(ch.basic_cancel(c.tag(), BasicCancelOptions::default()))
            .await
            .expect("cancel");
    }
    // Each session's link to the home is closed once its consumer is gone.
    eventually("the home's descriptors back", CLUSTER_DEADLINE, || async {
        (fds(&nodes[1]).await < before + 10).then_some(())
    })
    .await;
}
