//! Counters that cost nothing to keep and rates derived from them.
//!
//! A [`Counter`] has exactly one writer (the task that owns the object), so
//! bumping it is a plain load and store, not a locked read-modify-write; the
//! statistics sampler reads it from another thread every
//! `collect_statistics_interval` and keeps a [`Rate`].

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Add `n`. Only the counter's one writer may call this.
    pub(crate) fn bump(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-second rate of a counter between its last two samples.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rate {
    last: Option<(u64, u64)>,
    pub per_s: f64,
}

impl Rate {
    /// The counter read `value` at `now_ms`.
    pub(crate) fn sample(&mut self, now_ms: u64, value: u64) {
        if let Some((at, before)) = self.last
            && now_ms > at
        {
            self.per_s = value.saturating_sub(before) as f64 * 1000.0 / (now_ms - at) as f64;
        }
        self.last = Some((now_ms, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_the_increase_per_second() {
        let c = Counter::default();
        let mut r = Rate::default();
        r.sample(10_000, c.get());
        c.bump(300);
        r.sample(12_000, c.get());
        assert_eq!(r.per_s, 150.0);
    }
}
