//! The queue class: Queue.Declare, Bind, Unbind, Purge and Delete. An
//! empty queue name means the queue this channel declared last.

use super::{Channel, Ctx};
use crate::access::permission::Kind;
use crate::access::rules;
use crate::broker::vhost::QueueSpec;
use crate::error::AmqpResult;
use amq_protocol::protocol::{AMQPClass, queue};
use std::sync::Arc;

impl Channel {
    fn queue_reply(&self, ctx: &mut Ctx, nowait: bool, m: queue::AMQPMethod) {
        if !nowait {
            ctx.out.method(self.id, AMQPClass::Queue(m));
        }
    }

    pub(super) fn queue_declare(&mut self, ctx: &mut Ctx, d: queue::Declare) -> AmqpResult<()> {
        let server_named = !d.passive && d.queue.as_str().is_empty();
        let name = if d.passive && d.queue.as_str().is_empty() {
            self.queue_name(&d.queue)?.to_string()
        } else if server_named {
            crate::broker::names::queue_name()
        } else {
            d.queue.to_string()
        };
        rules::may_declare_queue(ctx.grant, ctx.vhost, &name, d.passive, &d.arguments)?;
        let (q, messages, consumers) = ctx.vhost.declare_queue(&QueueSpec {
            name: &name,
            server_named,
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
        let ok = queue::DeclareOk {
            queue: q.name.clone(),
            message_count: messages as u32,
            consumer_count: consumers as u32,
        };
        self.queue_reply(ctx, d.nowait, queue::AMQPMethod::DeclareOk(ok));
        Ok(())
    }

    pub(super) fn queue_bind(&mut self, ctx: &mut Ctx, b: queue::Bind) -> AmqpResult<()> {
        let name = self.queue_name(&b.queue)?.to_string();
        rules::may_bind(
            ctx.grant,
            ctx.vhost,
            Kind::Queue,
            &name,
            b.exchange.as_str(),
            b.routing_key.as_str(),
        )?;
        ctx.vhost.bind(
            &name,
            b.exchange.as_str(),
            b.routing_key.as_str(),
            &b.arguments,
            ctx.conn_id,
        )?;
        self.queue_reply(ctx, b.nowait, queue::AMQPMethod::BindOk(queue::BindOk {}));
        Ok(())
    }

    /// Queue.Unbind has no nowait flag: Unbind-Ok always goes back.
    pub(super) fn queue_unbind(&mut self, ctx: &mut Ctx, u: queue::Unbind) -> AmqpResult<()> {
        let name = self.queue_name(&u.queue)?.to_string();
        rules::may_bind(
            ctx.grant,
            ctx.vhost,
            Kind::Queue,
            &name,
            u.exchange.as_str(),
            u.routing_key.as_str(),
        )?;
        ctx.vhost.unbind(
            &name,
            u.exchange.as_str(),
            u.routing_key.as_str(),
            &u.arguments,
            ctx.conn_id,
        )?;
        self.queue_reply(ctx, false, queue::AMQPMethod::UnbindOk(queue::UnbindOk {}));
        Ok(())
    }

    pub(super) fn queue_purge(&mut self, ctx: &mut Ctx, p: queue::Purge) -> AmqpResult<()> {
        let name = self.queue_name(&p.queue)?.to_string();
        rules::may_read_queue(ctx.grant, &name)?;
        let n = ctx.vhost.queue_for(&name, ctx.conn_id)?.purge();
        let ok = queue::PurgeOk {
            message_count: n as u32,
        };
        self.queue_reply(ctx, p.nowait, queue::AMQPMethod::PurgeOk(ok));
        Ok(())
    }

    pub(super) fn queue_delete(&mut self, ctx: &mut Ctx, d: queue::Delete) -> AmqpResult<()> {
        let name = self.queue_name(&d.queue)?.to_string();
        rules::may_delete_queue(ctx.grant, &name)?;
        let n = ctx
            .vhost
            .delete_queue(&name, ctx.conn_id, d.if_unused, d.if_empty)?;
        ctx.exclusive_queues.retain(|q| q.name.as_str() != name);
        let ok = queue::DeleteOk {
            message_count: n as u32,
        };
        self.queue_reply(ctx, d.nowait, queue::AMQPMethod::DeleteOk(ok));
        Ok(())
    }
}
