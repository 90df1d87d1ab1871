//! A published message, shared by `Arc` between every queue it was routed to.
//! The body is `Bytes` (never copied per queue) and the content header is
//! kept as received, so a delivery repeats it byte for byte without
//! re-encoding.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub properties: BasicProperties,
    /// Content header payload: class, weight, body size, property flags and list.
    pub header_raw: Bytes,
    pub body: Bytes,
    /// Counts this message in `held_bytes` while it lives.
    _held: Held,
}

/// Bytes of message data held in memory broker-wide: every live `Message`
/// (ready, unacked, being delivered), for the memory alarm. A message paged
/// to disk is dropped from memory and stops counting.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// What a message costs in memory besides its body and header.
const OVERHEAD: usize = 256;

pub fn held_bytes() -> usize {
    HELD.load(Ordering::Relaxed)
}

#[derive(Debug)]
struct Held(usize);

impl Held {
    fn new(n: usize) -> Held {
        HELD.fetch_add(n, Ordering::Relaxed);
        Held(n)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0, Ordering::Relaxed);
    }
}

impl Message {
    pub fn new(
        exchange: ShortString,
        routing_key: ShortString,
        properties: BasicProperties,
        header_raw: Bytes,
        body: Bytes,
    ) -> Message {
        let held = Held::new(body.len() + header_raw.len() + OVERHEAD);
        Message {
            exchange,
            routing_key,
            properties,
            header_raw,
            body,
            _held: held,
        }
    }

    pub fn body_size(&self) -> usize {
        self.body.len()
    }

    /// A copy carrying `x-delivery-count` (how often it came back), as
    /// queues with a delivery limit show it to consumers.
    pub fn with_delivery_count(&self, count: u32) -> Message {
        let mut headers = self.properties.headers().clone().unwrap_or_default();
        headers.insert(
            "x-delivery-count".into(),
            amq_protocol::types::AMQPValue::LongLongInt(count as i64),
        );
        let properties = self.properties.clone().with_headers(headers);
        let header_raw = encode_header(&properties, self.body.len() as u64);
        Message::new(
            self.exchange.clone(),
            self.routing_key.clone(),
            properties,
            header_raw,
            self.body.clone(),
        )
    }

    /// delivery_mode 2 asks the broker to keep the message across restarts.
    pub fn is_persistent(&self) -> bool {
        matches!(self.properties.delivery_mode(), Some(2))
    }
}

/// A content header payload (class, weight, size, properties) as
/// amq-protocol encodes it, for messages whose properties the broker changes.
pub fn encode_header(props: &BasicProperties, body_size: u64) -> Bytes {
    let frame = AMQPFrame::Header(
        0,
        AMQPContentHeader {
            class_id: 60,
            body_size,
            properties: props.clone(),
        },
    );
    match gen_frame(&frame)(WriteContext::from(Vec::new())) {
        Ok(ctx) => {
            let v = ctx.into_inner().0;
            Bytes::copy_from_slice(&v[7..v.len() - 1])
        }
        Err(e) => {
            tracing::error!("cannot encode a content header: {e:?}");
            Bytes::new()
        }
    }
}
