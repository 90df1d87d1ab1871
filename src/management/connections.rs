//! `/api/connections`: list, show and close (DELETE, with RabbitMQ's
//! `X-Reason` header) the broker's open connections.

use super::{ApiError, ApiResult, User};
use crate::broker::Broker;
use crate::broker::connections::ConnectionInfo;
use crate::broker::policy::table_json;
use axum::Extension;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/connections", get(list))
        .route("/api/connections/", get(list))
        .route("/api/connections/{name}", get(show).delete(close))
        .route("/api/vhosts/{vhost}/connections", get(list_vhost))
}

fn to_json(b: &Broker, c: &ConnectionInfo) -> Value {
    let user_name = match c.client_properties.inner().get("connection_name") {
        Some(v) => crate::broker::policy::value_json(v),
        None => Value::Null,
    };
    let rates = *c.stats.rates.lock().unwrap_or_else(|p| p.into_inner());
    json!({
        "name": c.name,
        "node": b.node_name(),
        "type": "network",
        "protocol": "AMQP 0-9-1",
        "state": c.stats.state().as_str(),
        "channels": c.stats.channels.load(std::sync::atomic::Ordering::Relaxed),
        "recv_oct": c.stats.recv_oct.get(),
        "recv_oct_details": { "rate": rates.0.per_s },
        "recv_cnt": c.stats.recv_cnt.get(),
        "send_oct": c.stats.send_oct.get(),
        "send_oct_details": { "rate": rates.1.per_s },
        "send_cnt": c.stats.send_cnt.get(),
        "user": c.user,
        "vhost": c.vhost,
        "auth_mechanism": c.auth_mechanism,
        "host": c.local.ip().to_canonical().to_string(),
        "port": c.local.port(),
        "peer_host": c.peer.ip().to_canonical().to_string(),
        "peer_port": c.peer.port(),
        "ssl": c.tls,
        "channel_max": c.channel_max,
        "frame_max": c.frame_max,
        "timeout": c.heartbeat,
        "connected_at": c.connected_at,
        "client_properties": table_json(&c.client_properties),
        "user_provided_name": user_name,
    })
}

/// Monitoring and administrator users see every connection; other
/// management users their own, as in RabbitMQ.
fn mine(u: &User, c: &ConnectionInfo) -> bool {
    u.0.is_monitor() || c.user == u.0.name
}

async fn list(State(b): State<Arc<Broker>>, Extension(u): Extension<User>) -> impl IntoResponse {
    let out: Vec<Value> = b
        .connections
        .list()
        .iter()
        .filter(|c| mine(&u, c))
        .map(|c| to_json(&b, c))
        .collect();
    axum::Json(Value::Array(out))
}

async fn list_vhost(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
) -> ApiResult<impl IntoResponse> {
    b.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let out: Vec<Value> = b
        .connections
        .list()
        .iter()
        .filter(|c| c.vhost == vhost && mine(&u, c))
        .map(|c| to_json(&b, c))
        .collect();
    Ok(axum::Json(Value::Array(out)))
}

async fn show(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let c = b
        .connections
        .by_name(&name)
        .filter(|c| mine(&u, c))
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(to_json(&b, &c)))
}

/// Close with 320 CONNECTION_FORCED and the X-Reason header's text, or
/// RabbitMQ's "Closed via management plugin".
async fn close(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    // Closing another user's connection takes an administrator.
    let c = b
        .connections
        .by_name(&name)
        .filter(|c| u.0.is_administrator() || c.user == u.0.name)
        .ok_or_else(ApiError::not_found)?;
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Closed via management plugin");
    tracing::info!(connection = %c.name, "closing connection through the management API: {reason}");
    c.close(reason);
    Ok(StatusCode::NO_CONTENT)
}
