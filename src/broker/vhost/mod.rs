//! A virtual host: its exchanges and queues, and the operations on them with
//! RabbitMQ's rules (reserved names, exclusivity, equivalence, auto-delete).

mod bindings;
mod delayed;
mod exchanges;
mod persistence;
mod policies;
mod publish;
pub use publish::Enqueued;
mod moved;
mod queues;
mod routing;
mod shared;
pub(crate) use shared::{Conn, QueueDecl, Shared};

use delayed::delayed_type;

use super::policy::{self, Policy};
use super::{equivalence, names};
use crate::clock::Clock;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{
    Binding, DELAYED_TYPE, Destination, Exchange, ExchangeKind, Routed, consistent_hash, headers,
};
use crate::queue::Queue;
use crate::queue::args::QueueArgs;
use crate::queue::expiry::ExpiryTimer;
use crate::store::Store;
use crate::store::definitions::{
    BindingDef, Change, Definitions, ExchangeDef, PolicyDef, QueueDef,
};
use crate::store::definitions_log::DefinitionsLog;
use crate::store::queue_log::QueueLog;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{FieldTable, ShortString};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use std::sync::Arc;

pub struct Vhost {
    pub name: String,
    store: Arc<Store>,
    /// The broker's: queues declared, created and deleted here count there.
    totals: Arc<crate::broker::totals::Totals>,
    policies: std::sync::RwLock<Vec<Policy>>,
    /// Limits an operator caps every matching queue to, whatever its
    /// arguments and policy say.
    operator_policies: std::sync::RwLock<Vec<Policy>>,
    /// The sampler's rates of its channels' confirms and unroutables.
    pub(crate) publish_rates: std::sync::Mutex<crate::broker::totals::PublishRates>,
    timer: Arc<ExpiryTimer>,
    /// The time TTLs, x-expires and delays are measured by.
    pub(crate) clock: Clock,
    exchanges: DashMap<ShortString, Arc<Exchange>>,
    queues: DashMap<ShortString, Arc<Queue>>,
    /// Bumped after every queue added or removed, so that `queue_order`
    /// knows when it is stale.
    queue_generation: std::sync::atomic::AtomicU64,
    /// The queues sorted by name, as of a generation: a management page of
    /// 100,000 queues is cut from it without sorting them again.
    queue_order: std::sync::Mutex<(u64, Arc<Vec<Arc<Queue>>>)>,
    /// Its durable definitions on disk (none until recovered).
    definitions: std::sync::Mutex<Option<DefinitionsLog>>,
    /// Changes are not written yet (an import at boot is under way).
    defer_persist: std::sync::atomic::AtomicBool,
    /// Its housekeeping task runs.
    housekeeping: std::sync::atomic::AtomicBool,
    /// Deleted: its connections are being closed, and nothing new may be
    /// made in it (a durable queue would put its data back on disk).
    deleted: std::sync::atomic::AtomicBool,
    /// Its exchanges and queues are a cluster's (`replicate_topology`).
    shared: std::sync::OnceLock<Shared>,
    /// A cluster's queues this node, their home, has done with and removed
    /// ahead of the log (`shared::queue_lost`).
    dying: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

pub struct ExchangeSpec<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub passive: bool,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: &'a FieldTable,
}

pub struct QueueSpec<'a> {
    pub name: &'a str,
    /// `name` was generated for a declare with an empty name (so its
    /// `amq.gen-` prefix is not a client's use of a reserved one).
    pub server_named: bool,
    pub passive: bool,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: &'a FieldTable,
    /// The declaring connection.
    pub conn_id: u64,
}

/// The direct reply-to pseudo-queue.
pub const REPLY_TO: &str = "amq.rabbitmq.reply-to";

const DEFAULT_EXCHANGE_DENIED: &str = "operation not permitted on the default exchange";

impl Vhost {
    fn new(name: &str, store: Arc<Store>, totals: Arc<crate::broker::totals::Totals>) -> Vhost {
        let v = Vhost {
            name: name.to_string(),
            store,
            totals,
            policies: Default::default(),
            operator_policies: Default::default(),
            publish_rates: Default::default(),
            timer: Arc::default(),
            clock: Clock::System,
            exchanges: DashMap::new(),
            queues: DashMap::new(),
            queue_generation: std::sync::atomic::AtomicU64::new(1),
            queue_order: Default::default(),
            housekeeping: Default::default(),
            definitions: Default::default(),
            defer_persist: Default::default(),
            deleted: Default::default(),
            shared: Default::default(),
            dying: Default::default(),
        };
        for (n, k) in [
            ("", ExchangeKind::Direct),
            ("amq.direct", ExchangeKind::Direct),
            ("amq.fanout", ExchangeKind::Fanout),
            ("amq.topic", ExchangeKind::Topic),
            ("amq.headers", ExchangeKind::Headers),
            ("amq.match", ExchangeKind::Headers),
        ] {
            v.exchanges.insert(
                n.into(),
                Exchange::new(n.into(), k, true, false, false, FieldTable::default()),
            );
        }
        v
    }

    /// Expire messages when their time comes and dead-letter them, until
    /// `stop` says so. Once per vhost: later calls do nothing.
    pub fn spawn_housekeeping(
        self: &Arc<Self>,
        tasks: &mut tokio::task::JoinSet<()>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if self
            .housekeeping
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let weak = Arc::downgrade(self);
        let timer = self.timer.clone();
        tasks.spawn(async move {
            loop {
                let Some(v) = weak.upgrade() else { return };
                let wait = timer
                    .next()
                    .map_or(60_000, |at| at.saturating_sub(v.clock.now_ms()));
                drop(v);
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
                    _ = timer.changed.notified() => {}
                    _ = stop.changed() => return,
                }
                let Some(v) = weak.upgrade() else { return };
                let now = v.clock.now_ms();
                for q in timer.take_due(now) {
                    let (unused, dead) = q.expire(now);
                    match &q.args().delay_for {
                        Some(x) => v.release_delayed(x, dead.0),
                        None => v.dead_letter(&q, dead),
                    }
                    if unused {
                        tracing::debug!("queue '{}' unused for its x-expires; deleted", q.name);
                        v.queue_lost(&q);
                    }
                }
            }
        });
    }

    /// The vhost was deleted: delete its queues (their consumers are told)
    /// and exchanges, and write nothing more to its definitions.
    pub(crate) fn destroy(&self) {
        self.deleted
            .store(true, std::sync::atomic::Ordering::Release);
        self.defer_persistence(true);
        let queues: Vec<Arc<Queue>> = self.queues.iter().map(|q| q.clone()).collect();
        self.queues.clear();
        self.queues_changed();
        for q in queues {
            q.delete();
        }
        for x in self.exchanges.iter() {
            x.mark_deleted();
        }
        self.exchanges.clear();
        self.timer.changed.notify_one();
    }

    /// Refuse to make anything in a deleted vhost (its connections are
    /// told 320 a moment later).
    pub(crate) fn check_alive(&self) -> AmqpResult<()> {
        if self.deleted.load(std::sync::atomic::Ordering::Acquire) {
            return Err(AmqpError::not_found(format!(
                "vhost '{}' is deleted",
                self.name
            )));
        }
        Ok(())
    }

    fn no_exchange(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no exchange '{name}' in vhost '{}'", self.name))
    }

    fn no_queue(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no queue '{name}' in vhost '{}'", self.name))
    }

    /// What this vhost's messages count in (its broker's meter).
    pub fn meter(&self) -> crate::message::Meter {
        self.store.meter
    }

    pub fn exchange(&self, name: &str) -> AmqpResult<Arc<Exchange>> {
        self.exchanges
            .get(name)
            .map(|e| e.clone())
            .ok_or_else(|| self.no_exchange(name))
    }

    /// Every queue, in no particular order.
    pub(crate) fn exchange_list(&self) -> Vec<Arc<Exchange>> {
        let mut v: Vec<Arc<Exchange>> = self.exchanges.iter().map(|x| x.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub(crate) fn queue_count(&self) -> usize {
        self.queues.len()
    }

    pub(crate) fn queue_list(&self) -> Vec<Arc<Queue>> {
        self.queues.iter().map(|q| q.clone()).collect()
    }

    /// The queues in name order, sorted again only after one came or went.
    pub(crate) fn queues_by_name(&self) -> Arc<Vec<Arc<Queue>>> {
        use std::sync::atomic::Ordering;
        let generation = self.queue_generation.load(Ordering::Acquire);
        let mut cached = self.queue_order.lock().unwrap_or_else(|p| p.into_inner());
        if cached.0 != generation {
            let mut list = self.queue_list();
            list.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            *cached = (generation, Arc::new(list));
        }
        cached.1.clone()
    }

    /// A queue was added or removed (call after changing `queues`).
    fn queues_changed(&self) {
        self.queue_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn queue(&self, name: &str) -> AmqpResult<Arc<Queue>> {
        self.queues
            .get(name)
            .map(|q| q.clone())
            .ok_or_else(|| self.no_queue(name))
    }

    /// A queue the connection may use: exclusive queues only by their owner.
    pub fn queue_for(&self, name: &str, conn_id: u64) -> AmqpResult<Arc<Queue>> {
        let q = self.queue(name)?;
        self.check_exclusive(&q, conn_id)?;
        Ok(q)
    }

    pub(crate) fn check_exclusive(&self, q: &Queue, conn_id: u64) -> AmqpResult<()> {
        match q.exclusive_owner {
            Some(owner) if owner != conn_id => Err(self.locked(q.name.as_str())),
            _ => Ok(()),
        }
    }

    fn locked(&self, name: &str) -> AmqpError {
        AmqpError::resource_locked(format!(
            "cannot obtain exclusive access to locked queue '{name}' in vhost '{}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
            self.name
        ))
    }
}
