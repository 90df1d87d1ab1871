//! A user as RabbitMQ's internal backend keeps one: a password hash, tags
//! and limits.

use super::limits::UserLimits;
use super::password::PasswordHash;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct User {
    pub name: String,
    pub password: PasswordHash,
    /// `administrator`, `monitoring`, `policymaker`, `management`,
    /// `impersonator`, or anything else (kept, shown, not interpreted).
    pub tags: Vec<String>,
    pub limits: UserLimits,
}

impl User {
    pub(crate) fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// RabbitMQ's `impersonator` tag lets a user publish with another
    /// `user_id`.
    pub(crate) fn may_impersonate(&self) -> bool {
        self.has_tag("impersonator")
    }

    /// RabbitMQ's management tags: administrator includes the others;
    /// monitoring and policymaker each include management, not each other.
    pub(crate) fn is_administrator(&self) -> bool {
        self.has_tag("administrator")
    }

    pub(crate) fn is_monitor(&self) -> bool {
        self.is_administrator() || self.has_tag("monitoring")
    }

    pub(crate) fn is_policymaker(&self) -> bool {
        self.is_administrator() || self.has_tag("policymaker")
    }

    pub(crate) fn is_management_user(&self) -> bool {
        self.is_monitor() || self.is_policymaker() || self.has_tag("management")
    }
}

/// Tags as definitions files spell them: a list, or (RabbitMQ before 3.9,
/// and rabbitmqctl) one comma-separated string.
pub(crate) fn parse_tags(v: &serde_json::Value) -> Vec<String> {
    let from_str = |s: &str| {
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    match v {
        serde_json::Value::String(s) => from_str(s),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|t| t.as_str())
            .flat_map(from_str)
            .collect(),
        _ => Vec::new(),
    }
}
