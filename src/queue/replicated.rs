//! A quorum queue on its home (`cluster::quorum`): its group applies each
//! committed publish and settlement here, a publish under the sequence
//! number its place in the group's log gives it (`quorum::types::seq_of`).

use super::state::{Effects, QueueState};
use super::{Dead, Published, Queue, QuorumLink};
use crate::clock::Now;
use crate::message::Message;
use std::sync::Arc;

impl Queue {
    /// From now on what is published to this queue, and what leaves it,
    /// goes through its group.
    pub(crate) fn replicate_through(&self, link: Arc<dyn QuorumLink>) {
        if self.quorum.set(link).is_ok() {
            self.lock().replicated = true;
        }
    }

    /// Its group, if it is a quorum queue homed here.
    pub(crate) fn quorum(&self) -> Option<&Arc<dyn QuorumLink>> {
        self.quorum.get()
    }

    /// Whether a message routed to it goes through the cluster: to its
    /// home elsewhere, or through its group.
    pub(crate) fn through_cluster(&self) -> bool {
        self.elsewhere().is_some() || self.quorum.get().is_some()
    }

    /// When a message published now would expire here (0: never).
    pub(crate) fn deadline_for(&self, msg: &Message) -> u64 {
        super::limits::deadline(&self.args(), msg, &Now::of(&self.clock))
    }

    /// A committed publish: true if the queue took it (or had it already).
    pub(crate) fn publish_replicated(
        self: &Arc<Self>,
        seq: u64,
        expires: u64,
        msg: Arc<Message>,
    ) -> (bool, Dead) {
        let (p, dead) = self.apply(|st, now, fx| st.publish_at(seq, expires, msg, now, fx));
        let took = matches!(p, Published::Accepted { .. } | Published::Duplicate);
        (took, dead)
    }

    /// What its log holds, for a snapshot of its group (see
    /// `QueueLog::live_records`).
    pub(crate) fn live_records(&self) -> std::io::Result<Vec<(u64, bytes::Bytes)>> {
        match self.lock().log.as_mut() {
            Some(log) => log.live_records(),
            None => Ok(Vec::new()),
        }
    }

    /// How many messages its log holds.
    pub(crate) fn logged(&self) -> usize {
        self.lock().log.as_ref().map_or(0, |l| l.live())
    }

    /// A committed settlement: messages that left the queue, here already
    /// unless the home moved since.
    pub(crate) fn settle_replicated(self: &Arc<Self>, seqs: &[u64]) {
        let _ = self.apply(|st, _, _| st.drop_settled(seqs));
    }
}

impl QueueState {
    fn publish_at(
        &mut self,
        seq: u64,
        expires: u64,
        msg: Arc<Message>,
        now: &Now,
        fx: &mut Effects,
    ) -> Published {
        if seq < self.next_seq {
            return Published::Duplicate;
        }
        self.next_seq = seq;
        let p = self.publish(msg, Some(expires), now, fx);
        if !matches!(p, Published::Accepted { .. }) {
            // Committed, but refused here (a full queue): the other members
            // must drop it too.
            self.settled.push(seq);
        }
        p
    }

    fn drop_settled(&mut self, seqs: &[u64]) {
        let gone: Vec<u64> = seqs
            .iter()
            .copied()
            .filter(|s| self.ready.remove(*s).is_some() | self.checked_out.remove(s).is_some())
            .collect();
        let replicated = std::mem::replace(&mut self.replicated, false);
        self.forget(gone.iter().copied());
        self.replicated = replicated;
    }
}

impl Queue {
    /// Its home moved to another node: this object lets go of everything
    /// (its log stays on disk, for the group's member here) and cancels
    /// its consumers. Acks that reach it later are in-flight ones: the new
    /// home delivers those messages again.
    pub(crate) fn detach(self: &Arc<Self>) -> usize {
        self.apply(|st, _, fx| {
            st.replicated = false;
            st.deleted = true;
            st.checked_out.clear();
            st.expiry.clear();
            let n = st.ready.clear();
            drop(st.log.take());
            if let Some(pager) = st.pager.take() {
                pager.destroy();
            }
            fx.cancelled.append(&mut st.consumers);
            n
        })
        .0
    }
}
