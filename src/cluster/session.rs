//! Sessions between a node and a queue's home (`replicate_topology`): a
//! consumer, or Basic.Get, through a node that is not the queue's home. The
//! consuming node opens a link of its own to the home per session; what
//! comes down it is delivered here, and what the channels here settle (ack,
//! requeue, reject) goes back up it, through the stand-in's `HomeLink`. A
//! link that breaks gives the home's unacknowledged messages back to the
//! queue, as a closed connection does.

use super::Cluster;
use super::link::{Link, LinkReader};
use super::rpc::{Reply, Request};
use crate::broker::Broker;
use crate::broker::Vhost;
use crate::error::AmqpError;
use crate::queue::consumer::ConsumerHandle;
use crate::queue::ready::Entry;
use crate::queue::{HomeLink, HomeSettle, Queue};
use base64::Engine;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// A stand-in's sequence numbers: the session in the bits above these, the
/// home queue's own below.
const SESSION_SHIFT: u32 = 40;
const SEQ_MASK: u64 = (1 << SESSION_SHIFT) - 1;
/// Frames read ahead of the session: beyond them the link is not read, and
/// the home, its writes held up, stops delivering.
const READ_AHEAD: usize = 64;

/// What a consumer's channel asks of its session.
pub(super) enum Cmd {
    Settle(HomeSettle, Vec<u64>),
    Cancel,
    /// A getter's session: Basic.Get.
    Get(bool, tokio::sync::oneshot::Sender<Option<(Entry, usize)>>),
}

/// Open sessions by id: each one's consumer, and the way to its task.
type Open = HashMap<u64, (Arc<ConsumerHandle>, mpsc::UnboundedSender<Cmd>)>;

/// The sessions of consumers attached here to queues homed elsewhere.
#[derive(Default)]
pub(crate) struct Sessions {
    pub(super) next: AtomicU64,
    open: Mutex<Open>,
}

impl Sessions {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cancel(&self, c: &Arc<ConsumerHandle>) {
        let open = self.lock();
        if let Some((_, tx)) = open.values().find(|(h, _)| Arc::ptr_eq(h, c)) {
            let _ = tx.send(Cmd::Cancel);
        }
    }

    fn settle(&self, seqs: &[u64], how: HomeSettle) {
        let mut by_session: HashMap<u64, Vec<u64>> = HashMap::new();
        for s in seqs {
            by_session
                .entry(s >> SESSION_SHIFT)
                .or_default()
                .push(s & SEQ_MASK);
        }
        let open = self.lock();
        for (id, seqs) in by_session {
            if let Some((_, tx)) = open.get(&id) {
                let _ = tx.send(Cmd::Settle(how, seqs));
            }
        }
    }
}

/// A stand-in's way to its home, through this node's cluster.
pub(crate) fn home_link(broker: Weak<Broker>, vhost: &str, home: &str) -> Arc<dyn HomeLink> {
    Arc::new(ViaCluster {
        broker,
        vhost: vhost.to_string(),
        home: home.to_string(),
        getter: Default::default(),
    })
}

struct ViaCluster {
    broker: Weak<Broker>,
    vhost: String,
    home: String,
    /// Its getter's session, once a Basic.Get needed one.
    getter: Arc<Mutex<Option<mpsc::UnboundedSender<Cmd>>>>,
}

impl ViaCluster {
    fn cluster(&self) -> Option<Arc<Cluster>> {
        self.broker.upgrade()?.cluster().cloned()
    }
}

pub(super) fn home_down(home: &str, q: &Queue, vhost: &str) -> AmqpError {
    AmqpError::not_found(format!(
        "home node '{home}' of durable queue '{}' in vhost '{vhost}' is down or inaccessible",
        q.name
    ))
}

impl HomeLink for ViaCluster {
    fn consume(
        &self,
        q: &Arc<Queue>,
        c: Arc<ConsumerHandle>,
    ) -> Pin<Box<dyn Future<Output = Result<(), AmqpError>> + Send>> {
        let (cluster, q) = (self.cluster(), q.clone());
        let (vhost, home) = (self.vhost.clone(), self.home.clone());
        Box::pin(async move {
            match cluster {
                Some(cl) => cl.consume_at(&home, &vhost, q, c).await,
                None => Err(home_down(&home, &q, &vhost)),
            }
        })
    }

    fn cancel(&self, c: &Arc<ConsumerHandle>) {
        if let Some(cl) = self.cluster() {
            cl.sessions.cancel(c);
        }
    }

    fn settle(&self, seqs: &[u64], how: HomeSettle) {
        if let Some(cl) = self.cluster() {
            cl.sessions.settle(seqs, how);
        }
    }

    fn get(&self, q: &Arc<Queue>, no_ack: bool) -> crate::queue::HomeGet {
        let (cluster, q) = (self.cluster(), q.clone());
        let (vhost, home) = (self.vhost.clone(), self.home.clone());
        let slot = self.getter.clone();
        let open = slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|tx| !tx.is_closed());
        Box::pin(async move {
            let cl = cluster.ok_or_else(|| home_down(&home, &q, &vhost))?;
            let tx = match open {
                Some(tx) => tx,
                None => {
                    let tx = cl.getter_at(&home, &vhost, &q).await?;
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx.clone());
                    tx
                }
            };
            let (reply, answer) = tokio::sync::oneshot::channel();
            tx.send(Cmd::Get(no_ack, reply))
                .map_err(|_| home_down(&home, &q, &vhost))?;
            answer.await.map_err(|_| home_down(&home, &q, &vhost))
        })
    }
}

/// A session's link frames, read by a task of their own into a bounded
/// channel: a session selects on them without losing half-read frames,
/// and stops the peer by not reading. Dropped with the session, it stops
/// the task: the link's socket closes only once its read half is gone too,
/// and the peer learns the session is over.
pub(super) struct Frames<T> {
    rx: mpsc::Receiver<T>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Frames<T> {
    pub(super) async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await
    }
}

impl<T> Drop for Frames<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) fn reader<T: DeserializeOwned + Send + 'static>(mut rd: LinkReader) -> Frames<T> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let task = tokio::spawn(async move {
        while let Ok(Some(frame)) = rd.next::<T>().await {
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    Frames { rx, task }
}

pub(super) fn decode(
    session: u64,
    seq: u64,
    redelivered: bool,
    message: &str,
    meter: crate::message::Meter,
) -> Option<Entry> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(message)
        .ok()?;
    let (_, msg) = crate::store::record::decode_publish(&raw.into(), true, meter)?;
    Some(Entry {
        seq: session << SESSION_SHIFT | (seq & SEQ_MASK),
        msg: Arc::new(msg),
        redelivered,
        expires: 0,
        returns: 0,
    })
}

impl Cluster {
    /// Open a session at `q`'s home with `req` (Consume or Getter): the
    /// link once the home took it, and the meter its messages count in.
    pub(super) async fn open_session(
        &self,
        home: &str,
        vhost: &str,
        q: &Queue,
        req: Request,
        what: &str,
    ) -> Result<(Link, crate::message::Meter), AmqpError> {
        let down = || home_down(home, q, vhost);
        let addr = self.address_of(home).ok_or_else(down)?;
        let meter = self
            .broker
            .upgrade()
            .and_then(|b| b.vhost(vhost))
            .map(|v| v.meter())
            .ok_or_else(down)?;
        let open = async {
            let mut link = self.endpoint.connect(&addr).await.ok()?;
            link.send(&req).await.ok()?;
            match link.receive::<Reply>().await.ok()? {
                Reply::Consuming(r) => Some((link, r)),
                _ => None,
            }
        };
        let (link, answer) = tokio::time::timeout(Duration::from_secs(10), open)
            .await
            .ok()
            .flatten()
            .ok_or_else(down)?;
        answer.map_err(|r| crate::channel::pending::refused(r, what))?;
        Ok((link, meter))
    }

    /// A new session's id, its consumer and its task's way in registered.
    pub(super) fn register(&self, c: Arc<ConsumerHandle>, tx: mpsc::UnboundedSender<Cmd>) -> u64 {
        let id = self.sessions.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.sessions.lock().insert(id, (c, tx));
        id
    }
}

/// The queue a session asks for, if it is homed here; else the asking
/// node is told there is no such queue.
pub(super) async fn home_queue(
    cluster: &Cluster,
    link: &mut Link,
    vhost: &str,
    queue: &str,
) -> Option<(Arc<Vhost>, Arc<Queue>)> {
    let found = cluster
        .broker
        .upgrade()
        .and_then(|b| b.vhost(vhost))
        .and_then(|v| v.queue(queue).ok().map(|q| (v, q)))
        .filter(|(_, q)| q.elsewhere().is_none());
    if found.is_none() {
        let text = format!("no queue '{queue}' in vhost '{vhost}'");
        let _ = link
            .send(&Reply::Consuming(Err(AmqpError::not_found(text).into())))
            .await;
    }
    found
}
