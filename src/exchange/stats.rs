//! An exchange's message counters: `publish_in` (messages published to it)
//! and `publish_out` (their deliveries to queues, one per queue reached),
//! RabbitMQ's `message_stats` of an exchange.
//!
//! Many channels publish to one exchange, so these are shared atomics; a
//! channel adds what it published once per read batch, not per message
//! (`Channel::flush_exchange_counts`), which keeps the locked instruction
//! off the per-message path.

use crate::stats::Rate;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct ExchangeStats {
    publish_in: AtomicU64,
    publish_out: AtomicU64,
    /// The sampler's: rates of the two.
    rates: Mutex<(Rate, Rate)>,
}

/// The counters and their rates, at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ExchangeSample {
    pub publish_in: u64,
    pub publish_out: u64,
    pub publish_in_rate: f64,
    pub publish_out_rate: f64,
}

impl ExchangeStats {
    pub(crate) fn add(&self, published: u64, routed: u64) {
        if published > 0 {
            self.publish_in.fetch_add(published, Ordering::Relaxed);
        }
        if routed > 0 {
            self.publish_out.fetch_add(routed, Ordering::Relaxed);
        }
    }

    pub(crate) fn update_rates(&self, now_ms: u64) {
        let mut r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        r.0.sample(now_ms, self.publish_in.load(Ordering::Relaxed));
        r.1.sample(now_ms, self.publish_out.load(Ordering::Relaxed));
    }

    pub(crate) fn sample(&self) -> ExchangeSample {
        let r = *self.rates.lock().unwrap_or_else(|p| p.into_inner());
        ExchangeSample {
            publish_in: self.publish_in.load(Ordering::Relaxed),
            publish_out: self.publish_out.load(Ordering::Relaxed),
            publish_in_rate: r.0.per_s,
            publish_out_rate: r.1.per_s,
        }
    }
}
