//! Exchanges and exchange-to-exchange bindings as replicated changes: what
//! a clustered node with `replicate_topology` changes through the cluster's
//! log, so that every node holds the same exchanges. Each change runs the
//! same checks a node alone runs (equivalence, reserved names, in use), on
//! every node against the same state, so every node answers it alike.

use super::Broker;
use super::vhost::{Conn, ExchangeSpec, QueueDecl, Vhost};
use crate::access::Refusal;
use crate::exchange::Destination;
use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An Exchange.Declare's properties.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExchangeDecl {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) durable: bool,
    pub(crate) auto_delete: bool,
    pub(crate) internal: bool,
    pub(crate) arguments: FieldTable,
}

impl ExchangeDecl {
    pub(crate) fn spec(&self) -> ExchangeSpec<'_> {
        ExchangeSpec {
            name: &self.name,
            kind: &self.kind,
            passive: false,
            durable: self.durable,
            auto_delete: self.auto_delete,
            internal: self.internal,
            arguments: &self.arguments,
        }
    }
}

/// An exchange-to-exchange binding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExchangeBinding {
    pub(crate) destination: String,
    pub(crate) source: String,
    pub(crate) routing_key: String,
    pub(crate) arguments: FieldTable,
}

/// A queue binding, made by `conn` (exclusive queues bind only for their
/// owner).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QueueBinding {
    pub(crate) queue: String,
    pub(crate) exchange: String,
    pub(crate) routing_key: String,
    pub(crate) arguments: FieldTable,
    pub(crate) conn: Option<Conn>,
}

/// One vhost's replicated topology, as a snapshot carries it.
#[derive(Default, Serialize, Deserialize)]
struct VhostTopology {
    exchanges: Vec<ExchangeDecl>,
    bindings: Vec<ExchangeBinding>,
    #[serde(default)]
    queues: Vec<QueueDecl>,
    #[serde(default)]
    queue_bindings: Vec<QueueBinding>,
}

fn in_vhost(b: &Broker, vhost: &str) -> Result<Arc<Vhost>, Refusal> {
    b.vhost(vhost)
        .ok_or_else(|| Refusal::NoSuchVhost(vhost.to_string()))
}

/// The exchanges a declare creates or a snapshot carries: not the default
/// exchange nor the `amq.*` ones, which every vhost has anyway.
fn declared(name: &str) -> bool {
    !name.is_empty() && !name.starts_with("amq.")
}

impl Broker {
    /// Exchange.Declare through the log: true if the exchange was created.
    pub(crate) fn declare_exchange_change(
        &self,
        vhost: &str,
        x: &ExchangeDecl,
    ) -> Result<bool, Refusal> {
        let v = in_vhost(self, vhost)?;
        let existed = v.exchange(&x.name).is_ok();
        v.declare_exchange(&x.spec())?;
        Ok(!existed)
    }

    /// Exchange.Delete through the log: true if it was there.
    pub(crate) fn delete_exchange_change(
        &self,
        vhost: &str,
        name: &str,
        if_unused: bool,
    ) -> Result<bool, Refusal> {
        let v = in_vhost(self, vhost)?;
        let existed = v.exchange(name).is_ok();
        v.delete_exchange(name, if_unused)?;
        Ok(existed)
    }

    /// Exchange.Bind (`bind`) or Exchange.Unbind through the log.
    pub(crate) fn exchange_binding_change(
        &self,
        vhost: &str,
        b: &ExchangeBinding,
        bind: bool,
    ) -> Result<bool, Refusal> {
        let v = in_vhost(self, vhost)?;
        let (d, s, k, a) = (&b.destination, &b.source, &b.routing_key, &b.arguments);
        match bind {
            true => v.bind_exchange(d, s, k, a)?,
            false => v.unbind_exchange(d, s, k, a)?,
        }
        Ok(true)
    }

    /// Queue.Declare through the log: true if the queue was created.
    pub(crate) fn declare_queue_change(&self, vhost: &str, q: &QueueDecl) -> Result<bool, Refusal> {
        Ok(in_vhost(self, vhost)?.declare_shared_queue(q)?)
    }

    /// Queue.Delete through the log: true if that queue was there.
    pub(crate) fn delete_queue_change(
        &self,
        vhost: &str,
        name: &str,
        incarnation: u64,
    ) -> Result<bool, Refusal> {
        Ok(in_vhost(self, vhost)?.delete_shared_queue(name, incarnation))
    }

    /// Queue.Bind (`bind`) or Queue.Unbind through the log.
    pub(crate) fn queue_binding_change(
        &self,
        vhost: &str,
        b: &QueueBinding,
        bind: bool,
    ) -> Result<bool, Refusal> {
        let v = in_vhost(self, vhost)?;
        let conn = v.conn_here(b.conn.as_ref());
        let (q, x, k, a) = (&b.queue, &b.exchange, &b.routing_key, &b.arguments);
        match bind {
            true => v.bind(q, x, k, a, conn)?,
            false => v.unbind(q, x, k, a, conn)?,
        }
        Ok(true)
    }

    /// Every vhost's exchanges and exchange bindings, transient ones
    /// included, for a snapshot (`Null` when topology is not replicated).
    pub(crate) fn topology_json(&self) -> serde_json::Value {
        if !self.replicates_topology() {
            return serde_json::Value::Null;
        }
        let mut all = serde_json::Map::new();
        for v in self.vhosts() {
            let mut t = VhostTopology::default();
            for x in v.exchange_list() {
                if declared(x.name.as_str()) {
                    t.exchanges.push(ExchangeDecl {
                        name: x.name.to_string(),
                        kind: x.type_name().to_string(),
                        durable: x.durable,
                        auto_delete: x.auto_delete,
                        internal: x.internal,
                        arguments: x.arguments.clone(),
                    });
                }
                for b in x.bindings() {
                    match &b.dest {
                        Destination::Exchange(d) => t.bindings.push(ExchangeBinding {
                            destination: d.name.to_string(),
                            source: x.name.to_string(),
                            routing_key: b.key.to_string(),
                            arguments: b.args.clone(),
                        }),
                        Destination::Queue(q) if q.placement.is_some() => {
                            t.queue_bindings.push(QueueBinding {
                                queue: q.name.to_string(),
                                exchange: x.name.to_string(),
                                routing_key: b.key.to_string(),
                                arguments: b.args.clone(),
                                conn: None,
                            })
                        }
                        Destination::Queue(_) => {}
                    }
                }
            }
            t.queues = v
                .queue_list()
                .iter()
                .filter_map(|q| v.queue_decl(q))
                .collect();
            t.queues.sort_by(|a, b| a.name.cmp(&b.name));
            if let Ok(t) = serde_json::to_value(t) {
                all.insert(v.name.clone(), t);
            }
        }
        serde_json::Value::Object(all)
    }

    /// Bring back the topology this node held when it stopped (its own
    /// disk kept only what lives here). The first time only, at boot: its
    /// queues that were not durable are gone now, and the cluster is told.
    pub(crate) fn restore_topology(&self, doc: &serde_json::Value) {
        if !doc.is_null()
            && let Err(e) = self.install_topology(doc)
        {
            tracing::error!("cluster: cannot restore the topology: {e}");
        }
        if !self
            .topology_restored
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            for v in self.vhosts() {
                v.drop_transient_after_restart();
            }
        }
    }

    /// Make every vhost's exchanges and exchange bindings what a snapshot
    /// says: missing ones made, others removed, differing ones made anew.
    pub(crate) fn install_topology(&self, doc: &serde_json::Value) -> Result<(), String> {
        let serde_json::Value::Object(all) = doc else {
            return Ok(());
        };
        for v in self.vhosts() {
            let t: VhostTopology = match all.get(&v.name) {
                Some(t) => serde_json::from_value(t.clone()).map_err(|e| e.to_string())?,
                None => VhostTopology::default(),
            };
            install_vhost(&v, &t);
        }
        Ok(())
    }
}

fn install_vhost(v: &Vhost, t: &VhostTopology) {
    let fail = |what: &str, e: crate::error::AmqpError| {
        tracing::error!("vhost '{}': cannot {what}: {}", v.name, e.text);
    };
    // Stale bindings first, then stale queues and exchanges: an
    // auto-delete exchange either takes with it is made again below if
    // wanted. Queues not a cluster's (direct reply-to's) are left alone.
    for x in v.exchange_list() {
        for b in x.bindings() {
            let r = match &b.dest {
                Destination::Exchange(d) => {
                    let kept = t.bindings.iter().any(|w| {
                        w.source == x.name.as_str()
                            && w.destination == d.name.as_str()
                            && w.routing_key == b.key.as_str()
                            && w.arguments == b.args
                    });
                    if kept {
                        continue;
                    }
                    v.unbind_exchange(d.name.as_str(), x.name.as_str(), b.key.as_str(), &b.args)
                }
                Destination::Queue(q) if q.placement.is_some() => {
                    let kept = t.queue_bindings.iter().any(|w| {
                        w.exchange == x.name.as_str()
                            && w.queue == q.name.as_str()
                            && w.routing_key == b.key.as_str()
                            && w.arguments == b.args
                    });
                    if kept {
                        continue;
                    }
                    let owner = q.exclusive_owner.unwrap_or(0);
                    v.unbind(
                        q.name.as_str(),
                        x.name.as_str(),
                        b.key.as_str(),
                        &b.args,
                        owner,
                    )
                }
                Destination::Queue(_) => continue,
            };
            if let Err(e) = r {
                fail("unbind", e);
            }
        }
    }
    for q in v.queue_list() {
        let kept = t
            .queues
            .iter()
            .any(|w| w.name == q.name.as_str() && w.incarnation == q.incarnation());
        if q.placement.is_some() && !kept {
            v.remove_queue(&q);
        }
    }
    for x in v.exchange_list() {
        let wanted = t.exchanges.iter().find(|w| w.name == x.name.as_str());
        let same = wanted.is_some_and(|w| v.check_exchange_declare(&w.spec()).is_ok());
        if declared(x.name.as_str())
            && !same
            && let Err(e) = v.delete_exchange(x.name.as_str(), false)
        {
            fail("remove an exchange", e);
        }
    }
    for w in &t.exchanges {
        if let Err(e) = v.declare_exchange(&w.spec()) {
            fail("declare an exchange", e);
        }
    }
    for w in &t.bindings {
        let (d, s, k, a) = (&w.destination, &w.source, &w.routing_key, &w.arguments);
        if let Err(e) = v.bind_exchange(d, s, k, a) {
            fail("bind an exchange", e);
        }
    }
    for w in &t.queues {
        if let Err(e) = v.declare_shared_queue(w) {
            fail("declare a queue", e);
        }
    }
    for w in &t.queue_bindings {
        let Ok(q) = v.queue(&w.queue) else { continue };
        let owner = q.exclusive_owner.unwrap_or(0);
        let (n, x, k, a) = (&w.queue, &w.exchange, &w.routing_key, &w.arguments);
        if let Err(e) = v.bind(n, x, k, a, owner) {
            fail("bind a queue", e);
        }
    }
}
