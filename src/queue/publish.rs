//! Taking a message in, one step each: deduplication, the overflow rule,
//! persistence, paging, enqueue with its TTL, then dispatch and the limits.

use super::args::Overflow;
use super::limits::deadline;
use super::pager::window_full;
use super::ready::{Entry, Paged};
use super::state::{Effects, QueueState};
use super::{DeadLetter, DeathReason, Published};
use crate::clock::Now;
use crate::message::Message;
use crate::store::queue_log::Location;
use std::sync::Arc;

impl QueueState {
    /// Enqueue a routed message, or hold it until `due` (a delayed-message
    /// exchange's queue), and hand what can go to consumers.
    pub(super) fn publish(
        &mut self,
        msg: Arc<Message>,
        due: Option<u64>,
        now: &Now,
        fx: &mut Effects,
    ) -> Published {
        if self.deleted {
            return Published::Dropped;
        }
        let dedup_key = match self.dedup_key(&msg, now) {
            Ok(k) => k,
            Err(()) => return Published::Duplicate,
        };
        if self.args.overflow != Overflow::DropHead && self.is_full(msg.body_size()) {
            if self.args.overflow == Overflow::RejectPublishDlx {
                fx.dead.push(DeadLetter {
                    msg,
                    reason: DeathReason::Maxlen,
                });
            }
            return Published::Rejected;
        }
        let expires = due.unwrap_or_else(|| deadline(&self.args, &msg, now));
        let seq = self.next_seq;
        let Ok(persisted) = self.persist(seq, expires, &msg) else {
            return Published::Failed;
        };
        self.next_seq += 1;
        // Recorded only once enqueued: a publish that failed (and was
        // nacked) must not make its retry count as a duplicate.
        let dedup = dedup_key.map(|k| (k, msg.properties.clone()));
        if self
            .enqueue(seq, msg, expires, persisted.map(|(_, loc)| loc))
            .is_err()
        {
            return Published::Failed;
        }
        if let (Some((k, props)), Some(d)) = (dedup, self.dedup.as_mut()) {
            d.record(k, seq, &props, now.ms());
        }
        self.stats.publish += 1;
        self.dispatch(fx);
        if self.args.overflow == Overflow::DropHead {
            self.drop_head(fx);
        }
        if expires != 0 {
            // TTL 0 (or already past): expired now unless a consumer took it.
            if expires <= now.ms() {
                self.expire_due(now.ms(), fx);
            }
            self.schedule(fx);
        }
        Published::Accepted {
            ticket: persisted.map_or(0, |(t, _)| t),
        }
    }

    /// The message's deduplication value, if the queue deduplicates;
    /// `Err` if it is a duplicate.
    fn dedup_key(&self, msg: &Message, now: &Now) -> Result<Option<crate::dedup::Key>, ()> {
        let (Some(a), Some(d)) = (&self.args.dedup, &self.dedup) else {
            return Ok(None);
        };
        match a.key_of(&msg.properties) {
            Some(k) if d.is_duplicate(&k, now.ms()) => Err(()),
            k => Ok(k),
        }
    }

    /// Write a persistent message (or any a delayed-message exchange holds)
    /// to the queue's log: its sync ticket and place there.
    fn persist(
        &mut self,
        seq: u64,
        expires: u64,
        msg: &Message,
    ) -> Result<Option<(u64, Location)>, ()> {
        if !(msg.is_persistent() || self.args.delay_for.is_some() || self.replicated) {
            return Ok(None);
        }
        let Some(log) = self.log.as_mut() else {
            return Ok(None);
        };
        log.append(seq, expires, msg).map(Some).map_err(|e| {
            tracing::error!("cannot persist a message: {e}");
        })
    }

    /// Into the ready list: in memory while the queue's window has room,
    /// otherwise only its place on disk (in the durable log if it is there
    /// already, else paged out to the scratch log). A delayed-message
    /// exchange's messages wait long anyway: they always stay on disk.
    fn enqueue(
        &mut self,
        seq: u64,
        msg: Arc<Message>,
        expires: u64,
        logged: Option<Location>,
    ) -> Result<(), ()> {
        let paged = if self.args.delay_for.is_some() && logged.is_some() {
            logged.map(|loc| (loc, false))
        } else if window_full(&self.args, &self.ready, self.meter()) {
            match (logged, self.pager.as_mut()) {
                (Some(loc), _) => Some((loc, false)),
                (None, Some(pager)) => match pager.page_out(seq, expires, &msg) {
                    Ok(loc) => Some((loc, true)),
                    Err(e) => {
                        tracing::error!("cannot page a message out: {e}");
                        return Err(());
                    }
                },
                (None, None) => None,
            }
        } else {
            None
        };
        match paged {
            Some((loc, scratch)) => {
                let level = self.ready.level_of(*msg.properties.priority());
                self.ready.push_paged(
                    Paged {
                        seq,
                        loc,
                        redelivered: false,
                        scratch,
                        expires,
                        returns: 0,
                    },
                    level,
                )
            }
            None => self.ready.push(Entry {
                seq,
                msg,
                redelivered: false,
                expires,
                returns: 0,
            }),
        }
        if expires != 0 {
            self.expiry.insert((expires, seq));
        }
        Ok(())
    }

    /// The broker's meter, whose paging signal applies to every queue.
    fn meter(&self) -> Option<crate::message::Meter> {
        self.pager.as_ref().map(|p| p.meter())
    }
}
