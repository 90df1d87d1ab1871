//! Segment files: append-only sequences of records, each
//! `[len: u32][crc32: u32][kind: u8][payload]` (len counts kind + payload).
//! Reading stops at the first record that is incomplete or fails its
//! checksum: a torn write at the tail of the last segment is cut off there;
//! anywhere else it is reported as corruption.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const KIND_PUBLISH: u8 = 1;
pub const KIND_ACK: u8 = 2;
/// A message came back to its queue: (seq, times returned), so the
/// x-delivery-count of a queue with a delivery limit survives restarts.
pub const KIND_RETURNED: u8 = 3;

pub fn encode(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    encode_with(kind, true, out, |out| out.extend_from_slice(payload));
}

/// Append a record whose payload `write` appends to `out`, in place: no
/// payload buffer to copy from. Without `checksum` its crc field is 0: a
/// scratch log is read back only by the process that wrote it, never
/// after a crash, and the check costs a pass over every body.
pub fn encode_with(kind: u8, checksum: bool, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.push(kind);
    write(out);
    let len = (out.len() - start - 8) as u32;
    let crc = if checksum {
        crc32fast::hash(&out[start + 8..])
    } else {
        0
    };
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// The record at the start of `buf`, its checksum not checked: (kind,
/// payload). For records that never left memory.
pub fn decode(buf: &[u8]) -> Option<(u8, &[u8])> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let body = buf.get(8..8usize.checked_add(len)?)?;
    Some((*body.first()?, &body[1..]))
}

/// A segment's file: `<dir>/<id, 8 digits>.seg`.
pub(crate) fn seg_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.seg"))
}

/// The read handle of a segment, opened when first needed.
pub(crate) fn reader<'a>(
    readers: &'a mut HashMap<u32, File>,
    dir: &Path,
    segment: u32,
) -> io::Result<&'a File> {
    Ok(match readers.entry(segment) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(File::open(seg_path(dir, segment))?)
        }
    })
}

/// The current segment's file, made at its first write.
pub(crate) fn current_file<'a>(
    current: &'a mut Option<Arc<File>>,
    dir: &Path,
    id: u32,
    durable: bool,
) -> io::Result<&'a Arc<File>> {
    if current.is_none() {
        *current = Some(Arc::new(match durable {
            true => open_segment(dir, id)?,
            false => create_segment(dir, id)?,
        }));
    }
    current
        .as_ref()
        .ok_or_else(|| io::Error::other("no current segment"))
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

pub struct Scan {
    /// (kind, offset of the record in the file, payload)
    pub records: Vec<(u8, u64, Vec<u8>)>,
    /// Bytes of whole, valid records; anything after is torn or corrupt.
    pub valid_len: u64,
    pub file_len: u64,
}

pub fn scan(path: &Path) -> io::Result<Scan> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut records = Vec::new();
    let mut off = 0usize;
    while data.len() - off >= 9 {
        let len =
            u32::from_be_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
        let crc = u32::from_be_bytes([data[off + 4], data[off + 5], data[off + 6], data[off + 7]]);
        if len == 0 || data.len() - off - 8 < len {
            break;
        }
        let body = &data[off + 8..off + 8 + len];
        if crc32fast::hash(body) != crc {
            break;
        }
        records.push((body[0], off as u64, body[1..].to_vec()));
        off += 8 + len;
    }
    Ok(Scan {
        records,
        valid_len: off as u64,
        file_len: data.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn torn_tail_is_cut_at_the_last_whole_record() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("s");
        let mut buf = Vec::new();
        encode(KIND_PUBLISH, b"first", &mut buf);
        encode(KIND_ACK, b"second", &mut buf);
        let whole = buf.len();
        encode(KIND_PUBLISH, b"third, torn", &mut buf);
        buf.truncate(whole + 7);
        File::create(&p)
            .and_then(|mut f| f.write_all(&buf))
            .expect("write");
        let s = scan(&p).expect("scan");
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.records[1].0, KIND_ACK);
        assert_eq!(s.records[1].2, b"second".to_vec());
        assert_eq!(s.valid_len, whole as u64);
    }

    #[test]
    fn flipped_byte_stops_the_scan() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("s");
        let mut buf = Vec::new();
        encode(KIND_PUBLISH, b"aaaa", &mut buf);
        encode(KIND_PUBLISH, b"bbbb", &mut buf);
        let n = buf.len();
        buf[n - 2] ^= 0xFF;
        File::create(&p)
            .and_then(|mut f| f.write_all(&buf))
            .expect("write");
        assert_eq!(scan(&p).expect("scan").records.len(), 1);
    }
}
