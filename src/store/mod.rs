//! Durable storage under the data dir: definitions (exchanges, queues,
//! bindings) and one append-only message log per durable queue, with a
//! group-commit sync thread. Publisher confirms for persistent messages wait
//! for the sync thread: a confirm is never sent before the data is on disk.
//!
//! ```text
//! data/
//!   format                      "ferretmq-data 2"
//!   vhosts/<hex vhost>/definitions.json
//!   vhosts/<hex vhost>/queues/<hex queue>/00000001.seg ...
//!   paged/<n>-<hex queue>/00000001.seg   transient messages paged out;
//!                                        removed at start
//! ```

pub mod definitions;
pub(crate) mod definitions_log;
pub(crate) mod live;
pub(crate) mod pending;
pub mod queue_log;
pub(crate) mod read_ahead;
pub(crate) mod record;
pub mod segment;
pub(crate) mod unlink;

use crate::queue::inbox::{InboxEvent, Sink};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

const FORMAT: &str = "ferretmq-data 2\n";
/// Under the data dir: queues' paged-out transient messages.
const SCRATCH: &str = "paged";

/// Group commit: writers take a ticket after writing; the sync thread
/// fsyncs every dirty file and publishes the highest ticket it covered.
pub struct SyncState {
    issued: AtomicU64,
    dirty: Mutex<Vec<Arc<File>>>,
    wake: Condvar,
    /// The highest ticket on disk.
    synced: AtomicU64,
    /// Connections waiting for a ticket to reach the disk: each is told
    /// (`InboxEvent::Synced`) when its own ticket is covered, and no other
    /// connection is woken.
    waiters: Mutex<Vec<(u64, Sink)>>,
    fsync: bool,
}

impl SyncState {
    /// One that never fsyncs, for unit tests of a log.
    #[cfg(test)]
    pub(crate) fn unsynced() -> Arc<SyncState> {
        Arc::new(SyncState {
            issued: AtomicU64::new(0),
            dirty: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            waiters: Mutex::default(),
            synced: AtomicU64::new(0),
            fsync: false,
        })
    }

    /// A write to `file` happened; the returned ticket is durable once
    /// `synced()` reaches it.
    pub fn written(&self, file: &Arc<File>) -> u64 {
        if !self.fsync {
            return 0;
        }
        {
            let mut d = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            if !d.iter().any(|f| Arc::ptr_eq(f, file)) {
                d.push(file.clone());
            }
        }
        let t = self.issued.fetch_add(1, Ordering::AcqRel) + 1;
        self.wake.notify_one();
        t
    }

    /// Tell `sink` once `ticket` is on disk. False if it already is (then
    /// nothing is sent).
    pub(crate) fn notify_when_synced(&self, ticket: u64, sink: &Sink) -> bool {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock the sync thread takes after storing
        // `synced`: either it sees this waiter or this sees its ticket.
        if self.synced() >= ticket {
            return false;
        }
        w.push((ticket, sink.clone()));
        true
    }

    /// `upto` is on disk: tell the connections that waited for it.
    fn wake_synced(&self, upto: u64) {
        let due: Vec<Sink> = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            let mut due = Vec::new();
            w.retain(|(t, s)| {
                let covered = *t <= upto;
                if covered {
                    due.push(s.clone());
                }
                !covered
            });
            due
        };
        for s in due {
            let _ = s.send(InboxEvent::Synced);
        }
    }

    /// The highest ticket known to be on disk.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }
}

fn sync_loop(state: Weak<SyncState>) {
    let mut synced = 0u64;
    loop {
        let Some(s) = state.upgrade() else { return };
        let (upto, files) = {
            let mut d = s.dirty.lock().unwrap_or_else(|p| p.into_inner());
            if s.issued.load(Ordering::Acquire) == synced {
                // Time out now and then to notice the store going away.
                d = s
                    .wake
                    .wait_timeout(d, Duration::from_millis(200))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            // A writer marks its file dirty before taking its ticket, so
            // every ticket up to `upto` has its file in this set (or in one
            // an earlier round already synced).
            (s.issued.load(Ordering::Acquire), std::mem::take(&mut *d))
        };
        let failed: Vec<Arc<File>> = files
            .into_iter()
            .filter(|f| match f.sync_data() {
                Ok(()) => false,
                Err(e) => {
                    tracing::error!("fsync failed: {e}; confirms wait until it succeeds");
                    true
                }
            })
            .collect();
        if !failed.is_empty() {
            // Nothing written since the last good round is known to be on
            // disk: confirm none of it, and try these files again shortly.
            s.dirty
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(failed);
            drop(s);
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if upto > synced {
            synced = upto;
            s.synced.store(upto, Ordering::Release);
            s.wake_synced(upto);
        }
    }
}

pub struct Store {
    root: PathBuf,
    /// Names the scratch directories of queues' paged-out transient
    /// messages apart (a queue re-declared under the same name gets a new one).
    scratch_ids: AtomicU64,
    pub sync: Arc<SyncState>,
    /// Message bytes this broker holds in memory (its memory alarm's input).
    pub meter: crate::message::Meter,
}

impl Store {
    pub fn open(root: &Path, fsync: bool) -> io::Result<Arc<Store>> {
        fs::create_dir_all(root.join("vhosts"))?;
        let format = root.join("format");
        match fs::read_to_string(&format) {
            Ok(s) if s == FORMAT => {}
            Ok(other) => {
                return Err(io::Error::other(format!(
                    "{} holds data format {:?}; this ferretmq reads {:?}",
                    root.display(),
                    other.trim(),
                    FORMAT.trim()
                )));
            }
            Err(_) => write_atomic(&format, FORMAT.as_bytes())?,
        }
        let sync = Arc::new(SyncState {
            issued: AtomicU64::new(0),
            dirty: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            waiters: Mutex::default(),
            synced: AtomicU64::new(0),
            fsync,
        });
        let weak = Arc::downgrade(&sync);
        std::thread::Builder::new()
            .name("ferretmq-sync".into())
            .spawn(move || sync_loop(weak))?;
        // Paged-out transient messages do not outlive the process.
        match fs::remove_dir_all(root.join(SCRATCH)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(Arc::new(Store {
            root: root.to_path_buf(),
            scratch_ids: AtomicU64::new(0),
            sync,
            meter: crate::message::Meter::new(),
        }))
    }

    pub fn vhost_dir(&self, vhost: &str) -> PathBuf {
        self.root.join("vhosts").join(hex(vhost))
    }

    /// The vhosts that have data on disk (for a data dir from before
    /// vhosts were listed in `access.json`).
    pub fn vhosts_on_disk(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(self.root.join("vhosts")) else {
            return Vec::new();
        };
        dir.filter_map(|e| unhex(e.ok()?.file_name().to_str()?))
            .collect()
    }

    /// Remove a deleted vhost's data.
    pub fn remove_vhost(&self, vhost: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.vhost_dir(vhost)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Where a queue pages out messages its log does not hold; created
    /// when first needed, emptied at every start.
    pub(crate) fn scratch_dir(&self, queue: &str) -> PathBuf {
        let id = self.scratch_ids.fetch_add(1, Ordering::Relaxed);
        let short: String = hex(queue).chars().take(64).collect();
        self.root.join(SCRATCH).join(format!("{id}-{short}"))
    }

    /// A queue's pager, in this store's scratch space.
    pub(crate) fn pager(&self, queue: &str) -> crate::queue::pager::Pager {
        crate::queue::pager::Pager::new(self.scratch_dir(queue), self.meter)
    }

    /// A quorum queue's group's Raft log and state (`cluster::quorum`).
    pub(crate) fn quorum_group_dir(&self, group: &str) -> PathBuf {
        self.root.join("cluster").join("quorum").join(group)
    }

    pub fn queue_dir(&self, vhost: &str, queue: &str) -> PathBuf {
        self.vhost_dir(vhost).join("queues").join(hex(queue))
    }
}

/// File-system-safe, reversible name for a vhost or queue.
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// Write a file so that a crash leaves either the old or the new contents.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
