//! Delivery tags and the unacknowledged messages they stand for:
//! Basic.Ack / Nack / Reject / Recover with RabbitMQ's rules (an unknown tag
//! is 406 PRECONDITION_FAILED; tag 0 with multiple means "everything").

use super::{Channel, Ctx};
use crate::error::{AmqpError, AmqpResult};
use crate::queue::Queue;
use crate::queue::consumer::ConsumerHandle;
use crate::queue::ready::Entry;
use std::collections::VecDeque;
use std::sync::Arc;

pub struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    pub entry: Entry,
    /// The consumer whose prefetch this delivery counts against (None for Basic.Get).
    pub consumer: Option<Arc<ConsumerHandle>>,
}

/// Unacked deliveries in tag order. Tags only grow, so appends are at the
/// back and in-order acks pop from the front.
#[derive(Default)]
pub struct UnackedList {
    list: VecDeque<Unacked>,
}

impl UnackedList {
    pub fn push(&mut self, u: Unacked) {
        self.list.push_back(u);
    }

    /// Put back deliveries taken out (a rolled-back transaction's acks).
    pub fn restore(&mut self, entries: Vec<Unacked>) {
        for u in entries {
            let at = self.list.partition_point(|x| x.tag < u.tag);
            self.list.insert(at, u);
        }
    }

    pub fn take_all(&mut self) -> Vec<Unacked> {
        self.list.drain(..).collect()
    }

    /// Remove the given tag (and with `multiple`, every lower one).
    fn take(&mut self, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple && tag == 0 {
            return Some(self.take_all());
        }
        let idx = self.list.binary_search_by_key(&tag, |u| u.tag).ok()?;
        if multiple {
            Some(self.list.drain(..=idx).collect())
        } else {
            self.list.remove(idx).map(|u| vec![u])
        }
    }
}

fn unknown_tag(tag: u64) -> AmqpError {
    AmqpError::precondition_failed(format!("unknown delivery tag {tag}"))
}

/// Return credit and settle or requeue, one queue call per run of messages
/// from the same queue.
pub(super) fn finish(taken: Vec<Unacked>, requeue: bool) {
    for u in &taken {
        if let Some(c) = &u.consumer {
            c.credit.give_back(1);
            c.channel_credit.give_back(1);
        }
    }
    let mut queues: Vec<(Arc<Queue>, Vec<Entry>)> = Vec::new();
    for u in taken {
        match queues.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
            Some((_, v)) => v.push(u.entry),
            None => queues.push((u.queue, vec![u.entry])),
        }
    }
    for (q, entries) in queues {
        if requeue {
            q.requeue(entries);
        } else {
            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            q.settle(&seqs);
            q.dispatch();
        }
    }
}

pub(super) fn requeue(taken: Vec<Unacked>) {
    finish(taken, true);
}

impl Channel {
    pub(super) fn ack(&mut self, _ctx: &mut Ctx, tag: u64, multiple: bool) -> AmqpResult<()> {
        let taken = self
            .unacked
            .take(tag, multiple)
            .ok_or_else(|| unknown_tag(tag))?;
        match self.tx.as_mut() {
            Some(tx) => tx.settle(taken, false),
            None => finish(taken, false),
        }
        Ok(())
    }

    pub(super) fn nack(
        &mut self,
        _ctx: &mut Ctx,
        tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> AmqpResult<()> {
        let taken = self
            .unacked
            .take(tag, multiple)
            .ok_or_else(|| unknown_tag(tag))?;
        // Dead-lettering of rejected messages lands with the extensions; until
        // then requeue=false drops them, as RabbitMQ does without a DLX.
        match self.tx.as_mut() {
            Some(tx) => tx.settle(taken, requeue),
            None => finish(taken, requeue),
        }
        Ok(())
    }

    pub(super) fn recover(&mut self, _ctx: &mut Ctx, requeue: bool) -> AmqpResult<()> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        let all = self.unacked.take_all();
        finish(all, true);
        Ok(())
    }
}
