//! RabbitMQ-style policies: a name, a pattern matched against queue (or
//! exchange) names, what it applies to, a priority, and a definition whose
//! keys supply x-arguments. Where a queue sets an argument itself, it wins
//! over the policy, except for the limits RabbitMQ resolves to the smaller
//! of the two (TTLs, lengths, the delivery limit); of several matching
//! policies the highest priority applies.

use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use regex::Regex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyTo {
    All,
    Queues,
    Exchanges,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub pattern: Regex,
    pub apply_to: ApplyTo,
    pub priority: i64,
    pub definition: FieldTable,
}

/// Policy definition keys and the queue arguments they stand for.
const QUEUE_KEYS: &[(&str, &str)] = &[
    ("message-ttl", "x-message-ttl"),
    ("expires", "x-expires"),
    ("max-length", "x-max-length"),
    ("max-length-bytes", "x-max-length-bytes"),
    ("overflow", "x-overflow"),
    ("dead-letter-exchange", "x-dead-letter-exchange"),
    ("dead-letter-routing-key", "x-dead-letter-routing-key"),
    ("delivery-limit", "x-delivery-limit"),
    ("consumer-timeout", "x-consumer-timeout"),
    ("queue-mode", "x-queue-mode"),
    ("max-in-memory-length", "x-max-in-memory-length"),
    ("max-in-memory-bytes", "x-max-in-memory-bytes"),
];

impl ApplyTo {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyTo::All => "all",
            ApplyTo::Queues => "queues",
            ApplyTo::Exchanges => "exchanges",
        }
    }
}

impl Policy {
    pub fn new(
        name: &str,
        pattern: &str,
        apply_to: &str,
        priority: i64,
        definition: FieldTable,
    ) -> Result<Policy, String> {
        let apply_to = match apply_to {
            "all" | "" => ApplyTo::All,
            "queues" => ApplyTo::Queues,
            "exchanges" => ApplyTo::Exchanges,
            other => {
                return Err(format!(
                    "policy '{name}': apply-to '{other}' is not one of all, queues, exchanges"
                ));
            }
        };
        let pattern =
            Regex::new(pattern).map_err(|e| format!("policy '{name}': bad pattern: {e}"))?;
        Ok(Policy {
            name: name.to_string(),
            pattern,
            apply_to,
            priority,
            definition,
        })
    }
}

/// The highest-priority policy matching a queue (or exchange) name.
fn matching<'a>(policies: &'a [Policy], name: &str, queue: bool) -> Option<&'a Policy> {
    policies
        .iter()
        .filter(|p| match p.apply_to {
            ApplyTo::All => true,
            ApplyTo::Queues => queue,
            ApplyTo::Exchanges => !queue,
        })
        .filter(|p| p.pattern.is_match(name))
        .max_by_key(|p| p.priority)
}

/// Keys where RabbitMQ takes the smaller of the argument and the policy
/// value (its `res_min`); for the others the argument wins (`res_arg`).
const MIN_KEYS: &[&str] = &[
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-delivery-limit",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
];

/// What an operator policy may set (RabbitMQ's `operator_policy_validator`
/// keys): limits only, each resolved to the smallest of the queue's
/// argument, its policy and the operator policy. With the least each takes
/// and how RabbitMQ names it when refusing a value.
const OPERATOR_LIMITS: &[(&str, i64, &str)] = &[
    ("expires", 1, "queue expiry"),
    ("message-ttl", 0, "message TTL"),
    ("max-length", 0, "maximum length"),
    ("max-length-bytes", 0, "maximum length in bytes"),
    ("max-in-memory-length", 0, "maximum memory in bytes"),
    ("max-in-memory-bytes", 0, "maximum memory in bytes"),
    ("delivery-limit", 0, "delivery limit"),
];

/// Refuse an operator policy that sets anything but a limit, or a limit
/// that is not a non-negative integer, in RabbitMQ's words.
pub fn check_operator_definition(def: &FieldTable) -> Result<(), String> {
    let limit = |k: &str| OPERATOR_LIMITS.iter().find(|(key, ..)| *key == k);
    let unknown: Vec<String> = def
        .inner()
        .iter()
        .filter(|(k, _)| limit(k.as_str()).is_none())
        .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", erlang_term(v)))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "[{}] are not recognised policy settings",
            unknown.join(",")
        ));
    }
    for (k, v) in def.inner() {
        if let Some((_, least, what)) = limit(k.as_str())
            && crate::field::int(v).is_none_or(|n| n < *least)
        {
            return Err(format!("{} is not a valid {what}", erlang_term(v)));
        }
    }
    Ok(())
}

/// A value as Erlang's `~p` prints it, for RabbitMQ's validation messages.
fn erlang_term(v: &AMQPValue) -> String {
    match value_json(v) {
        serde_json::Value::String(s) => format!("<<\"{s}\">>"),
        other => other.to_string(),
    }
}

/// A queue's effective arguments: its own, plus what the matching policy
/// supplies for keys it does not set itself (or sets higher, for limits),
/// then the matching operator policy's limits where they are lower still.
pub fn queue_arguments(
    policies: &[Policy],
    operator: &[Policy],
    name: &str,
    own: &FieldTable,
) -> FieldTable {
    let mut out = own.clone();
    if let Some(p) = matching(policies, name, true) {
        overlay(&mut out, p, |arg| MIN_KEYS.contains(&arg));
    }
    if let Some(op) = matching(operator, name, true) {
        overlay(&mut out, op, |_| true);
    }
    out
}

/// Put a policy's values into `args` where it lacks them, and where
/// `min(arg)` holds, also where the policy's value is lower.
fn overlay(args: &mut FieldTable, p: &Policy, min: impl Fn(&str) -> bool) {
    for (key, arg) in QUEUE_KEYS {
        let Some(v) = p.definition.inner().get(*key) else {
            continue;
        };
        let take = match args.inner().get(*arg) {
            None => true,
            Some(now) => {
                min(arg)
                    && matches!(
                        (crate::field::int(v), crate::field::int(now)),
                        (Some(theirs), Some(now)) if theirs < now
                    )
            }
        };
        if take {
            args.insert((*arg).into(), v.clone());
        }
    }
}

/// The policy that applies to a queue, if any.
pub fn queue_policy(policies: &[Policy], name: &str) -> Option<Policy> {
    matching(policies, name, true).cloned()
}

/// The policy that applies to an exchange, if any.
pub fn exchange_policy(policies: &[Policy], name: &str) -> Option<Policy> {
    matching(policies, name, false).cloned()
}

/// The alternate exchange a policy gives an exchange, if any.
pub fn alternate_exchange(policies: &[Policy], name: &str) -> Option<String> {
    match matching(policies, name, false)?
        .definition
        .inner()
        .get("alternate-exchange")?
    {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// A JSON value as an AMQP field value (integers as signed 64-bit, as
/// RabbitMQ's definitions import does).
pub fn json_value(v: &serde_json::Value) -> AMQPValue {
    use serde_json::Value as J;
    match v {
        J::Bool(b) => AMQPValue::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
        J::Array(a) => AMQPValue::FieldArray(a.iter().map(json_value).collect::<Vec<_>>().into()),
        J::Object(_) => AMQPValue::FieldTable(json_table(v)),
        J::Null => AMQPValue::Void,
    }
}

pub fn json_table(v: &serde_json::Value) -> FieldTable {
    let mut t = FieldTable::default();
    if let serde_json::Value::Object(m) = v {
        for (k, v) in m {
            t.insert(k.as_str().into(), json_value(v));
        }
    }
    t
}

/// An AMQP field value as JSON, the way the management API shows them.
pub fn value_json(v: &AMQPValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        AMQPValue::Boolean(b) => J::Bool(*b),
        AMQPValue::Float(f) => serde_json::json!(f),
        AMQPValue::Double(f) => serde_json::json!(f),
        AMQPValue::LongString(s) => J::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => J::String(s.to_string()),
        AMQPValue::FieldArray(a) => J::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::Timestamp(t) => serde_json::json!(t),
        AMQPValue::ByteArray(b) => J::String(String::from_utf8_lossy(b.as_slice()).into_owned()),
        AMQPValue::Void => J::Null,
        AMQPValue::DecimalValue(d) => serde_json::json!(d.value),
        other => crate::field::int(other).map_or(J::Null, |i| serde_json::json!(i)),
    }
}

pub fn table_json(t: &FieldTable) -> serde_json::Value {
    serde_json::Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.to_string(), value_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    #[test]
    fn highest_priority_policy_supplies_arguments_the_queue_lacks() {
        let low = Policy::new(
            "low",
            "^orders\\.",
            "queues",
            0,
            def(&[("message-ttl", AMQPValue::LongLongInt(1))]),
        )
        .expect("p");
        let high = Policy::new(
            "high",
            "^orders\\.eu",
            "all",
            5,
            def(&[
                ("message-ttl", AMQPValue::LongLongInt(2)),
                ("max-length", AMQPValue::LongLongInt(9)),
            ]),
        )
        .expect("p");
        let ps = vec![low, high];
        let own = def(&[("x-max-length", AMQPValue::LongLongInt(3))]);
        let eff = queue_arguments(&ps, &[], "orders.eu.1", &own);
        assert_eq!(
            eff.inner().get("x-message-ttl"),
            Some(&AMQPValue::LongLongInt(2))
        );
        assert_eq!(
            eff.inner().get("x-max-length"),
            Some(&AMQPValue::LongLongInt(3)),
            "the smaller limit wins: the queue's own"
        );
        let own = def(&[
            ("x-max-length", AMQPValue::LongLongInt(30)),
            (
                "x-dead-letter-exchange",
                AMQPValue::LongString("mine".into()),
            ),
        ]);
        let dlx = Policy::new(
            "dlx",
            "^orders\\.",
            "queues",
            9,
            def(&[
                ("max-length", AMQPValue::LongLongInt(9)),
                (
                    "dead-letter-exchange",
                    AMQPValue::LongString("theirs".into()),
                ),
            ]),
        )
        .expect("p");
        let eff = queue_arguments(&[dlx], &[], "orders.x", &own);
        assert_eq!(
            eff.inner().get("x-max-length"),
            Some(&AMQPValue::LongLongInt(9)),
            "the smaller limit wins: the policy's"
        );
        assert_eq!(
            eff.inner().get("x-dead-letter-exchange"),
            Some(&AMQPValue::LongString("mine".into())),
            "the queue's own dead-letter exchange wins"
        );
        let eff = queue_arguments(&ps, &[], "orders.us", &FieldTable::default());
        assert_eq!(
            eff.inner().get("x-message-ttl"),
            Some(&AMQPValue::LongLongInt(1))
        );
        assert!(
            queue_arguments(&ps, &[], "billing", &FieldTable::default())
                .inner()
                .is_empty()
        );
    }

    #[test]
    fn an_operator_policy_caps_limits_below_the_argument_and_the_policy() {
        let user = Policy::new(
            "user",
            ".*",
            "queues",
            0,
            def(&[("max-length", AMQPValue::LongLongInt(50))]),
        )
        .expect("p");
        let op = Policy::new(
            "cap",
            "^jobs",
            "queues",
            0,
            def(&[
                ("max-length", AMQPValue::LongLongInt(20)),
                ("message-ttl", AMQPValue::LongLongInt(1000)),
            ]),
        )
        .expect("p");
        let own = def(&[("x-message-ttl", AMQPValue::LongLongInt(500))]);
        let eff = queue_arguments(
            std::slice::from_ref(&user),
            std::slice::from_ref(&op),
            "jobs.a",
            &own,
        );
        assert_eq!(
            eff.inner().get("x-max-length"),
            Some(&AMQPValue::LongLongInt(20))
        );
        assert_eq!(
            eff.inner().get("x-message-ttl"),
            Some(&AMQPValue::LongLongInt(500)),
            "the queue's lower TTL stays"
        );
        let eff = queue_arguments(&[user], &[op], "other", &own);
        assert_eq!(
            eff.inner().get("x-max-length"),
            Some(&AMQPValue::LongLongInt(50))
        );
    }

    #[test]
    fn an_operator_policy_may_set_only_limits() {
        let bad = def(&[("dead-letter-exchange", AMQPValue::LongString("x".into()))]);
        assert_eq!(
            check_operator_definition(&bad).unwrap_err(),
            "[{<<\"dead-letter-exchange\">>,<<\"x\">>}] are not recognised policy settings"
        );
        assert!(check_operator_definition(&def(&[("expires", AMQPValue::LongLongInt(1))])).is_ok());
        assert_eq!(
            check_operator_definition(&def(&[("expires", AMQPValue::LongLongInt(0))])),
            Err("0 is not a valid queue expiry".into())
        );
        assert_eq!(
            check_operator_definition(&def(&[("max-length", AMQPValue::LongString("abc".into()))])),
            Err("<<\"abc\">> is not a valid maximum length".into())
        );
    }
}
