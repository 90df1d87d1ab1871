//! Server-generated names (`amq.gen-…` queues, `amq.ctag-…` consumer tags),
//! shaped like RabbitMQ's: a prefix and 22 URL-safe base64 characters.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn random_u64() -> u64 {
    // RandomState is seeded from the OS per instance; mixing in a counter
    // keeps successive values distinct even if seeds repeat.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

pub fn generate(prefix: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::with_capacity(prefix.len() + 22);
    s.push_str(prefix);
    let (mut a, mut b) = (random_u64(), random_u64());
    for i in 0..22 {
        let src = if i < 11 { &mut a } else { &mut b };
        s.push(ALPHABET[(*src & 63) as usize] as char);
        *src >>= 6;
    }
    s
}

pub fn queue_name() -> String {
    generate("amq.gen-")
}

pub fn consumer_tag() -> String {
    generate("amq.ctag-")
}

/// Names and keys are AMQP short strings: at most 255 bytes. AMQP cannot
/// carry a longer one, but HTTP and definitions files can; refused with
/// RabbitMQ's text.
pub fn check_length(what: &str, s: &str) -> crate::error::AmqpResult<()> {
    if s.len() > 255 {
        return Err(crate::error::AmqpError::precondition_failed(format!(
            "{what} should be less than 255 bytes, actually was {}\n",
            s.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_shaped_like_rabbitmqs() {
        let a = super::queue_name();
        let b = super::queue_name();
        assert_ne!(a, b);
        assert!(a.starts_with("amq.gen-"));
        assert_eq!(a.len(), "amq.gen-".len() + 22);
    }
}
