//! A publish record's payload: `[seq][expires][exchange][routing key]
//! [header len][content header][body]`, as written to a queue log and read
//! back on delivery or at recovery.

use crate::codec::ContentHeader;
use crate::message::{Message, Meter};
use amq_protocol::frame::parsing::parse_content_header;
use bytes::Bytes;

pub(crate) fn encode_publish(seq: u64, expires: u64, m: &Message, out: &mut Vec<u8>) {
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&expires.to_be_bytes());
    for s in [m.exchange.as_str(), m.routing_key.as_str()] {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&(m.header_raw.len() as u32).to_be_bytes());
    out.extend_from_slice(&m.header_raw);
    out.extend_from_slice(&m.body);
}

/// The priority property of a stored publish record, read without decoding
/// the whole content header (recovery sees every record; most queues never
/// need more). Property flags, high bit first: content-type,
/// content-encoding, headers, delivery-mode, priority.
pub(crate) fn stored_priority(p: &[u8]) -> Option<u8> {
    let mut off = 16;
    for _ in 0..2 {
        off += 1 + *p.get(off)? as usize;
    }
    off += 4; // header length
    // class-id, weight, body-size, then the flags.
    let flags = u16::from_be_bytes(p.get(off + 12..off + 14)?.try_into().ok()?);
    if flags & 0x0800 == 0 {
        return None;
    }
    let mut at = off + 14;
    for bit in [0x8000u16, 0x4000] {
        if flags & bit != 0 {
            at += 1 + *p.get(at)? as usize;
        }
    }
    if flags & 0x2000 != 0 {
        at += 4 + u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize;
    }
    if flags & 0x1000 != 0 {
        at += 1;
    }
    p.get(at).copied()
}

/// A publish record's message. With `share` its header and body are slices
/// of `p`'s buffer, for a message that is about to be written to a socket
/// and dropped; otherwise a copy, for one that may stay in memory (a
/// slice would keep the whole read-ahead buffer alive with it).
pub(crate) fn decode_publish(p: &Bytes, share: bool, meter: Meter) -> Option<(u64, Message)> {
    let seq = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let mut off = 16;
    let mut short = || -> Option<String> {
        let n = *p.get(off)? as usize;
        let s = std::str::from_utf8(p.get(off + 1..off + 1 + n)?)
            .ok()?
            .to_string();
        off += 1 + n;
        Some(s)
    };
    let exchange = short()?;
    let routing_key = short()?;
    let hlen = u32::from_be_bytes(p.get(off..off + 4)?.try_into().ok()?) as usize;
    off += 4;
    if p.len() < off + hlen {
        return None;
    }
    // Header and body in one allocation when copied: a paged backlog is
    // read back a message at a time, and each malloc shows.
    let mut body = match share {
        true => p.slice(off..),
        false => Bytes::copy_from_slice(&p[off..]),
    };
    let header_raw = body.split_to(hlen);
    let (_, h) = parse_content_header(&header_raw[..]).ok()?;
    let header = ContentHeader {
        class_id: h.class_id,
        body_size: h.body_size,
        properties: h.properties,
        raw: header_raw,
    };
    Some((
        seq,
        Message::new(
            exchange.into(),
            routing_key.into(),
            header.properties,
            header.raw,
            body,
            meter,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::{AMQPValue, FieldTable};

    fn record(props: BasicProperties) -> Vec<u8> {
        let m = Message::new(
            "x".into(),
            "key".into(),
            props.clone(),
            crate::message::encode_header(&props, 3),
            Bytes::from_static(b"abc"),
            Meter::new(),
        );
        let mut out = Vec::new();
        encode_publish(9, 0, &m, &mut out);
        out
    }

    #[test]
    fn priority_is_read_from_a_stored_record() {
        let mut h = FieldTable::default();
        h.insert("k".into(), AMQPValue::LongString("v".into()));
        let full = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_content_encoding("gzip".into())
            .with_headers(h)
            .with_delivery_mode(2)
            .with_priority(7)
            .with_message_id("id".into());
        assert_eq!(stored_priority(&record(full)), Some(7));
        let only = BasicProperties::default().with_priority(3);
        assert_eq!(stored_priority(&record(only)), Some(3));
        let none = BasicProperties::default().with_delivery_mode(2);
        assert_eq!(stored_priority(&record(none)), None);
    }

    #[test]
    fn a_shared_decode_slices_the_record_and_a_copy_does_not() {
        let p = Bytes::from(record(BasicProperties::default()));
        let within = |b: &Bytes| {
            let (lo, hi) = (p.as_ptr() as usize, p.as_ptr() as usize + p.len());
            (lo..hi).contains(&(b.as_ptr() as usize))
        };
        let (seq, shared) = decode_publish(&p, true, Meter::new()).expect("shared");
        assert_eq!(seq, 9);
        assert_eq!(&shared.body[..], b"abc");
        assert!(within(&shared.body) && within(&shared.header_raw));
        let (_, copied) = decode_publish(&p, false, Meter::new()).expect("copied");
        assert_eq!(&copied.body[..], b"abc");
        assert_eq!(copied.header_raw, shared.header_raw);
        assert!(!within(&copied.body) && !within(&copied.header_raw));
        let own = shared.unshared();
        assert_eq!(
            (&own.body[..], &own.header_raw),
            (&b"abc"[..], &shared.header_raw)
        );
        assert!(!within(&own.body) && !within(&own.header_raw));
    }
}
