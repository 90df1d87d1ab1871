//! openraft's network: one link per peer, opened when first needed and
//! again after it fails.

use super::link::{Endpoint, Link};
use super::rpc::{Reply, Request};
use super::types::{Member, Meta, NodeId};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::io;

#[derive(Clone)]
pub(crate) struct Network {
    pub(crate) endpoint: Endpoint,
}

pub(crate) struct Peer {
    target: NodeId,
    wire: Wire,
}

/// A link to a peer, opened when first needed and again after it failed;
/// the metadata group's peers and every quorum queue group's use one.
pub(crate) struct Wire {
    addr: String,
    endpoint: Endpoint,
    link: Option<Link>,
}

impl RaftNetworkFactory<Meta> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Peer {
        Peer {
            target,
            wire: Wire::new(&node.addr, &self.endpoint),
        }
    }
}

pub(crate) type Failed<E = openraft::error::Infallible> =
    RPCError<NodeId, Member, RaftError<NodeId, E>>;

impl Wire {
    pub(crate) fn new(addr: &str, endpoint: &Endpoint) -> Wire {
        Wire {
            addr: addr.to_string(),
            endpoint: endpoint.clone(),
            link: None,
        }
    }

    /// One request for the member `target`, one reply.
    pub(crate) async fn call<E: std::error::Error>(
        &mut self,
        req: &Request,
        target: NodeId,
        option: &RPCOption,
    ) -> Result<Reply, Failed<E>> {
        if self.link.is_none() {
            let link = self
                .endpoint
                .connect(&self.addr)
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
            self.link = Some(link);
        }
        let Some(link) = self.link.as_mut() else {
            unreachable!("just connected")
        };
        match tokio::time::timeout(option.hard_ttl(), link.call::<_, Reply>(req)).await {
            Ok(Ok(Reply::NotThatNode)) => {
                let e = io::Error::other(format!(
                    "the node at {} lost its state and is no longer member {target}",
                    self.addr
                ));
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.link = None;
                Err(RPCError::Network(NetworkError::new(&e)))
            }
            Err(_) => {
                // A reply may still come; the link is out of step now.
                self.link = None;
                let e = io::Error::new(io::ErrorKind::TimedOut, "no reply in time");
                Err(RPCError::Network(NetworkError::new(&e)))
            }
        }
    }
}

pub(crate) fn unexpected<E: std::error::Error>() -> Failed<E> {
    let e = io::Error::new(io::ErrorKind::InvalidData, "an unexpected reply");
    RPCError::Network(NetworkError::new(&e))
}

impl Peer {
    async fn call<E: std::error::Error>(
        &mut self,
        req: Request,
        option: &RPCOption,
    ) -> Result<Reply, Failed<E>> {
        self.wire.call(&req, self.target, option).await
    }
}

impl RaftNetwork<Meta> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Meta>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, Failed> {
        match self
            .call(Request::AppendEntries(self.target, rpc), &option)
            .await?
        {
            Reply::AppendEntries(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Meta>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, Failed<InstallSnapshotError>> {
        match self
            .call(Request::InstallSnapshot(self.target, rpc), &option)
            .await?
        {
            Reply::InstallSnapshot(r) => {
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
        match self.call(Request::Vote(self.target, rpc), &option).await? {
            Reply::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }
}
