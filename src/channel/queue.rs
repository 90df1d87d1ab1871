//! The queue class: Queue.Declare, Bind, Unbind, Purge and Delete. An
//! empty queue name means the queue this channel declared last.

use super::{Channel, Ctx};
use crate::access::permission::Kind;
use crate::access::rules;
use crate::broker::changes::Change;
use crate::broker::topology::QueueBinding;
use crate::broker::vhost::{Conn, QueueDecl, QueueSpec};
use crate::error::AmqpResult;
use crate::queue::Queue;
use amq_protocol::protocol::{AMQPClass, queue};
use amq_protocol::types::FieldTable;
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
        let spec = QueueSpec {
            name: &name,
            server_named,
            passive: d.passive,
            durable: d.durable,
            exclusive: d.exclusive,
            auto_delete: d.auto_delete,
            arguments: &d.arguments,
            conn_id: ctx.conn_id,
        };
        // A new queue of a cluster: made on every node, homed here.
        if ctx.replicates_topology() && !d.passive && ctx.vhost.queue(&name).is_err() {
            ctx.vhost.check_queue_declare(&spec)?;
            let queue = QueueDecl {
                name: name.clone(),
                durable: d.durable,
                exclusive: d.exclusive,
                auto_delete: d.auto_delete,
                arguments: d.arguments.clone(),
                home: ctx.broker.node_name().to_string(),
                incarnation: crate::broker::names::random_u64(),
                conn: Some(Conn {
                    node: ctx.broker.node_name().to_string(),
                    id: ctx.conn_id,
                }),
                replaces: ctx.vhost.replaced(&name),
                replicas: ctx
                    .broker
                    .quorum_replicas(&d.arguments, ctx.broker.node_name()),
            };
            let change = Change::DeclareQueue {
                vhost: ctx.vhost.name.clone(),
                queue,
            };
            let what = format!("declare queue '{name}'");
            ctx.await_change(change, what, move |ch, ctx, _| {
                let q = ctx.vhost.queue(&name)?;
                ch.declared(ctx, &q, 0, 0, d.nowait);
                Ok(())
            });
            return Ok(());
        }
        let (q, messages, consumers) = ctx.vhost.declare_queue(&spec)?;
        if q.elsewhere().is_some() {
            // Its counts are its home's.
            let counts = ctx.vhost.counts_at_home(&q);
            let wait = async move { counts.await.map_err(Into::into) };
            let what = format!("declare queue '{name}'");
            ctx.await_value(wait, what, move |ch, ctx, (m, c)| {
                ch.declared(ctx, &q, m as usize, c as usize, d.nowait);
                Ok(())
            });
            return Ok(());
        }
        self.declared(ctx, &q, messages, consumers, d.nowait);
        Ok(())
    }

    /// Queue.Declare-Ok, and the queue remembered: the channel's last, and
    /// the connection's if exclusive to it.
    fn declared(
        &mut self,
        ctx: &mut Ctx,
        q: &Arc<Queue>,
        messages: usize,
        consumers: usize,
        nowait: bool,
    ) {
        if q.exclusive_owner == Some(ctx.conn_id)
            && !ctx.exclusive_queues.iter().any(|x| Arc::ptr_eq(x, q))
        {
            ctx.exclusive_queues.push(q.clone());
        }
        self.last_queue = Some(q.name.clone());
        let ok = queue::DeclareOk {
            queue: q.name.clone(),
            message_count: messages as u32,
            consumer_count: consumers as u32,
        };
        self.queue_reply(ctx, nowait, queue::AMQPMethod::DeclareOk(ok));
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
        if ctx.replicates_topology() {
            ctx.vhost.check_bind(
                &name,
                b.exchange.as_str(),
                b.routing_key.as_str(),
                &b.arguments,
                ctx.conn_id,
            )?;
            let binding = queue_binding(
                ctx,
                &name,
                b.exchange.as_str(),
                b.routing_key.as_str(),
                &b.arguments,
            );
            replicate_queue_binding(ctx, binding, true, b.nowait);
            return Ok(());
        }
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
        if ctx.replicates_topology() {
            if let Ok(q) = ctx.vhost.queue(&name) {
                ctx.vhost.check_exclusive(&q, ctx.conn_id)?;
            }
            let binding = queue_binding(
                ctx,
                &name,
                u.exchange.as_str(),
                u.routing_key.as_str(),
                &u.arguments,
            );
            // Queue.Unbind has no nowait flag.
            replicate_queue_binding(ctx, binding, false, false);
            return Ok(());
        }
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
        let q = ctx.vhost.queue_for(&name, ctx.conn_id)?;
        if q.elsewhere().is_some() {
            let purged = ctx.vhost.purge_at_home(&q);
            let wait = async move { purged.await.map_err(Into::into) };
            let what = format!("purge queue '{name}'");
            ctx.await_value(wait, what, move |ch, ctx, n| {
                let ok = queue::PurgeOk { message_count: n };
                ch.queue_reply(ctx, p.nowait, queue::AMQPMethod::PurgeOk(ok));
                Ok(())
            });
            return Ok(());
        }
        let n = q.purge();
        let ok = queue::PurgeOk {
            message_count: n as u32,
        };
        self.queue_reply(ctx, p.nowait, queue::AMQPMethod::PurgeOk(ok));
        Ok(())
    }

    pub(super) fn queue_delete(&mut self, ctx: &mut Ctx, d: queue::Delete) -> AmqpResult<()> {
        let name = self.queue_name(&d.queue)?.to_string();
        rules::may_delete_queue(ctx.grant, &name)?;
        if ctx.replicates_topology() {
            // Checked here, where its messages and consumers are; then
            // deleted everywhere.
            let Ok(q) = ctx.vhost.queue(&name) else {
                let ok = queue::DeleteOk { message_count: 0 };
                self.queue_reply(ctx, d.nowait, queue::AMQPMethod::DeleteOk(ok));
                return Ok(());
            };
            let n = ctx
                .vhost
                .check_delete(&q, ctx.conn_id, d.if_unused, d.if_empty)?;
            if q.elsewhere().is_some() && (d.if_unused || d.if_empty) {
                // Unused and empty are for its home to say.
                let deleted = ctx.vhost.delete_at_home(&q, d.if_unused, d.if_empty);
                let what = format!("delete queue '{name}'");
                ctx.await_value(deleted, what, move |ch, ctx, n| {
                    ctx.exclusive_queues.retain(|q| q.name.as_str() != name);
                    let ok = queue::DeleteOk { message_count: n };
                    ch.queue_reply(ctx, d.nowait, queue::AMQPMethod::DeleteOk(ok));
                    Ok(())
                });
                return Ok(());
            }
            let change = Change::DeleteQueue {
                vhost: ctx.vhost.name.clone(),
                name: name.clone(),
                incarnation: q.incarnation(),
            };
            let what = format!("delete queue '{name}'");
            ctx.await_change(change, what, move |ch, ctx, _| {
                ctx.exclusive_queues.retain(|q| q.name.as_str() != name);
                let ok = queue::DeleteOk {
                    message_count: n as u32,
                };
                ch.queue_reply(ctx, d.nowait, queue::AMQPMethod::DeleteOk(ok));
                Ok(())
            });
            return Ok(());
        }
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

/// A queue binding as the log carries it, made by this connection.
fn queue_binding(
    ctx: &Ctx,
    queue: &str,
    exchange: &str,
    key: &str,
    args: &FieldTable,
) -> QueueBinding {
    QueueBinding {
        queue: queue.to_string(),
        exchange: exchange.to_string(),
        routing_key: key.to_string(),
        arguments: args.clone(),
        conn: Some(Conn {
            node: ctx.broker.node_name().to_string(),
            id: ctx.conn_id,
        }),
    }
}

/// Queue.Bind (`bind`) or Queue.Unbind through the cluster's log.
fn replicate_queue_binding(ctx: &mut Ctx, binding: QueueBinding, bind: bool, nowait: bool) {
    let what = match bind {
        true => format!(
            "bind queue '{}' to exchange '{}'",
            binding.queue, binding.exchange
        ),
        false => format!(
            "unbind queue '{}' from exchange '{}'",
            binding.queue, binding.exchange
        ),
    };
    let vhost = ctx.vhost.name.clone();
    let change = match bind {
        true => Change::BindQueue { vhost, binding },
        false => Change::UnbindQueue { vhost, binding },
    };
    ctx.await_change(change, what, move |ch, ctx, _| {
        let ok = match bind {
            true => queue::AMQPMethod::BindOk(queue::BindOk {}),
            false => queue::AMQPMethod::UnbindOk(queue::UnbindOk {}),
        };
        ch.queue_reply(ctx, nowait, ok);
        Ok(())
    });
}
