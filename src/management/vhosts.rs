//! `/api/vhosts` and `/api/vhost-limits`: list, read, create, delete
//! vhosts and set their limits. A management user sees the vhosts it has
//! permissions in; monitoring and administrator users see all; only
//! administrators change them.

use super::limits::{limit_value, limits_json, unknown_limit};
use super::{ApiError, ApiResult, User, created_or_replaced, json_body};
use crate::access::definitions::{permission_json, topic_permission_json};
use crate::access::user::parse_tags;
use crate::access::{VhostLimits, VhostMeta};
use crate::broker::Broker;
use crate::broker::changes::Change;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/vhosts", get(list_vhosts))
        .route(
            "/api/vhosts/{name}",
            get(show_vhost).put(put_vhost).delete(delete_vhost),
        )
        .route("/api/vhosts/{name}/permissions", get(vhost_permissions))
        .route(
            "/api/vhosts/{name}/topic-permissions",
            get(vhost_topic_permissions),
        )
        .route("/api/vhost-limits", get(list_vhost_limits))
        .route("/api/vhost-limits/{vhost}", get(show_vhost_limits))
        .route(
            "/api/vhost-limits/{vhost}/{limit}",
            put(put_vhost_limit).delete(delete_vhost_limit),
        )
}

/// May this user see that vhost?
pub(super) fn visible(b: &Broker, u: &User, vhost: &str) -> bool {
    u.1 || u.0.is_monitor() || b.access.snapshot().permissions(&u.0.name, vhost).is_some()
}

fn vhost_json(b: &Broker, m: &VhostMeta, cluster_state: &Value) -> Value {
    let mut sums = super::sums::Sums::default();
    if let Some(v) = b.vhost(&m.name) {
        for q in v.queue_list() {
            sums.add(&q);
        }
        for x in v.exchange_list() {
            sums.add_exchange(&x);
        }
        sums.add_channels(&b.publish_totals_in(&v.name), &v);
    }
    let rate = |r: f64| json!({ "rate": r });
    json!({
        "name": m.name,
        "description": m.description,
        "tags": m.tags,
        "default_queue_type": m.default_queue_type.as_deref().unwrap_or("undefined"),
        "metadata": { "description": m.description, "tags": m.tags },
        "tracing": false,
        "cluster_state": cluster_state,
        "message_stats": sums.message_stats(),
        "messages": sums.ready + sums.unacked,
        "messages_details": rate(sums.ready_rate + sums.unacked_rate),
        "messages_ready": sums.ready,
        "messages_ready_details": rate(sums.ready_rate),
        "messages_unacknowledged": sums.unacked,
        "messages_unacknowledged_details": rate(sums.unacked_rate),
    })
}

async fn list_vhosts(State(b): State<Arc<Broker>>, Extension(u): Extension<User>) -> Json<Value> {
    let state = super::node::cluster_state(&b).await;
    let s = b.access.snapshot();
    Json(
        s.vhosts
            .values()
            .filter(|v| visible(&b, &u, &v.name))
            .map(|v| vhost_json(&b, v, &state))
            .collect(),
    )
}

async fn show_vhost(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = super::node::cluster_state(&b).await;
    let s = b.access.snapshot();
    match s.vhosts.get(&name) {
        Some(v) if visible(&b, &u, &name) => Ok(Json(vhost_json(&b, v, &state))),
        _ => Err(ApiError::not_found()),
    }
}

/// PUT: description, tags and default_queue_type (all optional; the
/// metadata is replaced, as RabbitMQ does). 201 new, 204 existing.
async fn put_vhost(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let doc = if body.is_empty() {
        json!({})
    } else {
        json_body(&body)?
    };
    let meta = VhostMeta {
        name,
        description: doc
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        tags: parse_tags(doc.get("tags").unwrap_or(&Value::Null)),
        default_queue_type: doc
            .get("default_queue_type")
            .and_then(Value::as_str)
            .map(String::from),
        limits: VhostLimits::default(),
    };
    let name = meta.name.clone();
    let new = b.change(Change::PutVhost(meta)).await?;
    if new && !u.1 {
        // RabbitMQ gives whoever created a vhost over HTTP full
        // permissions in it (rabbitmqctl's add_vhost, having no user, none).
        let all = Change::SetPermissions {
            user: u.0.name.clone(),
            vhost: name,
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        };
        b.change(all).await?;
    }
    Ok(created_or_replaced(new))
}

async fn delete_vhost(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    b.change(Change::DeleteVhost(name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn vhost_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    if !s.vhosts.contains_key(&name) {
        return Err(ApiError::not_found());
    }
    Ok(Json(
        s.permissions
            .iter()
            .filter_map(|(user, m)| m.get(&name).map(|p| permission_json(user, &name, p)))
            .collect(),
    ))
}

async fn vhost_topic_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    if !s.vhosts.contains_key(&name) {
        return Err(ApiError::not_found());
    }
    let mut out = Vec::new();
    for (user, m) in &s.topic_permissions {
        for t in m.get(&name).into_iter().flatten() {
            out.push(topic_permission_json(user, &name, t));
        }
    }
    Ok(Json(Value::Array(out)))
}

fn vhost_limits_json(m: &VhostMeta) -> Option<Value> {
    limits_json("vhost", &m.name, &m.limits.named())
}

async fn list_vhost_limits(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> Json<Value> {
    let s = b.access.snapshot();
    Json(
        s.vhosts
            .values()
            .filter(|v| visible(&b, &u, &v.name))
            .filter_map(vhost_limits_json)
            .collect(),
    )
}

async fn show_vhost_limits(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let s = b.access.snapshot();
    match s.vhosts.get(&name) {
        Some(v) if visible(&b, &u, &name) => Ok(Json(vhost_limits_json(v).into_iter().collect())),
        _ => Err(ApiError::not_found()),
    }
}

async fn put_vhost_limit(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, limit)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    change_limit(&b, &vhost, &limit, limit_value(&body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_vhost_limit(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, limit)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    change_limit(&b, &vhost, &limit, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change_limit(b: &Broker, vhost: &str, limit: &str, value: Option<u64>) -> ApiResult<()> {
    let mut limits = b
        .access
        .snapshot()
        .vhosts
        .get(vhost)
        .ok_or_else(ApiError::not_found)?
        .limits
        .clone();
    if !limits.set(limit, value) {
        return Err(unknown_limit("limits", limit, value));
    }
    let set = Change::SetVhostLimits {
        vhost: vhost.into(),
        limits,
    };
    b.change(set).await?;
    Ok(())
}
