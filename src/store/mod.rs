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
//! ```

pub mod definitions;
pub mod queue_log;
pub mod segment;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;
use tokio::sync::watch;

const FORMAT: &str = "ferretmq-data 2\n";

/// Group commit: writers take a ticket after writing; the sync thread
/// fsyncs every dirty file and publishes the highest ticket it covered.
pub struct SyncState {
    issued: AtomicU64,
    dirty: Mutex<Vec<Arc<File>>>,
    wake: Condvar,
    durable: watch::Sender<u64>,
    /// The same value as `durable`, for readers on the hot path: a load
    /// instead of the watch's read lock.
    synced: AtomicU64,
    fsync: bool,
}

impl SyncState {
    /// A write to `file` happened; the returned ticket is durable once
    /// `durable()` reaches it.
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

    /// Wake-ups when more becomes durable.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
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
        for f in &files {
            if let Err(e) = f.sync_data() {
                tracing::error!("fsync failed: {e}");
            }
        }
        if upto > synced {
            synced = upto;
            s.synced.store(upto, Ordering::Release);
            let _ = s.durable.send(upto);
        }
    }
}

pub struct Store {
    root: PathBuf,
    pub sync: Arc<SyncState>,
    /// Message bytes this broker holds in memory (its memory alarm's input).
    pub meter: crate::message::Meter,
    /// Serialises definition writes (each writes a whole snapshot).
    defs_lock: Mutex<()>,
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
        let (tx, _) = watch::channel(0);
        let sync = Arc::new(SyncState {
            issued: AtomicU64::new(0),
            dirty: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            durable: tx,
            synced: AtomicU64::new(0),
            fsync,
        });
        let weak = Arc::downgrade(&sync);
        std::thread::Builder::new()
            .name("ferretmq-sync".into())
            .spawn(move || sync_loop(weak))?;
        Ok(Arc::new(Store {
            root: root.to_path_buf(),
            sync,
            meter: crate::message::Meter::new(),
            defs_lock: Mutex::new(()),
        }))
    }

    pub fn vhost_dir(&self, vhost: &str) -> PathBuf {
        self.root.join("vhosts").join(hex(vhost))
    }

    pub fn queue_dir(&self, vhost: &str, queue: &str) -> PathBuf {
        self.vhost_dir(vhost).join("queues").join(hex(queue))
    }

    pub fn lock_definitions(&self) -> std::sync::MutexGuard<'_, ()> {
        self.defs_lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// File-system-safe, reversible name for a vhost or queue.
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
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
