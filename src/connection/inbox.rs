//! What arrives in the connection's inbox: deliveries and cancels from its
//! queues, a nudge to resume busy consumers, the store's word that what
//! confirms waited for is on disk, and the broker's forced close.

use super::*;

impl Connection {
    pub(super) fn queue_event(&mut self, ev: InboxEvent) {
        match ev {
            InboxEvent::Deliver(d) => {
                let cost = d.entry.msg.body_size() + DELIVERY_OVERHEAD;
                let ch = match self.state {
                    State::Open => self.channels.get_mut(&d.consumer.channel),
                    _ => None,
                };
                let result = match ch {
                    Some(ch) => {
                        let mut ctx = ctx!(self);
                        ch.deliver(&mut ctx, d)
                    }
                    None => Err(d),
                };
                match result {
                    Ok(()) => self.delivered_bytes += cost,
                    Err(d) => {
                        self.sink.written(cost);
                        give_back(d);
                    }
                }
            }
            InboxEvent::Cancelled(handle) => {
                if let Some(ch) = self.channels.get_mut(&handle.channel) {
                    let mut ctx = ctx!(self);
                    ch.consumer_cancelled(&mut ctx, &handle);
                }
            }
            InboxEvent::Resume => {
                for ch in self.channels.values() {
                    ch.resume();
                }
            }
            InboxEvent::Synced => self.flush_all_confirms(),
            InboxEvent::ForceClose(reason) => self.fail(AmqpError::connection_forced(reason)),
        }
    }
}

/// A delivery that never reached its consumer goes back to its queue.
pub(super) fn give_back(d: crate::queue::consumer::Delivery) {
    if !d.consumer.no_ack {
        d.consumer.credit.give_back(1);
        d.consumer.channel_credit.give_back(1);
    }
    d.queue.return_undelivered(d.entry, !d.consumer.no_ack);
}
