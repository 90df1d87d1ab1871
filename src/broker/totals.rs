//! Broker-wide totals that outlive what they count: connections, channels
//! and queues opened and closed, and the counters of channels closed and
//! queues deleted, folded in as they go, so that totals summed over the
//! live ones plus these never go backwards (Prometheus counters). Touched
//! when objects come and go, never per message.

use super::connections::{ChannelStats, ConnectionInfo, PublishTotals};
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
    pub sockets: SocketTotals,
}

/// Bytes and socket reads/writes of closed connections.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SocketTotals {
    pub recv_oct: u64,
    pub send_oct: u64,
    pub recv_cnt: u64,
    pub send_cnt: u64,
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

    /// A connection is gone: count it, its channels, and its socket's
    /// traffic (bytes its writer still sends after this are not counted).
    pub(crate) fn connection_closed(&self, c: &ConnectionInfo) {
        for ch in c.take_channels() {
            self.channel_closed(&ch);
        }
        Totals::bump(&self.connections_closed);
        let s = &c.stats;
        let mut r = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        r.sockets.recv_oct += s.recv_oct.get();
        r.sockets.send_oct += s.send_oct.get();
        r.sockets.recv_cnt += s.recv_cnt.get();
        r.sockets.send_cnt += s.send_cnt.get();
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
