//! Time and size limits of a queue: when a message expires (its own TTL or
//! the queue's, anywhere in the queue), when an unused queue goes
//! (x-expires), and what a full queue does (max-length, drop-head).

use super::*;

impl Queue {
    pub(super) fn schedule(self: &Arc<Self>, st: &mut QueueState) {
        let unused = self.unused_deadline(st);
        let Some(next) = st
            .expiry
            .first()
            .map(|&(at, _)| at)
            .into_iter()
            .chain(unused)
            .min()
        else {
            return;
        };
        if st.scheduled.is_none_or(|s| next < s)
            && let Some(t) = &self.timer
        {
            st.scheduled = Some(next);
            t.schedule(next, self);
        }
    }

    /// When an x-expires queue is due for deletion, if it is unused now.
    pub(super) fn unused_deadline(&self, st: &QueueState) -> Option<u64> {
        let ms = st.args.expires?;
        (st.consumers.is_empty() && !st.deleted).then(|| st.last_used.saturating_add(ms))
    }

    /// Expire every ready message whose time has come (anywhere in the
    /// queue, not only at its head) into `dead`, and reschedule. True when
    /// the queue itself has been unused for its x-expires and must go.
    pub fn expire(self: &Arc<Self>, now: u64, dead: &mut Vec<DeadLetter>) -> bool {
        let mut st = self.lock();
        st.scheduled = None;
        st.expire_due(now, dead);
        if self.unused_deadline(&st).is_some_and(|at| at <= now) {
            return true;
        }
        self.schedule(&mut st);
        false
    }

    /// Arm the timer for what a recovered queue holds.
    pub fn start_timers(self: &Arc<Self>) {
        let mut st = self.lock();
        st.last_used = now_ms();
        self.schedule(&mut st);
    }

    /// The queue was used (declared, read or consumed from): an x-expires
    /// countdown starts again.
    pub fn touch(self: &Arc<Self>) {
        let mut st = self.lock();
        if st.args.expires.is_none() {
            return;
        }
        st.last_used = now_ms();
        self.schedule(&mut st);
    }
}

impl QueueState {
    pub(super) fn is_full(&self, incoming: usize) -> bool {
        let args = &self.args;
        args.max_length.is_some_and(|m| self.ready.len() >= m)
            || args
                .max_length_bytes
                .is_some_and(|m| self.ready_bytes_total() + incoming > m)
    }

    pub(super) fn ready_bytes_total(&self) -> usize {
        self.ready.total_bytes()
    }

    /// max-length with drop-head: drop (dead-letter) from the head until
    /// the queue fits.
    pub(super) fn drop_head(&mut self, dead: &mut Vec<DeadLetter>) {
        let args = self.args.clone();
        if args.max_length.is_none() && args.max_length_bytes.is_none() {
            return;
        }
        while args.max_length.is_some_and(|m| self.ready.len() > m)
            || args
                .max_length_bytes
                .is_some_and(|m| self.ready_bytes_total() > m)
        {
            let Some(e) = self.pop_ready() else { break };
            self.forget([e.seq]);
            dead.push(DeadLetter {
                msg: e.msg,
                reason: DeathReason::Maxlen,
            });
        }
    }

    pub(super) fn expire_due(&mut self, now: u64, dead: &mut Vec<DeadLetter>) {
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
                Slot::Disk(p) => self
                    .log
                    .as_mut()
                    .and_then(|l| l.read(p.loc).ok())
                    .map(Arc::new),
                Slot::Gone(_) => None,
            };
            self.forget([seq]);
            if let Some(msg) = msg {
                dead.push(DeadLetter {
                    msg,
                    reason: DeathReason::Expired,
                });
            }
        }
    }
}

/// When a message published now expires: the queue's TTL and the
/// message's own expiration, whichever comes first (0: never).
pub(super) fn deadline(args: &QueueArgs, msg: &Message) -> u64 {
    let own = msg
        .properties
        .expiration()
        .as_ref()
        .and_then(|e| crate::message::parse_expiration(e.as_str()).ok());
    match (args.message_ttl, own) {
        (None, None) => 0,
        (a, b) => now_ms()
            .saturating_add(a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX)))
            .max(1),
    }
}
