//! A quorum queue's state machine on one member. What it applies goes into
//! the queue's message log in `DATA/vhosts/…/queues/<queue>/`: on the
//! queue's home through the queue itself (which delivers it), on the other
//! members straight into the log, which holds it should the home move
//! here. The log keeps what was applied, so nothing else is recorded: after
//! a restart openraft applies the committed entries again and those whose
//! index the log has seen are skipped.

use super::super::types::{LogId, Member, NodeId, StorageError, StorageIOError};
use super::types::{QApplied, QCommand, Quorum};
use crate::message::Meter;
use crate::queue::Queue;
use crate::store::queue_log::QueueLog;
use base64::Engine;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, StoredMembership};
use std::io::Cursor;
use std::sync::{Arc, Mutex, Weak};

#[derive(serde::Serialize, serde::Deserialize)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, Member>,
}

/// Where applied entries go on this member.
pub(crate) enum Target {
    /// The queue is homed here: it takes them.
    Home(Weak<Queue>),
    /// Homed elsewhere: its log here keeps them.
    Replica(Box<QueueLog>),
    /// Neither yet (being set up), or gone.
    None,
}

pub(crate) struct QueueMachine {
    pub(crate) target: Arc<Mutex<Target>>,
    pub(crate) meter: Meter,
    /// For what the queue dead-letters when it takes a message.
    broker: Weak<crate::broker::Broker>,
    vhost: String,
    /// `applied.json` in the group's directory.
    path: std::path::PathBuf,
    applied: Option<LogId>,
    membership: StoredMembership<NodeId, Member>,
}

impl QueueMachine {
    pub(crate) fn new(
        target: Arc<Mutex<Target>>,
        meter: Meter,
        broker: Weak<crate::broker::Broker>,
        vhost: String,
        dir: &std::path::Path,
    ) -> QueueMachine {
        let path = dir.join("applied.json");
        let (applied, membership) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Applied>(&b).ok())
            .map_or((None, StoredMembership::default()), |a| {
                (a.last_applied, a.membership)
            });
        QueueMachine {
            target,
            meter,
            broker,
            vhost,
            path,
            applied,
            membership,
        }
    }

    /// What was applied, so that a restart does not apply it again. Not
    /// fsynced: a message applied twice after a power loss is one the
    /// log has seen already, and is skipped.
    fn save(&self) -> std::io::Result<()> {
        let a = Applied {
            last_applied: self.applied,
            membership: self.membership.clone(),
        };
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&a).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, &self.path)
    }

    fn apply_one(&self, seq: u64, c: QCommand) -> QApplied {
        let mut t = self.target.lock().unwrap_or_else(|p| p.into_inner());
        match c {
            QCommand::Enqueue { expires, message } => {
                let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&message) else {
                    return QApplied(false);
                };
                let Some((_, msg)) =
                    crate::store::record::decode_publish(&raw.into(), true, self.meter)
                else {
                    return QApplied(false);
                };
                match &mut *t {
                    Target::Home(q) => match q.upgrade() {
                        Some(q) => {
                            drop(t);
                            let (took, dead) = q.publish_replicated(seq, expires, Arc::new(msg));
                            if !dead.is_empty()
                                && let Some(v) =
                                    self.broker.upgrade().and_then(|b| b.vhost(&self.vhost))
                            {
                                v.dead_letter(&q, dead);
                            }
                            QApplied(took)
                        }
                        None => QApplied(false),
                    },
                    Target::Replica(log) => {
                        if seq >= log.next_seq()
                            && let Err(e) = log.append(seq, expires, &msg)
                        {
                            tracing::error!("quorum queue replica: cannot write a message: {e}");
                            return QApplied(false);
                        }
                        QApplied(true)
                    }
                    Target::None => QApplied(false),
                }
            }
            QCommand::Settle { seqs } => {
                match &mut *t {
                    Target::Home(q) => {
                        if let Some(q) = q.upgrade() {
                            drop(t);
                            q.settle_replicated(&seqs);
                        }
                    }
                    Target::Replica(log) => log.ack(seqs),
                    Target::None => {}
                }
                QApplied(true)
            }
        }
    }
}

/// Quorum queues take no snapshots yet (their log is kept whole), so a
/// builder is never asked for one.
pub(crate) struct NoSnapshots;

impl RaftSnapshotBuilder<Quorum> for NoSnapshots {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Quorum>, StorageError> {
        let e = std::io::Error::other("quorum queues take no snapshots");
        Err(StorageIOError::write_snapshot(None, &e).into())
    }
}

impl RaftStateMachine<Quorum> for QueueMachine {
    type SnapshotBuilder = NoSnapshots;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, Member>), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<QApplied>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<Quorum>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for e in entries {
            self.applied = Some(e.log_id);
            replies.push(match e.payload {
                EntryPayload::Blank => QApplied(true),
                EntryPayload::Normal(c) => self.apply_one(e.log_id.index, c),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                    QApplied(true)
                }
            });
        }
        self.save()
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> NoSnapshots {
        NoSnapshots
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &openraft::SnapshotMeta<NodeId, Member>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let e = std::io::Error::other("quorum queues take no snapshots");
        Err(StorageIOError::read_snapshot(None, &e).into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Quorum>>, StorageError> {
        Ok(None)
    }
}
