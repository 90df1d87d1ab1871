//! What a quorum queue's Raft group is made of: its commands and openraft's
//! type configuration for them. Its members are the metadata group's, by
//! the same ids and addresses.

use super::super::types::Member;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// What a quorum queue's group replicates, batched: an entry holds up to
/// `MAX_BATCH` commands (openraft 0.9 writes and fsyncs each entry on its
/// own, so one a message would cost a fsync a message). A message's
/// sequence number in the queue is its entry's index times `MAX_BATCH`
/// plus its place in the batch (`seq_of`), so applying an entry twice
/// (after a restart) is seen and skipped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QBatch(pub(crate) Vec<QCommand>);

/// The most commands an entry holds.
pub(crate) const MAX_BATCH: usize = 1024;

/// The sequence number of the `i`th command of the entry at `index`.
pub(crate) fn seq_of(index: u64, i: usize) -> u64 {
    index * MAX_BATCH as u64 + i as u64
}

/// One thing the queue's home did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum QCommand {
    /// A message, as a store record in base64, and its deadline (ms since
    /// the epoch, 0: none) as the leader computed it.
    Enqueue { expires: u64, message: String },
    /// These messages left the queue (acked, rejected, expired, dropped,
    /// purged).
    Settle { seqs: Vec<u64> },
}

/// Whether the queue took what a command asked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QApplied(pub(crate) bool);

/// What an entry's commands answered, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QTaken(pub(crate) Vec<bool>);

openraft::declare_raft_types!(
    /// One quorum queue's group.
    pub(crate) Quorum:
        D = QBatch,
        R = QTaken,
        Node = Member,
);

pub(crate) type QRaft = openraft::Raft<Quorum>;
