//! A method whose outcome a cluster decides. Handlers are synchronous, but
//! a change to replicated metadata is known only once a majority of the
//! cluster has committed it: the handler hands the change over, the
//! connection reads nothing more (so the client's methods keep their
//! order) until the outcome is in, then the handler's second half finishes
//! the method with it.

use super::{Channel, Ctx};
use crate::access::Refusal;
use crate::broker::changes::Change;
use crate::error::{AmqpError, AmqpResult, ReplyCode};
use std::future::Future;
use std::pin::Pin;

pub(crate) type Outcome = Result<bool, Refusal>;
pub(crate) type Wait = Pin<Box<dyn Future<Output = Outcome> + Send>>;
/// What the method does once its change is in: what the change answered
/// (created, or was there) given.
pub(crate) type Finish = Box<dyn FnOnce(&mut Channel, &mut Ctx, bool) -> AmqpResult<()> + Send>;

pub(crate) struct Pending {
    pub(crate) channel: u16,
    pub(crate) class_id: u16,
    pub(crate) method_id: u16,
    /// Taken by the connection, which polls it.
    pub(crate) wait: Option<Wait>,
    pub(crate) finish: Finish,
    /// What the method was doing, for an error: "declare exchange 'x'".
    pub(crate) what: String,
}

impl Pending {
    /// Finish the method on `ch` with the change's outcome.
    pub(crate) fn finish(self, ch: &mut Channel, ctx: &mut Ctx, out: Outcome) -> AmqpResult<()> {
        let r = match out {
            Ok(answer) => (self.finish)(ch, ctx, answer),
            Err(r) => Err(refused(r, &self.what)),
        };
        r.map_err(|e| e.on_method(self.class_id, self.method_id))
    }
}

/// The AMQP error for a replicated change that was refused: the one the
/// change's own checks gave, or, when the cluster could not decide (no
/// majority), an internal error as RabbitMQ's when its metadata store
/// times out.
pub(crate) fn refused(r: Refusal, what: &str) -> AmqpError {
    match r {
        Refusal::Amqp { code, text } => AmqpError::new(
            ReplyCode::from_u16(code).unwrap_or(ReplyCode::InternalError),
            text,
        ),
        Refusal::NoSuchVhost(v) => AmqpError::not_found(format!("no vhost '{v}'")),
        Refusal::Unavailable(why) => AmqpError::internal_error(format!("could not {what}: {why}")),
        Refusal::NoSuchUser(_) | Refusal::Invalid(_) | Refusal::Io(_) => {
            AmqpError::internal_error(format!("could not {what}: {r}"))
        }
    }
}

impl Ctx<'_> {
    /// Replicate `change` through the cluster; `finish` completes the
    /// method once it is committed and applied here.
    pub(crate) fn await_change(
        &mut self,
        change: Change,
        what: String,
        finish: impl FnOnce(&mut Channel, &mut Ctx, bool) -> AmqpResult<()> + Send + 'static,
    ) {
        let broker = self.broker.clone();
        self.await_outcome(async move { broker.change(change).await }, what, finish);
    }

    /// Suspend the connection until `wait` is over; `finish` completes the
    /// method then.
    pub(crate) fn await_outcome(
        &mut self,
        wait: impl Future<Output = Outcome> + Send + 'static,
        what: String,
        finish: impl FnOnce(&mut Channel, &mut Ctx, bool) -> AmqpResult<()> + Send + 'static,
    ) {
        *self.pending = Some(Pending {
            channel: 0,
            class_id: 0,
            method_id: 0,
            wait: Some(Box::pin(wait)),
            finish: Box::new(finish),
            what,
        });
    }

    /// Suspend the connection until `wait` gives what the method answers
    /// with (a queue's counts, a message got at its home); `finish`
    /// completes the method with it.
    pub(crate) fn await_value<T: Send + 'static>(
        &mut self,
        wait: impl Future<Output = Result<T, Refusal>> + Send + 'static,
        what: String,
        finish: impl FnOnce(&mut Channel, &mut Ctx, T) -> AmqpResult<()> + Send + 'static,
    ) {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let filled = slot.clone();
        let wait = async move {
            let v = wait.await?;
            *filled.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
            Ok(true)
        };
        self.await_outcome(wait, what, move |ch, ctx, _| {
            match slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(v) => finish(ch, ctx, v),
                None => Ok(()),
            }
        });
    }

    /// Topology (exchanges and their bindings) is changed through the
    /// cluster's log, not here alone.
    pub(crate) fn replicates_topology(&self) -> bool {
        self.broker.replicates_topology()
    }
}
