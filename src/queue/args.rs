//! Queue arguments (RabbitMQ's x-arguments) parsed and validated once at
//! declare, with RabbitMQ's complaints for bad values.

use crate::error::{AmqpError, AmqpResult};
use amq_protocol::types::{AMQPValue, FieldTable};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    #[default]
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueArgs {
    /// x-message-ttl, ms.
    pub message_ttl: Option<u64>,
    /// x-expires: delete the queue after this long unused, ms.
    pub expires: Option<u64>,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    pub max_length: Option<usize>,
    pub max_length_bytes: Option<usize>,
    pub overflow: Overflow,
    /// x-max-priority: message priorities above it count as it.
    pub max_priority: Option<u8>,
    /// x-single-active-consumer: only the first consumer gets messages.
    pub single_active_consumer: bool,
    /// x-queue-type = quorum (accepted; stored like a durable classic queue).
    pub quorum: bool,
    /// x-delivery-limit: returns after which a message is dead-lettered.
    pub delivery_limit: Option<u64>,
    /// Set by the broker, not by clients: this is the hidden queue of a
    /// delayed-message exchange, and due messages are routed through it.
    pub delay_for: Option<String>,
    /// x-consumer-timeout: how long a delivery may stay unacknowledged, ms.
    pub consumer_timeout: Option<u64>,
    /// x-message-deduplication and its settings.
    pub dedup: Option<crate::dedup::DedupArgs>,
    /// x-max-in-memory-length / -bytes: at most this many ready messages
    /// (body bytes) in memory; the rest wait on disk (RabbitMQ's quorum
    /// queue arguments; here every queue honours them).
    pub max_in_memory_length: Option<usize>,
    pub max_in_memory_bytes: Option<usize>,
}

/// A quorum queue's default delivery limit, as in RabbitMQ 4.
pub const QUORUM_DELIVERY_LIMIT: u64 = 20;

/// Whether these arguments declare a quorum queue.
pub(crate) fn is_quorum(arguments: &FieldTable) -> bool {
    match arguments.inner().get("x-queue-type") {
        Some(AMQPValue::LongString(s)) => s.as_bytes() == b"quorum",
        Some(AMQPValue::ShortString(s)) => s.as_str() == "quorum",
        _ => false,
    }
}

fn int(v: &AMQPValue) -> Result<i64, String> {
    crate::field::int(v).ok_or_else(|| format!("\"expected integer, got {}\"", type_name(v)))
}

fn string(v: &AMQPValue) -> Result<String, String> {
    match v {
        AMQPValue::LongString(s) => Ok(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Ok(s.to_string()),
        other => Err(format!("\"expected string, got {}\"", type_name(other))),
    }
}

fn type_name(v: &AMQPValue) -> &'static str {
    match v {
        AMQPValue::LongString(_) => "longstr",
        AMQPValue::ShortString(_) => "shortstr",
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
        _ => "integer",
    }
}

/// A non-negative integer; `positive` also refuses zero.
fn count(v: &AMQPValue, positive: bool) -> Result<u64, String> {
    let i = int(v)?;
    if i < 0 {
        return Err(format!("{{value_negative,{i}}}"));
    }
    if positive && i == 0 {
        return Err("{value_zero,0}".into());
    }
    Ok(i as u64)
}

impl QueueArgs {
    pub fn parse(args: &FieldTable, queue: &str, vhost: &str) -> AmqpResult<QueueArgs> {
        let mut a = QueueArgs::default();
        for (k, v) in args.inner() {
            let r: Result<(), String> = match k.as_str() {
                "x-message-ttl" => count(v, false).map(|n| a.message_ttl = Some(n)),
                "x-expires" => count(v, true).map(|n| a.expires = Some(n)),
                "x-max-length" => count(v, false).map(|n| a.max_length = Some(n as usize)),
                "x-max-length-bytes" => {
                    count(v, false).map(|n| a.max_length_bytes = Some(n as usize))
                }
                "x-dead-letter-exchange" => string(v).map(|s| a.dead_letter_exchange = Some(s)),
                "x-dead-letter-routing-key" => {
                    string(v).map(|s| a.dead_letter_routing_key = Some(s))
                }
                "x-overflow" => string(v).and_then(|s| {
                    a.overflow = match s.as_str() {
                        "drop-head" => Overflow::DropHead,
                        "reject-publish" => Overflow::RejectPublish,
                        "reject-publish-dlx" => Overflow::RejectPublishDlx,
                        _ => return Err("invalid_overflow".into()),
                    };
                    Ok(())
                }),
                "x-max-priority" => count(v, false).and_then(|n| {
                    if n > 255 {
                        Err(format!("{{max_value_exceeded,{n}}}"))
                    } else {
                        a.max_priority = Some(n as u8);
                        Ok(())
                    }
                }),
                "x-delivery-limit" => count(v, false).map(|n| a.delivery_limit = Some(n)),
                "x-max-in-memory-length" => {
                    count(v, false).map(|n| a.max_in_memory_length = Some(n as usize))
                }
                "x-max-in-memory-bytes" => {
                    count(v, false).map(|n| a.max_in_memory_bytes = Some(n as usize))
                }
                "x-consumer-timeout" => count(v, false).map(|n| a.consumer_timeout = Some(n)),
                "x-queue-type" => string(v).and_then(|t| match t.as_str() {
                    "classic" => Ok(()),
                    "quorum" => {
                        a.quorum = true;
                        Ok(())
                    }
                    other => Err(format!("\"unsupported queue type '{other}'\"")),
                }),
                "x-single-active-consumer" => match v {
                    AMQPValue::Boolean(b) => {
                        a.single_active_consumer = *b;
                        Ok(())
                    }
                    other => Err(format!("\"expected bool, got {}\"", type_name(other))),
                },
                _ => Ok(()),
            };
            if let Err(why) = r {
                return Err(invalid(k.as_str(), queue, vhost, &why));
            }
        }
        a.dedup =
            crate::dedup::DedupArgs::parse(args, false).map_err(AmqpError::precondition_failed)?;
        if a.quorum {
            if args.inner().contains_key("x-max-priority") {
                return Err(AmqpError::precondition_failed(format!(
                    "invalid arg 'x-max-priority' for queue '{queue}' in vhost '{vhost}' of queue type rabbit_quorum_queue"
                )));
            }
            a.delivery_limit.get_or_insert(QUORUM_DELIVERY_LIMIT);
        }
        if a.dead_letter_routing_key.is_some() && a.dead_letter_exchange.is_none() {
            return Err(invalid(
                "x-dead-letter-routing-key",
                queue,
                vhost,
                "routing_key_but_no_dlx_defined",
            ));
        }
        Ok(a)
    }
}

impl QueueArgs {
    /// The queue properties a quorum queue cannot have, as RabbitMQ names them.
    pub fn check_properties(
        &self,
        queue: &str,
        vhost: &str,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
    ) -> AmqpResult<()> {
        if !self.quorum {
            return Ok(());
        }
        let bad = if exclusive {
            "exclusive-owner"
        } else if !durable {
            "non-durable"
        } else if auto_delete {
            "auto-delete"
        } else {
            return Ok(());
        };
        Err(AmqpError::precondition_failed(format!(
            "invalid property '{bad}' for queue '{queue}' in vhost '{vhost}'"
        )))
    }
}

fn invalid(arg: &str, queue: &str, vhost: &str, why: &str) -> AmqpError {
    AmqpError::precondition_failed(format!(
        "invalid arg '{arg}' for queue '{queue}' in vhost '{vhost}': {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: AMQPValue) -> FieldTable {
        let mut f = FieldTable::default();
        f.insert(k.into(), v);
        f
    }

    #[test]
    fn rabbitmq_validation_messages() {
        let e = QueueArgs::parse(&t("x-message-ttl", AMQPValue::LongInt(-1)), "q", "/")
            .expect_err("neg");
        assert_eq!(
            e.text,
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}"
        );
        let e =
            QueueArgs::parse(&t("x-expires", AMQPValue::LongInt(0)), "q", "/").expect_err("zero");
        assert!(e.text.ends_with("{value_zero,0}"));
        let e = QueueArgs::parse(
            &t("x-overflow", AMQPValue::LongString("x".into())),
            "q",
            "/",
        )
        .expect_err("bad");
        assert!(e.text.ends_with("invalid_overflow"));
        let e = QueueArgs::parse(
            &t(
                "x-dead-letter-routing-key",
                AMQPValue::LongString("k".into()),
            ),
            "q",
            "/",
        )
        .expect_err("no dlx");
        assert!(e.text.ends_with("routing_key_but_no_dlx_defined"));
        let ok = QueueArgs::parse(&t("x-max-length", AMQPValue::ShortShortUInt(3)), "q", "/")
            .expect("ok");
        assert_eq!(ok.max_length, Some(3));
    }
}
