//! A scratch log's records that are not written yet. Transient messages
//! paged out one `write` each cost a syscall and a walk through the file
//! system per message; gathered here they go out 64 KiB at a time. Nothing
//! needs them on disk sooner: a scratch log is read only by the process
//! that wrote it (from here, for records still here), never after a crash,
//! and a backlog drained before they are written never writes them at all.

use super::segment;
use bytes::Bytes;
use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;

/// Written out once this much is gathered.
const FLUSH_AT: usize = 64 * 1024;
/// While writes fail (a full disk), gathered records up to this much are
/// kept; past it, new ones are refused.
const HOLD_AT_MOST: usize = 4 * FLUSH_AT;

#[derive(Default)]
pub(crate) struct Pending {
    buf: Vec<u8>,
    /// Bytes of the segment in its file: the offset of `buf[0]`.
    written: u64,
}

impl Pending {
    /// Append a record that `encode` puts at the end of the buffer; its
    /// length. `Err` (and nothing appended) if records cannot be written
    /// out and too many are held already.
    pub(crate) fn append(
        &mut self,
        file: impl FnOnce() -> io::Result<Arc<File>>,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> io::Result<u32> {
        let mark = self.buf.len();
        encode(&mut self.buf);
        let len = (self.buf.len() - mark) as u32;
        if self.buf.len() >= FLUSH_AT
            && let Err(e) = file().and_then(|f| self.flush(&f))
            && self.buf.len() > HOLD_AT_MOST
        {
            self.buf.truncate(mark);
            return Err(e);
        }
        Ok(len)
    }

    /// Write out what is gathered, whole: a failed write is cut back off
    /// the file, so each record is either in the file or here.
    pub(crate) fn flush(&mut self, mut file: &File) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = file.write_all(&self.buf) {
            // The file may hold part of it: cut back to the last whole record.
            file.set_len(self.written)?;
            return Err(e);
        }
        self.written += self.buf.len() as u64;
        self.buf.clear();
        if self.buf.capacity() > HOLD_AT_MOST {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Whether the record at `offset` of the current segment is here.
    pub(crate) fn holds(&self, offset: u64) -> bool {
        offset >= self.written && offset < self.written + self.buf.len() as u64
    }

    /// The record at `offset` (which `holds`): (kind, payload).
    pub(crate) fn record(&self, offset: u64) -> io::Result<(u8, Bytes)> {
        let at = usize::try_from(offset - self.written).unwrap_or(usize::MAX);
        segment::decode(self.buf.get(at..).unwrap_or_default())
            .map(|(kind, payload)| (kind, Bytes::copy_from_slice(payload)))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no record there"))
    }

    /// A new segment: whatever is here is of settled messages.
    pub(crate) fn reset(&mut self) {
        self.buf = Vec::new();
        self.written = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u8, size: usize) -> impl FnOnce(&mut Vec<u8>) {
        move |out| segment::encode(segment::KIND_PUBLISH, &vec![n; size], out)
    }

    #[test]
    fn records_are_gathered_then_written_whole_and_readable_throughout() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        let open = || {
            File::options()
                .create(true)
                .append(true)
                .open(dir.path().join("s"))
                .map(Arc::new)
        };
        let mut p = Pending::default();
        let mut offsets = Vec::new();
        let mut at = 0u64;
        for n in 0..100u8 {
            offsets.push(at);
            at += p.append(open, rec(n, 1000)).expect("append") as u64;
            let on_disk = std::fs::metadata(&path).map_or(0, |m| m.len());
            assert_eq!(on_disk + p.buf.len() as u64, at, "nothing lost or doubled");
            assert!(
                p.buf.len() < FLUSH_AT + 1100,
                "written out past the threshold"
            );
        }
        let file = std::fs::read(&path).expect("file");
        for (n, &off) in offsets.iter().enumerate() {
            let (kind, payload) = if p.holds(off) {
                p.record(off).expect("held")
            } else {
                let (k, pl) = segment::decode(&file[off as usize..]).expect("written");
                (k, Bytes::copy_from_slice(pl))
            };
            assert_eq!(kind, segment::KIND_PUBLISH);
            assert_eq!(&payload[..], &vec![n as u8; 1000][..]);
        }
    }

    #[test]
    fn while_writes_fail_records_are_held_up_to_a_bound_then_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let gone = dir.path().join("no-such-dir").join("s");
        let open = || {
            File::options()
                .create(true)
                .append(true)
                .open(&gone)
                .map(Arc::new)
        };
        let mut p = Pending::default();
        let mut held = 0;
        while p.append(open, rec(1, 1000)).is_ok() {
            held += 1;
            assert!(held < 1000, "never refused");
        }
        assert!(p.buf.len() <= HOLD_AT_MOST + 1100);
        assert!(p.holds(0));
        assert_eq!(p.record(0).expect("still readable").1.len(), 1000);
    }
}
