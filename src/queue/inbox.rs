//! A connection's inbox: what its queues hand it (deliveries, cancels,
//! resume) and what the broker tells it (a forced close).
//!
//! A queue puts deliveries in while it holds its lock, so they arrive in
//! queue order whichever thread dispatched them, but wakes the connection
//! only after unlocking ([`Sink::push`] then [`Sink::wake`]): the lock is
//! never held across a wake-up. The connection takes everything at once by
//! swapping buffers, so a burst costs one lock and no allocation.

use super::consumer::Delivery;
use super::consumer::{ConsumerHandle, DELIVERY_OVERHEAD};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// What arrives in a connection's inbox.
pub enum InboxEvent {
    Deliver(Delivery),
    /// The queue went away under this consumer (queue deleted).
    Cancelled(Arc<ConsumerHandle>),
    /// The connection wrote out its backlog; busy consumers may take more.
    Resume,
    /// The store synced what this connection's confirms waited for.
    Synced,
    /// Close the connection: 320 CONNECTION_FORCED with this reason (the
    /// management API's DELETE /api/connections/{name}).
    ForceClose(String),
}

/// Unwritten delivery bytes above which a connection's consumers are busy.
const BUSY_BYTES: usize = 2 * 1024 * 1024;
/// ...and below which the connection asks its queues to resume.
pub const RESUME_BYTES: usize = 512 * 1024;

#[derive(Default)]
struct Events {
    list: Vec<InboxEvent>,
    /// The connection is gone: nothing more is taken in.
    closed: bool,
}

#[derive(Default)]
struct Inbox {
    events: Mutex<Events>,
    wake: Notify,
    /// Bytes handed to the connection and not yet written to its socket.
    unwritten: AtomicUsize,
    /// Set when a queue skipped a consumer because the connection was busy.
    stalled: AtomicBool,
}

/// The way into a connection's inbox (queues, the broker's registry).
#[derive(Clone)]
pub struct Sink(Arc<Inbox>);

/// The connection's end of its inbox.
pub struct InboxRx(Arc<Inbox>);

impl Sink {
    pub fn new() -> (Sink, InboxRx) {
        let inbox = Arc::new(Inbox::default());
        (Sink(inbox.clone()), InboxRx(inbox))
    }

    /// Put an event in without waking the connection; `Ok(true)` when it
    /// must be woken (its inbox was empty). Gives the event back if the
    /// connection is gone.
    pub(crate) fn push(&self, ev: InboxEvent) -> Result<bool, InboxEvent> {
        let mut e = self.0.lock();
        if e.closed {
            return Err(ev);
        }
        e.list.push(ev);
        Ok(e.list.len() == 1)
    }

    /// Wake the connection to read its inbox.
    pub(crate) fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Put an event in and wake the connection.
    pub fn send(&self, ev: InboxEvent) -> Result<(), InboxEvent> {
        if self.push(ev)? {
            self.wake();
        }
        Ok(())
    }

    /// A delivery of `cost` bytes is on its way: counted as unwritten from
    /// the moment the queue picks it, so that one dispatch stops handing a
    /// consumer more once its connection is busy (a backlog drained by a
    /// no-ack consumer would otherwise land in memory whole).
    pub(crate) fn reserve(&self, cost: usize) {
        self.0.unwritten.fetch_add(cost, Ordering::Relaxed);
    }

    /// Hand a delivery over (its bytes reserved); gives it back, and its
    /// bytes, if the connection is gone.
    pub(crate) fn push_delivery(&self, d: Delivery) -> Result<bool, Delivery> {
        match self.push(InboxEvent::Deliver(d)) {
            Ok(wake) => Ok(wake),
            Err(InboxEvent::Deliver(d)) => {
                let cost = d.entry.msg.body_size() + DELIVERY_OVERHEAD;
                self.0.unwritten.fetch_sub(cost, Ordering::Relaxed);
                Err(d)
            }
            Err(_) => unreachable!("push gives back the event it was given"),
        }
    }

    pub(crate) fn same(&self, other: &Sink) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Too much unwritten: its consumers take nothing for now (and the
    /// queue is told to resume when the connection has caught up).
    pub(crate) fn busy(&self) -> bool {
        if self.0.unwritten.load(Ordering::Relaxed) > BUSY_BYTES {
            self.0.stalled.store(true, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// The connection wrote `bytes` of deliveries; true if queues should resume.
    pub fn written(&self, bytes: usize) -> bool {
        let before = self.0.unwritten.fetch_sub(bytes, Ordering::Relaxed);
        before.saturating_sub(bytes) < RESUME_BYTES && self.0.stalled.swap(false, Ordering::Relaxed)
    }
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl InboxRx {
    /// Wait for events and swap them into `buf` (which must be empty).
    pub async fn recv_many(&mut self, buf: &mut Vec<InboxEvent>) {
        loop {
            {
                let mut e = self.0.lock();
                if !e.list.is_empty() {
                    std::mem::swap(&mut e.list, buf);
                    return;
                }
            }
            // A push after the check above leaves a permit: no wake is lost.
            self.0.wake.notified().await;
        }
    }

    /// Events waiting now, without blocking (tests).
    #[cfg(test)]
    pub fn try_recv_all(&mut self) -> Vec<InboxEvent> {
        std::mem::take(&mut self.0.lock().list)
    }

    /// Take nothing more in, and return what is left.
    pub fn close(&mut self) -> Vec<InboxEvent> {
        let mut e = self.0.lock();
        e.closed = true;
        std::mem::take(&mut e.list)
    }
}
