//! Reading request bodies the way RabbitMQ's API does: a JSON object or
//! 400 `not_json`, missing keys listed together, booleans that may be
//! strings, and its `[what, value]` reasons for values of the wrong type.

use super::{ApiError, ApiResult};
use amq_protocol::types::FieldTable;
use serde_json::{Map, Value};

pub(crate) type Object = Map<String, Value>;

/// The body as a JSON object; an empty body is an empty object, as RabbitMQ
/// reads it.
pub(crate) fn object(body: &[u8]) -> ApiResult<Object> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Object::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::bad_request("not_json")),
    }
}

/// RabbitMQ's 400 for missing keys: `[{key_missing,payload},...]`.
pub(crate) fn require(m: &Object, keys: &[&str]) -> ApiResult<()> {
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !m.contains_key(**k))
        .map(|k| format!("{{key_missing,{k}}}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("[{}]", missing.join(","))))
    }
}

/// A flag: JSON true/false or the strings "true"/"false"; else
/// `["not_boolean", value]`.
pub(crate) fn flag(m: &Object, key: &str, default: bool) -> ApiResult<bool> {
    match m.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(v) => Err(ApiError::bad_value("not_boolean", shown(v))),
    }
}

/// An integer, or a string of digits; else `["not_integer", value]`.
pub(crate) fn integer(m: &Object, key: &str) -> ApiResult<Option<i64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_value("not_integer", s.as_str())),
        Some(v) => Err(ApiError::bad_value("not_integer", shown(v))),
    }
}

/// Text: a JSON string, or any other JSON value as its text.
pub(crate) fn text(m: &Object, key: &str) -> Option<String> {
    m.get(key).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `arguments`: a JSON object as an AMQP table; anything else is refused
/// (RabbitMQ crashes on it and answers 400 too).
pub(crate) fn arguments(m: &Object) -> ApiResult<FieldTable> {
    match m.get("arguments") {
        None | Some(Value::Null) => Ok(FieldTable::default()),
        Some(v @ Value::Object(_)) => Ok(crate::broker::policy::json_table(v)),
        Some(Value::Array(a)) if a.is_empty() => Ok(FieldTable::default()),
        Some(_) => Err(ApiError::bad_request("arguments must be a JSON object")),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
