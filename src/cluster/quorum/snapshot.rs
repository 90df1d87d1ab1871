//! A quorum queue group's snapshots: the messages the queue holds as of an
//! index, so that the group's log can be cut behind it and a member too far
//! behind can be given the queue whole. Taken only when the queue holds
//! few messages (`worth_it`): a queue with a long backlog keeps its log
//! until the backlog drains, as RabbitMQ's quorum queues do.

use super::super::state_machine::{Stored, store};
use super::super::types::{LogId, Member, NodeId, StorageError, StorageIOError};
use super::types::Quorum;
use base64::Engine;
use openraft::{RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The most messages a snapshot is taken with.
pub(super) const MAX_MESSAGES: usize = 4096;

/// Whether to take a snapshot `since` commands (messages published and
/// settled) after the last one (`[cluster] quorum_snapshot_after`), with
/// the queue holding `messages`.
pub(super) fn worth_it(since: u64, every: u64, messages: usize) -> bool {
    since >= every && messages <= MAX_MESSAGES
}

/// What a snapshot holds: each message's sequence number and publish
/// record (base64).
#[derive(Default, Serialize, Deserialize)]
pub(super) struct Data {
    pub(super) messages: Vec<(u64, String)>,
}

impl Data {
    pub(super) fn of(records: Vec<(u64, bytes::Bytes)>) -> Data {
        let b64 = base64::engine::general_purpose::STANDARD;
        Data {
            messages: records
                .into_iter()
                .map(|(seq, r)| (seq, b64.encode(r)))
                .collect(),
        }
    }
}

/// The queue as of an index, read when openraft asked for a builder (so
/// at exactly that index), written out when it builds.
pub(crate) struct Builder {
    pub(super) dir: PathBuf,
    pub(super) applied: Option<LogId>,
    pub(super) membership: StoredMembership<NodeId, Member>,
    pub(super) data: Data,
    pub(super) current: Arc<Mutex<Option<Stored>>>,
}

impl RaftSnapshotBuilder<Quorum> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Quorum>, StorageError> {
        let data =
            serde_json::to_vec(&self.data).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.applied.map_or(0, |l| l.index),
                crate::clock::system_now_ms()
            ),
        };
        let stored = Stored { meta, data };
        store(&self.dir, &stored).await?;
        let snapshot = stored.snapshot();
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(stored);
        Ok(snapshot)
    }
}
