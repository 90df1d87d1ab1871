//! A node alone in its cluster whose metadata log stops being writable: its
//! Raft instance stops, and the supervisor starts it anew from disk.

use super::Cluster;
use super::log_store::failing;
use crate::broker::Broker;
use crate::broker::changes::Change;
use crate::config::ClusterConfig;
use std::time::{Duration, Instant};

fn put(name: &str) -> Change {
    Change::SetGlobalParameter {
        name: name.into(),
        value: serde_json::json!(1),
    }
}

async fn written(c: &Cluster, name: &str, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if c.write(put(name)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_instance_whose_storage_failed_is_restarted_from_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let cluster = ClusterConfig {
        node_name: "solo".into(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        secret: Some("s".into()),
        ..Default::default()
    };
    let config = crate::Config {
        data_dir: dir.path().to_path_buf(),
        cluster: Some(cluster.clone()),
        ..Default::default()
    };
    let broker = Broker::new(config).expect("broker");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let c = Cluster::start(&broker, &cluster, &mut tasks, stopped)
        .await
        .expect("cluster");
    let _ = broker.cluster.set(c.clone());
    assert!(written(&c, "before", Duration::from_secs(20)).await);

    failing::set(&c.dir, true);
    assert!(c.write(put("lost")).await.is_err());
    failing::set(&c.dir, false);
    assert!(written(&c, "after", Duration::from_secs(20)).await);
    assert!(c.restarts() >= 1);
    let params = broker.access.snapshot().global_parameters.clone();
    assert!(params.contains_key("before") && params.contains_key("after"));

    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
}
