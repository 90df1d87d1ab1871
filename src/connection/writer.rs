//! The writer task owns the socket's write half. It takes everything the
//! connection task has queued, writes it with as few syscalls as it can,
//! and reports written delivery bytes so busy consumers can resume.

use super::Transport;
use crate::broker::connections::ConnectionInfo;
use crate::queue::inbox::{InboxEvent, Sink};
use bytes::{Buf, Bytes};
use std::io::IoSlice;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;

pub struct Batch {
    pub chunks: Vec<Bytes>,
    /// Delivery bytes (as counted by the queue sink) these chunks carry.
    pub delivered: usize,
}

pub async fn run(
    mut w: WriteHalf<impl Transport>,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    sink: Sink,
    info: Arc<ConnectionInfo>,
) {
    let mut chunks: Vec<Bytes> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut delivered = first.delivered;
        chunks.extend(first.chunks);
        while let Ok(more) = rx.try_recv() {
            delivered += more.delivered;
            chunks.extend(more.chunks);
            if chunks.len() > 512 {
                break;
            }
        }
        let bytes: usize = chunks.iter().map(|c| c.len()).sum();
        match write_all(&mut w, &mut chunks).await {
            Ok(writes) => {
                info.stats.send_oct.bump(bytes as u64);
                info.stats.send_cnt.bump(writes);
            }
            Err(_) => break,
        }
        if delivered > 0 && sink.written(delivered) {
            let _ = sink.send(InboxEvent::Resume);
        }
    }
    let _ = w.shutdown().await;
}

/// Write every chunk; how many writes it took.
async fn write_all(
    w: &mut WriteHalf<impl Transport>,
    chunks: &mut Vec<Bytes>,
) -> std::io::Result<u64> {
    let mut start = 0;
    let mut writes = 0;
    while start < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[start..]
            .iter()
            .take(64)
            .map(|c| IoSlice::new(c))
            .collect();
        let mut n = w.write_vectored(&slices).await?;
        writes += 1;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let c = &mut chunks[start];
            if n >= c.len() {
                n -= c.len();
                start += 1;
            } else {
                c.advance(n);
                n = 0;
            }
        }
    }
    chunks.clear();
    Ok(writes)
}
