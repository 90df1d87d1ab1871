//! Every record read back from a queue log goes through one buffer: a
//! consumer draining a paged backlog (or a recovery reading every record)
//! costs a `pread` per buffer, not per message.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// How much is read at once. Freed when the segment is done with.
const WINDOW: usize = 128 * 1024;

#[derive(Default)]
pub(crate) struct ReadAhead {
    segment: u32,
    /// File offset of `data[0]`.
    start: u64,
    /// Its first `len` bytes are the file's; it keeps its size between
    /// reads, so a refill costs no zeroing.
    data: Vec<u8>,
    len: usize,
}

impl ReadAhead {
    /// The record at `offset` of `segment`: (kind, payload), its checksum
    /// checked. Given its length (`known`, a single message looked up by
    /// its location, as a delayed or expiring one is, in no useful order),
    /// only the record is read; otherwise a window ahead of it.
    pub(crate) fn record(
        &mut self,
        file: &File,
        segment: u32,
        offset: u64,
        known: Option<u32>,
    ) -> io::Result<(u8, &[u8])> {
        let ahead = known.is_none();
        self.fill(
            file,
            segment,
            offset,
            known.map_or(9, |n| n as usize),
            ahead,
        )?;
        let at = (offset - self.start) as usize;
        let h = &self.data[at..at + 8];
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if len == 0 {
            return Err(bad("empty record"));
        }
        self.fill(file, segment, offset, 8 + len, ahead)?;
        let at = (offset - self.start) as usize;
        let body = &self.data[at + 8..at + 8 + len];
        if crc32fast::hash(body) != crc {
            return Err(bad("record fails its checksum"));
        }
        Ok((body[0], &body[1..]))
    }

    /// Make `data` hold `need` bytes from `offset` of `segment`, and with
    /// `ahead` as much after them as fits.
    fn fill(
        &mut self,
        file: &File,
        segment: u32,
        offset: u64,
        need: usize,
        ahead: bool,
    ) -> io::Result<()> {
        let held = self.segment == segment
            && offset >= self.start
            && offset + need as u64 <= self.start + self.len as u64;
        if held {
            return Ok(());
        }
        self.segment = segment;
        self.start = offset;
        self.len = 0;
        let size = need.max(WINDOW);
        // Grown for one large message: not kept that large.
        if self.data.len() < size || self.data.len() > size.max(4 * WINDOW) {
            self.data = vec![0; size];
        }
        let upto = if ahead { self.data.len() } else { need };
        let mut got = 0;
        while got < need {
            match file.read_at(&mut self.data[got..upto], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.len = got;
        if got < need {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "record cut short",
            ));
        }
        Ok(())
    }

    /// `segment` is deleted: let go of what was read from it.
    pub(crate) fn forget(&mut self, segment: u32) {
        if self.segment == segment {
            self.data = Vec::new();
            self.len = 0;
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::segment;
    use super::*;
    use std::io::Write;

    #[test]
    fn records_are_read_in_order_across_buffer_refills() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("s");
        let mut buf = Vec::new();
        let big = vec![7u8; WINDOW + 10];
        let payloads: Vec<Vec<u8>> = (0..300u32)
            .map(|i| match i {
                150 => big.clone(),
                _ => i.to_be_bytes().repeat(100),
            })
            .collect();
        for p in &payloads {
            segment::encode(segment::KIND_PUBLISH, p, &mut buf);
        }
        File::create(&p)
            .and_then(|mut f| f.write_all(&buf))
            .expect("write");
        let f = File::open(&p).expect("open");
        let mut r = ReadAhead::default();
        let mut off = 0u64;
        for want in &payloads {
            let (kind, got) = r.record(&f, 1, off, None).expect("record");
            assert_eq!(kind, segment::KIND_PUBLISH);
            assert_eq!(got, &want[..]);
            off += 9 + got.len() as u64;
        }
        assert!(r.record(&f, 1, off, None).is_err(), "nothing past the end");
        // A record looked up by its length alone is read alone.
        let (_, first) = r.record(&f, 1, 0, Some(9 + 400)).expect("first");
        assert_eq!(first, &payloads[0][..]);
        assert_eq!(r.len, 9 + 400);
    }
}
