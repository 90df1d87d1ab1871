//! A published message, shared by `Arc` between every queue it was routed to.
//! The body is `Bytes` (never copied per queue) and the content header is
//! kept as received, so a delivery repeats it byte for byte without
//! re-encoding.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use bytes::Bytes;

#[derive(Debug)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub properties: BasicProperties,
    /// Content header payload: class, weight, body size, property flags and list.
    pub header_raw: Bytes,
    pub body: Bytes,
}

impl Message {
    pub fn body_size(&self) -> usize {
        self.body.len()
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
