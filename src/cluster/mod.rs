//! Clustering (#13): nodes that know a shared secret form one cluster
//! whose metadata is a Raft group (openraft). This module owns the node's
//! place in it: the cluster listener, what the node knows of its members,
//! and asking the leader for what only it may do (`lead.rs` is what the
//! leader then does). Its Raft instance over the log and state machine on
//! disk is `instance.rs`; forming a cluster from seeds `form.rs`;
//! `join_cluster` `join.rs`; restarting a failed instance and importing the
//! boot-time definitions `tasks.rs`.

mod consume;
mod form;
mod forward;
mod get;
mod session;
pub(crate) use session::home_link;
mod instance;
mod join;
mod lead;
mod link;
mod log_store;
mod network;
mod pipeline;
pub(crate) mod quorum;
mod rpc;
mod state_machine;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod supervisor_tests;
mod tasks;
mod types;

use crate::access::Refusal;
use crate::broker::Broker;
use crate::config::ClusterConfig;
use instance::Instance;
use openraft::ServerState;
use rpc::{Reply, Request};
use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
pub(crate) use types::Command;
use types::{Applied, Member, NodeId, Raft};

/// How long a request that needs the leader waits for one.
const LEADER_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Cluster {
    pub(crate) me: Member,
    /// Replaced whole when the node joins another cluster
    /// (`ctl join_cluster`); take a handle with `raft()`.
    instance: std::sync::RwLock<Instance>,
    raft_config: Arc<openraft::Config>,
    /// DATA/cluster: the Raft log, vote, applied state and snapshot.
    dir: std::path::PathBuf,
    /// How links to other nodes are opened and taken.
    endpoint: link::Endpoint,
    /// Whether the cluster's founding change is in this node's log: until
    /// it is, the leader takes no other change (it would be overwritten).
    founded: Arc<watch::Sender<bool>>,
    /// One membership change at a time (openraft refuses overlapping ones);
    /// replacing the Raft instance takes it too.
    changing: tokio::sync::Mutex<()>,
    /// How often the supervisor restarted the Raft instance.
    restarts: std::sync::atomic::AtomicU64,
    /// Links kept open to other nodes, for forwarded messages.
    links: forward::Links,
    /// Consumers attached here to queues homed elsewhere.
    sessions: session::Sessions,
    /// This node's members of quorum queues' groups.
    groups: quorum::Groups,
    /// Links to other nodes for messages routed to their queues.
    pipelines: pipeline::Pipelines,
    broker: Weak<Broker>,
}

/// A member as `ctl cluster_status` and `/api/nodes` show it.
pub(crate) struct MemberStatus {
    pub(crate) name: String,
    pub(crate) addr: String,
    pub(crate) voter: bool,
    pub(crate) leader: bool,
}

impl Cluster {
    /// Bind the cluster listener, open the Raft state in the data dir and
    /// start forming (or rejoining) the cluster.
    pub(crate) async fn start(
        broker: &Arc<Broker>,
        config: &ClusterConfig,
        tasks: &mut JoinSet<()>,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<Arc<Cluster>> {
        let secret = config.secret()?;
        let tls = match &config.tls {
            Some(t) => Some(crate::tls::mutual(&t.certfile, &t.keyfile, &t.cacertfile)?),
            None => None,
        };
        let listener = crate::server::bind(config.listen)?;
        let bound = listener.local_addr()?;
        let addr = match &config.advertise {
            Some(a) => a.clone(),
            // A wildcard is no address for others: they reach this host by name.
            None if bound.ip().is_unspecified() => {
                format!("{}:{}", crate::os::hostname(), bound.port())
            }
            None => bound.to_string(),
        };
        let me = Member {
            name: config.node_name.clone(),
            addr,
        };
        let dir = broker.config.data_dir.join("cluster");
        let founded: Arc<watch::Sender<bool>> = Default::default();
        let raft_config = openraft::Config {
            cluster_name: "ferretmq-metadata".into(),
            heartbeat_interval: 200,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_after.max(1)),
            // Keep a few entries behind a snapshot, so that a follower just
            // behind catches up from the log rather than a whole snapshot.
            max_in_snapshot_log_to_keep: 100.min(config.snapshot_after),
            // openraft's 200 ms default for sending and installing a
            // snapshot is shorter than installing one takes on a loaded
            // node; the leader then sends it again, and openraft 0.9
            // acknowledges the repeat at once, before the first install
            // is on disk: a follower killed then comes back without what
            // the leader counts it as holding (chaos test, with a wipe).
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(std::io::Error::other)?;
        let raft_config = Arc::new(raft_config);
        let endpoint = link::Endpoint::new(&me.name, secret.as_bytes(), tls);
        let instance =
            instance::open_raft(&me.name, &raft_config, &dir, broker, &founded, &endpoint).await?;
        let cluster = Arc::new(Cluster {
            me,
            instance: std::sync::RwLock::new(instance),
            raft_config,
            dir,
            endpoint,
            founded,
            changing: Default::default(),
            restarts: Default::default(),
            links: Default::default(),
            sessions: Default::default(),
            groups: Default::default(),
            pipelines: Default::default(),
            broker: Arc::downgrade(broker),
        });
        tracing::info!(
            "cluster node {} (Raft id {}): inter-node listener on {bound}",
            cluster.me.name,
            cluster.id()
        );
        tasks.spawn(accept_loop(listener, cluster.clone(), stop.clone()));
        tasks.spawn(tasks::supervise(cluster.clone(), stop.clone()));
        if let Some(path) = broker.config.definitions.clone() {
            tasks.spawn(tasks::import_at_boot(cluster.clone(), path, stop.clone()));
        }
        // A fresh node forms or joins a cluster; one that restarts as a
        // learner (killed while it was being added) asks again to vote.
        tasks.spawn(form::form(cluster.clone(), config.seed_nodes.clone(), stop));
        Ok(cluster)
    }

    /// A handle on this node's Raft instance (the current one: joining
    /// another cluster replaces it).
    pub(crate) fn raft(&self) -> Raft {
        self.instance().raft
    }

    /// This node's id in the cluster (its current instance's).
    pub(crate) fn id(&self) -> NodeId {
        self.instance().id
    }

    /// Make `instance` the node's Raft instance, the next epoch.
    fn install(&self, mut instance: Instance) {
        let mut current = self
            .instance
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        instance.epoch = current.epoch + 1;
        *current = instance;
    }

    fn instance(&self) -> Instance {
        self.instance
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether this node is a voting member of its cluster.
    pub(crate) fn is_voter(&self) -> bool {
        let m = self.raft().metrics();
        let m = m.borrow();
        m.membership_config.voter_ids().any(|v| v == self.id())
    }

    /// Whether this node is part of a cluster's membership yet.
    pub(crate) fn is_member(&self) -> bool {
        let m = self.raft().metrics();
        let m = m.borrow();
        m.membership_config.nodes().any(|(id, _)| *id == self.id())
    }

    fn leader(&self) -> Option<Member> {
        let m = self.raft().metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        m.membership_config.membership().get_node(&id).cloned()
    }

    /// Every member, voters first, by name.
    pub(crate) fn members(&self) -> Vec<MemberStatus> {
        let m = self.raft().metrics();
        let m = m.borrow();
        let voters: BTreeSet<NodeId> = m.membership_config.voter_ids().collect();
        let mut v: Vec<MemberStatus> = m
            .membership_config
            .nodes()
            .map(|(id, n)| MemberStatus {
                name: n.name.clone(),
                addr: n.addr.clone(),
                voter: voters.contains(id),
                leader: m.current_leader == Some(*id),
            })
            .collect();
        v.sort_by(|a, b| (!a.voter, &a.name).cmp(&(!b.voter, &b.name)));
        v
    }

    /// How often the Raft instance failed and was started anew.
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This node's Raft role, as `ctl cluster_status` names it.
    pub(crate) fn role(&self) -> &'static str {
        match self.raft().metrics().borrow().state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shut down",
        }
    }

    /// Ask a member for its `/api/nodes` entry; `None` if it cannot be
    /// reached within a second (it shows as not running).
    pub(crate) async fn ask_node_info(&self, addr: &str) -> Option<serde_json::Value> {
        let ask = async {
            let mut link = self.endpoint.connect(addr).await.ok()?;
            match link.call(&Request::NodeInfo).await.ok()? {
                Reply::NodeInfo(v) => Some(v),
                _ => None,
            }
        };
        tokio::time::timeout(Duration::from_secs(1), ask)
            .await
            .ok()
            .flatten()
    }

    pub(crate) fn node_info(&self) -> serde_json::Value {
        match self.broker.upgrade() {
            Some(b) => crate::management::node_json(&b),
            None => serde_json::Value::Null,
        }
    }

    /// Replicate a change: committed on a majority and applied on the
    /// leader when this returns (and on this node soon after). The answer
    /// is the change's own, the same on every node.
    pub(crate) async fn write(&self, c: Command) -> Result<bool, Refusal> {
        match self.via_leader(Request::Write(c)).await {
            Ok(Reply::Applied(Applied(r), index)) => {
                self.applied_here(index).await;
                r
            }
            Ok(Reply::Refused(e)) | Err(e) => Err(Refusal::Unavailable(e)),
            Ok(_) => Err(Refusal::Unavailable("an unexpected reply".into())),
        }
    }

    /// Wait (a while) until this node has applied the log up to `index`:
    /// whoever made a change through this node sees it here next, as a
    /// client publishing to the exchange it has just declared must.
    async fn applied_here(&self, index: u64) {
        let mut metrics = self.raft().metrics();
        let caught_up = metrics.wait_for(|m| m.last_applied.is_some_and(|l| l.index >= index));
        if tokio::time::timeout(LEADER_WAIT, caught_up).await.is_err() {
            tracing::warn!("cluster: change {index} is committed but not applied here yet");
        }
    }

    /// Remove a node from the cluster (`ctl forget_cluster_node`).
    pub(crate) async fn forget(&self, name: &str) -> Result<(), String> {
        match self.via_leader(Request::Forget(name.to_string())).await? {
            Reply::Done => Ok(()),
            Reply::Refused(e) => Err(e),
            _ => Err("an unexpected reply".into()),
        }
    }

    /// Carry out `req` on the leader: here if this node leads, else over a
    /// link to it, following it as it moves, for up to LEADER_WAIT.
    pub(crate) async fn via_leader(&self, req: Request) -> Result<Reply, String> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        let timed_out = || {
            "timed out waiting for the metadata leader (is a majority of the cluster running?)"
                .to_string()
        };
        let mut metrics = self.raft().metrics();
        loop {
            // None: try again (no leader known, or it cannot be reached).
            let attempt = async {
                match self.leader() {
                    Some(l) if l.name == self.me.name => Some(self.lead(&req).await),
                    Some(l) => match self.endpoint.connect(&l.addr).await {
                        // A link broken mid-call may have carried the request
                        // out: say so rather than do it twice.
                        Ok(mut link) => Some(
                            link.call(&req)
                                .await
                                .unwrap_or_else(|e| Reply::Refused(format!("{}: {e}", l.name))),
                        ),
                        Err(_) => None,
                    },
                    None => None,
                }
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Err(_) => return Err(timed_out()),
                Ok(None) | Ok(Some(Reply::NotLeader(_))) => {}
                Ok(Some(other)) => return Ok(other),
            }
            // Wait for the leadership to change (or a moment), then retry.
            let wait = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                metrics.changed(),
            );
            let _ = wait.await;
            if tokio::time::Instant::now() >= deadline {
                return Err(timed_out());
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    cluster: Arc<Cluster>,
    mut stop: watch::Receiver<bool>,
) {
    let mut links = JoinSet::new();
    loop {
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            Some(_) = links.join_next(), if !links.is_empty() => {}
            a = listener.accept() => match a {
                Ok((sock, peer)) => {
                    let c = cluster.clone();
                    links.spawn(async move {
                        match c.endpoint.accept(sock).await {
                            Ok(link) => rpc::serve(link, c).await,
                            Err(e) => tracing::warn!("cluster link from {peer} refused: {e}"),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("cluster listener: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    links.abort_all();
    let _ = cluster.raft().shutdown().await;
}
