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
    pub client_properties: FieldTable,
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
    /// ms since the epoch.
    pub connected_at: u64,
    /// The connection task's inbox, through which it is told to close.
    pub(crate) inbox: Sink,
    pub(crate) stats: ConnectionStats,
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

    /// Ask the connection to close with 320 CONNECTION_FORCED and `reason`.
    pub fn close(&self, reason: &str) {
        let _ = self.inbox.send(InboxEvent::ForceClose(reason.to_string()));
    }
}

#[derive(Default)]
pub struct Connections {
    open: DashMap<u64, Arc<ConnectionInfo>>,
}

impl Connections {
    pub(crate) fn add(&self, c: Arc<ConnectionInfo>) {
        self.open.insert(c.id, c);
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
