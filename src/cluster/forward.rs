//! Messages routed on one node to queues homed on another
//! (`replicate_topology`): the routing node sends each on to the queues'
//! home, which enqueues it there and answers once it is safe (on disk, if
//! a durable queue took it persistent), so that a publisher's confirm
//! still means what it means on a node alone. Links to other nodes are
//! kept for reuse; one message per call for now.

use super::Cluster;
use super::link::Link;
use super::rpc::{Reply, Request};
use crate::message::Message;
use crate::queue::{Commit, Published, Queue};
use base64::Engine;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a node waits for another to take a forwarded message.
pub(super) const FORWARD_WAIT: Duration = Duration::from_secs(10);

/// Links opened to other nodes, by address, idle between calls.
#[derive(Default)]
pub(crate) struct Links(std::sync::Mutex<BTreeMap<String, Vec<Link>>>);

impl Links {
    fn take(&self, addr: &str) -> Option<Link> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.get_mut(addr).and_then(Vec::pop)
    }

    fn give_back(&self, addr: &str, link: Link) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(addr.to_string()).or_default().push(link);
    }
}

impl Cluster {
    /// Send `msg` to the home of each of `remote`: true once every home
    /// has it.
    pub(crate) async fn forward(&self, vhost: &str, msg: &Message, remote: &[Arc<Queue>]) -> bool {
        let mut by_home: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut groups = Vec::new();
        for q in remote {
            if let Some(home) = q.elsewhere() {
                by_home.entry(home).or_default().push(q.name.to_string());
            } else if let Some(g) = q.quorum() {
                groups.push(g.clone().enqueue(msg, q.deadline_for(msg)));
            }
        }
        for committed in groups {
            if !committed.await {
                return false;
            }
        }
        let mut record = Vec::new();
        crate::store::record::encode_publish(0, 0, msg, &mut record);
        let message = base64::engine::general_purpose::STANDARD.encode(record);
        for (home, queues) in by_home {
            let Some(addr) = self.address_of(home) else {
                return false;
            };
            let req = Request::Enqueue {
                vhost: vhost.to_string(),
                queues,
                message: message.clone(),
            };
            match tokio::time::timeout(FORWARD_WAIT, self.call(&addr, &req)).await {
                Ok(Some(Reply::Enqueued(true))) => {}
                _ => return false,
            }
        }
        true
    }

    /// A member's cluster address, by name.
    pub(super) fn address_of(&self, name: &str) -> Option<String> {
        let m = self.raft().metrics();
        let m = m.borrow();
        m.membership_config
            .nodes()
            .find(|(_, n)| n.name == name)
            .map(|(_, n)| n.addr.clone())
    }

    /// One request over a kept link, else a new one. A kept link may have
    /// died with its peer since (a node restarted): the request goes again
    /// over a new link then, which can deliver a message twice if the
    /// first went through before the link broke (at least once, as a
    /// publisher retrying after a lost confirm).
    async fn call(&self, addr: &str, req: &Request) -> Option<Reply> {
        if let Some(mut link) = self.links.take(addr)
            && let Ok(reply) = link.call(req).await
        {
            self.links.give_back(addr, link);
            return Some(reply);
        }
        let mut link = self.endpoint.connect(addr).await.ok()?;
        let reply = link.call(req).await.ok()?;
        self.links.give_back(addr, link);
        Some(reply)
    }

    /// Take a message another node routed to queues homed here: true once
    /// every queue has it, and it is on disk if it needs to be.
    pub(super) async fn enqueue_forwarded(
        &self,
        vhost: &str,
        queues: &[String],
        message: &str,
    ) -> bool {
        self.take_forwarded(vhost, queues, message).await
    }

    /// `enqueue_forwarded`, its taking done now (in the order messages
    /// come): what it gives waits until the message is safe.
    pub(super) fn take_forwarded(&self, vhost: &str, queues: &[String], message: &str) -> Commit {
        let failed = || -> Commit { Box::pin(async { false }) };
        let Some(broker) = self.broker.upgrade() else {
            return failed();
        };
        let Some(v) = broker.vhost(vhost) else {
            return failed();
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(message) else {
            return failed();
        };
        let Some((_, msg)) = crate::store::record::decode_publish(&raw.into(), true, v.meter())
        else {
            return failed();
        };
        let msg = Arc::new(msg);
        let (mut ok, mut ticket) = (true, 0);
        let mut commits = Vec::new();
        for name in queues {
            // A queue deleted meanwhile drops it, as it would here.
            let Ok(q) = v.queue(name) else { continue };
            if q.elsewhere().is_some() {
                ok = false;
                continue;
            }
            if let Some(g) = q.quorum() {
                commits.push(g.clone().enqueue(&msg, q.deadline_for(&msg)));
                continue;
            }
            let (published, dead) = q.publish(msg.clone());
            match published {
                Published::Accepted { ticket: t } => ticket = ticket.max(t),
                Published::Duplicate | Published::Dropped => {}
                Published::Rejected | Published::Failed => ok = false,
            }
            v.dead_letter(&q, dead);
        }
        Box::pin(async move {
            for c in commits {
                ok &= c.await;
            }
            ok && synced(&broker, ticket).await
        })
    }
}

/// Wait until the store has `ticket` on disk.
async fn synced(broker: &crate::broker::Broker, ticket: u64) -> bool {
    let (sink, mut inbox) = crate::queue::inbox::Sink::new();
    let sync = &broker.store.sync;
    if !sync.notify_when_synced(ticket, &sink) {
        return true;
    }
    let mut events = Vec::new();
    let wait = async {
        while sync.synced() < ticket {
            inbox.recv_many(&mut events).await;
            events.clear();
        }
    };
    tokio::time::timeout(FORWARD_WAIT, wait).await.is_ok()
}

impl Cluster {
    /// Ask a queue's home for its counts (None: it does not answer).
    pub(crate) async fn counts_at(
        &self,
        home: &str,
        vhost: &str,
        name: &str,
    ) -> Option<(u32, u32)> {
        let addr = self.address_of(home)?;
        let req = Request::QueueCounts {
            vhost: vhost.to_string(),
            name: name.to_string(),
        };
        match tokio::time::timeout(FORWARD_WAIT, self.call(&addr, &req)).await {
            Ok(Some(Reply::Counts(c))) => c,
            _ => None,
        }
    }

    /// Ask a queue's home to purge it (None: it does not answer).
    pub(crate) async fn purge_at(&self, home: &str, vhost: &str, name: &str) -> Option<u32> {
        let addr = self.address_of(home)?;
        let req = Request::Purge {
            vhost: vhost.to_string(),
            name: name.to_string(),
        };
        match tokio::time::timeout(FORWARD_WAIT, self.call(&addr, &req)).await {
            Ok(Some(Reply::Purged(n))) => n,
            _ => None,
        }
    }

    pub(super) fn purge_here(&self, vhost: &str, name: &str) -> Option<u32> {
        let q = self.broker.upgrade()?.vhost(vhost)?.queue(name).ok()?;
        if q.elsewhere().is_some() {
            return None;
        }
        Some(q.purge() as u32)
    }

    pub(super) fn counts_here(&self, vhost: &str, name: &str) -> Option<(u32, u32)> {
        let q = self.broker.upgrade()?.vhost(vhost)?.queue(name).ok()?;
        if q.elsewhere().is_some() {
            return None;
        }
        let (m, c) = q.counts();
        Some((m as u32, c as u32))
    }

    /// Ask a queue's home to delete it if unused / empty: the ready
    /// messages it held.
    pub(crate) async fn delete_at(
        &self,
        home: &str,
        vhost: &str,
        name: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, crate::access::Refusal> {
        let down = || crate::access::Refusal::Unavailable(format!("node {home} does not answer"));
        let addr = self.address_of(home).ok_or_else(down)?;
        let req = Request::DeleteQueue {
            vhost: vhost.to_string(),
            name: name.to_string(),
            if_unused,
            if_empty,
        };
        match tokio::time::timeout(FORWARD_WAIT, self.call(&addr, &req)).await {
            Ok(Some(Reply::Deleted(r))) => r,
            _ => Err(down()),
        }
    }

    pub(super) async fn delete_here(
        &self,
        vhost: &str,
        name: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, crate::access::Refusal> {
        let b = self
            .broker
            .upgrade()
            .ok_or_else(|| crate::access::Refusal::Unavailable("the node is stopping".into()))?;
        let v = b
            .vhost(vhost)
            .ok_or_else(|| crate::access::Refusal::NoSuchVhost(vhost.to_string()))?;
        let Ok(q) = v.queue(name) else { return Ok(0) };
        let n = v.check_delete(&q, 0, if_unused, if_empty)?;
        let change = crate::broker::changes::Change::DeleteQueue {
            vhost: vhost.to_string(),
            name: name.to_string(),
            incarnation: q.incarnation(),
        };
        b.change(change).await?;
        Ok(n as u32)
    }
}
