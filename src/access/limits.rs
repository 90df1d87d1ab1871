//! Limits by RabbitMQ's names (`max-connections`, `max-channels`,
//! `max-queues`): the one place that maps the names definitions files, the
//! management API and ctl speak to the typed fields the broker checks.

use serde_json::{Map, Value};

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct UserLimits {
    pub max_connections: Option<u64>,
    pub max_channels: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct VhostLimits {
    pub max_connections: Option<u64>,
    pub max_queues: Option<u64>,
}

macro_rules! named_limits {
    ($t:ty, $($name:literal => $field:ident),+) => {
        impl $t {
            /// The limits that are set, by name.
            pub(crate) fn named(&self) -> Vec<(&'static str, u64)> {
                [$(($name, self.$field)),+]
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v?)))
                    .collect()
            }

            /// Set (or, with None, clear) a limit by name; false for a name
            /// this kind of limit does not have.
            pub(crate) fn set(&mut self, name: &str, value: Option<u64>) -> bool {
                match name {
                    $($name => self.$field = value,)+
                    _ => return false,
                }
                true
            }
        }
    };
}

named_limits!(UserLimits, "max-connections" => max_connections, "max-channels" => max_channels);
named_limits!(VhostLimits, "max-connections" => max_connections, "max-queues" => max_queues);

/// `{"max-connections": 10, ...}`, as definitions and the API show limits.
pub(crate) fn to_map(named: &[(&'static str, u64)]) -> Map<String, Value> {
    named
        .iter()
        .map(|(k, n)| (k.to_string(), (*n).into()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_set_and_listed_by_rabbitmqs_names() {
        let mut v = VhostLimits::default();
        assert!(v.set("max-queues", Some(5)));
        assert!(!v.set("max-channels", Some(1)), "not a vhost limit");
        assert_eq!(v.named(), [("max-queues", 5)]);
        assert!(v.set("max-queues", None));
        assert!(v.named().is_empty());
        let mut u = UserLimits::default();
        assert!(u.set("max-channels", Some(7)));
        assert_eq!(u.max_channels, Some(7));
    }
}
