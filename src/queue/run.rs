//! Runs of paged messages: the compact form of a backlog on disk.

use super::ready::Paged;

/// Paged messages that follow each other in the queue and in one segment
/// of one log, none of them expiring or delivered before: read back in
/// order, so a backlog costs one of these per run instead of a slot per
/// message. Records in its span that are not its messages' (acks, messages
/// acked before a restart) are skipped when read: the log knows which of
/// its messages are live.
#[derive(Debug)]
pub struct Run {
    /// Sequence numbers of its first unread and its last message.
    pub first: u64,
    pub last: u64,
    pub segment: u32,
    /// Where its next record starts, and where its last one ends.
    pub next: u64,
    pub end: u64,
    pub count: usize,
    /// Record bytes of its messages, as `Location::len` counts them.
    pub bytes: usize,
    pub scratch: bool,
    pub redelivered: bool,
}

impl Run {
    /// Only a message that will not expire and never came back can be in
    /// a run: its reader knows nothing of either.
    fn plain(p: &Paged) -> bool {
        p.expires == 0 && p.returns == 0
    }

    pub(super) fn of(p: &Paged) -> Option<Run> {
        Run::plain(p).then(|| Run {
            first: p.seq,
            last: p.seq,
            segment: p.loc.segment,
            next: p.loc.offset,
            end: p.loc.offset + p.loc.len as u64,
            count: 1,
            bytes: p.loc.len as usize,
            scratch: p.scratch,
            redelivered: p.redelivered,
        })
    }

    /// Take `p` in at the end, if it continues this run.
    pub(super) fn extend(&mut self, p: &Paged) -> bool {
        let fits = Run::plain(p)
            && p.scratch == self.scratch
            && p.redelivered == self.redelivered
            && p.loc.segment == self.segment
            && p.loc.offset >= self.end
            && p.seq > self.last;
        if fits {
            self.last = p.seq;
            self.end = p.loc.offset + p.loc.len as u64;
            self.count += 1;
            self.bytes += p.loc.len as usize;
        }
        fits
    }
}
