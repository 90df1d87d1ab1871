//! One AMQP channel: its state and the dispatch of methods to the handlers
//! for each class. Handlers are synchronous: they write replies into the
//! connection's outbox and return `AmqpError`s for the connection task to
//! turn into Channel.Close or Connection.Close.

mod acks;
mod consume;
mod declare;
pub mod deliver;
mod publish;
mod tx;

use crate::broker::Vhost;
use crate::codec::{ContentHeader, Outbox};
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::Routed;
use crate::queue::Queue;
use crate::queue::consumer::{ConsumerHandle, Credit, Sink};
use amq_protocol::protocol::{AMQPClass, access, basic, channel, confirm};
use amq_protocol::types::ShortString;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

pub use acks::Unacked;

/// What a channel handler may use of its connection.
pub struct Ctx<'a> {
    pub out: &'a mut Outbox,
    pub vhost: &'a Arc<Vhost>,
    pub conn_id: u64,
    pub sink: &'a Sink,
    pub frame_max: u32,
    pub max_message_size: u64,
    pub cancel_notify: bool,
    /// The highest store ticket known to be on disk.
    pub durable: u64,
    /// The broker's consumer acknowledgement timeout, ms (None: off).
    pub consumer_timeout: Option<u64>,
    /// Exclusive queues this connection declared, deleted when it closes.
    pub exclusive_queues: &'a mut Vec<Arc<Queue>>,
    /// The authenticated user, which a message's user_id must name.
    pub user: &'a str,
}

/// What became of the channel after a method.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Open,
    /// The client closed the channel and Close-Ok was sent.
    Closed,
}

struct Consumer {
    handle: Arc<ConsumerHandle>,
    queue: Arc<Queue>,
}

pub struct Channel {
    pub id: u16,
    consumers: HashMap<ShortString, Consumer>,
    unacked: acks::UnackedList,
    next_delivery_tag: u64,
    /// basic.qos global=false: the prefetch given to consumers created later.
    consumer_prefetch: u16,
    /// basic.qos global=true: one limit shared by the channel's consumers.
    channel_credit: Arc<Credit>,
    publishing: Option<publish::Assembly>,
    confirm: Option<publish::Confirms>,
    tx: Option<tx::Tx>,
    /// The queue named by the last Queue.Declare, for methods with an empty queue name.
    last_queue: Option<ShortString>,
    /// The hidden queue of this channel's direct reply-to consumer.
    reply_queue: Option<Arc<Queue>>,
    /// Scratch for routing results, reused across publishes.
    routed: Routed,
}

impl Channel {
    pub fn new(id: u16) -> Self {
        Channel {
            id,
            consumers: HashMap::new(),
            unacked: acks::UnackedList::default(),
            next_delivery_tag: 1,
            consumer_prefetch: 0,
            channel_credit: Arc::new(Credit::new(0)),
            publishing: None,
            confirm: None,
            tx: None,
            last_queue: None,
            routed: Routed::default(),
            reply_queue: None,
        }
    }

    pub fn handle_method(&mut self, ctx: &mut Ctx, m: AMQPClass) -> AmqpResult<After> {
        let (class_id, method_id) = (m.get_amqp_class_id(), m.get_amqp_method_id());
        if self.publishing.is_some() {
            return Err(publish::method_during_content(self.publishing.as_ref()).on_method(60, 40));
        }
        self.dispatch(ctx, m)
            .map_err(|e| e.on_method(class_id, method_id))
    }

    fn dispatch(&mut self, ctx: &mut Ctx, m: AMQPClass) -> AmqpResult<After> {
        match m {
            AMQPClass::Basic(b) => self.basic(ctx, b)?,
            AMQPClass::Queue(q) => self.queue_method(ctx, q)?,
            AMQPClass::Exchange(x) => self.exchange_method(ctx, x)?,
            AMQPClass::Channel(c) => return self.channel_method(ctx, c),
            AMQPClass::Confirm(confirm::AMQPMethod::Select(s)) => {
                if self.tx.is_some() {
                    return Err(AmqpError::precondition_failed(
                        "cannot switch from tx to confirm mode",
                    ));
                }
                self.confirm.get_or_insert_with(publish::Confirms::default);
                if !s.nowait {
                    ctx.out.method(
                        self.id,
                        AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
                    );
                }
            }
            AMQPClass::Access(access::AMQPMethod::Request(_)) => ctx.out.method(
                self.id,
                AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})),
            ),
            AMQPClass::Tx(t) => self.tx_method(ctx, t)?,
            AMQPClass::Connection(_) => {
                return Err(AmqpError::command_invalid(
                    "connection method on a non-zero channel",
                ));
            }
            other => {
                return Err(AmqpError::command_invalid(format!(
                    "method {}.{} is not valid from a client",
                    other.get_amqp_class_id(),
                    other.get_amqp_method_id()
                )));
            }
        }
        Ok(After::Open)
    }

    fn channel_method(&mut self, ctx: &mut Ctx, m: channel::AMQPMethod) -> AmqpResult<After> {
        match m {
            channel::AMQPMethod::Open(_) => {
                Err(AmqpError::channel_error("second 'channel.open' seen"))
            }
            channel::AMQPMethod::Flow(f) => {
                if !f.active {
                    return Err(AmqpError::not_implemented("active=false"));
                }
                ctx.out.method(
                    self.id,
                    AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk {
                        active: true,
                    })),
                );
                Ok(After::Open)
            }
            channel::AMQPMethod::Close(_) => {
                self.release(ctx);
                ctx.out.method(
                    self.id,
                    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                );
                Ok(After::Closed)
            }
            channel::AMQPMethod::CloseOk(_) | channel::AMQPMethod::FlowOk(_) => Ok(After::Open),
            channel::AMQPMethod::OpenOk(_) => Err(AmqpError::command_invalid(
                "channel.open_ok is not valid from a client",
            )),
        }
    }

    fn basic(&mut self, ctx: &mut Ctx, m: basic::AMQPMethod) -> AmqpResult<()> {
        use basic::AMQPMethod as B;
        match m {
            B::Publish(p) => self.publish_method(ctx, p),
            B::Ack(a) => self.ack(ctx, a.delivery_tag, a.multiple),
            B::Nack(n) => self.nack(ctx, n.delivery_tag, n.multiple, n.requeue),
            B::Reject(r) => self.nack(ctx, r.delivery_tag, false, r.requeue),
            B::Qos(q) => self.qos(ctx, q),
            B::Consume(c) => self.consume(ctx, c),
            B::Cancel(c) => self.cancel(ctx, c),
            B::Get(g) => self.get(ctx, g),
            B::Recover(r) => {
                self.recover(ctx, r.requeue)?;
                ctx.out
                    .method(self.id, AMQPClass::Basic(B::RecoverOk(basic::RecoverOk {})));
                Ok(())
            }
            B::RecoverAsync(r) => self.recover(ctx, r.requeue),
            other => Err(AmqpError::command_invalid(format!(
                "basic method {} is not valid from a client",
                AMQPClass::Basic(other).get_amqp_method_id()
            ))),
        }
    }

    pub fn handle_header(&mut self, ctx: &mut Ctx, h: ContentHeader) -> AmqpResult<()> {
        self.content_header(ctx, h)
    }

    pub fn handle_body(&mut self, ctx: &mut Ctx, b: Bytes) -> AmqpResult<()> {
        self.content_body(ctx, b)
    }

    /// The queue an empty queue name stands for (RabbitMQ's shortcut).
    fn queue_name<'a>(&'a self, name: &'a ShortString) -> AmqpResult<&'a str> {
        if !name.as_str().is_empty() {
            return Ok(name.as_str());
        }
        self.last_queue
            .as_ref()
            .map(|q| q.as_str())
            .ok_or_else(|| AmqpError::not_found("no previously declared queue"))
    }

    /// Give back everything the channel holds: cancel its consumers and
    /// requeue its unacknowledged messages. Used on close, error and disconnect.
    pub fn release(&mut self, ctx: &mut Ctx) {
        for (_, c) in self.consumers.drain() {
            if c.queue.remove_consumer(&c.handle) {
                ctx.vhost.remove_queue(&c.queue);
            }
        }
        if let Some(t) = self.tx.take() {
            for (taken, _) in t.into_settled() {
                self.unacked.restore(taken);
            }
        }
        let all = self.unacked.take_all();
        acks::requeue(ctx.vhost, all);
        self.publishing = None;
        self.reply_queue = None;
    }

    /// When the earliest unacknowledged delivery under a timeout runs out, ms.
    pub fn ack_deadline(&self) -> Option<u64> {
        self.unacked.next_deadline()
    }

    /// The error that closes this channel if a delivery has stayed
    /// unacknowledged past its timeout by `now`, in RabbitMQ's words.
    pub fn ack_timed_out(&self, now: u64) -> Option<AmqpError> {
        let timeout = self.unacked.timed_out(now)?;
        Some(AmqpError::precondition_failed(format!(
            "delivery acknowledgement on channel {} timed out. Timeout value used: {timeout} ms. This timeout value can be configured, see consumers doc guide to learn more",
            self.id
        )))
    }

    /// Ask every queue this channel consumes from to dispatch again.
    pub fn resume(&self) {
        for c in self.consumers.values() {
            c.queue.dispatch();
        }
    }
}
