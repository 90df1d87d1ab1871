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
use std::process::Command;

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Three namespaces on a bridge, 10.213.N.1-3/24; gone on drop.
struct Net {
    tag: String,
    subnet: String,
}

impl Net {
    fn new() -> Option<Net> {
        let pid = std::process::id();
        let net = Net {
            tag: format!("fq{}", pid % 100_000),
            subnet: format!("10.213.{}", pid % 250),
        };
        let br = net.bridge();
        let ok = ip(&["link", "add", &br, "type", "bridge"]) && ip(&["link", "set", &br, "up"]);
        if !ok {
            return None;
        }
        for i in 1..=3 {
            let ns = net.ns(i);
            let (outer, inner) = (net.veth(i), format!("{}i{i}", net.tag));
            let addr = format!("{}.{i}/24", net.subnet);
            let ok = ip(&["netns", "add", &ns])
                && ip(&[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner,
                ])
                && ip(&["link", "set", &inner, "netns", &ns])
                && ip(&["link", "set", &outer, "master", &br])
                && ip(&["link", "set", &outer, "up"])
                && ip(&[
                    "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inner,
                ])
                && ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"])
                && ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            if !ok {
                return None;
            }
        }
        Some(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    fn ns(&self, i: usize) -> String {
        format!("{}ns{i}", self.tag)
    }

    fn veth(&self, i: usize) -> String {
        format!("{}o{i}", self.tag)
    }

    fn addr(&self, i: usize) -> String {
        format!("{}.{i}:25672", self.subnet)
    }

    /// Cut node i off from the others (its side of the bridge down).
    fn cut(&self, i: usize, off: bool) {
        assert!(ip(&[
            "link",
            "set",
            &self.veth(i),
            if off { "down" } else { "up" }
        ]));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 1..=3 {
            ip(&["netns", "del", &self.ns(i)]);
            ip(&["link", "del", &self.veth(i)]);
        }
        ip(&["link", "del", &self.bridge()]);
    }
}

async fn users(node: &Node) -> Vec<String> {
    let (code, out, _) = node.ctl(&["list_users", "-s"]).await;
    assert_eq!(code, 0);
    out.lines()
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_partitioned_leader_refuses_changes_and_keeps_none_of_them_after_healing() {
    let Some(net) = Net::new() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "network namespaces are needed under CI (run as root with iproute2)"
        );
        eprintln!("skipped: no network namespaces here (needs root and iproute2)");
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
