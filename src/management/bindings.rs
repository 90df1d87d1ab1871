//! Bindings over HTTP on all of RabbitMQ's paths: every binding, a vhost's,
//! an exchange's as source or destination, a queue's, and between one
//! exchange and one queue or exchange — listed, created with POST (201 and
//! a `Location` naming its properties key), read and deleted by that key.
//! The default exchange's implicit binding to every queue is listed, as
//! RabbitMQ lists it.

use super::body;
use super::vhosts::visible;
use super::{ApiError, ApiResult, User, allowed, vhost_for};
use crate::access::permission::Kind;
use crate::access::rules;
use crate::broker::changes::Change;
use crate::broker::policy::table_json;
use crate::broker::topology::{ExchangeBinding, QueueBinding};
use crate::broker::{Broker, Vhost};
use crate::exchange::Destination;
use amq_protocol::types::FieldTable;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/bindings", get(list_bindings))
        .route("/api/bindings/{vhost}", get(list_vhost_bindings))
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{dest}",
            get(list_between).post(create),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{dest}/{props}",
            get(show).delete(delete),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/bindings/source",
            get(exchange_as_source),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/bindings/destination",
            get(exchange_as_destination),
        )
        .route("/api/queues/{vhost}/{name}/bindings", get(queue_bindings))
}

/// One binding as the API shows it, with the original key and arguments
/// kept for deleting it.
struct Listed {
    source: String,
    dest: String,
    kind: &'static str,
    key: String,
    args: FieldTable,
}

impl Listed {
    /// RabbitMQ's properties key: the routing key ("~" when empty), and
    /// "~" and a hash of the arguments when there are any.
    fn properties_key(&self) -> String {
        if self.args.inner().is_empty() {
            if self.key.is_empty() {
                "~".into()
            } else {
                self.key.clone()
            }
        } else {
            let hash = crc32fast::hash(table_json(&self.args).to_string().as_bytes());
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.to_be_bytes());
            format!("{}~{b64}", self.key)
        }
    }

    fn json(&self, vhost: &str) -> Value {
        json!({
            "source": self.source,
            "vhost": vhost,
            "destination": self.dest,
            "destination_type": self.kind,
            "routing_key": self.key,
            "arguments": table_json(&self.args),
            "properties_key": self.properties_key(),
        })
    }
}

/// Every binding in a vhost: the default exchange's to each queue first,
/// then each exchange's, as RabbitMQ orders them.
fn all(v: &Vhost) -> Vec<Listed> {
    let mut out = Vec::new();
    let mut queues = v.queue_list();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    for q in &queues {
        let name = q.name.as_str();
        out.push(Listed {
            source: String::new(),
            dest: name.into(),
            kind: "queue",
            key: name.into(),
            args: FieldTable::default(),
        });
    }
    let mut exchanges = v.exchange_list();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    for x in exchanges {
        if x.name.as_str().is_empty() {
            continue;
        }
        let mut listed: Vec<Listed> = x
            .bindings()
            .iter()
            .map(|b| {
                let (dest, kind) = match &b.dest {
                    Destination::Queue(q) => (q.name.to_string(), "queue"),
                    Destination::Exchange(e) => (e.name.to_string(), "exchange"),
                };
                Listed {
                    source: x.name.to_string(),
                    dest,
                    kind,
                    key: b.key.to_string(),
                    args: b.args.clone(),
                }
            })
            .collect();
        listed.sort_by(|a, b| (a.kind, &a.dest, &a.key).cmp(&(b.kind, &b.dest, &b.key)));
        out.extend(listed);
    }
    out
}

pub(super) fn vhost_bindings(v: &Vhost) -> Vec<Value> {
    all(v).iter().map(|l| l.json(&v.name)).collect()
}

fn listed(v: &Vhost, keep: impl Fn(&Listed) -> bool) -> Json<Value> {
    Json(
        all(v)
            .iter()
            .filter(|l| keep(l))
            .map(|l| l.json(&v.name))
            .collect(),
    )
}

/// "amq.default" names the default exchange in the API's paths.
pub(super) fn exchange_name(name: String) -> String {
    if name == "amq.default" {
        String::new()
    } else {
        name
    }
}

/// `q` or `e` in a binding path.
fn destination_kind(kind: &str) -> ApiResult<(Kind, &'static str)> {
    match kind {
        "q" => Ok((Kind::Queue, "queue")),
        "e" => Ok((Kind::Exchange, "exchange")),
        _ => Err(ApiError::not_found()),
    }
}

async fn list_bindings(State(b): State<Arc<Broker>>, Extension(u): Extension<User>) -> Json<Value> {
    Json(
        b.vhosts()
            .iter()
            .filter(|v| visible(&b, &u, &v.name))
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

async fn exchange_as_source(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    let name = exchange_name(name);
    v.exchange(&name).map_err(|_| ApiError::not_found())?;
    Ok(listed(&v, |l| l.source == name))
}

async fn exchange_as_destination(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    let name = exchange_name(name);
    v.exchange(&name).map_err(|_| ApiError::not_found())?;
    Ok(listed(&v, |l| l.kind == "exchange" && l.dest == name))
}

async fn queue_bindings(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    v.queue(&name).map_err(|_| ApiError::not_found())?;
    Ok(listed(&v, |l| l.kind == "queue" && l.dest == name))
}

async fn list_between(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, source, kind, dest)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    let (_, kind) = destination_kind(&kind)?;
    let source = exchange_name(source);
    Ok(listed(&v, |l| {
        l.source == source && l.kind == kind && l.dest == dest
    }))
}

/// The binding a properties key names.
fn find(v: &Vhost, source: &str, kind: &str, dest: &str, props: &str) -> ApiResult<Listed> {
    all(v)
        .into_iter()
        .find(|l| {
            l.source == source && l.kind == kind && l.dest == dest && l.properties_key() == props
        })
        .ok_or_else(ApiError::not_found)
}

async fn show(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, source, kind, dest, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    let (_, kind) = destination_kind(&kind)?;
    let l = find(&v, &exchange_name(source), kind, &dest, &props)?;
    Ok(Json(l.json(&v.name)))
}

/// POST a binding: `{"routing_key": ..., "arguments": {...}}`, both
/// optional. 201 with the new binding's path relative to this one.
async fn create(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, source, kind, dest)): Path<(String, String, String, String)>,
    raw: Bytes,
) -> ApiResult<Response> {
    let v = vhost_for(&b, &u, &vhost)?;
    let (perm_kind, kind_name) = destination_kind(&kind)?;
    let m = body::object(&raw)?;
    let key = body::text(&m, "routing_key").unwrap_or_default();
    let args = body::arguments(&m)?;
    let source = exchange_name(source);
    allowed(&b, &u, &vhost, |g| {
        rules::may_bind(g, &v, perm_kind, &dest, &source, &key)
    })?;
    match perm_kind {
        Kind::Queue if b.replicates_topology() => {
            v.check_bind(&dest, &source, &key, &args, 0)?;
            let binding = QueueBinding {
                queue: dest.clone(),
                exchange: source.clone(),
                routing_key: key.clone(),
                arguments: args.clone(),
                conn: None,
            };
            b.change(Change::BindQueue { vhost, binding }).await?;
        }
        Kind::Queue => v.bind(&dest, &source, &key, &args, 0)?,
        _ if b.replicates_topology() => {
            let binding = ExchangeBinding {
                destination: dest.clone(),
                source: source.clone(),
                routing_key: key.clone(),
                arguments: args.clone(),
            };
            b.change(Change::BindExchange { vhost, binding }).await?;
        }
        _ => v.bind_exchange(&dest, &source, &key, &args)?,
    }
    let l = Listed {
        source,
        dest,
        kind: kind_name,
        key,
        args,
    };
    let location = format!("{}/{}", l.dest, l.properties_key());
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

async fn delete(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, source, kind, dest, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let v = vhost_for(&b, &u, &vhost)?;
    let (perm_kind, kind_name) = destination_kind(&kind)?;
    let l = find(&v, &exchange_name(source), kind_name, &dest, &props)?;
    allowed(&b, &u, &vhost, |g| {
        rules::may_bind(g, &v, perm_kind, &l.dest, &l.source, &l.key)
    })?;
    match perm_kind {
        Kind::Queue if b.replicates_topology() => {
            let binding = QueueBinding {
                queue: l.dest.clone(),
                exchange: l.source.clone(),
                routing_key: l.key.clone(),
                arguments: l.args.clone(),
                conn: None,
            };
            b.change(Change::UnbindQueue { vhost, binding }).await?;
        }
        Kind::Queue => v.unbind(&l.dest, &l.source, &l.key, &l.args, 0)?,
        _ if b.replicates_topology() => {
            let binding = ExchangeBinding {
                destination: l.dest.clone(),
                source: l.source.clone(),
                routing_key: l.key.clone(),
                arguments: l.args.clone(),
            };
            b.change(Change::UnbindExchange { vhost, binding }).await?;
        }
        _ => v.unbind_exchange(&l.dest, &l.source, &l.key, &l.args)?,
    }
    Ok(StatusCode::NO_CONTENT)
}
