//! Publisher confirms (`confirm.select`): each publish's delivery tag, and
//! when its ack or nack is due: once the store has synced what it wrote,
//! and, for a quorum queue's messages, once its group has committed them
//! (`Committed`, settled in the background while the channel goes on).

use super::{Channel, Ctx};
use crate::error::{AmqpError, AmqpResult};
use amq_protocol::protocol::{AMQPClass, basic, confirm};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// Publisher confirms: the sequence numbers handed out, and those not yet
/// confirmed with the store ticket each waits for (0: nothing to wait for)
/// and whether it is an ack or a nack. Confirms go out in order; runs of
/// acks leave as one `multiple` ack when the connection flushes.
#[derive(Default)]
pub(super) struct Confirms {
    published: u64,
    /// (delivery tag, store ticket, ack or nack, committed), in tag order.
    pending: VecDeque<(u64, u64, bool, Option<Committed>)>,
    /// The highest ticket ever pending (tickets only grow).
    max_ticket: u64,
}

/// Whether a quorum queue's group committed a message: not yet, yes, or
/// no (it will be nacked).
#[derive(Clone, Default)]
pub(super) struct Committed(Arc<AtomicU8>);

impl Committed {
    const WAITING: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;

    fn get(&self) -> Option<bool> {
        match self.0.load(Ordering::Acquire) {
            Self::WAITING => None,
            v => Some(v == Self::YES),
        }
    }

    fn set(&self, ok: bool) {
        let v = if ok { Self::YES } else { Self::NO };
        self.0.store(v, Ordering::Release);
    }
}

/// How many of a channel's publishes wait on their groups; the methods
/// that must see them wait until none does (`waits_for_commits`).
#[derive(Clone, Default)]
pub(super) struct Inflight(Arc<InflightState>);

#[derive(Default)]
struct InflightState {
    n: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Inflight {
    fn start(&self) {
        self.0.n.fetch_add(1, Ordering::AcqRel);
    }

    fn done(&self) {
        if self.0.n.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }

    pub(super) fn busy(&self) -> bool {
        self.0.n.load(Ordering::Acquire) > 0
    }

    /// Done once no publish waits.
    pub(super) fn idle(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let s = self.0.clone();
        async move {
            loop {
                let notified = s.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if s.n.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        }
    }
}

/// A publish's confirm (if in confirm mode) and what it waits for.
type Waiting = (Option<Committed>, Vec<crate::queue::Commit>);

/// Where a channel hands its publishes' answers to wait for: one task a
/// channel (it ends with the channel), not one a publish.
pub(super) struct Committer(tokio::sync::mpsc::UnboundedSender<Waiting>);

/// Wait for each publish's answers in order; wake the connection when its
/// confirm is due (once for a run of them, and at least every `WAKE_EVERY`
/// under a steady stream).
async fn wait_in_order(
    mut waiting: tokio::sync::mpsc::UnboundedReceiver<Waiting>,
    inflight: Inflight,
    sink: crate::queue::inbox::Sink,
) {
    const WAKE_EVERY: u32 = 128;
    let mut unwoken = 0;
    while let Some((committed, commits)) = waiting.recv().await {
        let mut all = true;
        for c in commits {
            all &= c.await;
        }
        inflight.done();
        if let Some(c) = committed {
            c.set(all);
            unwoken += 1;
            if waiting.is_empty() || unwoken >= WAKE_EVERY {
                unwoken = 0;
                let _ = sink.send(crate::queue::inbox::InboxEvent::Synced);
            }
        }
    }
}

/// Whether a method must wait for the channel's publishes to be taken by
/// their quorum queues first: all but more publishing and settling (which
/// keep their order through the groups anyway) and the channel's own.
pub(super) fn waits_for_commits(m: &AMQPClass) -> bool {
    use basic::AMQPMethod as B;
    !matches!(
        m,
        AMQPClass::Basic(B::Publish(_) | B::Ack(_) | B::Nack(_) | B::Reject(_))
            | AMQPClass::Channel(_)
    )
}

impl Channel {
    /// A publish done: in confirm mode, its ack (or nack) is due once the
    /// store has synced `ticket`.
    pub(super) fn await_confirm(&mut self, ticket: u64, ok: bool) {
        self.await_committed(ticket, ok, None);
    }

    fn await_committed(&mut self, ticket: u64, ok: bool, committed: Option<Committed>) {
        if let Some(c) = self.confirm.as_mut() {
            self.stats.publish.received_confirm.bump(1);
            c.published += 1;
            c.pending.push_back((c.published, ticket, ok, committed));
            c.max_ticket = c.max_ticket.max(ticket);
        }
    }

    /// A publish whose quorum queues' groups have it to commit (`commits`,
    /// proposed already, in order): the channel goes on, and its confirm is
    /// due once they have answered (the connection is woken then).
    pub(super) fn await_commits(
        &mut self,
        ctx: &mut Ctx,
        ticket: u64,
        ok: bool,
        commits: Vec<crate::queue::Commit>,
    ) {
        let committed = self.confirm.is_some().then(Committed::default);
        self.await_committed(ticket, ok, committed.clone());
        self.commits.start();
        let committer = self.committer.get_or_insert_with(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(wait_in_order(rx, self.commits.clone(), ctx.sink.clone()));
            }
            Committer(tx)
        });
        let _ = committer.0.send((committed, commits));
    }

    pub(super) fn confirm_select(&mut self, ctx: &mut Ctx, s: confirm::Select) -> AmqpResult<()> {
        if self.tx.is_some() {
            return Err(AmqpError::precondition_failed(
                "cannot switch from tx to confirm mode",
            ));
        }
        self.confirm.get_or_insert_with(Confirms::default);
        self.stats
            .confirm
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if !s.nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
            );
        }
        Ok(())
    }

    /// The store ticket the last pending confirm waits for (0: none).
    pub fn awaited_ticket(&self) -> u64 {
        self.confirm
            .as_ref()
            .filter(|c| !c.pending.is_empty())
            .map_or(0, |c| c.max_ticket)
    }

    /// Send the confirms that are due: everything whose data is on disk (or
    /// needed none), in order, runs of acks as one `multiple` ack.
    pub fn flush_confirms(&mut self, ctx: &mut Ctx) {
        let Some(c) = self.confirm.as_mut() else {
            return;
        };
        let mut run: Option<(u64, u64)> = None; // (last tag, count)
        let id = self.id;
        let ack = |out: &mut crate::codec::Outbox, run: &mut Option<(u64, u64)>| {
            if let Some((tag, n)) = run.take() {
                out.method(
                    id,
                    AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                        delivery_tag: tag,
                        multiple: n > 1,
                    })),
                );
            }
        };
        while let Some((tag, ticket, ok, committed)) = c.pending.front() {
            if *ticket > ctx.durable {
                break;
            }
            let ok = match committed.as_ref().map(Committed::get) {
                None => *ok,
                Some(None) => break,
                Some(Some(c)) => *ok && c,
            };
            let tag = *tag;
            c.pending.pop_front();
            if ok {
                self.stats.publish.confirmed.bump(1);
                run = Some((tag, run.map_or(1, |(_, n)| n + 1)));
            } else {
                self.stats.publish.nacked.bump(1);
                ack(ctx.out, &mut run);
                ctx.out.method(
                    id,
                    AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
                        delivery_tag: tag,
                        multiple: false,
                        requeue: false,
                    })),
                );
            }
        }
        ack(ctx.out, &mut run);
    }
}
