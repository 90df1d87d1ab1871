//! `/api/overview`: the node at a glance, in RabbitMQ's shape (what
//! `ctl status` prints).

use super::User;
use crate::broker::Broker;
use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new().route("/api/overview", get(overview))
}

async fn overview(State(b): State<Arc<Broker>>, Extension(_u): Extension<User>) -> Json<Value> {
    let version = b
        .config
        .product_version
        .as_deref()
        .unwrap_or(env!("CARGO_PKG_VERSION"));
    let (mut queues, mut exchanges, mut consumers, mut ready, mut unacked) = (0, 0, 0, 0u64, 0u64);
    for v in b.vhosts() {
        exchanges += v.exchange_list().len();
        for q in v.queue_list() {
            queues += 1;
            let s = q.sample();
            consumers += s.consumers;
            ready += s.ready as u64;
            unacked += s.unacked as u64;
        }
    }
    let conns = b.connections.list();
    let channels: u64 = conns
        .iter()
        .map(|c| c.stats.channels.load(std::sync::atomic::Ordering::Relaxed) as u64)
        .sum();
    let node = &b.config.cluster_name;
    let listeners: Vec<Value> = b
        .listeners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(proto, a)| json!({ "node": node, "protocol": proto, "ip_address": a.ip().to_string(), "port": a.port() }))
        .collect();
    let zero = json!({ "rate": 0.0 });
    let exchange_types: Vec<Value> = [
        "direct",
        "fanout",
        "topic",
        "headers",
        "x-consistent-hash",
        "x-delayed-message",
        "x-message-deduplication",
    ]
    .iter()
    .map(|t| json!({ "name": t, "enabled": true }))
    .collect();
    Json(json!({
        "management_version": version,
        "rates_mode": "basic",
        "exchange_types": exchange_types,
        "product_version": version,
        "product_name": b.config.product,
        "rabbitmq_version": version,
        "cluster_name": node,
        "node": node,
        "message_stats": {},
        "queue_totals": {
            "messages": ready + unacked, "messages_details": zero,
            "messages_ready": ready, "messages_ready_details": zero,
            "messages_unacknowledged": unacked, "messages_unacknowledged_details": zero,
        },
        "object_totals": {
            "channels": channels, "connections": conns.len(), "consumers": consumers,
            "exchanges": exchanges, "queues": queues,
        },
        "listeners": listeners,
        "uptime": crate::clock::system_now_ms().saturating_sub(b.started_at),
        "memory": { "rss": crate::process::rss_bytes(), "message_bytes": b.store.meter.held(), "limit": b.memory.limit() },
    }))
}
