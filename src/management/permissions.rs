//! `/api/permissions` and `/api/topic-permissions`: what each user may do
//! in each vhost (administrators only, as in RabbitMQ).

use super::{ApiError, ApiResult, User, created_or_replaced, json_body};
use crate::access::Refusal;
use crate::access::definitions::{permission_json, topic_permission_json};
use crate::broker::Broker;
use crate::broker::changes::Change;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::Value;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/permissions", get(list_permissions))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(show_permissions)
                .put(put_permissions)
                .delete(delete_permissions),
        )
        .route("/api/topic-permissions", get(list_topic_permissions))
        .route(
            "/api/topic-permissions/{vhost}/{user}",
            get(show_topic_permissions)
                .put(put_topic_permissions)
                .delete(delete_topic_permissions),
        )
}

/// RabbitMQ answers a PUT naming a missing vhost or user with 400.
fn put_refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::NoSuchUser(_) | Refusal::NoSuchVhost(_) => {
            ApiError::bad_request("vhost_or_user_not_found")
        }
        other => other.into(),
    }
}

/// The string fields of a PUT body, each required as RabbitMQ requires it.
fn fields<'a, const N: usize>(doc: &'a Value, keys: [&str; N]) -> ApiResult<[&'a str; N]> {
    let mut out = [""; N];
    for (i, k) in keys.iter().enumerate() {
        out[i] = doc
            .get(*k)
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("[{{key_missing,{k}}}]")))?;
    }
    Ok(out)
}

async fn list_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    let mut out = Vec::new();
    for (user, m) in &s.permissions {
        for (vhost, p) in m {
            out.push(permission_json(user, vhost, p));
        }
    }
    Ok(Json(Value::Array(out)))
}

async fn show_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    let p = s
        .permissions(&user, &vhost)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(permission_json(&user, &vhost, p)))
}

async fn put_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, user)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let doc = json_body(&body)?;
    let [configure, write, read] = fields(&doc, ["configure", "write", "read"])?;
    let new = b.access.snapshot().permissions(&user, &vhost).is_none();
    let set = Change::SetPermissions {
        user,
        vhost,
        configure: configure.into(),
        write: write.into(),
        read: read.into(),
    };
    b.change(set).await.map_err(put_refusal)?;
    Ok(created_or_replaced(new))
}

async fn delete_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    match b.change(Change::ClearPermissions { user, vhost }).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found()),
    }
}

async fn list_topic_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    let mut out = Vec::new();
    for (user, m) in &s.topic_permissions {
        for (vhost, list) in m {
            out.extend(list.iter().map(|t| topic_permission_json(user, vhost, t)));
        }
    }
    Ok(Json(Value::Array(out)))
}

async fn show_topic_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    let list = s
        .topic_permissions
        .get(&user)
        .and_then(|m| m.get(&vhost))
        .filter(|l| !l.is_empty())
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(
        list.iter()
            .map(|t| topic_permission_json(&user, &vhost, t))
            .collect(),
    ))
}

async fn put_topic_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, user)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let doc = json_body(&body)?;
    let [exchange, write, read] = fields(&doc, ["exchange", "write", "read"])?;
    let set = Change::SetTopicPermissions {
        user,
        vhost,
        exchange: exchange.into(),
        write: write.into(),
        read: read.into(),
    };
    b.change(set).await.map_err(put_refusal)?;
    // RabbitMQ answers 201 whether or not the user had one on that exchange.
    Ok(StatusCode::CREATED)
}

async fn delete_topic_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let clear = Change::ClearTopicPermissions {
        user,
        vhost,
        exchange: None,
    };
    match b.change(clear).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found()),
    }
}
