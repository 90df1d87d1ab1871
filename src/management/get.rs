//! `POST /api/queues/{vhost}/{queue}/get`: take up to `count` messages as
//! Basic.Get would, then settle them all as `ackmode` says — requeued
//! (redelivered next time), acked, or rejected (dead-lettered) — and show
//! them with their payloads as text or base64, cut to `truncate` bytes.

use super::{ApiError, ApiResult, User, allowed, body, vhost_for};
use crate::access::rules;
use crate::broker::Broker;
use crate::broker::policy::table_json;
use crate::error::{AmqpError, ReplyCode};
use amq_protocol::protocol::BasicProperties;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new().route("/api/queues/{vhost}/{name}/get", post(get))
}

/// How the messages taken are settled.
#[derive(Clone, Copy, PartialEq)]
enum AckMode {
    Requeue,
    Ack,
    Reject,
}

fn ack_mode(s: &str) -> ApiResult<AckMode> {
    match s {
        "ack_requeue_true" | "reject_requeue_true" => Ok(AckMode::Requeue),
        "ack_requeue_false" => Ok(AckMode::Ack),
        "reject_requeue_false" => Ok(AckMode::Reject),
        _ => Err(ApiError::bad_value("unsupported_ackmode", s)),
    }
}

/// A Basic.Get failure as RabbitMQ's API shows it: the AMQP reply text.
fn refused(e: AmqpError) -> ApiError {
    let status = match e.code {
        ReplyCode::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    let error = if status == StatusCode::NOT_FOUND {
        "not_found"
    } else {
        "bad_request"
    };
    ApiError::new(status, error, e.reply_text())
}

async fn get(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    let m = body::object(&raw)?;
    body::require(&m, &["count", "ackmode", "encoding"])?;
    let count = body::integer(&m, "count")?.unwrap_or(1).max(0);
    let mode = ack_mode(&body::text(&m, "ackmode").unwrap_or_default())?;
    let base64 = match body::text(&m, "encoding").as_deref() {
        Some("auto") => false,
        Some("base64") => true,
        _ => {
            return Err(ApiError::bad_request(
                "Unsupported encoding. Please use auto or base64.",
            ));
        }
    };
    let truncate = body::integer(&m, "truncate")?.map(|n| n.max(0) as usize);
    allowed(&b, &u, &vhost, |g| rules::may_read_queue(g, &name))
        .map_err(|_| ApiError::not_authorised("Access refused."))?;
    let q = v.queue_for(&name, 0).map_err(refused)?;
    let mut shown = Vec::new();
    let mut seqs = Vec::new();
    for _ in 0..count {
        // A queue homed on another node is got from there, and settled
        // there below.
        let got = match q.home_link() {
            Some(home) => home.get(&q, false).await.map_err(refused)?,
            None => q.get(false),
        };
        let Some((entry, remaining)) = got else {
            break;
        };
        seqs.push(entry.seq);
        shown.push(message_json(&entry, remaining, base64, truncate));
    }
    let dead = match mode {
        AckMode::Requeue => q.requeue(&seqs),
        AckMode::Ack => {
            q.ack(&seqs);
            crate::queue::Dead(Vec::new())
        }
        AckMode::Reject => q.reject(&seqs),
    };
    if !dead.is_empty() {
        v.dead_letter(&q, dead);
    }
    Ok(Json(Value::Array(shown)))
}

fn message_json(
    entry: &crate::queue::ready::Entry,
    remaining: usize,
    base64: bool,
    truncate: Option<usize>,
) -> Value {
    let msg = &entry.msg;
    let body = &msg.body[..truncate.map_or(msg.body.len(), |t| t.min(msg.body.len()))];
    let (payload, encoding) = match std::str::from_utf8(body) {
        Ok(s) if !base64 => (s.to_string(), "string"),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(body),
            "base64",
        ),
    };
    json!({
        "payload_bytes": msg.body.len(),
        "redelivered": entry.redelivered,
        "exchange": msg.exchange.as_str(),
        "routing_key": msg.routing_key.as_str(),
        "message_count": remaining,
        "properties": properties_json(&msg.properties),
        "payload": payload,
        "payload_encoding": encoding,
    })
}

/// The properties a message has, by their JSON names.
pub(super) fn properties_json(p: &BasicProperties) -> Value {
    let mut m = Map::new();
    let mut text = |k: &str, v: Option<&amq_protocol::types::ShortString>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v.as_str()));
        }
    };
    text("content_type", p.content_type().as_ref());
    text("content_encoding", p.content_encoding().as_ref());
    text("correlation_id", p.correlation_id().as_ref());
    text("reply_to", p.reply_to().as_ref());
    text("expiration", p.expiration().as_ref());
    text("message_id", p.message_id().as_ref());
    text("type", p.kind().as_ref());
    text("user_id", p.user_id().as_ref());
    text("app_id", p.app_id().as_ref());
    text("cluster_id", p.cluster_id().as_ref());
    if let Some(h) = p.headers() {
        m.insert("headers".into(), table_json(h));
    }
    if let Some(n) = p.delivery_mode() {
        m.insert("delivery_mode".into(), json!(n));
    }
    if let Some(n) = p.priority() {
        m.insert("priority".into(), json!(n));
    }
    if let Some(t) = p.timestamp() {
        m.insert("timestamp".into(), json!(t));
    }
    Value::Object(m)
}
