//! Queue.Declare and Delete with RabbitMQ's rules: server-named and
//! reserved names, exclusivity, equivalence, policies, direct reply-to.

use super::*;
use crate::broker::totals::Totals;

impl Vhost {
    /// What a passive declare of the pseudo-queue itself answers with.
    fn reply_queue_stub(&self) -> Arc<Queue> {
        Queue::new(REPLY_TO.into(), false, None, false, FieldTable::default())
    }

    /// The hidden queue behind a channel's direct reply-to consumer; its
    /// name is what requests carry in reply_to.
    pub fn reply_queue(&self) -> Arc<Queue> {
        let name = names::generate(&format!("{REPLY_TO}.{}", self.reply_node_prefix()));
        let q = Queue::new(
            name.as_str().into(),
            false,
            None,
            true,
            FieldTable::default(),
        );
        self.queues.insert(name.as_str().into(), q.clone());
        self.queues_changed();
        q
    }

    /// What Queue.Declare requires of an existing queue: the same owner
    /// (exclusive) and the same flags and arguments.
    fn check_equivalent_queue(&self, q: &Queue, s: &QueueSpec, name: &str) -> AmqpResult<()> {
        self.check_exclusive(q, s.conn_id)?;
        // The exclusive flag must match, even on the owning connection.
        if s.exclusive != q.exclusive_owner.is_some() {
            return Err(self.locked(name));
        }
        let v = self.name.as_str();
        equivalence::flag("durable", name, "queue", v, s.durable, q.durable)?;
        equivalence::flag(
            "auto_delete",
            name,
            "queue",
            v,
            s.auto_delete,
            q.auto_delete,
        )?;
        equivalence::queue_args(name, v, s.arguments, &q.arguments)
    }

    /// Everything a (non-passive, named) declare of `s` would refuse,
    /// checked without declaring: what an import checks before it applies.
    pub(crate) fn check_queue_declare(&self, s: &QueueSpec) -> AmqpResult<()> {
        names::check_length("queue", s.name)?;
        if s.name.starts_with("amq.") && !s.server_named {
            return Err(AmqpError::access_refused(format!(
                "queue name '{}' contains reserved prefix 'amq.*'",
                s.name
            )));
        }
        QueueArgs::parse(s.arguments, s.name, &self.name)?;
        let effective = self.effective_arguments(s.name, s.arguments);
        let args = QueueArgs::parse(&effective, s.name, &self.name)?;
        args.check_properties(s.name, &self.name, s.durable, s.exclusive, s.auto_delete)?;
        match self.queues.get(s.name).map(|q| q.clone()) {
            Some(q) => self.check_equivalent_queue(&q, s, s.name),
            None => Ok(()),
        }
    }

    /// Declare (or find, or check) a queue: the queue, its ready-message and
    /// consumer counts.
    pub fn declare_queue(&self, s: &QueueSpec) -> AmqpResult<(Arc<Queue>, usize, usize)> {
        self.declare_queue_at(s, None)
    }

    /// Declare a queue, placed in its cluster if `placement` says so: a
    /// queue whose home is another node is a stand-in here, without
    /// storage, which routing sends on to its home.
    pub(super) fn declare_queue_at(
        &self,
        s: &QueueSpec,
        placement: Option<crate::queue::Placement>,
    ) -> AmqpResult<(Arc<Queue>, usize, usize)> {
        names::check_length("queue", s.name)?;
        if s.passive && s.name == REPLY_TO {
            return Ok((self.reply_queue_stub(), 0, 0));
        }
        if s.passive {
            let q = self.queue_for(s.name, s.conn_id)?;
            Totals::bump(&self.totals.queues_declared);
            q.touch();
            let (m, c) = q.counts();
            return Ok((q, m, c));
        }
        let name = if s.name.is_empty() {
            names::queue_name()
        } else if s.name.starts_with("amq.") && !s.server_named {
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
        let effective = self.effective_arguments(&name, s.arguments);
        let args = QueueArgs::parse(&effective, &name, &self.name)?;
        args.check_properties(&name, &self.name, s.durable, s.exclusive, s.auto_delete)?;
        let q = match self.queues.entry(name.as_str().into()) {
            Entry::Occupied(e) => {
                let q = e.get().clone();
                drop(e);
                self.check_equivalent_queue(&q, s, &name)?;
                q.touch();
                q
            }
            Entry::Vacant(e) => {
                self.check_alive()?;
                if let Some(p) = placement.as_ref().filter(|p| p.elsewhere.is_some()) {
                    let owner = s.exclusive.then_some(s.conn_id);
                    let mut q = Queue::new(
                        name.as_str().into(),
                        s.durable,
                        owner,
                        s.auto_delete,
                        s.arguments.clone(),
                    );
                    Queue::place(&mut q, p.clone());
                    e.insert(q.clone());
                    self.queues_changed();
                    return Ok((q, 0, 0));
                }
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
                let mut q = Queue::with_log(
                    name.as_str().into(),
                    s.durable,
                    s.exclusive.then_some(s.conn_id),
                    s.auto_delete,
                    s.arguments.clone(),
                    log,
                    Some(self.store.pager(&name)),
                    Vec::new(),
                    args,
                    Some(self.timer.clone()),
                    self.clock.clone(),
                );
                if let Some(p) = placement {
                    Queue::place(&mut q, p);
                }
                e.insert(q.clone());
                self.queues_changed();
                Totals::bump(&self.totals.queues_created);
                self.persist_change(persistent, || {
                    Change::PutQueue(QueueDef {
                        name: q.name.to_string(),
                        auto_delete: q.auto_delete,
                        arguments: q.arguments.clone(),
                        incarnation: q.incarnation(),
                        replicas: q.replicas().to_vec(),
                    })
                })?;
                q.touch();
                q
            }
        };
        Totals::bump(&self.totals.queues_declared);
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
        self.check_delete(&q, conn_id, if_unused, if_empty)?;
        Ok(self.remove_queue(&q))
    }

    /// What Queue.Delete requires of `q`, and the ready messages it holds.
    pub(crate) fn check_delete(
        &self,
        q: &Queue,
        conn_id: u64,
        if_unused: bool,
        if_empty: bool,
    ) -> AmqpResult<usize> {
        let name = q.name.as_str();
        self.check_exclusive(q, conn_id)?;
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
        Ok(ready)
    }

    /// Unregister and delete a queue, dropping its bindings and any
    /// auto-delete exchange left without bindings.
    pub fn remove_queue(&self, q: &Arc<Queue>) -> usize {
        let removed = self
            .queues
            .remove_if(q.name.as_str(), |_, v| Arc::ptr_eq(v, q))
            .is_some();
        if removed {
            self.queues_changed();
        }
        // Auto-delete exchanges left without bindings go too, and so on
        // through exchange-to-exchange bindings, as in RabbitMQ.
        let durable_exchanges = self.drop_bindings_to(&Destination::Queue(q.clone()));
        let durable_queue = q.durable && q.exclusive_owner.is_none();
        if (durable_queue || durable_exchanges)
            && let Err(e) = self.persist_if(true)
        {
            tracing::error!("queue '{}' deleted, but {e}", q.name);
        }
        let gone = q.delete();
        if removed && !q.replicas().is_empty() {
            self.close_group(q);
        }
        if removed {
            self.totals.queue_deleted(&q.sample().counters);
        }
        gone
    }
}
