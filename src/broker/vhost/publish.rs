//! Putting a routed message into its queues: what Basic.Publish and the
//! management API's publish share once a message is checked and built.

use super::*;
use crate::message::Message;
use crate::queue::Published;

/// What enqueueing one message did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Enqueued {
    /// Some queue (or delayed exchange) took it: no Basic.Return.
    pub delivered: bool,
    /// The store ticket its persistence waits for (0: none).
    pub ticket: u64,
    /// A queue could not take it (its log failed, or it was full and
    /// rejects publishes): the publish is nacked.
    pub failed: bool,
    /// How many queues it was routed to (an exchange's `publish_out`).
    pub queues: u32,
}

impl Vhost {
    /// Route `msg` from `x` and hand it to every queue reached, dead
    /// letters to their exchanges and delayed copies to their timers.
    /// `routed` is the caller's scratch buffer, kept to spare an allocation
    /// per message.
    pub fn enqueue(&self, x: &Arc<Exchange>, msg: &Arc<Message>, routed: &mut Routed) -> Enqueued {
        self.route(x, msg, routed);
        let mut done = Enqueued {
            queues: routed.queues.len() as u32,
            ..Enqueued::default()
        };
        for q in routed.queues.drain(..) {
            if q.through_cluster() {
                // Routed: its home (or its group) takes it (the caller
                // forwards it).
                done.delivered = true;
                routed.remote.push(q);
                continue;
            }
            let (published, dead) = q.publish(msg.clone());
            match published {
                Published::Accepted { ticket } => {
                    done.delivered = true;
                    done.ticket = done.ticket.max(ticket);
                }
                Published::Duplicate => done.delivered = true,
                Published::Dropped => {}
                // RabbitMQ nacks a publish a full queue refused, but it was
                // routed: no Basic.Return.
                Published::Rejected => {
                    done.delivered = true;
                    done.failed = true;
                }
                Published::Failed => done.failed = true,
            }
            if !dead.is_empty() {
                self.dead_letter(&q, dead);
            }
        }
        for dx in routed.delayed.drain(..) {
            // A delayed-message exchange (published to, or reached by
            // routing) holds it until due; the timer routes it then.
            match self.hold_delayed(&dx, msg) {
                Published::Accepted { ticket } => {
                    done.delivered = true;
                    done.ticket = done.ticket.max(ticket);
                }
                _ => done.failed = true,
            }
        }
        done
    }
}
