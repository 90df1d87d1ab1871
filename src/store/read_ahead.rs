//! Every record read back from a queue log goes through one buffer: a
//! consumer draining a paged backlog (or a recovery reading every record)
//! costs a `pread` per buffer, not per message. A record comes out as a
//! slice of that buffer, so a message on its way straight to a socket can
//! keep its body there instead of in a copy; the buffer is reused once
//! nothing holds on to it, and a fresh one is taken otherwise.

use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::io;

/// How much is read at once. Freed when the segment is done with.
const WINDOW: usize = 128 * 1024;

pub(crate) struct ReadAhead {
    /// Whether records carry a checksum to check (a scratch log's do not).
    verify: bool,
    segment: u32,
    /// File offset of `data[0]`.
    start: u64,
    /// What was read from `start` on. Reused for the next refill when
    /// nothing else holds it any more.
    data: Bytes,
}

impl ReadAhead {
    pub(crate) fn new(verify: bool) -> ReadAhead {
        ReadAhead {
            verify,
            segment: 0,
            start: 0,
            data: Bytes::new(),
        }
    }

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
    ) -> io::Result<(u8, Bytes)> {
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
        if self.verify && crc32fast::hash(body) != crc {
            return Err(bad("record fails its checksum"));
        }
        Ok((body[0], self.data.slice(at + 9..at + 8 + len)))
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
            && offset + need as u64 <= self.start + self.data.len() as u64;
        if held {
            return Ok(());
        }
        self.segment = segment;
        self.start = offset;
        let size = need.max(WINDOW);
        // Grown for one large message: not kept that large.
        let fits = |b: &BytesMut| b.capacity() >= size && b.capacity() <= size.max(4 * WINDOW);
        let mut data = match std::mem::take(&mut self.data).try_into_mut() {
            Ok(mut b) if fits(&b) => {
                b.clear();
                b
            }
            _ => BytesMut::with_capacity(size),
        };
        let upto = if ahead { data.capacity() } else { need };
        let read = loop {
            if data.len() >= need {
                break Ok(());
            }
            let (at, want) = (offset + data.len() as u64, upto - data.len());
            match pread_append(file, &mut data, want, at) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        let got = data.len();
        self.data = data.freeze();
        read?;
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
            self.data = Bytes::new();
        }
    }
}

/// Read up to `want` bytes at `offset` of `file` onto the end of `buf`,
/// into its spare capacity: a buffer refilled this way is not zeroed first.
fn pread_append(file: &File, buf: &mut BytesMut, want: usize, offset: u64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    buf.reserve(want);
    let spare = buf.spare_capacity_mut();
    let (ptr, n) = (spare.as_mut_ptr(), want.min(spare.len()));
    let offset = libc::off_t::try_from(offset).map_err(|_| bad("offset out of range"))?;
    loop {
        // SAFETY: `ptr` is valid for writes of `n` bytes (spare capacity of
        // `buf`), and pread writes at most `n` bytes there.
        let r = unsafe { libc::pread(file.as_raw_fd(), ptr.cast(), n, offset) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let r = r as usize;
        // SAFETY: pread initialised the `r` bytes after `buf`'s length.
        unsafe { buf.set_len(buf.len() + r) };
        return Ok(r);
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
        let mut r = ReadAhead::new(true);
        let mut off = 0u64;
        for want in &payloads {
            let (kind, got) = r.record(&f, 1, off, None).expect("record");
            assert_eq!(kind, segment::KIND_PUBLISH);
            assert_eq!(&got[..], &want[..]);
            off += 9 + got.len() as u64;
        }
        assert!(r.record(&f, 1, off, None).is_err(), "nothing past the end");
        // A record looked up by its length alone is read alone.
        let (_, first) = r.record(&f, 1, 0, Some(9 + 400)).expect("first");
        assert_eq!(&first[..], &payloads[0][..]);
        assert_eq!(r.data.len(), 9 + 400);
    }

    #[test]
    fn a_refill_reuses_the_buffer_unless_a_record_still_holds_it() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("s");
        let mut buf = Vec::new();
        for i in 0..3u8 {
            segment::encode(segment::KIND_PUBLISH, &vec![i; WINDOW / 2], &mut buf);
        }
        File::create(&p)
            .and_then(|mut f| f.write_all(&buf))
            .expect("write");
        let f = File::open(&p).expect("open");
        let stride = (9 + WINDOW / 2) as u64;
        let mut r = ReadAhead::new(true);
        let (_, held) = r.record(&f, 1, 0, None).expect("first");
        let first = r.data.as_ptr();
        // Past the window while `held` still points into it: a new buffer.
        let (_, second) = r.record(&f, 1, stride * 2, None).expect("third");
        assert_eq!(second[0], 2);
        assert_ne!(r.data.as_ptr(), first);
        assert_eq!(held[0], 0, "what was handed out is untouched");
        let now = r.data.as_ptr();
        drop(second);
        // Nothing holds it: the next refill reads into the same buffer.
        let (_, again) = r.record(&f, 1, stride, None).expect("second");
        assert_eq!(again[0], 1);
        assert_eq!(r.data.as_ptr(), now);
    }
}
