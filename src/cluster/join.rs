//! `ctl join_cluster`: a node that is a cluster of its own resets its Raft
//! state and joins the cluster of another member.

use super::Cluster;
use super::instance::open_raft;
use super::rpc::{Reply, Request};

impl Cluster {
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
}
