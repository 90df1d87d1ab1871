//! Reading a queue log's live publish records in order: one at a time for
//! a paged backlog (`read_next`), all of them for a quorum queue's
//! snapshot (`live_records`).

use super::super::segment::{KIND_PUBLISH, seg_path};
use super::QueueLog;
use bytes::Bytes;
use std::fs;
use std::io;

impl QueueLog {
    /// How many messages it holds.
    pub(crate) fn live(&self) -> usize {
        self.live.len()
    }

    /// Every message it holds, in order: its sequence number and its
    /// publish record's payload (as `encode_publish` wrote it). For a
    /// quorum queue's snapshot (`cluster::quorum`).
    pub(crate) fn live_records(&mut self) -> io::Result<Vec<(u64, Bytes)>> {
        self.flush_pending()?;
        let mut ids: Vec<u32> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let mut out: Vec<(u64, Bytes)> = Vec::with_capacity(self.live.len());
        let mut taken = std::collections::HashSet::new();
        for id in ids {
            let end = fs::metadata(seg_path(&self.dir, id))?.len();
            let mut offset = 0;
            while let Some((seq, payload, _)) = self.next_live(id, &mut offset, end)? {
                if taken.insert(seq) {
                    out.push((seq, payload));
                }
            }
        }
        Ok(out)
    }

    /// The first live publish record from `offset` on in `segment`, before
    /// `end`: its sequence number, payload and offset; `offset` is moved
    /// past it. Records that are not live or not publishes are skipped.
    pub(super) fn next_live(
        &mut self,
        segment: u32,
        offset: &mut u64,
        end: u64,
    ) -> io::Result<Option<(u64, Bytes, u64)>> {
        while *offset < end {
            let here = *offset;
            let (kind, payload) = self.record_at(segment, here, None)?;
            *offset += payload.len() as u64 + 9;
            let seq = payload
                .get(..8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_be_bytes);
            match seq {
                Some(seq) if kind == KIND_PUBLISH && self.live.contains(seq) => {
                    return Ok(Some((seq, payload, here)));
                }
                _ => {}
            }
        }
        Ok(None)
    }
}
