//! The broker's shared registries: vhosts, users, and connection ids.
//! Everything here is read-mostly; the publish path only looks things up.

mod access;
pub mod alarms;
pub(crate) mod changes;
pub mod connections;
pub mod dead_letter;
pub mod equivalence;
pub mod import;
pub mod names;
pub mod policy;
mod sampler;
pub(crate) mod topology;
#[cfg(test)]
mod topology_tests;
pub(crate) mod totals;
pub mod vhost;

use crate::config::Config;
use crate::store::Store;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
pub use vhost::Vhost;

pub struct Broker {
    pub config: Config,
    /// Open connections, for the management API.
    pub connections: connections::Connections,
    /// Background tasks (expiry timers, the memory alarm), joined at shutdown.
    tasks: std::sync::Mutex<tokio::task::JoinSet<()>>,
    /// Tells them to stop.
    stop: tokio::sync::watch::Sender<bool>,
    pub store: Arc<Store>,
    /// Users, vhosts, permissions and limits: what AMQP and HTTP both check.
    pub(crate) access: Arc<crate::access::Access>,
    vhosts: DashMap<String, Arc<Vhost>>,
    next_conn_id: AtomicU64,
    pub alarms: Arc<alarms::Alarms>,
    /// (protocol, address) of every listener, once bound.
    pub(crate) listeners: std::sync::Mutex<Vec<(&'static str, std::net::SocketAddr)>>,
    /// When it started, ms since the epoch.
    pub(crate) started_at: u64,
    /// Objects opened and closed, and what the closed ones counted.
    pub(crate) totals: Arc<totals::Totals>,
    /// Itself, for what it hands out that must not keep it alive.
    weak: std::sync::OnceLock<std::sync::Weak<Broker>>,
    /// The cluster's topology was brought back after a restart
    /// (`topology::restore_topology`).
    topology_restored: std::sync::atomic::AtomicBool,
    /// This node's place in a cluster, once started (`[cluster]`).
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl Broker {
    /// The cluster's name: the one set at runtime (`PUT /api/cluster-name`,
    /// kept as the global parameter `cluster_name`, as RabbitMQ keeps it),
    /// else the configured one. The node's own name stays the configured.
    pub fn cluster_name(&self) -> String {
        match self.access.snapshot().global_parameters.get("cluster_name") {
            Some(serde_json::Value::String(name)) => name.clone(),
            _ => self.config.cluster_name.clone(),
        }
    }

    /// This node's name: its cluster node name, else the configured
    /// cluster name (a node alone is its own cluster, as RabbitMQ's).
    pub fn node_name(&self) -> &str {
        match &self.config.cluster {
            Some(c) => &c.node_name,
            None => &self.config.cluster_name,
        }
    }

    /// The cluster this node is part of, if clustering is configured.
    pub(crate) fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.get()
    }

    /// The nodes of a new queue's group, if it is a quorum queue of a
    /// cluster.
    pub(crate) fn quorum_replicas(
        &self,
        arguments: &amq_protocol::types::FieldTable,
        home: &str,
    ) -> Vec<String> {
        self.cluster()
            .map(|c| c.replicas_for(arguments, home))
            .unwrap_or_default()
    }

    /// What a vhost of a cluster with replicated topology needs of it.
    fn shared_with(&self) -> vhost::Shared {
        vhost::Shared {
            me: self.node_name().into(),
            broker: self.weak.get().cloned().unwrap_or_default(),
        }
    }

    /// Exchanges and their bindings are changed through the cluster's log.
    pub(crate) fn replicates_topology(&self) -> bool {
        self.config
            .cluster
            .as_ref()
            .is_some_and(|c| c.replicate_topology)
    }

    /// Open the data dir and recover every vhost's durable state.
    pub fn new(config: Config) -> std::io::Result<Arc<Broker>> {
        let store = Store::open(&config.data_dir, config.fsync)?;
        let defaults = crate::access::Defaults {
            vhost: &config.default_vhost,
            user: &config.default_user,
            pass: &config.default_pass,
            tags: &config.default_user_tags,
        };
        let access = Arc::new(crate::access::Access::open(
            &config.data_dir,
            &defaults,
            store.vhosts_on_disk(),
        )?);
        let vhosts = DashMap::new();
        let totals = Arc::new(totals::Totals::default());
        for v in access.snapshot().vhosts.keys() {
            vhosts.insert(v.clone(), Vhost::recover(v, store.clone(), totals.clone())?);
        }
        let limits = alarms::Limits {
            memory: config.memory_limit.unwrap_or_else(|| {
                (alarms::total_memory() as f64 * config.vm_memory_high_watermark) as u64
            }),
            paging_ratio: config.vm_memory_high_watermark_paging_ratio,
            strategy: config.vm_memory_calculation_strategy,
            disk_free: config.disk_free_limit,
            data_dir: config.data_dir.clone(),
        };
        let broker = Arc::new(Broker {
            alarms: Arc::new(alarms::Alarms::new(limits, store.meter)),
            config,
            store,
            access,
            vhosts,
            next_conn_id: AtomicU64::new(1),
            tasks: Default::default(),
            stop: tokio::sync::watch::Sender::new(false),
            connections: Default::default(),
            listeners: Default::default(),
            started_at: crate::clock::system_now_ms(),
            totals,
            cluster: Default::default(),
            weak: Default::default(),
            topology_restored: Default::default(),
        });
        let _ = broker.weak.set(Arc::downgrade(&broker));
        if broker.replicates_topology() {
            for v in broker.vhosts() {
                v.share(broker.shared_with());
            }
        }
        // A cluster with replicated topology imports it through its log
        // only (`cluster::tasks::import_at_boot`): a queue made here first
        // would be this node's alone.
        if let Some(path) = broker.config.definitions.clone()
            && !broker.replicates_topology()
        {
            broker
                .import_definitions(&path)
                .map_err(std::io::Error::other)?;
        }
        Ok(broker)
    }

    /// The vhost of that name, created (and recovered from disk) if new.
    /// Only for vhosts access control already lists (`add_vhost`).
    pub(crate) fn ensure_vhost(&self, name: &str) -> std::io::Result<Arc<Vhost>> {
        if let Some(v) = self.vhost(name) {
            return Ok(v);
        }
        let v = Vhost::recover(name, self.store.clone(), self.totals.clone())?;
        if self.replicates_topology() {
            v.share(self.shared_with());
        }
        self.vhosts.insert(name.to_string(), v.clone());
        // A vhost made at runtime needs its timers as the others have them
        // (at boot they start with the rest, once there is a runtime).
        if tokio::runtime::Handle::try_current().is_ok() && self.started() {
            v.spawn_housekeeping(&mut self.lock_tasks(), self.stop.subscribe());
        }
        Ok(v)
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, tokio::task::JoinSet<()>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn started(&self) -> bool {
        !self.lock_tasks().is_empty()
    }

    /// Start the background tasks: the memory alarm and each vhost's
    /// housekeeping (message expiry). Needs a tokio runtime.
    pub fn spawn_housekeeping(self: &Arc<Self>) {
        let mut tasks = self.lock_tasks();
        self.alarms.spawn(&mut tasks, self.stop.subscribe());
        self.spawn_sampler(&mut tasks, self.stop.subscribe());
        for v in self.vhosts.iter() {
            v.spawn_housekeeping(&mut tasks, self.stop.subscribe());
        }
    }

    /// Stop the background tasks and wait for them to end.
    pub async fn stop_background(&self) {
        self.stop.send_replace(true);
        let mut tasks = std::mem::take(&mut *self.lock_tasks());
        while tasks.join_next().await.is_some() {}
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
}
