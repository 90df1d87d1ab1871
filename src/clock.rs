//! Wall-clock time in ms since the Unix epoch, from a clock that tests can
//! hold still: TTLs, x-expires, delayed messages and deduplication windows
//! all read it, so a test can step through hours in no time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default)]
pub(crate) enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// A clock that moves only when told to (tests).
    #[allow(dead_code)] // Built by unit tests only, so far.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A clock standing at `ms` until advanced.
    #[cfg(test)]
    pub(crate) fn manual(ms: u64) -> Clock {
        Clock::Manual(Arc::new(AtomicU64::new(ms)))
    }

    pub(crate) fn now_ms(&self) -> u64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Move a manual clock on by `ms` (no effect on the system clock).
    #[cfg(test)]
    pub(crate) fn advance(&self, ms: u64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(ms, Ordering::Relaxed);
        }
    }
}

/// The time of one operation, read from its clock only if the operation
/// needs it (most publishes and acks do not: reading it costs more than
/// the rest of a plain enqueue), and then once.
pub(crate) struct Now<'a> {
    clock: &'a Clock,
    at: std::cell::Cell<Option<u64>>,
}

impl<'a> Now<'a> {
    pub(crate) fn of(clock: &'a Clock) -> Now<'a> {
        Now {
            clock,
            at: std::cell::Cell::new(None),
        }
    }

    pub(crate) fn ms(&self) -> u64 {
        match self.at.get() {
            Some(t) => t,
            None => {
                let t = self.clock.now_ms();
                self.at.set(Some(t));
                t
            }
        }
    }
}

/// The system's wall clock, for what is not a queue's business (connection
/// timestamps, consumer acknowledgement deadlines).
pub(crate) fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
