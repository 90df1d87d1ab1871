//! Consumers attached on one node to a queue homed on another
//! (`replicate_topology`): the home serves each as one more consumer of the
//! queue, with that consumer's prefetch, over a session of its own
//! (`session.rs`); a consumer whose home is gone gets a Basic.Cancel, as
//! RabbitMQ's do when their queue's node goes down.

use super::Cluster;
use super::link::Link;
use super::rpc::{Reply, Request};
use super::session::{Cmd, decode, home_queue, reader};
use crate::access::Refusal;
use crate::error::AmqpError;
use crate::queue::consumer::{ConsumerHandle, Credit, DELIVERY_OVERHEAD, Delivery};
use crate::queue::inbox::{InboxEvent, Sink};
use crate::queue::{ConsumeRefused, HomeSettle, Queue};
use base64::Engine;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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

impl Cluster {
    /// Attach consumer `c` of stand-in `q` at its home: once the home took
    /// it, a session carries its deliveries and settlements.
    pub(super) async fn consume_at(
        self: &Arc<Self>,
        home: &str,
        vhost: &str,
        q: Arc<Queue>,
        c: Arc<ConsumerHandle>,
    ) -> Result<(), AmqpError> {
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
        let (link, meter) = self.open_session(home, vhost, &q, req, "consume").await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.register(c.clone(), tx);
        tokio::spawn(consume_session(self.clone(), id, link, q, c, rx, meter));
        Ok(())
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

/// The home's side of a session: `req`'s consumer attached to the queue
/// here, its deliveries sent down `link`, its settlements applied; when
/// the link closes, what it had not settled goes back to the queue.
pub(super) async fn serve_consumer(cluster: Arc<Cluster>, mut link: Link, req: ConsumeAt) {
    let Some((v, q)) = home_queue(&cluster, &mut link, &req.vhost, &req.queue).await else {
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
