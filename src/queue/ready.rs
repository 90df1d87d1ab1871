//! The ready list: messages waiting for a consumer, in queue order.
//! Requeued messages go back to their original position (RabbitMQ does the
//! same), which is always ahead of every message never delivered, so they
//! live in a small ordered map in front of the plain FIFO. Messages of a long
//! backlog may be paged: only their place in the queue's log is kept here.

pub(crate) use super::run::Run;
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
    /// When it expires, in ms since the Unix epoch (0: never).
    pub expires: u64,
    /// How often it was delivered and came back (x-delivery-count).
    pub returns: u32,
}

/// A message whose body lives only in the queue's log.
#[derive(Clone, Copy, Debug)]
pub struct Paged {
    pub seq: u64,
    pub loc: Location,
    pub redelivered: bool,
    /// In the queue's scratch log (a transient message paged out), not its
    /// durable one.
    pub scratch: bool,
    pub expires: u64,
    /// Times it came back before (recovered from the log).
    pub returns: u32,
}

#[derive(Debug)]
pub enum Slot {
    Mem(Entry),
    Disk(Paged),
    Run(Box<Run>),
    /// Removed from the middle (expired); skipped when reached.
    Gone(u64),
}

/// Make `p` part of the run that `back` is, or starts with it.
fn join_run(back: Option<&mut Slot>, p: &Paged) -> bool {
    match back {
        Some(Slot::Run(r)) => r.extend(p),
        Some(back @ Slot::Disk(_)) => {
            let Slot::Disk(q) = back else { return false };
            let Some(mut r) = Run::of(q) else {
                return false;
            };
            let joined = r.extend(p);
            if joined {
                *back = Slot::Run(Box::new(r));
            }
            joined
        }
        _ => false,
    }
}

impl Slot {
    fn first_seq(&self) -> u64 {
        match self {
            Slot::Mem(e) => e.seq,
            Slot::Disk(p) => p.seq,
            Slot::Run(r) => r.first,
            Slot::Gone(seq) => *seq,
        }
    }

    fn last_seq(&self) -> u64 {
        match self {
            Slot::Run(r) => r.last,
            s => s.first_seq(),
        }
    }

    /// How many ready messages it stands for.
    fn count(&self) -> usize {
        match self {
            Slot::Mem(_) | Slot::Disk(_) => 1,
            Slot::Run(r) => r.count,
            Slot::Gone(_) => 0,
        }
    }

    pub fn body_size(&self) -> usize {
        match self {
            Slot::Mem(e) => e.msg.body_size(),
            Slot::Disk(p) => p.loc.len as usize,
            Slot::Run(r) => r.bytes,
            Slot::Gone(_) => 0,
        }
    }

    fn mem_bytes(&self) -> usize {
        match self {
            Slot::Mem(e) => e.msg.body_size(),
            _ => 0,
        }
    }

    fn in_memory(&self) -> usize {
        matches!(self, Slot::Mem(_)) as usize
    }
}

#[derive(Default)]
pub struct ReadyList {
    requeued: BTreeMap<u64, Entry>,
    /// In seq order; may hold tombstones.
    fresh: VecDeque<Slot>,
    tombstones: usize,
    /// Messages in `fresh` (a run counts each of its messages).
    fresh_len: usize,
    /// Messages and their body bytes held in memory.
    in_memory: usize,
    bytes: usize,
    /// Body bytes of every ready message, paged ones included (max-length-bytes).
    total: usize,
}

impl ReadyList {
    pub fn len(&self) -> usize {
        self.requeued.len() + self.fresh_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take a ready message out of the middle of the queue (it expired).
    pub fn remove(&mut self, seq: u64) -> Option<Slot> {
        if let Some(e) = self.requeued.remove(&seq) {
            self.in_memory -= 1;
            self.bytes -= e.msg.body_size();
            self.total -= e.msg.body_size();
            return Some(Slot::Mem(e));
        }
        let at = self.fresh.partition_point(|s| s.last_seq() < seq);
        match self.fresh.get_mut(at) {
            Some(slot)
                if slot.first_seq() == seq && matches!(slot, Slot::Mem(_) | Slot::Disk(_)) =>
            {
                let s = std::mem::replace(slot, Slot::Gone(seq));
                self.tombstones += 1;
                self.fresh_len -= 1;
                self.in_memory -= s.in_memory();
                self.bytes -= s.mem_bytes();
                self.total -= s.body_size();
                self.trim_front();
                Some(s)
            }
            _ => None,
        }
    }

    fn trim_front(&mut self) {
        while let Some(Slot::Gone(_)) = self.fresh.front() {
            self.fresh.pop_front();
            self.tombstones -= 1;
        }
    }

    /// Body bytes of the ready messages held in memory.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Ready messages held in memory (not paged).
    pub fn in_memory(&self) -> usize {
        self.in_memory
    }

    /// Body bytes of all ready messages.
    pub fn total_bytes(&self) -> usize {
        self.total
    }

    pub fn push(&mut self, entry: Entry) {
        self.in_memory += 1;
        self.bytes += entry.msg.body_size();
        self.total += entry.msg.body_size();
        self.fresh_len += 1;
        self.fresh.push_back(Slot::Mem(entry));
    }

    /// A paged message at the end; with `merge`, it joins the run of paged
    /// messages before it where it can.
    pub fn push_paged(&mut self, p: Paged, merge: bool) {
        self.total += p.loc.len as usize;
        self.fresh_len += 1;
        if merge && join_run(self.fresh.back_mut(), &p) {
            return;
        }
        self.fresh.push_back(Slot::Disk(p));
    }

    /// What is left of a run taken with `pop` goes back in front.
    pub fn unpop_run(&mut self, r: Box<Run>) {
        self.total += r.bytes;
        self.fresh_len += r.count;
        self.fresh.push_front(Slot::Run(r));
    }

    /// Put a message back at its original position (the caller decides
    /// whether it counts as redelivered).
    pub fn requeue(&mut self, entry: Entry) {
        self.in_memory += 1;
        self.bytes += entry.msg.body_size();
        self.total += entry.msg.body_size();
        let at = match self.fresh.front() {
            // Only possible for a message that never left (not delivered);
            // keep FIFO order by inserting in place.
            Some(first) if first.first_seq() < entry.seq => {
                Some(self.fresh.partition_point(|e| e.last_seq() < entry.seq))
            }
            _ => None,
        };
        match at {
            Some(at)
                if self
                    .fresh
                    .get(at)
                    .is_none_or(|s| s.first_seq() >= entry.seq) =>
            {
                self.fresh_len += 1;
                self.fresh.insert(at, Slot::Mem(entry));
            }
            _ => {
                self.requeued.insert(entry.seq, entry);
            }
        }
    }

    /// The first ready message; a run comes whole (its reader gives back
    /// what it did not read with `unpop_run`).
    pub fn pop(&mut self) -> Option<Slot> {
        let s = match self.requeued.pop_first() {
            Some((_, e)) => Some(Slot::Mem(e)),
            None => {
                let s = self.fresh.pop_front();
                self.fresh_len -= s.as_ref().map_or(0, Slot::count);
                self.trim_front();
                s
            }
        }?;
        self.in_memory -= s.in_memory();
        self.bytes -= s.mem_bytes();
        self.total -= s.body_size();
        Some(s)
    }

    /// Drop every ready message, returning their positions as inclusive
    /// ranges (a run's span may hold numbers that are not its messages':
    /// those were settled already).
    pub fn drain_seqs(&mut self) -> Vec<(u64, u64)> {
        let seqs = self
            .requeued
            .keys()
            .map(|&s| (s, s))
            .chain(
                self.fresh
                    .iter()
                    .filter(|s| !matches!(s, Slot::Gone(_)))
                    .map(|s| (s.first_seq(), s.last_seq())),
            )
            .collect();
        self.clear();
        seqs
    }

    /// Drop every ready message, returning how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.len();
        self.requeued.clear();
        self.fresh.clear();
        self.tombstones = 0;
        self.fresh_len = 0;
        self.in_memory = 0;
        self.bytes = 0;
        self.total = 0;
        n
    }
}

/// The ready messages of a queue: one `ReadyList` per priority level
/// (x-max-priority), a single level for ordinary queues. Higher levels go
/// first; order within a level is FIFO with requeue-in-place.
pub struct Levels {
    levels: Vec<ReadyList>,
}

impl Default for Levels {
    fn default() -> Self {
        Levels::new(None)
    }
}

impl Levels {
    pub fn new(max_priority: Option<u8>) -> Self {
        let n = max_priority.map_or(1, |m| m as usize + 1);
        Levels {
            levels: (0..n).map(|_| ReadyList::default()).collect(),
        }
    }

    /// A message's level: its priority capped at the queue's maximum.
    pub fn level_of(&self, priority: Option<u8>) -> usize {
        (priority.unwrap_or(0) as usize).min(self.levels.len() - 1)
    }

    fn level_for(&self, msg: &Message) -> usize {
        if self.levels.len() == 1 {
            0
        } else {
            self.level_of(*msg.properties.priority())
        }
    }

    pub fn len(&self) -> usize {
        match self.levels.as_slice() {
            [only] => only.len(),
            levels => levels.iter().map(ReadyList::len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self.levels.as_slice() {
            [only] => only.is_empty(),
            levels => levels.iter().all(ReadyList::is_empty),
        }
    }

    /// (messages, body bytes) of the ready ones held in memory.
    pub fn in_memory(&self) -> (usize, usize) {
        match self.levels.as_slice() {
            [only] => (only.in_memory(), only.bytes()),
            levels => levels
                .iter()
                .fold((0, 0), |(n, b), l| (n + l.in_memory(), b + l.bytes())),
        }
    }

    pub fn total_bytes(&self) -> usize {
        self.levels.iter().map(ReadyList::total_bytes).sum()
    }

    pub fn push(&mut self, e: Entry) {
        let l = self.level_for(&e.msg);
        self.levels[l].push(e);
    }

    /// Runs only form in queues of one level: the log interleaves the
    /// levels' messages, and a run's reader takes every live one in its span.
    pub fn push_paged(&mut self, p: Paged, level: usize) {
        let merge = self.levels.len() == 1;
        self.levels[level].push_paged(p, merge);
    }

    pub fn unpop_run(&mut self, r: Box<Run>) {
        self.levels[0].unpop_run(r);
    }

    pub fn requeue(&mut self, e: Entry) {
        let l = self.level_for(&e.msg);
        self.levels[l].requeue(e);
    }

    pub fn pop(&mut self) -> Option<Slot> {
        match self.levels.as_mut_slice() {
            [only] => only.pop(),
            levels => levels.iter_mut().rev().find_map(ReadyList::pop),
        }
    }

    pub fn remove(&mut self, seq: u64) -> Option<Slot> {
        self.levels.iter_mut().find_map(|l| l.remove(seq))
    }

    pub fn drain_seqs(&mut self) -> Vec<(u64, u64)> {
        self.levels
            .iter_mut()
            .flat_map(ReadyList::drain_seqs)
            .collect()
    }

    pub fn clear(&mut self) -> usize {
        self.levels.iter_mut().map(ReadyList::clear).sum()
    }

    /// Slots held, a run counting once.
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.levels
            .iter()
            .map(|l| l.requeued.len() + l.fresh.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            msg: Arc::new(Message::new(
                "".into(),
                "".into(),
                Default::default(),
                Bytes::new(),
                Bytes::from(vec![0u8; seq as usize]),
                crate::message::Meter::new(),
            )),
            redelivered: false,
            expires: 0,
            returns: 0,
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
        r.push_paged(
            Paged {
                seq: 4,
                loc: Location::default(),
                redelivered: false,
                scratch: false,
                expires: 0,
                returns: 0,
            },
            true,
        );
        r.push(entry(5));
        assert_eq!(r.bytes(), 8);
        assert!(matches!(r.pop(), Some(Slot::Mem(_))));
        assert!(matches!(r.pop(), Some(Slot::Disk(Paged { seq: 4, .. }))));
        assert_eq!(r.drain_seqs(), vec![(5, 5)]);
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn removal_from_the_middle_leaves_order_and_counts_right() {
        let mut r = ReadyList::default();
        for s in 1..=5 {
            r.push(entry(s));
        }
        assert!(r.remove(3).is_some());
        assert!(r.remove(3).is_none());
        assert!(r.remove(1).is_some());
        assert_eq!(r.len(), 3);
        assert_eq!(r.bytes(), 2 + 4 + 5, "entry(s) has an s-byte body");
        let order: Vec<u64> = std::iter::from_fn(|| r.pop())
            .map(|s| s.first_seq())
            .collect();
        assert_eq!(order, vec![2, 4, 5]);
        assert!(r.is_empty());
    }
}
