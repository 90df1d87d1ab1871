//! Broker-wide totals that outlive what they count: connections, channels
//! and queues opened and closed, and the counters of channels closed and
//! queues deleted, folded in as they go, so that totals summed over the
//! live ones plus these never go backwards (Prometheus counters). Touched
//! when objects come and go, never per message.

use super::connections::{ChannelStats, PublishTotals};
use crate::queue::stats::Counters;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub(crate) struct Totals {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub channels_opened: AtomicU64,
    pub channels_closed: AtomicU64,
    /// Queue.Declare (passive or not) and HTTP declares that succeeded.
    pub queues_declared: AtomicU64,
    pub queues_created: AtomicU64,
    pub queues_deleted: AtomicU64,
    retired: Mutex<Retired>,
}

/// What closed channels and deleted queues had counted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Retired {
    pub publish: PublishTotals,
    pub queues: Counters,
}

impl Totals {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub(crate) fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    /// A channel is gone: count it and keep what it counted.
    pub(crate) fn channel_closed(&self, ch: &ChannelStats) {
        Totals::bump(&self.channels_closed);
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .publish
            .add(&ch.publish.totals());
    }

    /// A queue is gone: count it and keep what it counted.
    pub(crate) fn queue_deleted(&self, c: &Counters) {
        Totals::bump(&self.queues_deleted);
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .queues
            .add(c);
    }

    pub(crate) fn retired(&self) -> Retired {
        *self.retired.lock().unwrap_or_else(|p| p.into_inner())
    }
}
