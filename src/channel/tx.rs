//! Transactions (Tx.Select / Commit / Rollback) with RabbitMQ's semantics:
//! in a transactional channel, publishes and acknowledgements take effect
//! only at commit; rollback discards them (the acked deliveries stay unacked).

use super::acks::{Settle, Unacked, finish};
use super::{Channel, Ctx};
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::Exchange;
use crate::message::Message;
use amq_protocol::protocol::{AMQPClass, tx};
use std::sync::Arc;

#[derive(Default)]
pub(super) struct Tx {
    publishes: Vec<(Arc<Exchange>, Arc<Message>, bool)>,
    /// Deliveries settled in this transaction, and whether to requeue them.
    settled: Vec<(Vec<Unacked>, Settle)>,
}

impl Tx {
    pub(super) fn publish(&mut self, x: Arc<Exchange>, msg: Arc<Message>, mandatory: bool) {
        self.publishes.push((x, msg, mandatory));
    }

    /// Settlements not committed: their deliveries are still unacked.
    pub(super) fn into_settled(self) -> Vec<(Vec<Unacked>, Settle)> {
        self.settled
    }

    pub(super) fn settle(&mut self, taken: Vec<Unacked>, how: Settle) {
        self.settled.push((taken, how));
    }
}

fn not_transactional() -> AmqpError {
    AmqpError::precondition_failed("channel is not transactional")
}

impl Channel {
    pub(super) fn tx_method(&mut self, ctx: &mut Ctx, m: tx::AMQPMethod) -> AmqpResult<()> {
        use tx::AMQPMethod as T;
        let reply = match m {
            T::Select(_) => {
                if self.confirm.is_some() {
                    return Err(AmqpError::precondition_failed(
                        "cannot switch from confirm to tx mode",
                    ));
                }
                self.tx.get_or_insert_with(Tx::default);
                T::SelectOk(tx::SelectOk {})
            }
            T::Commit(_) => {
                let t = std::mem::take(self.tx.as_mut().ok_or_else(not_transactional)?);
                for (x, msg, mandatory) in t.publishes {
                    self.enqueue(ctx, &x, &msg, mandatory);
                }
                for (taken, requeue) in t.settled {
                    finish(ctx.vhost, taken, requeue);
                }
                self.wake_shared_prefetch();
                T::CommitOk(tx::CommitOk {})
            }
            T::Rollback(_) => {
                let t = std::mem::take(self.tx.as_mut().ok_or_else(not_transactional)?);
                for (taken, _) in t.settled {
                    self.unacked.restore(taken);
                }
                T::RollbackOk(tx::RollbackOk {})
            }
            _ => {
                return Err(AmqpError::command_invalid(
                    "tx method not valid from a client",
                ));
            }
        };
        ctx.out.method(self.id, AMQPClass::Tx(reply));
        Ok(())
    }
}
