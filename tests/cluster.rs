//! Three real ferretmq processes on loopback forming a cluster: formation
//! from seeds, metadata replicated through Raft, a leader killed with
//! SIGKILL, a node with the wrong secret, forgetting a member.
mod common;
#[path = "common/http.rs"]
mod http;
use common::*;
use http::http_at;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "a shared secret";
/// Formation and elections take seconds, not milliseconds.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(30);

struct Node {
    name: String,
    dir: PathBuf,
    cluster_addr: String,
    seeds: Vec<String>,
    secret: String,
    child: Option<Child>,
    http: SocketAddr,
    amqp: String,
    /// Everything the node logged, for waiting on a line.
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Free loopback ports for the cluster listeners, which every node must
/// know before any starts (they are each other's seeds).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

impl Node {
    fn new(root: &Path, name: &str, cluster_addr: &str, seeds: &[String]) -> Node {
        Node {
            name: name.into(),
            dir: root.join(name),
            cluster_addr: cluster_addr.into(),
            seeds: seeds.to_vec(),
            secret: SECRET.into(),
            child: None,
            http: "127.0.0.1:0".parse().expect("addr"),
            amqp: String::new(),
            log: Default::default(),
        }
    }

    /// Start the process and wait until its management API listens.
    fn start(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferretmq"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--management-listen",
                "127.0.0.1:0",
            ])
            .args(["--no-prometheus", "--log", "info", "--data-dir"])
            .arg(&self.dir)
            .args([
                "--cluster-node-name",
                &self.name,
                "--cluster-listen",
                &self.cluster_addr,
            ])
            .args(["--cluster-seed-nodes", &self.seeds.join(",")])
            .env("FERRETMQ_CLUSTER_SECRET", &self.secret)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn ferretmq");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut amqp = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("management API (http) listening on ")
                    && let Some(tx) = tx.take()
                {
                    let http = line[at + 35..].trim().to_string();
                    let _ = tx.send((amqp.take().unwrap_or_default(), http));
                } else if let Some(at) = line.find("listening on ")
                    && amqp.is_none()
                    && tx.is_some()
                {
                    amqp = Some(line[at + 13..].trim().to_string());
                }
                log.lock().expect("log").push(line);
            }
        });
        let (amqp, http): (String, String) = rx
            .recv_timeout(CLUSTER_DEADLINE)
            .expect("the node reports its addresses");
        self.http = http.parse().expect("addr");
        self.amqp = amqp;
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn logged(&self, text: &str) -> bool {
        self.log
            .lock()
            .expect("log")
            .iter()
            .any(|l| l.contains(text))
    }

    async fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferretmq"))
            .arg("ctl")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .output()
            .await
            .expect("ctl runs");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// `ctl cluster_status --formatter json`, or Null if it failed.
    async fn status(&self) -> Value {
        let (code, out, _) = self.ctl(&["cluster_status", "--formatter", "json"]).await;
        if code != 0 {
            return Value::Null;
        }
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    async fn api(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, _, body) = http_at(self.http, method, path, Some("guest:guest"), body).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

/// Poll `f` until it gives Some, or fail after `deadline`.
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Three nodes, each seeded with all three cluster addresses, started
/// together.
fn three(root: &Path) -> Vec<Node> {
    let ports = free_ports(3);
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .zip(&addrs)
        .map(|(n, a)| Node::new(root, n, a, &addrs))
        .collect();
    for n in &mut nodes {
        n.start();
    }
    nodes
}

/// Wait until `node` sees exactly `members`, all running, and a leader.
async fn formed(node: &Node, members: &[&str]) -> Value {
    let want: Vec<String> = members.iter().map(|s| s.to_string()).collect();
    eventually(
        &format!("{} to see {members:?} running", node.name),
        CLUSTER_DEADLINE,
        || async {
            let s = node.status().await;
            let ok = names(&s["disk_nodes"]) == want
                && names(&s["running_nodes"]) == want
                && s["metadata_leader"].is_string();
            ok.then_some(s)
        },
    )
    .await
}

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
    let nodes = three(root.path());
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
    let ports = free_ports(2);
    let a = format!("127.0.0.1:{}", ports[0]);
    let b = format!("127.0.0.1:{}", ports[1]);
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
    let (code, out, err) = nodes[0].ctl(&["forget_cluster_node", "n3"]).await;
    assert_eq!(code, 0, "{out}{err}");
    formed(&nodes[0], &["n1", "n2"]).await;
    formed(&nodes[1], &["n1", "n2"]).await;
}

async fn connects(node: &Node, user: &str, pass: &str, vhost: &str) -> bool {
    let url = format!("amqp://{user}:{pass}@{}/{vhost}", node.amqp);
    let c = lapin::Connection::connect(&url, lapin::ConnectionProperties::default());
    match tokio::time::timeout(DEADLINE, c).await {
        Ok(Ok(c)) => {
            let _ = c.close(200, "bye".into()).await;
            true
        }
        _ => false,
    }
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
        let (code, out, err) = nodes[0].ctl(args).await;
        assert_eq!(code, 0, "{args:?}: {out}{err}");
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
    let (code, out, err) = nodes[1]
        .ctl(&[
            "set_policy",
            "-p",
            "orders",
            "ttl",
            "^tmp",
            r#"{"message-ttl": 5000}"#,
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    eventually("the policy on n3", CLUSTER_DEADLINE, || async {
        let (status, p) = nodes[2].api("GET", "/api/policies/orders/ttl", "").await;
        (status == 200 && p["definition"]["message-ttl"] == 5000).then_some(())
    })
    .await;
    let (code, out, err) = nodes[1].ctl(&["delete_user", "alice"]).await;
    assert_eq!(code, 0, "{out}{err}");
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
async fn a_node_whose_disk_was_wiped_rejoins_as_a_fresh_replica() {
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = three(root.path());
    formed(&nodes[0], &["n1", "n2", "n3"]).await;
    for args in [
        &["add_user", "carol", "pw"][..],
        &["set_permissions", "carol", ".*", ".*", ".*"],
    ] {
        let (code, out, err) = nodes[0].ctl(args).await;
        assert_eq!(code, 0, "{args:?}: {out}{err}");
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
}
