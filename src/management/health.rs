//! RabbitMQ's health checks (`/api/health/checks/...`) and the aliveness
//! test: 200 `{"status":"ok"}` or 503 `{"status":"failed", ...}`, for
//! load balancers, Kubernetes probes and monitoring.

use super::{ApiError, ApiResult, User, vhost_for};
use crate::broker::Broker;
use crate::broker::vhost::QueueSpec;
use amq_protocol::types::FieldTable;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/health/checks/alarms", get(alarms))
        .route("/api/health/checks/local-alarms", get(alarms))
        .route("/api/health/checks/virtual-hosts", get(virtual_hosts))
        .route(
            "/api/health/checks/port-listener/{port}",
            get(port_listener),
        )
        .route(
            "/api/health/checks/protocol-listener/{protocol}",
            get(protocol_listener),
        )
        .route(
            "/api/health/checks/node-is-quorum-critical",
            get(quorum_critical),
        )
        .route(
            "/api/health/checks/node-is-mirror-sync-critical",
            get(quorum_critical),
        )
        .route(
            "/api/health/checks/certificate-expiration/{within}/{unit}",
            get(ok),
        )
        .route("/api/health/checks/ready-to-serve-clients", get(ready))
        .route("/api/aliveness-test/{vhost}", get(aliveness_test))
        // The checks before 3.9's /api/health/checks, still served by 3.10
        // and still called by client libraries.
        .route("/api/healthchecks/node", get(node_healthcheck))
        .route("/api/healthchecks/node/", get(node_healthcheck))
        .route("/api/healthchecks/node/{node}", get(named_node_healthcheck))
}

fn ok_with(extra: Value) -> Response {
    let mut body = json!({ "status": "ok" });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    Json(body).into_response()
}

fn failed(body: Value) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn node_healthcheck(Extension(_u): Extension<User>) -> Response {
    ok_with(json!({}))
}

async fn named_node_healthcheck(
    State(b): State<Arc<Broker>>,
    Extension(_u): Extension<User>,
    Path(node): Path<String>,
) -> ApiResult<Response> {
    if node != b.node_name() {
        return Err(ApiError::not_found());
    }
    Ok(ok_with(json!({})))
}

async fn ok(Extension(_u): Extension<User>) -> Response {
    ok_with(json!({}))
}

async fn alarms(State(b): State<Arc<Broker>>, Extension(_u): Extension<User>) -> Response {
    if b.alarms.is_on() {
        let node = b.node_name();
        let alarms: Vec<_> = b
            .alarms
            .resources()
            .into_iter()
            .map(|r| json!({ "node": node, "resource": r }))
            .collect();
        failed(json!({
            "status": "failed",
            "reason": "resource alarm(s) in effect in the cluster",
            "alarms": alarms,
        }))
    } else {
        ok_with(json!({}))
    }
}

/// Every vhost is running here (a vhost is never stopped on its own).
async fn virtual_hosts(Extension(_u): Extension<User>) -> Response {
    ok_with(json!({}))
}

fn listeners(b: &Broker) -> Vec<(&'static str, std::net::SocketAddr)> {
    b.listeners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

async fn port_listener(
    State(b): State<Arc<Broker>>,
    Extension(_u): Extension<User>,
    Path(port): Path<String>,
) -> ApiResult<Response> {
    let port: u16 = port
        .parse()
        .map_err(|_| ApiError::bad_request(format!("Invalid port: {port}")))?;
    let mut ports: Vec<u16> = listeners(&b).iter().map(|(_, a)| a.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    Ok(if ports.contains(&port) {
        ok_with(json!({ "port": port }))
    } else {
        failed(
            json!({ "status": "failed", "reason": "No active listener", "missing": port, "ports": ports }),
        )
    })
}

/// RabbitMQ's protocol names: amqp, amqp/ssl, http, http/prometheus.
fn protocol_name(p: &str) -> &str {
    match p {
        "amqps" => "amqp/ssl",
        "prometheus" => "http/prometheus",
        other => other,
    }
}

async fn protocol_listener(
    State(b): State<Arc<Broker>>,
    Extension(_u): Extension<User>,
    Path(protocol): Path<String>,
) -> Response {
    let mut protocols: Vec<&str> = listeners(&b)
        .iter()
        .map(|(p, _)| protocol_name(p))
        .collect();
    protocols.dedup();
    let wanted = protocol.to_ascii_lowercase();
    let wanted = match wanted.as_str() {
        "amqp091" | "amqp0.9.1" | "amqp0-9-1" => "amqp",
        "amqps" => "amqp/ssl",
        "prometheus" => "http/prometheus",
        "https" => "https",
        other => other,
    }
    .to_string();
    if protocols.iter().any(|p| *p == wanted) {
        ok_with(json!({ "protocol": wanted }))
    } else {
        failed(
            json!({ "status": "failed", "reason": "No active listener", "missing": protocol, "protocols": protocols }),
        )
    }
}

async fn quorum_critical(Extension(_u): Extension<User>) -> Response {
    ok_with(json!({ "reason": "single node cluster" }))
}

async fn ready(Extension(_u): Extension<User>) -> Response {
    ok_with(json!({}))
}

const BODY: &[u8] = b"test_message";

/// Declare `aliveness-test` in the vhost, publish a message to it and get
/// it back, as RabbitMQ's aliveness test does.
async fn aliveness_test(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
) -> ApiResult<Response> {
    let v = vhost_for(&b, &u, &vhost).map_err(|_| ApiError::not_found())?;
    let args = FieldTable::default();
    let (q, _, _) = v.declare_queue(&QueueSpec {
        name: "aliveness-test",
        server_named: false,
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: &args,
        conn_id: 0,
    })?;
    let header = crate::message::encode_header(&Default::default(), BODY.len() as u64);
    let msg = crate::message::Message::new(
        "".into(),
        "aliveness-test".into(),
        Default::default(),
        header,
        bytes::Bytes::from_static(BODY),
        v.meter(),
    );
    let x = v.exchange("")?;
    v.enqueue(&x, &Arc::new(msg), &mut Default::default());
    match q.get(true) {
        Some(_) => Ok(ok_with(json!({}))),
        None => Ok(failed(
            json!({ "status": "failed", "reason": "aliveness test message not received" }),
        )),
    }
}
