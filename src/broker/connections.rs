//! The broker's registry of open connections: who and where they are, for
//! the management API (and, later, ctl), and a way to close one.

use crate::queue::inbox::{InboxEvent, Sink};
use crate::stats::{Counter, Rate};
use amq_protocol::types::FieldTable;
use dashmap::DashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// What is known of an open connection once its handshake is done.
pub struct ConnectionInfo {
    pub id: u64,
    /// RabbitMQ's name for it: "PEER -> LOCAL".
    pub name: String,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub user: String,
    pub vhost: String,
    pub auth_mechanism: String,
    /// Over TLS (the management API's `ssl`).
    pub tls: bool,
    pub client_properties: FieldTable,
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
    /// ms since the epoch.
    pub connected_at: u64,
    /// The connection task's inbox, through which it is told to close.
    pub(crate) inbox: Sink,
    pub(crate) stats: ConnectionStats,
    /// Its open channels, as the management API shows them (changed only
    /// when a channel opens or closes).
    pub(crate) channels: Mutex<Vec<Arc<ChannelStats>>>,
}

/// What the management API shows of a channel. Each field has one writer,
/// the channel's connection task, which stores it where it changes.
#[derive(Debug)]
pub(crate) struct ChannelStats {
    pub number: u16,
    /// Deliveries not yet acknowledged (kept by the channel's unacked list).
    pub unacked: Arc<AtomicU32>,
    pub consumers: AtomicU32,
    /// basic.qos for consumers created later (global=false).
    pub prefetch: AtomicU32,
    /// The channel-wide (global=true) prefetch credit.
    pub global: Arc<crate::queue::consumer::Credit>,
    pub confirm: std::sync::atomic::AtomicBool,
    pub transactional: std::sync::atomic::AtomicBool,
    pub publish: PublishCounters,
}

/// What a channel's publishes came to (RabbitMQ's channel and global
/// counters). Single-writer [`Counter`]s, bumped by the channel's task: a
/// load and a store each, no lock, nothing allocated.
#[derive(Debug, Default)]
pub(crate) struct PublishCounters {
    /// Complete messages that reached an exchange.
    pub published: Counter,
    /// Routed to a queue (or held by a delayed exchange).
    pub routed: Counter,
    /// Unroutable and mandatory: returned.
    pub returned: Counter,
    /// Unroutable and not mandatory: dropped.
    pub dropped: Counter,
    /// Published in confirm mode.
    pub received_confirm: Counter,
    /// Basic.Ack'ed to the publisher.
    pub confirmed: Counter,
    /// Basic.Nack'ed to the publisher (with `confirmed`, what is no longer
    /// unconfirmed).
    pub nacked: Counter,
    /// Body sizes published, by [`SIZE_BUCKETS`] (the last: larger).
    pub sizes: [Counter; SIZE_BUCKETS.len() + 1],
    pub size_sum: Counter,
}

/// Upper bounds of RabbitMQ 4.1's message size histogram, bytes.
pub(crate) const SIZE_BUCKETS: [u64; 8] = [
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
];

/// [`PublishCounters`] read at one moment, or summed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PublishTotals {
    pub published: u64,
    pub routed: u64,
    pub returned: u64,
    pub dropped: u64,
    pub received_confirm: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub sizes: [u64; SIZE_BUCKETS.len() + 1],
    pub size_sum: u64,
}

impl PublishCounters {
    /// A message of `size` body bytes was published.
    pub(crate) fn observe_size(&self, size: u64) {
        let i = SIZE_BUCKETS.partition_point(|&b| b < size);
        self.sizes[i].bump(1);
        self.size_sum.bump(size);
    }

    pub(crate) fn totals(&self) -> PublishTotals {
        PublishTotals {
            published: self.published.get(),
            routed: self.routed.get(),
            returned: self.returned.get(),
            dropped: self.dropped.get(),
            received_confirm: self.received_confirm.get(),
            confirmed: self.confirmed.get(),
            nacked: self.nacked.get(),
            sizes: std::array::from_fn(|i| self.sizes[i].get()),
            size_sum: self.size_sum.get(),
        }
    }
}

impl PublishTotals {
    pub(crate) fn add(&mut self, o: &PublishTotals) {
        self.published += o.published;
        self.routed += o.routed;
        self.returned += o.returned;
        self.dropped += o.dropped;
        self.received_confirm += o.received_confirm;
        self.confirmed += o.confirmed;
        self.nacked += o.nacked;
        for (s, o) in self.sizes.iter_mut().zip(o.sizes) {
            *s += o;
        }
        self.size_sum += o.size_sum;
    }
}

/// What a connection is doing, in RabbitMQ's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    Running = 0,
    /// Not read from: the memory alarm is on and it published.
    Blocked = 1,
    Closing = 2,
}

impl ConnState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Running => "running",
            ConnState::Blocked => "blocked",
            ConnState::Closing => "closing",
        }
    }
}

/// Socket counters (RabbitMQ's recv_oct, recv_cnt, send_oct, send_cnt):
/// the connection task writes the recv side and its state, the writer task
/// the send side, each the only writer of its counters.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStats {
    pub recv_oct: Counter,
    /// Socket reads.
    pub recv_cnt: Counter,
    pub send_oct: Counter,
    /// Socket writes.
    pub send_cnt: Counter,
    pub channels: AtomicU32,
    state: AtomicU8,
    /// recv_oct and send_oct rates, kept by the sampler.
    pub rates: Mutex<(Rate, Rate)>,
}

impl ConnectionStats {
    pub(crate) fn set_state(&self, s: ConnState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    pub fn state(&self) -> ConnState {
        match self.state.load(Ordering::Relaxed) {
            1 => ConnState::Blocked,
            2 => ConnState::Closing,
            _ => ConnState::Running,
        }
    }

    /// The sampler's turn.
    pub(crate) fn sample(&self, now_ms: u64) {
        let mut r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        r.0.sample(now_ms, self.recv_oct.get());
        r.1.sample(now_ms, self.send_oct.get());
    }
}

impl ConnectionInfo {
    /// The name RabbitMQ gives a connection: "PEER -> LOCAL", IPv4 peers of
    /// a dual-stack listener shown as IPv4.
    pub fn name_of(peer: SocketAddr, local: SocketAddr) -> String {
        let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        format!("{} -> {}", canon(peer), canon(local))
    }

    pub(crate) fn channel_opened(&self, c: Arc<ChannelStats>) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    /// The channel is gone; what it showed, to be retired into the totals.
    pub(crate) fn channel_closed(&self, number: u16) -> Option<Arc<ChannelStats>> {
        let mut chs = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let i = chs.iter().position(|c| c.number == number)?;
        Some(chs.swap_remove(i))
    }

    /// The connection is gone: every channel it still showed.
    pub(crate) fn take_channels(&self) -> Vec<Arc<ChannelStats>> {
        std::mem::take(&mut *self.channels.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn channel_list(&self) -> Vec<Arc<ChannelStats>> {
        let mut v = self
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        v.sort_by_key(|c| c.number);
        v
    }

    /// Ask the connection to close with 320 CONNECTION_FORCED and `reason`.
    pub fn close(&self, reason: &str) {
        let _ = self.inbox.send(InboxEvent::ForceClose(reason.to_string()));
    }
}

#[derive(Default)]
pub struct Connections {
    open: DashMap<u64, Arc<ConnectionInfo>>,
    /// Connections admitted (handshake passed Connection.Open) per vhost
    /// and per user, for `max-connections`; counted from admission, so two
    /// clients opening at once cannot both take the last place.
    admitted: Arc<Mutex<Admitted>>,
}

#[derive(Default)]
struct Admitted {
    per_vhost: std::collections::HashMap<String, u64>,
    per_user: std::collections::HashMap<String, u64>,
    /// By the port the connection came in on: per listener.
    per_listener: std::collections::HashMap<u16, u64>,
}

/// A place taken by an open connection; given back when dropped.
pub(crate) struct Admission {
    admitted: Arc<Mutex<Admitted>>,
    vhost: String,
    user: String,
    port: u16,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut guard = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        let a = &mut *guard;
        for (map, key) in [
            (&mut a.per_vhost, &self.vhost),
            (&mut a.per_user, &self.user),
        ] {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
        if let Some(n) = a.per_listener.get_mut(&self.port) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Where a connection comes in and what limits apply to it.
pub(crate) struct Arrival<'a> {
    pub vhost: &'a str,
    pub user: &'a str,
    /// The local port: which listener.
    pub port: u16,
    pub listener_limit: Option<u64>,
    pub vhost_limit: Option<u64>,
    pub user_limit: Option<u64>,
}

/// Which `max-connections` an admission would exceed.
pub(crate) enum OverLimit {
    Listener(u64),
    Vhost(u64),
    User(u64),
}

impl Connections {
    pub(crate) fn add(&self, c: Arc<ConnectionInfo>) {
        self.open.insert(c.id, c);
    }

    /// Take a place for a connection unless that would pass its listener's
    /// `connection_max`, its vhost's or its user's limit (checked in that
    /// order, as RabbitMQ does).
    pub(crate) fn admit(&self, a: &Arrival) -> Result<Admission, OverLimit> {
        let mut guard = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        let m = &mut *guard;
        let count =
            |m: &std::collections::HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        if let Some(l) = a.listener_limit
            && m.per_listener.get(&a.port).copied().unwrap_or(0) >= l
        {
            return Err(OverLimit::Listener(l));
        }
        if let Some(l) = a.vhost_limit
            && count(&m.per_vhost, a.vhost) >= l
        {
            return Err(OverLimit::Vhost(l));
        }
        if let Some(l) = a.user_limit
            && count(&m.per_user, a.user) >= l
        {
            return Err(OverLimit::User(l));
        }
        *m.per_vhost.entry(a.vhost.to_string()).or_default() += 1;
        *m.per_user.entry(a.user.to_string()).or_default() += 1;
        *m.per_listener.entry(a.port).or_default() += 1;
        Ok(Admission {
            admitted: self.admitted.clone(),
            vhost: a.vhost.to_string(),
            user: a.user.to_string(),
            port: a.port,
        })
    }

    pub(crate) fn remove(&self, id: u64) {
        self.open.remove(&id);
    }

    /// Every open connection, oldest first.
    pub fn list(&self) -> Vec<Arc<ConnectionInfo>> {
        let mut v: Vec<Arc<ConnectionInfo>> = self.open.iter().map(|c| c.clone()).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<ConnectionInfo>> {
        self.open.iter().find(|c| c.name == name).map(|c| c.clone())
    }
}
