//! One AMQP channel: its state and the dispatch of methods to the handlers
//! for each class. Handlers are synchronous: they write replies into the
//! connection's outbox and return `AmqpError`s for the connection task to
//! turn into Channel.Close or Connection.Close.

mod acks;
mod confirms;
mod consume;
pub mod deliver;
mod exchange;
pub(crate) mod pending;
mod publish;
mod queue;
mod tx;

use crate::broker::Vhost;
use crate::broker::connections::ChannelStats;
use crate::codec::{ContentHeader, Outbox};
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::Routed;
use crate::queue::Queue;
use crate::queue::consumer::{ConsumerHandle, Credit};
use crate::queue::inbox::Sink;
use amq_protocol::protocol::{AMQPClass, access, basic, channel, confirm};
use amq_protocol::types::ShortString;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

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
    /// The authenticated user in this vhost: every operation is checked
    /// against its permissions, and a message's user_id must name it.
    pub grant: &'a crate::access::check::Grant,
    pub(crate) broker: &'a Arc<crate::broker::Broker>,
    /// A method waiting on the cluster (see `pending`): set by its handler.
    pub(crate) pending: &'a mut Option<pending::Pending>,
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
    confirm: Option<confirms::Confirms>,
    /// Publishes its quorum queues' groups (or other nodes) have not
    /// answered yet, and the task that waits for their answers in order.
    commits: confirms::Inflight,
    committer: Option<confirms::Committer>,
    tx: Option<tx::Tx>,
    /// The queue named by the last Queue.Declare, for methods with an empty queue name.
    last_queue: Option<ShortString>,
    /// The hidden queue of this channel's direct reply-to consumer.
    reply_queue: Option<Arc<Queue>>,
    /// Scratch for routing results, reused across publishes.
    routed: Routed,
    /// The exchange this channel last published to: most publishers use
    /// one, and this spares a registry lookup per message.
    last_exchange: Option<Arc<crate::exchange::Exchange>>,
    /// Messages published to it and their deliveries to queues, not yet
    /// added to its counters (see `flush_exchange_counts`).
    exchange_counts: (u64, u64),
    /// The permissions checked for it.
    publish_grant: publish::PublishGrant,
    /// What the management API shows of it.
    stats: Arc<ChannelStats>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.flush_exchange_counts();
    }
}

impl Channel {
    pub fn new(id: u16) -> Self {
        let unacked = acks::UnackedList::default();
        let channel_credit = Arc::new(Credit::new(0));
        let stats = Arc::new(ChannelStats {
            number: id,
            unacked: unacked.shown_len(),
            consumers: Default::default(),
            prefetch: Default::default(),
            global: channel_credit.clone(),
            confirm: Default::default(),
            transactional: Default::default(),
            publish: Default::default(),
        });
        Channel {
            id,
            consumers: HashMap::new(),
            unacked,
            stats,
            next_delivery_tag: 1,
            consumer_prefetch: 0,
            channel_credit,
            publishing: None,
            confirm: None,
            commits: Default::default(),
            committer: None,
            tx: None,
            last_queue: None,
            routed: Routed::default(),
            last_exchange: None,
            exchange_counts: (0, 0),
            publish_grant: Default::default(),
            reply_queue: None,
        }
    }

    pub(crate) fn stats(&self) -> Arc<ChannelStats> {
        self.stats.clone()
    }

    /// Its consumer count changed.
    fn show_consumers(&self) {
        self.stats.consumers.store(
            self.consumers.len() as u32,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    pub fn handle_method(&mut self, ctx: &mut Ctx, m: AMQPClass) -> AmqpResult<After> {
        let (class_id, method_id) = (m.get_amqp_class_id(), m.get_amqp_method_id());
        if self.publishing.is_some() {
            return Err(publish::method_during_content(self.publishing.as_ref()).on_method(60, 40));
        }
        if self.commits.busy() && confirms::waits_for_commits(&m) {
            // What it does must see the channel's publishes, as on a node
            // alone: it waits until their groups have taken them.
            let idle = self.commits.idle();
            let what = "wait for the channel's publishes to be committed".to_string();
            ctx.await_outcome(
                async move {
                    idle.await;
                    Ok(true)
                },
                what,
                move |ch, ctx, _| ch.handle_method(ctx, m).map(|_| ()),
            );
            if let Some(p) = ctx.pending.as_mut() {
                (p.channel, p.class_id, p.method_id) = (self.id, class_id, method_id);
            }
            return Ok(After::Open);
        }
        let r = self
            .dispatch(ctx, m)
            .map_err(|e| e.on_method(class_id, method_id));
        if let Some(p) = ctx.pending.as_mut() {
            (p.channel, p.class_id, p.method_id) = (self.id, class_id, method_id);
        }
        r
    }

    /// Every method a client may send on a channel, to the function named
    /// after it (`queue.purge` → `queue_purge`), in the spec's class order.
    fn dispatch(&mut self, ctx: &mut Ctx, m: AMQPClass) -> AmqpResult<After> {
        use AMQPClass as C;
        use amq_protocol::protocol::tx::AMQPMethod as T;
        use amq_protocol::protocol::{exchange::AMQPMethod as X, queue::AMQPMethod as Q};
        use basic::AMQPMethod as B;
        use channel::AMQPMethod as Ch;
        match m {
            C::Channel(Ch::Open(_)) => self.channel_open(),
            C::Channel(Ch::Flow(f)) => self.channel_flow(ctx, f),
            C::Channel(Ch::Close(_)) => return Ok(self.channel_close(ctx)),
            C::Channel(Ch::CloseOk(_) | Ch::FlowOk(_)) => Ok(()),
            C::Access(access::AMQPMethod::Request(_)) => self.access_request(ctx),
            C::Exchange(X::Declare(d)) => self.exchange_declare(ctx, d),
            C::Exchange(X::Delete(d)) => self.exchange_delete(ctx, d),
            C::Exchange(X::Bind(b)) => self.exchange_bind(ctx, b),
            C::Exchange(X::Unbind(u)) => self.exchange_unbind(ctx, u),
            C::Queue(Q::Declare(d)) => self.queue_declare(ctx, d),
            C::Queue(Q::Bind(b)) => self.queue_bind(ctx, b),
            C::Queue(Q::Unbind(u)) => self.queue_unbind(ctx, u),
            C::Queue(Q::Purge(p)) => self.queue_purge(ctx, p),
            C::Queue(Q::Delete(d)) => self.queue_delete(ctx, d),
            C::Basic(B::Qos(q)) => self.basic_qos(ctx, q),
            C::Basic(B::Consume(c)) => self.basic_consume(ctx, c),
            C::Basic(B::Cancel(c)) => self.basic_cancel(ctx, c),
            C::Basic(B::Publish(p)) => self.basic_publish(ctx, p),
            C::Basic(B::Get(g)) => self.basic_get(ctx, g),
            C::Basic(B::Ack(a)) => self.basic_ack(ctx, a),
            C::Basic(B::Reject(r)) => self.basic_reject(ctx, r),
            C::Basic(B::Nack(n)) => self.basic_nack(ctx, n),
            C::Basic(B::Recover(r)) => self.basic_recover(ctx, r),
            C::Basic(B::RecoverAsync(r)) => self.basic_recover_async(ctx, r),
            C::Confirm(confirm::AMQPMethod::Select(s)) => self.confirm_select(ctx, s),
            C::Tx(T::Select(_)) => self.tx_select(ctx),
            C::Tx(T::Commit(_)) => self.tx_commit(ctx),
            C::Tx(T::Rollback(_)) => self.tx_rollback(ctx),
            C::Connection(_) => Err(AmqpError::command_invalid(
                "connection method on a non-zero channel",
            )),
            other => Err(AmqpError::command_invalid(format!(
                "method {}.{} is not valid from a client",
                other.get_amqp_class_id(),
                other.get_amqp_method_id()
            ))),
        }?;
        Ok(After::Open)
    }

    /// A second Channel.Open on an open channel.
    fn channel_open(&mut self) -> AmqpResult<()> {
        Err(AmqpError::channel_error("second 'channel.open' seen"))
    }

    fn channel_flow(&mut self, ctx: &mut Ctx, f: channel::Flow) -> AmqpResult<()> {
        if !f.active {
            return Err(AmqpError::not_implemented("active=false"));
        }
        ctx.out.method(
            self.id,
            AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk {
                active: true,
            })),
        );
        Ok(())
    }

    fn channel_close(&mut self, ctx: &mut Ctx) -> After {
        self.release(ctx);
        ctx.out.method(
            self.id,
            AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
        );
        After::Closed
    }

    /// Access.Request is obsolete; RabbitMQ answers it and ignores it.
    fn access_request(&mut self, ctx: &mut Ctx) -> AmqpResult<()> {
        ctx.out.method(
            self.id,
            AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})),
        );
        Ok(())
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
            c.handle.cancel();
            if c.queue.remove_consumer(&c.handle) {
                ctx.vhost.queue_lost(&c.queue);
            }
        }
        self.show_consumers();
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
