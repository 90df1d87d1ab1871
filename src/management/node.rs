//! The nodes: `/api/nodes[/{name}]` (memory, descriptors, disk, uptime,
//! what it offers), `/api/extensions` and `/api/cluster-name`, in
//! RabbitMQ's shapes. A node alone is named after the cluster; in a
//! cluster each member answers for itself over the cluster link, and one
//! that does not answer shows as not running. `DELETE /api/nodes/{name}`
//! (ferretmq's own, for `ctl forget_cluster_node`) removes a member, and
//! `POST /api/cluster/join` (for `ctl join_cluster`) moves this node into
//! another member's cluster.

use super::{ApiError, ApiResult, User};
use crate::broker::Broker;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/nodes", get(list_nodes))
        .route("/api/nodes/{name}", get(show_node).delete(forget_node))
        .route("/api/cluster/join", axum::routing::post(join_cluster))
        .route("/api/extensions", get(extensions))
        .route("/api/cluster-name", get(cluster_name).put(put_cluster_name))
}

/// The exchange types this broker declares, as RabbitMQ lists them.
pub(super) const EXCHANGE_TYPES: [(&str, &str); 7] = [
    (
        "direct",
        "AMQP direct exchange, as per the AMQP specification",
    ),
    (
        "fanout",
        "AMQP fanout exchange, as per the AMQP specification",
    ),
    (
        "topic",
        "AMQP topic exchange, as per the AMQP specification",
    ),
    (
        "headers",
        "AMQP headers exchange, as per the AMQP specification",
    ),
    ("x-consistent-hash", "Consistent Hashing Exchange"),
    ("x-delayed-message", "Delayed Message Exchange"),
    ("x-message-deduplication", "Message Deduplication Exchange"),
];

pub(super) fn exchange_types() -> Vec<Value> {
    EXCHANGE_TYPES
        .iter()
        .map(|(name, description)| json!({ "name": name, "description": description, "enabled": true }))
        .collect()
}

pub(crate) fn node_json(b: &Broker) -> Value {
    let node = b.node_name();
    let sockets = b.connections.list().len();
    let fd_total = crate::os::max_fds();
    let listeners = b
        .listeners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let contexts: Vec<Value> = listeners
        .iter()
        .filter(|(proto, _)| proto.starts_with("http"))
        .map(|(_, a)| json!({ "description": "ferretmq management", "path": "/", "port": a.port().to_string() }))
        .collect();
    let mechanisms: Vec<Value> = ["PLAIN", "AMQPLAIN", "RABBIT-CR-DEMO", "EXTERNAL"]
        .iter()
        .map(|m| json!({ "name": m, "description": "", "enabled": b.config.auth_mechanisms.iter().any(|a| a == m) }))
        .collect();
    let zero = json!({ "rate": 0.0 });
    let data_dir = b.config.data_dir.display().to_string();
    json!({
        "name": node,
        "type": "disc",
        "running": true,
        "os_pid": std::process::id().to_string(),
        "mem_used": crate::os::rss_bytes(),
        "mem_used_details": zero,
        "mem_limit": b.alarms.memory_limit(),
        "mem_alarm": b.alarms.memory_alarm(),
        "mem_calculation_strategy": match b.alarms.strategy() {
            crate::broker::alarms::MemoryStrategy::Rss => "rss",
            crate::broker::alarms::MemoryStrategy::Messages => "messages",
        },
        "disk_free": crate::os::disk_free(&b.config.data_dir),
        "disk_free_details": zero,
        "disk_free_limit": b.alarms.disk_free_limit(),
        "disk_free_alarm": b.alarms.disk_alarm(),
        "fd_used": crate::os::open_fds(),
        "fd_used_details": zero,
        "fd_total": fd_total,
        "sockets_used": sockets,
        "sockets_used_details": zero,
        "sockets_total": fd_total,
        "proc_used": 0,
        "proc_total": 0,
        "run_queue": 0,
        "processors": crate::os::processors(),
        "uptime": crate::clock::system_now_ms().saturating_sub(b.started_at),
        "rates_mode": "basic",
        "partitions": [],
        "cluster_links": [],
        "net_ticktime": 60,
        "exchange_types": exchange_types(),
        "auth_mechanisms": mechanisms,
        "applications": [{ "name": "ferretmq", "description": b.config.product, "version": env!("CARGO_PKG_VERSION") }],
        "contexts": contexts,
        "enabled_plugins": ["rabbitmq_management", "rabbitmq_prometheus"],
        "config_files": [],
        "log_files": ["<stdout>"],
        "db_dir": data_dir,
        "metadata_store": b.cluster().map(|c| json!({ "raft_state": c.role(), "restarts": c.restarts() })),
    })
}

/// Every member's entry, each asked of the member itself.
async fn cluster_nodes(b: &Broker) -> Vec<Value> {
    let Some(c) = b.cluster() else {
        return vec![node_json(b)];
    };
    // Each member is asked at once: one that is down costs its timeout once.
    let members = c.members();
    let mut asks = tokio::task::JoinSet::new();
    for (i, m) in members.iter().enumerate() {
        if m.name != c.me.name {
            let (c, addr) = (c.clone(), m.addr.clone());
            asks.spawn(async move { (i, c.ask_node_info(&addr).await) });
        }
    }
    let mut answers = vec![None; members.len()];
    while let Some(Ok((i, v))) = asks.join_next().await {
        answers[i] = v;
    }
    let mut nodes = Vec::new();
    for (m, answer) in members.iter().zip(answers) {
        let mut v = if m.name == c.me.name {
            node_json(b)
        } else {
            answer.unwrap_or_else(|| json!({ "name": m.name, "type": "disc", "running": false }))
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("cluster_address".into(), json!(m.addr));
            o.insert("metadata_voter".into(), json!(m.voter));
            o.insert("metadata_leader".into(), json!(m.leader));
        }
        nodes.push(v);
    }
    nodes
}

/// A vhost's `cluster_state`: each member, "running" or "nodedown" (a
/// vhost exists on every member of a cluster).
pub(super) async fn cluster_state(b: &Broker) -> Value {
    let state: serde_json::Map<String, Value> = cluster_nodes(b)
        .await
        .iter()
        .filter_map(|n| {
            let name = n["name"].as_str()?.to_string();
            let state = if n["running"] == false {
                "nodedown"
            } else {
                "running"
            };
            Some((name, json!(state)))
        })
        .collect();
    Value::Object(state)
}

async fn list_nodes(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.monitor()?;
    Ok(Json(Value::Array(cluster_nodes(&b).await)))
}

async fn show_node(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    u.monitor()?;
    cluster_nodes(&b)
        .await
        .into_iter()
        .find(|n| n["name"] == name.as_str())
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// Remove a member from the cluster (`ctl forget_cluster_node`).
async fn forget_node(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let Some(c) = b.cluster() else {
        return Err(ApiError::bad_request("this node is not clustered"));
    };
    c.forget(&name).await.map_err(ApiError::bad_request)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reset this node into the cluster of the member at `{"node": ADDR}` (its
/// cluster address), as `ctl join_cluster` asks.
async fn join_cluster(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let m = super::body::object(&raw)?;
    super::body::require(&m, &["node"])?;
    let addr = super::body::text(&m, "node").unwrap_or_default();
    let Some(c) = b.cluster() else {
        return Err(ApiError::bad_request("this node is not clustered"));
    };
    let through = c.join(&addr).await.map_err(ApiError::bad_request)?;
    Ok(Json(
        json!({ "node": b.node_name(), "joined_through": through }),
    ))
}

/// The UI's plug-ins: none beyond the UI itself.
async fn extensions(Extension(_u): Extension<User>) -> Json<Value> {
    Json(json!([]))
}

async fn cluster_name(State(b): State<Arc<Broker>>, Extension(_u): Extension<User>) -> Json<Value> {
    Json(json!({ "name": b.cluster_name() }))
}

/// Rename the cluster (not the node), as an administrator.
async fn put_cluster_name(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    raw: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let m = super::body::object(&raw)?;
    super::body::require(&m, &["name"])?;
    let name = super::body::text(&m, "name").unwrap_or_default();
    let set = crate::broker::changes::Change::SetGlobalParameter {
        name: "cluster_name".into(),
        value: Value::String(name),
    };
    b.change(set).await?;
    Ok(StatusCode::NO_CONTENT)
}
