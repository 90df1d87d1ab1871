//! Consumers attached on one node to a queue homed on another
//! (`replicate_topology`). The consuming node opens a link of its own to
//! the home per consumer; the home serves it as one more consumer of the
//! queue, with that consumer's prefetch, and sends its deliveries down the
//! link; what the consumer's channel settles (ack, requeue, reject) goes
//! back up it. A link that breaks gives the home's unacknowledged messages
//! back to the queue, as a closed connection does; a consumer whose home
//! is gone gets a Basic.Cancel, as RabbitMQ's do when their queue's node
//! goes down.

use super::Cluster;
use super::link::{Link, LinkReader};
use super::rpc::{Reply, Request};
use crate::access::Refusal;
use crate::broker::Broker;
use crate::error::AmqpError;
use crate::queue::consumer::{ConsumerHandle, Credit, DELIVERY_OVERHEAD, Delivery};
use crate::queue::inbox::{InboxEvent, Sink};
use crate::queue::ready::Entry;
use crate::queue::{ConsumeRefused, HomeLink, HomeSettle, Queue};
use base64::Engine;
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap};
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
enum Cmd {
    Settle(HomeSettle, Vec<u64>),
    Cancel,
    /// A getter's session: Basic.Get.
    Get(bool, tokio::sync::oneshot::Sender<Option<(Entry, usize)>>),
}

/// A Basic.Consume carried to a queue's home.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ConsumeAt {
    vhost: String,
    queue: String,
    tag: String,
    prefetch: u16,
    no_ack: bool,
    exclusive: bool,
    priority: i32,
    arguments: amq_protocol::types::FieldTable,
}

/// Open sessions by id: each one's consumer, and the way to its task.
type Open = HashMap<u64, (Arc<ConsumerHandle>, mpsc::UnboundedSender<Cmd>)>;

/// The sessions of consumers attached here to queues homed elsewhere.
#[derive(Default)]
pub(crate) struct Sessions {
    next: AtomicU64,
    open: Mutex<Open>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
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

fn home_down(home: &str, q: &Queue, vhost: &str) -> AmqpError {
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

/// Read a link's frames into a bounded channel: a session selects on it
/// without losing half-read frames, and stops the peer by not reading.
fn reader<T: DeserializeOwned + Send + 'static>(mut rd: LinkReader) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        while let Ok(Some(frame)) = rd.next::<T>().await {
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    rx
}

impl Cluster {
    /// Attach consumer `c` of stand-in `q` at its home: once the home took
    /// it, a session carries its deliveries and settlements.
    async fn consume_at(
        self: &Arc<Self>,
        home: &str,
        vhost: &str,
        q: Arc<Queue>,
        c: Arc<ConsumerHandle>,
    ) -> Result<(), AmqpError> {
        let down = || home_down(home, &q, vhost);
        let addr = self.address_of(home).ok_or_else(down)?;
        let meter = self
            .broker
            .upgrade()
            .and_then(|b| b.vhost(vhost))
            .map(|v| v.meter())
            .ok_or_else(down)?;
        let prefetch = match c.credit.limit() {
            0 => c.channel_credit.limit(),
            n => n,
        };
        let req = Request::Consume(ConsumeAt {
            vhost: vhost.to_string(),
            queue: q.name.to_string(),
            tag: c.tag.to_string(),
            prefetch: prefetch.min(u16::MAX as u32) as u16,
            no_ack: c.no_ack,
            exclusive: c.exclusive,
            priority: c.priority,
            arguments: c.arguments.clone(),
        });
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
        answer.map_err(|r| crate::channel::pending::refused(r, "consume"))?;
        let id = self.sessions.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::unbounded_channel();
        self.sessions.lock().insert(id, (c.clone(), tx));
        tokio::spawn(consume_session(self.clone(), id, link, q, c, rx, meter));
        Ok(())
    }
}

impl Cluster {
    /// Open a getter's session at `q`'s home: Basic.Get there, and what
    /// the channels here settle of what they got.
    async fn getter_at(
        self: &Arc<Self>,
        home: &str,
        vhost: &str,
        q: &Arc<Queue>,
    ) -> Result<mpsc::UnboundedSender<Cmd>, AmqpError> {
        let down = || home_down(home, q, vhost);
        let addr = self.address_of(home).ok_or_else(down)?;
        let meter = self
            .broker
            .upgrade()
            .and_then(|b| b.vhost(vhost))
            .map(|v| v.meter())
            .ok_or_else(down)?;
        let req = Request::Getter {
            vhost: vhost.to_string(),
            queue: q.name.to_string(),
        };
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
        answer.map_err(|r| crate::channel::pending::refused(r, "get"))?;
        let id = self.sessions.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::unbounded_channel();
        // Registered for its settlements; no consumer stands behind it.
        let nobody = Arc::new(ConsumerHandle {
            tag: "".into(),
            connection: 0,
            channel: 0,
            no_ack: true,
            exclusive: false,
            priority: 0,
            arguments: Default::default(),
            credit: Arc::new(Credit::new(0)),
            channel_credit: Arc::new(Credit::new(0)),
            sink: Sink::new().0,
            cancelled: Default::default(),
        });
        self.sessions.lock().insert(id, (nobody, tx.clone()));
        tokio::spawn(get_session(self.clone(), id, link, rx, meter));
        Ok(tx)
    }
}

/// The getting side of a getter's session.
async fn get_session(
    cluster: Arc<Cluster>,
    id: u64,
    link: Link,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    meter: crate::message::Meter,
) {
    let (rd, mut wr) = link.split();
    let mut frames = reader::<Reply>(rd);
    while let Some(cmd) = cmds.recv().await {
        let (req, reply) = match cmd {
            Cmd::Settle(how, seqs) => (Request::Settle { how, seqs }, None),
            Cmd::Get(no_ack, reply) => (Request::Get { no_ack }, Some(reply)),
            Cmd::Cancel => continue,
        };
        if wr.send(&req).await.is_err() {
            break;
        }
        let Some(reply) = reply else { continue };
        let got = match frames.recv().await {
            Some(Reply::Got(got)) => got,
            _ => break,
        };
        let entry = match got {
            None => None,
            Some((seq, redelivered, message, left)) => {
                let Some(e) = decode(id, seq, redelivered, &message, meter) else {
                    break;
                };
                Some((e, left as usize))
            }
        };
        let _ = reply.send(entry);
    }
    cluster.sessions.lock().remove(&id);
}

/// The home's side of a getter's session: Basic.Get on the queue here;
/// what was got and not settled when the link closes goes back.
pub(super) async fn serve_getter(
    cluster: Arc<Cluster>,
    mut link: Link,
    vhost: String,
    queue: String,
) {
    let found = cluster
        .broker
        .upgrade()
        .and_then(|b| b.vhost(&vhost))
        .and_then(|v| v.queue(&queue).ok().map(|q| (v, q)))
        .filter(|(_, q)| q.elsewhere().is_none());
    let Some((v, q)) = found else {
        let text = format!("no queue '{queue}' in vhost '{vhost}'");
        let _ = link
            .send(&Reply::Consuming(Err(AmqpError::not_found(text).into())))
            .await;
        return;
    };
    if link.send(&Reply::Consuming(Ok(()))).await.is_err() {
        return;
    }
    let mut unacked: BTreeSet<u64> = BTreeSet::new();
    while let Ok(Some(req)) = link.next::<Request>().await {
        match req {
            Request::Get { no_ack } => {
                let got = q.get(no_ack).map(|(e, left)| {
                    if !no_ack {
                        unacked.insert(e.seq);
                    }
                    let mut record = Vec::new();
                    crate::store::record::encode_publish(e.seq, 0, &e.msg, &mut record);
                    let message = base64::engine::general_purpose::STANDARD.encode(record);
                    (e.seq, e.redelivered, message, left as u32)
                });
                if link.send(&Reply::Got(got)).await.is_err() {
                    break;
                }
            }
            Request::Settle { how, seqs } => {
                let seqs: Vec<u64> = seqs.into_iter().filter(|s| unacked.remove(s)).collect();
                match how {
                    HomeSettle::Ack => q.ack(&seqs),
                    HomeSettle::Requeue => v.dead_letter(&q, q.requeue(&seqs)),
                    HomeSettle::Reject => v.dead_letter(&q, q.reject(&seqs)),
                }
            }
            _ => {}
        }
    }
    let left: Vec<u64> = unacked.into_iter().collect();
    if !left.is_empty() {
        v.dead_letter(&q, q.requeue(&left));
    }
}

/// The consuming side of a session: deliveries from the home into the
/// consumer's connection, settlements back.
async fn consume_session(
    cluster: Arc<Cluster>,
    id: u64,
    link: Link,
    q: Arc<Queue>,
    c: Arc<ConsumerHandle>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    meter: crate::message::Meter,
) {
    let (rd, mut wr) = link.split();
    let mut frames = reader::<Reply>(rd);
    loop {
        tokio::select! {
            cmd = cmds.recv() => {
                let req = match cmd {
                    Some(Cmd::Settle(how, seqs)) => Request::Settle { how, seqs },
                    Some(Cmd::Cancel) => Request::CancelConsumer,
                    Some(Cmd::Get(..)) => continue,
                    None => break,
                };
                if wr.send(&req).await.is_err() {
                    break;
                }
            }
            frame = frames.recv(), if !c.sink.busy() => match frame {
                Some(Reply::Delivery { seq, redelivered, message }) => {
                    let Some(entry) = decode(id, seq, redelivered, &message, meter) else {
                        break;
                    };
                    let cost = entry.msg.body_size() + DELIVERY_OVERHEAD;
                    c.sink.reserve(cost);
                    let d = Delivery { consumer: c.clone(), queue: q.clone(), entry, ack_timeout: None };
                    match c.sink.push_delivery(d) {
                        Ok(true) => c.sink.wake(),
                        Ok(false) => {}
                        // Its connection is gone: the home takes it back
                        // when the link closes.
                        Err(_) => break,
                    }
                }
                Some(Reply::ConsumerCancelled) | None => {
                    // The queue or its home went away.
                    if !c.is_cancelled() {
                        let _ = c.sink.send(InboxEvent::Cancelled(c.clone()));
                    }
                    break;
                }
                Some(_) => break,
            },
            // Its connection has too much unwritten: look again shortly.
            () = tokio::time::sleep(Duration::from_millis(10)), if c.sink.busy() => {}
        }
    }
    cluster.sessions.lock().remove(&id);
}

fn decode(
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

/// The home's side of a session: `req`'s consumer attached to the queue
/// here, its deliveries sent down `link`, its settlements applied; when
/// the link closes, what it had not settled goes back to the queue.
pub(super) async fn serve_consumer(cluster: Arc<Cluster>, mut link: Link, req: ConsumeAt) {
    let found = cluster
        .broker
        .upgrade()
        .and_then(|b| b.vhost(&req.vhost))
        .and_then(|v| v.queue(&req.queue).ok().map(|q| (v, q)))
        .filter(|(_, q)| q.elsewhere().is_none());
    let Some((v, q)) = found else {
        let text = format!("no queue '{}' in vhost '{}'", req.queue, req.vhost);
        let _ = link
            .send(&Reply::Consuming(Err(AmqpError::not_found(text).into())))
            .await;
        return;
    };
    let (sink, mut inbox) = Sink::new();
    let handle = Arc::new(ConsumerHandle {
        tag: req.tag.as_str().into(),
        connection: 0,
        channel: 0,
        no_ack: req.no_ack,
        exclusive: req.exclusive,
        priority: req.priority,
        arguments: req.arguments,
        credit: Arc::new(Credit::new(req.prefetch)),
        channel_credit: Arc::new(Credit::new(0)),
        sink: sink.clone(),
        cancelled: Default::default(),
    });
    let refused = match q.add_consumer(handle.clone()) {
        Ok(()) => None,
        Err(ConsumeRefused::InExclusiveUse) => Some(AmqpError::access_refused(format!(
            "queue '{}' in vhost '{}' in exclusive use",
            req.queue, req.vhost
        ))),
        Err(ConsumeRefused::Deleted) => Some(AmqpError::not_found(format!(
            "no queue '{}' in vhost '{}'",
            req.queue, req.vhost
        ))),
    };
    let answer = refused.map_or(Ok(()), |e| Err(Refusal::from(e)));
    let took = answer.is_ok();
    if link.send(&Reply::Consuming(answer)).await.is_err() || !took {
        if took && q.remove_consumer(&handle) {
            v.queue_lost(&q);
        }
        return;
    }
    let (rd, mut wr) = link.split();
    let mut requests = reader::<Request>(rd);
    let mut unacked: BTreeSet<u64> = BTreeSet::new();
    let mut events = Vec::new();
    let mut cancelled = false;
    let no_ack = req.no_ack;
    'session: loop {
        if cancelled && unacked.is_empty() {
            break;
        }
        tokio::select! {
            () = inbox.recv_many(&mut events) => {
                for ev in events.drain(..) {
                    match ev {
                        InboxEvent::Deliver(d) => {
                            let cost = d.entry.msg.body_size() + DELIVERY_OVERHEAD;
                            if cancelled {
                                sink.written(cost);
                                if !no_ack {
                                    handle.credit.give_back(1);
                                }
                                q.return_undelivered(d.entry, !no_ack);
                                continue;
                            }
                            let mut record = Vec::new();
                            crate::store::record::encode_publish(d.entry.seq, 0, &d.entry.msg, &mut record);
                            let message = base64::engine::general_purpose::STANDARD.encode(record);
                            if !no_ack {
                                unacked.insert(d.entry.seq);
                            }
                            let frame = Reply::Delivery { seq: d.entry.seq, redelivered: d.entry.redelivered, message };
                            let sent = wr.send(&frame).await;
                            if sink.written(cost) {
                                q.dispatch();
                            }
                            if sent.is_err() {
                                break 'session;
                            }
                        }
                        InboxEvent::Cancelled(_) => {
                            let _ = wr.send(&Reply::ConsumerCancelled).await;
                            unacked.clear();
                            break 'session;
                        }
                        InboxEvent::Resume => q.dispatch(),
                        _ => {}
                    }
                }
            }
            r = requests.recv() => match r {
                Some(Request::Settle { how, seqs }) => {
                    let seqs: Vec<u64> = seqs.into_iter().filter(|s| unacked.remove(s)).collect();
                    if !no_ack {
                        handle.credit.give_back(seqs.len() as u32);
                    }
                    match how {
                        HomeSettle::Ack => q.ack(&seqs),
                        HomeSettle::Requeue => v.dead_letter(&q, q.requeue(&seqs)),
                        HomeSettle::Reject => v.dead_letter(&q, q.reject(&seqs)),
                    }
                    q.dispatch();
                }
                Some(Request::CancelConsumer) if !cancelled => {
                    cancelled = true;
                    handle.cancel();
                    if q.remove_consumer(&handle) {
                        v.queue_lost(&q);
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
    }
    if !cancelled {
        handle.cancel();
        if q.remove_consumer(&handle) {
            v.queue_lost(&q);
        }
    }
    let left: Vec<u64> = unacked.into_iter().collect();
    if !left.is_empty() {
        v.dead_letter(&q, q.requeue(&left));
    }
    for ev in inbox.close() {
        if let InboxEvent::Deliver(d) = ev {
            q.return_undelivered(d.entry, !no_ack);
        }
    }
}
