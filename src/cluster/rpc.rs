//! What nodes ask each other over a link, and how a node answers: Raft's
//! own messages go to the local Raft; membership changes and commands go
//! to the leader, wherever the asking node sent them.

use super::Cluster;
use super::link::Link;
use super::types::{Command, Member, Meta, NodeId};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    /// Raft's messages name the node they are for: one that lost its state
    /// and came back at the same address is another node (a new id), and
    /// must not answer for its old self.
    AppendEntries(NodeId, AppendEntriesRequest<Meta>),
    Vote(NodeId, VoteRequest<NodeId>),
    InstallSnapshot(NodeId, InstallSnapshotRequest<Meta>),
    /// Is the node part of a cluster yet?
    Hello,
    /// Make this node a voting member under this id (carried out by the
    /// leader).
    Join(Member, NodeId),
    /// Remove the named node (carried out by the leader).
    Forget(String),
    /// Replicate a command (carried out by the leader).
    Write(Command),
    /// The node's entry in `/api/nodes`.
    NodeInfo,
    /// Attach a consumer to a queue homed here: the link is its session's
    /// from then on (`consume.rs`).
    Consume(super::consume::ConsumeAt),
    /// In a consumer's session: what its channel did with deliveries.
    Settle {
        how: crate::queue::HomeSettle,
        seqs: Vec<u64>,
    },
    /// In a consumer's session: Basic.Cancel (settlements may follow).
    CancelConsumer,
    /// Make this link a session for Basic.Get from a queue homed here.
    Getter {
        vhost: String,
        queue: String,
    },
    /// In a getter's session: the next message.
    Get {
        no_ack: bool,
    },
    /// Purge a queue homed here.
    Purge {
        vhost: String,
        name: String,
    },
    /// A queue homed here: its ready messages and consumers.
    QueueCounts {
        vhost: String,
        name: String,
    },
    /// Delete a queue homed here if unused / empty (decided here, where its
    /// consumers and messages are), through the log.
    DeleteQueue {
        vhost: String,
        name: String,
        if_unused: bool,
        if_empty: bool,
    },
    /// Make this link a pipeline of messages for queues homed here
    /// (`pipeline.rs`): `Enqueue`s, each answered in order.
    Pipeline,
    /// Raft's message for a quorum queue's group, for its member with this id.
    Group {
        group: String,
        to: NodeId,
        rpc: super::quorum::network::GroupRpc,
    },
    /// A message another node routed to these queues, homed here, as a
    /// store record in base64 (`forward.rs`).
    Enqueue {
        vhost: String,
        queues: Vec<String>,
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Reply {
    /// A Raft message for an id the node does not have (any longer).
    NotThatNode,
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Hello {
        member: bool,
    },
    Done,
    /// What a replicated change answered, and its index in the log.
    Applied(super::types::Applied, u64),
    /// The request needs the leader; it is this one, if known.
    NotLeader(Option<Member>),
    Refused(String),
    NodeInfo(serde_json::Value),
    Group(super::quorum::network::GroupReply),
    /// Whether every queue took the forwarded message.
    Enqueued(bool),
    /// Whether the home took a consumer (`Request::Consume`).
    Consuming(Result<(), crate::access::Refusal>),
    /// In a consumer's session: a message for it.
    Delivery {
        seq: u64,
        redelivered: bool,
        message: String,
    },
    /// In a consumer's session: its queue was deleted.
    ConsumerCancelled,
    /// In a getter's session: the message (seq, redelivered, record) and
    /// how many remain; None: empty.
    Got(Option<(u64, bool, String, u32)>),
    /// A queue's counts (None: not homed here).
    Counts(Option<(u32, u32)>),
    /// How many messages a purge removed (None: not homed here).
    Purged(Option<u32>),
    /// A queue deleted: the ready messages it held; or why not.
    Deleted(Result<u32, crate::access::Refusal>),
}

/// Answer a peer's requests until it closes the link.
pub(crate) async fn serve(mut link: Link, cluster: Arc<Cluster>) {
    loop {
        let req = match link.next::<Request>().await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("cluster link from {}: {e}", link.peer);
                return;
            }
        };
        let req = match req {
            Request::Consume(c) => {
                return super::consume::serve_consumer(cluster, link, c).await;
            }
            Request::Getter { vhost, queue } => {
                return super::get::serve_getter(cluster, link, vhost, queue).await;
            }
            Request::Pipeline => {
                return super::pipeline::serve_pipeline(cluster, link).await;
            }
            other => other,
        };
        let reply = answer(&cluster, req).await;
        if let Err(e) = link.send(&reply).await {
            tracing::debug!("cluster link to {}: {e}", link.peer);
            return;
        }
    }
}

async fn answer(cluster: &Arc<Cluster>, req: Request) -> Reply {
    match req {
        Request::AppendEntries(to, _) | Request::Vote(to, _) | Request::InstallSnapshot(to, _)
            if to != cluster.id() =>
        {
            Reply::NotThatNode
        }
        Request::AppendEntries(_, r) => {
            Reply::AppendEntries(cluster.raft().append_entries(r).await)
        }
        Request::Vote(_, r) => Reply::Vote(cluster.raft().vote(r).await),
        Request::InstallSnapshot(_, r) => {
            Reply::InstallSnapshot(cluster.raft().install_snapshot(r).await)
        }
        Request::Group { group, to, rpc } => Reply::Group(cluster.group_rpc(&group, to, rpc).await),
        Request::Enqueue {
            vhost,
            queues,
            message,
        } => Reply::Enqueued(cluster.enqueue_forwarded(&vhost, &queues, &message).await),
        Request::QueueCounts { vhost, name } => Reply::Counts(cluster.counts_here(&vhost, &name)),
        Request::Purge { vhost, name } => Reply::Purged(cluster.purge_here(&vhost, &name)),
        Request::DeleteQueue {
            vhost,
            name,
            if_unused,
            if_empty,
        } => Reply::Deleted(
            cluster
                .delete_here(&vhost, &name, if_unused, if_empty)
                .await,
        ),
        Request::Consume(_)
        | Request::Settle { .. }
        | Request::CancelConsumer
        | Request::Getter { .. }
        | Request::Pipeline
        | Request::Get { .. } => Reply::Refused("not in a consumer's session".into()),
        Request::Hello => Reply::Hello {
            member: cluster.is_member(),
        },
        Request::NodeInfo => Reply::NodeInfo(cluster.node_info()),
        r @ (Request::Join(..) | Request::Forget(_) | Request::Write(_)) => {
            match cluster.via_leader(r).await {
                Ok(reply) => reply,
                Err(e) => Reply::Refused(e),
            }
        }
    }
}
