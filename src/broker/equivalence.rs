//! RabbitMQ's redeclare rules: declaring an existing entity with other
//! properties is 406 PRECONDITION_FAILED, naming the first property that
//! differs the way RabbitMQ does.

use crate::error::{AmqpError, AmqpResult};
use amq_protocol::types::{AMQPValue, FieldTable};

/// Queue arguments RabbitMQ compares on redeclare; others are ignored.
const QUEUE_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
    "x-delivery-limit",
];

const EXCHANGE_ARGS: &[&str] = &["alternate-exchange"];

pub fn flag(
    what: &str,
    name: &str,
    kind: &str,
    vhost: &str,
    got: bool,
    current: bool,
) -> AmqpResult<()> {
    if got == current {
        return Ok(());
    }
    Err(AmqpError::precondition_failed(format!(
        "inequivalent arg '{what}' for {kind} '{name}' in vhost '{vhost}': received '{got}' but current is '{current}'"
    )))
}

pub fn queue_args(
    name: &str,
    vhost: &str,
    got: &FieldTable,
    current: &FieldTable,
) -> AmqpResult<()> {
    args(QUEUE_ARGS, "queue", name, vhost, got, current)
}

pub fn exchange_args(
    name: &str,
    vhost: &str,
    got: &FieldTable,
    current: &FieldTable,
) -> AmqpResult<()> {
    args(EXCHANGE_ARGS, "exchange", name, vhost, got, current)
}

fn args(
    keys: &[&str],
    kind: &str,
    name: &str,
    vhost: &str,
    got: &FieldTable,
    current: &FieldTable,
) -> AmqpResult<()> {
    for key in keys {
        let (g, c) = (got.inner().get(*key), current.inner().get(*key));
        if g != c {
            return Err(AmqpError::precondition_failed(format!(
                "inequivalent arg '{key}' for {kind} '{name}' in vhost '{vhost}': received {} but current is {}",
                describe(g),
                describe(c)
            )));
        }
    }
    Ok(())
}

fn describe(v: Option<&AMQPValue>) -> String {
    match v {
        None => "none".to_string(),
        Some(AMQPValue::LongString(s)) => format!("the value '{s}' of type 'longstr'"),
        Some(AMQPValue::ShortString(s)) => format!("the value '{s}' of type 'shortstr'"),
        Some(AMQPValue::LongInt(i)) => format!("the value '{i}' of type 'signedint'"),
        Some(AMQPValue::LongLongInt(i)) => format!("the value '{i}' of type 'long'"),
        Some(AMQPValue::ShortInt(i)) => format!("the value '{i}' of type 'short'"),
        Some(AMQPValue::Boolean(b)) => format!("the value '{b}' of type 'bool'"),
        Some(other) => format!("the value '{other:?}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_known_argument_is_refused_unknown_ignored() {
        let mut a = FieldTable::default();
        a.insert("x-message-ttl".into(), AMQPValue::LongInt(1000));
        let mut b = FieldTable::default();
        b.insert("x-custom".into(), AMQPValue::LongInt(1));
        let e = queue_args("q", "/", &a, &FieldTable::default()).expect_err("differs");
        assert!(e.text.contains("x-message-ttl"), "{}", e.text);
        assert!(queue_args("q", "/", &b, &FieldTable::default()).is_ok());
    }
}
