//! A quorum queue's home cut off from the other two nodes (network
//! namespaces, `tc` dropping what each side sends the other; the test still
//! reaches every node). The cut-off home takes nothing it could lose (a
//! publish there is nacked), the other two elect a leader, move the queue
//! and go on; once healed the old home catches up, and with another node
//! gone the queue holds exactly what was confirmed. Needs root (`ip
//! netns`); outside CI it is skipped without it.
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/netns.rs"]
mod netns;
use cluster::*;
use common::*;
use lapin::options::*;
use netns::Net;

#[tokio::test]
async fn a_cut_off_home_takes_nothing_and_the_majority_carries_the_queue_on() {
    let Some(net) = Net::needed().filter(Net::reach_from_host) else {
        return;
    };
    let root = tempfile::tempdir().expect("dir");
    let config = root.path().join("ferretmq.toml");
    // The test reaches the nodes from outside their namespaces.
    let text = "loopback_users = []\n[cluster]\nreplicate_topology = true\n";
    std::fs::write(&config, text).expect("config");
    let addrs: Vec<String> = (1..=3).map(|i| net.addr(i)).collect();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            let mut n = Node::new(root.path(), &format!("n{i}"), &addrs[i - 1], &addrs);
            n.netns = Some(net.ns(i));
            n.bind = net.ip_of(i);
            n.config = Some(config.clone());
            n
        })
        .collect();
    for n in &mut nodes {
        n.start();
    }
    for n in &nodes {
        formed(n, &["n1", "n2", "n3"]).await;
    }
    let (_c1, home) = quorum_queue(&nodes, "orders").await;
    within(home.confirm_select(ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    for i in 0..10 {
        publish_confirmed(&home, "", "orders", format!("before {i}").as_bytes()).await;
    }

    net.isolate(1, true);
    // The cut-off home cannot commit: what is published there is nacked.
    assert!(
        !publish_answered(&home, "orders", b"alone").await,
        "a cut-off home confirmed"
    );
    // The other two elect a leader, which takes the queue, and go on.
    let moved = eventually(
        "the queue homed in the majority",
        CLUSTER_DEADLINE,
        || async { home_of(&nodes[1], "orders").await.filter(|h| h != "n1") },
    )
    .await;
    let (_c2, majority) = confirming_on(&nodes[1]).await;
    for i in 0..10 {
        publish_until_confirmed(&majority, "orders", format!("during {i}").as_bytes()).await;
    }

    net.isolate(1, false);
    eventually(
        "n1 to learn where the queue went",
        CLUSTER_DEADLINE,
        || async {
            (home_of(&nodes[0], "orders").await.as_deref() == Some(moved.as_str())).then_some(())
        },
    )
    .await;
    // n1 caught up: with the new home gone, n1 and the last node carry on
    // with exactly what was confirmed.
    let gone = if moved == "n2" { 1 } else { 2 };
    let last = 3 - gone;
    nodes[gone].kill();
    until_homed(&[&nodes[0], &nodes[last]], "orders", &moved).await;
    let (_c3, draining) = channel_on(&nodes[0]).await;
    let want: Vec<String> = (0..10)
        .map(|i| format!("before {i}"))
        .chain((0..10).map(|i| format!("during {i}")))
        .collect();
    consume_in_order(&draining, "orders", &want).await;
    assert_eq!(depth(&draining, "orders").await, 0, "nothing unconfirmed");
}
