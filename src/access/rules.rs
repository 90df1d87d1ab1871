//! Which permissions each operation needs, in one place for every way in:
//! AMQP methods and the management API check through these functions, so
//! a user may do over HTTP exactly what it may do over AMQP.

use super::check::Grant;
use super::permission::{Kind, Perm};
use crate::broker::Vhost;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::ExchangeKind;
use amq_protocol::types::FieldTable;

/// Exchange.Declare: configure on the exchange; a passive declare needs any
/// permission on it. A new exchange with an alternate also needs read on
/// itself and write on the alternate (RabbitMQ's rule).
pub(crate) fn may_declare_exchange(
    g: &Grant,
    v: &Vhost,
    name: &str,
    passive: bool,
    arguments: &FieldTable,
) -> AmqpResult<()> {
    if name.is_empty() {
        return Ok(());
    }
    if passive {
        return g.check_any_resource_access(Kind::Exchange, name);
    }
    g.check_resource_access(Kind::Exchange, name, Perm::Configure)?;
    if let Some(ae) = crate::field::string_arg(arguments, "alternate-exchange")
        && v.exchange(name).is_err()
    {
        g.check_resource_access(Kind::Exchange, name, Perm::Read)?;
        g.check_resource_access(Kind::Exchange, &ae, Perm::Write)?;
    }
    Ok(())
}

/// Exchange.Delete: configure on it.
pub(crate) fn may_delete_exchange(g: &Grant, name: &str) -> AmqpResult<()> {
    if name.is_empty() {
        return Ok(());
    }
    g.check_resource_access(Kind::Exchange, name, Perm::Configure)
}

/// Queue.Declare: configure on the queue (any permission when passive). A
/// new queue that dead-letters also needs read on itself and write on the
/// dead-letter exchange, and must fit the vhost's `max-queues`.
pub(crate) fn may_declare_queue(
    g: &Grant,
    v: &Vhost,
    name: &str,
    passive: bool,
    arguments: &FieldTable,
) -> AmqpResult<()> {
    if passive {
        return g.check_any_resource_access(Kind::Queue, name);
    }
    g.check_resource_access(Kind::Queue, name, Perm::Configure)?;
    if v.queue(name).is_ok() {
        return Ok(());
    }
    if let Some(dlx) = crate::field::string_arg(arguments, "x-dead-letter-exchange") {
        g.check_resource_access(Kind::Queue, name, Perm::Read)?;
        g.check_resource_access(Kind::Exchange, &dlx, Perm::Write)?;
    }
    check_queue_limit(g, v, name)
}

/// Queue.Delete: configure on it.
pub(crate) fn may_delete_queue(g: &Grant, name: &str) -> AmqpResult<()> {
    g.check_resource_access(Kind::Queue, name, Perm::Configure)
}

/// Queue.Purge and Basic.Get: read on the queue.
pub(crate) fn may_read_queue(g: &Grant, name: &str) -> AmqpResult<()> {
    g.check_resource_access(Kind::Queue, name, Perm::Read)
}

/// Binding and unbinding (queue or exchange): write on the destination,
/// read on the source exchange, and for a topic exchange the user's topic
/// read permission on the binding key.
pub(crate) fn may_bind(
    g: &Grant,
    v: &Vhost,
    kind: Kind,
    destination: &str,
    source: &str,
    key: &str,
) -> AmqpResult<()> {
    g.check_resource_access(kind, destination, Perm::Write)?;
    g.check_resource_access(Kind::Exchange, source, Perm::Read)?;
    if let Ok(x) = v.exchange(source)
        && x.kind == ExchangeKind::Topic
        && let Some(p) = g.topic_pattern(source, Perm::Read)
    {
        g.check_topic_access(&p, source, key)?;
    }
    Ok(())
}

/// The vhost's `max-queues`, for a queue about to be created.
fn check_queue_limit(g: &Grant, v: &Vhost, name: &str) -> AmqpResult<()> {
    let Some(limit) = g.vhost_limits().max_queues else {
        return Ok(());
    };
    if v.queue_count() as u64 >= limit {
        return Err(AmqpError::precondition_failed(format!(
            "cannot declare queue '{name}': queue limit in vhost '{}' ({limit}) is reached",
            v.name
        )));
    }
    Ok(())
}
