//! `POST /api/exchanges/{vhost}/{exchange}/publish`: publish one message
//! over HTTP, checked as Basic.Publish is (write permission, internal
//! exchanges, topic permissions, user_id, expiration, CC/BCC) and routed the
//! same way. It answers `{"routed": bool}` once a persistent message is on
//! disk, as a publisher confirm would.

use super::bindings::exchange_name;
use super::{ApiError, ApiResult, User, body, grant, vhost_for};
use crate::access::permission::{Kind, Perm};
use crate::broker::Broker;
use crate::error::AmqpError;
use crate::exchange::{ExchangeKind, Routed};
use crate::message::{Message, encode_header};
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Broker>> {
    Router::new().route("/api/exchanges/{vhost}/{name}/publish", post(publish))
}

/// An AMQP refusal as RabbitMQ's API reports a failed publish: 400 with
/// the channel's close text, `404 NOT_FOUND - no exchange ...`.
fn refused(e: AmqpError) -> ApiError {
    ApiError::bad_request(format!("{} {}", e.code as u16, e.reply_text()))
}

async fn publish(
    State(b): State<Arc<Broker>>,
    Extension(u): Extension<User>,
    Path((vhost, name)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let v = vhost_for(&b, &u, &vhost)?;
    let name = exchange_name(name);
    let m = body::object(&raw)?;
    body::require(
        &m,
        &["routing_key", "properties", "payload", "payload_encoding"],
    )?;
    let routing_key = body::text(&m, "routing_key").unwrap_or_default();
    if routing_key.len() > 255 {
        return Err(ApiError::bad_value("too_long", "routing_key"));
    }
    let payload = payload(&m)?;
    let properties = properties(m.get("properties"))?;
    let g = grant(&b, &u, &vhost);
    if let Some(g) = &g {
        g.check_resource_access(Kind::Exchange, &name, Perm::Write)
            .map_err(refused)?;
    }
    let x = v.exchange(&name).map_err(refused)?;
    if x.internal {
        return Err(refused(AmqpError::access_refused(format!(
            "cannot publish to internal exchange '{name}' in vhost '{vhost}'"
        ))));
    }
    if let Some(claimed) = properties.user_id()
        && g.as_ref().is_some_and(|g| claimed.as_str() != g.user)
        && !u.0.may_impersonate()
    {
        return Err(refused(AmqpError::precondition_failed(format!(
            "user_id property set to '{claimed}' but authenticated user was '{}'",
            u.0.name
        ))));
    }
    crate::message::check_expiration(&properties).map_err(refused)?;
    let size = payload.len() as u64;
    let split = crate::cc::split(&properties, size).map_err(refused)?;
    if let Some(g) = &g
        && x.kind == ExchangeKind::Topic
        && let Some(p) = g.topic_pattern(&name, Perm::Write)
    {
        let cc = split.cc.iter().flat_map(|c| c.keys.iter());
        for key in std::iter::once(&ShortString::from(routing_key.clone())).chain(cc) {
            g.check_topic_access(&p, &name, key.as_str())
                .map_err(refused)?;
        }
    }
    let (properties, header) = match split.without_bcc {
        Some(p) => p,
        None => {
            let raw = encode_header(&properties, size);
            (properties, raw)
        }
    };
    let mut msg = Message::new(
        name.as_str().into(),
        routing_key.as_str().into(),
        properties,
        header,
        payload,
        v.meter(),
    );
    msg.cc = split.cc;
    let msg = Arc::new(msg);
    let mut routed = Routed::default();
    let done = v.enqueue(&x, &msg, &mut routed);
    if !routed.remote.is_empty() && !v.forward(&msg, std::mem::take(&mut routed.remote)).await {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the message could not reach its queues' node",
        ));
    }
    x.stats.add(1, done.queues as u64);
    wait_until_synced(&b, done.ticket).await;
    Ok(Json(json!({ "routed": done.delivered })))
}

/// Hold the answer until the store has synced `ticket`: what "routed"
/// promises is then on disk.
async fn wait_until_synced(b: &Broker, ticket: u64) {
    if ticket == 0 {
        return;
    }
    let (sink, mut rx) = crate::queue::inbox::Sink::new();
    if b.store.sync.notify_when_synced(ticket, &sink) {
        let mut events = Vec::new();
        rx.recv_many(&mut events).await;
    }
}

/// The payload, decoded as `payload_encoding` says: "string" or "base64".
fn payload(m: &body::Object) -> ApiResult<Bytes> {
    let text = body::text(m, "payload").unwrap_or_default();
    match body::text(m, "payload_encoding").as_deref() {
        Some("string") => Ok(Bytes::from(text)),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(|_| ApiError::bad_value("not_base64", text)),
        other => Err(ApiError::bad_value(
            "unsupported_encoding",
            other.unwrap_or_default(),
        )),
    }
}

/// Message properties from their JSON names; unknown ones are ignored, as
/// RabbitMQ ignores them.
fn properties(v: Option<&Value>) -> ApiResult<BasicProperties> {
    let mut p = BasicProperties::default();
    let Some(Value::Object(m)) = v else {
        return Ok(p);
    };
    let short = |key: &str| -> ApiResult<Option<ShortString>> {
        match body::text(m, key) {
            Some(s) if s.len() > 255 => Err(ApiError::bad_value("too_long", key)),
            s => Ok(s.map(ShortString::from)),
        }
    };
    let small = |key: &str| -> ApiResult<Option<u8>> {
        match m.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| ApiError::bad_value("not_int", key)),
        }
    };
    if let Some(s) = short("content_type")? {
        p = p.with_content_type(s);
    }
    if let Some(s) = short("content_encoding")? {
        p = p.with_content_encoding(s);
    }
    if let Some(h @ Value::Object(_)) = m.get("headers") {
        p = p.with_headers(crate::broker::policy::json_table(h));
    }
    if let Some(n) = small("delivery_mode")? {
        p = p.with_delivery_mode(n);
    }
    if let Some(n) = small("priority")? {
        p = p.with_priority(n);
    }
    if let Some(s) = short("correlation_id")? {
        p = p.with_correlation_id(s);
    }
    if let Some(s) = short("reply_to")? {
        p = p.with_reply_to(s);
    }
    if let Some(s) = short("expiration")? {
        p = p.with_expiration(s);
    }
    if let Some(s) = short("message_id")? {
        p = p.with_message_id(s);
    }
    if let Some(t) = m.get("timestamp") {
        let t = t
            .as_u64()
            .ok_or_else(|| ApiError::bad_value("not_int", "timestamp"))?;
        p = p.with_timestamp(t);
    }
    if let Some(s) = short("type")? {
        p = p.with_type(s);
    }
    if let Some(s) = short("user_id")? {
        p = p.with_user_id(s);
    }
    if let Some(s) = short("app_id")? {
        p = p.with_app_id(s);
    }
    if let Some(s) = short("cluster_id")? {
        p = p.with_cluster_id(s);
    }
    Ok(p)
}
