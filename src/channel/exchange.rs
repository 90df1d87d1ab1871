//! The exchange class: Exchange.Declare, Delete, Bind and Unbind. The rules
//! (reserved names, equivalence, auto-delete) live with the vhost.

use super::{Channel, Ctx};
use crate::access::permission::Kind;
use crate::access::rules;
use crate::broker::vhost::ExchangeSpec;
use crate::error::AmqpResult;
use amq_protocol::protocol::{AMQPClass, exchange};

impl Channel {
    fn exchange_reply(&self, ctx: &mut Ctx, nowait: bool, m: exchange::AMQPMethod) {
        if !nowait {
            ctx.out.method(self.id, AMQPClass::Exchange(m));
        }
    }

    pub(super) fn exchange_declare(
        &mut self,
        ctx: &mut Ctx,
        d: exchange::Declare,
    ) -> AmqpResult<()> {
        rules::may_declare_exchange(
            ctx.grant,
            ctx.vhost,
            d.exchange.as_str(),
            d.passive,
            &d.arguments,
        )?;
        ctx.vhost.declare_exchange(&ExchangeSpec {
            name: d.exchange.as_str(),
            kind: d.kind.as_str(),
            passive: d.passive,
            durable: d.durable,
            auto_delete: d.auto_delete,
            internal: d.internal,
            arguments: &d.arguments,
        })?;
        self.exchange_reply(
            ctx,
            d.nowait,
            exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {}),
        );
        Ok(())
    }

    pub(super) fn exchange_delete(&mut self, ctx: &mut Ctx, d: exchange::Delete) -> AmqpResult<()> {
        rules::may_delete_exchange(ctx.grant, d.exchange.as_str())?;
        ctx.vhost
            .delete_exchange(d.exchange.as_str(), d.if_unused)?;
        self.exchange_reply(
            ctx,
            d.nowait,
            exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {}),
        );
        Ok(())
    }

    pub(super) fn exchange_bind(&mut self, ctx: &mut Ctx, b: exchange::Bind) -> AmqpResult<()> {
        let (dst, src, key) = (
            b.destination.as_str(),
            b.source.as_str(),
            b.routing_key.as_str(),
        );
        rules::may_bind(ctx.grant, ctx.vhost, Kind::Exchange, dst, src, key)?;
        ctx.vhost.bind_exchange(
            b.destination.as_str(),
            b.source.as_str(),
            b.routing_key.as_str(),
            &b.arguments,
        )?;
        self.exchange_reply(
            ctx,
            b.nowait,
            exchange::AMQPMethod::BindOk(exchange::BindOk {}),
        );
        Ok(())
    }

    pub(super) fn exchange_unbind(&mut self, ctx: &mut Ctx, u: exchange::Unbind) -> AmqpResult<()> {
        let (dst, src, key) = (
            u.destination.as_str(),
            u.source.as_str(),
            u.routing_key.as_str(),
        );
        rules::may_bind(ctx.grant, ctx.vhost, Kind::Exchange, dst, src, key)?;
        ctx.vhost.unbind_exchange(
            u.destination.as_str(),
            u.source.as_str(),
            u.routing_key.as_str(),
            &u.arguments,
        )?;
        self.exchange_reply(
            ctx,
            u.nowait,
            exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {}),
        );
        Ok(())
    }
}
