//! The metadata group's Raft log and vote on disk, in `DATA/cluster/`:
//! `log.jsonl` holds one record a line (an entry, a truncation, a purge),
//! fsynced before openraft is told an append is done; `vote.json` is
//! replaced atomically. Replaying the records rebuilds the log; a torn last
//! line is an append never acknowledged, and is dropped. A purge rewrites
//! the file with what is left, so it stays as long as the unsnapshotted log.

use super::types::{LogId, Meta, StorageError, StorageIOError, Vote};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogId, RaftLogReader, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A group's type configuration whose log this store can keep: the
/// metadata group's, and each quorum queue's.
pub(crate) trait Logged:
    RaftTypeConfig<NodeId = u64, Entry = openraft::Entry<Self>, D: Clone> + Sized
where
    openraft::Entry<Self>: Serialize + DeserializeOwned,
{
}

impl<C> Logged for C
where
    C: RaftTypeConfig<NodeId = u64, Entry = openraft::Entry<C>, D: Clone>,
    openraft::Entry<C>: Serialize + DeserializeOwned,
{
}

type Entry<C> = openraft::Entry<C>;

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
enum Record<C: Logged>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    Entry(Entry<C>),
    /// Entries from this index on are gone.
    Truncate(u64),
    /// Entries up to and including this one are gone.
    Purge(LogId),
}

struct Log<C: Logged>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    entries: BTreeMap<u64, Entry<C>>,
    purged: Option<LogId>,
    vote: Option<Vote>,
}

/// Cheap to clone: the log reader openraft asks for is another handle.
pub(crate) struct LogStore<C: Logged = Meta>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    dir: PathBuf,
    log: Arc<Mutex<Log<C>>>,
    /// The open `log.jsonl`, appended to off the runtime's threads.
    file: Arc<Mutex<File>>,
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("log.jsonl")
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Write `bytes` to `path` so that it is there whole or not at all. The
/// temporary file's name is unique: a snapshot may be built while another
/// is installed.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{n}"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl<C: Logged> Clone for LogStore<C>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    fn clone(&self) -> Self {
        LogStore {
            dir: self.dir.clone(),
            log: self.log.clone(),
            file: self.file.clone(),
        }
    }
}

fn lines<C: Logged>(records: &[Record<C>]) -> io::Result<Vec<u8>>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

impl<C: Logged> LogStore<C>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    pub(crate) fn open(dir: &Path) -> io::Result<LogStore<C>> {
        std::fs::create_dir_all(dir)?;
        let mut log = Log {
            entries: BTreeMap::new(),
            purged: None,
            vote: None,
        };
        let path = log_path(dir);
        let mut torn = false;
        match File::open(&path) {
            Ok(f) => {
                for line in io::BufReader::new(f).lines() {
                    match serde_json::from_str::<Record<C>>(&line?) {
                        Ok(Record::Entry(e)) => {
                            log.entries.insert(e.log_id.index, e);
                        }
                        Ok(Record::Truncate(from)) => {
                            log.entries.split_off(&from);
                        }
                        Ok(Record::Purge(upto)) => {
                            log.entries = log.entries.split_off(&(upto.index + 1));
                            log.purged = Some(upto);
                        }
                        Err(e) => {
                            tracing::warn!(
                                "{}: a torn record at its end is dropped: {e}",
                                path.display()
                            );
                            torn = true;
                            break;
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match std::fs::read(dir.join("vote.json")) {
            Ok(b) => log.vote = Some(serde_json::from_slice(&b).map_err(io::Error::other)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if torn {
            rewrite(&path, &log)?;
        }
        Ok(LogStore {
            dir: dir.to_path_buf(),
            file: Arc::new(Mutex::new(open_append(&path)?)),
            log: Arc::new(Mutex::new(log)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log<C>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append records and fsync, on a blocking thread.
    async fn write(&self, records: Vec<Record<C>>) -> io::Result<()> {
        #[cfg(test)]
        if failing::fails(&self.dir) {
            return Err(io::Error::other("a write failure made by a test"));
        }
        let buf = lines(&records)?;
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            f.write_all(&buf)?;
            f.sync_data()
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Whether this node has ever been part of a cluster (it voted or holds
    /// a log): a fresh node joins one, a member only restarts.
    pub(crate) fn is_fresh(&self) -> bool {
        let l = self.lock();
        l.vote.is_none() && l.entries.is_empty() && l.purged.is_none()
    }
}

/// The whole remaining log as a new file (after a purge, or a torn tail).
fn rewrite<C: Logged>(path: &Path, log: &Log<C>) -> io::Result<()>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    let mut records: Vec<Record<C>> = log.purged.map(Record::Purge).into_iter().collect();
    records.extend(log.entries.values().cloned().map(Record::Entry));
    replace_file(path, &lines(&records)?)
}

impl<C: Logged> RaftLogReader<C> for LogStore<C>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError> {
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl<C: Logged> RaftLogStorage<C> for LogStore<C>
where
    Entry<C>: Serialize + DeserializeOwned,
{
    type LogReader = LogStore<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError> {
        let l = self.lock();
        let last = l
            .entries
            .values()
            .next_back()
            .map(|e| *e.get_log_id())
            .or(l.purged);
        Ok(LogState {
            last_purged_log_id: l.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        let path = self.dir.join("vote.json");
        tokio::task::spawn_blocking(move || replace_file(&path, &bytes))
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<C>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<C>> = entries.into_iter().collect();
        {
            let mut l = self.lock();
            for e in &entries {
                l.entries.insert(e.log_id.index, e.clone());
            }
        }
        let result = self
            .write(entries.into_iter().map(Record::Entry).collect())
            .await;
        let failed = result
            .as_ref()
            .err()
            .map(|e| StorageIOError::write_logs(e).into());
        callback.log_io_completed(result);
        failed.map_or(Ok(()), Err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock().entries.split_off(&log_id.index);
        self.write(vec![Record::Truncate(log_id.index)])
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut l = self.lock();
            l.entries = l.entries.split_off(&(log_id.index + 1));
            l.purged = Some(log_id);
        }
        let path = log_path(&self.dir);
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            // Hold the file so no append lands in the old one meanwhile.
            let mut f = store.file.lock().unwrap_or_else(|p| p.into_inner());
            {
                let l = store.lock();
                rewrite(&path, &l)?;
            }
            *f = open_append(&path)?;
            Ok::<(), io::Error>(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e))?
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

/// Tests make the log of one data dir fail its writes, as a full or broken
/// disk would.
#[cfg(test)]
pub(crate) mod failing {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(crate) fn set(dir: &Path, fail: bool) {
        let mut d = DIRS.lock().unwrap_or_else(|p| p.into_inner());
        d.retain(|x| x != dir);
        if fail {
            d.push(dir.to_path_buf());
        }
    }

    pub(super) fn fails(dir: &Path) -> bool {
        DIRS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|x| x == dir)
    }
}
