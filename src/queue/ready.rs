//! The ready list: messages waiting for a consumer, in queue order.
//! Requeued messages go back to their original position (RabbitMQ does the
//! same), which is always ahead of every message never delivered, so they
//! live in a small ordered map in front of the plain FIFO.

use crate::message::Message;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Entry {
    /// Position in the queue, increasing with every enqueue.
    pub seq: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
}

#[derive(Default)]
pub struct ReadyList {
    requeued: BTreeMap<u64, Entry>,
    fresh: VecDeque<Entry>,
    bytes: usize,
}

impl ReadyList {
    pub fn len(&self) -> usize {
        self.requeued.len() + self.fresh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requeued.is_empty() && self.fresh.is_empty()
    }

    /// Body bytes of the ready messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push(&mut self, entry: Entry) {
        self.bytes += entry.msg.body_size();
        self.fresh.push_back(entry);
    }

    /// Put a message back at its original position (the caller decides
    /// whether it counts as redelivered).
    pub fn requeue(&mut self, entry: Entry) {
        self.bytes += entry.msg.body_size();
        match self.fresh.front() {
            Some(first) if first.seq < entry.seq => {
                // Only possible for a message that never left (not delivered);
                // keep FIFO order by inserting in place.
                let at = self.fresh.partition_point(|e| e.seq < entry.seq);
                self.fresh.insert(at, entry);
            }
            _ => {
                self.requeued.insert(entry.seq, entry);
            }
        }
    }

    pub fn pop(&mut self) -> Option<Entry> {
        let e = match self.requeued.pop_first() {
            Some((_, e)) => Some(e),
            None => self.fresh.pop_front(),
        }?;
        self.bytes -= e.msg.body_size();
        Some(e)
    }

    /// Drop every ready message, returning their positions.
    pub fn drain_seqs(&mut self) -> Vec<u64> {
        let seqs = self
            .requeued
            .keys()
            .copied()
            .chain(self.fresh.iter().map(|e| e.seq))
            .collect();
        self.clear();
        seqs
    }

    /// Drop every ready message, returning how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.len();
        self.requeued.clear();
        self.fresh.clear();
        self.bytes = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            msg: Arc::new(Message {
                exchange: "".into(),
                routing_key: "".into(),
                properties: Default::default(),
                header_raw: Bytes::new(),
                body: Bytes::from(vec![0u8; seq as usize]),
            }),
            redelivered: false,
        }
    }

    #[test]
    fn requeued_messages_come_back_at_their_original_position() {
        let mut r = ReadyList::default();
        for s in 1..=5 {
            r.push(entry(s));
        }
        let a = r.pop().expect("1");
        let b = r.pop().expect("2");
        let c = r.pop().expect("3");
        for mut e in [c, a] {
            e.redelivered = true;
            r.requeue(e);
        }
        let order: Vec<(u64, bool)> = std::iter::from_fn(|| r.pop())
            .map(|e| (e.seq, e.redelivered))
            .collect();
        assert_eq!(order, vec![(1, true), (3, true), (4, false), (5, false)]);
        drop(b);
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn byte_count_follows_contents() {
        let mut r = ReadyList::default();
        r.push(entry(3));
        r.push(entry(4));
        assert_eq!(r.bytes(), 7);
        assert_eq!(r.clear(), 2);
        assert_eq!(r.bytes(), 0);
    }
}
