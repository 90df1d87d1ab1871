//! What a quorum queue's Raft group is made of: its commands and openraft's
//! type configuration for them. Its members are the metadata group's, by
//! the same ids and addresses.

use super::super::types::Member;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// What a quorum queue's group replicates. A message's sequence number in
/// the queue is the index of the entry that enqueued it, so applying an
/// entry twice (after a restart) is seen and skipped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum QCommand {
    /// A message, as a store record in base64, and its deadline (ms since
    /// the epoch, 0: none) as the leader computed it.
    Enqueue { expires: u64, message: String },
    /// These messages left the queue (acked, rejected, expired, dropped,
    /// purged).
    Settle { seqs: Vec<u64> },
}

/// Whether the queue took what the entry asked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QApplied(pub(crate) bool);

openraft::declare_raft_types!(
    /// One quorum queue's group.
    pub(crate) Quorum:
        D = QCommand,
        R = QApplied,
        Node = Member,
);

pub(crate) type QRaft = openraft::Raft<Quorum>;
