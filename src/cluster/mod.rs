//! Clustering (#13): nodes that know a shared secret form one cluster
//! whose metadata is a Raft group (openraft). This module owns the node's
//! place in it: the cluster listener, the Raft instance with its log and
//! state machine on disk (`DATA/cluster/`), forming or joining a cluster
//! from seed nodes, and asking the leader for what only it may do.

mod form;
mod link;
mod log_store;
mod network;
mod rpc;
mod state_machine;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod supervisor_tests;
mod types;

use crate::access::Refusal;
use crate::broker::Broker;
use crate::config::ClusterConfig;
use openraft::ServerState;
use openraft::error::{ClientWriteError, RaftError};
use rpc::{Reply, Request};
use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
pub(crate) use types::Command;
use types::{Applied, Member, NodeId, Raft, node_id};

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
    broker: Weak<Broker>,
}

/// This node's Raft instance and the id it has in the cluster: a node whose
/// Raft state was lost (a wiped disk, `join_cluster`) comes back under a new
/// id, for its old one may have voted in a term it no longer remembers.
#[derive(Clone)]
struct Instance {
    raft: Raft,
    id: NodeId,
    /// Counts the instances this node has run, so that the supervisor
    /// tells one that failed from one replaced on purpose.
    epoch: u64,
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
        let instance = open_raft(&me.name, &raft_config, &dir, broker, &founded, &endpoint).await?;
        let cluster = Arc::new(Cluster {
            me,
            instance: std::sync::RwLock::new(instance),
            raft_config,
            dir,
            endpoint,
            founded,
            changing: Default::default(),
            restarts: Default::default(),
            broker: Arc::downgrade(broker),
        });
        tracing::info!(
            "cluster node {} (Raft id {}): inter-node listener on {bound}",
            cluster.me.name,
            cluster.id()
        );
        tasks.spawn(accept_loop(listener, cluster.clone(), stop.clone()));
        tasks.spawn(supervise(cluster.clone(), stop.clone()));
        if let Some(path) = broker.config.definitions.clone() {
            tasks.spawn(import_at_boot(cluster.clone(), path, stop.clone()));
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
            Ok(Reply::Applied(Applied(r))) => r,
            Ok(Reply::Refused(e)) | Err(e) => Err(Refusal::Unavailable(e)),
            Ok(_) => Err(Refusal::Unavailable("an unexpected reply".into())),
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

    /// Leave this node's own cluster for the one `addr` (a member's
    /// cluster address) is in (`ctl join_cluster`). As RabbitMQ's
    /// join_cluster, the node is reset first: its Raft state goes, and the
    /// metadata it held is replaced by the cluster's as it catches up. Only
    /// a node that is a cluster of its own may do this; one with other
    /// members must be forgotten there first. Answers the name of the node
    /// joined through.
    pub(crate) async fn join(&self, addr: &str) -> Result<String, String> {
        let _one = self.changing.lock().await;
        let others: Vec<String> = self
            .members()
            .into_iter()
            .map(|m| m.name)
            .filter(|n| *n != self.me.name)
            .collect();
        if !others.is_empty() {
            return Err(format!(
                "{} is already a member of a cluster with {}; remove it from there first (forget_cluster_node)",
                self.me.name,
                others.join(", ")
            ));
        }
        let mut link = self
            .endpoint
            .connect(addr)
            .await
            .map_err(|e| format!("cannot reach {addr}: {e}"))?;
        let peer = link.peer.clone();
        if peer == self.me.name {
            return Err(format!("{peer} cannot join itself"));
        }
        match link.call(&Request::Hello).await {
            Ok(Reply::Hello { member: true }) => {}
            Ok(Reply::Hello { member: false }) => {
                return Err(format!("{peer} is not a member of a cluster yet"));
            }
            Ok(_) => return Err(format!("{peer}: an unexpected reply")),
            Err(e) => return Err(format!("{peer}: {e}")),
        }
        tracing::info!("cluster: resetting {} to join {peer}", self.me.name);
        let old = self.raft();
        let _ = old.shutdown().await;
        drop(old);
        let reset = |e: std::io::Error| format!("cannot reset the node's cluster state: {e}");
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(reset(e)),
        }
        self.founded.send_replace(false);
        let Some(broker) = self.broker.upgrade() else {
            return Err("the node is stopping".into());
        };
        let instance = open_raft(
            &self.me.name,
            &self.raft_config,
            &self.dir,
            &broker,
            &self.founded,
            &self.endpoint,
        )
        .await
        .map_err(reset)?;
        let id = instance.id;
        self.install(instance);
        match link.call(&Request::Join(self.me.clone(), id)).await {
            Ok(Reply::Done) => {
                tracing::info!("cluster: joined through {peer}");
                Ok(peer)
            }
            // The old state is gone: say how to get out of no cluster at all.
            r => {
                let why = match r {
                    Ok(Reply::Refused(e)) => format!("{peer} refused the join: {e}"),
                    Ok(_) => format!("{peer}: an unexpected reply"),
                    Err(e) => format!("{peer}: {e}"),
                };
                Err(format!(
                    "{why}; the node is now in no cluster: run join_cluster again, or restart it to start one of its own"
                ))
            }
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

    /// What the leader does for a request forwarded to it.
    async fn lead(&self, req: &Request) -> Reply {
        let not_leader = |e: &RaftError<NodeId, ClientWriteError<NodeId, Member>>| {
            e.forward_to_leader::<Member>()
                .map(|f| Reply::NotLeader(f.leader_node.clone()))
        };
        let done = |r: Result<_, RaftError<NodeId, ClientWriteError<NodeId, Member>>>| match r {
            Ok(_) => Reply::Done,
            Err(e) => not_leader(&e).unwrap_or_else(|| Reply::Refused(e.to_string())),
        };
        match req {
            Request::Write(c) => {
                if !matches!(c, Command::ReplaceDefinitions(_)) {
                    let mut founded = self.founded.subscribe();
                    if tokio::time::timeout(LEADER_WAIT, founded.wait_for(|f| *f))
                        .await
                        .is_err()
                    {
                        return Reply::Refused("the cluster is still forming".into());
                    }
                }
                match self.raft().client_write(c.clone()).await {
                    Ok(r) => Reply::Applied(r.data),
                    Err(e) => not_leader(&e).unwrap_or_else(|| Reply::Refused(e.to_string())),
                }
            }
            Request::Join(m, id) => {
                let _one = self.changing.lock().await;
                let id = *id;
                let membership = self.raft().metrics().borrow().membership_config.clone();
                if membership.voter_ids().any(|v| v == id) {
                    return Reply::Done;
                }
                // The same node under an earlier id: its state was lost, and
                // with it what it voted for. The old id goes before the new
                // one comes in, so that the lost vote can never count.
                let earlier: Vec<NodeId> = membership
                    .nodes()
                    .filter(|(old, n)| n.name == m.name && **old != id)
                    .map(|(old, _)| *old)
                    .collect();
                if earlier.contains(&self.id()) {
                    return Reply::Refused(format!("{} is running as a member already", m.name));
                }
                if !earlier.is_empty() {
                    tracing::info!(
                        "cluster: {} lost its state; it rejoins as a new member",
                        m.name
                    );
                    let set: BTreeSet<NodeId> = earlier.into_iter().collect();
                    // A leader killed between the two steps may have left
                    // the old id a learner only.
                    let voting: BTreeSet<NodeId> =
                        membership.voter_ids().filter(|v| set.contains(v)).collect();
                    if !voting.is_empty() {
                        let voters = openraft::ChangeMembers::RemoveVoters(voting);
                        if let Err(e) = self.raft().change_membership(voters, false).await {
                            return done(Err(e));
                        }
                    }
                    let nodes = openraft::ChangeMembers::RemoveNodes(set);
                    if let Err(e) = self.raft().change_membership(nodes, false).await {
                        return done(Err(e));
                    }
                }
                if let Err(e) = self.raft().add_learner(id, m.clone(), true).await {
                    return done(Err(e));
                }
                tracing::info!("cluster: {} joins", m.name);
                let change = openraft::ChangeMembers::AddVoterIds([id].into());
                done(self.raft().change_membership(change, false).await)
            }
            Request::Forget(name) => {
                let _one = self.changing.lock().await;
                let id = self
                    .raft()
                    .metrics()
                    .borrow()
                    .membership_config
                    .nodes()
                    .find(|(_, n)| n.name == *name)
                    .map(|(id, _)| *id);
                let Some(id) = id else {
                    return Reply::Refused(format!("{name} is not a member of this cluster"));
                };
                if id == self.id() {
                    return Reply::Refused(format!(
                        "{name} is the node carrying out the removal; ask another node"
                    ));
                }
                let addr = self
                    .raft()
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .get_node(&id)
                    .map(|m| m.addr.clone());
                let Some(addr) = addr else {
                    return Reply::Refused(format!("{name} is not a member of this cluster"));
                };
                // As RabbitMQ: only a stopped node is forgotten; a running
                // one would go on as if still a member.
                if self.ask_node_info(&addr).await.is_some() {
                    return Reply::Refused(format!("{name} is running; stop it first"));
                }
                tracing::info!("cluster: forgetting {name}");
                let change = openraft::ChangeMembers::RemoveVoters([id].into());
                match self.raft().change_membership(change, false).await {
                    Ok(_) => {
                        let nodes = openraft::ChangeMembers::RemoveNodes([id].into());
                        done(self.raft().change_membership(nodes, false).await)
                    }
                    Err(e) => done(Err(e)),
                }
            }
            _ => Reply::Refused("not a request for the leader".into()),
        }
    }
}

/// This node's Raft instance over its log and state machine in `dir`.
async fn open_raft(
    name: &str,
    config: &Arc<openraft::Config>,
    dir: &std::path::Path,
    broker: &Arc<Broker>,
    founded: &Arc<watch::Sender<bool>>,
    endpoint: &link::Endpoint,
) -> std::io::Result<Instance> {
    let log = log_store::LogStore::open(dir)?;
    let fresh = log.is_fresh();
    let id = identity(dir, name, fresh)?;
    let sm = state_machine::StateMachine::open(dir, hooks(broker), founded.clone())?;
    let network = network::Network {
        endpoint: endpoint.clone(),
    };
    let raft = Raft::new(id, config.clone(), network, log, sm)
        .await
        .map_err(std::io::Error::other)?;
    Ok(Instance { raft, id, epoch: 0 })
}

/// The node's id, kept in `DATA/cluster/id`: drawn afresh for a node with no
/// Raft state, so that a node that lost its state is never taken for what
/// it was. A node from before ids were kept has its name's.
fn identity(dir: &std::path::Path, name: &str, fresh: bool) -> std::io::Result<NodeId> {
    let path = dir.join("id");
    match std::fs::read_to_string(&path) {
        Ok(text) if !fresh => {
            return text.trim().parse().map_err(|e| {
                std::io::Error::other(format!("{}: not a node id: {e}", path.display()))
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = if fresh {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
        node_id(&format!("{name}/{}", u64::from_be_bytes(b)))
    } else {
        node_id(name)
    };
    log_store::replace_file(&path, id.to_string().as_bytes())?;
    Ok(id)
}

/// What the state machine does to this node's broker: carry out committed
/// changes, and export or install the replicated definitions as snapshots.
fn hooks(broker: &Arc<Broker>) -> state_machine::Hooks {
    let (a, e, i) = (
        Arc::downgrade(broker),
        Arc::downgrade(broker),
        Arc::downgrade(broker),
    );
    state_machine::Hooks {
        apply: Arc::new(move |c: &Command| {
            let Some(b) = a.upgrade() else {
                return Applied(Err(Refusal::Unavailable("the node is stopping".into())));
            };
            Applied(b.apply_change(c))
        }),
        export: Arc::new(move || {
            e.upgrade()
                .map(|b| b.replicated_definitions())
                .unwrap_or_default()
        }),
        import: Arc::new(move |doc: &serde_json::Value| {
            if let Some(b) = i.upgrade()
                && let Err(e) = b.install_replicated_definitions(doc)
            {
                tracing::error!("cluster: cannot install the snapshot's definitions: {e}");
            }
        }),
    }
}

/// openraft stops an instance for good when its storage fails (or its core
/// panics): the node would go on serving AMQP but never take or learn a
/// metadata change again. Start it anew from what is on disk, as an Erlang
/// supervisor restarts a crashed Ra server, pausing 1 s before the first
/// restart and up to 30 s between repeated ones.
async fn supervise(cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let mut pause = Duration::from_secs(1);
    loop {
        let instance = cluster.instance();
        let mut metrics = instance.raft.metrics();
        let failure = loop {
            if let Err(e) = &metrics.borrow_and_update().running_state {
                break e.to_string();
            }
            tokio::select! {
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                r = metrics.changed() => if r.is_err() {
                    break "its core is gone".to_string();
                },
            }
        };
        if *stop.borrow() {
            return;
        }
        let _one = cluster.changing.lock().await;
        if cluster.instance().epoch != instance.epoch {
            // Replaced on purpose (join_cluster) meanwhile.
            continue;
        }
        tracing::error!(
            "cluster: the metadata Raft instance stopped ({failure}); restarting it from disk in {}s",
            pause.as_secs()
        );
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let _ = instance.raft.shutdown().await;
        drop(instance);
        let Some(broker) = cluster.broker.upgrade() else {
            return;
        };
        match open_raft(
            &cluster.me.name,
            &cluster.raft_config,
            &cluster.dir,
            &broker,
            &cluster.founded,
            &cluster.endpoint,
        )
        .await
        {
            Ok(instance) => {
                cluster.install(instance);
                cluster
                    .restarts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!("cluster: the metadata Raft instance is running again");
                pause = Duration::from_secs(1);
            }
            Err(e) => {
                tracing::error!("cluster: cannot restart the metadata Raft instance: {e}");
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// As a RabbitMQ node imports its definitions file at every boot into the
/// cluster's store, so does this one, through the log, once the node is a
/// member and the cluster takes changes (until then it only holds them
/// alone, and would lose them to the log when it joined).
async fn import_at_boot(
    cluster: Arc<Cluster>,
    path: std::path::PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    let doc = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()))
    {
        Ok(doc) => doc,
        Err(e) => {
            tracing::error!("cluster: cannot import {}: {e}", path.display());
            return;
        }
    };
    loop {
        if cluster.is_member() {
            match cluster.write(Command::ImportDefinitions(doc.clone())).await {
                Ok(_) => {
                    tracing::info!("cluster: imported definitions from {}", path.display());
                    return;
                }
                Err(Refusal::Unavailable(_)) => {}
                Err(e) => {
                    tracing::error!("cluster: definitions from {} refused: {e}", path.display());
                    return;
                }
            }
        }
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
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
