//! Basic.Get through a node that is not the queue's home
//! (`replicate_topology`): one getter's session per stand-in, opened at its
//! first Basic.Get (`session.rs`); the home keeps what it handed out checked
//! out until the getting channel settles it.

use super::Cluster;
use super::link::Link;
use super::rpc::{Reply, Request};
use super::session::{Cmd, decode, home_queue, reader};
use crate::error::AmqpError;
use crate::queue::consumer::{ConsumerHandle, Credit};
use crate::queue::inbox::Sink;
use crate::queue::{HomeSettle, Queue};
use base64::Engine;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::mpsc;

impl Cluster {
    /// Open a getter's session at `q`'s home: Basic.Get there, and what
    /// the channels here settle of what they got.
    pub(super) async fn getter_at(
        self: &Arc<Self>,
        home: &str,
        vhost: &str,
        q: &Arc<Queue>,
    ) -> Result<mpsc::UnboundedSender<Cmd>, AmqpError> {
        let req = Request::Getter {
            vhost: vhost.to_string(),
            queue: q.name.to_string(),
        };
        let (link, meter) = self.open_session(home, vhost, q, req, "get").await?;
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
        let id = self.register(nobody, tx.clone());
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
    let Some((v, q)) = home_queue(&cluster, &mut link, &vhost, &queue).await else {
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
