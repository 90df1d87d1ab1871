//! `/api/policies` and `/api/operator-policies`: list, read, set and clear
//! a vhost's policies. A policy set here applies at once to existing queues
//! and exchanges, and is saved with the vhost's definitions. Operator
//! policies take limits only, and cap whatever a queue or its policy asks.

use super::{ApiError, ApiResult, User};
use crate::broker::Broker;
use crate::broker::Vhost;
use crate::broker::changes::Change;
use crate::broker::policy::{Policy, check_operator_definition, json_table};
use crate::store::definitions::PolicyDef;
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
        .route("/api/operator-policies", get(list_all_operator))
        .route("/api/operator-policies/{vhost}", get(list_vhost_operator))
        .route(
            "/api/operator-policies/{vhost}/{name}",
            get(show_operator)
                .put(put_operator_policy)
                .delete(delete_operator_policy),
        )
}

/// Which of a vhost's two lists a request is about.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    User,
    Operator,
}

fn listed(v: &Vhost, kind: Kind) -> Vec<Policy> {
    match kind {
        Kind::User => v.list_policies(),
        Kind::Operator => v.list_operator_policies(),
    }
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

fn all_of(b: &Broker, kind: Kind) -> axum::Json<Value> {
    let mut out = Vec::new();
    for v in b.vhosts() {
        out.extend(listed(&v, kind).iter().map(|p| to_json(&v.name, p)));
    }
    axum::Json(Value::Array(out))
}

fn vhost_of(b: &Broker, vhost: &str, kind: Kind) -> ApiResult<axum::Json<Value>> {
    let v = b.vhost(vhost).ok_or_else(ApiError::not_found)?;
    let out = listed(&v, kind)
        .iter()
        .map(|p| to_json(&v.name, p))
        .collect();
    Ok(axum::Json(Value::Array(out)))
}

fn one_of(b: &Broker, vhost: &str, name: &str, kind: Kind) -> ApiResult<axum::Json<Value>> {
    let v = b.vhost(vhost).ok_or_else(ApiError::not_found)?;
    let p = listed(&v, kind)
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(to_json(&v.name, &p)))
}

async fn list_all(State(b): State<Arc<Broker>>) -> impl IntoResponse {
    all_of(&b, Kind::User)
}

async fn list_all_operator(State(b): State<Arc<Broker>>) -> impl IntoResponse {
    all_of(&b, Kind::Operator)
}

async fn list_vhost(
    State(b): State<Arc<Broker>>,
    Path(vhost): Path<String>,
) -> ApiResult<impl IntoResponse> {
    vhost_of(&b, &vhost, Kind::User)
}

async fn list_vhost_operator(
    State(b): State<Arc<Broker>>,
    Path(vhost): Path<String>,
) -> ApiResult<impl IntoResponse> {
    vhost_of(&b, &vhost, Kind::Operator)
}

async fn show(
    State(b): State<Arc<Broker>>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    one_of(&b, &vhost, &name, Kind::User)
}

async fn show_operator(
    State(b): State<Arc<Broker>>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    one_of(&b, &vhost, &name, Kind::Operator)
}

async fn put_policy(
    State(b): State<Arc<Broker>>,
    axum::Extension(u): axum::Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    put(&b, &u, &vhost, &name, &body, Kind::User).await
}

async fn put_operator_policy(
    State(b): State<Arc<Broker>>,
    axum::Extension(u): axum::Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    put(&b, &u, &vhost, &name, &body, Kind::Operator).await
}

/// PUT: 201 when created, 204 when it replaced one (as RabbitMQ answers).
async fn put(
    b: &Broker,
    u: &User,
    vhost: &str,
    name: &str,
    body: &[u8],
    kind: Kind,
) -> ApiResult<StatusCode> {
    u.policymaker()?;
    let doc: Value = serde_json::from_slice(body).map_err(|_| ApiError::bad_request("not_json"))?;
    let v = b.vhost(vhost).ok_or_else(ApiError::vhost_not_found)?;
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
    let invalid = |e: String| ApiError::bad_request(format!("Validation failed\n\n{e}\n"));
    let definition = json_table(definition);
    if kind == Kind::Operator {
        check_operator_definition(&definition).map_err(invalid)?;
    }
    // Checked here for the error's text; made (on every node) by the change.
    Policy::new(name, pattern, apply_to, priority, definition.clone()).map_err(invalid)?;
    let set = Change::SetPolicy {
        vhost: v.name.clone(),
        operator: kind == Kind::Operator,
        policy: PolicyDef {
            name: name.into(),
            pattern: pattern.into(),
            apply_to: apply_to.into(),
            priority,
            definition,
        },
    };
    Ok(match b.change(set).await? {
        true => StatusCode::CREATED,
        false => StatusCode::NO_CONTENT,
    })
}

async fn delete_policy(
    State(b): State<Arc<Broker>>,
    axum::Extension(u): axum::Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete(&b, &u, vhost, name, Kind::User).await
}

async fn delete_operator_policy(
    State(b): State<Arc<Broker>>,
    axum::Extension(u): axum::Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete(&b, &u, vhost, name, Kind::Operator).await
}

async fn delete(
    b: &Broker,
    u: &User,
    vhost: String,
    name: String,
    kind: Kind,
) -> ApiResult<StatusCode> {
    u.policymaker()?;
    b.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let clear = Change::ClearPolicy {
        vhost,
        operator: kind == Kind::Operator,
        name,
    };
    match b.change(clear).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found()),
    }
}
