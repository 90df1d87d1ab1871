//! Basic.Publish: assembling method, content header and body frames into one
//! `Arc<Message>`, routing it, returning it if mandatory and unroutable, and
//! publisher confirms.

use super::{Channel, Ctx};
use crate::access::permission::{Kind, Perm};
use crate::broker::vhost::Enqueued;
use crate::broker::vhost::REPLY_TO;
use crate::codec::ContentHeader;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{Exchange, ExchangeKind};
use crate::message::Message;
use amq_protocol::protocol::{AMQPClass, basic};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

pub(super) struct Assembly {
    method: basic::Publish,
    header: Option<ContentHeader>,
    body: Body,
}

enum Body {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::One(b) => b.len(),
            Body::Many(b) => b.len(),
        }
    }

    fn push(&mut self, chunk: Bytes) {
        *self = match std::mem::replace(self, Body::Empty) {
            Body::Empty => Body::One(chunk),
            Body::One(first) => {
                let mut m = BytesMut::with_capacity(first.len() + chunk.len());
                m.extend_from_slice(&first);
                m.extend_from_slice(&chunk);
                Body::Many(m)
            }
            Body::Many(mut m) => {
                m.extend_from_slice(&chunk);
                Body::Many(m)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(b) => b,
            Body::Many(m) => m.freeze(),
        }
    }
}

/// What the channel decided when it last looked up its exchange: good while
/// access control's generation stays the same.
#[derive(Default)]
pub(super) struct PublishGrant {
    generation: u64,
    /// The user's topic write permission on that (topic) exchange.
    topic: Option<crate::access::permission::Pattern>,
    /// The user may publish with another user's user_id.
    impersonator: bool,
}

pub(super) fn method_during_content(a: Option<&Assembly>) -> AmqpError {
    match a.and_then(|a| a.header.as_ref()) {
        None => AmqpError::unexpected_frame(
            "expected content header for class 60, got non content header frame instead",
        ),
        Some(_) => {
            AmqpError::unexpected_frame("expected content body, got non content body frame instead")
        }
    }
}

impl Channel {
    pub(super) fn basic_publish(&mut self, _ctx: &mut Ctx, p: basic::Publish) -> AmqpResult<()> {
        self.publishing = Some(Assembly {
            method: p,
            header: None,
            body: Body::Empty,
        });
        Ok(())
    }

    pub(super) fn content_header(&mut self, ctx: &mut Ctx, h: ContentHeader) -> AmqpResult<()> {
        let Some(a) = self.publishing.as_mut() else {
            return Err(AmqpError::unexpected_frame(
                "expected method frame, got non method frame instead",
            ));
        };
        if a.header.is_some() {
            return Err(AmqpError::unexpected_frame(
                "expected content body, got non content body frame instead",
            )
            .on_method(60, 40));
        }
        if h.class_id != 60 {
            return Err(AmqpError::unexpected_frame(format!(
                "expected content header for class 60, got one for class {} instead",
                h.class_id
            ))
            .on_method(60, 40));
        }
        if h.body_size > ctx.max_message_size {
            self.publishing = None;
            return Err(AmqpError::precondition_failed(format!(
                "message size {} is larger than configured max size {}",
                h.body_size, ctx.max_message_size
            ))
            .on_method(60, 40));
        }
        let done = h.body_size == 0;
        a.header = Some(h);
        if done { self.complete(ctx) } else { Ok(()) }
    }

    pub(super) fn content_body(&mut self, ctx: &mut Ctx, chunk: Bytes) -> AmqpResult<()> {
        let Some(a) = self.publishing.as_mut() else {
            return Err(AmqpError::unexpected_frame(
                "expected method frame, got non method frame instead",
            ));
        };
        let Some(h) = a.header.as_ref() else {
            return Err(AmqpError::unexpected_frame(
                "expected content header for class 60, got non content header frame instead",
            )
            .on_method(60, 40));
        };
        let size = a.body.len() as u64 + chunk.len() as u64;
        if size > h.body_size {
            return Err(AmqpError::frame_error(format!(
                "content body of {size} bytes exceeds the {} announced in its header",
                h.body_size
            ))
            .on_method(60, 40));
        }
        a.body.push(chunk);
        if size == h.body_size {
            self.complete(ctx)
        } else {
            Ok(())
        }
    }

    fn complete(&mut self, ctx: &mut Ctx) -> AmqpResult<()> {
        let Some(Assembly {
            method,
            header: Some(header),
            body,
        }) = self.publishing.take()
        else {
            return Ok(());
        };
        let fail = |e: AmqpError| e.on_method(60, 40);
        if method.immediate {
            return Err(fail(AmqpError::not_implemented("immediate=true")));
        }
        // The exchange looked up and the write permission checked once,
        // while the exchange and every permission stay the same.
        let generation = ctx.grant.generation();
        let x = match &self.last_exchange {
            Some(x)
                if x.name == method.exchange
                    && !x.is_deleted()
                    && self.publish_grant.generation == generation =>
            {
                x.clone()
            }
            _ => {
                self.flush_exchange_counts();
                self.last_exchange = None;
                let name = method.exchange.as_str();
                ctx.grant
                    .check_resource_access(Kind::Exchange, name, Perm::Write)
                    .map_err(fail)?;
                let x = ctx.vhost.exchange(name).map_err(fail)?;
                self.publish_grant = PublishGrant {
                    generation,
                    topic: (x.kind == ExchangeKind::Topic)
                        .then(|| ctx.grant.topic_pattern(name, Perm::Write))
                        .flatten(),
                    impersonator: ctx.grant.user().is_some_and(|u| u.may_impersonate()),
                };
                self.last_exchange = Some(x.clone());
                x
            }
        };
        if x.internal {
            return Err(fail(AmqpError::access_refused(format!(
                "cannot publish to internal exchange '{}' in vhost '{}'",
                x.name, ctx.vhost.name
            ))));
        }
        if let Some(claimed) = header.properties.user_id()
            && claimed.as_str() != ctx.grant.user
            && !self.publish_grant.impersonator
        {
            return Err(fail(AmqpError::precondition_failed(format!(
                "user_id property set to '{claimed}' but authenticated user was '{}'",
                ctx.grant.user
            ))));
        }
        crate::message::check_expiration(&header.properties).map_err(fail)?;
        let mut msg = Message::new(
            method.exchange,
            method.routing_key,
            header.properties,
            header.raw,
            body.into_bytes(),
            ctx.vhost.meter(),
        );
        if msg
            .properties
            .reply_to()
            .as_ref()
            .is_some_and(|r| r.as_str() == REPLY_TO)
        {
            // Direct reply-to: the reply goes to this channel's hidden queue.
            let Some(reply) = self.reply_queue.as_ref() else {
                return Err(fail(AmqpError::precondition_failed(
                    "fast reply consumer does not exist",
                )));
            };
            msg.properties = msg.properties.clone().with_reply_to(reply.name.clone());
            msg.header_raw = crate::message::encode_header(&msg.properties, msg.body.len() as u64);
        }
        let cc = crate::cc::split(&msg.properties, msg.body.len() as u64).map_err(fail)?;
        msg.cc = cc.cc;
        if let Some(p) = &self.publish_grant.topic {
            // Every key it is routed by: its routing key, CC's and BCC's.
            let cc = msg.cc.iter().flat_map(|c| c.keys.iter());
            for key in std::iter::once(&msg.routing_key).chain(cc) {
                ctx.grant
                    .check_topic_access(p, x.name.as_str(), key.as_str())
                    .map_err(fail)?;
            }
        }
        if let Some((props, raw)) = cc.without_bcc {
            msg.properties = props;
            msg.header_raw = raw;
        }
        let msg = Arc::new(msg);
        if let Some(tx) = self.tx.as_mut() {
            tx.publish(x, msg, method.mandatory);
            return Ok(());
        }
        let done = self.enqueue(ctx, &x, &msg, method.mandatory);
        if !self.routed.remote.is_empty() {
            // Queues homed on other nodes are sent the message on a link
            // per node that keeps its order, quorum queues homed here
            // propose it to their groups, which keep it too: the channel
            // goes on, and its confirm waits for their answers.
            let (groups, remote): (Vec<_>, Vec<_>) = std::mem::take(&mut self.routed.remote)
                .into_iter()
                .partition(|q| q.quorum().is_some());
            let mut commits: Vec<crate::queue::Commit> = groups
                .iter()
                .filter_map(|q| Some(q.quorum()?.clone().enqueue(&msg, q.deadline_for(&msg))))
                .collect();
            if !remote.is_empty() {
                commits.push(ctx.vhost.forward_in_order(&msg, &remote));
            }
            self.await_commits(ctx, done.ticket, !done.failed, commits);
            return Ok(());
        }
        self.await_confirm(done.ticket, !done.failed);
        Ok(())
    }

    /// Route a complete message into its queues, returning it if mandatory
    /// and nothing took it.
    pub(super) fn enqueue(
        &mut self,
        ctx: &mut Ctx,
        x: &Arc<Exchange>,
        msg: &Arc<Message>,
        mandatory: bool,
    ) -> Enqueued {
        let done = ctx.vhost.enqueue(x, msg, &mut self.routed);
        if self
            .last_exchange
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(l, x))
        {
            self.exchange_counts.0 += 1;
            self.exchange_counts.1 += done.queues as u64;
        } else {
            // A transaction's commit, to another exchange than the last.
            x.stats.add(1, done.queues as u64);
        }
        let counts = &self.stats.publish;
        counts.published.bump(1);
        counts.observe_size(msg.body.len() as u64);
        if done.delivered {
            counts.routed.bump(1);
        } else if mandatory {
            counts.returned.bump(1);
            self.basic_return(ctx, msg);
        } else {
            counts.dropped.bump(1);
        }
        done
    }

    /// Add what this channel published to its last exchange to that
    /// exchange's counters: once per read batch (the connection calls it),
    /// when it publishes elsewhere, and when it closes.
    pub(crate) fn flush_exchange_counts(&mut self) {
        let (published, routed) = std::mem::take(&mut self.exchange_counts);
        if let Some(x) = &self.last_exchange {
            x.stats.add(published, routed);
        }
    }

    fn basic_return(&mut self, ctx: &mut Ctx, msg: &Message) {
        ctx.out.method(
            self.id,
            AMQPClass::Basic(basic::AMQPMethod::Return(basic::Return {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: msg.exchange.clone(),
                routing_key: msg.routing_key.clone(),
            })),
        );
        ctx.out
            .content(self.id, &msg.header_raw, &msg.body, ctx.frame_max);
    }
}
