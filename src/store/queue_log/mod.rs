//! One durable queue's message log: persistent messages appended as publish
//! records, acknowledgements as ack records, in numbered segment files.
//! Segments are deleted oldest-first once every message in them is acked
//! (a later segment may hold the acks that settle an earlier one, so order
//! matters), and a drained queue starts a fresh segment so its space comes back.

mod records;

use super::SyncState;
use super::live::LiveSet;
use super::pending::Pending;
use super::read_ahead::ReadAhead;
use super::record::{decode_publish, encode_publish, stored_priority};
use super::segment::{self, KIND_ACK, KIND_PUBLISH, KIND_RETURNED, current_file, reader, seg_path};
use super::unlink::remove_segment;
use crate::message::{Message, Meter};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Roll to a new segment past this size.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The largest record buffer a log keeps between appends.
const KEEP_BUF: usize = 64 * 1024;

/// Where a publish record sits: enough to read the message back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
}

/// A message found in the log at startup.
#[derive(Clone, Copy, Debug)]
pub struct Recovered {
    pub seq: u64,
    pub loc: Location,
    /// Its deadline in ms since the epoch (TTL or delay), 0 for none.
    pub expires: u64,
    /// Its priority property (0 if none), for priority queues.
    pub priority: u8,
    /// How often it came back to the queue (for x-delivery-count).
    pub returns: u32,
}

pub struct QueueLog {
    dir: PathBuf,
    /// Opened at its first write: an idle or drained queue holds no file
    /// open (100,000 durable queues would not fit in the descriptor limit).
    current: Option<Arc<File>>,
    current_id: u32,
    current_len: u64,
    /// Which persisted messages are unacked, and where.
    live: LiveSet,
    /// One more than the highest sequence number ever written.
    next_seq: u64,
    /// Group commit for a durable queue's log; none for a scratch log
    /// (transient messages paged out, discarded at restart): nothing in it
    /// is fsynced and no acks are recorded, since nothing is read back at boot.
    sync: Option<Arc<SyncState>>,
    /// What messages read back from disk count in.
    meter: Meter,
    /// Where a publish record is put together, kept between appends.
    buf: Vec<u8>,
    /// Read handles for paged messages, per segment.
    readers: HashMap<u32, File>,
    /// What was last read ahead of a paged backlog's consumers.
    ahead: ReadAhead,
    /// A scratch log's records not written out yet.
    pending: Pending,
}

/// The next live message of a run of paged ones.
pub struct Next {
    pub seq: u64,
    pub msg: Message,
    /// Its record's length, as in its `Location`.
    pub len: u32,
    /// Where the record after it starts.
    pub offset: u64,
}

impl QueueLog {
    /// Open (creating) a queue's log and return what it still holds, in
    /// queue order.
    pub fn open(
        dir: &Path,
        sync: Arc<SyncState>,
        meter: Meter,
    ) -> io::Result<(QueueLog, Vec<Recovered>)> {
        fs::create_dir_all(dir)?;
        let mut ids: Vec<u32> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let mut msgs: BTreeMap<u64, (Location, u64, u8, u32)> = BTreeMap::new();
        let mut next_seq = 0;
        for (i, id) in ids.iter().enumerate() {
            let path = seg_path(dir, *id);
            let scan = segment::scan(&path)?;
            if scan.valid_len < scan.file_len {
                if i + 1 == ids.len() {
                    tracing::warn!(
                        "{}: cutting a torn write of {} bytes at the tail",
                        path.display(),
                        scan.file_len - scan.valid_len
                    );
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(scan.valid_len)?;
                } else {
                    tracing::error!(
                        "{}: corrupt record at byte {}; {} bytes after it are skipped",
                        path.display(),
                        scan.valid_len,
                        scan.file_len - scan.valid_len
                    );
                }
            }
            for (kind, offset, payload) in scan.records {
                match kind {
                    KIND_PUBLISH => match payload.get(..16) {
                        Some(s) => {
                            let seq = u64::from_be_bytes(s[..8].try_into().unwrap_or([0; 8]));
                            let expires = u64::from_be_bytes(s[8..].try_into().unwrap_or([0; 8]));
                            let loc = Location {
                                segment: *id,
                                offset,
                                len: (payload.len() + 9) as u32,
                            };
                            let priority = stored_priority(&payload).unwrap_or(0);
                            msgs.insert(seq, (loc, expires, priority, 0));
                            next_seq = next_seq.max(seq + 1);
                        }
                        None => tracing::error!(
                            "{}: undecodable publish record skipped",
                            path.display()
                        ),
                    },
                    KIND_RETURNED => {
                        for c in payload.chunks_exact(12) {
                            let seq = u64::from_be_bytes(c[..8].try_into().unwrap_or([0; 8]));
                            let n = u32::from_be_bytes(c[8..].try_into().unwrap_or([0; 4]));
                            if let Some(m) = msgs.get_mut(&seq) {
                                m.3 = m.3.max(n);
                            }
                        }
                    }
                    KIND_ACK => {
                        for c in payload.chunks_exact(8) {
                            let seq = u64::from_be_bytes(c.try_into().unwrap_or([0; 8]));
                            msgs.remove(&seq);
                        }
                    }
                    _ => tracing::error!("{}: unknown record kind {kind}", path.display()),
                }
            }
        }
        let mut live = LiveSet::default();
        for id in &ids {
            live.open_segment(*id);
        }
        for (seq, (loc, ..)) in &msgs {
            live.insert(*seq, loc.segment);
        }
        let current_id = ids.last().map_or(1, |l| l + 1);
        live.open_segment(current_id);
        let mut log = QueueLog {
            dir: dir.to_path_buf(),
            current: None,
            current_id,
            current_len: 0,
            live,
            next_seq,
            sync: Some(sync),
            meter,
            buf: Vec::new(),
            readers: HashMap::new(),
            ahead: ReadAhead::new(true),
            pending: Pending::default(),
        };
        log.delete_settled_segments();
        Ok((
            log,
            msgs.into_iter()
                .map(|(seq, (loc, expires, priority, returns))| Recovered {
                    seq,
                    loc,
                    expires,
                    priority,
                    returns,
                })
                .collect(),
        ))
    }

    /// A scratch log in an empty `dir`: for transient messages paged out of
    /// memory. Only this process reads it; the store discards it at restart.
    pub fn scratch(dir: &Path, meter: Meter) -> io::Result<QueueLog> {
        fs::create_dir_all(dir)?;
        let mut live = LiveSet::default();
        live.open_segment(1);
        Ok(QueueLog {
            dir: dir.to_path_buf(),
            current: None,
            current_id: 1,
            current_len: 0,
            live,
            next_seq: 0,
            sync: None,
            meter,
            buf: Vec::new(),
            readers: HashMap::new(),
            ahead: ReadAhead::new(false),
            pending: Pending::default(),
        })
    }

    /// One more than the highest sequence number the log ever held: a
    /// recovered queue numbers on from here, so that each segment keeps
    /// covering one range of numbers.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The next message of a run of paged ones: the first live publish
    /// record from `offset` on in `segment`, before `end`. Records in
    /// between that are not live (acked, expired) or not publishes are
    /// skipped. Read through a buffer ahead of the consumers, so a backlog
    /// drains at a few syscalls per hundred messages. With `share` the
    /// message's body stays in that buffer (see `decode_publish`).
    pub fn read_next(
        &mut self,
        segment: u32,
        mut offset: u64,
        end: u64,
        share: bool,
    ) -> io::Result<Option<Next>> {
        let Some((seq, payload, here)) = self.next_live(segment, &mut offset, end)? else {
            return Ok(None);
        };
        let msg = decode_publish(&payload, share, self.meter)
            .map(|(_, m)| m)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("undecodable publish record at {here}"),
                )
            })?;
        Ok(Some(Next {
            seq,
            msg,
            len: (offset - here) as u32,
            offset,
        }))
    }

    /// Read a persisted message back (a paged backlog message being delivered).
    pub fn read(&mut self, loc: Location) -> io::Result<Message> {
        let (kind, payload) = self.record_at(loc.segment, loc.offset, Some(loc.len))?;
        if payload.len() + 9 != loc.len as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "record length differs from its location's",
            ));
        }
        if kind != KIND_PUBLISH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a publish record",
            ));
        }
        decode_publish(&payload, false, self.meter)
            .map(|(_, m)| m)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "undecodable publish record"))
    }

    /// Append a persistent message: the ticket to wait on for its fsync, and
    /// where it was written.
    pub fn append(&mut self, seq: u64, expires: u64, msg: &Message) -> io::Result<(u64, Location)> {
        let durable = self.sync.is_some();
        let encode = |out: &mut Vec<u8>| {
            segment::encode_with(KIND_PUBLISH, durable, out, |o| {
                encode_publish(seq, expires, msg, o)
            })
        };
        let (offset, len) = match durable {
            true => {
                let mut rec = std::mem::take(&mut self.buf);
                rec.clear();
                encode(&mut rec);
                let written = self.write(&rec);
                // Kept for the next message, unless one large message grew it.
                let len = rec.len() as u32;
                if rec.capacity() <= KEEP_BUF {
                    self.buf = rec;
                }
                (written?, len)
            }
            false => {
                if self.current_len >= SEGMENT_BYTES {
                    self.flush_pending()?;
                    self.roll()?;
                }
                let (dir, id, current) = (&self.dir, self.current_id, &mut self.current);
                let len = self
                    .pending
                    .append(|| current_file(current, dir, id, false).cloned(), encode)?;
                self.current_len += len as u64;
                (self.current_len - len as u64, len)
            }
        };
        self.live.insert(seq, self.current_id);
        self.next_seq = self.next_seq.max(seq + 1);
        let loc = Location {
            segment: self.current_id,
            offset,
            len,
        };
        let ticket = match (&self.sync, &self.current) {
            (Some(sync), Some(file)) => sync.written(file),
            _ => 0,
        };
        Ok((ticket, loc))
    }

    /// Record how often logged messages came back (not fsynced: a lost
    /// record only makes a count lower after a machine crash).
    pub fn returned(&mut self, counts: impl IntoIterator<Item = (u64, u32)>) {
        if self.sync.is_none() {
            return;
        }
        let mut payload = Vec::new();
        for (seq, n) in counts {
            if self.live.contains(seq) {
                payload.extend_from_slice(&seq.to_be_bytes());
                payload.extend_from_slice(&n.to_be_bytes());
            }
        }
        if payload.is_empty() {
            return;
        }
        let mut rec = Vec::with_capacity(payload.len() + 9);
        segment::encode(KIND_RETURNED, &payload, &mut rec);
        if let Err(e) = self.write(&rec) {
            tracing::error!("{}: cannot record returns: {e}", self.dir.display());
        }
    }

    /// Record that these messages are settled (acked, dropped or purged).
    /// Messages that were never persisted are ignored.
    pub fn ack(&mut self, seqs: impl IntoIterator<Item = u64>) {
        let mut payload = Vec::new();
        let mut settled = false;
        for seq in seqs {
            if self.live.remove(seq).is_some() {
                settled = true;
                if self.sync.is_some() {
                    payload.extend_from_slice(&seq.to_be_bytes());
                }
            }
        }
        if !settled {
            return;
        }
        if self.live.is_empty() {
            // Drained: nothing needs the old segments, not even these acks.
            if let Err(e) = self.roll() {
                tracing::error!("{}: cannot start a new segment: {e}", self.dir.display());
            }
        } else if self.sync.is_some() {
            let mut rec = Vec::with_capacity(payload.len() + 9);
            segment::encode(KIND_ACK, &payload, &mut rec);
            if let Err(e) = self.write(&rec) {
                tracing::error!("{}: cannot record acks: {e}", self.dir.display());
            }
        }
        self.delete_settled_segments();
    }

    /// The queue was deleted: its log goes with it.
    pub fn destroy(self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!("{}: cannot remove: {e}", self.dir.display());
        }
    }

    /// Append a record to the current segment; its offset there.
    fn write(&mut self, rec: &[u8]) -> io::Result<u64> {
        if self.current_len >= SEGMENT_BYTES {
            self.roll()?;
        }
        let durable = self.sync.is_some();
        let file = current_file(&mut self.current, &self.dir, self.current_id, durable)?;
        let offset = self.current_len;
        if let Err(e) = (&**file).write_all(rec) {
            // A partial write would shift every later offset: start afresh.
            self.roll()?;
            return Err(e);
        }
        self.current_len += rec.len() as u64;
        Ok(offset)
    }

    /// Write out a scratch log's gathered records.
    fn flush_pending(&mut self) -> io::Result<()> {
        let file = current_file(&mut self.current, &self.dir, self.current_id, false)?;
        self.pending.flush(file)
    }

    /// The record at `offset` of `segment`: from the records not written
    /// out yet, or through the read-ahead buffer.
    fn record_at(
        &mut self,
        segment: u32,
        offset: u64,
        known: Option<u32>,
    ) -> io::Result<(u8, Bytes)> {
        if segment == self.current_id && self.pending.holds(offset) {
            return self.pending.record(offset);
        }
        let file = reader(&mut self.readers, &self.dir, segment)?;
        self.ahead.record(file, segment, offset, known)
    }

    /// Start a new segment; its file is made at its first write.
    fn roll(&mut self) -> io::Result<()> {
        self.pending.reset();
        self.current_id += 1;
        self.current = None;
        self.current_len = 0;
        self.live.open_segment(self.current_id);
        Ok(())
    }

    fn delete_settled_segments(&mut self) {
        while let Some((id, n)) = self.live.oldest() {
            if n > 0 || id == self.current_id {
                break;
            }
            self.live.drop_segment(id);
            self.ahead.forget(id);
            let reader = self.readers.remove(&id);
            if let Err(e) = remove_segment(&seg_path(&self.dir, id), reader) {
                tracing::warn!("cannot remove segment {id}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn segments(dir: &Path) -> usize {
        fs::read_dir(dir).map_or(0, |rd| rd.count())
    }

    #[test]
    fn an_idle_or_drained_log_holds_no_segment_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meter = Meter::new();
        let (mut log, _) = QueueLog::open(dir.path(), SyncState::unsynced(), meter).expect("open");
        assert_eq!(segments(dir.path()), 0, "nothing written, no file");
        assert!(log.current.is_none());
        let m = Message::new(
            "".into(),
            "q".into(),
            Default::default(),
            crate::message::encode_header(&Default::default(), 1),
            Bytes::from_static(b"x"),
            meter,
        );
        let (_, loc) = log.append(0, 0, &m).expect("append");
        assert_eq!(segments(dir.path()), 1);
        assert_eq!(log.read(loc).expect("read").body, Bytes::from_static(b"x"));
        log.ack([0]);
        assert_eq!(segments(dir.path()), 0, "drained: its segment is gone");
        assert!(log.current.is_none(), "and no new one is open");
    }
}
