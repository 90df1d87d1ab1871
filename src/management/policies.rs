//! `/api/policies`: list, read, set and clear a vhost's policies. A policy
//! set here applies at once to existing queues and exchanges, and is saved
//! with the vhost's definitions.

use super::{ApiError, ApiResult, User};
use crate::broker::Broker;
use crate::broker::policy::{Policy, json_table};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/policies", get(list_all))
        .route("/api/policies/{vhost}", get(list_vhost))
        .route(
            "/api/policies/{vhost}/{name}",
            get(show).put(put_policy).delete(delete_policy),
        )
        // Operator policies are not implemented: there are none to list.
        .route("/api/operator-policies", get(no_operator_policies))
        .route("/api/operator-policies/{vhost}", get(no_operator_policies))
}

async fn no_operator_policies() -> impl IntoResponse {
    axum::Json(json!([]))
}

fn to_json(vhost: &str, p: &Policy) -> Value {
    json!({
        "vhost": vhost,
        "name": p.name,
        "pattern": p.pattern.as_str(),
        "apply-to": p.apply_to.as_str(),
        "definition": crate::broker::policy::table_json(&p.definition),
        "priority": p.priority,
    })
}

async fn list_all(State(b): State<Arc<Broker>>) -> impl IntoResponse {
    let mut out = Vec::new();
    for v in b.vhosts() {
        out.extend(v.list_policies().iter().map(|p| to_json(&v.name, p)));
    }
    axum::Json(Value::Array(out))
}

async fn list_vhost(
    State(b): State<Arc<Broker>>,
    Path(vhost): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let v = b.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let out: Vec<Value> = v
        .list_policies()
        .iter()
        .map(|p| to_json(&v.name, p))
        .collect();
    Ok(axum::Json(Value::Array(out)))
}

async fn show(
    State(b): State<Arc<Broker>>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let v = b.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let p = v
        .list_policies()
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(to_json(&v.name, &p)))
}

/// PUT: 201 when created, 204 when it replaced one (as RabbitMQ answers).
async fn put_policy(
    State(b): State<Arc<Broker>>,
    axum::Extension(u): axum::Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.policymaker()?;
    let doc: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request("not_json"))?;
    let v = b.vhost(&vhost).ok_or_else(ApiError::vhost_not_found)?;
    let field = |k: &str| doc.get(k);
    let Some(pattern) = field("pattern").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("[{key_missing,pattern}]"));
    };
    let Some(definition) = field("definition") else {
        return Err(ApiError::bad_request("[{key_missing,definition}]"));
    };
    if definition.as_object().is_none_or(|d| d.is_empty()) {
        return Err(ApiError::bad_request(
            "Validation failed\n\nno policy provided\n",
        ));
    }
    let apply_to = field("apply-to").and_then(Value::as_str).unwrap_or("all");
    let priority = match field("priority") {
        None | Some(Value::Null) => 0,
        Some(p) => p
            .as_i64()
            .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| {
                ApiError::bad_request(format!("Validation failed\n\n{p} is not a valid integer\n"))
            })?,
    };
    let policy = Policy::new(&name, pattern, apply_to, priority, json_table(definition))
        .map_err(|e| ApiError::bad_request(format!("Validation failed\n\n{e}\n")))?;
    let replaced = v
        .set_policy(policy)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.text))?;
    Ok(if replaced {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

async fn delete_policy(
    State(b): State<Arc<Broker>>,
    axum::Extension(u): axum::Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    u.policymaker()?;
    let v = b.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    match v.delete_policy(&name) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found()),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            e.text,
        )),
    }
}
