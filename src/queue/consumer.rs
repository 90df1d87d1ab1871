//! What a queue knows of a consumer, and the sink through which it hands
//! deliveries to the consumer's connection. The queue never blocks on a
//! consumer: the sink is unbounded, and a consumer whose connection has too
//! much unwritten counts as busy until it drains.

use super::Queue;
use super::ready::Entry;
use amq_protocol::types::ShortString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use tokio::sync::mpsc;

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

/// Unwritten delivery bytes above which a connection's consumers are busy.
const BUSY_BYTES: usize = 2 * 1024 * 1024;
/// ...and below which the connection asks its queues to resume.
pub const RESUME_BYTES: usize = 512 * 1024;
/// Per-delivery overhead counted against the watermark (frames, bookkeeping).
pub const DELIVERY_OVERHEAD: usize = 96;

pub struct Delivery {
    pub consumer: Arc<ConsumerHandle>,
    pub queue: Arc<Queue>,
    pub entry: Entry,
    /// The queue's consumer acknowledgement timeout, ms, if it sets one.
    pub ack_timeout: Option<u64>,
}

/// What arrives in a connection's inbox: from its queues (deliveries,
/// cancels, resume) and from the broker (a forced close).
pub enum InboxEvent {
    Deliver(Delivery),
    /// The queue went away under this consumer (queue deleted).
    Cancelled(Arc<ConsumerHandle>),
    /// The connection wrote out its backlog; busy consumers may take more.
    Resume,
    /// Close the connection: 320 CONNECTION_FORCED with this reason (the
    /// management API's DELETE /api/connections/{name}).
    ForceClose(String),
}

/// The queue's way back to a consumer's connection.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::UnboundedSender<InboxEvent>,
    state: Arc<SinkState>,
}

#[derive(Default)]
pub struct SinkState {
    /// Bytes handed to the connection and not yet written to its socket.
    pub unwritten: AtomicUsize,
    /// Set when a queue skipped a consumer because the connection was busy.
    pub stalled: AtomicBool,
}

impl Sink {
    pub fn new() -> (Sink, mpsc::UnboundedReceiver<InboxEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Sink {
                tx,
                state: Arc::default(),
            },
            rx,
        )
    }

    pub fn state(&self) -> &Arc<SinkState> {
        &self.state
    }

    pub fn send(&self, ev: InboxEvent) -> Result<(), InboxEvent> {
        self.tx.send(ev).map_err(|e| e.0)
    }

    fn busy(&self) -> bool {
        if self.state.unwritten.load(Ordering::Relaxed) > BUSY_BYTES {
            self.state.stalled.store(true, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

impl SinkState {
    /// The connection wrote `bytes` of deliveries; true if queues should resume.
    pub fn written(&self, bytes: usize) -> bool {
        let before = self.unwritten.fetch_sub(bytes, Ordering::Relaxed);
        before.saturating_sub(bytes) < RESUME_BYTES && self.stalled.swap(false, Ordering::Relaxed)
    }
}

pub struct ConsumerHandle {
    pub tag: ShortString,
    pub channel: u16,
    pub no_ack: bool,
    pub exclusive: bool,
    /// x-priority: higher-priority consumers get messages first.
    pub priority: i32,
    pub credit: Arc<Credit>,
    pub channel_credit: Arc<Credit>,
    pub sink: Sink,
}

impl ConsumerHandle {
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

    /// Hand a delivery to the connection; gives it back if the connection is gone.
    pub(super) fn deliver(&self, d: Delivery) -> Result<(), Delivery> {
        let cost = d.entry.msg.body_size() + DELIVERY_OVERHEAD;
        self.sink.state.unwritten.fetch_add(cost, Ordering::Relaxed);
        match self.sink.send(InboxEvent::Deliver(d)) {
            Ok(()) => Ok(()),
            Err(InboxEvent::Deliver(d)) => {
                self.sink.state.unwritten.fetch_sub(cost, Ordering::Relaxed);
                Err(d)
            }
            Err(_) => unreachable!("send returns the event it was given"),
        }
    }
}
