//! Exchanges and their bindings. Routing reads bindings under a per-exchange
//! read lock and writes the matching queues into a caller-owned vector, each
//! queue at most once per publish.

pub mod consistent_hash;
pub mod headers;
pub(crate) mod stats;
pub mod topic;

use crate::dedup::{DedupArgs, Window};
use crate::queue::Queue;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{FieldTable, ShortString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The delayed-message exchange type (RabbitMQ's plugin of that name).
pub const DELAYED_TYPE: &str = "x-delayed-message";
/// The message-deduplication plugin's exchange type.
pub const DEDUP_TYPE: &str = "x-message-deduplication";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
    ConsistentHash,
    /// The deduplication plugin's exchange type: fanout routing of messages
    /// that are not duplicates.
    MessageDeduplication,
}

impl ExchangeKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            "x-consistent-hash" => ExchangeKind::ConsistentHash,
            DEDUP_TYPE => ExchangeKind::MessageDeduplication,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
            ExchangeKind::ConsistentHash => "x-consistent-hash",
            ExchangeKind::MessageDeduplication => DEDUP_TYPE,
        }
    }
}

/// Where a binding leads: a queue, or another exchange (RabbitMQ's
/// exchange-to-exchange bindings).
#[derive(Clone)]
pub enum Destination {
    Queue(Arc<Queue>),
    Exchange(Arc<Exchange>),
}

impl Destination {
    fn same(&self, other: &Destination) -> bool {
        match (self, other) {
            (Destination::Queue(a), Destination::Queue(b)) => Arc::ptr_eq(a, b),
            (Destination::Exchange(a), Destination::Exchange(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    fn is_queue(&self, q: &Arc<Queue>) -> bool {
        matches!(self, Destination::Queue(x) if Arc::ptr_eq(x, q))
    }

    fn is_exchange(&self, x: &Exchange) -> bool {
        matches!(self, Destination::Exchange(e) if std::ptr::eq(Arc::as_ptr(e), x))
    }
}

/// Where one exchange routes a message: queues directly, and exchanges to
/// route through next.
#[derive(Default)]
pub struct Routed {
    pub queues: Vec<Arc<Queue>>,
    pub exchanges: Vec<Arc<Exchange>>,
    /// Delayed-message exchanges that hold the message until its x-delay is
    /// over (the caller, which owns the message, hands it to them).
    pub delayed: Vec<Arc<Exchange>>,
    /// A cluster's queues homed on other nodes that the message reached:
    /// the caller sends it on to them (`Vhost::forward`).
    pub remote: Vec<Arc<Queue>>,
}

impl Routed {
    fn push(&mut self, d: &Destination) {
        match d {
            Destination::Queue(q) => push_unique(&mut self.queues, q),
            Destination::Exchange(x) => {
                if !self.exchanges.iter().any(|e| Arc::ptr_eq(e, x)) {
                    self.exchanges.push(x.clone());
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.queues.clear();
        self.exchanges.clear();
        self.delayed.clear();
        self.remote.clear();
    }

    /// Whether anything took the message.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty() && self.delayed.is_empty()
    }
}

#[derive(Clone)]
pub struct Binding {
    pub dest: Destination,
    pub key: ShortString,
    pub args: FieldTable,
    /// Parsed once at bind time for headers exchanges.
    pub x_match: headers::XMatch,
}

#[derive(Default)]
pub struct Bindings {
    list: Vec<Binding>,
    /// Direct exchanges route by exact key through this index.
    by_key: HashMap<ShortString, Vec<Destination>>,
    /// Consistent-hash exchanges route through this ring.
    ring: Vec<(u64, Destination)>,
    /// Topic exchanges route through this trie of binding-key words.
    topic: topic::Trie,
}

pub struct Exchange {
    pub name: ShortString,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
    /// For an x-delayed-message exchange: the hidden queue holding messages
    /// until their x-delay is over (`kind` is then its x-delayed-type).
    pub delayed: Option<Arc<Queue>>,
    /// x-message-deduplication: the header and the window of values seen.
    dedup: Option<(DedupArgs, Mutex<Window>)>,
    bindings: RwLock<Bindings>,
    /// Deleted from its vhost: a channel's cached lookup must look again.
    deleted: std::sync::atomic::AtomicBool,
    pub(crate) stats: stats::ExchangeStats,
}

impl Exchange {
    pub fn new(
        name: ShortString,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Arc<Exchange> {
        Self::with_delay_queue(name, kind, durable, auto_delete, internal, arguments, None)
    }

    /// An exchange; with a delay queue it is an x-delayed-message exchange
    /// routing as `kind` once a message is due.
    pub fn with_delay_queue(
        name: ShortString,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
        delayed: Option<Arc<Queue>>,
    ) -> Arc<Exchange> {
        // Declare validated the arguments; recovered ones were valid then.
        let dedup = DedupArgs::parse(&arguments, kind == ExchangeKind::MessageDeduplication)
            .ok()
            .flatten()
            .map(|a| {
                let w = a.window();
                (a, Mutex::new(w))
            });
        Arc::new(Exchange {
            name,
            kind,
            dedup,
            durable,
            auto_delete,
            internal,
            arguments,
            delayed,
            bindings: RwLock::default(),
            deleted: Default::default(),
            stats: Default::default(),
        })
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(std::sync::atomic::Ordering::Acquire)
    }

    /// When a message with these properties is due, if this is a
    /// delayed-message exchange that holds it (a positive x-delay).
    pub fn holds_until(&self, props: &BasicProperties) -> Option<u64> {
        self.delayed.as_ref()?;
        delay_of(props)
    }

    /// The type name clients declared it with.
    pub fn type_name(&self) -> &'static str {
        if self.delayed.is_some() {
            DELAYED_TYPE
        } else {
            self.kind.as_str()
        }
    }

    /// Deduplication: false if the message is a duplicate of one this
    /// exchange routed recently; otherwise it is remembered.
    pub fn admit(&self, props: &BasicProperties) -> bool {
        let Some((args, window)) = &self.dedup else {
            return true;
        };
        let Some(key) = args.key_of(props) else {
            return true;
        };
        let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
        w.admit(key, props, crate::clock::system_now_ms())
    }

    fn read(&self) -> RwLockReadGuard<'_, Bindings> {
        self.bindings.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Bindings> {
        self.bindings.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a binding; binding the same queue, key and arguments twice is a no-op.
    pub fn bind(&self, b: Binding) {
        let mut g = self.write();
        let exists = g
            .list
            .iter()
            .any(|x| x.dest.same(&b.dest) && x.key == b.key && x.args == b.args);
        if exists {
            return;
        }
        if self.kind == ExchangeKind::Direct {
            let v = g.by_key.entry(b.key.clone()).or_default();
            if !v.iter().any(|d| d.same(&b.dest)) {
                v.push(b.dest.clone());
            }
        }
        if self.kind == ExchangeKind::Topic {
            g.topic.insert(b.key.as_str(), b.dest.clone());
        }
        g.list.push(b);
        if self.kind == ExchangeKind::ConsistentHash {
            g.rebuild_ring();
        }
    }

    /// Remove a binding; true if it existed.
    pub fn unbind(&self, dest: &Destination, key: &str, args: &FieldTable) -> bool {
        let mut g = self.write();
        let before = g.list.len();
        g.list
            .retain(|x| !(x.dest.same(dest) && x.key.as_str() == key && &x.args == args));
        let removed = g.list.len() != before;
        if removed && self.kind == ExchangeKind::Direct {
            g.reindex_key(key);
        }
        if removed && self.kind == ExchangeKind::Topic {
            g.topic.remove(key, dest);
        }
        if removed && self.kind == ExchangeKind::ConsistentHash {
            g.rebuild_ring();
        }
        removed
    }

    /// Remove every binding to `queue` (it is being deleted); true if any.
    pub fn unbind_queue(&self, queue: &Arc<Queue>) -> bool {
        self.unbind_where(|d| d.is_queue(queue))
    }

    /// Remove every binding to exchange `x` (it is being deleted); true if any.
    pub fn unbind_exchange(&self, x: &Exchange) -> bool {
        self.unbind_where(|d| d.is_exchange(x))
    }

    fn unbind_where(&self, gone: impl Fn(&Destination) -> bool) -> bool {
        let mut g = self.write();
        let before = g.list.len();
        g.list.retain(|b| !gone(&b.dest));
        if g.list.len() == before {
            return false;
        }
        for v in g.by_key.values_mut() {
            v.retain(|d| !gone(d));
        }
        g.by_key.retain(|_, v| !v.is_empty());
        g.topic.retain(&gone);
        if self.kind == ExchangeKind::ConsistentHash {
            g.rebuild_ring();
        }
        true
    }

    /// A copy of the bindings, for saving definitions.
    pub fn bindings(&self) -> Vec<Binding> {
        self.read().list.clone()
    }

    pub fn has_bindings(&self) -> bool {
        !self.read().list.is_empty()
    }

    /// The alternate exchange named in the arguments, if any.
    pub fn alternate(&self) -> Option<&str> {
        match self.arguments.inner().get("alternate-exchange") {
            Some(amq_protocol::types::AMQPValue::LongString(s)) => {
                std::str::from_utf8(s.as_bytes()).ok()
            }
            Some(amq_protocol::types::AMQPValue::ShortString(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    /// Add the destinations this message routes to, each once.
    pub fn route(&self, key: &str, props: &BasicProperties, out: &mut Routed) {
        let headers = props.headers().as_ref();
        let g = self.read();
        match self.kind {
            ExchangeKind::Direct => {
                if let Some(ds) = g.by_key.get(key) {
                    for d in ds {
                        out.push(d);
                    }
                }
            }
            ExchangeKind::Fanout | ExchangeKind::MessageDeduplication => {
                for b in &g.list {
                    out.push(&b.dest);
                }
            }
            ExchangeKind::Topic => g.topic.route(key, |d| out.push(d)),
            ExchangeKind::Headers => {
                for b in &g.list {
                    if headers::matches(b.x_match, &b.args, headers) {
                        out.push(&b.dest);
                    }
                }
            }
            ExchangeKind::ConsistentHash => {
                let input = consistent_hash::hash_input(&self.arguments, key, props);
                if let Some(d) = input.and_then(|i| consistent_hash::pick(&g.ring, &i)) {
                    out.push(d);
                }
            }
        }
    }
}

impl Bindings {
    fn rebuild_ring(&mut self) {
        self.ring = consistent_hash::ring(self.list.iter().map(|b| (&b.dest, b.key.as_str())));
    }

    fn reindex_key(&mut self, key: &str) {
        let mut qs: Vec<Destination> = Vec::new();
        for b in self.list.iter().filter(|b| b.key.as_str() == key) {
            if !qs.iter().any(|d| d.same(&b.dest)) {
                qs.push(b.dest.clone());
            }
        }
        if qs.is_empty() {
            self.by_key.remove(key);
        } else {
            self.by_key.insert(key.into(), qs);
        }
    }
}

fn push_unique(out: &mut Vec<Arc<Queue>>, q: &Arc<Queue>) {
    if !out.iter().any(|x| Arc::ptr_eq(x, q)) {
        out.push(q.clone());
    }
}

/// The due time (ms) of a message published with a positive x-delay header.
pub fn delay_of(props: &BasicProperties) -> Option<u64> {
    let v = props.headers().as_ref()?.inner().get("x-delay")?;
    let d = match crate::field::int(v) {
        Some(d) => d,
        None => std::str::from_utf8(crate::field::text(v)?)
            .ok()?
            .parse()
            .ok()?,
    };
    (d > 0).then(|| crate::clock::system_now_ms() + d as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> Arc<Queue> {
        Queue::new(name.into(), false, None, false, FieldTable::default())
    }

    fn bind(x: &Exchange, q: &Arc<Queue>, key: &str) {
        x.bind(Binding {
            dest: Destination::Queue(q.clone()),
            key: key.into(),
            args: FieldTable::default(),
            x_match: headers::XMatch::All,
        });
    }

    #[test]
    fn direct_key_reaches_every_bound_queue_once() {
        let x = Exchange::new(
            "x".into(),
            ExchangeKind::Direct,
            false,
            false,
            false,
            FieldTable::default(),
        );
        let (a, b) = (q("a"), q("b"));
        bind(&x, &a, "k");
        bind(&x, &b, "k");
        bind(&x, &b, "other");
        let mut out = Routed::default();
        x.route("k", &BasicProperties::default(), &mut out);
        assert_eq!(out.queues.len(), 2);
        assert!(x.unbind(&Destination::Queue(a), "k", &FieldTable::default()));
        out.clear();
        x.route("k", &BasicProperties::default(), &mut out);
        assert_eq!(out.queues.len(), 1);
        assert!(Arc::ptr_eq(&out.queues[0], &b));
    }

    #[test]
    fn topic_queue_matched_by_two_bindings_gets_one_copy() {
        let x = Exchange::new(
            "t".into(),
            ExchangeKind::Topic,
            false,
            false,
            false,
            FieldTable::default(),
        );
        let a = q("a");
        bind(&x, &a, "a.*");
        bind(&x, &a, "#");
        let mut out = Routed::default();
        x.route("a.b", &BasicProperties::default(), &mut out);
        assert_eq!(out.queues.len(), 1);
    }
}
