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

    /// The embedding API below changes this node only, so a clustered node
    /// refuses it: there changes go through the cluster's log
    /// (`Broker::change`, as the management API and `ctl` make them).
    fn alone(&self) -> Result<(), Refusal> {
        match self.config.cluster {
            Some(_) => Err(Refusal::Unavailable(
                "this node is clustered: change it through the management API or ctl".into(),
            )),
            None => Ok(()),
        }
    }

    /// Create a vhost (or update its description, tags and default queue
    /// type if it exists, as RabbitMQ's PUT does). True if it was new.
    pub fn add_vhost(&self, name: &str) -> Result<bool, String> {
        self.alone().map_err(|e| e.to_string())?;
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
        self.alone()?;
        self.remove_vhost(name)
    }

    pub(crate) fn remove_vhost(&self, name: &str) -> Result<(), Refusal> {
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
        self.alone().map_err(|e| e.to_string())?;
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
        self.alone().map_err(|e| e.to_string())?;
        self.access
            .set_permissions(user, vhost, configure, write, read)
            .map_err(|e| e.to_string())
    }

    /// Delete a user and close its connections (320, RabbitMQ's text).
    pub fn delete_user(&self, name: &str) -> Result<(), Refusal> {
        self.alone()?;
        self.remove_user(name)
    }

    pub(crate) fn remove_user(&self, name: &str) -> Result<(), Refusal> {
        self.access.delete_user(name)?;
        for c in self.connections.list() {
            if c.user == name {
                c.close(&format!("user '{name}' is deleted"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clustered_node_refuses_changes_that_would_bypass_the_cluster() {
        let dir = tempfile::tempdir().expect("dir");
        let config = crate::Config {
            data_dir: dir.path().to_path_buf(),
            cluster: Some(crate::config::ClusterConfig::default()),
            ..Default::default()
        };
        let b = Broker::new(config).expect("broker");
        let clustered = |e: String| assert!(e.contains("this node is clustered"), "{e}");
        clustered(b.add_vhost("v").expect_err("refused"));
        clustered(b.add_user("u", "p", &[]).expect_err("refused"));
        clustered(
            b.set_permissions("guest", "/", ".*", ".*", ".*")
                .expect_err("refused"),
        );
        clustered(b.delete_user("guest").expect_err("refused").to_string());
        clustered(b.delete_vhost("/").expect_err("refused").to_string());
        // What the cluster's log applies still goes through.
        assert!(b.remove_user("guest").is_ok());
    }
}
