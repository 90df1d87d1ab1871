//! `/api/channels`: every open channel, in RabbitMQ's JSON shape. Monitoring
//! and administrator users see all; other management users their own.

use super::{ApiError, ApiResult, User};
use crate::broker::Broker;
use crate::broker::connections::{ChannelStats, ConnectionInfo};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/channels", get(list_channels))
        .route("/api/channels/{name}", get(show_channel))
        .route("/api/connections/{name}/channels", get(connection_channels))
        .route("/api/vhosts/{vhost}/channels", get(vhost_channels))
}

fn channel_json(b: &Broker, c: &ConnectionInfo, ch: &ChannelStats) -> Value {
    json!({
        "name": format!("{} ({})", c.name, ch.number),
        "number": ch.number,
        "node": b.node_name(),
        "user": c.user,
        "vhost": c.vhost,
        "connection_details": {
            "name": c.name,
            "peer_host": c.peer.ip().to_canonical().to_string(),
            "peer_port": c.peer.port(),
        },
        "consumer_count": ch.consumers.load(Relaxed),
        "messages_unacknowledged": ch.unacked.load(Relaxed),
        "prefetch_count": ch.prefetch.load(Relaxed),
        "global_prefetch_count": ch.global.limit(),
        "confirm": ch.confirm.load(Relaxed),
        "transactional": ch.transactional.load(Relaxed),
        "state": "running",
    })
}

fn channels(b: &Broker, u: &User, keep: impl Fn(&ConnectionInfo) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    for c in b.connections.list() {
        if !keep(&c) || !(u.0.is_monitor() || c.user == u.0.name) {
            continue;
        }
        out.extend(c.channel_list().iter().map(|ch| channel_json(b, &c, ch)));
    }
    out
}

async fn list_channels(State(b): State<Arc<Broker>>, Extension(u): Extension<User>) -> Json<Value> {
    Json(Value::Array(channels(&b, &u, |_| true)))
}

async fn show_channel(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    channels(&b, &u, |_| true)
        .into_iter()
        .find(|c| c["name"] == name.as_str())
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

async fn connection_channels(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    if b.connections.by_name(&name).is_none() {
        return Err(ApiError::not_found());
    }
    Ok(Json(Value::Array(channels(&b, &u, |c| c.name == name))))
}

async fn vhost_channels(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    if b.vhost(&vhost).is_none() {
        return Err(ApiError::vhost_not_found());
    }
    Ok(Json(Value::Array(channels(&b, &u, |c| c.vhost == vhost))))
}
