//! A cluster of real ferretmq processes on loopback for tests: nodes
//! started, killed (SIGKILL) and restarted with their data dirs, driven
//! through ctl and the management API.
#![allow(dead_code)]

use super::common::*;
use super::http::http_at;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SECRET: &str = "a shared secret";
/// Formation and elections take seconds, not milliseconds.
pub const CLUSTER_DEADLINE: Duration = Duration::from_secs(30);

pub struct Node {
    pub name: String,
    pub dir: PathBuf,
    pub cluster_addr: String,
    pub seeds: Vec<String>,
    pub secret: String,
    pub child: Option<Child>,
    pub http: SocketAddr,
    pub amqp: String,
    /// A config file to start with (flags override it).
    pub config: Option<PathBuf>,
    /// A network namespace to run in (`ip netns exec`).
    pub netns: Option<String>,
    /// The address its AMQP and HTTP listeners bind (loopback by default).
    pub bind: String,
    /// Everything the node logged, for waiting on a line.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Free loopback ports for the cluster listeners, which every node must
/// know before any starts (they are each other's seeds).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

impl Node {
    pub fn new(root: &Path, name: &str, cluster_addr: &str, seeds: &[String]) -> Node {
        Node {
            name: name.into(),
            dir: root.join(name),
            cluster_addr: cluster_addr.into(),
            seeds: seeds.to_vec(),
            secret: SECRET.into(),
            child: None,
            http: "127.0.0.1:0".parse().expect("addr"),
            amqp: String::new(),
            config: None,
            netns: None,
            bind: "127.0.0.1".into(),
            log: Default::default(),
        }
    }

    /// Start the process and wait until its management API listens.
    pub fn start(&mut self) {
        let bin = env!("CARGO_BIN_EXE_ferretmq");
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .args(["--listen", &format!("{}:0", self.bind)])
            .args(["--management-listen", &format!("{}:0", self.bind)])
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

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn logged(&self, text: &str) -> bool {
        self.log
            .lock()
            .expect("log")
            .iter()
            .any(|l| l.contains(text))
    }

    pub async fn ctl(&self, args: &[&str]) -> (i32, String, String) {
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

    /// A ctl command that must succeed.
    pub async fn ok(&self, args: &[&str]) {
        let (code, out, err) = self.ctl(args).await;
        assert_eq!(code, 0, "{} ctl {args:?}: {out}{err}", self.name);
    }

    /// `ctl cluster_status --formatter json`, or Null if it failed.
    pub async fn status(&self) -> Value {
        let (code, out, _) = self.ctl(&["cluster_status", "--formatter", "json"]).await;
        if code != 0 {
            return Value::Null;
        }
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    pub async fn api(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, _, body) = http_at(self.http, method, path, Some("guest:guest"), body).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

/// Poll `f` until it gives Some, or fail after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
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

pub fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `n` free loopback addresses for cluster listeners.
pub fn free_addrs(n: usize) -> Vec<String> {
    free_ports(n)
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect()
}

/// Three nodes, n1 to n3, each seeded with all three cluster addresses,
/// not started yet (a test may give them configs first).
pub fn three_unstarted(root: &Path) -> Vec<Node> {
    let addrs = free_addrs(3);
    ["n1", "n2", "n3"]
        .iter()
        .zip(&addrs)
        .map(|(n, a)| Node::new(root, n, a, &addrs))
        .collect()
}

/// Three nodes, each seeded with all three cluster addresses, started
/// together.
pub fn three(root: &Path) -> Vec<Node> {
    let mut nodes = three_unstarted(root);
    for n in &mut nodes {
        n.start();
    }
    nodes
}

/// Wait until `node` sees exactly `members`, all running, and a leader.
/// If it never does, its last status and the warnings and errors it logged
/// are printed before the test fails.
pub async fn formed(node: &Node, members: &[&str]) -> Value {
    let want: Vec<String> = members.iter().map(|s| s.to_string()).collect();
    let end = Instant::now() + CLUSTER_DEADLINE;
    loop {
        let s = node.status().await;
        if names(&s["disk_nodes"]) == want
            && names(&s["running_nodes"]) == want
            && s["metadata_leader"].is_string()
        {
            return s;
        }
        if Instant::now() >= end {
            println!("{} last said: {s}", node.name);
            let log = node.log.lock().expect("log");
            for (i, l) in log.iter().enumerate() {
                let after_panic = i > 0 && log[i - 1].contains("panicked at");
                if l.contains("ERROR")
                    || l.contains("WARN")
                    || l.contains("cluster:")
                    || l.contains("panicked at")
                    || after_panic
                {
                    println!("  {}", l.chars().take(400).collect::<String>());
                }
            }
            panic!(
                "timed out waiting for {} to see {members:?} running",
                node.name
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn connects(node: &Node, user: &str, pass: &str, vhost: &str) -> bool {
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

/// Three nodes replicating their topology (`more`: further `[cluster]`
/// settings), formed.
pub async fn replicating(root: &std::path::Path, more: &str) -> Vec<Node> {
    let config = root.join("ferretmq.toml");
    let text = format!("[cluster]\nreplicate_topology = true\n{more}");
    std::fs::write(&config, text).expect("config");
    let mut nodes = three_unstarted(root);
    for n in &mut nodes {
        n.config = Some(config.clone());
        n.start();
    }
    for n in &nodes {
        formed(n, &["n1", "n2", "n3"]).await;
    }
    nodes
}

pub async fn channel_on(node: &Node) -> (Connection, Channel) {
    let url = format!("amqp://guest:guest@{}/%2f", node.amqp);
    let c = within(Connection::connect(&url, ConnectionProperties::default()))
        .await
        .expect("connect");
    let ch = within(c.create_channel()).await.expect("channel");
    (c, ch)
}

/// The reply text of a broker's Close, or what else lapin said.
pub fn error_text(e: &lapin::Error) -> String {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(a) => a.get_message().to_string(),
        other => format!("{other:?}"),
    }
}

pub async fn durable_queue(ch: &Channel, name: &str) {
    declare_with(ch, name, true, FieldTable::default()).await;
}

/// Whether a passive declare on `node` finds the queue.
pub async fn queue_on(node: &Node, name: &str) -> bool {
    let (_c, ch) = channel_on(node).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(ch.queue_declare(name.into(), passive, FieldTable::default()))
        .await
        .is_ok()
}

pub async fn until_queue(node: &Node, name: &str, wanted: bool) {
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

/// Publish persistent, and wait for its ack.
pub async fn publish_confirmed(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
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

/// Arguments declaring a quorum queue.
pub fn quorum_args() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    t
}

/// The node a queue is homed on, as `node` says over HTTP.
pub async fn home_of(node: &Node, queue: &str) -> Option<String> {
    let (status, q) = node
        .api("GET", &format!("/api/queues/%2f/{queue}"), "")
        .await;
    (status == 200).then(|| q["node"].as_str().unwrap_or_default().to_string())
}

/// Wait until one of `nodes` says it is the queue's home (not `but`): its
/// name. A node that restarted only knows once its group's leader said.
pub async fn until_homed(nodes: &[&Node], queue: &str, but: &str) -> String {
    eventually("the queue homed", CLUSTER_DEADLINE, || async {
        for n in nodes {
            let home = home_of(n, queue).await;
            if home.as_deref() == Some(n.name.as_str()) && n.name != but {
                return home;
            }
        }
        None
    })
    .await
}

/// Publish persistent and wait up to `wait` for the broker's answer:
/// whether it acked, or None if the publish or its answer failed.
async fn answered_within(ch: &Channel, key: &str, body: &[u8], wait: Duration) -> Option<bool> {
    let confirm = within(ch.basic_publish(
        "".into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default().with_delivery_mode(2),
    ))
    .await
    .ok()?;
    Some(
        tokio::time::timeout(wait, confirm)
            .await
            .ok()?
            .ok()?
            .is_ack(),
    )
}

/// Publish persistent until the broker confirms it (a nack while a
/// queue's home moves is answered by publishing again, as a client does).
pub async fn publish_until_confirmed(ch: &Channel, key: &str, body: &[u8]) {
    eventually("a confirmed publish", CLUSTER_DEADLINE, || async {
        answered_within(ch, key, body, Duration::from_secs(10))
            .await
            .filter(|acked| *acked)
            .map(|_| ())
    })
    .await;
}

/// Consume `want` from the queue, in that order, acking each.
pub async fn consume_in_order(ch: &Channel, queue: &str, want: &[String]) {
    let mut c = consume(ch, queue, false).await;
    for w in want {
        let d = next(&mut c).await;
        assert_eq!(&String::from_utf8_lossy(&d.data), w);
        within(d.ack(lapin::options::BasicAckOptions::default()))
            .await
            .expect("ack");
    }
}

/// A quorum queue declared through the first node, once every node knows
/// it: the declaring channel.
pub async fn quorum_queue(nodes: &[Node], name: &str) -> (Connection, Channel) {
    let (c, ch) = channel_on(&nodes[0]).await;
    declare_with(&ch, name, true, quorum_args()).await;
    for n in nodes {
        until_queue(n, name, true).await;
    }
    (c, ch)
}

/// A channel on `node` in confirm mode.
pub async fn confirming_on(node: &Node) -> (Connection, Channel) {
    let (c, ch) = channel_on(node).await;
    within(ch.confirm_select(lapin::options::ConfirmSelectOptions::default()))
        .await
        .expect("confirm mode");
    (c, ch)
}

/// Publish persistent and wait (long: a group without a majority answers
/// after its own wait) for the broker's answer: true if acked.
pub async fn publish_answered(ch: &Channel, key: &str, body: &[u8]) -> bool {
    answered_within(ch, key, body, Duration::from_secs(30))
        .await
        .expect("an answer")
}
