//! Basic.Qos, Consume, Cancel and Get, and turning a queue's delivery into
//! frames with a delivery tag.

use super::acks::Unacked;
use super::{Channel, Consumer, Ctx, deliver};
use crate::access::permission::{Kind, Perm};
use crate::broker::names;
use crate::broker::vhost::REPLY_TO;
use crate::error::{AmqpError, AmqpResult};
use crate::queue::ConsumeRefused;
use crate::queue::consumer::{ConsumerHandle, Credit, Delivery};
use amq_protocol::protocol::{AMQPClass, basic};
use std::sync::Arc;

impl Channel {
    pub(super) fn basic_qos(&mut self, ctx: &mut Ctx, q: basic::Qos) -> AmqpResult<()> {
        if q.global {
            self.channel_credit.set_limit(q.prefetch_count);
            self.resume();
        } else {
            self.consumer_prefetch = q.prefetch_count;
            self.stats.prefetch.store(
                q.prefetch_count as u32,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        ctx.out.method(
            self.id,
            AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})),
        );
        Ok(())
    }

    pub(super) fn basic_consume(&mut self, ctx: &mut Ctx, c: basic::Consume) -> AmqpResult<()> {
        let name = self.queue_name(&c.queue)?.to_string();
        let queue = if name == REPLY_TO {
            if !c.no_ack {
                return Err(AmqpError::precondition_failed(
                    "reply consumer cannot acknowledge",
                ));
            }
            if self.reply_queue.is_some() {
                return Err(AmqpError::precondition_failed("reply consumer already set"));
            }
            let q = ctx.vhost.reply_queue();
            ctx.exclusive_queues.push(q.clone());
            self.reply_queue = Some(q.clone());
            q
        } else {
            ctx.grant
                .check_resource_access(Kind::Queue, &name, Perm::Read)?;
            ctx.vhost.queue_for(&name, ctx.conn_id)?
        };
        let tag = if c.consumer_tag.as_str().is_empty() {
            names::consumer_tag().into()
        } else if self.consumers.contains_key(&c.consumer_tag) {
            return Err(AmqpError::not_allowed(format!(
                "attempt to reuse consumer tag '{}'",
                c.consumer_tag
            )));
        } else {
            c.consumer_tag
        };
        let handle = Arc::new(ConsumerHandle {
            tag: tag.clone(),
            connection: ctx.conn_id,
            channel: self.id,
            no_ack: c.no_ack,
            exclusive: c.exclusive,
            priority: consumer_priority(&c.arguments),
            arguments: c.arguments.clone(),
            credit: Arc::new(Credit::new(self.consumer_prefetch)),
            channel_credit: self.channel_credit.clone(),
            sink: ctx.sink.clone(),
            cancelled: Default::default(),
        });
        if let Some(home) = queue.home_link() {
            // Attached at the queue's home; its deliveries wait in the
            // inbox until Consume-Ok is out.
            let attached = home.consume(&queue, handle.clone());
            let wait = async move { attached.await.map(|()| true).map_err(Into::into) };
            let what = format!("consume from queue '{name}'");
            ctx.await_outcome(wait, what, move |ch, ctx, _| {
                ch.consumer_added(ctx, tag, handle, queue, c.nowait);
                Ok(())
            });
            return Ok(());
        }
        // Deliveries reach the outbox only after this method is handled, so
        // Consume-Ok (written below) still precedes the first Deliver.
        match queue.add_consumer(handle.clone()) {
            Ok(()) => {}
            Err(ConsumeRefused::InExclusiveUse) => {
                return Err(AmqpError::access_refused(format!(
                    "queue '{name}' in vhost '{}' in exclusive use",
                    ctx.vhost.name
                )));
            }
            Err(ConsumeRefused::Deleted) => {
                return Err(AmqpError::not_found(format!(
                    "no queue '{name}' in vhost '{}'",
                    ctx.vhost.name
                )));
            }
        }
        self.consumer_added(ctx, tag, handle, queue, c.nowait);
        Ok(())
    }

    /// Consume-Ok, and the consumer remembered.
    fn consumer_added(
        &mut self,
        ctx: &mut Ctx,
        tag: amq_protocol::types::ShortString,
        handle: Arc<ConsumerHandle>,
        queue: Arc<crate::queue::Queue>,
        nowait: bool,
    ) {
        if !nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                    consumer_tag: tag.clone(),
                })),
            );
        }
        self.consumers.insert(tag, Consumer { handle, queue });
        self.show_consumers();
    }

    pub(super) fn basic_cancel(&mut self, ctx: &mut Ctx, c: basic::Cancel) -> AmqpResult<()> {
        let removed = self.consumers.remove(&c.consumer_tag);
        self.show_consumers();
        if let Some(cons) = removed {
            cons.handle.cancel();
            if self
                .reply_queue
                .as_ref()
                .is_some_and(|r| Arc::ptr_eq(r, &cons.queue))
            {
                self.reply_queue = None;
            }
            if cons.queue.remove_consumer(&cons.handle) {
                ctx.vhost.queue_lost(&cons.queue);
            }
        }
        if !c.nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
                    consumer_tag: c.consumer_tag,
                })),
            );
        }
        Ok(())
    }

    pub(super) fn basic_get(&mut self, ctx: &mut Ctx, g: basic::Get) -> AmqpResult<()> {
        let name = self.queue_name(&g.queue)?.to_string();
        crate::access::rules::may_read_queue(ctx.grant, &name)?;
        let queue = ctx.vhost.queue_for(&name, ctx.conn_id)?;
        if let Some(home) = queue.home_link() {
            // Got at its home, which keeps it checked out until settled here.
            let got = home.get(&queue, g.no_ack);
            let wait = async move { got.await.map_err(Into::into) };
            let what = format!("get from queue '{name}'");
            ctx.await_value(wait, what, move |ch, ctx, got| {
                ch.got(ctx, queue, got, g.no_ack);
                Ok(())
            });
            return Ok(());
        }
        let got = queue.get(g.no_ack);
        self.got(ctx, queue, got, g.no_ack);
        Ok(())
    }

    /// Basic.Get-Ok with the message got, or Get-Empty.
    fn got(
        &mut self,
        ctx: &mut Ctx,
        queue: Arc<crate::queue::Queue>,
        got: Option<(crate::queue::ready::Entry, usize)>,
        no_ack: bool,
    ) {
        let Some((entry, remaining)) = got else {
            ctx.out.method(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
            );
            return;
        };
        let tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        let msg = entry.msg.clone();
        ctx.out.method(
            self.id,
            AMQPClass::Basic(basic::AMQPMethod::GetOk(basic::GetOk {
                delivery_tag: tag,
                redelivered: entry.redelivered,
                exchange: msg.exchange.clone(),
                routing_key: msg.routing_key.clone(),
                message_count: remaining as u32,
            })),
        );
        ctx.out
            .content(self.id, &msg.header_raw, &msg.body, ctx.frame_max);
        if !no_ack {
            let timeout = queue
                .args()
                .consumer_timeout
                .or(ctx.consumer_timeout)
                .unwrap_or(0);
            self.unacked.push(Unacked {
                tag,
                queue,
                seq: entry.seq,
                consumer: None,
                timeout,
                deadline: deadline(timeout),
            });
        }
    }

    /// Write a delivery from a queue, or hand it back if its consumer is no
    /// longer here (cancelled or its channel closed while it was in flight).
    pub fn deliver(&mut self, ctx: &mut Ctx, d: Delivery) -> Result<(), Delivery> {
        if d.consumer.is_cancelled() {
            return Err(d);
        }
        let tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        let msg = &d.entry.msg;
        deliver::basic_deliver(
            ctx.out,
            self.id,
            d.consumer.tag.as_str(),
            tag,
            d.entry.redelivered,
            msg.exchange.as_str(),
            msg.routing_key.as_str(),
        );
        ctx.out
            .content(self.id, &msg.header_raw, &msg.body, ctx.frame_max);
        if !d.consumer.no_ack {
            let timeout = d.ack_timeout.or(ctx.consumer_timeout).unwrap_or(0);
            self.unacked.push(Unacked {
                tag,
                queue: d.queue,
                seq: d.entry.seq,
                consumer: Some(d.consumer),
                timeout,
                deadline: deadline(timeout),
            });
        }
        Ok(())
    }

    /// The queue under a consumer was deleted: forget the consumer and, if the
    /// client understands it, tell it with a Basic.Cancel of our own.
    pub fn consumer_cancelled(&mut self, ctx: &mut Ctx, handle: &Arc<ConsumerHandle>) {
        let ours = self
            .consumers
            .get(&handle.tag)
            .is_some_and(|c| Arc::ptr_eq(&c.handle, handle));
        if !ours {
            return;
        }
        self.consumers.remove(&handle.tag);
        self.show_consumers();
        handle.cancel();
        if ctx.cancel_notify {
            ctx.out.method(
                self.id,
                AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
                    consumer_tag: handle.tag.clone(),
                    nowait: true,
                })),
            );
        }
    }
}

/// x-priority from Basic.Consume's arguments (0 when absent).
fn consumer_priority(args: &amq_protocol::types::FieldTable) -> i32 {
    args.inner()
        .get("x-priority")
        .and_then(crate::field::int)
        .map_or(0, |p| p.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
}

fn deadline(timeout: u64) -> u64 {
    if timeout == 0 {
        0
    } else {
        crate::clock::system_now_ms().saturating_add(timeout)
    }
}
