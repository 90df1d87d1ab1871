//! The metadata group's state machine: what the committed commands built,
//! the membership, and its snapshot (`DATA/cluster/snapshot.json`, written
//! before the log it covers is purged). Applying a command also carries it
//! out on this node (`Effect`), so every node's broker follows the log.

use super::log_store::replace_file;
use super::types::{
    Applied, Command, Entry, LogId, Member, Membership, Meta, NodeId, StorageError, StorageIOError,
};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a committed command does to this node's broker.
pub(crate) type Effect = Arc<dyn Fn(&Command) + Send + Sync>;

/// Everything the log built, as a snapshot carries it.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Data {
    pub(crate) last_applied: Option<LogId>,
    pub(crate) membership: Membership,
    pub(crate) parameters: BTreeMap<String, serde_json::Value>,
}

impl Data {
    fn apply(&mut self, c: &Command) {
        match c {
            Command::SetGlobalParameter { name, value } => {
                self.parameters.insert(name.clone(), value.clone());
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    meta: SnapshotMeta<NodeId, Member>,
    data: Vec<u8>,
}

pub(crate) struct StateMachine {
    dir: PathBuf,
    data: Data,
    snapshot: Arc<Mutex<Option<Stored>>>,
    effect: Effect,
}

fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("snapshot.json")
}

impl StateMachine {
    /// The state the last snapshot holds; openraft replays the log after it.
    pub(crate) fn open(dir: &Path, effect: Effect) -> io::Result<StateMachine> {
        let stored: Option<Stored> = match std::fs::read(snapshot_path(dir)) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(io::Error::other)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let data = match &stored {
            Some(s) => serde_json::from_slice(&s.data).map_err(io::Error::other)?,
            None => Data::default(),
        };
        for c in commands_of(&data) {
            effect(&c);
        }
        Ok(StateMachine {
            dir: dir.to_path_buf(),
            data,
            snapshot: Arc::new(Mutex::new(stored)),
            effect,
        })
    }

    fn install(&mut self, data: Data) {
        for c in commands_of(&data) {
            (self.effect)(&c);
        }
        self.data = data;
    }
}

/// The commands that rebuild `data` on a broker that has none of it.
fn commands_of(data: &Data) -> Vec<Command> {
    data.parameters
        .iter()
        .map(|(name, value)| Command::SetGlobalParameter {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

pub(crate) struct Builder {
    dir: PathBuf,
    data: Data,
    snapshot: Arc<Mutex<Option<Stored>>>,
}

impl RaftSnapshotBuilder<Meta> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Meta>, StorageError> {
        let bytes =
            serde_json::to_vec(&self.data).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let meta = SnapshotMeta {
            last_log_id: self.data.last_applied,
            last_membership: self.data.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.data.last_applied.map_or(0, |l| l.index),
                crate::clock::system_now_ms()
            ),
        };
        let stored = Stored {
            meta: meta.clone(),
            data: bytes.clone(),
        };
        let file =
            serde_json::to_vec(&stored).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let path = snapshot_path(&self.dir);
        tokio::task::spawn_blocking(move || replace_file(&path, &file))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(stored);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<Meta> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.data.last_applied, self.data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for e in entries {
            self.data.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(c) => {
                    self.data.apply(&c);
                    (self.effect)(&c);
                }
                EntryPayload::Membership(m) => {
                    self.data.membership = StoredMembership::new(Some(e.log_id), m);
                }
            }
            replies.push(Applied);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        Builder {
            dir: self.dir.clone(),
            data: self.data.clone(),
            snapshot: self.snapshot.clone(),
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
        let bytes = snapshot.into_inner();
        let data: Data = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = Stored {
            meta: meta.clone(),
            data: bytes,
        };
        let file = serde_json::to_vec(&stored)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let path = snapshot_path(&self.dir);
        tokio::task::spawn_blocking(move || replace_file(&path, &file))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(stored);
        self.install(data);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Meta>>, StorageError> {
        let s = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        Ok(s.as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        }))
    }
}
