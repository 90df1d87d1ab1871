//! Queue metrics: depths, consumers and bytes per queue (or summed), and
//! the /metrics/detailed families that carry them.

use super::Scope;
use super::snapshot::{QueueRow, Snapshot};
use super::text::{Family, Labels, Writer, counter, gauge};

const READY: Family = gauge(
    "queue_messages_ready",
    "Messages ready to be delivered to consumers",
);
const UNACKED: Family = gauge(
    "queue_messages_unacked",
    "Messages delivered to consumers but not yet acknowledged",
);
const MESSAGES: Family = gauge(
    "queue_messages",
    "Sum of ready and unacknowledged messages - total queue depth",
);
const CONSUMERS: Family = gauge("queue_consumers", "Consumers on a queue");
const BYTES: Family = gauge(
    "queue_messages_bytes",
    "Size in bytes of ready and unacknowledged messages",
);
const READY_BYTES: Family = gauge(
    "queue_messages_ready_bytes",
    "Size in bytes of ready messages",
);
const UNACKED_BYTES: Family = gauge(
    "queue_messages_unacked_bytes",
    "Size in bytes of all unacknowledged messages",
);
const PUBLISHED: Family = counter(
    "queue_messages_published_total",
    "Total number of messages published to queues",
);

/// What each family reads from a queue's sample.
type Read = fn(&QueueRow) -> u64;

const COARSE: [(&Family, Read); 3] = [
    (&READY, |q| q.sample.ready as u64),
    (&UNACKED, |q| q.sample.unacked as u64),
    (&MESSAGES, |q| (q.sample.ready + q.sample.unacked) as u64),
];
const CONSUMER_COUNT: [(&Family, Read); 1] = [(&CONSUMERS, |q| q.sample.consumers as u64)];
const METRICS: [(&Family, Read); 4] = [
    (&CONSUMERS, |q| q.sample.consumers as u64),
    (&BYTES, |q| {
        (q.sample.ready_bytes + q.sample.unacked_bytes) as u64
    }),
    (&READY_BYTES, |q| q.sample.ready_bytes as u64),
    (&UNACKED_BYTES, |q| q.sample.unacked_bytes as u64),
];

/// One family: a sample per queue, or their sum when aggregated.
fn emit(w: &mut Writer, s: &Snapshot, per_object: bool, f: &Family, read: Read) {
    if per_object {
        w.family(
            f,
            s.queues.iter().map(|q| {
                let l: Labels = vec![("vhost", &q.vhost), ("queue", &q.name)];
                (l, read(q))
            }),
        );
    } else {
        w.single(f, s.queues.iter().map(read).sum::<u64>());
    }
}

/// /metrics and /metrics/per-object.
pub(crate) fn write(w: &mut Writer, s: &Snapshot, scope: Scope) {
    let per_object = scope == Scope::PerObject;
    for (f, read) in COARSE.iter().chain(&METRICS) {
        emit(w, s, per_object, f, *read);
    }
}

/// `rabbitmq_queue_messages_published_total`, written among the channel
/// metrics as RabbitMQ orders it. Aggregated, deleted queues' counts stay.
pub(crate) fn write_published(w: &mut Writer, s: &Snapshot, scope: Scope) {
    if scope == Scope::PerObject {
        emit(w, s, true, &PUBLISHED, |q| q.sample.counters.publish);
    } else {
        w.single(&PUBLISHED, s.queue_counters().publish);
    }
}

/// /metrics/detailed's queue families that ferretmq has, by RabbitMQ's
/// names; false for a family it does not know.
pub(crate) fn write_detailed(w: &mut Writer, s: &Snapshot, family: &str) -> bool {
    let fs: &[(&Family, Read)] = match family {
        "queue_coarse_metrics" => &COARSE,
        "queue_consumer_count" => &CONSUMER_COUNT,
        "queue_metrics" => &METRICS,
        _ => return false,
    };
    for (f, read) in fs {
        emit(w, s, true, f, *read);
    }
    true
}
