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
    // Message counters and rates summed over the queues: what went into
    // and out of them, whichever channel did it and whether it is still open.
    let mut counted = [0u64; 9];
    let mut rates = [0f64; 9];
    let (mut ready_rate, mut unacked_rate) = (0f64, 0f64);
    let mut names = [""; 9];
    for v in b.vhosts() {
        exchanges += v.exchange_list().len();
        for q in v.queue_list() {
            queues += 1;
            let s = q.sample();
            consumers += s.consumers;
            ready += s.ready as u64;
            unacked += s.unacked as u64;
            let r = q.rates();
            for (i, (name, n)) in s.counters.named().into_iter().enumerate() {
                names[i] = name;
                counted[i] += n;
                rates[i] += r.counters[i];
            }
            ready_rate += r.ready;
            unacked_rate += r.unacked;
        }
    }
    let mut message_stats = serde_json::Map::new();
    for i in 0..names.len() {
        if !names[i].is_empty() {
            message_stats.insert(names[i].into(), json!(counted[i]));
            message_stats.insert(format!("{}_details", names[i]), json!({ "rate": rates[i] }));
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
    Json(json!({
        "management_version": version,
        "rates_mode": "basic",
        "exchange_types": super::node::exchange_types(),
        "product_version": version,
        "product_name": b.config.product,
        "rabbitmq_version": version,
        "cluster_name": b.cluster_name(),
        "node": node,
        "message_stats": Value::Object(message_stats),
        "queue_totals": {
            "messages": ready + unacked, "messages_details": { "rate": ready_rate + unacked_rate },
            "messages_ready": ready, "messages_ready_details": { "rate": ready_rate },
            "messages_unacknowledged": unacked, "messages_unacknowledged_details": { "rate": unacked_rate },
        },
        "object_totals": {
            "channels": channels, "connections": conns.len(), "consumers": consumers,
            "exchanges": exchanges, "queues": queues,
        },
        "listeners": listeners,
        "uptime": crate::clock::system_now_ms().saturating_sub(b.started_at),
        "memory": { "rss": crate::os::rss_bytes(), "message_bytes": b.store.meter.held(), "limit": b.memory.limit() },
    }))
}
