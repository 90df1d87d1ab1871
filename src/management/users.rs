//! `/api/users` and `/api/user-limits`: list, read, create or replace, and
//! delete users (administrators only, as in RabbitMQ). Deleting a user
//! closes its connections.

use super::limits::{limit_value, limits_json, unknown_limit};
use super::{ApiError, ApiResult, User, created_or_replaced, json_body};
use crate::access::definitions::{permission_json, user_json};
use crate::access::password::{Hashing, PasswordHash};
use crate::access::user;
use crate::broker::Broker;
use crate::broker::changes::Change;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde_json::Value;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/users", get(list_users))
        .route(
            "/api/users/without-permissions",
            get(list_users_without_permissions),
        )
        .route(
            "/api/users/{name}",
            get(show_user).put(put_user).delete(delete_user),
        )
        .route(
            "/api/users/bulk-delete",
            axum::routing::post(bulk_delete_users),
        )
        .route("/api/users/{name}/permissions", get(user_permissions))
        .route("/api/user-limits", get(list_user_limits))
        .route("/api/user-limits/{name}", get(show_user_limits))
        .route(
            "/api/user-limits/{name}/{limit}",
            put(put_user_limit).delete(delete_user_limit),
        )
}

async fn list_users(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    Ok(Json(s.users.values().map(|u| user_json(u)).collect()))
}

async fn list_users_without_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    Ok(Json(
        s.users
            .values()
            .filter(|u| s.permissions.get(&u.name).is_none_or(|p| p.is_empty()))
            .map(|u| user_json(u))
            .collect(),
    ))
}

async fn show_user(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    let user = s.users.get(&name).ok_or_else(ApiError::not_found)?;
    Ok(Json(user_json(user)))
}

/// PUT: `tags` is required (RabbitMQ 3.10); `password` is hashed,
/// `password_hash` (with `hashing_algorithm`) taken as it is, and neither
/// makes a user who cannot log in with a password.
async fn put_user(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let doc = json_body(&body)?;
    let Some(tags) = doc.get("tags") else {
        return Err(ApiError::bad_request("tags_not_present"));
    };
    let password = match (doc.get("password"), doc.get("password_hash")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "both_password_and_password_hash_are_provided",
            ));
        }
        (Some(p), None) => PasswordHash::new(p.as_str().unwrap_or("")),
        (None, Some(h)) => {
            let hashing = match doc.get("hashing_algorithm").and_then(Value::as_str) {
                Some(a) => Hashing::parse(a).map_err(ApiError::bad_request)?,
                None => Hashing::Sha256,
            };
            let h = h.as_str().unwrap_or("");
            PasswordHash::parse(h, hashing).map_err(|_| ApiError::bad_request("not_base64"))?
        }
        (None, None) => PasswordHash::none(),
    };
    let limits = b
        .access
        .snapshot()
        .users
        .get(&name)
        .map(|u| u.limits.clone())
        .unwrap_or_default();
    let new = b
        .change(Change::PutUser(user::User {
            name,
            password,
            tags: user::parse_tags(tags),
            limits,
        }))
        .await?;
    Ok(created_or_replaced(new))
}

async fn delete_user(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    b.change(Change::DeleteUser(name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// POST `{"users": [...]}`: all of them, or (one unknown) none of them.
async fn bulk_delete_users(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    raw: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let m = super::body::object(&raw)?;
    super::body::require(&m, &["users"])?;
    let Some(names) = m.get("users").and_then(Value::as_array) else {
        return Err(ApiError::bad_value("users", m["users"].clone()));
    };
    let names: Vec<String> = names
        .iter()
        .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_string))
        .collect();
    let known = b.access.snapshot();
    if let Some(missing) = names.iter().find(|n| !known.users.contains_key(*n)) {
        return Err(ApiError::bad_value("no_such_user", missing.as_str()));
    }
    for name in names {
        b.change(Change::DeleteUser(name)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn user_permissions(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    if !s.users.contains_key(&name) {
        return Err(ApiError::not_found());
    }
    let list = s.permissions.get(&name).into_iter().flatten();
    Ok(Json(
        list.map(|(vhost, p)| permission_json(&name, vhost, p))
            .collect(),
    ))
}

async fn list_user_limits(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    Ok(Json(
        s.users
            .values()
            .filter_map(|u| limits_json("user", &u.name, &u.limits.named()))
            .collect(),
    ))
}

async fn show_user_limits(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    let user = s.users.get(&name).ok_or_else(ApiError::not_found)?;
    Ok(Json(
        limits_json("user", &name, &user.limits.named())
            .into_iter()
            .collect(),
    ))
}

async fn put_user_limit(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((name, limit)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    change_limit(&b, &name, &limit, limit_value(&body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_user_limit(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((name, limit)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    change_limit(&b, &name, &limit, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change_limit(b: &Broker, name: &str, limit: &str, value: Option<u64>) -> ApiResult<()> {
    let mut limits = b
        .access
        .snapshot()
        .users
        .get(name)
        .ok_or_else(ApiError::not_found)?
        .limits
        .clone();
    if !limits.set(limit, value) {
        return Err(unknown_limit("user-limits", limit, value));
    }
    let set = Change::SetUserLimits {
        user: name.into(),
        limits,
    };
    b.change(set).await?;
    Ok(())
}
