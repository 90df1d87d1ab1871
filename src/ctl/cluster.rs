//! `cluster_status`, `forget_cluster_node`, `join_cluster` and
//! `await_online_nodes`, read from
//! and carried out through `/api/nodes` (each member answers for itself
//! there) and `/api/cluster/join`.

use super::Command;
use super::client::seg;
use super::commands::{Api, Done, EX_DATAERR, EX_TEMPFAIL, EX_UNAVAILABLE, fail};
use super::output::{Formatter, Style};
use serde_json::{Value, json};

pub(super) async fn run(api: &Api<'_>, out: &Style, cmd: Command) -> Done {
    match cmd {
        Command::ClusterStatus => cluster_status(api, out).await,
        Command::ForgetClusterNode { node } => {
            out.info(&format!("Removing node {node} from the cluster"));
            let r = api
                .call("DELETE", &format!("/api/nodes/{}", seg(&node)), None)
                .await?;
            if !r.ok() {
                return Err(fail(r.reason(), EX_DATAERR));
            }
            Ok(())
        }
        Command::JoinCluster { node } => {
            let me = api.get("/api/overview", None).await?;
            let me = me["node"].as_str().unwrap_or("this node").to_string();
            out.info(&format!("Clustering node {me} with {node}"));
            let r = api
                .call("POST", "/api/cluster/join", Some(json!({ "node": node })))
                .await?;
            if !r.ok() {
                return Err(fail(r.reason(), EX_DATAERR));
            }
            Ok(())
        }
        Command::AwaitOnlineNodes { count, timeout } => {
            await_online_nodes(api, out, count, timeout).await
        }
        _ => Ok(()),
    }
}

/// As rabbitmqctl's: poll the members until `count` of them run, or fail
/// (exit 75, EX_TEMPFAIL) after `timeout` seconds. A node not listening yet
/// is waited for too, so that a script may call this right after starting
/// its nodes.
async fn await_online_nodes(api: &Api<'_>, out: &Style, count: usize, timeout: u64) -> Done {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(250));
    let overview = loop {
        match api.get("/api/overview", None).await {
            Ok(v) => break v,
            Err(e) if e.code == EX_UNAVAILABLE && std::time::Instant::now() < end => pause().await,
            Err(e) => return Err(e),
        }
    };
    let me = overview["node"].as_str().unwrap_or("this node").to_string();
    out.info(&format!(
        "Will wait for at least {count} nodes to join the cluster of {me}. Timeout: {timeout} seconds."
    ));
    loop {
        let nodes = api.get("/api/nodes", None).await?;
        let running = names(nodes.as_array().map(Vec::as_slice).unwrap_or(&[]), |n| {
            n["running"] == true
        });
        if running.len() >= count {
            return Ok(());
        }
        if std::time::Instant::now() >= end {
            return Err(fail(
                format!(
                    "timed out waiting for {count} nodes to be online; {} are: {}",
                    running.len(),
                    running.join(", ")
                ),
                EX_TEMPFAIL,
            ));
        }
        pause().await;
    }
}

fn names(nodes: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| keep(n))
        .filter_map(|n| n["name"].as_str().map(str::to_string))
        .collect()
}

async fn cluster_status(api: &Api<'_>, out: &Style) -> Done {
    let overview = api.get("/api/overview", None).await?;
    let nodes = api.get("/api/nodes", None).await?;
    let nodes = nodes.as_array().cloned().unwrap_or_default();
    let me = overview["node"].as_str().unwrap_or("");
    let cluster_name = overview["cluster_name"].as_str().unwrap_or("");
    let all = names(&nodes, |_| true);
    let running = names(&nodes, |n| n["running"] == true);
    let leader = names(&nodes, |n| n["metadata_leader"] == true);
    if out.formatter == Formatter::Json {
        let roles: serde_json::Map<String, Value> = nodes
            .iter()
            .filter_map(|n| {
                let name = n["name"].as_str()?;
                Some((name.to_string(), n["metadata_store"]["raft_state"].clone()))
            })
            .collect();
        println!(
            "{}",
            json!({
                "cluster_name": cluster_name,
                "disk_nodes": all,
                "running_nodes": running,
                "metadata_leader": leader.first(),
                "metadata_raft_states": roles,
            })
        );
        return Ok(());
    }
    out.info(&format!("Cluster status of node {me} ..."));
    println!("Basics\n\nCluster name: {cluster_name}\n");
    println!("Disk Nodes\n");
    for n in &all {
        println!("{n}");
    }
    println!("\nRunning Nodes\n");
    for n in &running {
        println!("{n}");
    }
    if nodes
        .iter()
        .all(|n| n["metadata_store"].is_null() && n["running"] == true)
    {
        println!("\nNot clustered: this node is a cluster of its own.");
        return Ok(());
    }
    println!("\nMetadata store (Raft)\n");
    for n in &nodes {
        let name = n["name"].as_str().unwrap_or("");
        let state = n["metadata_store"]["raft_state"]
            .as_str()
            .unwrap_or("unreachable");
        let voter = if n["metadata_voter"] == false {
            ", non-voting"
        } else {
            ""
        };
        println!("{name}: {state}{voter}");
    }
    Ok(())
}
