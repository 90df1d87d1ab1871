//! Encoding deliveries. Basic.Deliver is the one method sent per message, so
//! it is written straight into the outbox here instead of building an
//! amq-protocol value (which would allocate three strings per delivery);
//! a test checks the bytes against amq-protocol's own encoder.

use crate::codec::Outbox;

fn short_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(s.len() as u8);
    buf.extend_from_slice(s.as_bytes());
}

pub fn basic_deliver(
    out: &mut Outbox,
    channel: u16,
    consumer_tag: &str,
    delivery_tag: u64,
    redelivered: bool,
    exchange: &str,
    routing_key: &str,
) {
    out.method_with(channel, |b| {
        b.extend_from_slice(&[0, 60, 0, 60]);
        short_str(b, consumer_tag);
        b.extend_from_slice(&delivery_tag.to_be_bytes());
        b.push(redelivered as u8);
        short_str(b, exchange);
        short_str(b, routing_key);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::{AMQPFrame, WriteContext, gen_frame};
    use amq_protocol::protocol::{AMQPClass, basic};

    #[test]
    fn matches_amq_protocol_encoding() {
        let mut out = Outbox::default();
        basic_deliver(&mut out, 7, "ctag", 42, true, "ex", "rk");
        let ours: Vec<u8> = out.take().concat();
        let frame = AMQPFrame::Method(
            7,
            AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: "ctag".into(),
                delivery_tag: 42,
                redelivered: true,
                exchange: "ex".into(),
                routing_key: "rk".into(),
            })),
        );
        let theirs = gen_frame(&frame)(WriteContext::from(Vec::new()))
            .expect("gen")
            .into_inner()
            .0;
        assert_eq!(ours, theirs);
    }
}
