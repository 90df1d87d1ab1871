//! Where a quorum queue's home is, kept with its group's leader: a member
//! that becomes leader asks the log to move the queue to it
//! (`Change::MoveQueue`, carried out by `Vhost::move_shared_queue`), and
//! the member's state machine then applies to the queue instead of the log.

use super::machine::Target;
use super::{Group, group_name};
use crate::cluster::Cluster;
use crate::cluster::types::{Member, NodeId};
use crate::queue::Queue;
use crate::store::queue_log::QueueLog;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

impl Cluster {
    /// The queue's home moves here: `make` builds it from the member's log
    /// while nothing is applied, and the group's entries go to it from now on.
    pub(crate) fn home_arrives(
        &self,
        vhost: &str,
        queue: &str,
        incarnation: u64,
        make: impl FnOnce() -> Option<Arc<Queue>>,
    ) -> Option<Arc<Queue>> {
        let Some(g) = self.groups.get(&group_name(vhost, queue, incarnation)) else {
            // Not open yet: `open_group` finds the queue homed here.
            return make();
        };
        let mut t = g.target.lock().unwrap_or_else(|p| p.into_inner());
        // The log is opened afresh by the queue.
        *t = Target::None;
        let q = make()?;
        *t = Target::Home(Arc::downgrade(&q));
        drop(t);
        q.replicate_through(g.clone());
        Some(q)
    }

    /// The queue's home moved away from here: `old` lets go, and the
    /// member's log keeps what the group applies from now on.
    pub(crate) fn home_leaves(
        &self,
        vhost: &str,
        queue: &str,
        incarnation: u64,
        old: &Arc<Queue>,
        dir: impl FnOnce() -> std::path::PathBuf,
    ) {
        let Some(g) = self.groups.get(&group_name(vhost, queue, incarnation)) else {
            old.detach();
            return;
        };
        let mut t = g.target.lock().unwrap_or_else(|p| p.into_inner());
        old.detach();
        let Some(b) = self.broker.upgrade() else {
            *t = Target::None;
            return;
        };
        *t = match QueueLog::open(&dir(), b.store.sync.clone(), b.store.meter) {
            Ok((log, _)) => Target::Replica(Box::new(log)),
            Err(e) => {
                tracing::error!("quorum queue '{queue}': cannot open its log: {e}");
                Target::None
            }
        };
    }
}

/// How often a leader looks again without being told of a change: to
/// retry a move, or to find a member the metadata group knows by a new id.
const RECHECK: Duration = Duration::from_secs(1);

/// Watch the group's leadership: while this member leads, the queue is
/// homed here (it asks the log to move it here if it is not), and the
/// group's members are the nodes its declaration named, by the ids the
/// metadata group knows them by now.
pub(super) async fn follow_leader(
    cluster: Weak<Cluster>,
    group: Arc<Group>,
    vhost: String,
    queue: String,
    incarnation: u64,
) {
    let Some(raft) = group.raft().await else {
        return;
    };
    let mut metrics = raft.metrics();
    loop {
        let leads = {
            let m = metrics.borrow_and_update();
            m.current_leader == Some(m.id)
        };
        if leads {
            let Some(c) = cluster.upgrade() else { return };
            let Some(b) = c.broker.upgrade() else { return };
            let q = b
                .vhost(&vhost)
                .and_then(|v| v.queue(&queue).ok())
                .filter(|q| q.incarnation() == incarnation);
            if let Some(q) = q {
                let replicas = q.replicas().to_vec();
                if q.elsewhere().is_some() {
                    drop(q);
                    let change = crate::broker::changes::Change::MoveQueue {
                        vhost: vhost.clone(),
                        name: queue.clone(),
                        incarnation,
                        home: b.node_name().to_string(),
                    };
                    if let Err(e) = b.change(change).await {
                        tracing::warn!("quorum queue '{queue}': cannot move it here yet: {e}");
                    }
                }
                members_by_current_ids(&c, &raft, &replicas, &queue).await;
            }
        }
        if let Ok(Err(_)) = tokio::time::timeout(RECHECK, metrics.changed()).await {
            return;
        }
    }
}

/// Make the group's voters the queue's replicas by the ids the metadata
/// group has for them now: a member whose disk was wiped came back under a
/// new id, which is added (as a learner first, not waited for: the other
/// two are a majority of the old and the new membership alike) in place
/// of its old one. A replica the cluster forgot keeps its old id.
async fn members_by_current_ids(
    c: &Cluster,
    raft: &super::types::QRaft,
    replicas: &[String],
    queue: &str,
) {
    let meta: BTreeMap<String, (NodeId, Member)> = {
        let m = c.raft().metrics();
        let m = m.borrow();
        m.membership_config
            .nodes()
            .map(|(id, n)| (n.name.clone(), (*id, n.clone())))
            .collect()
    };
    let (voters, names): (BTreeSet<NodeId>, BTreeMap<NodeId, String>) = {
        let m = raft.metrics();
        let m = m.borrow();
        (
            m.membership_config.membership().voter_ids().collect(),
            m.membership_config
                .nodes()
                .map(|(id, n)| (*id, n.name.clone()))
                .collect(),
        )
    };
    let mut want = BTreeSet::new();
    for name in replicas {
        match meta.get(name) {
            Some((id, _)) => {
                want.insert(*id);
            }
            None => {
                if let Some((id, _)) = names.iter().find(|(_, n)| *n == name) {
                    want.insert(*id);
                }
            }
        }
    }
    if want == voters || want.len() < voters.len() {
        return;
    }
    for id in want.difference(&voters) {
        let Some((_, member)) = meta.values().find(|(i, _)| i == id) else {
            return;
        };
        tracing::info!(
            "quorum queue '{queue}': {} is a member again, as {id}",
            member.name
        );
        if let Err(e) = raft.add_learner(*id, member.clone(), false).await {
            tracing::warn!("quorum queue '{queue}': cannot add {}: {e}", member.name);
            return;
        }
    }
    if let Err(e) = raft.change_membership(want, false).await {
        tracing::warn!("quorum queue '{queue}': cannot change its members: {e}");
    }
}
