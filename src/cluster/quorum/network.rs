//! A quorum queue group's network: Raft's messages for the group go over a
//! link to the member's node, named by the group they are for.

use super::super::link::Endpoint;
use super::super::network::{Failed, Wire, unexpected};
use super::super::rpc::{Reply, Request};
use super::super::types::{Member, NodeId};
use super::types::Quorum;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use std::io;

/// Raft's messages for one group.
#[derive(Serialize, Deserialize)]
pub(crate) enum GroupRpc {
    AppendEntries(AppendEntriesRequest<Quorum>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<Quorum>),
}

/// What a member answered.
#[derive(Serialize, Deserialize)]
pub(crate) enum GroupReply {
    /// The node has no such group (not yet made, or deleted).
    NoGroup,
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
}

#[derive(Clone)]
pub(crate) struct GroupNetwork {
    pub(crate) endpoint: Endpoint,
    pub(crate) group: String,
}

pub(crate) struct GroupPeer {
    target: NodeId,
    group: String,
    wire: Wire,
}

impl RaftNetworkFactory<Quorum> for GroupNetwork {
    type Network = GroupPeer;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> GroupPeer {
        GroupPeer {
            target,
            group: self.group.clone(),
            wire: Wire::new(&node.addr, &self.endpoint),
        }
    }
}

fn unreachable<E: std::error::Error>(why: &str) -> Failed<E> {
    RPCError::Unreachable(Unreachable::new(&io::Error::other(why.to_string())))
}

impl GroupPeer {
    async fn call<E: std::error::Error>(
        &mut self,
        rpc: GroupRpc,
        option: &RPCOption,
    ) -> Result<GroupReply, Failed<E>> {
        let req = Request::Group {
            group: self.group.clone(),
            to: self.target,
            rpc,
        };
        match self.wire.call(&req, self.target, option).await? {
            Reply::Group(GroupReply::NoGroup) => {
                Err(unreachable("the member has no such group (yet)"))
            }
            Reply::Group(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }
}

impl RaftNetwork<Quorum> for GroupPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Quorum>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, Failed> {
        match self.call(GroupRpc::AppendEntries(rpc), &option).await? {
            GroupReply::AppendEntries(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Quorum>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, Failed<InstallSnapshotError>> {
        match self.call(GroupRpc::InstallSnapshot(rpc), &option).await? {
            GroupReply::InstallSnapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, Failed> {
        match self.call(GroupRpc::Vote(rpc), &option).await? {
            GroupReply::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }
}
