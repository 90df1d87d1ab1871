//! A queue's statistics: message counters kept in its state, bumped under
//! the lock each operation holds anyway (no atomics, no extra lock on the
//! publish or delivery path), and the rates a sampler derives from them
//! every `collect_statistics_interval`, which the management API reads.

use std::sync::Mutex;

/// RabbitMQ's per-queue `message_stats` counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Counters {
    pub publish: u64,
    /// Deliveries to consumers that acknowledge.
    pub deliver: u64,
    pub deliver_no_ack: u64,
    pub get: u64,
    pub get_no_ack: u64,
    pub get_empty: u64,
    pub ack: u64,
    pub redeliver: u64,
}

impl Counters {
    /// Add `o`'s counts (totals over several queues).
    pub(crate) fn add(&mut self, o: &Counters) {
        self.publish += o.publish;
        self.deliver += o.deliver;
        self.deliver_no_ack += o.deliver_no_ack;
        self.get += o.get;
        self.get_no_ack += o.get_no_ack;
        self.get_empty += o.get_empty;
        self.ack += o.ack;
        self.redeliver += o.redeliver;
    }

    pub(crate) fn deliver_get(&self) -> u64 {
        self.deliver + self.deliver_no_ack + self.get + self.get_no_ack
    }

    /// Each counter with its name, in RabbitMQ's spelling.
    pub(crate) fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("publish", self.publish),
            ("deliver", self.deliver),
            ("deliver_no_ack", self.deliver_no_ack),
            ("get", self.get),
            ("get_no_ack", self.get_no_ack),
            ("get_empty", self.get_empty),
            ("ack", self.ack),
            ("redeliver", self.redeliver),
            ("deliver_get", self.deliver_get()),
        ]
    }
}

/// What the queue holds and has counted, at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sample {
    pub counters: Counters,
    pub ready: usize,
    pub unacked: usize,
    pub consumers: usize,
    pub ready_bytes: usize,
    pub unacked_bytes: usize,
    /// When the queue last had a consumer change, get or declare, ms.
    pub last_used: u64,
}

/// Per-second rates between the last two samples.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rates {
    last: Option<(u64, Sample)>,
    /// Same order as `Counters::named`.
    pub counters: [f64; 9],
    pub messages: f64,
    pub ready: f64,
    pub unacked: f64,
    /// RabbitMQ's consumer_utilisation: how much of the time the consumers
    /// could take messages as they came. Sampled as "consumers and nothing
    /// waiting for them" and smoothed; none without consumers.
    pub consumer_utilisation: Option<f64>,
}

impl Rates {
    /// Take a new sample taken at `now_ms`.
    pub(crate) fn update(&mut self, now_ms: u64, s: Sample) {
        if let Some((at, prev)) = self.last
            && now_ms > at
        {
            let secs = (now_ms - at) as f64 / 1000.0;
            let per_s = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs;
            let delta = |a: usize, b: usize| (a as f64 - b as f64) / secs;
            let now = s.counters.named();
            let before = prev.counters.named();
            for (i, r) in self.counters.iter_mut().enumerate() {
                *r = per_s(now[i].1, before[i].1);
            }
            self.messages = delta(s.ready + s.unacked, prev.ready + prev.unacked);
            self.ready = delta(s.ready, prev.ready);
            self.unacked = delta(s.unacked, prev.unacked);
        }
        self.consumer_utilisation = (s.consumers > 0).then(|| {
            let now = if s.ready == 0 { 1.0 } else { 0.0 };
            self.consumer_utilisation
                .map_or(now, |before| (before + now) / 2.0)
        });
        self.last = Some((now_ms, s));
    }
}

/// The sampler writes, the API reads; neither is on the message path.
pub(crate) type SharedRates = Mutex<Rates>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_between_two_samples() {
        let mut r = Rates::default();
        let mut s = Sample::default();
        r.update(1_000, s);
        s.counters.publish = 50;
        s.ready = 10;
        r.update(6_000, s);
        assert_eq!(r.counters[0], 10.0);
        assert_eq!(r.ready, 2.0);
        assert_eq!(r.messages, 2.0);
    }
}
