//! Reading AMQP field values the way RabbitMQ does: an integer argument or
//! header may arrive in any integer width, and a string as short or long.

use amq_protocol::types::AMQPValue;

/// The value as an integer, whatever width the client encoded it in.
pub fn int(v: &AMQPValue) -> Option<i64> {
    Some(match v {
        AMQPValue::ShortShortInt(i) => *i as i64,
        AMQPValue::ShortShortUInt(i) => *i as i64,
        AMQPValue::ShortInt(i) => *i as i64,
        AMQPValue::ShortUInt(i) => *i as i64,
        AMQPValue::LongInt(i) => *i as i64,
        AMQPValue::LongUInt(i) => *i as i64,
        AMQPValue::LongLongInt(i) => *i,
        _ => return None,
    })
}

/// The value as bytes if it is a string.
pub fn text(v: &AMQPValue) -> Option<&[u8]> {
    match v {
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// A string argument of a field table, as text.
pub fn string_arg(args: &amq_protocol::types::FieldTable, key: &str) -> Option<String> {
    text(args.inner().get(key)?).map(|b| String::from_utf8_lossy(b).into_owned())
}
