//! Quorum queues on a three-node cluster replicating its topology: each is
//! a Raft group of its own over three nodes; a publish is confirmed only
//! once a majority of them has it on disk.
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/http.rs"]
mod http;
use cluster::*;
use common::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};

fn quorum() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    t
}

#[tokio::test]
async fn a_quorum_queue_confirms_what_a_majority_holds_and_nothing_without_one() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c1, home) = channel_on(&nodes[0]).await;
    declare_with(&home, "orders", true, quorum()).await;
    for n in &nodes {
        until_queue(n, "orders", true).await;
    }
    // Published through another node than its home, consumed through a third.
    let (_c2, publisher) = channel_on(&nodes[1]).await;
    within(publisher.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    for i in 0..30 {
        publish_confirmed(&publisher, "", "orders", format!("order {i}").as_bytes()).await;
    }
    let (_c3, consumer) = channel_on(&nodes[2]).await;
    let mut c = consume(&consumer, "orders", false).await;
    for i in 0..20 {
        let d = next(&mut c).await;
        assert_eq!(d.data, format!("order {i}").as_bytes());
        within(d.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    // Acks are replicated decisions too: the home's depth is what is left.
    let (_c, counting) = channel_on(&nodes[0]).await;
    // What it held unacked goes back when its channel closes.
    within(consumer.close(200, "done".into()))
        .await
        .expect("close");
    eventually("ten left", CLUSTER_DEADLINE, || async {
        (depth(&counting, "orders").await == 10).then_some(())
    })
    .await;

    // Without a majority the home takes nothing it could lose.
    nodes[1].kill();
    nodes[2].kill();
    within(home.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    let confirm = within(home.basic_publish(
        "".into(),
        "orders".into(),
        BasicPublishOptions::default(),
        b"alone",
        BasicProperties::default().with_delivery_mode(2),
    ))
    .await
    .expect("publish");
    let c = tokio::time::timeout(std::time::Duration::from_secs(30), confirm)
        .await
        .expect("an answer")
        .expect("confirm");
    assert!(c.is_nack(), "a publish without a majority is nacked: {c:?}");
}
