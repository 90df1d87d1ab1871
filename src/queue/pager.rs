//! Paging: a queue keeps a bounded window of ready message bodies in memory
//! and only the place of the rest. Persistent messages of a durable queue
//! are in its log already; every other message past the window is written
//! to a scratch log of the queue's own (not fsynced, discarded at restart)
//! and read back when its turn comes.

use super::args::QueueArgs;
use super::ready::Levels;
use crate::message::{Message, Meter};
use crate::store::queue_log::{Location, Next, QueueLog};
use std::io;
use std::path::PathBuf;

/// Ready message bytes (bodies plus their overhead) a queue holds in memory
/// unless its arguments say otherwise; past this, new messages are paged.
pub(crate) const DEFAULT_WINDOW_BYTES: usize = 8 * 1024 * 1024;
/// What an in-memory message costs besides its body (properties, header, Arc).
pub(crate) const MESSAGE_OVERHEAD: usize = 256;

pub(crate) struct Pager {
    dir: PathBuf,
    meter: Meter,
    /// Opened at the first message paged out.
    log: Option<Box<QueueLog>>,
}

impl Pager {
    /// Page into `dir` (created when first needed); `meter` is the broker's,
    /// whose paging signal makes every new message go to disk.
    pub(crate) fn new(dir: PathBuf, meter: Meter) -> Pager {
        Pager {
            dir,
            meter,
            log: None,
        }
    }

    pub(crate) fn meter(&self) -> Meter {
        self.meter
    }

    /// Write a message out; where to read it back.
    pub(crate) fn page_out(
        &mut self,
        seq: u64,
        expires: u64,
        msg: &Message,
    ) -> io::Result<Location> {
        let log = match &mut self.log {
            Some(log) => log,
            None => self
                .log
                .insert(Box::new(QueueLog::scratch(&self.dir, self.meter)?)),
        };
        log.append(seq, expires, msg).map(|(_, loc)| loc)
    }

    /// Read a paged message back; it leaves the scratch log.
    pub(crate) fn page_in(&mut self, seq: u64, loc: Location) -> io::Result<Message> {
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| io::Error::other("nothing was paged out"))?;
        let msg = log.read(loc);
        log.ack([seq]);
        msg
    }

    /// The next message of a run of paged ones; it leaves the scratch log.
    pub(crate) fn read_next(
        &mut self,
        segment: u32,
        offset: u64,
        end: u64,
        share: bool,
    ) -> io::Result<Option<Next>> {
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| io::Error::other("nothing was paged out"))?;
        let next = log.read_next(segment, offset, end, share)?;
        if let Some(n) = &next {
            log.ack([n.seq]);
        }
        Ok(next)
    }

    /// These messages left the queue without being read back.
    pub(crate) fn forget(&mut self, seqs: impl IntoIterator<Item = u64>) {
        if let Some(log) = self.log.as_mut() {
            log.ack(seqs);
        }
    }

    /// The queue is gone: so are its paged messages.
    pub(crate) fn destroy(self) {
        if let Some(log) = self.log {
            log.destroy();
        }
    }
}

/// Whether a new ready message has to wait on disk: the queue's memory
/// window is full (or memory is short broker-wide).
pub(crate) fn window_full(args: &QueueArgs, ready: &Levels, meter: Option<Meter>) -> bool {
    if meter.is_some_and(|m| m.paging()) {
        return true;
    }
    let (count, bytes) = ready.in_memory();
    if args.max_in_memory_length.is_some_and(|n| count >= n) {
        return true;
    }
    match args.max_in_memory_bytes {
        Some(n) => bytes >= n,
        None => bytes + count * MESSAGE_OVERHEAD >= DEFAULT_WINDOW_BYTES,
    }
}
