//! A queue's state machine. `QueueState` owns every message the queue has:
//! ready ones and the ones checked out to consumers until they are settled.
//! Each operation is applied under the queue's lock with the time passed in
//! and leaves what the world must do in [`Effects`] (hand deliveries over,
//! dead-letter, arm a timer, tell consumers they are cancelled); the
//! `Queue` handle carries them out. Deterministic: the unit tests drive it
//! without a runtime and with a clock of their own.

use super::args::QueueArgs;
use super::consumer::ConsumerHandle;
use super::ready::{Entry, Levels, Paged, Run, Slot};
use super::stats::{Counters, Sample};
use super::{ConsumeRefused, DeadLetter, DeathReason};
use crate::clock::Now;
use crate::dedup::QueueDedup;
use crate::store::queue_log::QueueLog;
use smallvec::SmallVec;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A message going to a consumer: its index in `QueueState::consumers`,
/// valid until the operation's effects are carried out.
pub(crate) struct Handout {
    pub consumer: usize,
    pub entry: Entry,
}

/// What an operation asks of the world, in the order it must happen.
#[derive(Default)]
pub(crate) struct Effects {
    /// For consumers' connections; handed over before the lock is released
    /// so they arrive in queue order.
    pub deliveries: SmallVec<[Handout; 2]>,
    /// Let go of: for the vhost to dead-letter.
    pub dead: Vec<DeadLetter>,
    /// Consumers whose queue went away.
    pub cancelled: Vec<Arc<ConsumerHandle>>,
    /// Wake the queue's timer at this time, ms.
    pub arm: Option<u64>,
}

/// Sequence numbers are unique and dense: they are their own hash.
#[derive(Default)]
pub(crate) struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        // Spread the low bits the table indexes by over the high ones too.
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type BySeq<T> = HashMap<u64, T, BuildHasherDefault<SeqHasher>>;

#[derive(Default)]
pub(crate) struct QueueState {
    pub(super) ready: Levels,
    /// Delivered to consumers that acknowledge, not yet settled.
    pub(super) checked_out: BySeq<Entry>,
    pub(super) consumers: Vec<Arc<ConsumerHandle>>,
    /// Round-robin position per consumer priority.
    pub(super) next_consumer: Vec<(i32, usize)>,
    pub(super) next_seq: u64,
    pub(super) had_consumer: bool,
    pub(super) deleted: bool,
    /// The message log of a durable queue.
    /// Boxed, as the pager's log: a queue without one (most) pays a word.
    pub(super) log: Option<Box<QueueLog>>,
    /// Where messages past the memory window go that the log does not hold
    /// (queues made outside a vhost, in unit tests, have none).
    pub(super) pager: Option<super::pager::Pager>,
    /// (deadline ms, seq) of ready messages that expire.
    pub(super) expiry: BTreeSet<(u64, u64)>,
    /// Whether a timer serves this queue (queues made in tests have none).
    pub(super) timed: bool,
    /// The earliest deadline handed to the timer, if any.
    pub(super) scheduled: Option<u64>,
    /// Last declare, get or consumer change, ms (for x-expires).
    pub(super) last_used: u64,
    /// x-message-deduplication state.
    pub(super) dedup: Option<QueueDedup>,
    pub(super) args: Arc<QueueArgs>,
    /// Message counters (statistics).
    pub(super) stats: Counters,
    /// A quorum queue on its home: every message is written to the log, and
    /// what leaves the queue is collected in `settled` for its group.
    pub(super) replicated: bool,
    pub(super) settled: Vec<u64>,
}

impl QueueState {
    /// Basic.Get: the next ready message and how many remain after it.
    pub(super) fn get(&mut self, no_ack: bool, now: &Now) -> Option<(Entry, usize)> {
        self.last_used = now.ms();
        let Some(mut e) = self.pop_ready(no_ack) else {
            self.stats.get_empty += 1;
            return None;
        };
        if self.args.delivery_limit.is_some() {
            e.msg = Arc::new(e.msg.with_delivery_count(e.returns));
        }
        self.stats.redeliver += e.redelivered as u64;
        if no_ack {
            self.stats.get_no_ack += 1;
            self.forget([e.seq]);
        } else {
            self.stats.get += 1;
            self.checked_out.insert(e.seq, e.clone());
        }
        Some((e, self.ready.len()))
    }

    /// Basic.Ack: these are done with; the credit they held is free again.
    pub(super) fn ack(&mut self, seqs: &[u64], fx: &mut Effects) {
        self.settle(seqs);
        self.dispatch(fx);
    }

    /// Basic.Reject / Nack without requeue: gone, dead-lettered if the queue
    /// has a dead-letter exchange.
    pub(super) fn reject(&mut self, seqs: &[u64], fx: &mut Effects) {
        let dead_letters = self.args.dead_letter_exchange.is_some();
        for seq in seqs {
            if let Some(e) = self.checked_out.remove(seq)
                && dead_letters
            {
                fx.dead.push(DeadLetter {
                    msg: e.msg,
                    reason: DeathReason::Rejected,
                });
            }
        }
        self.forget(seqs.iter().copied());
        self.dispatch(fx);
    }

    /// Requeue (nack, reject, recover, a channel closing): back to their
    /// original place, marked redelivered; their TTL keeps running from the
    /// original enqueue. Past x-delivery-limit they are dead-lettered instead.
    pub(super) fn requeue(&mut self, seqs: &[u64], fx: &mut Effects) {
        let mut timed = false;
        for seq in seqs {
            let Some(mut e) = self.checked_out.remove(seq) else {
                continue;
            };
            e.redelivered = true;
            e.returns += 1;
            if self
                .args
                .delivery_limit
                .is_some_and(|l| e.returns as u64 > l)
            {
                self.forget([e.seq]);
                fx.dead.push(DeadLetter {
                    msg: e.msg,
                    reason: DeathReason::DeliveryLimit,
                });
                continue;
            }
            if e.expires != 0 {
                self.expiry.insert((e.expires, e.seq));
                timed = true;
            }
            // A delivery limit must hold across restarts too.
            if self.args.delivery_limit.is_some()
                && let Some(log) = self.log.as_mut()
            {
                log.returned([(e.seq, e.returns)]);
            }
            self.ready.requeue(e);
        }
        self.dispatch(fx);
        if timed {
            self.schedule(fx);
        }
    }

    /// A delivery that never reached its consumer (cancelled or gone while
    /// in flight): back to its place, not marked redelivered. A checked-out
    /// one comes back from the checked-out set; a no-ack one is `entry`.
    pub(super) fn return_undelivered(&mut self, entry: Entry, checked_out: bool, fx: &mut Effects) {
        let entry = match checked_out {
            true => match self.checked_out.remove(&entry.seq) {
                Some(e) => e,
                None => return,
            },
            false => entry,
        };
        if !self.deleted {
            if entry.expires != 0 {
                self.expiry.insert((entry.expires, entry.seq));
            }
            self.ready.requeue(entry);
        }
        self.dispatch(fx);
    }

    /// Checked-out messages that are settled (acked, or dropped).
    fn settle(&mut self, seqs: &[u64]) {
        for seq in seqs {
            if self.checked_out.remove(seq).is_some() {
                self.stats.ack += 1;
            }
        }
        self.forget(seqs.iter().copied());
    }

    pub(super) fn add_consumer(
        &mut self,
        c: Arc<ConsumerHandle>,
        fx: &mut Effects,
    ) -> Result<(), ConsumeRefused> {
        if self.deleted {
            return Err(ConsumeRefused::Deleted);
        }
        if self.consumers.iter().any(|c| c.exclusive) || (c.exclusive && !self.consumers.is_empty())
        {
            return Err(ConsumeRefused::InExclusiveUse);
        }
        // Highest priority first; a newcomer goes after its equals.
        let at = self.consumers.partition_point(|x| x.priority >= c.priority);
        self.consumers.insert(at, c);
        self.had_consumer = true;
        self.dispatch(fx);
        Ok(())
    }

    /// Remove a consumer; true when this makes an auto-delete queue due for
    /// deletion. What it could not take goes to the others.
    pub(super) fn remove_consumer(
        &mut self,
        c: &Arc<ConsumerHandle>,
        auto_delete: bool,
        now: &Now,
        fx: &mut Effects,
    ) -> bool {
        self.last_used = now.ms();
        let before = self.consumers.len();
        self.consumers.retain(|x| !Arc::ptr_eq(x, c));
        if self.consumers.len() != before {
            self.next_consumer.clear();
        }
        if self.consumers.is_empty() && self.args.expires.is_some() {
            self.schedule(fx);
        }
        self.dispatch(fx);
        auto_delete && self.had_consumer && self.consumers.is_empty() && !self.deleted
    }

    /// Queue.Purge: drop every ready message (checked-out ones stay).
    pub(super) fn purge(&mut self) -> usize {
        let n = self.ready.len();
        let spans = self.ready.drain_seqs();
        self.forget(spans.iter().flat_map(|&(a, b)| a..=b));
        self.expiry.clear();
        n
    }

    /// Queue.Delete: drop everything and cancel every consumer. Returns the
    /// ready count.
    pub(super) fn delete(&mut self, fx: &mut Effects) -> usize {
        self.deleted = true;
        let n = self.ready.clear();
        self.checked_out.clear();
        if let Some(log) = self.log.take() {
            log.destroy();
        }
        if let Some(pager) = self.pager.take() {
            pager.destroy();
        }
        fx.cancelled.append(&mut self.consumers);
        n
    }

    /// What it holds and has counted, for statistics.
    pub(super) fn sample(&self) -> Sample {
        Sample {
            counters: self.stats,
            ready: self.ready.len(),
            unacked: self.checked_out.len(),
            consumers: self.consumers.len(),
            ready_bytes: self.ready.total_bytes(),
            unacked_bytes: self.checked_out.values().map(|e| e.msg.body_size()).sum(),
            last_used: self.last_used,
        }
    }

    /// (ready, checked out, consumers).
    pub(super) fn counts(&self) -> (usize, usize, usize) {
        (
            self.ready.len(),
            self.checked_out.len(),
            self.consumers.len(),
        )
    }

    /// The next ready message, read back from the log if it was paged. A
    /// message that cannot be read is reported and skipped, not delivered
    /// half-formed. `share`: it goes straight to a socket and is dropped
    /// there (a no-ack delivery), so a paged body may stay a slice of the
    /// log's read buffer instead of being copied out.
    pub(super) fn pop_ready(&mut self, share: bool) -> Option<Entry> {
        loop {
            match self.ready.pop()? {
                Slot::Mem(e) => return Some(e),
                Slot::Gone(_) => continue,
                Slot::Disk(p) => match self.read_paged(&p) {
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
                },
                Slot::Run(run) => {
                    if let Some(e) = self.read_run(run, share) {
                        return Some(e);
                    }
                }
            }
        }
    }

    /// A paged message, read back; a transient one leaves the scratch log.
    pub(super) fn read_paged(&mut self, p: &Paged) -> std::io::Result<crate::message::Message> {
        match (p.scratch, self.log.as_mut(), self.pager.as_mut()) {
            (true, _, Some(pager)) => pager.page_in(p.seq, p.loc),
            (false, Some(log), _) => log.read(p.loc),
            _ => Err(std::io::Error::other("no log")),
        }
    }

    /// The first message of a run of paged ones; the rest of the run goes
    /// back in front. A run that cannot be read is reported and dropped.
    fn read_run(&mut self, mut run: Box<Run>, share: bool) -> Option<Entry> {
        let read = match (run.scratch, self.log.as_mut(), self.pager.as_mut()) {
            (true, _, Some(pager)) => pager.read_next(run.segment, run.next, run.end, share),
            (false, Some(log), _) => log.read_next(run.segment, run.next, run.end, share),
            _ => Err(std::io::Error::other("no log")),
        };
        match read {
            Ok(Some(next)) => {
                run.count -= 1;
                run.bytes = run.bytes.saturating_sub(next.len as usize);
                run.next = next.offset;
                run.first = next.seq + 1;
                let redelivered = run.redelivered;
                if run.count > 0 {
                    self.ready.unpop_run(run);
                }
                Some(Entry {
                    seq: next.seq,
                    msg: Arc::new(next.msg),
                    redelivered,
                    expires: 0,
                    returns: 0,
                })
            }
            res => {
                let why = res
                    .err()
                    .map_or("it ends early".to_string(), |e| e.to_string());
                tracing::error!(
                    "cannot read {} paged messages ({}..={}) back from their log: {why}; dropped",
                    run.count,
                    run.first,
                    run.last
                );
                self.forget(run.first..=run.last);
                None
            }
        }
    }

    /// A deduplicating queue takes back the value of a message recovered at
    /// boot (read from its log: deduplication queues pay that at startup).
    pub(super) fn recover_dedup_key(
        &mut self,
        seq: u64,
        loc: crate::store::queue_log::Location,
        now: u64,
    ) {
        let (Some(d), Some(a)) = (self.dedup.as_mut(), self.args.dedup.as_ref()) else {
            return;
        };
        let Some(Ok(msg)) = self.log.as_mut().map(|l| l.read(loc)) else {
            return;
        };
        if let Some(k) = a.key_of(&msg.properties) {
            d.record(k, seq, &msg.properties, now);
        }
    }

    /// These messages are gone for good: record it in the log, if any,
    /// and free their deduplication keys.
    pub(super) fn forget(&mut self, seqs: impl IntoIterator<Item = u64> + Clone) {
        if self.replicated {
            self.settled.extend(seqs.clone());
        }
        if let Some(d) = self.dedup.as_mut() {
            for seq in seqs.clone() {
                d.forget(seq);
            }
        }
        if let Some(pager) = self.pager.as_mut() {
            pager.forget(seqs.clone());
        }
        if let Some(log) = self.log.as_mut() {
            log.ack(seqs);
        }
    }
}
