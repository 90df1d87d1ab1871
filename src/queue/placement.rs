//! Where a queue of a cluster with replicated topology lives: its home
//! node, the incarnation a change names it by, and, for a stand-in on
//! another node, its way to the home (`cluster::consume` implements it).

use super::Queue;
use super::consumer::ConsumerHandle;
use super::ready::Entry;
use std::sync::Arc;

/// A queue of a cluster whose topology is replicated: every node knows
/// every queue, and one node, its home, holds its messages.
#[derive(Clone, Debug)]
pub(crate) struct Placement {
    /// Its home node, when that is another node (this is a stand-in).
    pub(crate) elsewhere: Option<Arc<str>>,
    /// Drawn when it was declared: a change naming an earlier queue of the
    /// same name leaves this one alone.
    pub(crate) incarnation: u64,
    /// An exclusive queue's owner: its node and connection id there.
    pub(crate) owner: Option<(Arc<str>, u64)>,
    /// A stand-in's way to its home, for consumers attached here.
    pub(crate) home: Option<Arc<dyn HomeLink>>,
    /// A quorum queue: the nodes of its group.
    pub(crate) replicas: Arc<[String]>,
}

impl std::fmt::Debug for dyn HomeLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HomeLink")
    }
}

/// How a stand-in reaches the queue it stands for (`cluster::consume`): a
/// consumer attached to it consumes from the home's queue, and what its
/// channel settles goes back there. The sequence numbers of what it
/// delivers are the link's, not a queue's.
pub(crate) trait HomeLink: Send + Sync {
    /// Attach `c` at the home; the future says whether the home took it.
    fn consume(
        &self,
        q: &Arc<Queue>,
        c: Arc<ConsumerHandle>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::error::AmqpError>> + Send>,
    >;
    fn cancel(&self, c: &Arc<ConsumerHandle>);
    fn settle(&self, seqs: &[u64], how: HomeSettle);
    /// Basic.Get at the home: the message, checked out there unless
    /// `no_ack`, and how many remain.
    fn get(&self, q: &Arc<Queue>, no_ack: bool) -> HomeGet;
}

pub(crate) type HomeGet = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Option<(Entry, usize)>, crate::error::AmqpError>>
            + Send,
    >,
>;

/// A quorum queue's group, on the queue's home (`cluster::quorum`): what is
/// published to the queue goes through it, and so does what leaves it.
pub(crate) trait QuorumLink: Send + Sync {
    /// Replicate a message with its deadline: true once committed and
    /// taken by the queue.
    fn enqueue(self: Arc<Self>, msg: &crate::message::Message, expires: u64) -> Commit;
    /// These messages left the queue here.
    fn settled(self: Arc<Self>, seqs: Vec<u64>);
}

/// A message proposed to a quorum queue's group: true once committed and
/// taken by the queue.
pub(crate) type Commit = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// What a consumer's channel did with deliveries from a queue's home.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum HomeSettle {
    Ack,
    Requeue,
    Reject,
}

impl Queue {
    /// Place a queue just made (`Arc` not shared yet) in its cluster.
    pub(crate) fn place(q: &mut Arc<Queue>, placement: Placement) {
        if let Some(q) = Arc::get_mut(q) {
            q.placement = Some(placement);
        }
    }

    /// The home node of a cluster's queue that lives on another node.
    pub(crate) fn elsewhere(&self) -> Option<&Arc<str>> {
        self.placement.as_ref().and_then(|p| p.elsewhere.as_ref())
    }

    /// A quorum queue's group's nodes (none for others).
    pub(crate) fn replicas(&self) -> &[String] {
        self.placement.as_ref().map_or(&[], |p| &p.replicas)
    }

    pub(crate) fn incarnation(&self) -> u64 {
        self.placement.as_ref().map_or(0, |p| p.incarnation)
    }

    /// The stand-in of a queue homed on another node: its way there.
    pub(crate) fn home_link(&self) -> Option<&Arc<dyn HomeLink>> {
        self.placement.as_ref().and_then(|p| p.home.as_ref())
    }
}
