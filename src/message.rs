//! A published message, shared by `Arc` between every queue it was routed to.
//! The body is `Bytes` (never copied per queue) and the content header is
//! kept as received, so a delivery repeats it byte for byte without
//! re-encoding.

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
