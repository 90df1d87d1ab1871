//! Sender-selected distribution (RabbitMQ's CC and BCC headers): a message
//! is routed with every key its CC and BCC arrays carry as well as its
//! routing key, on the same exchange; BCC never reaches a consumer.

use crate::error::{AmqpError, AmqpResult};
use crate::message::encode_header;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use bytes::Bytes;

const CC: &str = "CC";
const BCC: &str = "BCC";

/// The keys of a CC or BCC header: the longstr elements of its array
/// (others are skipped, as RabbitMQ skips them). Any other type of value
/// makes the message invalid, RabbitMQ's 406 naming the type its way.
fn keys_of(name: &str, v: Option<&AMQPValue>, out: &mut Vec<ShortString>) -> AmqpResult<()> {
    let a = match v {
        None => return Ok(()),
        Some(AMQPValue::FieldArray(a)) => a,
        Some(other) => {
            return Err(AmqpError::precondition_failed(format!(
                "invalid message: {{unacceptable_type_in_header,\"{name}\",{}}}",
                rabbit_type(other)
            )));
        }
    };
    for e in a.as_slice() {
        if let AMQPValue::LongString(s) = e
            && let Ok(k) = std::str::from_utf8(s.as_bytes())
            && k.len() <= 255
        {
            out.push(k.into());
        }
    }
    Ok(())
}

/// A field value's type as RabbitMQ's table parser names it.
fn rabbit_type(v: &AMQPValue) -> &'static str {
    match v {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) | AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

/// A message's extra routing keys.
#[derive(Clone, Debug)]
pub(crate) struct CcKeys {
    /// CC's keys, then BCC's.
    pub keys: Vec<ShortString>,
    /// How many of `keys` are CC's (x-death lists those, not BCC's).
    pub visible: usize,
}

impl CcKeys {
    fn boxed(keys: Vec<ShortString>, visible: usize) -> Option<Box<CcKeys>> {
        (!keys.is_empty()).then(|| Box::new(CcKeys { keys, visible }))
    }

    /// The CC header's keys alone (what a message recovered from disk
    /// still carries: its BCC header was stripped before it was stored).
    pub fn from_header(props: &BasicProperties) -> Option<Box<CcKeys>> {
        let mut keys = Vec::new();
        if let Some(h) = props.headers() {
            let _ = keys_of(CC, h.inner().get(CC), &mut keys);
        }
        let n = keys.len();
        Self::boxed(keys, n)
    }
}

/// What sender-selected distribution makes of a message being published.
pub(crate) struct Split {
    pub cc: Option<Box<CcKeys>>,
    /// With a BCC header: the properties and content header without it.
    pub without_bcc: Option<(BasicProperties, Bytes)>,
}

/// The CC and BCC keys of a message being published, and, when it has a
/// BCC header, its properties and content header without it.
pub(crate) fn split(props: &BasicProperties, body_size: u64) -> AmqpResult<Split> {
    let mut out = Split {
        cc: None,
        without_bcc: None,
    };
    let Some(h) = props.headers() else {
        return Ok(out);
    };
    let mut keys = Vec::new();
    keys_of(CC, h.inner().get(CC), &mut keys)?;
    let visible = keys.len();
    if let Some(bcc) = h.inner().get(BCC) {
        keys_of(BCC, Some(bcc), &mut keys)?;
        let props = props.clone().with_headers(without(h, BCC));
        let raw = encode_header(&props, body_size);
        out.without_bcc = Some((props, raw));
    }
    out.cc = CcKeys::boxed(keys, visible);
    Ok(out)
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
