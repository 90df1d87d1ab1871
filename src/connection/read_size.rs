//! How much a connection reads at once: it grows while reads fill the
//! buffer and falls back when the connection goes quiet, so an idle
//! connection holds a 4 KiB buffer, not 64.

use bytes::BytesMut;

/// The smallest read buffer; what an idle connection keeps.
pub(super) const MIN_READ: usize = 4 * 1024;
const MAX_READ: usize = 64 * 1024;

/// After a read of `n` bytes with `size` asked for: a read that filled half
/// the buffer doubles the next one; a small read that left nothing behind
/// lets a grown buffer go.
pub(super) fn next_read_size(size: usize, n: usize, rbuf: &mut BytesMut) -> usize {
    if n >= size / 2 {
        return (size * 2).min(MAX_READ);
    }
    if n < MIN_READ / 4 && rbuf.is_empty() && rbuf.capacity() > 2 * MIN_READ {
        *rbuf = BytesMut::new();
        return MIN_READ;
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_while_they_fill_and_shrink_when_quiet() {
        let mut buf = BytesMut::with_capacity(MIN_READ);
        let mut size = MIN_READ;
        for _ in 0..10 {
            size = next_read_size(size, size, &mut buf);
        }
        assert_eq!(size, MAX_READ);
        buf.reserve(MAX_READ);
        assert_eq!(
            next_read_size(size, 20_000, &mut buf),
            MAX_READ,
            "mid-size: kept"
        );
        assert_eq!(next_read_size(size, 8, &mut buf), MIN_READ);
        assert_eq!(buf.capacity(), 0, "the big buffer is let go");
    }
}
