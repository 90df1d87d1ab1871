//! A vhost whose exchanges and queues are a cluster's (`replicate_topology`):
//! every node holds every exchange, binding and queue, changed only through
//! the cluster's log; a queue's messages live on its home node, and the
//! others hold a stand-in. What a change decides must be the same on every
//! node, so connections are named cluster-wide for exclusivity.

use super::*;
use crate::queue::Placement;
use serde::{Deserialize, Serialize};

/// What a shared vhost needs of its node.
pub(crate) struct Shared {
    /// This node's name.
    pub(crate) me: Arc<str>,
    /// For changes a queue's own life makes (auto-delete, expiry, its
    /// exclusive owner gone), proposed through the cluster's log.
    pub(crate) broker: std::sync::Weak<crate::broker::Broker>,
}

/// A connection, cluster-wide: its node and its id there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Conn {
    pub(crate) node: String,
    pub(crate) id: u64,
}

/// Queue.Declare's properties as a replicated change carries them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QueueDecl {
    pub(crate) name: String,
    pub(crate) durable: bool,
    pub(crate) exclusive: bool,
    pub(crate) auto_delete: bool,
    pub(crate) arguments: FieldTable,
    /// Where its messages will live: the node of the declaring client.
    pub(crate) home: String,
    pub(crate) incarnation: u64,
    /// The declaring connection (the owner, if exclusive).
    pub(crate) conn: Option<Conn>,
    /// An earlier queue of the same name its home has done with, whose
    /// deletion may reach the log after this declare: it goes first.
    #[serde(default)]
    pub(crate) replaces: Option<u64>,
    /// A quorum queue: the nodes of its group (its home first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) replicas: Vec<String>,
}

impl Vhost {
    /// Its exchanges and queues are changed through a cluster's log from
    /// now on.
    pub(crate) fn share(&self, with: Shared) {
        let _ = self.shared.set(with);
    }

    pub(crate) fn exchanges_shared(&self) -> bool {
        self.shared.get().is_some()
    }

    /// The id a cluster-wide connection has on this node: its own on its
    /// node, else one no local connection has (the top bit set), the same
    /// on every other node. None (the management API) is 0, as here.
    pub(crate) fn conn_here(&self, c: Option<&Conn>) -> u64 {
        match (c, self.shared.get()) {
            (None, _) => 0,
            (Some(c), Some(s)) if c.node == *s.me => c.id,
            (Some(c), _) => {
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(&(c.node.as_str(), c.id), &mut h);
                std::hash::Hasher::finish(&h) | 1 << 63
            }
        }
    }

    /// Queue.Declare through the log: true if the queue was created.
    pub(crate) fn declare_shared_queue(&self, d: &QueueDecl) -> AmqpResult<bool> {
        if let Some(old) = d.replaces {
            self.delete_shared_queue(&d.name, old);
        }
        let existed = self.queues.contains_key(d.name.as_str());
        let here = self.shared.get().is_some_and(|s| *s.me == *d.home);
        let group = crate::cluster::quorum::group_name(&self.name, &d.name, d.incarnation);
        if here && !existed && self.store.quorum_group_dir(&group).exists() {
            // Its home before a restart that lost it from the definitions
            // here: its messages are the group member's, and where it is
            // homed now is for the group's leader to say.
            self.quorum_queue_after_restart(crate::store::definitions::QueueDef {
                name: d.name.clone(),
                auto_delete: d.auto_delete,
                arguments: d.arguments.clone(),
                incarnation: d.incarnation,
                replicas: d.replicas.clone(),
            });
            if let Ok(q) = self.queue(&d.name) {
                self.open_group(&q);
            }
            return Ok(false);
        }
        let placement = Placement {
            elsewhere: (!here).then(|| d.home.as_str().into()),
            incarnation: d.incarnation,
            owner: d
                .conn
                .as_ref()
                .filter(|_| d.exclusive)
                .map(|c| (c.node.as_str().into(), c.id)),
            home: match (here, self.shared.get()) {
                (false, Some(s)) => Some(crate::cluster::home_link(
                    s.broker.clone(),
                    &self.name,
                    &d.home,
                )),
                _ => None,
            },
            replicas: d.replicas.clone().into(),
        };
        let (q, _, _) = self.declare_queue_at(
            &QueueSpec {
                name: &d.name,
                server_named: d.name.starts_with("amq.gen-"),
                passive: false,
                durable: d.durable,
                exclusive: d.exclusive,
                auto_delete: d.auto_delete,
                arguments: &d.arguments,
                conn_id: self.conn_here(d.conn.as_ref()),
            },
            Some(placement),
        )?;
        if q.incarnation() == d.incarnation {
            self.open_group(&q);
            // Restored from this node's disk as it was (or as a stand-in
            // for an unknown home, after a restart); the log says where it
            // is homed now. Not to here: only the group's leader says that.
            if !here && self.queue_decl(&q).is_some_and(|now| now.home != d.home) {
                self.move_shared_queue(&d.name, d.incarnation, &d.home);
            }
        }
        Ok(!existed)
    }

    /// Queue.Delete through the log, of the queue declared as `incarnation`
    /// (not a later one of the same name): true if it was there.
    pub(crate) fn delete_shared_queue(&self, name: &str, incarnation: u64) -> bool {
        self.lock_dying()
            .retain(|n, i| !(n.as_str() == name && *i == incarnation));
        let Some(q) = self.queues.get(name).map(|q| q.clone()) else {
            return false;
        };
        if q.incarnation() != incarnation {
            return false;
        }
        self.remove_queue(&q);
        true
    }

    /// A quorum queue's group, on a node that is one of its members.
    pub(crate) fn open_group(&self, q: &Arc<Queue>) {
        let replicas = q.replicas();
        if replicas.is_empty() {
            return;
        }
        let Some(c) = self.cluster() else { return };
        c.open_group(crate::cluster::quorum::Placed {
            vhost: &self.name,
            queue: q.name.as_str(),
            incarnation: q.incarnation(),
            replicas,
            home: q.elsewhere().is_none().then_some(q),
            queue_dir: self.store.queue_dir(&self.name, q.name.as_str()),
        });
    }

    /// A quorum queue deleted: this node's member of its group goes.
    pub(crate) fn close_group(&self, q: &Queue) {
        if let Some(c) = self.cluster() {
            c.close_group(&self.name, q.name.as_str(), q.incarnation());
        }
    }

    pub(super) fn cluster(&self) -> Option<Arc<crate::cluster::Cluster>> {
        let b = self.shared.get()?.broker.upgrade()?;
        b.cluster().cloned()
    }

    /// The counts of `q`, homed elsewhere, as its home has them; RabbitMQ's
    /// 404 when that node does not answer.
    pub(crate) fn counts_at_home(
        &self,
        q: &Queue,
    ) -> impl std::future::Future<Output = Result<(u32, u32), AmqpError>> + Send + 'static {
        let (cluster, vhost, name) = (self.cluster(), self.name.clone(), q.name.to_string());
        let home = q.elsewhere().map(|h| h.to_string()).unwrap_or_default();
        async move {
            let counts = match cluster {
                Some(c) => c.counts_at(&home, &vhost, &name).await,
                None => None,
            };
            counts.ok_or_else(|| home_down(&home, &name, &vhost))
        }
    }

    /// Queue.Purge of `q`, homed elsewhere, by its home: how many went.
    pub(crate) fn purge_at_home(
        &self,
        q: &Queue,
    ) -> impl std::future::Future<Output = Result<u32, AmqpError>> + Send + 'static {
        let (cluster, vhost, name) = (self.cluster(), self.name.clone(), q.name.to_string());
        let home = q.elsewhere().map(|h| h.to_string()).unwrap_or_default();
        async move {
            let n = match cluster {
                Some(c) => c.purge_at(&home, &vhost, &name).await,
                None => None,
            };
            n.ok_or_else(|| home_down(&home, &name, &vhost))
        }
    }

    /// Queue.Delete if unused / empty of `q`, homed elsewhere: decided by
    /// its home; the ready messages it held.
    pub(crate) fn delete_at_home(
        &self,
        q: &Queue,
        if_unused: bool,
        if_empty: bool,
    ) -> impl std::future::Future<Output = Result<u32, crate::access::Refusal>> + Send + 'static
    {
        let (cluster, vhost, name) = (self.cluster(), self.name.clone(), q.name.to_string());
        let home = q.elsewhere().map(|h| h.to_string()).unwrap_or_default();
        async move {
            match cluster {
                Some(c) => match c.delete_at(&home, &vhost, &name, if_unused, if_empty).await {
                    Err(crate::access::Refusal::Unavailable(_)) => {
                        Err(home_down(&home, &name, &vhost).into())
                    }
                    r => r,
                },
                None => Err(home_down(&home, &name, &vhost).into()),
            }
        }
    }

    /// Send `msg` on to the homes of the `remote` queues it was routed to:
    /// true once every home has it (on disk there if it is persistent
    /// and the queue durable), false if one could not take it.
    pub(crate) fn forward(
        &self,
        msg: &Arc<crate::message::Message>,
        remote: Vec<Arc<Queue>>,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        let cluster = self
            .shared
            .get()
            .and_then(|s| s.broker.upgrade())
            .and_then(|b| b.cluster().cloned());
        let (vhost, msg) = (self.name.clone(), msg.clone());
        async move {
            let Some(cluster) = cluster else {
                return false;
            };
            cluster.forward(&vhost, &msg, &remote).await
        }
    }

    /// `forward`, after what this node sent those homes before, without
    /// waiting for each (`cluster::pipeline`): the publishing channel goes
    /// on, and the answer says whether every home took it.
    pub(crate) fn forward_in_order(
        &self,
        msg: &crate::message::Message,
        remote: &[Arc<Queue>],
    ) -> crate::queue::Commit {
        match self.cluster() {
            Some(c) => c.forward_in_order(&self.name, msg, remote),
            None => Box::pin(async { false }),
        }
    }

    /// `forward`, for a message nobody waits on (dead-lettered, delayed).
    pub(crate) fn forward_later(
        &self,
        msg: &Arc<crate::message::Message>,
        remote: Vec<Arc<Queue>>,
    ) {
        let names: Vec<String> = remote.iter().map(|q| q.name.to_string()).collect();
        let sent = self.forward(msg, remote);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if !sent.await {
                    tracing::warn!("a message for queues {names:?} could not reach their node");
                }
            });
        }
    }

    /// The declaration of a cluster's queue, as a snapshot carries it.
    pub(crate) fn queue_decl(&self, q: &Queue) -> Option<QueueDecl> {
        let p = q.placement.as_ref()?;
        let me = self.shared.get()?.me.clone();
        Some(QueueDecl {
            name: q.name.to_string(),
            durable: q.durable,
            exclusive: q.exclusive_owner.is_some(),
            auto_delete: q.auto_delete,
            arguments: q.arguments.clone(),
            home: p.elsewhere.as_ref().unwrap_or(&me).to_string(),
            incarnation: p.incarnation,
            conn: p.owner.as_ref().map(|(node, id)| Conn {
                node: node.to_string(),
                id: *id,
            }),
            replaces: None,
            replicas: p.replicas.to_vec(),
        })
    }

    /// What a direct reply-to queue's name carries after `amq.rabbitmq.reply-to.`
    /// in a cluster: its node (hex, then a dot), so that a reply published
    /// on any node finds it, as RabbitMQ's names carry their node too.
    pub(crate) fn reply_node_prefix(&self) -> String {
        match self.shared.get() {
            Some(s) => {
                let hex: String = s.me.bytes().map(|b| format!("{b:02x}")).collect();
                format!("{hex}.")
            }
            None => String::new(),
        }
    }

    /// A reply to a direct reply-to queue of another node: a stand-in for
    /// routing to send it there.
    pub(crate) fn reply_queue_elsewhere(&self, key: &str) -> Option<Arc<Queue>> {
        let s = self.shared.get()?;
        let rest = key.strip_prefix(REPLY_TO)?.strip_prefix('.')?;
        let (hex, _) = rest.split_once('.')?;
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let node = String::from_utf8(bytes).ok()?;
        if node == *s.me {
            return None;
        }
        let mut q = Queue::new(key.into(), false, None, false, FieldTable::default());
        let placement = Placement {
            elsewhere: Some(node.into()),
            incarnation: 0,
            owner: None,
            home: None,
            replicas: Arc::from([]),
        };
        Queue::place(&mut q, placement);
        Some(q)
    }

    /// A node was forgotten: the queues homed there go.
    pub(crate) fn forget_queues_of(&self, node: &str) {
        for q in self.queue_list() {
            if q.elsewhere().is_some_and(|h| **h == *node) {
                tracing::info!(
                    "queue '{}' in vhost '{}' went with node {node}",
                    q.name,
                    self.name
                );
                self.remove_queue(&q);
            }
        }
    }

    /// Whether this node is the home of a cluster's queue.
    pub(crate) fn is_home(&self, q: &Queue) -> bool {
        q.placement.is_some() && q.elsewhere().is_none()
    }

    /// A queue's own life ended it (auto-delete, x-expires, its exclusive
    /// owner gone): in a cluster, its home asks the log to delete it
    /// everywhere; alone, it goes now.
    pub(crate) fn queue_lost(&self, q: &Arc<Queue>) {
        let broker = match self.shared.get() {
            Some(s) if self.is_home(q) => s.broker.clone(),
            _ => std::sync::Weak::new(),
        };
        let rt = tokio::runtime::Handle::try_current();
        let (true, Ok(rt)) = (broker.strong_count() > 0, rt) else {
            self.remove_queue(q);
            return;
        };
        let change = crate::broker::changes::Change::DeleteQueue {
            vhost: self.name.clone(),
            name: q.name.to_string(),
            incarnation: q.incarnation(),
        };
        // Gone here at once, so that its name is free for the next declare
        // here (a client reconnecting declares its exclusive queue again),
        // which names it as the queue it replaces: whichever of the two
        // reaches the log first, every node ends the same.
        self.lock_dying()
            .insert(q.name.to_string(), q.incarnation());
        self.remove_queue(q);
        let name = q.name.clone();
        // Until the log takes it (a minority, a node still joining).
        rt.spawn(async move {
            let mut pause = std::time::Duration::from_secs(1);
            loop {
                let Some(b) = broker.upgrade() else { return };
                match b.change(change.clone()).await {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(
                            "queue '{name}' is done with, but cannot be deleted yet: {e}"
                        )
                    }
                }
                drop(b);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
        });
    }

    /// Queues its home has done with whose deletion is not applied yet, by
    /// name: their incarnations.
    fn lock_dying(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.dying.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The incarnation a declare of `name` here replaces, if any.
    pub(crate) fn replaced(&self, name: &str) -> Option<u64> {
        self.lock_dying().get(name).copied()
    }

    /// After this node restarted: its queues that were not durable are
    /// gone, as RabbitMQ's are when their node restarts (an exclusive
    /// queue's owner is gone with them).
    pub(crate) fn drop_transient_after_restart(&self) {
        for q in self.queue_list() {
            if self.is_home(&q) && (!q.durable || q.exclusive_owner.is_some()) {
                self.queue_lost(&q);
            }
        }
    }
}

/// RabbitMQ's answer about a queue whose node is down.
fn home_down(home: &str, name: &str, vhost: &str) -> AmqpError {
    AmqpError::not_found(format!(
        "home node '{home}' of durable queue '{name}' in vhost '{vhost}' is down or inaccessible"
    ))
}
