//! `/api/queues`: every queue, a vhost's queues, one queue, in RabbitMQ's
//! JSON shape: depths from the queue now, `message_stats` counters with
//! `*_details.rate` from the statistics sampler.

use super::pagination::ListPage;
use super::{ApiError, ApiResult, User, allowed, body, created_or_replaced, vhost_for};
use crate::access::rules;
use crate::broker::changes::Change;
use crate::broker::policy::{Policy, table_json};
use crate::broker::vhost::{QueueDecl, QueueSpec};
use crate::broker::{Broker, Vhost};
use crate::queue::Queue;
use axum::Extension;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/queues", get(list))
        .route("/api/queues/", get(list))
        .route("/api/queues/{vhost}", get(list_vhost))
        .route(
            "/api/queues/{vhost}/{name}",
            get(show).put(declare_queue).delete(delete_queue),
        )
        .route(
            "/api/queues/{vhost}/{name}/contents",
            axum::routing::delete(purge_queue),
        )
}

/// PUT a queue: `{"durable", "auto_delete", "arguments"}`, all optional
/// (transient by default, as RabbitMQ; a queue made over HTTP has no
/// connection to be exclusive to). 201 when created, 204 when it already
/// was as asked, 400 with the AMQP text when it is not.
async fn declare_queue(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let v = vhost_for(&b, &u, &vhost)?;
    let m = body::object(&raw)?;
    let arguments = body::arguments(&m)?;
    let spec = QueueSpec {
        name: &name,
        server_named: false,
        passive: false,
        durable: body::flag(&m, "durable", false)?,
        exclusive: false,
        auto_delete: body::flag(&m, "auto_delete", false)?,
        arguments: &arguments,
        conn_id: 0,
    };
    allowed(&b, &u, &vhost, |g| {
        rules::may_declare_queue(g, &v, &name, false, &arguments)
    })?;
    let new = v.queue(&name).is_err();
    if b.replicates_topology() && new {
        // Homed on the node named in the body, as RabbitMQ's "node", else
        // on this one.
        v.check_queue_declare(&spec)?;
        let home = body::text(&m, "node").unwrap_or_else(|| b.node_name().to_string());
        let member = b
            .cluster()
            .is_some_and(|c| c.members().iter().any(|n| n.name == home));
        if !member {
            return Err(ApiError::bad_request(format!(
                "no node '{home}' in the cluster"
            )));
        }
        let queue = QueueDecl {
            name: name.clone(),
            durable: spec.durable,
            exclusive: false,
            auto_delete: spec.auto_delete,
            arguments: arguments.clone(),
            home: home.clone(),
            incarnation: crate::broker::names::random_u64(),
            conn: None,
            replaces: v.replaced(&name),
            replicas: b.quorum_replicas(&arguments, &home),
        };
        let created = b.change(Change::DeclareQueue { vhost, queue }).await?;
        return Ok(created_or_replaced(created));
    }
    v.declare_queue(&spec)?;
    Ok(created_or_replaced(new))
}

#[derive(serde::Deserialize)]
struct DeleteQuery {
    #[serde(rename = "if-empty", default)]
    if_empty: bool,
    #[serde(rename = "if-unused", default)]
    if_unused: bool,
}

/// DELETE a queue (`?if-empty=true`, `?if-unused=true` as RabbitMQ): 204,
/// 404 if there is none, 400 with the AMQP reason if a condition fails.
async fn delete_queue(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let v = vhost_for(&b, &u, &vhost)?;
    let queue = v.queue(&name).map_err(|_| ApiError::not_found())?;
    allowed(&b, &u, &vhost, |g| rules::may_delete_queue(g, &name))?;
    if b.replicates_topology() && queue.placement.is_some() {
        v.check_delete(&queue, 0, q.if_unused, q.if_empty)?;
        if queue.elsewhere().is_some() && (q.if_unused || q.if_empty) {
            v.delete_at_home(&queue, q.if_unused, q.if_empty).await?;
            return Ok(StatusCode::NO_CONTENT);
        }
        let incarnation = queue.incarnation();
        b.change(Change::DeleteQueue {
            vhost,
            name,
            incarnation,
        })
        .await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    v.delete_queue(&name, 0, q.if_unused, q.if_empty)?;
    Ok(StatusCode::NO_CONTENT)
}

/// DELETE a queue's contents: purge it.
async fn purge_queue(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let v = vhost_for(&b, &u, &vhost)?;
    v.queue(&name).map_err(|_| ApiError::not_found())?;
    allowed(&b, &u, &vhost, |g| rules::may_read_queue(g, &name))?;
    let q = v.queue_for(&name, 0)?;
    match q.elsewhere() {
        Some(_) => {
            v.purge_at_home(&q).await?;
        }
        None => {
            q.purge();
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

fn rate(r: f64) -> Value {
    json!({ "rate": r })
}

fn to_json(b: &Broker, v: &Vhost, q: &Queue) -> Value {
    let s = q.sample();
    let rates = q.rates();
    let mut stats = Map::new();
    for (i, (name, n)) in s.counters.named().into_iter().enumerate() {
        stats.insert(name.into(), json!(n));
        stats.insert(format!("{name}_details"), rate(rates.counters[i]));
    }
    let policy = v.policy_for_queue(q.name.as_str());
    let operator = v.operator_policy_for_queue(q.name.as_str());
    let node = q
        .elsewhere()
        .map_or_else(|| b.node_name().to_string(), |h| h.to_string());
    let mut out = json!({
        "name": q.name.as_str(),
        "vhost": v.name,
        "durable": q.durable,
        "auto_delete": q.auto_delete,
        "exclusive": q.exclusive_owner.is_some(),
        "arguments": table_json(&q.arguments),
        // A stand-in's arguments are not parsed: its own say it too.
        "type": if q.args().quorum || crate::queue::args::is_quorum(&q.arguments) { "quorum" } else { "classic" },
        // A cluster's queue is its home's.
        "node": node,
        "state": "running",
        "policy": policy.as_ref().map(|p| p.name.clone()),
        "effective_policy_definition": effective_definition(policy.as_ref(), operator.as_ref()),
        "operator_policy": operator.as_ref().map(|p| p.name.clone()),
        "recoverable_slaves": Value::Null,
        "head_message_timestamp": Value::Null,
        "consumers": s.consumers,
        "consumer_utilisation": rates.consumer_utilisation,
        "memory": memory_estimate(&s),
        "messages": s.ready + s.unacked,
        "messages_details": rate(rates.messages),
        "messages_ready": s.ready,
        "messages_ready_details": rate(rates.ready),
        "messages_unacknowledged": s.unacked,
        "messages_unacknowledged_details": rate(rates.unacked),
        "message_bytes": s.ready_bytes + s.unacked_bytes,
        "message_bytes_ready": s.ready_bytes,
        "message_bytes_unacknowledged": s.unacked_bytes,
        "idle_since": idle_since(s.last_used),
        "message_stats": Value::Object(stats),
    });
    // A quorum queue of a cluster: its group, as RabbitMQ shows it (the
    // leader is its home).
    if let (false, Some(o)) = (q.replicas().is_empty(), out.as_object_mut()) {
        o.insert("leader".into(), json!(node));
        o.insert("members".into(), json!(q.replicas()));
    }
    out
}

/// RabbitMQ 3.10's `idle_since` format: "2026-12-01T23:59:59.123+00:00".
/// What a queue holds in RAM, estimated: its messages' bodies, a
/// per-message share of headers and bookkeeping, and the queue itself.
/// (RabbitMQ reports its queue process's memory here.)
fn memory_estimate(s: &crate::queue::stats::Sample) -> usize {
    const PER_MESSAGE: usize = 160;
    const QUEUE: usize = 2048;
    QUEUE + s.ready_bytes + s.unacked_bytes + (s.ready + s.unacked) * PER_MESSAGE
}

/// The policy's definition with the operator policy's limits where they
/// are lower (or the policy sets none), as RabbitMQ merges the two.
fn effective_definition(policy: Option<&Policy>, operator: Option<&Policy>) -> Value {
    let mut out = policy.map_or_else(Map::new, |p| match table_json(&p.definition) {
        Value::Object(m) => m,
        _ => Map::new(),
    });
    if let Some(Value::Object(op)) = operator.map(|p| table_json(&p.definition)) {
        for (k, v) in op {
            let lower = match (out.get(&k).and_then(Value::as_i64), v.as_i64()) {
                (Some(now), Some(theirs)) => theirs < now,
                _ => true,
            };
            if lower {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

fn idle_since(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// The list, or one page of it, cut here rather than by the list
/// middleware (see `ListPage`): every queue of these vhosts, by vhost and
/// then name, from each vhost's queues kept in name order.
fn respond(
    b: &Broker,
    vhosts: &[Arc<Vhost>],
    query: Option<String>,
) -> ApiResult<axum::response::Response> {
    let lists: Vec<_> = vhosts.iter().map(|v| (v, v.queues_by_name())).collect();
    let all: Vec<(&Arc<Vhost>, &Arc<Queue>)> = lists
        .iter()
        .flat_map(|(v, qs)| qs.iter().map(move |q| (*v, q)))
        .collect();
    if let Some(page) = ListPage::from_query(query.as_deref())? {
        return page.respond(
            all,
            |(_, q)| q.name.as_str(),
            sort_key,
            |(v, q)| to_json(b, v, q),
        );
    }
    let list: Vec<Value> = all.iter().map(|(v, q)| to_json(b, v, q)).collect();
    Ok(axum::Json(Value::Array(list)).into_response())
}

/// The columns a queue list is sorted by that its sample gives without
/// rendering the queue.
fn sort_key((v, q): &(&Arc<Vhost>, &Arc<Queue>), key: &str) -> Option<Value> {
    if key == "vhost" {
        return Some(json!(v.name));
    }
    let s = q.sample();
    if let Some(stat) = key.strip_prefix("message_stats.") {
        // A counter (`message_stats.ack`) or its rate (`..._details.rate`).
        let (name, rate) = match stat.strip_suffix("_details.rate") {
            Some(name) => (name, true),
            None => (stat, false),
        };
        let named = s.counters.named();
        let i = named.iter().position(|(n, _)| *n == name)?;
        return Some(if rate {
            json!(q.rates().counters[i])
        } else {
            json!(named[i].1)
        });
    }
    let n = match key {
        "messages" => s.ready + s.unacked,
        "messages_ready" => s.ready,
        "messages_unacknowledged" => s.unacked,
        "consumers" => s.consumers,
        "message_bytes" => s.ready_bytes + s.unacked_bytes,
        "message_bytes_ready" => s.ready_bytes,
        "message_bytes_unacknowledged" => s.unacked_bytes,
        _ => return None,
    };
    Some(json!(n))
}

async fn list(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    RawQuery(query): RawQuery,
) -> ApiResult<axum::response::Response> {
    let vhosts: Vec<Arc<Vhost>> = b
        .vhosts()
        .into_iter()
        .filter(|v| super::vhosts::visible(&b, &u, &v.name))
        .collect();
    respond(&b, &vhosts, query)
}

async fn list_vhost(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path(vhost): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<axum::response::Response> {
    let v = vhost_for(&b, &u, &vhost)?;
    respond(&b, &[v], query)
}

async fn show(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let v = vhost_for(&b, &u, &vhost)?;
    let q = v.queue(&name).map_err(|_| ApiError::not_found())?;
    let mut shown = to_json(&b, &v, &q);
    // A stand-in holds nothing: the counts are its home's (ready and
    // consumers; what is unacknowledged there is not asked).
    if q.elsewhere().is_some()
        && let (Ok((ready, consumers)), Some(o)) =
            (v.counts_at_home(&q).await, shown.as_object_mut())
    {
        o.insert("messages".into(), json!(ready));
        o.insert("messages_ready".into(), json!(ready));
        o.insert("consumers".into(), json!(consumers));
    }
    Ok(axum::Json(shown))
}

#[cfg(test)]
mod tests {
    #[test]
    fn idle_since_is_rabbitmqs_date_format() {
        assert_eq!(super::idle_since(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(
            super::idle_since(1_796_169_599_123),
            "2026-12-01T23:59:59.123+00:00"
        );
    }
}
