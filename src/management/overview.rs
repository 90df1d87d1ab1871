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

/// The HTTP listeners, in RabbitMQ's `contexts` shape (its port a string).
fn contexts(b: &Broker) -> Vec<Value> {
    let node = b.node_name();
    b.listeners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|(proto, a)| {
            let description = match *proto {
                "http" => "RabbitMQ Management",
                "http/prometheus" => "RabbitMQ Prometheus",
                _ => return None,
            };
            Some(json!({
                "ssl_opts": [], "node": node, "description": description, "path": "/",
                "cowboy_opts": "[{sendfile,false}]", "port": a.port().to_string(),
            }))
        })
        .collect()
}

async fn overview(State(b): State<Arc<Broker>>, Extension(_u): Extension<User>) -> Json<Value> {
    let version = b
        .config
        .product_version
        .as_deref()
        .unwrap_or(env!("CARGO_PKG_VERSION"));
    let mut sums = super::sums::Sums::default();
    let mut exchanges = 0;
    let published = b.publish_totals_by_vhost();
    for v in b.vhosts() {
        for x in v.exchange_list() {
            exchanges += 1;
            sums.add_exchange(&x);
        }
        sums.add_channels(&published.get(&v.name).copied().unwrap_or_default(), &v);
        for q in v.queue_list() {
            sums.add(&q);
        }
    }
    let (ready, unacked) = (sums.ready, sums.unacked);
    let (ready_rate, unacked_rate) = (sums.ready_rate, sums.unacked_rate);
    let conns = b.connections.list();
    let channels: u64 = conns
        .iter()
        .map(|c| c.stats.channels.load(std::sync::atomic::Ordering::Relaxed) as u64)
        .sum();
    let node = b.node_name();
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
        "message_stats": sums.message_stats(),
        "queue_totals": {
            "messages": ready + unacked, "messages_details": { "rate": ready_rate + unacked_rate },
            "messages_ready": ready, "messages_ready_details": { "rate": ready_rate },
            "messages_unacknowledged": unacked, "messages_unacknowledged_details": { "rate": unacked_rate },
        },
        "object_totals": {
            "channels": channels, "connections": conns.len(), "consumers": sums.consumers,
            "exchanges": exchanges, "queues": sums.queues,
        },
        "listeners": listeners,
        "contexts": contexts(&b),
        "uptime": crate::clock::system_now_ms().saturating_sub(b.started_at),
        "memory": { "rss": crate::os::rss_bytes(), "message_bytes": b.store.meter.held(), "limit": b.alarms.memory_limit() },
    }))
}
