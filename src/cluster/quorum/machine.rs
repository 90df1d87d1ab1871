//! A quorum queue's state machine on one member. What it applies goes into
//! the queue's message log in `DATA/vhosts/…/queues/<queue>/`: on the
//! queue's home through the queue itself (which delivers it), on the other
//! members straight into the log, which holds it should the home move
//! here. The log keeps what was applied, so nothing else is recorded: after
//! a restart openraft applies the committed entries again and those whose
//! index the log has seen are skipped.

use super::super::state_machine::{Stored, store};
use super::super::types::{LogId, Member, NodeId, StorageError, StorageIOError};
use super::snapshot::{self, Builder, Data};
use super::types::{QApplied, QCommand, QTaken, Quorum, seq_of};
use crate::message::Meter;
use crate::queue::Queue;
use crate::store::queue_log::QueueLog;
use base64::Engine;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, Snapshot, SnapshotMeta, StoredMembership};
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
    /// The group's directory.
    dir: std::path::PathBuf,
    /// The queue's message log's directory and its sync (a member given a
    /// snapshot writes it anew).
    queue_dir: std::path::PathBuf,
    sync: Arc<crate::store::SyncState>,
    /// The latest snapshot, and entries applied since it.
    current: Arc<Mutex<Option<Stored>>>,
    since: u64,
    every: u64,
    /// Told when a snapshot is worth taking (`snapshot::worth_it`).
    wanted: Arc<tokio::sync::Notify>,
}

/// Where a group's state machine keeps what it keeps.
pub(crate) struct Paths<'a> {
    pub(crate) dir: &'a std::path::Path,
    pub(crate) queue_dir: std::path::PathBuf,
    pub(crate) sync: Arc<crate::store::SyncState>,
    /// Entries between snapshots.
    pub(crate) every: u64,
}

impl QueueMachine {
    pub(crate) fn new(
        target: Arc<Mutex<Target>>,
        meter: Meter,
        broker: Weak<crate::broker::Broker>,
        vhost: String,
        paths: Paths<'_>,
        wanted: Arc<tokio::sync::Notify>,
    ) -> QueueMachine {
        let dir = paths.dir;
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
            dir: dir.to_path_buf(),
            queue_dir: paths.queue_dir,
            sync: paths.sync,
            current: Arc::new(Mutex::new(Stored::read(dir))),
            since: 0,
            every: paths.every.max(1),
            wanted,
        }
    }

    /// How many messages the queue holds on this member.
    fn messages(&self) -> usize {
        match &*self.target.lock().unwrap_or_else(|p| p.into_inner()) {
            Target::Home(q) => q.upgrade().map_or(0, |q| q.logged()),
            Target::Replica(log) => log.live(),
            Target::None => 0,
        }
    }

    /// What the queue holds now, for a snapshot.
    fn records(&self) -> std::io::Result<Vec<(u64, bytes::Bytes)>> {
        let mut t = self.target.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *t {
            Target::Home(q) => match q.upgrade() {
                Some(q) => {
                    drop(t);
                    q.live_records()
                }
                None => Ok(Vec::new()),
            },
            Target::Replica(log) => log.live_records(),
            Target::None => Ok(Vec::new()),
        }
    }

    /// Make this member's queue what a snapshot holds.
    fn install(&mut self, data: Data) -> std::io::Result<()> {
        let mut t = self.target.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *t {
            Target::Home(_) => {
                // A leader is never given a snapshot; a home that is not
                // the leader any more is moved away from soon.
                tracing::error!(
                    "quorum queue home {}: given a snapshot; ignored",
                    self.dir.display()
                );
                Ok(())
            }
            Target::Replica(_) | Target::None => {
                if let Target::Replica(old) = std::mem::replace(&mut *t, Target::None) {
                    old.destroy();
                }
                let (mut log, _) = QueueLog::open(&self.queue_dir, self.sync.clone(), self.meter)?;
                let b64 = base64::engine::general_purpose::STANDARD;
                for (seq, record) in data.messages {
                    let Ok(raw) = b64.decode(&record) else {
                        continue;
                    };
                    let expires = raw
                        .get(8..16)
                        .and_then(|s| s.try_into().ok())
                        .map_or(0, u64::from_be_bytes);
                    if let Some((_, msg)) =
                        crate::store::record::decode_publish(&raw.into(), false, self.meter)
                    {
                        log.append(seq, expires, &msg)?;
                    }
                }
                *t = Target::Replica(Box::new(log));
                Ok(())
            }
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

impl RaftStateMachine<Quorum> for QueueMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, Member>), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<QTaken>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<Quorum>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for e in entries {
            self.applied = Some(e.log_id);
            replies.push(match e.payload {
                EntryPayload::Blank => QTaken(Vec::new()),
                EntryPayload::Normal(batch) => {
                    self.since += batch.0.len() as u64;
                    QTaken(
                        batch
                            .0
                            .into_iter()
                            .enumerate()
                            .map(|(i, c)| self.apply_one(seq_of(e.log_id.index, i), c).0)
                            .collect(),
                    )
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                    QTaken(Vec::new())
                }
            });
        }
        self.save()
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        if snapshot::worth_it(self.since, self.every, self.messages()) {
            self.wanted.notify_one();
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        self.since = 0;
        let data = match self.records() {
            Ok(r) => Data::of(r),
            Err(e) => {
                // Better no snapshot than a wrong one: this one is never
                // installed (its index says it holds nothing new).
                tracing::error!(
                    "quorum queue {}: cannot read its messages: {e}",
                    self.dir.display()
                );
                Data::default()
            }
        };
        Builder {
            dir: self.dir.clone(),
            applied: self.applied,
            membership: self.membership.clone(),
            data,
            current: self.current.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let fail = |e: &dyn std::error::Error| {
            StorageIOError::read_snapshot(
                Some(meta.signature()),
                &std::io::Error::other(e.to_string()),
            )
        };
        let bytes = snapshot.into_inner();
        let data: Data = serde_json::from_slice(&bytes).map_err(|e| fail(&e))?;
        self.install(data).map_err(|e| fail(&e))?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.since = 0;
        self.save().map_err(|e| fail(&e))?;
        let stored = Stored {
            meta: meta.clone(),
            data: bytes,
        };
        store(&self.dir, &stored).await?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(stored);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Quorum>>, StorageError> {
        Ok(self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Stored::snapshot))
    }
}

#[cfg(test)]
impl QueueMachine {
    pub(super) fn apply_for_test(&mut self, seq: u64, c: QCommand) -> bool {
        self.apply_one(seq, c).0
    }

    pub(super) fn records_for_test(&self) -> Vec<(u64, bytes::Bytes)> {
        self.records().expect("records")
    }

    pub(super) fn install_for_test(&mut self, data: Data) {
        self.install(data).expect("install");
    }
}
