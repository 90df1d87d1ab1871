//! Which messages of a queue log are still live, and in which segment: one
//! bit per sequence number from the first message a segment holds. A queue
//! appends in sequence order, so each segment covers one range of sequence
//! numbers and the segment of a message is found by its number alone. A
//! backlog of a million messages costs ~128 KiB here instead of a hash map
//! entry (~35 bytes) per message. A segment's numbers may be sparse (a
//! durable queue that takes mostly transient messages logs few of them), so
//! a long gap starts a new range, and a range whose messages are all settled
//! is dropped: the bits never outgrow what is live by much.

use std::collections::BTreeMap;

struct Bits {
    segment: u32,
    words: Vec<u64>,
    /// Its bits that are set.
    live: u32,
}

/// Numbers without a message that a range spans before a new one starts.
const MAX_GAP: u64 = 64 * 64;

#[derive(Default)]
pub(crate) struct LiveSet {
    /// Keyed by the first sequence number each holds; a segment has one or
    /// more, in order.
    ranges: BTreeMap<u64, Bits>,
    /// Live messages per segment, every segment of the log included (those
    /// holding only acks too): segments go oldest first once at zero.
    per_segment: BTreeMap<u32, usize>,
    total: usize,
}

impl LiveSet {
    /// A segment now exists (possibly to hold no message at all).
    pub(crate) fn open_segment(&mut self, segment: u32) {
        self.per_segment.entry(segment).or_default();
    }

    /// `seq`, the highest so far, was written to `segment`.
    pub(crate) fn insert(&mut self, seq: u64, segment: u32) {
        let bits = match self.ranges.iter_mut().next_back() {
            Some((&first, b))
                if b.segment == segment
                    && first <= seq
                    && seq - first < b.words.len() as u64 * 64 + MAX_GAP =>
            {
                let i = (seq - first) as usize;
                if b.words.len() <= i / 64 {
                    b.words.resize(i / 64 + 1, 0);
                }
                if b.words[i / 64] & (1 << (i % 64)) != 0 {
                    return; // already live: numbers are written once
                }
                b.words[i / 64] |= 1 << (i % 64);
                b.live += 1;
                None
            }
            _ => Some(seq),
        };
        if let Some(first) = bits {
            self.ranges.insert(
                first,
                Bits {
                    segment,
                    words: vec![1],
                    live: 1,
                },
            );
        }
        *self.per_segment.entry(segment).or_default() += 1;
        self.total += 1;
    }

    fn locate(&self, seq: u64) -> Option<(u64, &Bits)> {
        let (&first, b) = self.ranges.range(..=seq).next_back()?;
        let i = (seq - first) as usize;
        let word = b.words.get(i / 64)?;
        (word & (1 << (i % 64)) != 0).then_some((first, b))
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.locate(seq).is_some()
    }

    /// `seq` is settled; the segment it was in, if it was live.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<u32> {
        let (first, segment) = self.locate(seq).map(|(f, b)| (f, b.segment))?;
        let i = (seq - first) as usize;
        if let Some(b) = self.ranges.get_mut(&first) {
            b.words[i / 64] &= !(1 << (i % 64));
            b.live -= 1;
            if b.live == 0 {
                self.ranges.remove(&first);
            }
        }
        if let Some(n) = self.per_segment.get_mut(&segment) {
            *n = n.saturating_sub(1);
        }
        self.total -= 1;
        Some(segment)
    }

    pub(crate) fn len(&self) -> usize {
        self.total
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The oldest segment and how many live messages it holds.
    pub(crate) fn oldest(&self) -> Option<(u32, usize)> {
        self.per_segment.iter().next().map(|(&s, &n)| (s, n))
    }

    /// Forget a segment that holds no live message any more.
    pub(crate) fn drop_segment(&mut self, segment: u32) {
        self.per_segment.remove(&segment);
        self.ranges.retain(|_, b| b.segment != segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_found_in_their_segment_until_settled() {
        let mut l = LiveSet::default();
        l.open_segment(1);
        for seq in [3, 4, 70, 200] {
            l.insert(seq, 1);
        }
        l.open_segment(2);
        for seq in [201, 205] {
            l.insert(seq, 2);
        }
        assert!(l.contains(70) && l.contains(205));
        assert!(!l.contains(5) && !l.contains(202) && !l.contains(1000) && !l.contains(0));
        assert_eq!(l.remove(70), Some(1));
        assert_eq!(l.remove(70), None);
        assert_eq!(l.remove(202), None);
        for seq in [3, 4, 200] {
            assert_eq!(l.remove(seq), Some(1));
        }
        assert_eq!(l.oldest(), Some((1, 0)));
        l.drop_segment(1);
        assert_eq!(l.oldest(), Some((2, 2)));
        assert!(!l.is_empty());
        l.remove(201);
        l.remove(205);
        assert!(l.is_empty());
    }

    #[test]
    fn sparse_numbers_cost_ranges_not_bits() {
        let mut l = LiveSet::default();
        // One logged message in every million numbers (the rest transient).
        for k in 0..100u64 {
            l.insert(k * 1_000_000, 1);
        }
        let words: usize = l.ranges.values().map(|b| b.words.len()).sum();
        assert!(words <= 100, "{words} words for 100 messages");
        assert!(l.contains(42_000_000) && !l.contains(42_000_001));
        for k in 0..100u64 {
            assert_eq!(l.remove(k * 1_000_000), Some(1));
        }
        assert!(l.ranges.is_empty(), "settled ranges are dropped");
        assert!(l.is_empty());
    }

    #[test]
    fn a_segment_emptied_and_written_again_starts_a_new_range() {
        let mut l = LiveSet::default();
        l.insert(10, 1);
        l.remove(10);
        l.insert(11, 1);
        l.insert(500, 1);
        assert!(l.contains(11) && l.contains(500) && !l.contains(10));
        assert_eq!(l.oldest(), Some((1, 2)));
    }
}
