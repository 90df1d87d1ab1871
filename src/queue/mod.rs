//! A queue: its messages, its consumers and round-robin dispatch to them.
//! State sits behind one short `std` mutex per queue (never held across an
//! await, never shared between queues); publishers and acking consumers call
//! in directly, so a delivery needs no task hop.

pub mod args;
pub mod consumer;
mod dispatch;
pub mod expiry;
mod limits;
mod publish;
pub mod ready;

use limits::deadline;

use crate::dedup::QueueDedup;
use crate::message::Message;
use crate::store::queue_log::QueueLog;
use amq_protocol::types::{FieldTable, ShortString};
use args::{Overflow, QueueArgs};
use consumer::{ConsumerHandle, Delivery, InboxEvent};
use expiry::{ExpiryTimer, now_ms};
use ready::{Entry, Levels, Paged, Slot};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

pub struct Queue {
    pub name: ShortString,
    pub durable: bool,
    /// The connection that owns an exclusive queue.
    pub exclusive_owner: Option<u64>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    /// The effective arguments (own ones and policies'), for readers outside
    /// the state lock; `QueueState::args` is the same, for those inside.
    args: RwLock<Arc<QueueArgs>>,
    timer: Option<Arc<ExpiryTimer>>,
    state: Mutex<QueueState>,
}

/// Why a message left a queue without being acknowledged, in RabbitMQ's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeathReason {
    Rejected,
    Expired,
    Maxlen,
    DeliveryLimit,
}

impl DeathReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::Maxlen => "maxlen",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// A message a queue let go of, for the vhost to dead-letter.
pub struct DeadLetter {
    pub msg: Arc<Message>,
    pub reason: DeathReason,
}

#[derive(Default)]
struct QueueState {
    ready: Levels,
    /// Delivered and not yet acknowledged (the channels hold the messages).
    unacked: usize,
    consumers: Vec<Arc<ConsumerHandle>>,
    /// Round-robin position per consumer priority.
    next_consumer: Vec<(i32, usize)>,
    next_seq: u64,
    had_consumer: bool,
    deleted: bool,
    /// The message log of a durable queue.
    log: Option<QueueLog>,
    /// (deadline ms, seq) of ready messages that expire.
    expiry: BTreeSet<(u64, u64)>,
    /// The earliest deadline handed to the timer, if any.
    scheduled: Option<u64>,
    /// Last declare, get or consumer change, ms (for x-expires).
    last_used: u64,
    /// x-message-deduplication state.
    dedup: Option<QueueDedup>,
    args: Arc<QueueArgs>,
}

/// What became of a publish to one queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    /// Enqueued; durable once the store's sync reaches `ticket` (0: nothing to wait for).
    Accepted { ticket: u64 },
    /// The queue was deleted meanwhile.
    Dropped,
    /// Writing it to the queue's log failed; it was not enqueued.
    Failed,
    /// The queue is full and its overflow is reject-publish(-dlx).
    Rejected,
    /// A duplicate under x-message-deduplication: dropped, yet routed (no
    /// return, and confirmed), as with the plugin.
    Duplicate,
}

/// Why a consumer could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsumeRefused {
    /// The queue has an exclusive consumer, or one asked for exclusivity on a
    /// queue that already has consumers.
    InExclusiveUse,
    Deleted,
}

impl Queue {
    pub fn new(
        name: ShortString,
        durable: bool,
        exclusive_owner: Option<u64>,
        auto_delete: bool,
        arguments: FieldTable,
    ) -> Arc<Queue> {
        Self::with_log(
            name,
            durable,
            exclusive_owner,
            auto_delete,
            arguments,
            None,
            Vec::new(),
            QueueArgs::default(),
            None,
        )
    }

    /// A queue backed by a message log, holding what the log recovered.
    #[allow(clippy::too_many_arguments)]
    pub fn with_log(
        name: ShortString,
        durable: bool,
        exclusive_owner: Option<u64>,
        auto_delete: bool,
        arguments: FieldTable,
        log: Option<QueueLog>,
        recovered: Vec<crate::store::queue_log::Recovered>,
        args: QueueArgs,
        timer: Option<Arc<ExpiryTimer>>,
    ) -> Arc<Queue> {
        let mut st = QueueState {
            log,
            last_used: now_ms(),
            ready: Levels::new(args.max_priority),
            dedup: args.dedup.as_ref().map(QueueDedup::new),
            args: Arc::new(args.clone()),
            ..QueueState::default()
        };
        // Recovered messages stay on disk until delivered; they may have been
        // delivered before the restart, so they count as redelivered.
        for crate::store::queue_log::Recovered {
            seq,
            loc,
            expires,
            priority,
            returns,
        } in recovered
        {
            st.next_seq = seq + 1;
            if expires != 0 {
                st.expiry.insert((expires, seq));
            }
            st.recover_dedup_key(seq, loc);
            let level = st.ready.level_of(Some(priority));
            st.ready.push_paged(
                Paged {
                    seq,
                    loc,
                    redelivered: true,
                    expires,
                    returns,
                },
                level,
            );
        }
        Arc::new(Queue {
            name,
            durable,
            exclusive_owner,
            auto_delete,
            arguments,
            args: RwLock::new(Arc::new(args)),
            timer,
            state: Mutex::new(st),
        })
    }

    /// The effective arguments.
    pub fn args(&self) -> Arc<QueueArgs> {
        self.args.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// New effective arguments (a policy changed). Only what policies may
    /// set changes; limits apply at once (dead-lettering into `dead`), TTLs
    /// to messages published from now on.
    pub fn set_args(self: &Arc<Self>, args: QueueArgs, dead: &mut Vec<DeadLetter>) {
        let mut st = self.lock();
        let args = Arc::new(args);
        *self.args.write().unwrap_or_else(|p| p.into_inner()) = args.clone();
        st.args = args;
        if st.args.overflow == Overflow::DropHead {
            st.drop_head(dead);
        }
        self.schedule(&mut st);
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic elsewhere while holding the lock leaves state that is still
        // consistent enough to serve; do not cascade it to every publisher.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Try again to hand ready messages to consumers (after credit was freed).
    pub fn dispatch(self: &Arc<Self>) {
        self.lock().dispatch(self);
    }

    /// Basic.Get: the next ready message and how many remain after it.
    pub fn get(&self, no_ack: bool) -> Option<(Entry, usize)> {
        let mut st = self.lock();
        st.last_used = now_ms();
        let mut e = st.pop_ready()?;
        if st.args.delivery_limit.is_some() {
            e.msg = Arc::new(e.msg.with_delivery_count(e.returns));
        }
        if no_ack {
            st.forget([e.seq]);
        } else {
            st.unacked += 1;
        }
        Some((e, st.ready.len()))
    }

    /// Return delivered messages to the ready list at their original place
    /// (their TTL keeps running from the original enqueue).
    /// Messages past their x-delivery-limit go to `dead` instead.
    pub fn requeue(
        self: &Arc<Self>,
        entries: impl IntoIterator<Item = Entry>,
        dead: &mut Vec<DeadLetter>,
    ) {
        let mut st = self.lock();
        let mut timed = false;
        for mut e in entries {
            e.redelivered = true;
            e.returns += 1;
            st.unacked = st.unacked.saturating_sub(1);
            if st.args.delivery_limit.is_some_and(|l| e.returns as u64 > l) {
                st.forget([e.seq]);
                dead.push(DeadLetter {
                    msg: e.msg,
                    reason: DeathReason::DeliveryLimit,
                });
                continue;
            }
            if !st.deleted {
                if e.expires != 0 {
                    st.expiry.insert((e.expires, e.seq));
                    timed = true;
                }
                // A delivery limit must hold across restarts too.
                if st.args.delivery_limit.is_some()
                    && let Some(log) = st.log.as_mut()
                {
                    log.returned([(e.seq, e.returns)]);
                }
                st.ready.requeue(e);
            }
        }
        st.dispatch(self);
        if timed {
            self.schedule(&mut st);
        }
    }

    /// A delivery that never reached its consumer (cancelled or disconnected
    /// while in flight): back to its place, not marked redelivered.
    pub fn return_undelivered(self: &Arc<Self>, entry: Entry, counted_unacked: bool) {
        let mut st = self.lock();
        if counted_unacked {
            st.unacked = st.unacked.saturating_sub(1);
        }
        if !st.deleted {
            if entry.expires != 0 {
                st.expiry.insert((entry.expires, entry.seq));
            }
            st.ready.requeue(entry);
        }
        st.dispatch(self);
    }

    /// Delivered messages that were acknowledged (or otherwise dropped).
    pub fn settle(&self, seqs: &[u64]) {
        let mut st = self.lock();
        st.unacked = st.unacked.saturating_sub(seqs.len());
        st.forget(seqs.iter().copied());
    }

    pub fn add_consumer(self: &Arc<Self>, c: Arc<ConsumerHandle>) -> Result<(), ConsumeRefused> {
        let mut st = self.lock();
        if st.deleted {
            return Err(ConsumeRefused::Deleted);
        }
        if st.consumers.iter().any(|c| c.exclusive) || (c.exclusive && !st.consumers.is_empty()) {
            return Err(ConsumeRefused::InExclusiveUse);
        }
        // Highest priority first; a newcomer goes after its equals.
        let at = st.consumers.partition_point(|x| x.priority >= c.priority);
        st.consumers.insert(at, c);
        st.had_consumer = true;
        st.dispatch(self);
        Ok(())
    }

    /// Remove a consumer; true when this makes an auto-delete queue due for deletion.
    pub fn remove_consumer(self: &Arc<Self>, c: &Arc<ConsumerHandle>) -> bool {
        let mut st = self.lock();
        st.last_used = now_ms();
        let before = st.consumers.len();
        st.consumers.retain(|x| !Arc::ptr_eq(x, c));
        if st.consumers.len() != before {
            st.next_consumer.clear();
        }
        if st.consumers.is_empty() && st.args.expires.is_some() {
            self.schedule(&mut st);
        }
        self.auto_delete && st.had_consumer && st.consumers.is_empty() && !st.deleted
    }

    pub fn purge(&self) -> usize {
        let mut st = self.lock();
        let seqs = st.ready.drain_seqs();
        st.forget(seqs.iter().copied());
        st.expiry.clear();
        seqs.len()
    }

    /// (ready messages, consumers), as Queue.Declare-Ok reports them.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.ready.len(), st.consumers.len())
    }

    /// Mark deleted, drop the ready messages and tell every consumer's
    /// connection that its consumer is gone. Returns the ready count.
    pub fn delete(&self) -> usize {
        let mut st = self.lock();
        st.deleted = true;
        let n = st.ready.clear();
        if let Some(log) = st.log.take() {
            log.destroy();
        }
        for c in st.consumers.drain(..) {
            let _ = c.sink.send(InboxEvent::Cancelled(c.clone()));
        }
        n
    }
}

/// Body bytes of persistent messages a durable queue holds in memory; past
/// this, newly published ones are kept on disk only until delivered.
const PAGE_AFTER_BYTES: usize = 8 * 1024 * 1024;
/// What an in-memory message costs besides its body (properties, header, Arc).
const MESSAGE_OVERHEAD: usize = 256;

impl QueueState {
    /// The next ready message, read back from the log if it was paged. A
    /// message that cannot be read is reported and skipped, not delivered
    /// half-formed.
    fn pop_ready(&mut self) -> Option<Entry> {
        loop {
            match self.ready.pop()? {
                Slot::Mem(e) => return Some(e),
                Slot::Gone(_) => continue,
                Slot::Disk(p) => {
                    let read = match self.log.as_mut() {
                        Some(log) => log.read(p.loc),
                        None => Err(std::io::Error::other("no log")),
                    };
                    match read {
                        Ok(msg) => {
                            return Some(Entry {
                                seq: p.seq,
                                msg: Arc::new(msg),
                                redelivered: p.redelivered,
                                expires: p.expires,
                                returns: p.returns,
                            });
                        }
                        Err(e) => {
                            tracing::error!(
                                "cannot read message {} back from its log: {e}; dropped",
                                p.seq
                            );
                            self.forget([p.seq]);
                        }
                    }
                }
            }
        }
    }

    /// A deduplicating queue takes back the value of a message recovered at
    /// boot (read from its log: deduplication queues pay that at startup).
    fn recover_dedup_key(&mut self, seq: u64, loc: crate::store::queue_log::Location) {
        let (Some(d), Some(a)) = (self.dedup.as_mut(), self.args.dedup.as_ref()) else {
            return;
        };
        let Some(Ok(msg)) = self.log.as_mut().map(|l| l.read(loc)) else {
            return;
        };
        if let Some(k) = a.key_of(&msg.properties) {
            d.record(k, seq, &msg.properties, now_ms());
        }
    }

    /// These messages are gone for good: record it in the log, if any,
    /// and free their deduplication keys.
    fn forget(&mut self, seqs: impl IntoIterator<Item = u64> + Clone) {
        if let Some(d) = self.dedup.as_mut() {
            for seq in seqs.clone() {
                d.forget(seq);
            }
        }
        if let Some(log) = self.log.as_mut() {
            log.ack(seqs);
        }
    }
}

#[cfg(test)]
mod tests;
