//! `/api/exchanges` and `/api/bindings`: a vhost's exchanges and bindings
//! in RabbitMQ's JSON shapes, the default exchange's implicit binding to
//! every queue included, as RabbitMQ lists it.

use super::vhosts::visible;
use super::{ApiError, ApiResult, User};
use crate::broker::policy::table_json;
use crate::broker::{Broker, Vhost};
use crate::exchange::{Destination, Exchange};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/exchanges", get(list_exchanges))
        .route("/api/exchanges/{vhost}", get(list_vhost_exchanges))
        .route("/api/exchanges/{vhost}/{name}", get(show_exchange))
        .route("/api/bindings", get(list_bindings))
        .route("/api/bindings/{vhost}", get(list_vhost_bindings))
}

fn exchange_json(v: &Vhost, x: &Exchange) -> Value {
    json!({
        "name": x.name.as_str(),
        "vhost": v.name,
        "type": x.type_name(),
        "durable": x.durable,
        "auto_delete": x.auto_delete,
        "internal": x.internal,
        "arguments": table_json(&x.arguments),
        "user_who_performed_action": "rmq-internal",
        "policy": v.policy_for_exchange(x.name.as_str()).map(|p| p.name),
    })
}

fn binding_json(
    vhost: &str,
    source: &str,
    dest: &str,
    kind: &str,
    key: &str,
    args: Value,
) -> Value {
    // RabbitMQ's properties_key: the key, "~" and a hash when there are arguments.
    let properties_key = if args.as_object().is_none_or(|a| a.is_empty()) {
        if key.is_empty() {
            "~".to_string()
        } else {
            key.to_string()
        }
    } else {
        format!("{key}~{:x}", crc32fast::hash(args.to_string().as_bytes()))
    };
    json!({
        "source": source,
        "vhost": vhost,
        "destination": dest,
        "destination_type": kind,
        "routing_key": key,
        "arguments": args,
        "properties_key": properties_key,
    })
}

pub(super) fn vhost_bindings(v: &Vhost) -> Vec<Value> {
    let mut out = Vec::new();
    let mut queues = v.queue_list();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    for q in &queues {
        let name = q.name.as_str();
        out.push(binding_json(&v.name, "", name, "queue", name, json!({})));
    }
    for x in v.exchange_list() {
        if x.name.as_str().is_empty() {
            continue;
        }
        for b in x.bindings() {
            let (dest, kind) = match &b.dest {
                Destination::Queue(q) => (q.name.as_str().to_string(), "queue"),
                Destination::Exchange(e) => (e.name.as_str().to_string(), "exchange"),
            };
            out.push(binding_json(
                &v.name,
                x.name.as_str(),
                &dest,
                kind,
                b.key.as_str(),
                table_json(&b.args),
            ));
        }
    }
    out
}

fn visible_vhosts(b: &Broker, u: &User) -> Vec<Arc<Vhost>> {
    b.vhosts()
        .into_iter()
        .filter(|v| visible(b, u, &v.name))
        .collect()
}

fn vhost_for(b: &Broker, u: &User, name: &str) -> ApiResult<Arc<Vhost>> {
    match b.vhost(name) {
        Some(v) if visible(b, u, name) => Ok(v),
        _ => Err(ApiError::vhost_not_found()),
    }
}

async fn list_exchanges(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> Json<Value> {
    let mut out = Vec::new();
    for v in visible_vhosts(&b, &u) {
        out.extend(v.exchange_list().iter().map(|x| exchange_json(&v, x)));
    }
    Json(Value::Array(out))
}

async fn list_vhost_exchanges(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    Ok(Json(
        v.exchange_list()
            .iter()
            .map(|x| exchange_json(&v, x))
            .collect(),
    ))
}

async fn show_exchange(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    // The default exchange is "amq.default" in the API's paths.
    let name = if name == "amq.default" {
        String::new()
    } else {
        name
    };
    let x = v.exchange(&name).map_err(|_| ApiError::not_found())?;
    Ok(Json(exchange_json(&v, &x)))
}

async fn list_bindings(State(b): State<Arc<Broker>>, Extension(u): Extension<User>) -> Json<Value> {
    Json(
        visible_vhosts(&b, &u)
            .iter()
            .flat_map(|v| vhost_bindings(v))
            .collect(),
    )
}

async fn list_vhost_bindings(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    Ok(Json(Value::Array(vhost_bindings(&v))))
}
