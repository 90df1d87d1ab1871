//! Messages routed on one node to queues homed on another, without waiting
//! for each: every node keeps one link per home for them (a pipeline),
//! writes each message on it as it is published and matches the home's
//! answers to them in order, so a publisher's channel goes on while its
//! confirms wait for the home. The home takes each in the order it came
//! (a quorum queue proposes it to its group at once) and answers, in that
//! order, once it is safe (committed, or on disk).

use super::Cluster;
use super::rpc::{Reply, Request};
use crate::message::Message;
use crate::queue::{Commit, Queue};
use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot};

/// A message for a home, and who waits for its answer.
struct Job {
    req: Request,
    reply: oneshot::Sender<bool>,
}

/// The pipelines this node opened, by home node name: where to send, and
/// whether its link is still up.
#[derive(Default)]
pub(crate) struct Pipelines(std::sync::Mutex<HashMap<String, Pipe>>);

struct Pipe {
    jobs: mpsc::UnboundedSender<Job>,
    up: Arc<AtomicBool>,
}

impl Cluster {
    /// Send `msg` to the homes of the `remote` queues, after what this node
    /// sent them before: true once every home has it.
    pub(crate) fn forward_in_order(
        self: &Arc<Self>,
        vhost: &str,
        msg: &Message,
        remote: &[Arc<Queue>],
    ) -> Commit {
        let mut by_home: BTreeMap<Arc<str>, Vec<String>> = BTreeMap::new();
        for q in remote {
            if let Some(home) = q.elsewhere() {
                by_home
                    .entry(home.clone())
                    .or_default()
                    .push(q.name.to_string());
            }
        }
        let mut record = Vec::new();
        crate::store::record::encode_publish(0, 0, msg, &mut record);
        let message = base64::engine::general_purpose::STANDARD.encode(record);
        let mut answers = Vec::new();
        for (home, queues) in by_home {
            let (reply, answer) = oneshot::channel();
            let req = Request::Enqueue {
                vhost: vhost.to_string(),
                queues,
                message: message.clone(),
            };
            if self.pipeline_to(&home).send(Job { req, reply }).is_err() {
                return Box::pin(async { false });
            }
            answers.push(answer);
        }
        Box::pin(async move {
            let mut ok = true;
            for a in answers {
                ok &= matches!(a.await, Ok(true));
            }
            ok
        })
    }

    fn pipeline_to(self: &Arc<Self>, home: &str) -> mpsc::UnboundedSender<Job> {
        let mut all = self.pipelines.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = all
            .get(home)
            .filter(|p| p.up.load(Ordering::Acquire) && !p.jobs.is_closed())
        {
            return p.jobs.clone();
        }
        let (tx, jobs) = mpsc::unbounded_channel();
        let up = Arc::new(AtomicBool::new(true));
        all.insert(
            home.to_string(),
            Pipe {
                jobs: tx.clone(),
                up: up.clone(),
            },
        );
        tokio::spawn(run(Arc::downgrade(self), home.to_string(), jobs, up));
        tx
    }
}

/// Answer what is left with a failure (the publish is nacked), and take no more.
fn fail_all(jobs: &mut mpsc::UnboundedReceiver<Job>) {
    jobs.close();
    while let Ok(j) = jobs.try_recv() {
        let _ = j.reply.send(false);
    }
}

/// One pipeline: messages written as they come, answers read in order. The
/// link is read all the time, so a home that went away (restarted) is
/// noticed before the next message, which then opens a new pipeline.
async fn run(
    cluster: Weak<Cluster>,
    home: String,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    up: Arc<AtomicBool>,
) {
    let link = async {
        let c = cluster.upgrade()?;
        let addr = c.address_of(&home)?;
        let connect = c.endpoint.connect(&addr);
        let mut link = tokio::time::timeout(super::forward::FORWARD_WAIT, connect)
            .await
            .ok()?
            .ok()?;
        link.send(&Request::Pipeline).await.ok()?;
        Some(link)
    }
    .await;
    let Some(link) = link else {
        up.store(false, Ordering::Release);
        fail_all(&mut jobs);
        return;
    };
    let (mut rd, mut wr) = link.split();
    let (waiting, mut answered) = mpsc::unbounded_channel::<oneshot::Sender<bool>>();
    let reading = up.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(reply)) = rd.next::<Reply>().await {
            let Some(w) = answered.recv().await else {
                return;
            };
            let _ = w.send(matches!(reply, Reply::Enqueued(true)));
        }
        // The link is gone: so is every answer still awaited.
        reading.store(false, Ordering::Release);
        answered.close();
        while let Some(w) = answered.recv().await {
            let _ = w.send(false);
        }
    });
    while let Some(job) = jobs.recv().await {
        if !up.load(Ordering::Acquire) || wr.send(&job.req).await.is_err() {
            let _ = job.reply.send(false);
            break;
        }
        if let Err(e) = waiting.send(job.reply) {
            let _ = e.0.send(false);
            break;
        }
    }
    up.store(false, Ordering::Release);
    fail_all(&mut jobs);
    drop(waiting);
    reader.abort();
}

/// The home's side of a pipeline: each message taken as it comes, the
/// answers sent in the same order once each is safe.
pub(super) async fn serve_pipeline(cluster: Arc<Cluster>, link: super::link::Link) {
    let (mut rd, mut wr) = link.split();
    let (taken, mut safe) = mpsc::unbounded_channel::<Commit>();
    let writer = tokio::spawn(async move {
        while let Some(c) = safe.recv().await {
            let ok = c.await;
            if wr.send(&Reply::Enqueued(ok)).await.is_err() {
                return;
            }
        }
    });
    while let Ok(Some(Request::Enqueue {
        vhost,
        queues,
        message,
    })) = rd.next::<Request>().await
    {
        if taken
            .send(cluster.take_forwarded(&vhost, &queues, &message))
            .is_err()
        {
            break;
        }
    }
    drop(taken);
    let _ = writer.await;
}
