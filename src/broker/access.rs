//! What access control changes need of the broker: logging in, and adding
//! or deleting a vhost or a user, which touches open connections and a
//! vhost's exchanges, queues and data.

use super::Broker;
use crate::access::check;
use crate::access::user::User;
use crate::access::{Refusal, VhostMeta};
use std::sync::Arc;

impl Broker {
    /// A password login: the user, if it exists and the password matches.
    pub(crate) fn authenticate(&self, user: &str, password: &str) -> Option<Arc<User>> {
        check::user_login_authentication(&self.access.snapshot(), user, password)
    }

    /// Create a vhost (or update its description, tags and default queue
    /// type if it exists, as RabbitMQ's PUT does). True if it was new.
    pub fn add_vhost(&self, name: &str) -> Result<bool, String> {
        self.put_vhost(VhostMeta {
            name: name.to_string(),
            ..VhostMeta::default()
        })
        .map_err(|e| e.to_string())
    }

    pub(crate) fn put_vhost(&self, meta: VhostMeta) -> Result<bool, Refusal> {
        let name = meta.name.clone();
        let new = self.access.change(|s| {
            let limits = s.vhosts.get(&name).map(|v| v.limits.clone());
            let new = limits.is_none();
            s.vhosts.insert(
                name.clone(),
                VhostMeta {
                    limits: limits.unwrap_or_default(),
                    ..meta
                },
            );
            Ok(new)
        })?;
        self.ensure_vhost(&name)
            .map_err(|e| Refusal::Io(format!("cannot create vhost '{name}': {e}")))?;
        if new {
            tracing::info!("vhost '{name}' created");
        }
        Ok(new)
    }

    /// Delete a vhost: its connections are closed (320, RabbitMQ's text),
    /// its queues and exchanges deleted, its permissions cleared and its
    /// data removed.
    pub fn delete_vhost(&self, name: &str) -> Result<(), Refusal> {
        self.access.change(|s| {
            s.remove_vhost(name)
                .then_some(())
                .ok_or_else(|| Refusal::NoSuchVhost(name.to_string()))
        })?;
        for c in self.connections.list() {
            if c.vhost == name {
                c.close(&format!("vhost '{name}' is deleted"));
            }
        }
        if let Some((_, v)) = self.vhosts.remove(name) {
            v.destroy();
        }
        self.totals.forget_vhost(name);
        self.store
            .remove_vhost(name)
            .map_err(|e| Refusal::Io(format!("vhost '{name}' deleted, but its data stays: {e}")))?;
        tracing::info!("vhost '{name}' deleted");
        Ok(())
    }

    /// Create (or replace) a user with a password and tags.
    pub fn add_user(&self, name: &str, password: &str, tags: &[&str]) -> Result<(), String> {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        self.access
            .add_user(name, password, tags)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Grant a user configure / write / read regexps in a vhost.
    pub fn set_permissions(
        &self,
        user: &str,
        vhost: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> Result<(), String> {
        self.access
            .set_permissions(user, vhost, configure, write, read)
            .map_err(|e| e.to_string())
    }

    /// Delete a user and close its connections (320, RabbitMQ's text).
    pub fn delete_user(&self, name: &str) -> Result<(), Refusal> {
        self.access.delete_user(name)?;
        for c in self.connections.list() {
            if c.user == name {
                c.close(&format!("user '{name}' is deleted"));
            }
        }
        Ok(())
    }
}
