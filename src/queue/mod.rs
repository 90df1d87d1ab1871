//! A queue: its messages, its consumers and round-robin dispatch to them.
//!
//! [`state::QueueState`] is the queue as a state machine; [`Queue`] is its
//! handle: one short `std` mutex per queue (never held across an await,
//! never shared between queues) around it, the time read from the vhost's
//! clock, and the effects of each operation carried out after it is
//! applied. Publishers and acking consumers call in directly, so a delivery
//! needs no task hop.

pub mod args;
pub mod consumer;
mod dispatch;
pub mod expiry;
pub mod inbox;
mod limits;
pub(crate) mod pager;
mod placement;
pub(crate) use placement::{Commit, HomeGet, HomeLink, HomeSettle, Placement, QuorumLink};
mod publish;
pub mod ready;
mod replicated;
mod run;
mod state;
pub(crate) mod stats;

use crate::clock::{Clock, Now};
use crate::dedup::QueueDedup;
use crate::message::Message;
use crate::store::queue_log::QueueLog;
use amq_protocol::types::{FieldTable, ShortString};
use args::QueueArgs;
use consumer::{ConsumerHandle, Delivery};
use expiry::ExpiryTimer;
use inbox::{InboxEvent, Sink};
use ready::{Entry, Levels, Paged};
use smallvec::SmallVec;
use state::{Effects, QueueState};
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
    clock: Clock,
    state: Mutex<QueueState>,
    /// Rates, updated by the broker's statistics sampler.
    rates: stats::SharedRates,
    /// Where a cluster's queue lives (`replicate_topology`); None alone.
    pub(crate) placement: Option<Placement>,
    /// A quorum queue's group, on its home.
    quorum: std::sync::OnceLock<Arc<dyn QuorumLink>>,
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

/// Messages a queue let go of, which must go to `Vhost::dead_letter`.
#[must_use = "dead letters are lost unless passed to Vhost::dead_letter"]
#[derive(Default)]
pub struct Dead(pub Vec<DeadLetter>);

impl Dead {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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
            None,
            Vec::new(),
            QueueArgs::default(),
            None,
            Clock::System,
        )
    }

    /// A queue backed by a message log, holding what the log recovered.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn with_log(
        name: ShortString,
        durable: bool,
        exclusive_owner: Option<u64>,
        auto_delete: bool,
        arguments: FieldTable,
        log: Option<QueueLog>,
        pager: Option<pager::Pager>,
        recovered: Vec<crate::store::queue_log::Recovered>,
        args: QueueArgs,
        timer: Option<Arc<ExpiryTimer>>,
        clock: Clock,
    ) -> Arc<Queue> {
        let now = clock.now_ms();
        // One copy of the arguments, shared by the handle and the state.
        let args = Arc::new(args);
        let mut st = QueueState {
            next_seq: log.as_ref().map_or(0, QueueLog::next_seq),
            log: log.map(Box::new),
            pager,
            last_used: now,
            timed: timer.is_some(),
            ready: Levels::new(args.max_priority),
            dedup: args.dedup.as_ref().map(QueueDedup::new),
            args: args.clone(),
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
            st.next_seq = st.next_seq.max(seq + 1);
            if expires != 0 {
                st.expiry.insert((expires, seq));
            }
            st.recover_dedup_key(seq, loc, now);
            let level = st.ready.level_of(Some(priority));
            st.ready.push_paged(
                Paged {
                    seq,
                    loc,
                    redelivered: true,
                    scratch: false,
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
            args: RwLock::new(args),
            timer,
            clock,
            state: Mutex::new(st),
            rates: Default::default(),
            placement: None,
            quorum: std::sync::OnceLock::new(),
        })
    }

    /// The effective arguments.
    pub fn args(&self) -> Arc<QueueArgs> {
        self.args.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic elsewhere while holding the lock leaves state that is still
        // consistent enough to serve; do not cascade it to every publisher.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply one operation to the state and carry out its effects:
    /// deliveries go into their connections' inboxes before the lock is
    /// released (so they arrive in queue order whoever dispatched them),
    /// the connections are woken, the timer armed and consumers told of a
    /// deletion after it. Dead letters go back to the caller.
    fn apply<T>(
        self: &Arc<Self>,
        op: impl FnOnce(&mut QueueState, &Now, &mut Effects) -> T,
    ) -> (T, Dead) {
        let now = Now::of(&self.clock);
        let mut fx = Effects::default();
        let mut wake: SmallVec<[Sink; 2]> = SmallVec::new();
        let (out, settled) = {
            let mut st = self.lock();
            let out = op(&mut st, &now, &mut fx);
            self.hand_over(&mut st, &mut fx, &mut wake);
            (out, std::mem::take(&mut st.settled))
        };
        if !settled.is_empty()
            && let Some(link) = self.quorum.get()
        {
            link.clone().settled(settled);
        }
        for sink in wake {
            sink.wake();
        }
        if let (Some(at), Some(t)) = (fx.arm, &self.timer) {
            t.schedule(at, self);
        }
        for c in fx.cancelled {
            let _ = c.sink.send(InboxEvent::Cancelled(c.clone()));
        }
        (out, Dead(fx.dead))
    }

    fn hand_over(
        self: &Arc<Self>,
        st: &mut QueueState,
        fx: &mut Effects,
        wake: &mut SmallVec<[Sink; 2]>,
    ) {
        let ack_timeout = st.args.consumer_timeout;
        let mut refused: SmallVec<[Delivery; 1]> = SmallVec::new();
        let mut lost: SmallVec<[Entry; 1]> = SmallVec::new();
        for h in fx.deliveries.drain(..) {
            let Some(c) = st.consumers.get(h.consumer) else {
                // Cannot happen: no operation changes the consumers after
                // dispatching. Should one, the message must not be lost.
                lost.push(h.entry);
                continue;
            };
            let d = Delivery {
                consumer: c.clone(),
                queue: self.clone(),
                entry: h.entry,
                ack_timeout,
            };
            match c.sink.push_delivery(d) {
                Ok(false) => {}
                // Only a push into an empty inbox needs a wake; rarely twice.
                Ok(true) => {
                    if !wake.iter().any(|w| w.same(&c.sink)) {
                        wake.push(c.sink.clone());
                    }
                }
                Err(d) => refused.push(d),
            }
        }
        for d in refused {
            st.undeliverable(&d.consumer, d.entry);
        }
        for e in lost {
            tracing::error!(
                "queue '{}': a delivery lost its consumer; requeued",
                self.name
            );
            st.checked_out.remove(&e.seq);
            st.ready.requeue(e);
        }
    }
}

/// The operations, each applied through [`Queue::apply`].
impl Queue {
    /// Enqueue a routed message (persisting it first if it is persistent
    /// and the queue durable) and hand what can go to consumers.
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>) -> (Published, Dead) {
        let (p, dead) = self.apply(|st, now, fx| st.publish(msg, None, now, fx));
        if p == Published::Failed {
            tracing::error!("queue '{}': a message could not be persisted", self.name);
        }
        (p, dead)
    }

    /// Hold a message for a delayed-message exchange until `due` (ms).
    pub fn delay(self: &Arc<Self>, msg: Arc<Message>, due: u64) -> Published {
        // The hidden queue has no limits and no consumers: nothing dies here.
        let (p, _none) = self.apply(|st, now, fx| st.publish(msg, Some(due.max(1)), now, fx));
        p
    }

    /// New effective arguments (a policy changed). Only what policies may
    /// set changes; limits apply at once, TTLs to messages published from
    /// now on.
    pub fn set_args(self: &Arc<Self>, args: QueueArgs) -> Dead {
        let args = Arc::new(args);
        *self.args.write().unwrap_or_else(|p| p.into_inner()) = args.clone();
        self.apply(|st, _, fx| {
            st.args = args;
            if st.args.overflow == args::Overflow::DropHead {
                st.drop_head(fx);
            }
            st.schedule(fx);
        })
        .1
    }

    /// Try again to hand ready messages to consumers (after credit was freed).
    pub fn dispatch(self: &Arc<Self>) {
        let ((), _none) = self.apply(|st, _, fx| st.dispatch(fx));
    }

    /// Basic.Get: the next ready message and how many remain after it.
    pub fn get(self: &Arc<Self>, no_ack: bool) -> Option<(Entry, usize)> {
        self.apply(|st, now, _| st.get(no_ack, now)).0
    }

    /// Basic.Ack of checked-out messages; the queue dispatches again.
    pub fn ack(self: &Arc<Self>, seqs: &[u64]) {
        if let Some(h) = self.home_link() {
            return h.settle(seqs, HomeSettle::Ack);
        }
        let ((), _none) = self.apply(|st, _, fx| st.ack(seqs, fx));
    }

    /// Rejected (or nacked) without requeue.
    pub fn reject(self: &Arc<Self>, seqs: &[u64]) -> Dead {
        if let Some(h) = self.home_link() {
            h.settle(seqs, HomeSettle::Reject);
            return Dead::default();
        }
        self.apply(|st, _, fx| st.reject(seqs, fx)).1
    }

    /// Back to the ready list, marked redelivered.
    pub fn requeue(self: &Arc<Self>, seqs: &[u64]) -> Dead {
        if let Some(h) = self.home_link() {
            h.settle(seqs, HomeSettle::Requeue);
            return Dead::default();
        }
        self.apply(|st, _, fx| st.requeue(seqs, fx)).1
    }

    /// A delivery that never reached its consumer goes back to its place.
    pub fn return_undelivered(self: &Arc<Self>, entry: Entry, checked_out: bool) {
        if let Some(h) = self.home_link() {
            if checked_out {
                h.settle(&[entry.seq], HomeSettle::Requeue);
            }
            return;
        }
        let ((), _none) = self.apply(|st, _, fx| st.return_undelivered(entry, checked_out, fx));
    }

    pub fn add_consumer(self: &Arc<Self>, c: Arc<ConsumerHandle>) -> Result<(), ConsumeRefused> {
        self.apply(|st, _, fx| st.add_consumer(c, fx)).0
    }

    /// Remove a consumer; true when this makes an auto-delete queue due for deletion.
    pub fn remove_consumer(self: &Arc<Self>, c: &Arc<ConsumerHandle>) -> bool {
        if let Some(h) = self.home_link() {
            h.cancel(c);
            return false;
        }
        let auto_delete = self.auto_delete;
        self.apply(|st, now, fx| st.remove_consumer(c, auto_delete, now, fx))
            .0
    }

    pub fn purge(self: &Arc<Self>) -> usize {
        self.apply(|st, _, _| st.purge()).0
    }

    /// What it holds and has counted, now.
    pub(crate) fn sample(&self) -> stats::Sample {
        self.lock().sample()
    }

    /// The statistics sampler's turn: a new sample into the rates.
    pub(crate) fn update_rates(&self) {
        let s = self.sample();
        let now = self.clock.now_ms();
        self.rates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(now, s);
    }

    /// The rates between the sampler's last two samples.
    pub(crate) fn rates(&self) -> stats::Rates {
        self.rates.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Its consumers, for the management API.
    pub(crate) fn consumer_list(&self) -> Vec<Arc<ConsumerHandle>> {
        self.lock().consumers.clone()
    }

    /// (ready messages, consumers), as Queue.Declare-Ok reports them.
    pub fn counts(&self) -> (usize, usize) {
        let (ready, _, consumers) = self.lock().counts();
        (ready, consumers)
    }

    /// Mark deleted, drop its messages and tell every consumer's connection
    /// that its consumer is gone. Returns the ready count.
    pub fn delete(self: &Arc<Self>) -> usize {
        self.apply(|st, _, fx| st.delete(fx)).0
    }

    /// The timer fired at `now`: expire what is due. True when the queue
    /// has been unused for its x-expires and must go.
    pub fn expire(self: &Arc<Self>, now: u64) -> (bool, Dead) {
        self.apply(|st, _, fx| st.expire(now, fx))
    }

    /// Arm the timer for what a recovered queue holds.
    pub fn start_timers(self: &Arc<Self>) {
        self.touch_always();
    }

    /// The queue was used (declared, read or consumed from): an x-expires
    /// countdown starts again.
    pub fn touch(self: &Arc<Self>) {
        if self.args().expires.is_some() {
            self.touch_always();
        }
    }

    fn touch_always(self: &Arc<Self>) {
        let ((), _none) = self.apply(|st, now, fx| st.touch(now, fx));
    }
}

#[cfg(test)]
mod paging_tests;
#[cfg(test)]
mod tests;
