//! The ready list: messages waiting for a consumer, in queue order.
//! Requeued messages go back to their original position (RabbitMQ does the
//! same), which is always ahead of every message never delivered, so they
//! live in a small ordered map in front of the plain FIFO. Messages of a long
//! backlog may be paged: only their place in the queue's log is kept here.

use crate::message::Message;
use crate::store::queue_log::Location;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Entry {
    /// Position in the queue, increasing with every enqueue.
    pub seq: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
}

/// A message whose body lives only in the queue's log.
#[derive(Clone, Copy, Debug)]
pub struct Paged {
    pub seq: u64,
    pub loc: Location,
    pub redelivered: bool,
}

#[derive(Debug)]
pub enum Slot {
    Mem(Entry),
    Disk(Paged),
}

impl Slot {
    fn seq(&self) -> u64 {
        match self {
            Slot::Mem(e) => e.seq,
            Slot::Disk(p) => p.seq,
        }
    }

    fn mem_bytes(&self) -> usize {
        match self {
            Slot::Mem(e) => e.msg.body_size(),
            Slot::Disk(_) => 0,
        }
    }
}

#[derive(Default)]
pub struct ReadyList {
    requeued: BTreeMap<u64, Entry>,
    fresh: VecDeque<Slot>,
    /// Body bytes held in memory.
    bytes: usize,
}

impl ReadyList {
    pub fn len(&self) -> usize {
        self.requeued.len() + self.fresh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requeued.is_empty() && self.fresh.is_empty()
    }

    /// Body bytes of the ready messages held in memory.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push(&mut self, entry: Entry) {
        self.bytes += entry.msg.body_size();
        self.fresh.push_back(Slot::Mem(entry));
    }

    pub fn push_paged(&mut self, p: Paged) {
        self.fresh.push_back(Slot::Disk(p));
    }

    /// Put a message back at its original position (the caller decides
    /// whether it counts as redelivered).
    pub fn requeue(&mut self, entry: Entry) {
        self.bytes += entry.msg.body_size();
        match self.fresh.front() {
            Some(first) if first.seq() < entry.seq => {
                // Only possible for a message that never left (not delivered);
                // keep FIFO order by inserting in place.
                let at = self.fresh.partition_point(|e| e.seq() < entry.seq);
                self.fresh.insert(at, Slot::Mem(entry));
            }
            _ => {
                self.requeued.insert(entry.seq, entry);
            }
        }
    }

    pub fn pop(&mut self) -> Option<Slot> {
        let s = match self.requeued.pop_first() {
            Some((_, e)) => Some(Slot::Mem(e)),
            None => self.fresh.pop_front(),
        }?;
        self.bytes -= s.mem_bytes();
        Some(s)
    }

    /// Drop every ready message, returning their positions.
    pub fn drain_seqs(&mut self) -> Vec<u64> {
        let seqs = self
            .requeued
            .keys()
            .copied()
            .chain(self.fresh.iter().map(|s| s.seq()))
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

    fn mem(s: Option<Slot>) -> Entry {
        match s {
            Some(Slot::Mem(e)) => e,
            other => panic!("expected an in-memory entry, got {other:?}"),
        }
    }

    #[test]
    fn requeued_messages_come_back_at_their_original_position() {
        let mut r = ReadyList::default();
        for s in 1..=5 {
            r.push(entry(s));
        }
        let a = mem(r.pop());
        let _b = mem(r.pop());
        let c = mem(r.pop());
        for mut e in [c, a] {
            e.redelivered = true;
            r.requeue(e);
        }
        let order: Vec<(u64, bool)> = std::iter::from_fn(|| r.pop())
            .map(|s| {
                let e = mem(Some(s));
                (e.seq, e.redelivered)
            })
            .collect();
        assert_eq!(order, vec![(1, true), (3, true), (4, false), (5, false)]);
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn paged_messages_keep_their_place_and_cost_no_body_bytes() {
        let mut r = ReadyList::default();
        r.push(entry(3));
        r.push_paged(Paged {
            seq: 4,
            loc: Location::default(),
            redelivered: false,
        });
        r.push(entry(5));
        assert_eq!(r.bytes(), 8);
        assert!(matches!(r.pop(), Some(Slot::Mem(_))));
        assert!(matches!(r.pop(), Some(Slot::Disk(Paged { seq: 4, .. }))));
        assert_eq!(r.drain_seqs(), vec![5]);
        assert_eq!(r.bytes(), 0);
    }
}
