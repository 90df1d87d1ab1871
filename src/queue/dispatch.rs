//! Handing ready messages to consumers: highest consumer priority first,
//! round-robin within a priority, single-active-consumer, prefetch credit.

use super::consumer::{ConsumerHandle, DELIVERY_OVERHEAD};
use super::ready::Entry;
use super::state::{Effects, Handout, QueueState};
use std::sync::Arc;

impl QueueState {
    /// The consumer for the next message, its credit taken: the highest
    /// priority group with room, round-robin within the group; under
    /// single-active-consumer only the first consumer.
    fn pick(&mut self, single_active: bool) -> Option<usize> {
        let n = if single_active {
            self.consumers.len().min(1)
        } else {
            self.consumers.len()
        };
        let mut start = 0;
        while start < n {
            let p = self.consumers[start].priority;
            let len = self.consumers[start..n]
                .iter()
                .take_while(|c| c.priority == p)
                .count();
            let slot = match self.next_consumer.iter().position(|(q, _)| *q == p) {
                Some(s) => s,
                None => {
                    self.next_consumer.push((p, 0));
                    self.next_consumer.len() - 1
                }
            };
            let rr = &mut self.next_consumer[slot].1;
            for k in 0..len {
                let i = start + (*rr + k) % len;
                let c = &self.consumers[i];
                if !c.try_take() {
                    continue;
                }
                *rr = (*rr + k + 1) % len;
                return Some(i);
            }
            start += len;
        }
        None
    }

    /// Hand ready messages to consumers until the ready list is empty or no
    /// consumer has room. A consumer that acknowledges gets a copy; the
    /// message stays checked out here until it is settled.
    pub(super) fn dispatch(&mut self, fx: &mut Effects) {
        if self.consumers.is_empty() {
            return;
        }
        let single_active = self.args.single_active_consumer;
        let count_deliveries = self.args.delivery_limit.is_some();
        let mut settled_on_send: smallvec::SmallVec<[u64; 4]> = smallvec::SmallVec::new();
        while !self.ready.is_empty() {
            let Some(i) = self.pick(single_active) else {
                break;
            };
            let Some(mut entry) = self.pop_ready(self.consumers[i].no_ack) else {
                self.consumers[i].give_back();
                break;
            };
            if count_deliveries {
                entry.msg = Arc::new(entry.msg.with_delivery_count(entry.returns));
            }
            self.stats.redeliver += entry.redelivered as u64;
            if self.consumers[i].no_ack {
                self.stats.deliver_no_ack += 1;
                if self.log.is_some() || self.dedup.is_some() {
                    settled_on_send.push(entry.seq);
                }
            } else {
                self.stats.deliver += 1;
                self.checked_out.insert(entry.seq, entry.clone());
            }
            self.consumers[i]
                .sink
                .reserve(entry.msg.body_size() + DELIVERY_OVERHEAD);
            fx.deliveries.push(Handout { consumer: i, entry });
        }
        if !settled_on_send.is_empty() {
            self.forget(settled_on_send);
        }
    }

    /// A delivery its connection would not take (it is gone): the message
    /// goes back to its place and the consumer's credit is returned.
    pub(super) fn undeliverable(&mut self, consumer: &ConsumerHandle, entry: Entry) {
        consumer.give_back();
        let entry = match consumer.no_ack {
            // It may share a read buffer with a whole run (`pop_ready`):
            // back in the queue for who knows how long, it gets its own.
            true => Entry {
                msg: Arc::new(entry.msg.unshared()),
                ..entry
            },
            false => match self.checked_out.remove(&entry.seq) {
                Some(e) => e,
                None => return,
            },
        };
        if !self.deleted {
            if entry.expires != 0 {
                self.expiry.insert((entry.expires, entry.seq));
            }
            self.ready.requeue(entry);
        }
    }
}
