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
use lapin::options::*;

/// Bodies "A".."B".
fn numbered(r: std::ops::Range<u32>) -> Vec<String> {
    r.map(|i| i.to_string()).collect()
}

#[tokio::test]
async fn a_quorum_queue_confirms_what_a_majority_holds_and_nothing_without_one() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c1, home) = quorum_queue(&nodes, "orders").await;
    // Over HTTP, as RabbitMQ shows a quorum queue: its leader and members.
    let (status, q) = nodes[1].api("GET", "/api/queues/%2f/orders", "").await;
    assert_eq!(status, 200);
    assert_eq!(q["type"], "quorum");
    assert_eq!(q["leader"], "n1");
    let mut members: Vec<&str> = q["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    members.sort_unstable();
    assert_eq!(members, ["n1", "n2", "n3"]);
    // Published through another node than its home, consumed through a third.
    let (_c2, publisher) = confirming_on(&nodes[1]).await;
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
    assert!(
        !publish_answered(&home, "orders", b"alone").await,
        "a publish without a majority is nacked"
    );
}

#[tokio::test]
async fn when_a_quorum_queues_home_is_killed_another_member_carries_on_losing_nothing_confirmed() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c1, on_home) = quorum_queue(&nodes, "orders").await;
    let (_c2, publisher) = confirming_on(&nodes[1]).await;
    for i in 0..40 {
        publish_confirmed(&publisher, "", "orders", format!("{i}").as_bytes()).await;
    }
    // The first 15 are consumed and acked on the home. A publish the
    // same channel makes after its acks is committed after them: once it
    // is confirmed, so are they (AMQP has no other way to know).
    let acking = on_home;
    within(acking.basic_qos(15, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut c = consume(&acking, "orders", false).await;
    for i in 0..15 {
        let d = next(&mut c).await;
        assert_eq!(d.data, format!("{i}").as_bytes());
        within(d.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    within(acking.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    publish_confirmed(&acking, "", "orders", b"40").await;

    let killed = std::time::Instant::now();
    nodes[0].kill();
    let moved = eventually(
        "the queue homed on a survivor",
        CLUSTER_DEADLINE,
        || async { home_of(&nodes[1], "orders").await.filter(|h| h != "n1") },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("homed on {moved} {took:?} after its home was killed");
    assert!(
        took < std::time::Duration::from_secs(10),
        "a new home within 10 s, took {took:?}"
    );
    publish_until_confirmed(&publisher, "orders", b"41").await;

    // Every confirmed message not acked, in order, and no acked one.
    let (_c4, draining) = channel_on(&nodes[2]).await;
    consume_in_order(&draining, "orders", &numbered(15..42)).await;
    assert_eq!(depth(&draining, "orders").await, 0, "nothing else");
}

#[tokio::test]
async fn a_member_that_was_down_catches_up_and_the_queue_survives_a_second_failover() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (c1, on_home) = quorum_queue(&nodes, "orders").await;
    drop((c1, on_home));
    let (_c2, publisher) = confirming_on(&nodes[1]).await;
    for i in 0..10 {
        publish_confirmed(&publisher, "", "orders", format!("{i}").as_bytes()).await;
    }
    nodes[0].kill();
    let first = eventually(
        "the queue homed on a survivor",
        CLUSTER_DEADLINE,
        || async { home_of(&nodes[1], "orders").await.filter(|h| h != "n1") },
    )
    .await;
    // Published while n1 is down: n1 has them only by catching up.
    for i in 10..20 {
        publish_until_confirmed(&publisher, "orders", format!("{i}").as_bytes()).await;
    }
    nodes[0].start();
    formed(&nodes[0], &["n1", "n2", "n3"]).await;
    until_queue(&nodes[0], "orders", true).await;
    eventually(
        "n1 knows where the queue went",
        CLUSTER_DEADLINE,
        || async {
            (home_of(&nodes[0], "orders").await.as_deref() == Some(first.as_str())).then_some(())
        },
    )
    .await;
    // n1 holds what was committed without it once it is a member again:
    // with the queue's home gone, n1 and the last node elect one of them,
    // which Raft only lets happen with every committed entry.
    let survivor = if first == "n2" { 2 } else { 1 };
    let gone = 3 - survivor;
    nodes[gone].kill();
    let second = eventually("the queue homed again", CLUSTER_DEADLINE, || async {
        home_of(&nodes[0], "orders").await.filter(|h| *h != first)
    })
    .await;
    eprintln!("homed on {first}, then on {second}");
    let (_c3, draining) = channel_on(&nodes[0]).await;
    consume_in_order(&draining, "orders", &numbered(0..20)).await;
}

#[tokio::test]
async fn a_quorum_queue_keeps_its_messages_through_a_restart_of_every_node() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c1, ch) = channel_on(&nodes[0]).await;
    declare_with(&ch, "orders", true, quorum_args()).await;
    within(ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    for i in 0..10 {
        publish_confirmed(&ch, "", "orders", format!("{i}").as_bytes()).await;
    }
    for n in &mut nodes {
        n.kill();
    }
    for n in &mut nodes {
        n.start();
    }
    for n in &nodes {
        formed(n, &["n1", "n2", "n3"]).await;
    }
    // Homed once the member its group elected says it is the home.
    let home = until_homed(&[&nodes[0], &nodes[1], &nodes[2]], "orders", "").await;
    eprintln!("homed on {home} after the restart");
    let (_c3, draining) = channel_on(&nodes[2]).await;
    consume_in_order(&draining, "orders", &numbered(0..10)).await;
}

/// A node's member of the (only) quorum queue group's directory.
fn group_dir(node: &Node) -> Option<std::path::PathBuf> {
    let groups = std::fs::read_dir(node.dir.join("cluster/quorum")).ok()?;
    groups.filter_map(Result::ok).map(|e| e.path()).next()
}

fn log_lines(node: &Node) -> usize {
    group_dir(node)
        .and_then(|d| std::fs::read_to_string(d.join("log.jsonl")).ok())
        .map_or(0, |t| t.lines().count())
}

#[tokio::test]
async fn a_quorum_queues_log_is_cut_behind_snapshots_and_a_member_far_behind_is_sent_one() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "quorum_snapshot_after = 50\n").await;
    let (_c1, on_home) = quorum_queue(&nodes, "orders").await;
    nodes[2].kill();
    let (_c2, publisher) = confirming_on(&nodes[1]).await;
    let mut c = consume(&on_home, "orders", false).await;
    for i in 0..200 {
        publish_confirmed(&publisher, "", "orders", format!("{i}").as_bytes()).await;
        let d = next(&mut c).await;
        within(d.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
    }
    for i in 0..5 {
        publish_confirmed(&publisher, "", "orders", format!("kept {i}").as_bytes()).await;
    }
    assert!(
        group_dir(&nodes[0]).is_some_and(|d| d.join("snapshot.json").exists()),
        "the home took a snapshot"
    );
    let lines = log_lines(&nodes[0]);
    assert!(lines < 200, "the log was cut behind it: {lines} lines");

    // n3 missed what the log no longer holds: it is sent a snapshot.
    nodes[2].start();
    formed(&nodes[2], &["n1", "n2", "n3"]).await;
    eventually("n3 installed a snapshot", CLUSTER_DEADLINE, || async {
        group_dir(&nodes[2])
            .is_some_and(|d| d.join("snapshot.json").exists())
            .then_some(())
    })
    .await;
    // And holds the queue as it was: with the home gone, n2 and n3 carry on.
    nodes[0].kill();
    let home = until_homed(&[&nodes[1], &nodes[2]], "orders", "n1").await;
    eprintln!("homed on {home}");
    let (_c3, draining) = channel_on(&nodes[2]).await;
    let kept: Vec<String> = (0..5).map(|i| format!("kept {i}")).collect();
    consume_in_order(&draining, "orders", &kept).await;
}

#[tokio::test]
async fn a_member_whose_disk_was_wiped_is_given_the_queue_and_counts_again() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    let (_c1, on_home) = quorum_queue(&nodes, "orders").await;
    within(on_home.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    for i in 0..10 {
        publish_confirmed(&on_home, "", "orders", format!("{i}").as_bytes()).await;
    }
    nodes[2].kill();
    std::fs::remove_dir_all(&nodes[2].dir).expect("wipe");
    nodes[2].start();
    formed(&nodes[2], &["n1", "n2", "n3"]).await;
    // Its new self is made a member of the queue's group, and given it.
    eventually(
        "n3 holds the queue's log again",
        CLUSTER_DEADLINE,
        || async { (log_lines(&nodes[2]) > 0).then_some(()) },
    )
    .await;
    // With the home gone, n2 and the new n3 are a majority of the group.
    nodes[0].kill();
    until_homed(&[&nodes[1], &nodes[2]], "orders", "n1").await;
    let (_c2, draining) = channel_on(&nodes[1]).await;
    consume_in_order(&draining, "orders", &numbered(0..10)).await;
}

#[tokio::test]
async fn what_a_channel_does_after_publishing_sees_its_publishes() {
    let root = tempfile::tempdir().expect("dir");
    let nodes = replicating(root.path(), "").await;
    let (_c1, ch) = channel_on(&nodes[0]).await;
    declare_with(&ch, "orders", true, quorum_args()).await;
    // No confirms: the publishes are committed in the background, and a
    // Basic.Get on the same channel still finds them, as on a node alone.
    for i in 0..5 {
        publish(&ch, "", "orders", format!("{i}").as_bytes()).await;
    }
    for i in 0..5 {
        let m = get(&ch, "orders").await.expect("a message");
        assert_eq!(String::from_utf8_lossy(&m.delivery.data), format!("{i}"));
    }
    assert!(get(&ch, "orders").await.is_none());
}
