//! Handing ready messages to consumers: highest consumer priority first,
//! round-robin within a priority, single-active-consumer, prefetch credit.

use super::*;

impl QueueState {
    /// The consumer for the next message, its credit taken: the highest
    /// priority group with room, round-robin within the group; under
    /// single-active-consumer only the first consumer. `dead` holds
    /// consumers whose connection went away during this dispatch.
    pub(super) fn pick(
        &mut self,
        single_active: bool,
        dead: &[Arc<ConsumerHandle>],
    ) -> Option<Arc<ConsumerHandle>> {
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
                if dead.iter().any(|d| Arc::ptr_eq(d, c)) || !c.try_take() {
                    continue;
                }
                *rr = (*rr + k + 1) % len;
                return Some(c.clone());
            }
            start += len;
        }
        None
    }

    /// Hand ready messages to consumers until the ready list is empty or no
    /// consumer has room.
    pub(super) fn dispatch(&mut self, queue: &Arc<Queue>) {
        if self.consumers.is_empty() {
            return;
        }
        let single_active = self.args.single_active_consumer;
        let count_deliveries = self.args.delivery_limit.is_some();
        let mut settled_on_send: Vec<u64> = Vec::new();
        let mut dead: Vec<Arc<ConsumerHandle>> = Vec::new();
        while !self.ready.is_empty() {
            let Some(c) = self.pick(single_active, &dead) else {
                break;
            };
            let Some(mut entry) = self.pop_ready() else {
                c.give_back();
                break;
            };
            if count_deliveries {
                entry.msg = Arc::new(entry.msg.with_delivery_count(entry.returns));
            }
            if c.no_ack {
                if self.log.is_some() || self.dedup.is_some() {
                    settled_on_send.push(entry.seq);
                }
            } else {
                self.unacked += 1;
            }
            let d = Delivery {
                consumer: c.clone(),
                queue: queue.clone(),
                entry,
                ack_timeout: self.args.consumer_timeout,
            };
            if let Err(d) = c.deliver(d) {
                // The connection is gone; its cleanup removes the consumer.
                c.give_back();
                if !c.no_ack {
                    self.unacked -= 1;
                }
                settled_on_send.retain(|s| *s != d.entry.seq);
                self.ready.requeue(d.entry);
                dead.push(c);
            }
        }
        if !settled_on_send.is_empty() {
            self.forget(settled_on_send);
        }
    }
}
