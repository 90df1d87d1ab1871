//! One durable queue's message log: persistent messages appended as publish
//! records, acknowledgements as ack records, in numbered segment files.
//! Segments are deleted oldest-first once every message in them is acked
//! (a later segment may hold the acks that settle an earlier one, so order
//! matters), and a drained queue starts a fresh segment so its space comes back.

use super::SyncState;
use super::segment::{self, KIND_ACK, KIND_PUBLISH, KIND_RETURNED};
use crate::codec::ContentHeader;
use crate::message::{Message, Meter};
use amq_protocol::frame::parsing::parse_content_header;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Roll to a new segment past this size.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

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
    current: Arc<File>,
    current_id: u32,
    current_len: u64,
    /// Unacked persisted messages per segment.
    live: BTreeMap<u32, usize>,
    /// Which segment holds each unacked persisted message.
    location: HashMap<u64, u32>,
    /// Group commit for a durable queue's log; none for a scratch log
    /// (transient messages paged out, discarded at restart): nothing in it
    /// is fsynced and no acks are recorded, since nothing is read back at boot.
    sync: Option<Arc<SyncState>>,
    /// What messages read back from disk count in.
    meter: Meter,
    scratch: Vec<u8>,
    /// Read handles for paged messages, per segment.
    readers: HashMap<u32, File>,
}

fn seg_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.seg"))
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
        let mut live: BTreeMap<u32, usize> = ids.iter().map(|id| (*id, 0)).collect();
        let mut location = HashMap::with_capacity(msgs.len());
        for (seq, (loc, ..)) in &msgs {
            *live.entry(loc.segment).or_default() += 1;
            location.insert(*seq, loc.segment);
        }
        let current_id = ids.last().map_or(1, |l| l + 1);
        let current = Arc::new(open_segment(dir, current_id)?);
        live.insert(current_id, 0);
        let mut log = QueueLog {
            dir: dir.to_path_buf(),
            current,
            current_id,
            current_len: 0,
            live,
            location,
            sync: Some(sync),
            meter,
            scratch: Vec::new(),
            readers: HashMap::new(),
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
        let current = Arc::new(create_segment(dir, 1)?);
        Ok(QueueLog {
            dir: dir.to_path_buf(),
            current,
            current_id: 1,
            current_len: 0,
            live: BTreeMap::from([(1, 0)]),
            location: HashMap::new(),
            sync: None,
            meter,
            scratch: Vec::new(),
            readers: HashMap::new(),
        })
    }

    /// Read a persisted message back (a paged backlog message being delivered).
    pub fn read(&mut self, loc: Location) -> io::Result<Message> {
        let file = match self.readers.entry(loc.segment) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(File::open(seg_path(&self.dir, loc.segment))?)
            }
        };
        let (kind, payload) = segment::read_at(file, loc.offset, loc.len)?;
        if kind != KIND_PUBLISH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a publish record",
            ));
        }
        decode_publish(&payload, self.meter)
            .map(|(_, m)| m)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "undecodable publish record"))
    }

    /// Append a persistent message: the ticket to wait on for its fsync, and
    /// where it was written.
    pub fn append(&mut self, seq: u64, expires: u64, msg: &Message) -> io::Result<(u64, Location)> {
        let mut payload = std::mem::take(&mut self.scratch);
        payload.clear();
        encode_publish(seq, expires, msg, &mut payload);
        let mut rec = Vec::with_capacity(payload.len() + 9);
        segment::encode(KIND_PUBLISH, &payload, &mut rec);
        self.scratch = payload;
        let offset = self.write(&rec)?;
        self.location.insert(seq, self.current_id);
        *self.live.entry(self.current_id).or_default() += 1;
        let loc = Location {
            segment: self.current_id,
            offset,
            len: rec.len() as u32,
        };
        let ticket = match &self.sync {
            Some(sync) => sync.written(&self.current),
            None => 0,
        };
        Ok((ticket, loc))
    }

    /// Record that these messages are settled (acked, dropped or purged).
    /// Messages that were never persisted are ignored.
    /// Record how often logged messages came back (not fsynced: a lost
    /// record only makes a count lower after a machine crash).
    pub fn returned(&mut self, counts: impl IntoIterator<Item = (u64, u32)>) {
        if self.sync.is_none() {
            return;
        }
        let mut payload = Vec::new();
        for (seq, n) in counts {
            if self.location.contains_key(&seq) {
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

    pub fn ack(&mut self, seqs: impl IntoIterator<Item = u64>) {
        let mut payload = Vec::new();
        let mut settled = false;
        for seq in seqs {
            if let Some(id) = self.location.remove(&seq) {
                settled = true;
                if self.sync.is_some() {
                    payload.extend_from_slice(&seq.to_be_bytes());
                }
                if let Some(n) = self.live.get_mut(&id) {
                    *n = n.saturating_sub(1);
                }
            }
        }
        if !settled {
            return;
        }
        if self.location.is_empty() {
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
        let offset = self.current_len;
        if let Err(e) = (&*self.current).write_all(rec) {
            // A partial write would shift every later offset: start afresh.
            self.roll()?;
            return Err(e);
        }
        self.current_len += rec.len() as u64;
        Ok(offset)
    }

    fn roll(&mut self) -> io::Result<()> {
        self.current_id += 1;
        self.current = Arc::new(if self.sync.is_some() {
            open_segment(&self.dir, self.current_id)?
        } else {
            create_segment(&self.dir, self.current_id)?
        });
        self.current_len = 0;
        self.live.insert(self.current_id, 0);
        Ok(())
    }

    fn delete_settled_segments(&mut self) {
        while let Some((&id, &n)) = self.live.iter().next() {
            if n > 0 || id == self.current_id {
                break;
            }
            self.live.remove(&id);
            self.readers.remove(&id);
            if let Err(e) = fs::remove_file(seg_path(&self.dir, id)) {
                tracing::warn!("cannot remove segment {id}: {e}");
            }
        }
    }
}

fn open_segment(dir: &Path, id: u32) -> io::Result<File> {
    let f = create_segment(dir, id)?;
    // Make the new file's directory entry durable too.
    File::open(dir)?.sync_all()?;
    Ok(f)
}

fn create_segment(dir: &Path, id: u32) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(seg_path(dir, id))
}

fn encode_publish(seq: u64, expires: u64, m: &Message, out: &mut Vec<u8>) {
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&expires.to_be_bytes());
    for s in [m.exchange.as_str(), m.routing_key.as_str()] {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&(m.header_raw.len() as u32).to_be_bytes());
    out.extend_from_slice(&m.header_raw);
    out.extend_from_slice(&m.body);
}

/// The priority property of a stored publish record, read without decoding
/// the whole content header (recovery sees every record; most queues never
/// need more). Property flags, high bit first: content-type,
/// content-encoding, headers, delivery-mode, priority.
fn stored_priority(p: &[u8]) -> Option<u8> {
    let mut off = 16;
    for _ in 0..2 {
        off += 1 + *p.get(off)? as usize;
    }
    off += 4; // header length
    // class-id, weight, body-size, then the flags.
    let flags = u16::from_be_bytes(p.get(off + 12..off + 14)?.try_into().ok()?);
    if flags & 0x0800 == 0 {
        return None;
    }
    let mut at = off + 14;
    for bit in [0x8000u16, 0x4000] {
        if flags & bit != 0 {
            at += 1 + *p.get(at)? as usize;
        }
    }
    if flags & 0x2000 != 0 {
        at += 4 + u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize;
    }
    if flags & 0x1000 != 0 {
        at += 1;
    }
    p.get(at).copied()
}

fn decode_publish(p: &[u8], meter: Meter) -> Option<(u64, Message)> {
    let seq = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let mut off = 16;
    let mut short = || -> Option<String> {
        let n = *p.get(off)? as usize;
        let s = std::str::from_utf8(p.get(off + 1..off + 1 + n)?)
            .ok()?
            .to_string();
        off += 1 + n;
        Some(s)
    };
    let exchange = short()?;
    let routing_key = short()?;
    let hlen = u32::from_be_bytes(p.get(off..off + 4)?.try_into().ok()?) as usize;
    off += 4;
    let header_raw = Bytes::copy_from_slice(p.get(off..off + hlen)?);
    off += hlen;
    let (_, h) = parse_content_header(&header_raw[..]).ok()?;
    let header = ContentHeader {
        class_id: h.class_id,
        body_size: h.body_size,
        properties: h.properties,
        raw: header_raw,
    };
    Some((
        seq,
        Message::new(
            exchange.into(),
            routing_key.into(),
            header.properties,
            header.raw,
            Bytes::copy_from_slice(p.get(off..)?),
            meter,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::{AMQPValue, FieldTable};

    fn record(props: BasicProperties) -> Vec<u8> {
        let m = Message::new(
            "x".into(),
            "key".into(),
            props.clone(),
            crate::message::encode_header(&props, 3),
            Bytes::from_static(b"abc"),
            Meter::new(),
        );
        let mut out = Vec::new();
        encode_publish(9, 0, &m, &mut out);
        out
    }

    #[test]
    fn priority_is_read_from_a_stored_record() {
        let mut h = FieldTable::default();
        h.insert("k".into(), AMQPValue::LongString("v".into()));
        let full = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_content_encoding("gzip".into())
            .with_headers(h)
            .with_delivery_mode(2)
            .with_priority(7)
            .with_message_id("id".into());
        assert_eq!(stored_priority(&record(full)), Some(7));
        let only = BasicProperties::default().with_priority(3);
        assert_eq!(stored_priority(&record(only)), Some(3));
        let none = BasicProperties::default().with_delivery_mode(2);
        assert_eq!(stored_priority(&record(none)), None);
    }
}
