//! `/api/exchanges`: a vhost's exchanges in RabbitMQ's JSON shape, and
//! declaring and deleting one over HTTP with the same rules and checks as
//! Exchange.Declare and Exchange.Delete.

use super::bindings::exchange_name;
use super::vhosts::visible;
use super::{ApiError, ApiResult, User, allowed, body, created_or_replaced, vhost_for};
use crate::access::rules;
use crate::broker::changes::Change;
use crate::broker::policy::table_json;
use crate::broker::topology::ExchangeDecl;
use crate::broker::vhost::ExchangeSpec;
use crate::broker::{Broker, Vhost};
use crate::error::ReplyCode;
use crate::exchange::Exchange;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/exchanges", get(list_exchanges))
        .route("/api/exchanges/{vhost}", get(list_vhost_exchanges))
        .route(
            "/api/exchanges/{vhost}/{name}",
            get(show_exchange)
                .put(declare_exchange)
                .delete(delete_exchange),
        )
}

fn exchange_json(v: &Vhost, x: &Exchange) -> Value {
    let mut out = json!({
        "name": x.name.as_str(),
        "vhost": v.name,
        "type": x.type_name(),
        "durable": x.durable,
        "auto_delete": x.auto_delete,
        "internal": x.internal,
        "arguments": table_json(&x.arguments),
        "user_who_performed_action": "rmq-internal",
        "policy": v.policy_for_exchange(x.name.as_str()).map(|p| p.name),
    });
    // As RabbitMQ: each counter shown once it moved, none before.
    let s = x.stats.sample();
    let mut stats = serde_json::Map::new();
    for (name, n, rate) in [
        ("publish_in", s.publish_in, s.publish_in_rate),
        ("publish_out", s.publish_out, s.publish_out_rate),
    ] {
        if n > 0 {
            stats.insert(name.into(), json!(n));
            stats.insert(format!("{name}_details"), json!({ "rate": rate }));
        }
    }
    if !stats.is_empty() {
        out["message_stats"] = Value::Object(stats);
    }
    out
}

fn visible_vhosts(b: &Broker, u: &User) -> Vec<Arc<Vhost>> {
    b.vhosts()
        .into_iter()
        .filter(|v| visible(b, u, &v.name))
        .collect()
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
    let name = exchange_name(name);
    let x = v.exchange(&name).map_err(|_| ApiError::not_found())?;
    Ok(Json(exchange_json(&v, &x)))
}

/// PUT an exchange: `{"type", "durable", "auto_delete", "internal",
/// "arguments"}`, all optional (a direct, transient exchange by default, as
/// RabbitMQ). 201 when created, 204 when it already was as asked.
async fn declare_exchange(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult<StatusCode> {
    let v = vhost_for(&b, &u, &vhost)?;
    let name = exchange_name(name);
    let m = body::object(&raw)?;
    let kind = body::text(&m, "type").unwrap_or_else(|| "direct".into());
    let arguments = body::arguments(&m)?;
    let spec = ExchangeSpec {
        name: &name,
        kind: &kind,
        passive: false,
        durable: body::flag(&m, "durable", false)?,
        auto_delete: body::flag(&m, "auto_delete", false)?,
        internal: body::flag(&m, "internal", false)?,
        arguments: &arguments,
    };
    allowed(&b, &u, &vhost, |g| {
        rules::may_declare_exchange(g, &v, &name, false, &arguments)
    })?;
    let new = v.exchange(&name).is_err();
    // The API checks the type before declaring, and says so its own way.
    let refused = |e: crate::error::AmqpError| {
        if e.code == ReplyCode::CommandInvalid && e.text.contains("exchange type") {
            ApiError::bad_request(format!("unknown exchange type '{kind}'"))
        } else {
            ApiError::from(e)
        }
    };
    if b.replicates_topology() && new {
        v.check_exchange_declare(&spec).map_err(refused)?;
        let exchange = ExchangeDecl {
            name: name.clone(),
            kind: kind.clone(),
            durable: spec.durable,
            auto_delete: spec.auto_delete,
            internal: spec.internal,
            arguments: arguments.clone(),
        };
        let created = b
            .change(Change::DeclareExchange { vhost, exchange })
            .await?;
        return Ok(created_or_replaced(created));
    }
    v.declare_exchange(&spec).map_err(refused)?;
    Ok(created_or_replaced(new))
}

#[derive(serde::Deserialize)]
struct DeleteQuery {
    #[serde(rename = "if-unused", default)]
    if_unused: bool,
}

/// DELETE an exchange (`?if-unused=true`): 204, 404 if there is none.
async fn delete_exchange(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let v = vhost_for(&b, &u, &vhost)?;
    let name = exchange_name(name);
    if !name.is_empty() {
        v.exchange(&name).map_err(|_| ApiError::not_found())?;
    }
    allowed(&b, &u, &vhost, |g| rules::may_delete_exchange(g, &name))?;
    if b.replicates_topology() && !name.is_empty() {
        // This node's queue bindings count for if-unused here (see
        // `Vhost::in_use`).
        if q.if_unused && v.exchange(&name).is_ok_and(|x| x.has_bindings()) {
            return Err(crate::error::AmqpError::precondition_failed(format!(
                "exchange '{name}' in vhost '{vhost}' in use"
            ))
            .into());
        }
        let if_unused = q.if_unused;
        b.change(Change::DeleteExchange {
            vhost,
            name,
            if_unused,
        })
        .await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    v.delete_exchange(&name, q.if_unused)?;
    Ok(StatusCode::NO_CONTENT)
}
