//! A virtual host: its exchanges and queues, and the operations on them with
//! RabbitMQ's rules (reserved names, exclusivity, equivalence, auto-delete).

mod delayed;
mod persistence;
mod policies;
mod routing;

use delayed::delayed_type;

use super::policy::{self, Policy};
use super::{equivalence, names};
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{
    Binding, DELAYED_TYPE, Destination, Exchange, ExchangeKind, Routed, consistent_hash, headers,
};
use crate::queue::Queue;
use crate::queue::args::QueueArgs;
use crate::queue::expiry::{ExpiryTimer, now_ms};
use crate::store::Store;
use crate::store::definitions::{BindingDef, Definitions, ExchangeDef, PolicyDef, QueueDef};
use crate::store::queue_log::QueueLog;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{FieldTable, ShortString};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use std::sync::Arc;

pub struct Vhost {
    pub name: String,
    store: Arc<Store>,
    policies: std::sync::RwLock<Vec<Policy>>,
    timer: Arc<ExpiryTimer>,
    exchanges: DashMap<ShortString, Arc<Exchange>>,
    queues: DashMap<ShortString, Arc<Queue>>,
    /// Its housekeeping task runs.
    housekeeping: std::sync::atomic::AtomicBool,
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
    fn new(name: &str, store: Arc<Store>) -> Vhost {
        let v = Vhost {
            name: name.to_string(),
            store,
            policies: Default::default(),
            timer: Arc::default(),
            exchanges: DashMap::new(),
            queues: DashMap::new(),
            housekeeping: Default::default(),
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
                let wait = timer
                    .next()
                    .map_or(60_000, |at| at.saturating_sub(now_ms()));
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
                    _ = timer.changed.notified() => {}
                    _ = stop.changed() => return,
                }
                let Some(v) = weak.upgrade() else { return };
                let now = now_ms();
                for q in timer.take_due(now) {
                    let mut dead = Vec::new();
                    let unused = q.expire(now, &mut dead);
                    match &q.args().delay_for {
                        Some(x) => v.release_delayed(x, dead),
                        None => v.dead_letter(&q, dead),
                    }
                    if unused {
                        tracing::debug!("queue '{}' unused for its x-expires; deleted", q.name);
                        v.remove_queue(&q);
                    }
                }
            }
        });
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

    fn check_exclusive(&self, q: &Queue, conn_id: u64) -> AmqpResult<()> {
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

    pub fn declare_exchange(&self, s: &ExchangeSpec) -> AmqpResult<()> {
        if s.passive {
            // RabbitMQ refuses even a passive declare of the default exchange.
            if s.name.is_empty() {
                return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
            }
            return self.exchange(s.name).map(|_| ());
        }
        let delayed = s.kind == DELAYED_TYPE;
        let kind = if delayed {
            delayed_type(s.arguments)?
        } else {
            ExchangeKind::parse(s.kind).ok_or_else(|| {
                // RabbitMQ's words: "" names an Erlang atom that is no type.
                let what = if s.kind.is_empty() {
                    "invalid"
                } else {
                    "unknown"
                };
                AmqpError::command_invalid(format!("{what} exchange type '{}'", s.kind))
            })?
        };
        if s.name.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        match self.exchanges.entry(s.name.into()) {
            Entry::Occupied(e) => {
                let x = e.get();
                let (n, v) = (s.name, self.name.as_str());
                if x.kind != kind || x.delayed.is_some() != delayed {
                    return Err(AmqpError::precondition_failed(format!(
                        "inequivalent arg 'type' for exchange '{n}' in vhost '{v}': received '{}' but current is '{}'",
                        s.kind,
                        x.type_name()
                    )));
                }
                equivalence::flag("durable", n, "exchange", v, s.durable, x.durable)?;
                equivalence::flag(
                    "auto_delete",
                    n,
                    "exchange",
                    v,
                    s.auto_delete,
                    x.auto_delete,
                )?;
                equivalence::flag("internal", n, "exchange", v, s.internal, x.internal)?;
                equivalence::exchange_args(n, v, s.arguments, &x.arguments)
            }
            Entry::Vacant(_) if s.name.starts_with("amq.") => {
                Err(AmqpError::access_refused(format!(
                    "exchange name '{}' contains reserved prefix 'amq.*'",
                    s.name
                )))
            }
            Entry::Vacant(e) => {
                if kind == ExchangeKind::ConsistentHash {
                    consistent_hash::check_arguments(s.arguments)
                        .map_err(AmqpError::precondition_failed)?;
                }
                check_dedup_arguments(kind, s.arguments)?;
                let queue = if delayed {
                    Some(self.delay_queue(s.name, s.durable, Vec::new(), None)?)
                } else {
                    None
                };
                let x = Exchange::with_delay_queue(
                    s.name.into(),
                    kind,
                    s.durable,
                    s.auto_delete,
                    s.internal,
                    s.arguments.clone(),
                    queue,
                );
                e.insert(x);
                self.persist_if(s.durable)
            }
        }
    }

    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> AmqpResult<()> {
        if name.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system exchange '{name}' in vhost '{}' not allowed",
                self.name
            )));
        }
        // Deleting an exchange that does not exist succeeds, as in RabbitMQ.
        let Some(x) = self.exchanges.get(name).map(|x| x.clone()) else {
            return Ok(());
        };
        if if_unused && x.has_bindings() {
            return Err(AmqpError::precondition_failed(format!(
                "exchange '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        self.exchanges.remove(name);
        if let Some(q) = &x.delayed {
            q.delete();
        }
        let durable = x.durable;
        self.drop_bindings_to(&Destination::Exchange(x));
        self.persist_if(durable)
    }

    /// Remove every binding leading to `dest` (being deleted), and any
    /// auto-delete exchange that loses its last binding that way.
    fn drop_bindings_to(&self, dest: &Destination) {
        let mut emptied = vec![];
        for x in self.exchanges.iter() {
            let removed = match dest {
                Destination::Queue(q) => x.unbind_queue(q),
                Destination::Exchange(e) => x.unbind_exchange(e),
            };
            if removed && x.auto_delete && !x.has_bindings() {
                emptied.push(x.clone());
            }
        }
        for x in emptied {
            if self
                .exchanges
                .remove_if(&x.name, |_, x| !x.has_bindings())
                .is_some()
            {
                self.drop_bindings_to(&Destination::Exchange(x));
            }
        }
    }

    /// What a passive declare of the pseudo-queue itself answers with.
    fn reply_queue_stub(&self) -> Arc<Queue> {
        Queue::new(REPLY_TO.into(), false, None, false, FieldTable::default())
    }

    /// The hidden queue behind a channel's direct reply-to consumer; its
    /// name is what requests carry in reply_to.
    pub fn reply_queue(&self) -> Arc<Queue> {
        let name = names::generate(&format!("{REPLY_TO}."));
        let q = Queue::new(
            name.as_str().into(),
            false,
            None,
            true,
            FieldTable::default(),
        );
        self.queues.insert(name.as_str().into(), q.clone());
        q
    }

    /// Declare (or find, or check) a queue: the queue, its ready-message and
    /// consumer counts.
    pub fn declare_queue(&self, s: &QueueSpec) -> AmqpResult<(Arc<Queue>, usize, usize)> {
        if s.passive && s.name == REPLY_TO {
            return Ok((self.reply_queue_stub(), 0, 0));
        }
        if s.passive {
            let q = self.queue_for(s.name, s.conn_id)?;
            q.touch();
            let (m, c) = q.counts();
            return Ok((q, m, c));
        }
        let name = if s.name.is_empty() {
            names::queue_name()
        } else if s.name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "queue name '{}' contains reserved prefix 'amq.*'",
                s.name
            )));
        } else {
            s.name.to_string()
        };
        // The declared arguments must stand on their own (a routing key
        // without a dead-letter exchange is refused even when a policy
        // supplies the exchange), then with the policy's.
        QueueArgs::parse(s.arguments, &name, &self.name)?;
        let effective = policy::queue_arguments(&self.policies(), &name, s.arguments);
        let args = QueueArgs::parse(&effective, &name, &self.name)?;
        args.check_properties(&name, &self.name, s.durable, s.exclusive, s.auto_delete)?;
        let q = match self.queues.entry(name.as_str().into()) {
            Entry::Occupied(e) => {
                let q = e.get().clone();
                drop(e);
                self.check_exclusive(&q, s.conn_id)?;
                // The exclusive flag must match, even on the owning connection.
                if s.exclusive != q.exclusive_owner.is_some() {
                    return Err(self.locked(&name));
                }
                let v = self.name.as_str();
                equivalence::flag("durable", &name, "queue", v, s.durable, q.durable)?;
                equivalence::flag(
                    "auto_delete",
                    &name,
                    "queue",
                    v,
                    s.auto_delete,
                    q.auto_delete,
                )?;
                equivalence::queue_args(&name, v, s.arguments, &q.arguments)?;
                q.touch();
                q
            }
            Entry::Vacant(e) => {
                let persistent = s.durable && !s.exclusive;
                let log = if persistent {
                    let dir = self.store.queue_dir(&self.name, &name);
                    // A fresh queue starts empty whatever an earlier one left.
                    let _ = std::fs::remove_dir_all(&dir);
                    let (log, _) = QueueLog::open(&dir, self.store.sync.clone(), self.store.meter)
                        .map_err(|e| {
                            AmqpError::internal_error(format!("cannot create queue storage: {e}"))
                        })?;
                    Some(log)
                } else {
                    None
                };
                let q = Queue::with_log(
                    name.as_str().into(),
                    s.durable,
                    s.exclusive.then_some(s.conn_id),
                    s.auto_delete,
                    s.arguments.clone(),
                    log,
                    Vec::new(),
                    args,
                    Some(self.timer.clone()),
                );
                e.insert(q.clone());
                self.persist_if(persistent)?;
                q.touch();
                q
            }
        };
        let (m, c) = q.counts();
        Ok((q, m, c))
    }

    /// Delete a queue by name; the number of ready messages it held.
    /// A queue that does not exist counts as deleted (RabbitMQ does the same).
    pub fn delete_queue(
        &self,
        name: &str,
        conn_id: u64,
        if_unused: bool,
        if_empty: bool,
    ) -> AmqpResult<usize> {
        let q = match self.queues.get(name) {
            Some(q) => q.clone(),
            None => return Ok(0),
        };
        self.check_exclusive(&q, conn_id)?;
        let (ready, consumers) = q.counts();
        if if_unused && consumers > 0 {
            return Err(AmqpError::precondition_failed(format!(
                "queue '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        if if_empty && ready > 0 {
            return Err(AmqpError::precondition_failed(format!(
                "queue '{name}' in vhost '{}' is not empty",
                self.name
            )));
        }
        Ok(self.remove_queue(&q))
    }

    /// Unregister and delete a queue, dropping its bindings and any
    /// auto-delete exchange left without bindings.
    pub fn remove_queue(&self, q: &Arc<Queue>) -> usize {
        self.queues
            .remove_if(q.name.as_str(), |_, v| Arc::ptr_eq(v, q));
        let mut emptied = vec![];
        for x in self.exchanges.iter() {
            if x.unbind_queue(q) && x.auto_delete && !x.has_bindings() {
                emptied.push(x.name.clone());
            }
        }
        for name in emptied {
            self.exchanges.remove_if(&name, |_, x| !x.has_bindings());
        }
        q.delete()
    }

    /// The queue and exchange of a queue binding; the default exchange
    /// takes no explicit bindings.
    fn binding_ends(
        &self,
        queue: &str,
        exchange: &str,
        conn_id: u64,
    ) -> AmqpResult<(Arc<Queue>, Arc<Exchange>)> {
        if exchange.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        Ok((self.queue_for(queue, conn_id)?, self.exchange(exchange)?))
    }

    pub fn bind(
        &self,
        queue: &str,
        exchange: &str,
        key: &str,
        args: &FieldTable,
        conn_id: u64,
    ) -> AmqpResult<()> {
        let (q, x) = self.binding_ends(queue, exchange, conn_id)?;
        let x_match = binding_checks(&x, key, args)?;
        let durable = x.durable && q.durable && q.exclusive_owner.is_none();
        x.bind(Binding {
            dest: Destination::Queue(q),
            key: key.into(),
            args: args.clone(),
            x_match,
        });
        self.persist_if(durable)
    }

    pub fn unbind(
        &self,
        queue: &str,
        exchange: &str,
        key: &str,
        args: &FieldTable,
        conn_id: u64,
    ) -> AmqpResult<()> {
        if exchange.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        // Unbinding what is already gone succeeds, as in RabbitMQ: cleanup
        // code unbinds after auto-delete has removed things.
        let (Some(q), Some(x)) = (
            self.queues.get(queue).map(|q| q.clone()),
            self.exchanges.get(exchange).map(|x| x.clone()),
        ) else {
            return Ok(());
        };
        self.check_exclusive(&q, conn_id)?;
        let durable = x.durable && q.durable;
        if self.unbind_dest(&x, &Destination::Queue(q), key, args) {
            self.persist_if(durable)?;
        }
        Ok(())
    }

    /// Remove one binding; true if it existed.
    fn unbind_dest(
        &self,
        x: &Arc<Exchange>,
        dest: &Destination,
        key: &str,
        args: &FieldTable,
    ) -> bool {
        if !x.unbind(dest, key, args) {
            return false;
        }
        if x.auto_delete
            && !x.has_bindings()
            && self
                .exchanges
                .remove_if(&x.name, |_, x| !x.has_bindings())
                .is_some()
        {
            self.drop_bindings_to(&Destination::Exchange(x.clone()));
        }
        true
    }

    /// Exchange.Bind: messages routed by `source` also go through `destination`.
    pub fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        key: &str,
        args: &FieldTable,
    ) -> AmqpResult<()> {
        let (dst, src) = self.exchange_pair(destination, source)?;
        let x_match = binding_checks(&src, key, args)?;
        let durable = src.durable && dst.durable;
        src.bind(Binding {
            dest: Destination::Exchange(dst),
            key: key.into(),
            args: args.clone(),
            x_match,
        });
        self.persist_if(durable)
    }

    pub fn unbind_exchange(
        &self,
        destination: &str,
        source: &str,
        key: &str,
        args: &FieldTable,
    ) -> AmqpResult<()> {
        if destination.is_empty() || source.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        let (Some(dst), Some(src)) = (
            self.exchanges.get(destination).map(|x| x.clone()),
            self.exchanges.get(source).map(|x| x.clone()),
        ) else {
            return Ok(());
        };
        let durable = src.durable && dst.durable;
        if self.unbind_dest(&src, &Destination::Exchange(dst), key, args) {
            self.persist_if(durable)?;
        }
        Ok(())
    }

    fn exchange_pair(
        &self,
        destination: &str,
        source: &str,
    ) -> AmqpResult<(Arc<Exchange>, Arc<Exchange>)> {
        if destination.is_empty() || source.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        Ok((self.exchange(destination)?, self.exchange(source)?))
    }
}

/// What a binding must satisfy for its exchange's type: headers bindings a
/// valid x-match (parsed once here), consistent-hash bindings an integer weight.
fn binding_checks(x: &Exchange, key: &str, args: &FieldTable) -> AmqpResult<headers::XMatch> {
    match x.kind {
        ExchangeKind::Headers => headers::x_match(args).map_err(AmqpError::precondition_failed),
        ExchangeKind::ConsistentHash => consistent_hash::weight(key)
            .map(|_| headers::XMatch::All)
            .map_err(AmqpError::precondition_failed),
        _ => Ok(headers::XMatch::All),
    }
}

/// x-message-deduplication arguments: LavinMQ's checks for any exchange,
/// and the plugin's for its exchange type (which needs a cache size).
fn check_dedup_arguments(kind: ExchangeKind, args: &FieldTable) -> AmqpResult<()> {
    let plugin = kind == ExchangeKind::MessageDeduplication;
    let parsed = crate::dedup::DedupArgs::parse(args, plugin);
    if plugin {
        let bad_ttl = match &parsed {
            Ok(Some(a)) => a.cache_ttl == Some(0),
            Ok(None) => false,
            Err(e) => e.starts_with("x-cache-ttl"),
        };
        let size_ok = matches!(&parsed, Ok(Some(a)) if a.cache_size.is_some_and(|n| n > 0));
        if !size_ok && !bad_ttl {
            return Err(AmqpError::precondition_failed(
                "Missing or invalid argument, 'x-cache-size' must be an integer greater than 0",
            ));
        }
        if bad_ttl {
            return Err(AmqpError::precondition_failed(
                "Invalid argument, 'x-cache-ttl' must be an integer greater than 0",
            ));
        }
    }
    parsed.map(|_| ()).map_err(AmqpError::precondition_failed)
}
