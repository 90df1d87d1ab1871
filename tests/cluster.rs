//! Three real ferretmq processes on loopback forming a cluster: formation
//! from seeds, metadata replicated through Raft, a leader killed with
//! SIGKILL, a node with the wrong secret, forgetting a member, a node
//! joining another's cluster.
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/http.rs"]
mod http;
use cluster::*;
use common::*;
use std::time::{Duration, Instant};
async fn cluster_name_on(node: &Node) -> Option<String> {
    let (status, v) = node.api("GET", "/api/cluster-name", "").await;
    (status == 200).then(|| v["name"].as_str().unwrap_or("").to_string())
}

async fn set_cluster_name(node: &Node, name: &str) -> u16 {
    node.api(
        "PUT",
        "/api/cluster-name",
        &format!("{{\"name\":\"{name}\"}}"),
    )
    .await
    .0
}

#[tokio::test]
async fn three_nodes_started_together_form_one_cluster_and_share_its_metadata() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = three_unstarted(root.path());
    // What a script starting a cluster waits on, called before any node
    // is up: it waits for the node to listen, then for all three to run.
    let waiting = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferretmq"))
        .arg("ctl")
        .arg("--data-dir")
        .arg(&nodes[0].dir)
        .args(["await_online_nodes", "3", "--timeout", "60"])
        .output();
    let waiting = tokio::spawn(waiting);
    for n in &mut nodes {
        n.start();
    }
    let o = waiting.await.expect("join").expect("ctl runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut leaders = Vec::new();
    for n in &nodes {
        leaders.push(formed(n, &["n1", "n2", "n3"]).await["metadata_leader"].clone());
    }
    assert!(
        leaders.windows(2).all(|w| w[0] == w[1]),
        "one leader for all: {leaders:?}"
    );
    // /api/nodes lists every member, each answering for itself.
    let (status, list) = nodes[0].api("GET", "/api/nodes", "").await;
    assert_eq!(status, 200);
    let listed: Vec<(String, bool, String)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or("").to_string(),
                n["running"] == true,
                n["os_pid"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
        ["n1", "n2", "n3"]
    );
    assert!(listed.iter().all(|n| n.1), "all running: {listed:?}");
    let pids: std::collections::BTreeSet<&str> = listed.iter().map(|n| n.2.as_str()).collect();
    assert_eq!(pids.len(), 3, "three processes answered: {listed:?}");
    let (status, n3) = nodes[0].api("GET", "/api/nodes/n3", "").await;
    assert_eq!((status, n3["name"].as_str()), (200, Some("n3")));
    // A change made on one node is committed and applied on every node.
    assert_eq!(set_cluster_name(&nodes[2], "orders").await, 204);
    for n in &nodes {
        eventually(
            "the new cluster name everywhere",
            CLUSTER_DEADLINE,
            || async { (cluster_name_on(n).await.as_deref() == Some("orders")).then_some(()) },
        )
        .await;
    }
}

#[tokio::test]
async fn a_killed_leader_is_replaced_within_5s_and_catches_up_when_it_returns() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = three(root.path());
    let s = formed(&nodes[0], &["n1", "n2", "n3"]).await;
    let leader = s["metadata_leader"].as_str().expect("leader").to_string();
    let dead = nodes
        .iter()
        .position(|n| n.name == leader)
        .expect("leader is a node");
    let alive: Vec<usize> = (0..3).filter(|i| *i != dead).collect();
    nodes[dead].kill();
    let killed = Instant::now();
    let new_leader = eventually("a new leader", CLUSTER_DEADLINE, || async {
        let s = nodes[alive[0]].status().await;
        s["metadata_leader"]
            .as_str()
            .filter(|l| *l != leader)
            .map(str::to_string)
    })
    .await;
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "a new leader ({new_leader}) took {took:?}"
    );
    // The majority goes on changing metadata without the dead node.
    assert_eq!(
        set_cluster_name(&nodes[alive[1]], "after-the-kill").await,
        204
    );
    let s = nodes[alive[0]].status().await;
    assert_eq!(names(&s["disk_nodes"]).len(), 3);
    assert!(!names(&s["running_nodes"]).contains(&leader), "{s}");
    // Back with its data dir, it rejoins and catches up.
    nodes[dead].start();
    formed(&nodes[dead], &["n1", "n2", "n3"]).await;
    eventually(
        "the returned node to catch up",
        CLUSTER_DEADLINE,
        || async {
            (cluster_name_on(&nodes[dead]).await.as_deref() == Some("after-the-kill")).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_node_with_the_wrong_secret_is_kept_out() {
    let root = tempfile::tempdir().expect("dir");
    let (a, b) = {
        let mut addrs = free_addrs(2);
        (addrs.remove(0), addrs.remove(0))
    };
    let mut good = Node::new(root.path(), "n1", &a, &[]);
    good.start();
    formed(&good, &["n1"]).await;
    let mut bad = Node::new(root.path(), "n2", &b, std::slice::from_ref(&a));
    bad.secret = "a guess".into();
    bad.start();
    eventually("the intruder to be refused", CLUSTER_DEADLINE, || async {
        (good.logged("refused") && bad.logged("does not know the cluster secret")).then_some(())
    })
    .await;
    let s = good.status().await;
    assert_eq!(names(&s["disk_nodes"]), ["n1"]);
}

#[tokio::test]
async fn forget_cluster_node_removes_a_stopped_member_and_refuses_a_running_one() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = three(root.path());
    formed(&nodes[0], &["n1", "n2", "n3"]).await;
    let (code, _, err) = nodes[0].ctl(&["forget_cluster_node", "n3"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("n3 is running"), "{err}");
    let (code, _, err) = nodes[0].ctl(&["forget_cluster_node", "nobody"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("not a member"), "{err}");
    nodes[2].kill();
    // A vhost is on every member; one that is down shows so.
    let (status, v) = nodes[0].api("GET", "/api/vhosts/%2f", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        v["cluster_state"],
        serde_json::json!({"n1": "running", "n2": "running", "n3": "nodedown"})
    );
    nodes[0].ok(&["forget_cluster_node", "n3"]).await;
    formed(&nodes[0], &["n1", "n2"]).await;
    formed(&nodes[1], &["n1", "n2"]).await;
    let (_, list) = nodes[1].api("GET", "/api/vhosts", "").await;
    assert_eq!(
        list[0]["cluster_state"],
        serde_json::json!({"n1": "running", "n2": "running"})
    );
}

#[tokio::test]
async fn users_vhosts_and_permissions_made_on_one_node_hold_on_every_node() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = three(root.path());
    formed(&nodes[0], &["n1", "n2", "n3"]).await;
    for args in [
        &["add_user", "alice", "s3cret"][..],
        &["add_vhost", "orders"],
        &["set_permissions", "-p", "orders", "alice", ".*", ".*", ".*"],
    ] {
        nodes[0].ok(args).await;
    }
    for n in &nodes {
        eventually(
            &format!("alice to log in to {}", n.name),
            CLUSTER_DEADLINE,
            || async { connects(n, "alice", "s3cret", "orders").await.then_some(()) },
        )
        .await;
    }
    // The same change gives the same answer on another node.
    let (code, _, err) = nodes[2]
        .ctl(&[
            "set_permissions",
            "-p",
            "nowhere",
            "alice",
            ".*",
            ".*",
            ".*",
        ])
        .await;
    assert_ne!(code, 0, "{err}");
    // A policy set through one node applies on another.
    nodes[1]
        .ok(&[
            "set_policy",
            "-p",
            "orders",
            "ttl",
            "^tmp",
            r#"{"message-ttl": 5000}"#,
        ])
        .await;
    eventually("the policy on n3", CLUSTER_DEADLINE, || async {
        let (status, p) = nodes[2].api("GET", "/api/policies/orders/ttl", "").await;
        (status == 200 && p["definition"]["message-ttl"] == 5000).then_some(())
    })
    .await;
    nodes[1].ok(&["delete_user", "alice"]).await;
    for n in &nodes {
        eventually(
            &format!("alice to be gone from {}", n.name),
            CLUSTER_DEADLINE,
            || async { (!connects(n, "alice", "s3cret", "orders").await).then_some(()) },
        )
        .await;
    }
    // Without a majority, no change is made; the node says why.
    nodes[1].kill();
    nodes[2].kill();
    let (status, body) = nodes[0]
        .api("PUT", "/api/users/bob", r#"{"password":"x","tags":""}"#)
        .await;
    assert_eq!(status, 503, "{body}");
    let (status, _) = nodes[0].api("GET", "/api/users/bob", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn join_cluster_resets_a_node_alone_into_another_nodes_cluster() {
    let root = tempfile::tempdir().expect("dir");
    let addrs = free_addrs(2);
    let mut a = Node::new(root.path(), "n1", &addrs[0], &[]);
    let mut b = Node::new(root.path(), "n2", &addrs[1], &[]);
    a.start();
    b.start();
    formed(&a, &["n1"]).await;
    formed(&b, &["n2"]).await;
    for (node, user) in [(&a, "alice"), (&b, "bob")] {
        node.ok(&["add_user", user, "pw"]).await;
        node.ok(&["set_permissions", user, ".*", ".*", ".*"]).await;
    }
    let (code, _, err) = b.ctl(&["join_cluster", &addrs[1]]).await;
    assert_ne!(code, 0);
    assert!(err.contains("n2 cannot join itself"), "{err}");
    let nowhere = free_addrs(1).remove(0);
    let (code, _, err) = b.ctl(&["join_cluster", &nowhere]).await;
    assert_ne!(code, 0);
    assert!(err.contains(&format!("cannot reach {nowhere}")), "{err}");
    // Refused before anything was reset: b is still its own cluster.
    assert!(connects(&b, "bob", "pw", "%2f").await);

    let (code, out, err) = b.ctl(&["join_cluster", &addrs[0]]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Clustering node n2 with"), "{out}");
    formed(&b, &["n1", "n2"]).await;
    formed(&a, &["n1", "n2"]).await;
    // b was reset: it holds the cluster's users, not its own.
    eventually("alice on the joined node", CLUSTER_DEADLINE, || async {
        connects(&b, "alice", "pw", "%2f").await.then_some(())
    })
    .await;
    assert!(!connects(&b, "bob", "pw", "%2f").await);
    // A change made through the new member holds on the old one.
    b.ok(&["add_user", "carol", "pw"]).await;
    b.ok(&["set_permissions", "carol", ".*", ".*", ".*"]).await;
    eventually("carol on n1", CLUSTER_DEADLINE, || async {
        connects(&a, "carol", "pw", "%2f").await.then_some(())
    })
    .await;
    // A member of a cluster with others does not leave it this way.
    let (code, _, err) = a.ctl(&["join_cluster", &addrs[1]]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("already a member of a cluster with n2"),
        "{err}"
    );
    // The membership outlives a restart.
    b.kill();
    b.start();
    formed(&b, &["n1", "n2"]).await;
}

#[tokio::test]
async fn a_node_whose_disk_was_wiped_rejoins_as_a_fresh_replica() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = three(root.path());
    formed(&nodes[0], &["n1", "n2", "n3"]).await;
    for args in [
        &["add_user", "carol", "pw"][..],
        &["set_permissions", "carol", ".*", ".*", ".*"],
    ] {
        nodes[0].ok(args).await;
    }
    nodes[2].kill();
    std::fs::remove_dir_all(&nodes[2].dir).expect("wipe");
    nodes[2].start();
    formed(&nodes[2], &["n1", "n2", "n3"]).await;
    eventually("carol on the wiped node", CLUSTER_DEADLINE, || async {
        connects(&nodes[2], "carol", "pw", "%2f")
            .await
            .then_some(())
    })
    .await;
    // It came back as a new member (its old self's votes are gone with its
    // disk), and the cluster still takes changes through it.
    nodes[2].ok(&["add_user", "dave", "pw"]).await;
    nodes[2]
        .ok(&["set_permissions", "dave", ".*", ".*", ".*"])
        .await;
    eventually("dave on n1", CLUSTER_DEADLINE, || async {
        connects(&nodes[0], "dave", "pw", "%2f").await.then_some(())
    })
    .await;
    assert!(nodes[0].logged("n3 lost its state") || nodes[1].logged("n3 lost its state"));
    for n in &nodes {
        assert!(!n.logged("panicked"), "{} panicked", n.name);
    }
}

/// A CA and, signed by it, a certificate for 127.0.0.1 (server and client
/// alike), as PEM files named `{prefix}ca.pem`, `{prefix}node.pem`,
/// `{prefix}node.key`; and a config file using them.
fn node_pki(dir: &std::path::Path, prefix: &str) -> std::path::PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{prefix} CA"));
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("node cert");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(format!("{prefix}{name}")), text).expect("write")
    };
    write("ca.pem", &ca_cert.pem());
    write("node.pem", &cert.pem());
    write("node.key", &key.serialize_pem());
    let config = dir.join(format!("{prefix}.toml"));
    let toml = format!(
        "[cluster.tls]\ncertfile = \"{prefix}node.pem\"\nkeyfile = \"{prefix}node.key\"\ncacertfile = \"cluster-ca.pem\"\n"
    );
    std::fs::write(&config, toml).expect("config");
    config
}

#[tokio::test]
async fn nodes_link_over_tls_and_keep_out_a_plain_node_and_a_foreign_certificate() {
    let root = tempfile::tempdir().expect("dir");
    let pki = root.path();
    let good = node_pki(pki, "cluster-");
    let foreign = node_pki(pki, "foreign-");
    // Both configs trust the cluster's CA (cluster-ca.pem); only the first
    // holds a certificate it signed.
    let addrs = free_addrs(4);
    let pair = [addrs[0].clone(), addrs[1].clone()];
    let mut nodes: Vec<Node> = (0..2)
        .map(|i| {
            let mut n = Node::new(root.path(), &format!("n{}", i + 1), &addrs[i], &pair);
            n.config = Some(good.clone());
            n
        })
        .collect();
    for n in &mut nodes {
        n.start();
    }
    formed(&nodes[0], &["n1", "n2"]).await;
    nodes[0].ok(&["add_user", "over-tls", "pw"]).await;
    eventually("the change on n2", CLUSTER_DEADLINE, || async {
        let (status, _) = nodes[1].api("GET", "/api/users/over-tls", "").await;
        (status == 200).then_some(())
    })
    .await;
    // Same secret, no TLS: the handshake fails.
    let mut plain = Node::new(root.path(), "n3", &addrs[2], &pair[..1]);
    plain.start();
    // Same secret, TLS, but a certificate the cluster's CA did not sign.
    let mut stranger = Node::new(root.path(), "n4", &addrs[3], &pair[..1]);
    stranger.config = Some(foreign);
    stranger.start();
    eventually("both to be refused", CLUSTER_DEADLINE, || async {
        let refused = nodes[0]
            .log
            .lock()
            .expect("log")
            .iter()
            .filter(|l| l.contains("refused"))
            .count();
        (refused >= 2 && plain.logged("not formed yet") && stranger.logged("not formed yet"))
            .then_some(())
    })
    .await;
    let s = nodes[0].status().await;
    assert_eq!(names(&s["disk_nodes"]), ["n1", "n2"]);
}

#[tokio::test]
async fn the_node_that_starts_the_cluster_gives_every_node_its_definitions() {
    let root = tempfile::tempdir().expect("dir");
    // n1 (the first name, so the founder) boots with a definitions file the
    // others never see; n3 has a user of its own before it joins.
    let defs = root.path().join("defs.json");
    let doc = r#"{"users":[{"name":"founder","password_hash":"","tags":""}],"vhosts":[{"name":"/"}],
        "permissions":[{"user":"founder","vhost":"/","configure":".*","write":".*","read":".*"}]}"#;
    std::fs::write(&defs, doc).expect("defs");
    let config = root.path().join("n1.toml");
    std::fs::write(&config, "definitions = \"defs.json\"\n").expect("config");
    let mut nodes = three_unstarted(root.path());
    nodes[0].config = Some(config);
    // n3 alone first (no seeds: a cluster of its own), with a user of its own.
    let mut loner = Node::new(root.path(), "n3", &nodes[2].cluster_addr, &[]);
    loner.start();
    formed(&loner, &["n3"]).await;
    loner.ok(&["add_user", "loner", "pw"]).await;
    loner.kill();
    // Its data dir keeps the user but it starts over as a fresh member.
    std::fs::remove_dir_all(nodes[2].dir.join("cluster")).expect("reset its Raft state");
    for n in &mut nodes {
        n.start();
    }
    for n in &nodes {
        formed(n, &["n1", "n2", "n3"]).await;
    }
    for n in &nodes {
        eventually(
            &format!("the founder's user on {}", n.name),
            CLUSTER_DEADLINE,
            || async {
                let (status, _) = n.api("GET", "/api/users/founder", "").await;
                (status == 200).then_some(())
            },
        )
        .await;
        let (status, _) = n.api("GET", "/api/users/loner", "").await;
        assert_eq!(
            status, 404,
            "{} keeps a user the cluster never made",
            n.name
        );
    }
}

#[tokio::test]
async fn a_node_that_boots_with_a_definitions_file_imports_it_into_the_cluster() {
    let root = tempfile::tempdir().expect("dir");
    // n3 is not the founder: what its file defines must not be lost to the
    // founder's definitions, but reach every node.
    let defs = root.path().join("defs.json");
    let doc = r#"{"users":[{"name":"fromfile","password":"pw","tags":""}],"vhosts":[{"name":"filed"}],
        "permissions":[{"user":"fromfile","vhost":"filed","configure":".*","write":".*","read":".*"}]}"#;
    std::fs::write(&defs, doc).expect("defs");
    let config = root.path().join("n3.toml");
    std::fs::write(&config, "definitions = \"defs.json\"\n").expect("config");
    let mut nodes = three_unstarted(root.path());
    nodes[2].config = Some(config);
    for n in &mut nodes {
        n.start();
    }
    for n in &nodes {
        eventually(
            &format!("the file's user on {}", n.name),
            CLUSTER_DEADLINE,
            || async { connects(n, "fromfile", "pw", "filed").await.then_some(()) },
        )
        .await;
    }
}
