//! A published message, shared by `Arc` between every queue it was routed to.
//! The body is `Bytes` (never copied per queue) and the content header is
//! kept as received, so a delivery repeats it byte for byte without
//! re-encoding.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Debug)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub properties: BasicProperties,
    /// Content header payload: class, weight, body size, property flags and list.
    pub header_raw: Bytes,
    pub body: Bytes,
    /// Sender-selected distribution: the CC and BCC keys it is routed with
    /// as well as `routing_key`. Boxed: almost no message has any, and the
    /// rest should not pay for them in size.
    pub(crate) cc: Option<Box<crate::cc::CcKeys>>,
    /// Counts this message in its broker's `Meter` while it lives.
    _held: Held,
}

/// What a message costs in memory besides its body and header.
const OVERHEAD: usize = 256;

/// Bytes of message data one broker holds in memory: every live `Message`
/// (ready, unacked, being delivered), for its memory alarm. A message paged
/// to disk is dropped from memory and stops counting. Each broker has its
/// own, so brokers in one process do not block each other. It also carries
/// the broker's paging signal: above the paging watermark every queue keeps
/// new messages on disk, whatever room its own window has left.
#[derive(Clone, Copy, Debug)]
pub struct Meter(&'static MeterState);

#[derive(Debug)]
struct MeterState {
    held: AtomicUsize,
    paging: AtomicBool,
    /// Held bytes past which queues page whatever the alarm's last check
    /// said (it checks every few ms; a fast publisher is faster).
    page_above: AtomicUsize,
}

impl Default for MeterState {
    fn default() -> Self {
        MeterState {
            held: AtomicUsize::new(0),
            paging: AtomicBool::new(false),
            page_above: AtomicUsize::new(usize::MAX),
        }
    }
}

impl Meter {
    /// A new meter. It lives as long as the process (two words per broker
    /// started), so a message holds a plain reference: no reference count
    /// to touch per message.
    pub fn new() -> Meter {
        Meter(Box::leak(Box::default()))
    }

    pub fn held(&self) -> usize {
        self.0.held.load(Ordering::Relaxed)
    }

    /// Whether queues are to page every new message (memory is short).
    pub fn paging(&self) -> bool {
        self.0.paging.load(Ordering::Relaxed)
            || self.held() > self.0.page_above.load(Ordering::Relaxed)
    }

    /// Page whenever more than `bytes` of message data is held.
    pub fn page_above(&self, bytes: usize) {
        self.0.page_above.store(bytes, Ordering::Relaxed);
    }

    pub fn set_paging(&self, on: bool) {
        self.0.paging.store(on, Ordering::Relaxed);
    }
}

impl Default for Meter {
    fn default() -> Self {
        Meter::new()
    }
}

#[derive(Debug)]
struct Held(Meter, usize);

impl Held {
    fn new(meter: Meter, n: usize) -> Held {
        meter.0.held.fetch_add(n, Ordering::Relaxed);
        Held(meter, n)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.0.held.fetch_sub(self.1, Ordering::Relaxed);
    }
}

impl Message {
    pub fn new(
        exchange: ShortString,
        routing_key: ShortString,
        properties: BasicProperties,
        header_raw: Bytes,
        body: Bytes,
        meter: Meter,
    ) -> Message {
        let held = Held::new(meter, body.len() + header_raw.len() + OVERHEAD);
        Message {
            exchange,
            routing_key,
            properties,
            header_raw,
            body,
            cc: None,
            _held: held,
        }
    }

    /// Every key it was published with: its routing key, then CC and BCC.
    pub fn routing_keys(&self) -> impl Iterator<Item = &str> + Clone {
        let cc = self
            .cc
            .iter()
            .flat_map(|c| c.keys.iter().map(|k| k.as_str()));
        std::iter::once(self.routing_key.as_str()).chain(cc)
    }

    /// The meter it counts in (its broker's).
    pub fn meter(&self) -> Meter {
        self._held.0
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
        let mut m = Message::new(
            self.exchange.clone(),
            self.routing_key.clone(),
            properties,
            header_raw,
            self.body.clone(),
            self._held.0,
        );
        m.cc = self.cc.clone();
        m
    }

    /// A copy whose header and body are its own, not slices of a buffer
    /// they were read from (see `store::record::decode_publish`).
    pub fn unshared(&self) -> Message {
        let mut raw = bytes::BytesMut::with_capacity(self.header_raw.len() + self.body.len());
        raw.extend_from_slice(&self.header_raw);
        raw.extend_from_slice(&self.body);
        let mut raw = raw.freeze();
        let body = raw.split_off(self.header_raw.len());
        let mut m = Message::new(
            self.exchange.clone(),
            self.routing_key.clone(),
            self.properties.clone(),
            raw,
            body,
            self._held.0,
        );
        m.cc = self.cc.clone();
        m
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

/// RabbitMQ's largest per-message expiration: ten years, in ms.
const MAX_EXPIRATION: i128 = 315_360_000_000;

/// A per-message `expiration` in ms, read as RabbitMQ reads it (Erlang's
/// `string:to_integer`); the error is the term RabbitMQ puts in its 406 text.
pub fn parse_expiration(s: &str) -> Result<u64, String> {
    let b = s.as_bytes();
    let sign = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = b[sign..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Err("no_integer".into());
    }
    let (num, rest) = s.split_at(sign + digits);
    if !rest.is_empty() {
        return Err(format!("{{leftover_string,\"{rest}\"}}"));
    }
    // Digits only, so this fails only on numbers beyond i128.
    let n: i128 = num.trim_start_matches('+').parse().unwrap_or(i128::MAX);
    if n < 0 {
        Err(format!("{{value_negative,{n}}}"))
    } else if n > MAX_EXPIRATION {
        Err(format!("{{value_too_large,{n}}}"))
    } else {
        Ok(n as u64)
    }
}

/// Basic.Publish refuses a message whose expiration RabbitMQ would not parse.
pub fn check_expiration(props: &BasicProperties) -> Result<(), crate::error::AmqpError> {
    match props.expiration() {
        Some(e) => parse_expiration(e.as_str()).map(|_| ()).map_err(|why| {
            crate::error::AmqpError::precondition_failed(format!(
                "invalid expiration '{}': {why}",
                e.as_str()
            ))
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_expiration;

    #[test]
    fn expiration_parses_as_rabbitmq_does() {
        assert_eq!(parse_expiration("0"), Ok(0));
        assert_eq!(parse_expiration("+5"), Ok(5));
        assert_eq!(parse_expiration("60000"), Ok(60000));
        assert_eq!(parse_expiration("abc").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration("").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration("-").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration("-1").unwrap_err(), "{value_negative,-1}");
        assert_eq!(
            parse_expiration("10abc").unwrap_err(),
            "{leftover_string,\"abc\"}"
        );
        assert_eq!(parse_expiration("00012"), Ok(12));
        assert_eq!(parse_expiration("315360000000"), Ok(315_360_000_000));
        assert_eq!(
            parse_expiration("315360000001").unwrap_err(),
            "{value_too_large,315360000001}"
        );
        assert_eq!(parse_expiration(" 5").unwrap_err(), "no_integer");
        assert_eq!(
            parse_expiration("1.5").unwrap_err(),
            "{leftover_string,\".5\"}"
        );
    }
}
