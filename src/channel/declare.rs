//! The exchange and queue classes: declare, delete, bind, unbind, purge.

use super::{Channel, Ctx};
use crate::broker::vhost::{ExchangeSpec, QueueSpec};
use crate::error::{AmqpError, AmqpResult};
use amq_protocol::protocol::{AMQPClass, exchange, queue};
use std::sync::Arc;

impl Channel {
    pub(super) fn exchange_method(
        &mut self,
        ctx: &mut Ctx,
        m: exchange::AMQPMethod,
    ) -> AmqpResult<()> {
        use exchange::AMQPMethod as X;
        let reply = match m {
            X::Declare(d) => {
                ctx.vhost.declare_exchange(&ExchangeSpec {
                    name: d.exchange.as_str(),
                    kind: d.kind.as_str(),
                    passive: d.passive,
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: &d.arguments,
                })?;
                (!d.nowait).then_some(X::DeclareOk(exchange::DeclareOk {}))
            }
            X::Delete(d) => {
                ctx.vhost
                    .delete_exchange(d.exchange.as_str(), d.if_unused)?;
                (!d.nowait).then_some(X::DeleteOk(exchange::DeleteOk {}))
            }
            X::Bind(b) => {
                ctx.vhost.bind_exchange(
                    b.destination.as_str(),
                    b.source.as_str(),
                    b.routing_key.as_str(),
                    &b.arguments,
                )?;
                (!b.nowait).then_some(X::BindOk(exchange::BindOk {}))
            }
            X::Unbind(u) => {
                ctx.vhost.unbind_exchange(
                    u.destination.as_str(),
                    u.source.as_str(),
                    u.routing_key.as_str(),
                    &u.arguments,
                )?;
                (!u.nowait).then_some(X::UnbindOk(exchange::UnbindOk {}))
            }
            _ => {
                return Err(AmqpError::command_invalid(
                    "exchange method not valid from a client",
                ));
            }
        };
        if let Some(r) = reply {
            ctx.out.method(self.id, AMQPClass::Exchange(r));
        }
        Ok(())
    }

    pub(super) fn queue_method(&mut self, ctx: &mut Ctx, m: queue::AMQPMethod) -> AmqpResult<()> {
        use queue::AMQPMethod as Q;
        let reply = match m {
            Q::Declare(d) => {
                let name = if d.passive && d.queue.as_str().is_empty() {
                    self.queue_name(&d.queue)?.to_string()
                } else {
                    d.queue.to_string()
                };
                let (q, messages, consumers) = ctx.vhost.declare_queue(&QueueSpec {
                    name: &name,
                    passive: d.passive,
                    durable: d.durable,
                    exclusive: d.exclusive,
                    auto_delete: d.auto_delete,
                    arguments: &d.arguments,
                    conn_id: ctx.conn_id,
                })?;
                if q.exclusive_owner == Some(ctx.conn_id)
                    && !ctx.exclusive_queues.iter().any(|x| Arc::ptr_eq(x, &q))
                {
                    ctx.exclusive_queues.push(q.clone());
                }
                self.last_queue = Some(q.name.clone());
                (!d.nowait).then(|| {
                    Q::DeclareOk(queue::DeclareOk {
                        queue: q.name.clone(),
                        message_count: messages as u32,
                        consumer_count: consumers as u32,
                    })
                })
            }
            Q::Bind(b) => {
                let name = self.queue_name(&b.queue)?.to_string();
                ctx.vhost.bind(
                    &name,
                    b.exchange.as_str(),
                    b.routing_key.as_str(),
                    &b.arguments,
                    ctx.conn_id,
                )?;
                (!b.nowait).then_some(Q::BindOk(queue::BindOk {}))
            }
            Q::Unbind(u) => {
                let name = self.queue_name(&u.queue)?.to_string();
                ctx.vhost.unbind(
                    &name,
                    u.exchange.as_str(),
                    u.routing_key.as_str(),
                    &u.arguments,
                    ctx.conn_id,
                )?;
                Some(Q::UnbindOk(queue::UnbindOk {}))
            }
            Q::Purge(p) => {
                let name = self.queue_name(&p.queue)?.to_string();
                let n = ctx.vhost.queue_for(&name, ctx.conn_id)?.purge();
                (!p.nowait).then_some(Q::PurgeOk(queue::PurgeOk {
                    message_count: n as u32,
                }))
            }
            Q::Delete(d) => {
                let name = self.queue_name(&d.queue)?.to_string();
                let n = ctx
                    .vhost
                    .delete_queue(&name, ctx.conn_id, d.if_unused, d.if_empty)?;
                ctx.exclusive_queues.retain(|q| q.name.as_str() != name);
                (!d.nowait).then_some(Q::DeleteOk(queue::DeleteOk {
                    message_count: n as u32,
                }))
            }
            _ => {
                return Err(AmqpError::command_invalid(
                    "queue method not valid from a client",
                ));
            }
        };
        if let Some(r) = reply {
            ctx.out.method(self.id, AMQPClass::Queue(r));
        }
        Ok(())
    }
}
