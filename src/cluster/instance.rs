//! The node's Raft instance: opened over its log and state machine in
//! `DATA/cluster/`, under the id kept there, with the hooks through which
//! the state machine changes the broker.

use super::types::{Applied, Command, NodeId, Raft, node_id};
use super::{link, log_store, network, state_machine};
use crate::access::Refusal;
use crate::broker::Broker;
use std::sync::Arc;
use tokio::sync::watch;

/// This node's Raft instance and the id it has in the cluster: a node whose
/// Raft state was lost (a wiped disk, `join_cluster`) comes back under a new
/// id, for its old one may have voted in a term it no longer remembers.
#[derive(Clone)]
pub(super) struct Instance {
    pub(super) raft: Raft,
    pub(super) id: NodeId,
    /// Counts the instances this node has run, so that the supervisor
    /// tells one that failed from one replaced on purpose.
    pub(super) epoch: u64,
}

/// This node's Raft instance over its log and state machine in `dir`.
pub(super) async fn open_raft(
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
    let (a, e, i, t, r) = (
        Arc::downgrade(broker),
        Arc::downgrade(broker),
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
        topology: Arc::new(move || t.upgrade().map(|b| b.topology_json()).unwrap_or_default()),
        restore: Arc::new(move |doc: &serde_json::Value| {
            if let Some(b) = r.upgrade() {
                b.restore_topology(doc);
            }
        }),
    }
}
