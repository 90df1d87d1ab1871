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
    addr: String,
    endpoint: Endpoint,
    link: Option<Link>,
}

impl RaftNetworkFactory<Meta> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            endpoint: self.endpoint.clone(),
            link: None,
        }
    }
}

type Failed<E = openraft::error::Infallible> = RPCError<NodeId, Member, RaftError<NodeId, E>>;

impl Peer {
    async fn call<E: std::error::Error>(
        &mut self,
        req: Request,
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
        match tokio::time::timeout(option.hard_ttl(), link.call::<_, Reply>(&req)).await {
            Ok(Ok(Reply::NotThatNode)) => {
                let e = io::Error::other(format!(
                    "the node at {} lost its state and is no longer member {}",
                    self.addr, self.target
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

    fn unexpected<E: std::error::Error>(&self) -> Failed<E> {
        let e = io::Error::new(io::ErrorKind::InvalidData, "an unexpected reply");
        RPCError::Network(NetworkError::new(&e))
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
            _ => Err(self.unexpected()),
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
            _ => Err(self.unexpected()),
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
            _ => Err(self.unexpected()),
        }
    }
}
