//! A vhost's durable side: recovery at boot and saving its definitions.

use super::delayed::{delay_queue_name, delayed_type};
use super::*;

impl Vhost {
    /// The vhost as its saved definitions and queue logs left it.
    pub(crate) fn recover(
        name: &str,
        store: Arc<Store>,
        totals: Arc<crate::broker::totals::Totals>,
    ) -> std::io::Result<Arc<Vhost>> {
        let v = Vhost::new(name, store.clone(), totals);
        let (log, defs) = DefinitionsLog::open(&store.vhost_dir(name))?;
        *v.definitions.lock().unwrap_or_else(|e| e.into_inner()) = Some(log);
        for (list, saved) in [
            (&v.policies, defs.policies),
            (&v.operator_policies, defs.operator_policies),
        ] {
            for p in saved {
                match Policy::new(&p.name, &p.pattern, &p.apply_to, p.priority, p.definition) {
                    Ok(p) => list.write().unwrap_or_else(|e| e.into_inner()).push(p),
                    Err(e) => tracing::error!("vhost '{name}': {e}; skipped"),
                }
            }
        }
        let (policies, operator) = (v.policies(), v.operator_policies());
        for x in defs.exchanges {
            let (kind, delayed) = if x.kind == DELAYED_TYPE {
                let dir = store.queue_dir(name, &delay_queue_name(&x.name));
                let (log, recovered) = QueueLog::open(&dir, store.sync.clone(), store.meter)?;
                tracing::info!(
                    "vhost '{name}': exchange '{}' holds {} delayed messages",
                    x.name,
                    recovered.len()
                );
                let q = v
                    .delay_queue(&x.name, true, recovered, Some(log))
                    .map_err(std::io::Error::other)?;
                (
                    delayed_type(&x.arguments).unwrap_or(ExchangeKind::Direct),
                    Some(q),
                )
            } else {
                match ExchangeKind::parse(&x.kind) {
                    Some(k) => (k, None),
                    None => {
                        tracing::error!(
                            "vhost '{name}': exchange '{}' has unknown type '{}'; skipped",
                            x.name,
                            x.kind
                        );
                        continue;
                    }
                }
            };
            v.exchanges.insert(
                x.name.as_str().into(),
                Exchange::with_delay_queue(
                    x.name.as_str().into(),
                    kind,
                    true,
                    x.auto_delete,
                    x.internal,
                    x.arguments,
                    delayed,
                ),
            );
        }
        let mut messages = 0;
        for q in defs.queues {
            if !q.replicas.is_empty() {
                v.quorum_queue_after_restart(q);
                continue;
            }
            let (log, recovered) = QueueLog::open(
                &store.queue_dir(name, &q.name),
                store.sync.clone(),
                store.meter,
            )?;
            messages += recovered.len();
            let effective = policy::queue_arguments(&policies, &operator, &q.name, &q.arguments);
            let args = QueueArgs::parse(&effective, &q.name, name).unwrap_or_default();
            let mut queue = Queue::with_log(
                q.name.as_str().into(),
                true,
                None,
                q.auto_delete,
                q.arguments,
                Some(log),
                Some(store.pager(&q.name)),
                recovered,
                args,
                Some(v.timer.clone()),
                v.clock.clone(),
            );
            if q.incarnation != 0 {
                let placement = crate::queue::Placement {
                    elsewhere: None,
                    incarnation: q.incarnation,
                    owner: None,
                    home: None,
                    replicas: Arc::from([]),
                };
                Queue::place(&mut queue, placement);
            }
            queue.start_timers();
            v.queues.insert(q.name.as_str().into(), queue);
            v.queues_changed();
        }
        for b in defs.bindings {
            let Some(src) = v.exchanges.get(b.source.as_str()).map(|x| x.clone()) else {
                continue;
            };
            let dest = if b.destination_type == "exchange" {
                v.exchanges
                    .get(b.destination.as_str())
                    .map(|x| Destination::Exchange(x.clone()))
            } else {
                v.queues
                    .get(b.destination.as_str())
                    .map(|q| Destination::Queue(q.clone()))
            };
            let Some(dest) = dest else { continue };
            let x_match = headers::x_match(&b.arguments).unwrap_or(headers::XMatch::All);
            src.bind(Binding {
                dest,
                key: b.routing_key.as_str().into(),
                args: b.arguments,
                x_match,
            });
        }
        tracing::info!(
            "vhost '{name}': recovered {} exchanges, {} queues, {messages} messages",
            v.exchanges.len(),
            v.queues.len()
        );
        Ok(Arc::new(v))
    }

    /// Make the durable definitions as they are now durable if this change
    /// touched a durable entity (what changed is appended to the log);
    /// called before the change's -Ok is sent.
    pub(super) fn persist_if(&self, durable: bool) -> AmqpResult<()> {
        if !self.persisting(durable) {
            return Ok(());
        }
        self.persist_now()
    }

    /// Make one change durable, as `persist_if` does, when the caller knows
    /// exactly what changed (nothing cascaded): appended as it is, without
    /// comparing every definition of the vhost against the log.
    pub(super) fn persist_change(
        &self,
        durable: bool,
        change: impl FnOnce() -> Change,
    ) -> AmqpResult<()> {
        if !self.persisting(durable) {
            return Ok(());
        }
        self.with_log(|log| log.append(change()))
    }

    /// Whether a change to an entity this durable is written now.
    fn persisting(&self, durable: bool) -> bool {
        durable
            && !self
                .defer_persist
                .load(std::sync::atomic::Ordering::Acquire)
    }

    /// While deferred, changes are not written until `persist_now`: for a
    /// definitions import at boot, before any client is served.
    pub(crate) fn defer_persistence(&self, on: bool) {
        self.defer_persist
            .store(on, std::sync::atomic::Ordering::Release);
    }

    /// Write whatever changed now.
    pub(crate) fn persist_now(&self) -> AmqpResult<()> {
        self.with_log(|log| log.record(self.snapshot()))
    }

    /// Write to the vhost's definitions log, if it has one.
    fn with_log(
        &self,
        write: impl FnOnce(&mut DefinitionsLog) -> std::io::Result<()>,
    ) -> AmqpResult<()> {
        let mut log = self.definitions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(log) = log.as_mut() else {
            return Ok(());
        };
        write(log).map_err(|e| AmqpError::internal_error(format!("cannot save definitions: {e}")))
    }

    /// What of this vhost survives a restart, as plain data (also what an
    /// export of its definitions lists).
    pub(crate) fn snapshot(&self) -> Definitions {
        let mut d = Definitions::default();
        // A stand-in for another node's queue is that node's to keep.
        let durable_queue =
            |q: &Queue| q.durable && q.exclusive_owner.is_none() && q.elsewhere().is_none();
        for x in self.exchanges.iter() {
            if !x.durable || x.name.as_str().is_empty() {
                continue;
            }
            if !x.name.as_str().starts_with("amq.") {
                d.exchanges.push(ExchangeDef {
                    name: x.name.to_string(),
                    kind: x.type_name().to_string(),
                    auto_delete: x.auto_delete,
                    internal: x.internal,
                    arguments: x.arguments.clone(),
                });
            }
            for b in x.bindings() {
                let (destination, kind) = match &b.dest {
                    Destination::Queue(q) if durable_queue(q) => (q.name.to_string(), "queue"),
                    Destination::Exchange(e) if e.durable => (e.name.to_string(), "exchange"),
                    _ => continue,
                };
                d.bindings.push(BindingDef {
                    source: x.name.to_string(),
                    destination,
                    destination_type: kind.to_string(),
                    routing_key: b.key.to_string(),
                    arguments: b.args.clone(),
                });
            }
        }
        for q in self.queues.iter() {
            if durable_queue(&q) {
                d.queues.push(QueueDef {
                    name: q.name.to_string(),
                    auto_delete: q.auto_delete,
                    arguments: q.arguments.clone(),
                    incarnation: q.incarnation(),
                    replicas: q.replicas().to_vec(),
                });
            }
        }
        let def = |p: Policy| PolicyDef {
            name: p.name,
            pattern: p.pattern.as_str().to_string(),
            apply_to: p.apply_to.as_str().to_string(),
            priority: p.priority,
            definition: p.definition,
        };
        d.policies.extend(self.policies().into_iter().map(def));
        d.operator_policies
            .extend(self.operator_policies().into_iter().map(def));
        d
    }
}
