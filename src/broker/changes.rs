//! Changes to what every node of a cluster must know alike: vhosts, users,
//! permissions, limits, parameters, policies and imported definitions. Each
//! is a value, so that a cluster can replicate it through its metadata log
//! and apply it on every node in the same order; a node alone applies it
//! at once. The management API (and `ctl` through it) makes these changes
//! with `Broker::change`, never by editing access control directly.

use super::Broker;
use super::topology::{ExchangeBinding, ExchangeDecl, QueueBinding};
use super::vhost::QueueDecl;
use crate::access::limits::{UserLimits, VhostLimits};
use crate::access::user::User;
use crate::access::{Refusal, VhostMeta};
use crate::broker::policy::Policy;
use crate::store::definitions::PolicyDef;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Change {
    PutVhost(VhostMeta),
    DeleteVhost(String),
    /// A user with its password hash (hashed once, by the node asked).
    PutUser(User),
    DeleteUser(String),
    SetUserLimits {
        user: String,
        limits: UserLimits,
    },
    SetPermissions {
        user: String,
        vhost: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        user: String,
        vhost: String,
    },
    SetTopicPermissions {
        user: String,
        vhost: String,
        exchange: String,
        write: String,
        read: String,
    },
    /// One exchange's, or all of the user's in the vhost.
    ClearTopicPermissions {
        user: String,
        vhost: String,
        exchange: Option<String>,
    },
    SetVhostLimits {
        vhost: String,
        limits: VhostLimits,
    },
    /// RabbitMQ's global parameters (`cluster_name` among them).
    SetGlobalParameter {
        name: String,
        value: serde_json::Value,
    },
    ClearGlobalParameter(String),
    /// A runtime parameter by (vhost, component, name).
    SetParameter {
        vhost: String,
        component: String,
        name: String,
        value: serde_json::Value,
    },
    ClearParameter {
        vhost: String,
        component: String,
        name: String,
    },
    /// A policy (or, `operator`, an operator policy) in a vhost.
    SetPolicy {
        vhost: String,
        operator: bool,
        policy: PolicyDef,
    },
    ClearPolicy {
        vhost: String,
        operator: bool,
        name: String,
    },
    /// Everything above as a whole: the cluster's first change, made by the
    /// node that started it, so that the metadata every node holds is what
    /// the log built, whatever each node held before it joined.
    ReplaceDefinitions(serde_json::Value),
    /// A definitions document (POST /api/definitions), imported whole.
    ImportDefinitions(serde_json::Value),
    /// The same, in a cluster whose topology is replicated: its queues are
    /// homed on `home`, each with an incarnation drawn from `nonce`.
    ImportDefinitionsAt {
        doc: serde_json::Value,
        home: String,
        nonce: u64,
    },
    /// Exchange.Declare (never passive) in a vhost (`topology.rs`).
    DeclareExchange {
        vhost: String,
        exchange: ExchangeDecl,
    },
    DeleteExchange {
        vhost: String,
        name: String,
        if_unused: bool,
    },
    BindExchange {
        vhost: String,
        binding: ExchangeBinding,
    },
    UnbindExchange {
        vhost: String,
        binding: ExchangeBinding,
    },
    /// Queue.Declare (never passive) of a queue homed on the declaring
    /// client's node.
    DeclareQueue {
        vhost: String,
        queue: QueueDecl,
    },
    /// A quorum queue's group elected a leader on another node than its
    /// home: the queue is homed there from now on.
    MoveQueue {
        vhost: String,
        name: String,
        incarnation: u64,
        home: String,
    },
    /// The queue declared as `incarnation` is deleted, wherever it is.
    DeleteQueue {
        vhost: String,
        name: String,
        incarnation: u64,
    },
    BindQueue {
        vhost: String,
        binding: QueueBinding,
    },
    /// A node was forgotten: the queues homed there go, as RabbitMQ's
    /// `forget_cluster_node` deletes them.
    ForgetQueuesOf(String),
    UnbindQueue {
        vhost: String,
        binding: QueueBinding,
    },
}

impl Change {
    /// Import a definitions document through the log, its queues homed
    /// on this node if the topology is replicated.
    pub(crate) fn import(b: &Broker, doc: serde_json::Value) -> Change {
        match b.replicates_topology() {
            true => Change::ImportDefinitionsAt {
                doc,
                home: b.node_name().to_string(),
                nonce: super::names::random_u64(),
            },
            false => Change::ImportDefinitions(doc),
        }
    }
}

impl Broker {
    /// What a cluster's snapshots carry: everything `Change` can change.
    pub(crate) fn replicated_definitions(&self) -> serde_json::Value {
        let mut doc = crate::access::definitions::access_json(&self.access.snapshot());
        let topology = self.topology_json();
        if let (false, Some(o)) = (topology.is_null(), doc.as_object_mut()) {
            o.insert("topology".into(), topology);
        }
        doc
    }

    /// Replace what `Change` can change with a snapshot's definitions (a
    /// node that fell behind the cluster's log, or a new one).
    pub(crate) fn install_replicated_definitions(
        &self,
        doc: &serde_json::Value,
    ) -> Result<(), String> {
        let state = crate::access::definitions::parse_access(doc)?.into_state(Default::default())?;
        let vhosts: Vec<String> = state.vhosts.keys().cloned().collect();
        self.access
            .change(|s| {
                *s = state;
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        for v in vhosts {
            self.ensure_vhost(&v).map_err(|e| e.to_string())?;
        }
        match doc.get("topology") {
            Some(t) if self.replicates_topology() => self.install_topology(t),
            _ => Ok(()),
        }
    }

    /// Make a change on every node: committed on a majority of the
    /// cluster, then applied here, when clustered; applied here alone
    /// otherwise. What it answers depends on the change: whether something
    /// was created (put) or was there (clear); true where that is moot.
    pub(crate) async fn change(&self, c: Change) -> Result<bool, Refusal> {
        match (self.cluster(), &self.config.cluster) {
            (Some(cluster), _) => cluster.write(c).await,
            (None, Some(_)) => Err(Refusal::Unavailable(
                "the node has not joined its cluster yet".into(),
            )),
            (None, None) => self.apply_change(&c),
        }
    }

    /// Carry out a change on this node only (what the cluster's log does
    /// on each node once the change is committed).
    pub(crate) fn apply_change(&self, c: &Change) -> Result<bool, Refusal> {
        let done = |r: Result<(), Refusal>| r.map(|()| true);
        match c {
            Change::PutVhost(meta) => self.put_vhost(meta.clone()),
            Change::DeleteVhost(name) => done(self.remove_vhost(name)),
            Change::PutUser(u) => self.access.put_user(u.clone()),
            Change::DeleteUser(name) => done(self.remove_user(name)),
            Change::SetUserLimits { user, limits } => {
                done(self.access.set_user_limits(user, limits.clone()))
            }
            Change::SetPermissions {
                user,
                vhost,
                configure,
                write,
                read,
            } => done(
                self.access
                    .set_permissions(user, vhost, configure, write, read),
            ),
            Change::ClearPermissions { user, vhost } => self.access.clear_permissions(user, vhost),
            Change::SetTopicPermissions {
                user,
                vhost,
                exchange,
                write,
                read,
            } => done(
                self.access
                    .set_topic_permissions(user, vhost, exchange, write, read),
            ),
            Change::ClearTopicPermissions {
                user,
                vhost,
                exchange,
            } => self
                .access
                .clear_topic_permissions(user, vhost, exchange.as_deref()),
            Change::SetVhostLimits { vhost, limits } => {
                done(self.access.set_vhost_limits(vhost, limits.clone()))
            }
            Change::SetGlobalParameter { name, value } => self.access.change(|s| {
                Ok(s.global_parameters
                    .insert(name.clone(), value.clone())
                    .is_none())
            }),
            Change::ClearGlobalParameter(name) => self
                .access
                .change(|s| Ok(s.global_parameters.remove(name).is_some())),
            Change::SetParameter {
                vhost,
                component,
                name,
                value,
            } => self.access.change(|s| {
                let key = (vhost.clone(), component.clone(), name.clone());
                Ok(s.parameters.insert(key, value.clone()).is_none())
            }),
            Change::ClearParameter {
                vhost,
                component,
                name,
            } => self.access.change(|s| {
                let key = (vhost.clone(), component.clone(), name.clone());
                Ok(s.parameters.remove(&key).is_some())
            }),
            Change::SetPolicy {
                vhost,
                operator,
                policy: p,
            } => {
                let v = self
                    .vhost(vhost)
                    .ok_or_else(|| Refusal::NoSuchVhost(vhost.clone()))?;
                let policy = Policy::new(
                    &p.name,
                    &p.pattern,
                    &p.apply_to,
                    p.priority,
                    p.definition.clone(),
                )
                .map_err(Refusal::Invalid)?;
                let replaced = match operator {
                    false => v.set_policy(policy),
                    true => v.set_operator_policy(policy),
                };
                replaced.map(|r| !r).map_err(|e| Refusal::Io(e.text))
            }
            Change::ClearPolicy {
                vhost,
                operator,
                name,
            } => {
                let v = self
                    .vhost(vhost)
                    .ok_or_else(|| Refusal::NoSuchVhost(vhost.clone()))?;
                let removed = match operator {
                    false => v.delete_policy(name),
                    true => v.delete_operator_policy(name),
                };
                removed.map_err(|e| Refusal::Io(e.text))
            }
            Change::ReplaceDefinitions(doc) => done(
                self.install_replicated_definitions(doc)
                    .map_err(Refusal::Invalid),
            ),
            Change::ImportDefinitions(doc) => {
                done(self.import_document(doc).map_err(Refusal::Invalid))
            }
            Change::ImportDefinitionsAt { doc, home, nonce } => done(
                self.import_document_at(doc, Some((home, *nonce)))
                    .map_err(Refusal::Invalid),
            ),
            Change::DeclareExchange { vhost, exchange } => {
                self.declare_exchange_change(vhost, exchange)
            }
            Change::DeleteExchange {
                vhost,
                name,
                if_unused,
            } => self.delete_exchange_change(vhost, name, *if_unused),
            Change::BindExchange { vhost, binding } => {
                self.exchange_binding_change(vhost, binding, true)
            }
            Change::UnbindExchange { vhost, binding } => {
                self.exchange_binding_change(vhost, binding, false)
            }
            Change::DeclareQueue { vhost, queue } => self.declare_queue_change(vhost, queue),
            Change::DeleteQueue {
                vhost,
                name,
                incarnation,
            } => self.delete_queue_change(vhost, name, *incarnation),
            Change::MoveQueue {
                vhost,
                name,
                incarnation,
                home,
            } => Ok(self
                .vhost(vhost)
                .is_some_and(|v| v.move_shared_queue(name, *incarnation, home))),
            Change::BindQueue { vhost, binding } => self.queue_binding_change(vhost, binding, true),
            Change::ForgetQueuesOf(node) => {
                for v in self.vhosts() {
                    v.forget_queues_of(node);
                }
                Ok(true)
            }
            Change::UnbindQueue { vhost, binding } => {
                self.queue_binding_change(vhost, binding, false)
            }
        }
    }
}
