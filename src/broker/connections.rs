//! The broker's registry of open connections: who and where they are, for
//! the management API (and, later, ctl), and a way to close one.

use crate::queue::inbox::{InboxEvent, Sink};
use amq_protocol::types::FieldTable;
use dashmap::DashMap;
use std::net::SocketAddr;
use std::sync::Arc;

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
