//! Forming a cluster from seed nodes (`cluster.seed_nodes`), as RabbitMQ's
//! classic peer discovery does: a node that does not vote yet (a fresh one,
//! or one restarted while it was being added) asks each seed whether it is
//! already a member; if one is, it asks to join through it. If none is,
//! the node whose name sorts first among itself and all its seeds starts
//! the cluster alone, once it has heard from every seed, and the others
//! join it. With no seeds a node starts a cluster of its own.

use super::Cluster;
use super::rpc::{Reply, Request};
use super::types::Command;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const RETRY: Duration = Duration::from_millis(500);

pub(super) async fn form(
    cluster: Arc<Cluster>,
    seeds: Vec<String>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if cluster.is_voter() {
            return;
        }
        match attempt(&cluster, &seeds).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::info!("cluster: not formed yet: {e}"),
        }
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// One round over the seeds: true once this node is a member.
async fn attempt(cluster: &Cluster, seeds: &[String]) -> Result<bool, String> {
    let me = &cluster.me;
    let mut lowest = true;
    for seed in seeds {
        let mut link = match cluster.endpoint.connect(seed).await {
            Ok(l) => l,
            Err(e) => return Err(format!("seed {seed}: {e}")),
        };
        if link.peer == me.name {
            continue;
        }
        lowest &= me.name < link.peer;
        match link.call(&Request::Hello).await {
            Ok(Reply::Hello { member: true }) => {
                return match link.call(&Request::Join(me.clone(), cluster.id())).await {
                    Ok(Reply::Done) => {
                        tracing::info!("cluster: joined through {}", link.peer);
                        Ok(true)
                    }
                    Ok(Reply::Refused(e)) => Err(format!("{} refused the join: {e}", link.peer)),
                    Ok(_) => Err(format!("{}: an unexpected reply", link.peer)),
                    Err(e) => Err(format!("{}: {e}", link.peer)),
                };
            }
            Ok(Reply::Hello { member: false }) => {}
            Ok(_) => return Err(format!("{}: an unexpected reply", link.peer)),
            Err(e) => return Err(format!("{}: {e}", link.peer)),
        }
    }
    if !lowest {
        return Err("waiting for the first node to start the cluster".into());
    }
    let members = BTreeMap::from([(cluster.id(), me.clone())]);
    match cluster.raft().initialize(members).await {
        Ok(()) => {
            tracing::info!("cluster: started a new cluster as {}", me.name);
            found(cluster).await;
            Ok(true)
        }
        Err(e) => Err(format!("cannot start the cluster: {e}")),
    }
}

/// Make this node's definitions the cluster's first change, so that every
/// node that joins gets exactly them (and not what it held alone).
async fn found(cluster: &Cluster) {
    let Some(defs) = cluster.broker.upgrade().map(|b| b.replicated_definitions()) else {
        return;
    };
    // Each try waits for a leader for a few seconds: two minutes in all.
    for _ in 0..24 {
        match cluster
            .write(Command::ReplaceDefinitions(defs.clone()))
            .await
        {
            Ok(_) => return,
            Err(e) => tracing::warn!("cluster: the founding change is not in yet: {e}"),
        }
    }
    tracing::error!("cluster: the founding change never went in; changes stay refused");
}
