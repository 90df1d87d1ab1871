//! `/api/consumers`: every consumer of every queue, with its channel as
//! RabbitMQ names it ("CONNECTION (N)").

use super::vhosts::visible;
use super::{ApiError, ApiResult, User};
use crate::broker::policy::table_json;
use crate::broker::{Broker, Vhost};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/consumers", get(list_consumers))
        .route("/api/consumers/{vhost}", get(list_vhost_consumers))
}

pub(super) fn vhost_consumers(b: &Broker, v: &Vhost) -> Vec<Value> {
    let conns = b.connections.list();
    let mut out = Vec::new();
    let mut queues = v.queue_list();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    for q in queues {
        for c in q.consumer_list() {
            let conn = conns.iter().find(|x| x.id == c.connection);
            let conn_name = conn.map_or(String::new(), |x| x.name.clone());
            out.push(json!({
                "queue": { "name": q.name.as_str(), "vhost": v.name },
                "channel_details": {
                    "name": format!("{conn_name} ({})", c.channel),
                    "number": c.channel,
                    "connection_name": conn_name,
                    "user": conn.map(|x| x.user.clone()),
                    "peer_host": conn.map(|x| x.peer.ip().to_canonical().to_string()),
                    "peer_port": conn.map(|x| x.peer.port()),
                },
                "consumer_tag": c.tag.as_str(),
                "ack_required": !c.no_ack,
                "exclusive": c.exclusive,
                "prefetch_count": c.credit.limit(),
                "active": true,
                "activity_status": "up",
                "arguments": table_json(&c.arguments),
            }));
        }
    }
    out
}

async fn list_consumers(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> Json<Value> {
    let mut out = Vec::new();
    for v in b.vhosts() {
        if visible(&b, &u, &v.name) {
            out.extend(vhost_consumers(&b, &v));
        }
    }
    Json(Value::Array(out))
}

async fn list_vhost_consumers(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    match b.vhost(&vhost) {
        Some(v) if visible(&b, &u, &vhost) => Ok(Json(Value::Array(vhost_consumers(&b, &v)))),
        _ => Err(ApiError::vhost_not_found()),
    }
}
