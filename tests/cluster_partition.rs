//! A network partition, made with network namespaces: three nodes, each in
//! its own namespace on a bridge, and the metadata leader cut off. The
//! minority refuses changes, the majority elects a leader and goes on, and
//! once the network heals the old leader catches up and keeps nothing of
//! what it could not commit. Needs root (`ip netns`); outside CI it is
//! skipped without it.
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/http.rs"]
mod http;
use cluster::*;
use common::*;
#[path = "common/netns.rs"]
mod netns;
use netns::Net;

async fn users(node: &Node) -> Vec<String> {
    let (code, out, _) = node.ctl(&["list_users", "-s"]).await;
    assert_eq!(code, 0);
    out.lines()
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_partitioned_leader_refuses_changes_and_keeps_none_of_them_after_healing() {
    let Some(net) = Net::needed() else {
        return;
    };
    let root = tempfile::tempdir().expect("dir");
    let addrs: Vec<String> = (1..=3).map(|i| net.addr(i)).collect();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            let mut n = Node::new(root.path(), &format!("n{i}"), &addrs[i - 1], &addrs);
            n.netns = Some(net.ns(i));
            n
        })
        .collect();
    for n in &mut nodes {
        n.start();
    }
    let s = formed(&nodes[0], &["n1", "n2", "n3"]).await;
    let leader = s["metadata_leader"].as_str().expect("leader").to_string();
    let cut = nodes
        .iter()
        .position(|n| n.name == leader)
        .expect("leader is a node");
    let majority: Vec<usize> = (0..3).filter(|i| *i != cut).collect();
    net.cut(cut + 1, true);

    // The cut-off leader cannot commit: the change is refused.
    let (code, _, err) = nodes[cut].ctl(&["add_user", "mallory", "x"]).await;
    assert_ne!(code, 0, "a minority made a change");
    assert!(err.contains("majority"), "{err}");
    // The majority elects a leader of its own and goes on.
    eventually(
        "the majority to take a change",
        CLUSTER_DEADLINE,
        || async {
            let (code, _, _) = nodes[majority[0]].ctl(&["add_user", "alice", "x"]).await;
            (code == 0).then_some(())
        },
    )
    .await;
    assert!(
        users(&nodes[majority[1]])
            .await
            .contains(&"alice".to_string())
    );
    let s = nodes[majority[1]].status().await;
    assert_ne!(s["metadata_leader"].as_str(), Some(leader.as_str()), "{s}");
    assert!(!names(&s["running_nodes"]).contains(&leader), "{s}");

    net.cut(cut + 1, false);
    for n in &nodes {
        eventually(
            &format!("{} to converge", n.name),
            CLUSTER_DEADLINE,
            || async {
                let u = users(n).await;
                (u.contains(&"alice".to_string())).then_some(u)
            },
        )
        .await;
    }
    for n in &nodes {
        let u = users(n).await;
        assert!(!u.contains(&"mallory".to_string()), "{}: {u:?}", n.name);
    }
    formed(&nodes[cut], &["n1", "n2", "n3"]).await;
}
