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
    /// What closed channels had counted, by their vhost (a vhost's
    /// message_stats).
    retired_by_vhost: Mutex<std::collections::HashMap<String, PublishTotals>>,
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

    /// A channel of a connection to `vhost` is gone: count it and keep
    /// what it counted.
    pub(crate) fn channel_closed(&self, ch: &ChannelStats, vhost: &str) {
        Totals::bump(&self.channels_closed);
        let counted = ch.publish.totals();
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .publish
            .add(&counted);
        self.retired_by_vhost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(vhost.to_string())
            .or_default()
            .add(&counted);
    }

    /// What the closed channels of `vhost` had counted.
    pub(crate) fn retired_in(&self, vhost: &str) -> PublishTotals {
        let by_vhost = self.retired_by_vhost.lock();
        let by_vhost = by_vhost.unwrap_or_else(|p| p.into_inner());
        by_vhost.get(vhost).copied().unwrap_or_default()
    }

    /// A deleted vhost's counts go with it.
    pub(crate) fn forget_vhost(&self, vhost: &str) {
        self.retired_by_vhost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(vhost);
    }

    /// A connection is gone: count it, its channels, and its socket's
    /// traffic (bytes its writer still sends after this are not counted).
    pub(crate) fn connection_closed(&self, c: &ConnectionInfo) {
        for ch in c.take_channels() {
            self.channel_closed(&ch, &c.vhost);
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

impl super::Broker {
    /// Publish counters of the open and closed channels of every vhost, in
    /// one pass over the connections (the sampler's).
    pub(crate) fn publish_totals_by_vhost(
        &self,
    ) -> std::collections::HashMap<String, PublishTotals> {
        let mut out = self
            .totals
            .retired_by_vhost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for c in self.connections.list() {
            let t = out.entry(c.vhost.clone()).or_default();
            for ch in c.channel_list() {
                t.add(&ch.publish.totals());
            }
        }
        out
    }

    /// Publish counters of the open and closed channels of `vhost`.
    pub(crate) fn publish_totals_in(&self, vhost: &str) -> PublishTotals {
        let mut t = self.totals.retired_in(vhost);
        for c in self.connections.list() {
            if c.vhost == vhost {
                for ch in c.channel_list() {
                    t.add(&ch.publish.totals());
                }
            }
        }
        t
    }
}

/// Rates of the publish counters RabbitMQ shows in a vhost's message_stats
/// (the sampler's).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PublishRates {
    pub confirm: crate::stats::Rate,
    pub return_unroutable: crate::stats::Rate,
    pub drop_unroutable: crate::stats::Rate,
}

impl PublishRates {
    pub(crate) fn sample(&mut self, now_ms: u64, t: &PublishTotals) {
        self.confirm.sample(now_ms, t.confirmed);
        self.return_unroutable.sample(now_ms, t.returned);
        self.drop_unroutable.sample(now_ms, t.dropped);
    }
}
