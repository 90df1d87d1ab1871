//! The node's background work for the cluster besides forming it:
//! restarting a Raft instance openraft stopped, and importing the boot-time
//! definitions file through the log.

use super::Cluster;
use super::instance::open_raft;
use super::types::Command;
use crate::access::Refusal;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// openraft stops an instance for good when its storage fails (or its core
/// panics): the node would go on serving AMQP but never take or learn a
/// metadata change again. Start it anew from what is on disk, as an Erlang
/// supervisor restarts a crashed Ra server, pausing 1 s before the first
/// restart and up to 30 s between repeated ones.
pub(super) async fn supervise(cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
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
pub(super) async fn import_at_boot(
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
            let Some(broker) = cluster.broker.upgrade() else {
                return;
            };
            let change = Command::import(&broker, doc.clone());
            drop(broker);
            match cluster.write(change).await {
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
