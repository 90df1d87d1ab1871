//! What only the metadata leader carries out, for whichever node asked:
//! writing a change, adding a member (replacing an earlier id of the same
//! node), and forgetting one.

use super::rpc::{Reply, Request};
use super::types::{Command, Member, NodeId};
use super::{Cluster, LEADER_WAIT};
use openraft::error::{ClientWriteError, RaftError};
use std::collections::BTreeSet;

impl Cluster {
    /// What the leader does for a request forwarded to it.
    pub(super) async fn lead(&self, req: &Request) -> Reply {
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
                    Ok(r) => Reply::Applied(r.data, r.log_id.index),
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
                        let removed = self.raft().change_membership(nodes, false).await;
                        if removed.is_ok() {
                            let gone = Command::ForgetQueuesOf(name.clone());
                            if let Err(e) = self.raft().client_write(gone).await {
                                tracing::warn!("cluster: {name}'s queues stay: {e}");
                            }
                        }
                        done(removed)
                    }
                    Err(e) => done(Err(e)),
                }
            }
            _ => Reply::Refused("not a request for the leader".into()),
        }
    }
}
