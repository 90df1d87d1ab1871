//! Delivery tags and the unacknowledged messages they stand for:
//! Basic.Ack / Nack / Reject / Recover with RabbitMQ's rules (an unknown tag
//! is 406 PRECONDITION_FAILED; tag 0 with multiple means "everything").

use super::{Channel, Ctx};
use crate::broker::Vhost;
use crate::error::{AmqpError, AmqpResult};
use crate::queue::Queue;
use crate::queue::consumer::ConsumerHandle;
use amq_protocol::protocol::{AMQPClass, basic};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// A delivery tag and what it stands for: a message checked out of a queue.
pub struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    /// The message's sequence number in its queue.
    pub seq: u64,
    /// The consumer whose prefetch this delivery counts against (None for Basic.Get).
    pub consumer: Option<Arc<ConsumerHandle>>,
    /// The consumer acknowledgement timeout it runs under, ms (0: none).
    pub timeout: u64,
    /// When that timeout runs out, ms.
    pub deadline: u64,
}

/// Unacked deliveries in tag order. Tags only grow, so appends are at the
/// back and in-order acks pop from the front.
#[derive(Default)]
pub struct UnackedList {
    list: VecDeque<Unacked>,
    /// Its length, for the management API (one relaxed store per change).
    shown: Arc<std::sync::atomic::AtomicU32>,
    /// (deadline, tag) of deliveries under an acknowledgement timeout; empty
    /// unless one is configured, so it costs nothing otherwise.
    timed: BTreeSet<(u64, u64)>,
}

impl UnackedList {
    /// The counter that shows its length.
    pub fn shown_len(&self) -> Arc<std::sync::atomic::AtomicU32> {
        self.shown.clone()
    }

    fn show(&self) {
        self.shown
            .store(self.list.len() as u32, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn push(&mut self, u: Unacked) {
        if u.timeout != 0 {
            self.timed.insert((u.deadline, u.tag));
        }
        self.list.push_back(u);
        self.show();
    }

    /// Put back deliveries taken out (a rolled-back transaction's acks).
    pub fn restore(&mut self, entries: Vec<Unacked>) {
        for u in entries {
            if u.timeout != 0 {
                self.timed.insert((u.deadline, u.tag));
            }
            let at = self.list.partition_point(|x| x.tag < u.tag);
            self.list.insert(at, u);
        }
        self.show();
    }

    pub fn take_all(&mut self) -> Vec<Unacked> {
        self.timed.clear();
        let all = self.list.drain(..).collect();
        self.show();
        all
    }

    /// Remove the given tag (and with `multiple`, every lower one).
    fn take(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple && tag == 0 {
            return Some(self.take_all());
        }
        let idx = self.list.binary_search_by_key(&tag, |u| u.tag).ok()?;
        let taken: Vec<Unacked> = if multiple {
            self.list.drain(..=idx).collect()
        } else {
            self.list.remove(idx).into_iter().collect()
        };
        if !self.timed.is_empty() {
            for u in taken.iter().filter(|u| u.timeout != 0) {
                self.timed.remove(&(u.deadline, u.tag));
            }
        }
        self.show();
        Some(taken)
    }

    /// The earliest acknowledgement deadline, ms.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timed.first().map(|&(at, _)| at)
    }

    /// The timeout of a delivery whose deadline has passed by `now`, if any.
    pub fn timed_out(&self, now: u64) -> Option<u64> {
        let &(at, tag) = self.timed.first()?;
        if at > now {
            return None;
        }
        let idx = self.list.binary_search_by_key(&tag, |u| u.tag).ok()?;
        Some(self.list[idx].timeout)
    }
}

fn unknown_tag(tag: u64) -> AmqpError {
    AmqpError::precondition_failed(format!("unknown delivery tag {tag}"))
}

/// What becomes of settled deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    Ack,
    Requeue,
    /// Rejected or nacked without requeue: dead-lettered where the queue says so.
    Reject,
}

/// Return credit and settle, requeue or dead-letter, one queue call per
/// run of messages from the same queue.
pub(super) fn finish(vhost: &Vhost, taken: Vec<Unacked>, how: Settle) {
    for u in &taken {
        if let Some(c) = &u.consumer {
            c.credit.give_back(1);
            c.channel_credit.give_back(1);
        }
    }
    let mut queues: Vec<(Arc<Queue>, Vec<u64>)> = Vec::new();
    for u in taken {
        match queues.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
            Some((_, v)) => v.push(u.seq),
            None => queues.push((u.queue, vec![u.seq])),
        }
    }
    for (q, seqs) in queues {
        match how {
            Settle::Ack => q.ack(&seqs),
            Settle::Requeue => vhost.dead_letter(&q, q.requeue(&seqs)),
            Settle::Reject => vhost.dead_letter(&q, q.reject(&seqs)),
        }
    }
}

pub(super) fn requeue(vhost: &Vhost, taken: Vec<Unacked>) {
    finish(vhost, taken, Settle::Requeue);
}

impl Channel {
    /// Under a channel-wide prefetch (basic.qos global), room freed by
    /// settling on one queue is room for every queue this channel consumes
    /// from: offer them all deliveries, not only the settled queues.
    pub(super) fn wake_shared_prefetch(&self) {
        if !self.channel_credit.is_limited() {
            return;
        }
        let mut woken: Vec<&Arc<Queue>> = Vec::new();
        for c in self.consumers.values() {
            if !woken.iter().any(|q| Arc::ptr_eq(q, &c.queue)) {
                woken.push(&c.queue);
                c.queue.dispatch();
            }
        }
    }

    pub(super) fn basic_ack(&mut self, ctx: &mut Ctx, a: basic::Ack) -> AmqpResult<()> {
        let (tag, multiple) = (a.delivery_tag, a.multiple);
        let taken = self
            .unacked
            .take(tag, multiple)
            .ok_or_else(|| unknown_tag(tag))?;
        match self.tx.as_mut() {
            Some(tx) => tx.settle(taken, Settle::Ack),
            None => {
                finish(ctx.vhost, taken, Settle::Ack);
                self.wake_shared_prefetch();
            }
        }
        Ok(())
    }

    pub(super) fn basic_nack(&mut self, ctx: &mut Ctx, n: basic::Nack) -> AmqpResult<()> {
        self.settle_rejected(ctx, n.delivery_tag, n.multiple, n.requeue)
    }

    pub(super) fn basic_reject(&mut self, ctx: &mut Ctx, r: basic::Reject) -> AmqpResult<()> {
        self.settle_rejected(ctx, r.delivery_tag, false, r.requeue)
    }

    fn settle_rejected(
        &mut self,
        ctx: &mut Ctx,
        tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> AmqpResult<()> {
        let taken = self
            .unacked
            .take(tag, multiple)
            .ok_or_else(|| unknown_tag(tag))?;
        let how = if requeue {
            Settle::Requeue
        } else {
            Settle::Reject
        };
        match self.tx.as_mut() {
            Some(tx) => tx.settle(taken, how),
            None => {
                finish(ctx.vhost, taken, how);
                self.wake_shared_prefetch();
            }
        }
        Ok(())
    }

    pub(super) fn basic_recover(&mut self, ctx: &mut Ctx, r: basic::Recover) -> AmqpResult<()> {
        self.requeue_all(ctx, r.requeue)?;
        ctx.out.method(
            self.id,
            AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})),
        );
        Ok(())
    }

    pub(super) fn basic_recover_async(
        &mut self,
        ctx: &mut Ctx,
        r: basic::RecoverAsync,
    ) -> AmqpResult<()> {
        self.requeue_all(ctx, r.requeue)
    }

    fn requeue_all(&mut self, ctx: &mut Ctx, requeue: bool) -> AmqpResult<()> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        let all = self.unacked.take_all();
        finish(ctx.vhost, all, Settle::Requeue);
        self.wake_shared_prefetch();
        Ok(())
    }
}
