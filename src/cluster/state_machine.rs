//! The metadata group's state machine. Applying a committed command carries
//! it out on this node's broker (`Hooks::apply`); what has been applied is
//! recorded in `DATA/cluster/applied.json` after each batch, so a restart
//! does not apply a change twice (deleting a vhost again after it was
//! re-created would lose its data). A snapshot (`snapshot.json`, written
//! before the log it covers is purged) holds the broker's replicated
//! definitions as `Hooks::export` gives them; installing one hands them to
//! `Hooks::import`.

use super::log_store::replace_file;
use super::types::{
    Applied, Command, Entry, LogId, Member, Membership, Meta, NodeId, StorageError, StorageIOError,
};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the state machine asks of the broker it runs on.
#[derive(Clone)]
pub(crate) struct Hooks {
    pub(crate) apply: Arc<dyn Fn(&Command) -> Applied + Send + Sync>,
    pub(crate) export: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
    pub(crate) import: Arc<dyn Fn(&serde_json::Value) + Send + Sync>,
    /// The replicated topology (`replicate_topology`; Null otherwise), kept
    /// with what has been applied: this node's own disk holds only what
    /// lives here, and after a restart the rest comes back from it.
    pub(crate) topology: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
    pub(crate) restore: Arc<dyn Fn(&serde_json::Value) + Send + Sync>,
}

impl Hooks {
    /// For tests of the storage alone: nothing is carried out.
    #[cfg(test)]
    pub(crate) fn none() -> Hooks {
        Hooks {
            apply: Arc::new(|_| Applied(Ok(true))),
            export: Arc::new(|| serde_json::Value::Null),
            import: Arc::new(|_| {}),
            topology: Arc::new(|| serde_json::Value::Null),
            restore: Arc::new(|_| {}),
        }
    }
}

/// Where the state machine stands.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Applying {
    last_applied: Option<LogId>,
    membership: Membership,
    /// The founding change (`ReplaceDefinitions`) has been applied.
    #[serde(default)]
    founded: bool,
    /// The replicated topology as of `last_applied` (see `Hooks`).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    topology: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct SnapshotData {
    applied: Applying,
    definitions: serde_json::Value,
}

/// A snapshot as `snapshot.json` holds it (the metadata group's and each
/// quorum queue group's).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) meta: SnapshotMeta<NodeId, Member>,
    pub(crate) data: Vec<u8>,
}

impl Stored {
    /// As openraft hands it on.
    pub(crate) fn snapshot<C>(&self) -> Snapshot<C>
    where
        C: openraft::RaftTypeConfig<NodeId = NodeId, Node = Member, SnapshotData = Cursor<Vec<u8>>>,
    {
        Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(self.data.clone())),
        }
    }

    /// The one in `dir`, if any (unreadable: none).
    pub(crate) fn read(dir: &Path) -> Option<Stored> {
        read_json(&dir.join("snapshot.json")).ok().flatten()
    }
}

pub(crate) struct StateMachine {
    dir: PathBuf,
    applied: Applying,
    snapshot: Arc<Mutex<Option<Stored>>>,
    hooks: Hooks,
    /// Tells the node when the founding change is in (see `Applying`).
    founded: Arc<tokio::sync::watch::Sender<bool>>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).map_err(io::Error::other)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl StateMachine {
    pub(crate) fn open(
        dir: &Path,
        hooks: Hooks,
        founded: Arc<tokio::sync::watch::Sender<bool>>,
    ) -> io::Result<StateMachine> {
        let stored: Option<Stored> = read_json(&dir.join("snapshot.json"))?;
        let recorded = read_json::<Applying>(&dir.join("applied.json"))?;
        // A snapshot ahead of what applied.json records was being installed
        // when the node stopped (snapshot.json is written first): finish
        // the install, or the node would come back with a state machine
        // behind its own snapshot and without what it told the leader it had.
        let unfinished = match &stored {
            Some(s) if s.meta.last_log_id > recorded.as_ref().and_then(|a| a.last_applied) => {
                let data: SnapshotData =
                    serde_json::from_slice(&s.data).map_err(io::Error::other)?;
                Some((
                    Applying {
                        last_applied: s.meta.last_log_id,
                        membership: s.meta.last_membership.clone(),
                        founded: data.applied.founded,
                        topology: serde_json::Value::Null,
                    },
                    data.definitions,
                ))
            }
            _ => None,
        };
        let applied = match (&unfinished, recorded) {
            (Some((a, _)), _) => a.clone(),
            (None, Some(a)) => a,
            (None, None) => Applying::default(),
        };
        founded.send_replace(applied.founded);
        let sm = StateMachine {
            dir: dir.to_path_buf(),
            applied,
            snapshot: Arc::new(Mutex::new(stored)),
            hooks,
            founded,
        };
        let mut sm = sm;
        if let Some((_, definitions)) = unfinished {
            tracing::info!("cluster: finishing the install of a snapshot interrupted by a stop");
            (sm.hooks.import)(&definitions);
            (sm.hooks.restore)(&serde_json::Value::Null);
            sm.applied.topology = (sm.hooks.topology)();
            let bytes = serde_json::to_vec(&sm.applied).map_err(io::Error::other)?;
            replace_file(&dir.join("applied.json"), &bytes)?;
        } else {
            (sm.hooks.restore)(&sm.applied.topology);
        }
        Ok(sm)
    }

    async fn save_applied(&self) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(&self.applied)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        let path = self.dir.join("applied.json");
        tokio::task::spawn_blocking(move || replace_file(&path, &bytes))
            .await
            .map_err(|e| StorageIOError::write_state_machine(&e))?
            .map_err(|e| StorageIOError::write_state_machine(&e).into())
    }
}

/// Write `stored` as `dir`'s `snapshot.json`, whole or not at all.
pub(crate) async fn store(dir: &Path, stored: &Stored) -> Result<(), StorageError> {
    let fail = |e: &dyn std::error::Error| {
        StorageIOError::write_snapshot(
            Some(stored.meta.signature()),
            &io::Error::other(e.to_string()),
        )
    };
    let file = serde_json::to_vec(stored).map_err(|e| fail(&e))?;
    let path = dir.join("snapshot.json");
    tokio::task::spawn_blocking(move || replace_file(&path, &file))
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e).into())
}

pub(crate) struct Builder {
    dir: PathBuf,
    data: SnapshotData,
    snapshot: Arc<Mutex<Option<Stored>>>,
}

impl RaftSnapshotBuilder<Meta> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Meta>, StorageError> {
        let bytes =
            serde_json::to_vec(&self.data).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let applied = &self.data.applied;
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                applied.last_applied.map_or(0, |l| l.index),
                crate::clock::system_now_ms()
            ),
        };
        let stored = Stored {
            meta: meta.clone(),
            data: bytes.clone(),
        };
        store(&self.dir, &stored).await?;
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
        Ok((self.applied.last_applied, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for e in entries {
            self.applied.last_applied = Some(e.log_id);
            replies.push(match e.payload {
                EntryPayload::Blank => Applied(Ok(true)),
                EntryPayload::Normal(c) => {
                    if matches!(c, Command::ReplaceDefinitions(_)) && !self.applied.founded {
                        self.applied.founded = true;
                        self.founded.send_replace(true);
                    }
                    (self.hooks.apply)(&c)
                }
                EntryPayload::Membership(m) => {
                    self.applied.membership = StoredMembership::new(Some(e.log_id), m);
                    Applied(Ok(true))
                }
            });
        }
        self.applied.topology = (self.hooks.topology)();
        self.save_applied().await?;
        Ok(replies)
    }

    /// The definitions are taken now, between two applies, so that they
    /// are exactly what the log up to `last_applied` built.
    async fn get_snapshot_builder(&mut self) -> Builder {
        Builder {
            dir: self.dir.clone(),
            data: SnapshotData {
                applied: self.applied.clone(),
                definitions: (self.hooks.export)(),
            },
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
        tracing::info!(
            "cluster: installing a snapshot of the metadata up to log index {}",
            meta.last_log_id.map_or(0, |l| l.index)
        );
        let data: SnapshotData = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let stored = Stored {
            meta: meta.clone(),
            data: bytes,
        };
        store(&self.dir, &stored).await?;
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(stored);
        (self.hooks.import)(&data.definitions);
        self.applied = Applying {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            founded: data.applied.founded,
            topology: (self.hooks.topology)(),
        };
        self.founded.send_replace(data.applied.founded);
        self.save_applied().await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Meta>>, StorageError> {
        let s = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        Ok(s.as_ref().map(Stored::snapshot))
    }
}
