//! The broker's shared registries: vhosts, users, and connection ids.
//! Everything here is read-mostly; the publish path only looks things up.

pub mod dead_letter;
pub mod equivalence;
pub mod import;
pub mod memory;
pub mod names;
pub mod policy;
pub mod vhost;

use crate::config::Config;
use crate::store::Store;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
pub use vhost::Vhost;

pub struct Broker {
    pub config: Config,
    pub store: Arc<Store>,
    vhosts: DashMap<String, Arc<Vhost>>,
    next_conn_id: AtomicU64,
    pub memory: Arc<memory::MemoryAlarm>,
}

impl Broker {
    /// Open the data dir and recover every vhost's durable state.
    pub fn new(config: Config) -> std::io::Result<Arc<Broker>> {
        let store = Store::open(&config.data_dir, config.fsync)?;
        let vhosts = DashMap::new();
        for v in &config.vhosts {
            vhosts.insert(v.clone(), Vhost::recover(v, store.clone())?);
        }
        let limit = config.memory_limit.unwrap_or_else(memory::default_limit);
        let broker = Arc::new(Broker {
            memory: Arc::new(memory::MemoryAlarm::new(limit, store.meter)),
            config,
            store,
            vhosts,
            next_conn_id: AtomicU64::new(1),
        });
        if let Some(path) = broker.config.definitions.clone() {
            broker
                .import_definitions(&path)
                .map_err(std::io::Error::other)?;
        }
        Ok(broker)
    }

    /// The vhost of that name, created (and recovered from disk) if new.
    pub fn ensure_vhost(&self, name: &str) -> std::io::Result<Arc<Vhost>> {
        if let Some(v) = self.vhost(name) {
            return Ok(v);
        }
        let v = Vhost::recover(name, self.store.clone())?;
        self.vhosts.insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// Start each vhost's housekeeping (message expiry); needs a tokio runtime.
    pub fn spawn_housekeeping(&self) {
        self.memory.spawn();
        for v in self.vhosts.iter() {
            v.spawn_housekeeping();
        }
    }

    /// Every vhost, by name.
    pub fn vhosts(&self) -> Vec<Arc<Vhost>> {
        let mut v: Vec<Arc<Vhost>> = self.vhosts.iter().map(|v| v.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
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
