//! `/api/queues`: every queue, a vhost's queues, one queue, in RabbitMQ's
//! JSON shape: depths from the queue now, `message_stats` counters with
//! `*_details.rate` from the statistics sampler.

use super::{ApiError, ApiResult};
use crate::broker::policy::table_json;
use crate::broker::{Broker, Vhost};
use crate::queue::Queue;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/queues", get(list))
        .route("/api/queues/", get(list))
        .route("/api/queues/{vhost}", get(list_vhost))
        .route("/api/queues/{vhost}/{name}", get(show))
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
    json!({
        "name": q.name.as_str(),
        "vhost": v.name,
        "durable": q.durable,
        "auto_delete": q.auto_delete,
        "exclusive": q.exclusive_owner.is_some(),
        "arguments": table_json(&q.arguments),
        "type": if q.args().quorum { "quorum" } else { "classic" },
        "node": b.config.cluster_name,
        "state": "running",
        "policy": policy.as_ref().map(|p| p.name.clone()),
        "effective_policy_definition": policy.map_or_else(|| json!({}), |p| table_json(&p.definition)),
        "operator_policy": Value::Null,
        "recoverable_slaves": Value::Null,
        "head_message_timestamp": Value::Null,
        "consumers": s.consumers,
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
    })
}

/// RabbitMQ 3.10's `idle_since` format: "2026-12-01T23:59:59.123+00:00".
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

fn sorted(b: &Broker, vhosts: &[Arc<Vhost>]) -> Vec<Value> {
    let mut out = Vec::new();
    for v in vhosts {
        let mut qs = v.queue_list();
        qs.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(qs.iter().map(|q| to_json(b, v, q)));
    }
    out
}

async fn list(State(b): State<Arc<Broker>>) -> impl IntoResponse {
    axum::Json(Value::Array(sorted(&b, &b.vhosts())))
}

async fn list_vhost(
    State(b): State<Arc<Broker>>,
    Path(vhost): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let v = b.vhost(&vhost).ok_or_else(ApiError::vhost_not_found)?;
    Ok(axum::Json(Value::Array(sorted(&b, &[v]))))
}

async fn show(
    State(b): State<Arc<Broker>>,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let v = b.vhost(&vhost).ok_or_else(ApiError::vhost_not_found)?;
    let q = v.queue(&name).map_err(|_| ApiError::not_found())?;
    Ok(axum::Json(to_json(&b, &v, &q)))
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
