//! What `/api/user-limits` and `/api/vhost-limits` share: the PUT body,
//! the JSON shape, and RabbitMQ's error for a limit that does not exist.

use super::{ApiError, ApiResult, json_body};
use crate::access::limits::to_map;
use serde_json::{Value, json};

/// A PUT's `{"value": N}`; a negative value removes the limit, as in RabbitMQ.
pub(super) fn limit_value(body: &[u8]) -> ApiResult<Option<u64>> {
    match json_body(body)?.get("value").and_then(Value::as_i64) {
        Some(n) if n < 0 => Ok(None),
        Some(n) => Ok(Some(n as u64)),
        None => Err(ApiError::bad_request("[{key_missing,value}]")),
    }
}

/// `{"user": NAME, "value": {...}}` (or `"vhost"`), None when none is set.
pub(super) fn limits_json(key: &str, owner: &str, named: &[(&'static str, u64)]) -> Option<Value> {
    (!named.is_empty()).then(|| json!({ key: owner, "value": to_map(named) }))
}

/// RabbitMQ's 400 for a limit name `component` ("limits" for a vhost,
/// "user-limits") does not have, in its words for each.
pub(super) fn unknown_limit(component: &str, name: &str, value: Option<u64>) -> ApiError {
    let value = value.map_or("-1".into(), |v| v.to_string());
    let terms = format!("Unrecognised terms [{{<<\"{name}\">>,{value}}}] in {component}");
    ApiError::bad_request(match component {
        "limits" => format!("Validation failed\n\n{terms}\n"),
        _ => terms,
    })
}
