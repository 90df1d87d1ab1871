//! The broker's shared registries: vhosts, users, and connection ids.
//! Everything here is read-mostly; the publish path only looks things up.

pub mod equivalence;
pub mod names;
pub mod vhost;

use crate::config::Config;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
pub use vhost::Vhost;

pub struct Broker {
    pub config: Config,
    vhosts: DashMap<String, Arc<Vhost>>,
    next_conn_id: AtomicU64,
}

impl Broker {
    pub fn new(config: Config) -> Arc<Broker> {
        let vhosts = DashMap::new();
        for v in &config.vhosts {
            vhosts.insert(v.clone(), Vhost::new(v));
        }
        Arc::new(Broker {
            config,
            vhosts,
            next_conn_id: AtomicU64::new(1),
        })
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<Vhost>> {
        self.vhosts.get(name).map(|v| v.clone())
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Check a user's password (constant-time enough for a dev broker's
    /// plain-text user list; hashed credentials come with user management).
    pub fn authenticate(&self, user: &str, password: &str) -> bool {
        self.config
            .users
            .iter()
            .any(|u| u.name == user && u.password == password)
    }
}
