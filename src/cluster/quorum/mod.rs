//! Quorum queues (`x-queue-type: quorum`, with `replicate_topology`): each
//! is a Raft group of its own over the members its declaration names
//! (`x-quorum-initial-group-size`, 3 by default), whose state machine is
//! the queue's message log on each member (`machine.rs`). Every publish to
//! it is an entry, applied (and so delivered) once a majority has it on
//! disk, and only then confirmed; whatever takes a message out of the queue
//! on its home (ack, reject, expiry, overflow, purge) is an entry too, so
//! every member's log holds what the queue holds. The group's log is in
//! `DATA/cluster/quorum/<vhost>.<queue>.<incarnation>/`.

mod home;
mod machine;
#[cfg(test)]
mod machine_tests;
pub(crate) mod network;
mod snapshot;
mod types;

use super::Cluster;
use super::log_store::LogStore;
use super::types::{Member, NodeId};
use crate::message::Message;
use crate::queue::Queue;
use crate::store::queue_log::QueueLog;
use base64::Engine;
use machine::{QueueMachine, Target};
use network::{GroupNetwork, GroupReply, GroupRpc};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub(crate) use types::QCommand;
use types::QRaft;

/// How long a publish waits for its group to come up and commit it.
const COMMIT_WAIT: Duration = Duration::from_secs(10);

/// This node's members of quorum queue groups, by group name.
#[derive(Default)]
pub(crate) struct Groups(Mutex<HashMap<String, Arc<Group>>>);

/// This node's member of one quorum queue's group.
pub(crate) struct Group {
    /// Its Raft instance, once started.
    raft: tokio::sync::watch::Sender<Option<QRaft>>,
    target: Arc<Mutex<Target>>,
    dir: PathBuf,
    /// What the queue proposes, in the order it happened here (an ack
    /// before the publish that follows it on the same channel), with where
    /// to say whether it was committed and taken (`propose`).
    proposals: tokio::sync::mpsc::UnboundedSender<Proposal>,
}

/// A command for the group, and who waits for its outcome.
type Proposal = (QCommand, Option<tokio::sync::oneshot::Sender<bool>>);

/// Batches in flight at once: while they are written and replicated, the
/// next proposals gather into the next batch.
const IN_FLIGHT: usize = 4;

/// Hand the queue's proposals to Raft in the order they were made, as
/// many as have gathered in one entry (`QBatch`), each answered once
/// applied (no one waits for a settlement: one lost with a leader is
/// delivered again, as a message whose ack was in flight). A group still
/// electing its first leader is waited for.
async fn propose(raft: QRaft, mut queued: tokio::sync::mpsc::UnboundedReceiver<Proposal>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    while let Some(first) = queued.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < types::MAX_BATCH {
            match queued.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (commands, replies): (Vec<QCommand>, Vec<_>) = batch.into_iter().unzip();
        let mut m = raft.metrics();
        let led = m.wait_for(|m| m.current_leader.is_some());
        if !matches!(tokio::time::timeout(COMMIT_WAIT, led).await, Ok(Ok(_))) {
            for r in replies.into_iter().flatten() {
                let _ = r.send(false);
            }
            continue;
        }
        let Ok(rx) = raft.client_write_ff(types::QBatch(commands)).await else {
            return;
        };
        tokio::spawn(async move {
            let taken = match rx.await {
                Ok(Ok(r)) => r.data.0,
                _ => Vec::new(),
            };
            drop(slot);
            for (i, r) in replies.into_iter().enumerate() {
                if let Some(r) = r {
                    let _ = r.send(taken.get(i).copied().unwrap_or(false));
                }
            }
        });
    }
}

/// Take a snapshot whenever the state machine finds one worth it; the log
/// behind it is then cut (openraft keeps the last entries for followers
/// just behind).
async fn snapshots(raft: QRaft, wanted: Arc<tokio::sync::Notify>) {
    loop {
        wanted.notified().await;
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
    }
}

/// A group's name: the queue's vhost and name (hex) and its incarnation.
pub(crate) fn group_name(vhost: &str, queue: &str, incarnation: u64) -> String {
    format!(
        "{}.{}.{incarnation}",
        crate::store::hex(vhost),
        crate::store::hex(queue)
    )
}

fn raft_config() -> Option<Arc<openraft::Config>> {
    let c = openraft::Config {
        // Entries hold up to MAX_BATCH messages each: keep few behind a
        // snapshot (a follower further behind is sent the snapshot).
        max_in_snapshot_log_to_keep: 16,
        cluster_name: "ferretmq-quorum-queue".into(),
        heartbeat_interval: 200,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        ..Default::default()
    };
    c.validate().ok().map(Arc::new)
}

impl Groups {
    fn get(&self, name: &str) -> Option<Arc<Group>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }
}

/// Where a quorum queue lives on this node, for `Cluster::open_group`.
pub(crate) struct Placed<'a> {
    pub(crate) vhost: &'a str,
    pub(crate) queue: &'a str,
    pub(crate) incarnation: u64,
    pub(crate) replicas: &'a [String],
    /// The queue, if it is homed here.
    pub(crate) home: Option<&'a Arc<Queue>>,
    /// Its message log's directory.
    pub(crate) queue_dir: PathBuf,
}

impl Cluster {
    /// Open this node's member of a quorum queue's group, if it is one and
    /// has not opened it yet: made on its first declaration, opened again
    /// after a restart. The home of a new group starts it.
    pub(crate) fn open_group(self: &Arc<Self>, p: Placed<'_>) {
        if !p.replicas.iter().any(|r| *r == self.me.name) {
            return;
        }
        let name = group_name(p.vhost, p.queue, p.incarnation);
        let mut all = self.groups.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = all.get(&name) {
            if let Some(q) = p.home {
                self.home_here(g, q);
            }
            return;
        }
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let dir = broker.store.quorum_group_dir(&name);
        let fresh = !dir.exists();
        let target = match p.home {
            Some(_) => Target::None,
            None => {
                if fresh {
                    let _ = std::fs::remove_dir_all(&p.queue_dir);
                }
                match QueueLog::open(&p.queue_dir, broker.store.sync.clone(), broker.store.meter) {
                    Ok((log, _)) => Target::Replica(Box::new(log)),
                    Err(e) => {
                        tracing::error!("quorum queue '{}': cannot open its log: {e}", p.queue);
                        return;
                    }
                }
            }
        };
        let (proposals, queued) = tokio::sync::mpsc::unbounded_channel();
        let g = Arc::new(Group {
            raft: tokio::sync::watch::Sender::new(None),
            target: Arc::new(Mutex::new(target)),
            dir: dir.clone(),
            proposals,
        });
        if let Some(q) = p.home {
            self.home_here(&g, q);
        }
        all.insert(name.clone(), g.clone());
        drop(all);
        let members: BTreeMap<NodeId, Member> = {
            let m = self.raft().metrics();
            let m = m.borrow();
            m.membership_config
                .nodes()
                .filter(|(_, n)| p.replicas.contains(&n.name))
                .map(|(id, n)| (*id, n.clone()))
                .collect()
        };
        let start = fresh && p.home.is_some();
        let (me, endpoint, meter) = (self.id(), self.endpoint.clone(), broker.store.meter);
        let (weak, vhost) = (Arc::downgrade(&broker), p.vhost.to_string());
        let (queue_dir, sync) = (p.queue_dir.clone(), broker.store.sync.clone());
        let every = broker
            .config
            .cluster
            .as_ref()
            .map_or(8192, |c| c.quorum_snapshot_after);
        let (cluster, vhost_name) = (Arc::downgrade(self), p.vhost.to_string());
        let (queue, incarnation) = (p.queue.to_string(), p.incarnation);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let Some(config) = raft_config() else {
                return;
            };
            let log = match LogStore::open(&dir) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("quorum queue group {name}: cannot open its log: {e}");
                    return;
                }
            };
            let wanted = Arc::new(tokio::sync::Notify::new());
            let paths = machine::Paths {
                dir: &dir,
                queue_dir,
                sync,
                every,
            };
            let sm = QueueMachine::new(g.target.clone(), meter, weak, vhost, paths, wanted.clone());
            let network = GroupNetwork {
                endpoint,
                group: name.clone(),
            };
            let raft = match QRaft::new(me, config, network, log, sm).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("quorum queue group {name}: cannot start: {e}");
                    return;
                }
            };
            if start && let Err(e) = raft.initialize(members).await {
                tracing::warn!("quorum queue group {name}: {e}");
            }
            g.raft.send_replace(Some(raft.clone()));
            tokio::spawn(propose(raft.clone(), queued));
            tokio::spawn(snapshots(raft, wanted));
            home::follow_leader(cluster, g, vhost_name, queue, incarnation).await;
        });
    }

    /// The queue is homed here: the group's entries go to it, and what it
    /// publishes and lets go of goes through the group.
    fn home_here(&self, g: &Arc<Group>, q: &Arc<Queue>) {
        *g.target.lock().unwrap_or_else(|p| p.into_inner()) = Target::Home(Arc::downgrade(q));
        q.replicate_through(g.clone());
    }

    /// The queue was deleted: so is this node's member of its group.
    pub(crate) fn close_group(&self, vhost: &str, queue: &str, incarnation: u64) {
        let name = group_name(vhost, queue, incarnation);
        let Some(g) = self
            .groups
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name)
        else {
            return;
        };
        let target = std::mem::replace(
            &mut *g.target.lock().unwrap_or_else(|p| p.into_inner()),
            Target::None,
        );
        if let Target::Replica(log) = target {
            log.destroy();
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let raft = g.raft.send_replace(None);
            if let Some(raft) = raft {
                let _ = raft.shutdown().await;
            }
            let _ = std::fs::remove_dir_all(&g.dir);
        });
    }

    /// Raft's message for a group this node is a member of.
    pub(super) async fn group_rpc(&self, group: &str, to: NodeId, rpc: GroupRpc) -> GroupReply {
        let raft = match self.groups.get(group) {
            Some(g) if to == self.id() => g.raft.borrow().clone(),
            _ => None,
        };
        let Some(raft) = raft else {
            return GroupReply::NoGroup;
        };
        match rpc {
            GroupRpc::AppendEntries(r) => GroupReply::AppendEntries(raft.append_entries(r).await),
            GroupRpc::Vote(r) => GroupReply::Vote(raft.vote(r).await),
            GroupRpc::InstallSnapshot(r) => {
                GroupReply::InstallSnapshot(raft.install_snapshot(r).await)
            }
        }
    }
}

impl Group {
    /// Its Raft instance, waiting (a while) for it to start.
    async fn raft(&self) -> Option<QRaft> {
        let mut rx = self.raft.subscribe();
        let started = rx.wait_for(Option::is_some);
        match tokio::time::timeout(COMMIT_WAIT, started).await {
            Ok(Ok(r)) => r.clone(),
            _ => None,
        }
    }
}

impl crate::queue::QuorumLink for Group {
    fn enqueue(self: Arc<Self>, msg: &Message, expires: u64) -> crate::queue::Commit {
        let mut record = Vec::new();
        crate::store::record::encode_publish(0, 0, msg, &mut record);
        let message = base64::engine::general_purpose::STANDARD.encode(record);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self
            .proposals
            .send((QCommand::Enqueue { expires, message }, Some(tx)))
            .is_ok();
        Box::pin(async move {
            sent && matches!(tokio::time::timeout(COMMIT_WAIT, rx).await, Ok(Ok(true)))
        })
    }

    fn settled(self: Arc<Self>, seqs: Vec<u64>) {
        let _ = self.proposals.send((QCommand::Settle { seqs }, None));
    }
}

impl Cluster {
    /// The nodes of a new quorum queue's group: its home and the next
    /// members by name, `x-quorum-initial-group-size` of them (3 by
    /// default, never more than the cluster has). None for other queues.
    pub(crate) fn replicas_for(
        &self,
        arguments: &amq_protocol::types::FieldTable,
        home: &str,
    ) -> Vec<String> {
        let quorum = crate::queue::args::is_quorum(arguments);
        if !quorum {
            return Vec::new();
        }
        let size = arguments
            .inner()
            .get("x-quorum-initial-group-size")
            .and_then(crate::field::int)
            .filter(|n| *n > 0)
            .map_or(3, |n| n as usize);
        let mut others: Vec<String> = {
            let m = self.raft().metrics();
            let m = m.borrow();
            m.membership_config
                .nodes()
                .map(|(_, n)| n.name.clone())
                .filter(|n| n != home)
                .collect()
        };
        others.sort();
        // Spread groups over the nodes: start after the home, by name.
        let after = others.partition_point(|n| n.as_str() < home);
        others.rotate_left(after);
        let mut replicas = vec![home.to_string()];
        replicas.extend(others.into_iter().take(size.saturating_sub(1)));
        replicas
    }
}

impl Cluster {
    /// Open this node's members of the quorum queues it holds (after a
    /// restart: the topology was restored before the cluster was up).
    pub(crate) fn open_groups(&self) {
        let Some(b) = self.broker.upgrade() else {
            return;
        };
        for v in b.vhosts() {
            for q in v.queue_list() {
                v.open_group(&q);
            }
        }
    }
}
