//! Queue depths, message counters and their rates summed over a set of
//! queues: what the overview shows for the node and a vhost for itself.
//! Summed over queues, they count what went into and out of them whichever
//! channel did it and whether it is still open. `publish` is what was
//! published to the exchanges, as RabbitMQ counts it: a message routed to
//! two queues, or to none, is one publish.

use crate::broker::connections::PublishTotals;
use crate::queue::Queue;
use serde_json::{Map, Value, json};

#[derive(Default)]
pub(super) struct Sums {
    pub queues: usize,
    pub consumers: usize,
    pub ready: u64,
    pub unacked: u64,
    pub ready_rate: f64,
    pub unacked_rate: f64,
    counted: [(&'static str, u64); 9],
    rates: [f64; 9],
    published: u64,
    published_rate: f64,
    /// Confirms, returned and dropped unroutables, and their rates.
    channels: [(u64, f64); 3],
}

impl Sums {
    pub fn add(&mut self, q: &Queue) {
        let s = q.sample();
        let r = q.rates();
        self.queues += 1;
        self.consumers += s.consumers;
        self.ready += s.ready as u64;
        self.unacked += s.unacked as u64;
        self.ready_rate += r.ready;
        self.unacked_rate += r.unacked;
        for (i, (name, n)) in s.counters.named().into_iter().enumerate() {
            self.counted[i] = (name, self.counted[i].1 + n);
            self.rates[i] += r.counters[i];
        }
    }

    pub fn add_exchange(&mut self, x: &crate::exchange::Exchange) {
        let s = x.stats.sample();
        self.published += s.publish_in;
        self.published_rate += s.publish_in_rate;
    }

    /// What the channels of vhost `v` (`t`) confirmed and found
    /// unroutable.
    pub fn add_channels(&mut self, t: &PublishTotals, v: &crate::broker::Vhost) {
        let r = *v.publish_rates.lock().unwrap_or_else(|p| p.into_inner());
        for (sum, (n, rate)) in self.channels.iter_mut().zip([
            (t.confirmed, r.confirm.per_s),
            (t.returned, r.return_unroutable.per_s),
            (t.dropped, r.drop_unroutable.per_s),
        ]) {
            sum.0 += n;
            sum.1 += rate;
        }
    }

    /// RabbitMQ's `message_stats`: each counter and its `_details.rate`.
    pub fn message_stats(&self) -> Value {
        let mut out = Map::new();
        for (i, (name, n)) in self.counted.iter().enumerate() {
            let (n, rate) = match *name {
                "" => continue,
                "publish" => (self.published, self.published_rate),
                _ => (*n, self.rates[i]),
            };
            out.insert((*name).into(), json!(n));
            out.insert(format!("{name}_details"), json!({ "rate": rate }));
        }
        for (name, (n, rate)) in ["confirm", "return_unroutable", "drop_unroutable"]
            .into_iter()
            .zip(self.channels)
        {
            out.insert(name.into(), json!(n));
            out.insert(format!("{name}_details"), json!({ "rate": rate }));
        }
        Value::Object(out)
    }
}
