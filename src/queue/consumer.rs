//! What a queue knows of a consumer: its prefetch credit and the sink into
//! its connection's inbox. The queue never blocks on a consumer: the inbox
//! is unbounded, and a consumer whose connection has too much unwritten
//! counts as busy until it drains.

use super::Queue;
use super::inbox::Sink;
use super::ready::Entry;
use amq_protocol::types::ShortString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Prefetch accounting: how many deliveries are unacknowledged against a limit
/// (0 = unlimited). Shared between queues when it is a channel's global limit.
#[derive(Debug, Default)]
pub struct Credit {
    limit: AtomicU32,
    used: AtomicU32,
}

impl Credit {
    pub fn new(limit: u16) -> Self {
        Credit {
            limit: AtomicU32::new(limit as u32),
            used: AtomicU32::new(0),
        }
    }

    pub fn set_limit(&self, limit: u16) {
        self.limit.store(limit as u32, Ordering::Relaxed);
    }

    /// The limit (0 is unlimited).
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Whether a limit is set (0 is unlimited).
    pub fn is_limited(&self) -> bool {
        self.limit.load(Ordering::Relaxed) != 0
    }

    pub fn try_take(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == 0 {
            self.used.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |u| {
                (u < limit).then_some(u + 1)
            })
            .is_ok()
    }

    pub fn give_back(&self, n: u32) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// Per-delivery overhead counted against the watermark (frames, bookkeeping).
pub const DELIVERY_OVERHEAD: usize = 96;

/// A message on its way to a consumer's connection. For a consumer that
/// acknowledges, `entry` is a copy: the queue keeps the message checked out
/// until it is settled.
pub struct Delivery {
    pub consumer: Arc<ConsumerHandle>,
    pub queue: Arc<Queue>,
    pub entry: Entry,
    /// The queue's consumer acknowledgement timeout, ms, if it sets one.
    pub ack_timeout: Option<u64>,
}

pub struct ConsumerHandle {
    pub tag: ShortString,
    /// Its connection's id and channel number.
    pub connection: u64,
    pub channel: u16,
    pub no_ack: bool,
    pub exclusive: bool,
    /// x-priority: higher-priority consumers get messages first.
    pub priority: i32,
    /// Its Basic.Consume arguments, as given.
    pub arguments: amq_protocol::types::FieldTable,
    pub credit: Arc<Credit>,
    pub channel_credit: Arc<Credit>,
    pub sink: Sink,
    /// Its channel let it go (Basic.Cancel, the queue deleted, the channel
    /// closed): deliveries still in flight to it go back to the queue. Set
    /// and read by its connection only, so a delivery is checked without a
    /// lookup by tag.
    pub cancelled: AtomicBool,
}

impl ConsumerHandle {
    /// Its channel let it go.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Take one unit of every credit this consumer draws on, or none.
    pub(super) fn try_take(&self) -> bool {
        if self.sink.busy() {
            return false;
        }
        if self.no_ack {
            return true;
        }
        if !self.credit.try_take() {
            return false;
        }
        if !self.channel_credit.try_take() {
            self.credit.give_back(1);
            return false;
        }
        true
    }

    pub(super) fn give_back(&self) {
        if !self.no_ack {
            self.credit.give_back(1);
            self.channel_credit.give_back(1);
        }
    }
}
