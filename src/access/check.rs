//! The checks, named after RabbitMQ's (`rabbit_access_control`), with its
//! reply codes and texts. A `Grant` is what a connection was allowed in:
//! its user in its vhost; every channel handler checks through it.

use super::permission::{Kind, Pattern, Perm};
use super::user::User;
use super::{Access, State};
use crate::error::{AmqpError, AmqpResult};
use std::sync::Arc;

/// A password login (PLAIN, AMQPLAIN, RABBIT-CR-DEMO): the user if the
/// password matches its hash. A user without a password never logs in so.
pub(crate) fn user_login_authentication(
    s: &State,
    user: &str,
    password: &str,
) -> Option<Arc<User>> {
    let u = s.users.get(user)?;
    u.password.verify(password).then(|| u.clone())
}

/// Connection.Open: the vhost must exist and the user have permissions in
/// it; otherwise 530 NOT_ALLOWED, as RabbitMQ.
pub(crate) fn check_vhost_access(s: &State, user: &str, vhost: &str) -> AmqpResult<()> {
    if !s.vhosts.contains_key(vhost) {
        return Err(AmqpError::not_allowed(format!("vhost {vhost} not found")));
    }
    if s.permissions(user, vhost).is_none() {
        return Err(AmqpError::not_allowed(format!(
            "access to vhost '{vhost}' refused for user '{user}'"
        )));
    }
    Ok(())
}

/// A connection's user in its vhost.
pub(crate) struct Grant {
    pub access: Arc<Access>,
    pub user: String,
    pub vhost: String,
    /// The `client_id` client property, for topic permissions' `{client_id}`.
    pub client_id: String,
}

impl Grant {
    /// Changes whenever any permission may have: decisions cached under
    /// one generation are good while it lasts.
    pub(crate) fn generation(&self) -> u64 {
        self.access.generation()
    }

    /// The connection's vhost's limits now.
    pub(crate) fn vhost_limits(&self) -> super::VhostLimits {
        let s = self.access.snapshot();
        s.vhosts
            .get(&self.vhost)
            .map(|v| v.limits.clone())
            .unwrap_or_default()
    }

    /// The user now (tags can change while connected).
    pub(crate) fn user(&self) -> Option<Arc<User>> {
        self.access.snapshot().users.get(&self.user).cloned()
    }

    /// `perm` on a resource: 403 ACCESS_REFUSED, closing the channel, if the
    /// user's regexp for it does not match. The default exchange is checked
    /// as `amq.default`.
    pub(crate) fn check_resource_access(
        &self,
        kind: Kind,
        name: &str,
        perm: Perm,
    ) -> AmqpResult<()> {
        let name = match (kind, name) {
            (Kind::Exchange, "") => "amq.default",
            _ => name,
        };
        let s = self.access.snapshot();
        match s.permissions(&self.user, &self.vhost) {
            Some(p) if p.allows(perm, name) => Ok(()),
            _ => Err(self.refused(kind, name)),
        }
    }

    /// A passive declare needs some permission, any, on the resource (as
    /// RabbitMQ since 4.2; 3.x checked none and so told anyone what exists).
    pub(crate) fn check_any_resource_access(&self, kind: Kind, name: &str) -> AmqpResult<()> {
        [Perm::Read, Perm::Write, Perm::Configure]
            .into_iter()
            .find_map(|p| self.check_resource_access(kind, name, p).ok())
            .ok_or_else(|| self.refused(kind, name))
    }

    fn refused(&self, kind: Kind, name: &str) -> AmqpError {
        AmqpError::access_refused(format!(
            "access to {} '{name}' in vhost '{}' refused for user '{}'",
            kind.name(),
            self.vhost,
            self.user
        ))
    }

    /// The user's topic permission regexp for `perm` on topic exchange
    /// `exchange`, its variables expanded; None: no topic permission there,
    /// so every routing key is allowed.
    pub(crate) fn topic_pattern(&self, exchange: &str, perm: Perm) -> Option<Pattern> {
        let s = self.access.snapshot();
        let t = s.topic_permission(&self.user, &self.vhost, exchange)?;
        let p = if perm == Perm::Read {
            &t.read
        } else {
            &t.write
        };
        Some(p.expanded(&[
            ("username", &self.user),
            ("vhost", &self.vhost),
            ("client_id", &self.client_id),
        ]))
    }

    /// A routing key against a topic pattern from `topic_pattern`.
    pub(crate) fn check_topic_access(
        &self,
        pattern: &Pattern,
        exchange: &str,
        routing_key: &str,
    ) -> AmqpResult<()> {
        if pattern.matches(routing_key) {
            return Ok(());
        }
        // RabbitMQ 3.10's words; later versions prefix the permission.
        Err(AmqpError::access_refused(format!(
            "access to topic '{routing_key}' in exchange '{exchange}' in vhost '{}' refused for user '{}'",
            self.vhost, self.user
        )))
    }
}
