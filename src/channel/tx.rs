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
    pub(super) fn tx_select(&mut self, ctx: &mut Ctx) -> AmqpResult<()> {
        if self.confirm.is_some() {
            return Err(AmqpError::precondition_failed(
                "cannot switch from confirm to tx mode",
            ));
        }
        self.tx.get_or_insert_with(Tx::default);
        self.stats
            .transactional
            .store(true, std::sync::atomic::Ordering::Relaxed);
        ctx.out.method(
            self.id,
            AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
        );
        Ok(())
    }

    pub(super) fn tx_commit(&mut self, ctx: &mut Ctx) -> AmqpResult<()> {
        let t = std::mem::take(self.tx.as_mut().ok_or_else(not_transactional)?);
        let mut sends = Vec::new();
        for (x, msg, mandatory) in t.publishes {
            self.enqueue(ctx, &x, &msg, mandatory);
            if !self.routed.remote.is_empty() {
                sends.push(
                    ctx.vhost
                        .forward(&msg, std::mem::take(&mut self.routed.remote)),
                );
            }
        }
        for (taken, requeue) in t.settled {
            finish(ctx.vhost, taken, requeue);
        }
        self.wake_shared_prefetch();
        let commit_ok = |ch: &mut Channel, ctx: &mut Ctx| {
            ctx.out.method(
                ch.id,
                AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
            );
        };
        if sends.is_empty() {
            commit_ok(self, ctx);
            return Ok(());
        }
        // Commit-Ok once the queues on other nodes have what they were sent.
        let sent = async move {
            let mut all = true;
            for s in sends {
                all &= s.await;
            }
            Ok(all)
        };
        ctx.await_outcome(sent, "commit".into(), move |ch, ctx, all| {
            if !all {
                tracing::warn!("a transaction's message could not reach its queues' node");
            }
            commit_ok(ch, ctx);
            Ok(())
        });
        Ok(())
    }

    pub(super) fn tx_rollback(&mut self, ctx: &mut Ctx) -> AmqpResult<()> {
        let t = std::mem::take(self.tx.as_mut().ok_or_else(not_transactional)?);
        for (taken, _) in t.settled {
            self.unacked.restore(taken);
        }
        ctx.out.method(
            self.id,
            AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
        );
        Ok(())
    }
}
