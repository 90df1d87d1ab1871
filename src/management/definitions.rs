//! `/api/definitions`: export everything durable (users, vhosts,
//! permissions, topic permissions, limits, policies, exchanges, queues,
//! bindings) in RabbitMQ's `definitions.json` shape, and import such a file
//! — checked whole, refused whole (administrators only).

use super::{ApiError, ApiResult, User, json_body};
use crate::access::definitions::access_json;
use crate::broker::policy::table_json;
use crate::broker::{Broker, Vhost};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/definitions", get(export_all).post(import_all))
        .route(
            "/api/definitions/{vhost}",
            get(export_vhost).post(import_vhost),
        )
}

/// One vhost's policies, exchanges, queues and bindings, each entry naming
/// the vhost (as RabbitMQ's full export does; `with_vhost` false leaves it
/// out, as its per-vhost export does).
fn vhost_entities(v: &Vhost, with_vhost: bool, out: &mut serde_json::Map<String, Value>) {
    let d = v.snapshot();
    let mut push = |k: &str, mut e: Value| {
        if with_vhost {
            e["vhost"] = json!(v.name);
        }
        if let Some(Value::Array(a)) = out.get_mut(k) {
            a.push(e);
        }
    };
    for p in &d.policies {
        push(
            "policies",
            json!({
                "name": p.name, "pattern": p.pattern, "apply-to": p.apply_to,
                "definition": table_json(&p.definition), "priority": p.priority,
            }),
        );
    }
    for q in &d.queues {
        push(
            "queues",
            json!({
                "name": q.name, "durable": true, "auto_delete": q.auto_delete,
                "arguments": table_json(&q.arguments),
            }),
        );
    }
    for x in &d.exchanges {
        push(
            "exchanges",
            json!({
                "name": x.name, "type": x.kind, "durable": true, "auto_delete": x.auto_delete,
                "internal": x.internal, "arguments": table_json(&x.arguments),
            }),
        );
    }
    for b in &d.bindings {
        push(
            "bindings",
            json!({
                "source": b.source, "destination": b.destination,
                "destination_type": b.destination_type, "routing_key": b.routing_key,
                "arguments": table_json(&b.arguments),
            }),
        );
    }
}

fn version(b: &Broker) -> Value {
    json!(
        b.config
            .product_version
            .as_deref()
            .unwrap_or(env!("CARGO_PKG_VERSION"))
    )
}

async fn export_all(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let mut out = match access_json(&b.access.snapshot()) {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    out.insert("rabbit_version".into(), version(&b));
    out.insert("rabbitmq_version".into(), version(&b));
    out.insert("product_name".into(), json!(b.config.product));
    out.insert("product_version".into(), version(&b));
    for k in ["policies", "queues", "exchanges", "bindings"] {
        out.insert(k.into(), json!([]));
    }
    for v in b.vhosts() {
        vhost_entities(&v, true, &mut out);
    }
    Ok(Json(Value::Object(out)))
}

async fn export_vhost(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    u.administrator()?;
    let v = b.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let mut out = serde_json::Map::new();
    out.insert("rabbit_version".into(), version(&b));
    out.insert("rabbitmq_version".into(), version(&b));
    for k in ["policies", "queues", "exchanges", "bindings"] {
        out.insert(k.into(), json!([]));
    }
    let parameters: Vec<Value> = b
        .access
        .snapshot()
        .parameters
        .iter()
        .filter(|((v, _, _), _)| *v == vhost)
        .map(|((_, component, name), value)| {
            json!({ "component": component, "name": name, "value": value })
        })
        .collect();
    out.insert("parameters".into(), Value::Array(parameters));
    vhost_entities(&v, false, &mut out);
    Ok(Json(Value::Object(out)))
}

async fn import(b: &Broker, doc: Value) -> ApiResult<StatusCode> {
    use crate::access::Refusal;
    use crate::broker::changes::Change;
    match b.change(Change::import(b, doc)).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(Refusal::Invalid(e)) => Err(ApiError::bad_request(e)),
        Err(e) => Err(e.into()),
    }
}

async fn import_all(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    import(&b, json_body(&body)?).await
}

/// A per-vhost file: its entries belong to the vhost in the path.
async fn import_vhost(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    u.administrator()?;
    if b.vhost(&vhost).is_none() {
        return Err(ApiError::not_found());
    }
    let mut doc = json_body(&body)?;
    for k in ["policies", "queues", "exchanges", "bindings"] {
        if let Some(Value::Array(a)) = doc.get_mut(k) {
            for e in a {
                e["vhost"] = json!(vhost);
            }
        }
    }
    for k in [
        "users",
        "vhosts",
        "permissions",
        "topic_permissions",
        "parameters",
    ] {
        if let Some(o) = doc.as_object_mut() {
            o.remove(k);
        }
    }
    import(&b, doc).await
}
