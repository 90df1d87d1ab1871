//! Where a quorum queue's home is, kept with its group's leader: a member
//! that becomes leader asks the log to move the queue to it
//! (`Change::MoveQueue`, carried out by `Vhost::move_shared_queue`), and
//! the member's state machine then applies to the queue instead of the log.

use super::machine::Target;
use super::{Group, group_name};
use crate::cluster::Cluster;
use crate::queue::Queue;
use crate::store::queue_log::QueueLog;
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

/// How often a leader that could not move the queue to it tries again.
const RETRY: Duration = Duration::from_secs(1);

/// Watch the group's leadership: while this member leads and the queue is
/// homed elsewhere, ask the log to move it here.
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
            let homed_elsewhere = c
                .broker
                .upgrade()
                .and_then(|b| b.vhost(&vhost))
                .and_then(|v| v.queue(&queue).ok())
                .is_some_and(|q| q.incarnation() == incarnation && q.elsewhere().is_some());
            if homed_elsewhere {
                let b = c.broker.upgrade();
                drop(c);
                let Some(b) = b else { return };
                let change = crate::broker::changes::Change::MoveQueue {
                    vhost: vhost.clone(),
                    name: queue.clone(),
                    incarnation,
                    home: b.node_name().to_string(),
                };
                if let Err(e) = b.change(change).await {
                    tracing::warn!("quorum queue '{queue}': cannot move it here yet: {e}");
                }
                drop(b);
                // Look again: moved, or try once more.
                if matches!(
                    tokio::time::timeout(RETRY, metrics.changed()).await,
                    Ok(Err(_))
                ) {
                    return;
                }
                continue;
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
