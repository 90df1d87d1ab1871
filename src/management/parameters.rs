//! `/api/parameters` and `/api/global-parameters`: RabbitMQ's runtime
//! parameters, stored with the users and exported in the definitions. The
//! components of RabbitMQ's shovel and federation plugins are accepted and
//! kept, so tools that configure them work and an export carries them, but
//! nothing here acts on them yet. `vhost-limits` is the vhost's limits.

use super::{ApiError, ApiResult, User, body, created_or_replaced, vhost_for};
use crate::access::definitions::{parameter_json, parse_vhost_limits};
use crate::access::limits::to_map;
use crate::broker::Broker;
use crate::broker::changes::Change;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/parameters", get(list_all))
        .route("/api/parameters/{component}", get(list_component))
        .route(
            "/api/parameters/{component}/{vhost}",
            get(list_component_vhost),
        )
        .route(
            "/api/parameters/{component}/{vhost}/{name}",
            get(show).put(put).delete(delete),
        )
        .route("/api/global-parameters", get(list_global))
        .route(
            "/api/global-parameters/{name}",
            get(show_global).put(put_global).delete(delete_global),
        )
}

const VHOST_LIMITS: &str = "vhost-limits";

/// Components stored for plugins ferretmq does not run (yet).
const KEPT: [&str; 3] = ["shovel", "federation-upstream", "federation-upstream-set"];

fn validation_failed(why: &str) -> ApiError {
    ApiError::bad_request(format!("Validation failed\n\n{why}\n"))
}

/// Every parameter the user may see, vhost limits included.
fn listed(b: &Broker, u: &User) -> Vec<Value> {
    let s = b.access.snapshot();
    let mut out: Vec<Value> = s
        .vhosts
        .values()
        .filter(|v| !v.limits.named().is_empty())
        .map(|v| json!({ "vhost": v.name, "component": VHOST_LIMITS, "name": "limits", "value": to_map(&v.limits.named()) }))
        .collect();
    out.extend(s.parameters.iter().map(parameter_json));
    out.retain(|p| {
        p["vhost"]
            .as_str()
            .is_some_and(|v| super::vhosts::visible(b, u, v))
    });
    out
}

async fn list_all(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.policymaker()?;
    Ok(Json(Value::Array(listed(&b, &u))))
}

async fn list_component(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(component): Path<String>,
) -> ApiResult<Json<Value>> {
    u.policymaker()?;
    let mut l = listed(&b, &u);
    l.retain(|p| p["component"] == component.as_str());
    Ok(Json(Value::Array(l)))
}

async fn list_component_vhost(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((component, vhost)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    u.policymaker()?;
    vhost_for(&b, &u, &vhost)?;
    let mut l = listed(&b, &u);
    l.retain(|p| p["component"] == component.as_str() && p["vhost"] == vhost.as_str());
    Ok(Json(Value::Array(l)))
}

async fn show(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((component, vhost, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    u.policymaker()?;
    vhost_for(&b, &u, &vhost)?;
    listed(&b, &u)
        .into_iter()
        .find(|p| {
            p["component"] == component.as_str()
                && p["vhost"] == vhost.as_str()
                && p["name"] == name.as_str()
        })
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// PUT `{"value": ...}`: 201 when new, 204 when replaced.
async fn put(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((component, vhost, name)): Path<(String, String, String)>,
    raw: Bytes,
) -> ApiResult<StatusCode> {
    u.policymaker()?;
    vhost_for(&b, &u, &vhost)?;
    let m = body::object(&raw)?;
    body::require(&m, &["value"])?;
    let value = m.get("value").cloned().unwrap_or(Value::Null);
    if component == VHOST_LIMITS {
        let limits = parse_vhost_limits(&value, &format!("vhost-limits of vhost '{vhost}'"))
            .map_err(|e| validation_failed(&e))?;
        let new = b
            .access
            .snapshot()
            .vhosts
            .get(&vhost)
            .is_some_and(|v| v.limits.named().is_empty());
        b.change(Change::SetVhostLimits { vhost, limits }).await?;
        return Ok(created_or_replaced(new));
    }
    if !KEPT.contains(&component.as_str()) {
        return Err(validation_failed(&format!(
            "component {component} not found"
        )));
    }
    if !value.is_object() {
        return Err(validation_failed(&format!(
            "{component} value must be a JSON object"
        )));
    }
    let set = Change::SetParameter {
        vhost,
        component,
        name,
        value,
    };
    Ok(created_or_replaced(b.change(set).await?))
}

async fn delete(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((component, vhost, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    u.policymaker()?;
    vhost_for(&b, &u, &vhost)?;
    if component == VHOST_LIMITS {
        let had = b
            .access
            .snapshot()
            .vhosts
            .get(&vhost)
            .is_some_and(|v| !v.limits.named().is_empty());
        if !had {
            return Err(ApiError::not_found());
        }
        let clear = Change::SetVhostLimits {
            vhost,
            limits: Default::default(),
        };
        b.change(clear).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let clear = Change::ClearParameter {
        vhost,
        component,
        name,
    };
    match b.change(clear).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found()),
    }
}

async fn list_global(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    Ok(Json(
        s.global_parameters
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect(),
    ))
}

async fn show_global(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let s = b.access.snapshot();
    let value = s
        .global_parameters
        .get(&name)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({ "name": name, "value": value })))
}

async fn put_global(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    let m = body::object(&raw)?;
    body::require(&m, &["value"])?;
    let value = m.get("value").cloned().unwrap_or(Value::Null);
    let new = b.change(Change::SetGlobalParameter { name, value }).await?;
    Ok(created_or_replaced(new))
}

async fn delete_global(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    match b.change(Change::ClearGlobalParameter(name)).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found()),
    }
}
