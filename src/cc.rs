//! Sender-selected distribution (RabbitMQ's CC and BCC headers): a message
//! is routed with every key its CC and BCC arrays carry as well as its
//! routing key, on the same exchange; BCC never reaches a consumer.

use crate::message::encode_header;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use bytes::Bytes;

const CC: &str = "CC";
const BCC: &str = "BCC";

/// The keys of a header that is an array: its longstr elements (others
/// are skipped, as RabbitMQ skips them).
fn keys_of(v: Option<&AMQPValue>, out: &mut Vec<ShortString>) {
    if let Some(AMQPValue::FieldArray(a)) = v {
        for e in a.as_slice() {
            if let AMQPValue::LongString(s) = e
                && let Ok(k) = std::str::from_utf8(s.as_bytes())
                && k.len() <= 255
            {
                out.push(k.into());
            }
        }
    }
}

/// The CC header's keys alone (what a stored message still carries).
pub(crate) fn cc_keys(props: &BasicProperties) -> Vec<ShortString> {
    let mut out = Vec::new();
    if let Some(h) = props.headers() {
        keys_of(h.inner().get(CC), &mut out);
    }
    out
}

/// The CC and BCC keys of a message being published, and, when it has a
/// BCC header, its properties and content header without it.
pub(crate) fn split(
    props: &BasicProperties,
    body_size: u64,
) -> (Vec<ShortString>, Option<(BasicProperties, Bytes)>) {
    let Some(h) = props.headers() else {
        return (Vec::new(), None);
    };
    let mut keys = Vec::new();
    keys_of(h.inner().get(CC), &mut keys);
    let Some(bcc) = h.inner().get(BCC) else {
        return (keys, None);
    };
    keys_of(Some(bcc), &mut keys);
    let props = props.clone().with_headers(without(h, BCC));
    let raw = encode_header(&props, body_size);
    (keys, Some((props, raw)))
}

/// Headers without CC (a dead letter given its own routing key loses it,
/// as in RabbitMQ).
pub(crate) fn strip_cc(h: &FieldTable) -> FieldTable {
    without(h, CC)
}

fn without(h: &FieldTable, key: &str) -> FieldTable {
    let mut m = h.inner().clone();
    m.remove(key);
    FieldTable::from(m)
}
