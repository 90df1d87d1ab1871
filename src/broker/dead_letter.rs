//! Dead-lettering: a message a queue lets go of (rejected without requeue,
//! expired, dropped or refused for max-length) is republished to the queue's
//! x-dead-letter-exchange with the `x-death` history RabbitMQ keeps, unless
//! that would loop without a consumer ever rejecting it (RabbitMQ's cycle rule).

use super::Vhost;
use crate::exchange::Routed;
use crate::message::Message;
use crate::queue::{Dead, DeathReason, Queue};
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use std::sync::Arc;

impl Vhost {
    /// Dead-letter what `queue` let go of, per its x-dead-letter-* arguments.
    pub fn dead_letter(&self, queue: &Queue, dead: Dead) {
        let Dead(dead) = dead;
        if dead.is_empty() {
            return;
        }
        let args = queue.args();
        let Some(dlx_name) = args.dead_letter_exchange.as_deref() else {
            return;
        };
        let Ok(dlx) = self.exchange(dlx_name) else {
            tracing::warn!(
                "queue '{}': dead-letter exchange '{dlx_name}' does not exist; {} messages dropped",
                queue.name,
                dead.len()
            );
            return;
        };
        let mut routed = Routed::default();
        let mut remote = Vec::new();
        for d in dead {
            let own_key = args.dead_letter_routing_key.as_deref();
            let msg = Arc::new(with_death(&d.msg, queue, d.reason, dlx_name, own_key));
            self.route(&dlx, &msg, &mut routed);
            for target in routed.queues.drain(..) {
                if is_cycle(&msg, &target) {
                    tracing::debug!(
                        "dead-letter cycle to queue '{}' detected; dropped",
                        target.name
                    );
                    continue;
                }
                if target.through_cluster() {
                    remote.push(target);
                    continue;
                }
                let (_, overflow) = target.publish(msg.clone());
                self.dead_letter(&target, overflow);
            }
            for dx in routed.delayed.drain(..) {
                let _ = self.hold_delayed(&dx, &msg);
            }
            if !remote.is_empty() {
                self.forward_later(&msg, std::mem::take(&mut remote));
            }
        }
    }
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes()))
}

fn field<'a>(t: &'a FieldTable, k: &str) -> Option<&'a AMQPValue> {
    t.inner().get(k)
}

fn is_text(v: Option<&AMQPValue>, want: &str) -> bool {
    match v {
        Some(AMQPValue::LongString(s)) => s.as_bytes() == want.as_bytes(),
        Some(AMQPValue::ShortString(s)) => s.as_str() == want,
        _ => false,
    }
}

fn deaths(props: &BasicProperties) -> Vec<AMQPValue> {
    match props.headers().as_ref().and_then(|h| field(h, "x-death")) {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        _ => Vec::new(),
    }
}

/// The message has died in `target` before and no consumer rejected it
/// anywhere on the way: republishing there would loop forever.
fn is_cycle(msg: &Message, target: &Queue) -> bool {
    let d = deaths(&msg.properties);
    let tables = d.iter().filter_map(|v| match v {
        AMQPValue::FieldTable(t) => Some(t),
        _ => None,
    });
    let mut seen_target = false;
    for t in tables {
        if is_text(field(t, "reason"), "rejected") {
            return false;
        }
        seen_target |= is_text(field(t, "queue"), target.name.as_str());
    }
    seen_target
}

/// The dead letter: `msg` with its death recorded, routed with `own_key`
/// (x-dead-letter-routing-key, which drops the CC header) or else with every
/// key it was published with.
fn with_death(
    msg: &Message,
    queue: &Queue,
    reason: DeathReason,
    dlx: &str,
    own_key: Option<&str>,
) -> Message {
    // A message recovered from disk has its CC keys in its header only.
    let cc = match &msg.cc {
        Some(c) => Some(c.clone()),
        None => crate::cc::CcKeys::from_header(&msg.properties),
    };
    let mut deaths = deaths(&msg.properties);
    let same = deaths.iter().position(|v| match v {
        AMQPValue::FieldTable(t) => {
            is_text(field(t, "queue"), queue.name.as_str())
                && is_text(field(t, "reason"), reason.as_str())
        }
        _ => false,
    });
    let now = AMQPValue::Timestamp(crate::clock::system_now_ms() / 1000);
    let entry = match same.map(|i| deaths.remove(i)) {
        Some(AMQPValue::FieldTable(mut t)) => {
            let count = match field(&t, "count") {
                Some(AMQPValue::LongLongInt(n)) => *n + 1,
                _ => 1,
            };
            t.insert("count".into(), AMQPValue::LongLongInt(count));
            t.insert("time".into(), now);
            t
        }
        _ => {
            let mut t = FieldTable::default();
            t.insert("count".into(), AMQPValue::LongLongInt(1));
            t.insert("reason".into(), text(reason.as_str()));
            t.insert("queue".into(), text(queue.name.as_str()));
            t.insert("time".into(), now);
            t.insert("exchange".into(), text(msg.exchange.as_str()));
            // RabbitMQ lists the routing key and CC's keys, not BCC's.
            let visible = cc.iter().flat_map(|c| c.keys[..c.visible].iter());
            let keys = std::iter::once(msg.routing_key.as_str()).chain(visible.map(|k| k.as_str()));
            t.insert(
                "routing-keys".into(),
                AMQPValue::FieldArray(FieldArray::from(keys.map(text).collect::<Vec<_>>())),
            );
            if let Some(e) = msg.properties.expiration() {
                t.insert("original-expiration".into(), text(e.as_str()));
            }
            t
        }
    };
    deaths.insert(0, AMQPValue::FieldTable(entry));
    let mut headers = msg.properties.headers().clone().unwrap_or_default();
    headers.insert(
        "x-death".into(),
        AMQPValue::FieldArray(FieldArray::from(deaths)),
    );
    if !headers.contains_key("x-first-death-reason") {
        headers.insert("x-first-death-exchange".into(), text(msg.exchange.as_str()));
        headers.insert("x-first-death-queue".into(), text(queue.name.as_str()));
        headers.insert("x-first-death-reason".into(), text(reason.as_str()));
    }
    let (key, cc) = match own_key {
        Some(k) => {
            headers = crate::cc::strip_cc(&headers);
            (k, None)
        }
        None => (msg.routing_key.as_str(), cc),
    };
    // The expiration moves into x-death: the dead letter must not expire again for it.
    let properties = rebuild(&msg.properties, headers);
    let header_raw = crate::message::encode_header(&properties, msg.body.len() as u64);
    let mut m = Message::new(
        dlx.into(),
        key.into(),
        properties,
        header_raw,
        msg.body.clone(),
        msg.meter(),
    );
    m.cc = cc;
    m
}

/// The same properties with new headers and without expiration.
fn rebuild(p: &BasicProperties, headers: FieldTable) -> BasicProperties {
    let mut n = BasicProperties::default().with_headers(headers);
    if let Some(v) = p.content_type() {
        n = n.with_content_type(v.clone());
    }
    if let Some(v) = p.content_encoding() {
        n = n.with_content_encoding(v.clone());
    }
    if let Some(v) = p.delivery_mode() {
        n = n.with_delivery_mode(*v);
    }
    if let Some(v) = p.priority() {
        n = n.with_priority(*v);
    }
    if let Some(v) = p.correlation_id() {
        n = n.with_correlation_id(v.clone());
    }
    if let Some(v) = p.reply_to() {
        n = n.with_reply_to(v.clone());
    }
    if let Some(v) = p.message_id() {
        n = n.with_message_id(v.clone());
    }
    if let Some(v) = p.timestamp() {
        n = n.with_timestamp(*v);
    }
    if let Some(v) = p.kind() {
        n = n.with_type(v.clone());
    }
    if let Some(v) = p.user_id() {
        n = n.with_user_id(v.clone());
    }
    if let Some(v) = p.app_id() {
        n = n.with_app_id(v.clone());
    }
    if let Some(v) = p.cluster_id() {
        n = n.with_cluster_id(v.clone());
    }
    n
}
