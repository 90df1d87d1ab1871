//! Time and size limits of a queue: when a message expires (its own TTL or
//! the queue's, anywhere in the queue), when an unused queue goes
//! (x-expires), and what a full queue does (max-length, drop-head).

use super::args::QueueArgs;
use super::ready::Slot;
use super::state::{Effects, QueueState};
use super::{DeadLetter, DeathReason};
use crate::clock::Now;
use crate::message::Message;
use std::sync::Arc;

impl QueueState {
    /// Ask for the timer if the earliest deadline (a message's expiry or
    /// the queue's own) is earlier than the one it already has.
    pub(super) fn schedule(&mut self, fx: &mut Effects) {
        if !self.timed {
            return;
        }
        let Some(next) = self
            .expiry
            .first()
            .map(|&(at, _)| at)
            .into_iter()
            .chain(self.unused_deadline())
            .min()
        else {
            return;
        };
        if self.scheduled.is_none_or(|s| next < s) {
            self.scheduled = Some(next);
            fx.arm = Some(next);
        }
    }

    /// When an x-expires queue is due for deletion, if it is unused now.
    fn unused_deadline(&self) -> Option<u64> {
        let ms = self.args.expires?;
        (self.consumers.is_empty() && !self.deleted).then(|| self.last_used.saturating_add(ms))
    }

    /// The timer fired: expire every ready message whose time has come
    /// (anywhere in the queue, not only at its head). True when the queue
    /// itself has been unused for its x-expires and must go.
    pub(super) fn expire(&mut self, now: u64, fx: &mut Effects) -> bool {
        self.scheduled = None;
        self.expire_due(now, fx);
        if self.unused_deadline().is_some_and(|at| at <= now) {
            return true;
        }
        self.schedule(fx);
        false
    }

    /// The queue was used (declared, read or consumed from): an x-expires
    /// countdown starts again. Also arms the timer for what a recovered
    /// queue holds.
    pub(super) fn touch(&mut self, now: &Now, fx: &mut Effects) {
        self.last_used = now.ms();
        self.schedule(fx);
    }

    pub(super) fn is_full(&self, incoming: usize) -> bool {
        let args = &self.args;
        args.max_length.is_some_and(|m| self.ready.len() >= m)
            || args
                .max_length_bytes
                .is_some_and(|m| self.ready.total_bytes() + incoming > m)
    }

    /// max-length with drop-head: drop (dead-letter) from the head until
    /// the queue fits.
    pub(super) fn drop_head(&mut self, fx: &mut Effects) {
        let args = self.args.clone();
        if args.max_length.is_none() && args.max_length_bytes.is_none() {
            return;
        }
        while args.max_length.is_some_and(|m| self.ready.len() > m)
            || args
                .max_length_bytes
                .is_some_and(|m| self.ready.total_bytes() > m)
        {
            let Some(e) = self.pop_ready(false) else {
                break;
            };
            self.forget([e.seq]);
            fx.dead.push(DeadLetter {
                msg: e.msg,
                reason: DeathReason::Maxlen,
            });
        }
    }

    pub(super) fn expire_due(&mut self, now: u64, fx: &mut Effects) {
        while let Some(&(at, seq)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            let Some(slot) = self.ready.remove(seq) else {
                continue; // delivered meanwhile
            };
            let msg = match slot {
                Slot::Mem(e) => Some(e.msg),
                // A transient message paged out is read from the scratch
                // log, a persistent one from the queue's own.
                Slot::Disk(p) => self.read_paged(&p).ok().map(Arc::new),
                // Runs hold no expiring message.
                Slot::Run(_) | Slot::Gone(_) => None,
            };
            self.forget([seq]);
            if let Some(msg) = msg {
                fx.dead.push(DeadLetter {
                    msg,
                    reason: DeathReason::Expired,
                });
            }
        }
    }
}

/// When a message published at `now` expires: the queue's TTL and the
/// message's own expiration, whichever comes first (0: never).
pub(super) fn deadline(args: &QueueArgs, msg: &Message, now: &Now) -> u64 {
    let own = msg
        .properties
        .expiration()
        .as_ref()
        .and_then(|e| crate::message::parse_expiration(e.as_str()).ok());
    match (args.message_ttl, own) {
        (None, None) => 0,
        (a, b) => now
            .ms()
            .saturating_add(a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX)))
            .max(1),
    }
}
