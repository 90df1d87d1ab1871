//! The exchange class: Exchange.Declare, Delete, Bind and Unbind. The rules
//! (reserved names, equivalence, auto-delete) live with the vhost.

use super::{Channel, Ctx};
use crate::access::permission::Kind;
use crate::access::rules;
use crate::broker::changes::Change;
use crate::broker::topology::{ExchangeBinding, ExchangeDecl};
use crate::broker::vhost::ExchangeSpec;
use crate::error::{AmqpError, AmqpResult};
use amq_protocol::protocol::{AMQPClass, exchange};
use amq_protocol::types::FieldTable;

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
        let spec = ExchangeSpec {
            name: d.exchange.as_str(),
            kind: d.kind.as_str(),
            passive: d.passive,
            durable: d.durable,
            auto_delete: d.auto_delete,
            internal: d.internal,
            arguments: &d.arguments,
        };
        // An equivalent exchange is there already: nothing to replicate.
        if ctx.replicates_topology()
            && !d.passive
            && ctx.vhost.exchange(d.exchange.as_str()).is_err()
        {
            ctx.vhost.check_exchange_declare(&spec)?;
            let exchange = ExchangeDecl {
                name: d.exchange.to_string(),
                kind: d.kind.to_string(),
                durable: d.durable,
                auto_delete: d.auto_delete,
                internal: d.internal,
                arguments: d.arguments.clone(),
            };
            let what = format!("declare exchange '{}'", d.exchange);
            let vhost = ctx.vhost.name.clone();
            ctx.await_change(
                Change::DeclareExchange { vhost, exchange },
                what,
                move |ch, ctx, _| {
                    let ok = exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {});
                    ch.exchange_reply(ctx, d.nowait, ok);
                    Ok(())
                },
            );
            return Ok(());
        }
        ctx.vhost.declare_exchange(&spec)?;
        self.exchange_reply(
            ctx,
            d.nowait,
            exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {}),
        );
        Ok(())
    }

    pub(super) fn exchange_delete(&mut self, ctx: &mut Ctx, d: exchange::Delete) -> AmqpResult<()> {
        rules::may_delete_exchange(ctx.grant, d.exchange.as_str())?;
        if ctx.replicates_topology() {
            // This node's queue bindings count for if-unused here; the
            // change itself counts exchange bindings only (`Vhost::in_use`).
            if let Ok(x) = ctx.vhost.exchange(d.exchange.as_str())
                && d.if_unused
                && x.has_bindings()
            {
                return Err(AmqpError::precondition_failed(format!(
                    "exchange '{}' in vhost '{}' in use",
                    d.exchange, ctx.vhost.name
                )));
            }
            let change = Change::DeleteExchange {
                vhost: ctx.vhost.name.clone(),
                name: d.exchange.to_string(),
                if_unused: d.if_unused,
            };
            let what = format!("delete exchange '{}'", d.exchange);
            ctx.await_change(change, what, move |ch, ctx, _| {
                let ok = exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {});
                ch.exchange_reply(ctx, d.nowait, ok);
                Ok(())
            });
            return Ok(());
        }
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
        if ctx.replicates_topology() {
            let binding = binding(dst, src, key, &b.arguments);
            replicate_binding(ctx, binding, true, b.nowait);
            return Ok(());
        }
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
        if ctx.replicates_topology() {
            let binding = binding(dst, src, key, &u.arguments);
            replicate_binding(ctx, binding, false, u.nowait);
            return Ok(());
        }
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

fn binding(dst: &str, src: &str, key: &str, args: &FieldTable) -> ExchangeBinding {
    ExchangeBinding {
        destination: dst.to_string(),
        source: src.to_string(),
        routing_key: key.to_string(),
        arguments: args.clone(),
    }
}

/// Exchange.Bind (`bind`) or Exchange.Unbind through the cluster's log.
fn replicate_binding(ctx: &mut Ctx, binding: ExchangeBinding, bind: bool, nowait: bool) {
    let what = format!(
        "{} exchange '{}' {} exchange '{}'",
        if bind { "bind" } else { "unbind" },
        binding.destination,
        if bind { "to" } else { "from" },
        binding.source
    );
    let vhost = ctx.vhost.name.clone();
    let change = match bind {
        true => Change::BindExchange { vhost, binding },
        false => Change::UnbindExchange { vhost, binding },
    };
    ctx.await_change(change, what, move |ch, ctx, _| {
        let ok = match bind {
            true => exchange::AMQPMethod::BindOk(exchange::BindOk {}),
            false => exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {}),
        };
        ch.exchange_reply(ctx, nowait, ok);
        Ok(())
    });
}
