//! What the cluster's Raft group is made of: its members, the commands it
//! replicates, and openraft's type configuration tying them together.

use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fmt;
use std::io::Cursor;

/// A member as Raft's membership records it: the node's name and the
/// address its cluster listener is reached on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) addr: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

/// What the metadata group replicates: a change proposed on any node,
/// applied on every node in the same order.
pub(crate) use crate::broker::changes::Change as Command;

/// What applying a command answered (the same on every node).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Applied(pub(crate) Result<bool, crate::access::Refusal>);

openraft::declare_raft_types!(
    /// The metadata group.
    pub(crate) Meta:
        D = Command,
        R = Applied,
        Node = Member,
);

pub(crate) type NodeId = u64;
pub(crate) type LogId = openraft::LogId<NodeId>;
pub(crate) type Entry = openraft::Entry<Meta>;
pub(crate) type Vote = openraft::Vote<NodeId>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;
pub(crate) type StorageIOError = openraft::StorageIOError<NodeId>;
pub(crate) type Membership = openraft::StoredMembership<NodeId, Member>;
pub(crate) type Raft = openraft::Raft<Meta>;

/// Raft numbers its nodes; ours are known by name, so the number is drawn
/// from the name (the first 8 bytes of its SHA-256: two names of one
/// cluster colliding is not a practical concern). A node keeps the number
/// it was given in `DATA/cluster/id` (see `identity`).
pub(crate) fn node_id(name: &str) -> NodeId {
    let d = sha2::Sha256::digest(name.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_stable_and_differ_by_name() {
        assert_eq!(node_id("a"), node_id("a"));
        assert_ne!(node_id("ferretmq@a"), node_id("ferretmq@b"));
    }
}
