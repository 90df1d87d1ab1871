//! The x-consistent-hash exchange: each binding's key is its weight; a
//! message goes to the destination owning its point on a hash ring, so the
//! same routing key (or `hash-header` / `hash-property` value) always lands
//! on the same queue, and weights set each queue's share.

use super::Destination;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};

/// Ring points per unit of weight: smooths the shares without changing
/// which key goes where when other bindings stay.
const POINTS_PER_WEIGHT: u64 = 100;

fn hash(bytes: &[u8]) -> u64 {
    // FNV-1a, then a finaliser to spread nearby keys around the ring.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The weight in a binding key; RabbitMQ's complaint otherwise.
pub fn weight(key: &str) -> Result<u64, String> {
    key.parse::<u64>()
        .map_err(|_| format!("The binding key must be an integer: <<\"{key}\">>"))
}

/// Checks an x-consistent-hash exchange's arguments.
pub fn check_arguments(args: &FieldTable) -> Result<(), String> {
    if args.contains_key("hash-header") && args.contains_key("hash-property") {
        return Err("hash-header and hash-property are mutually exclusive".into());
    }
    Ok(())
}

fn dest_id(d: &Destination) -> String {
    match d {
        Destination::Queue(q) => format!("q:{}", q.name),
        Destination::Exchange(x) => format!("x:{}", x.name),
    }
}

/// The ring for a set of (destination, binding key) pairs.
pub fn ring<'a>(
    bindings: impl Iterator<Item = (&'a Destination, &'a str)>,
) -> Vec<(u64, Destination)> {
    let mut ring = Vec::new();
    for (d, key) in bindings {
        let w = weight(key).unwrap_or(0);
        let id = dest_id(d);
        for i in 0..w * POINTS_PER_WEIGHT {
            ring.push((hash(format!("{id}#{key}#{i}").as_bytes()), d.clone()));
        }
    }
    ring.sort_by_key(|(p, _)| *p);
    ring
}

/// What a message is hashed on, per the exchange's arguments.
pub fn hash_input(args: &FieldTable, key: &str, props: &BasicProperties) -> Option<Vec<u8>> {
    let text = |v: &AMQPValue| -> Option<Vec<u8>> {
        Some(match v {
            AMQPValue::LongString(s) => s.as_bytes().to_vec(),
            AMQPValue::ShortString(s) => s.as_str().as_bytes().to_vec(),
            other => format!("{other:?}").into_bytes(),
        })
    };
    if let Some(h) = args.inner().get("hash-header").and_then(text) {
        let name = String::from_utf8_lossy(&h).into_owned();
        return props
            .headers()
            .as_ref()?
            .inner()
            .get(name.as_str())
            .and_then(text);
    }
    if let Some(p) = args.inner().get("hash-property").and_then(text) {
        return match &p[..] {
            b"message_id" => props
                .message_id()
                .as_ref()
                .map(|s| s.as_str().as_bytes().to_vec()),
            b"correlation_id" => props
                .correlation_id()
                .as_ref()
                .map(|s| s.as_str().as_bytes().to_vec()),
            b"timestamp" => props.timestamp().map(|t| t.to_string().into_bytes()),
            _ => None,
        };
    }
    Some(key.as_bytes().to_vec())
}

pub fn pick<'a>(ring: &'a [(u64, Destination)], input: &[u8]) -> Option<&'a Destination> {
    if ring.is_empty() {
        return None;
    }
    let h = hash(input);
    let i = ring.partition_point(|(p, _)| *p < h) % ring.len();
    Some(&ring[i].1)
}
