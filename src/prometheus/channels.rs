//! Channel and connection metrics, and RabbitMQ's global counters (what
//! the Grafana dashboard graphs since RabbitMQ 3.9).
//!
//! Publish counters are each channel's; delivery, get and ack counters are
//! the queues' (ferretmq counts those per queue, under the queue lock it
//! takes anyway), so per object they are labelled by queue, not channel.
//! Aggregated totals include closed channels and deleted queues, so they
//! never go backwards.

use super::Scope;
use super::snapshot::Snapshot;
use super::text::{Family, Labels, Writer, counter, gauge, histogram};
use crate::broker::connections::ChannelStats;
use crate::broker::connections::SIZE_BUCKETS;
use crate::broker::totals::SocketTotals;
use crate::queue::stats::Counters;
use std::sync::atomic::Ordering::Relaxed;

const CH_CONSUMERS: Family = gauge("channel_consumers", "Consumers on a channel");
const CH_UNACKED: Family = gauge(
    "channel_messages_unacked",
    "Delivered but not yet acknowledged messages",
);
const CH_UNCONFIRMED: Family = gauge(
    "channel_messages_unconfirmed",
    "Published but not yet confirmed messages",
);
const CONSUMER_PREFETCH: Family = gauge(
    "consumer_prefetch",
    "Limit of unacknowledged messages for each consumer",
);
const CH_PREFETCH: Family = gauge(
    "channel_prefetch",
    "Total limit of unacknowledged messages for all consumers on a channel",
);
const PUBLISHED: Family = counter(
    "channel_messages_published_total",
    "Total number of messages published into an exchange on a channel",
);
const CONFIRMED: Family = counter(
    "channel_messages_confirmed_total",
    "Total number of messages published into an exchange and confirmed on the channel",
);
const RETURNED: Family = counter(
    "channel_messages_unroutable_returned_total",
    "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
);
const DROPPED: Family = counter(
    "channel_messages_unroutable_dropped_total",
    "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
);
const GET_ACK: Family = counter(
    "channel_get_ack_total",
    "Total number of messages fetched with basic.get in manual acknowledgement mode",
);
const GET: Family = counter(
    "channel_get_total",
    "Total number of messages fetched with basic.get in automatic acknowledgement mode",
);
const DELIVERED_ACK: Family = counter(
    "channel_messages_delivered_ack_total",
    "Total number of messages delivered to consumers in manual acknowledgement mode",
);
const DELIVERED: Family = counter(
    "channel_messages_delivered_total",
    "Total number of messages delivered to consumers in automatic acknowledgement mode",
);
const REDELIVERED: Family = counter(
    "channel_messages_redelivered_total",
    "Total number of messages redelivered to consumers",
);
const ACKED: Family = counter(
    "channel_messages_acked_total",
    "Total number of messages acknowledged by consumers",
);
const GET_EMPTY: Family = counter(
    "channel_get_empty_total",
    "Total number of times basic.get operations fetched no message",
);
const IN_BYTES: Family = counter(
    "connection_incoming_bytes_total",
    "Total number of bytes received on a connection",
);
const OUT_BYTES: Family = counter(
    "connection_outgoing_bytes_total",
    "Total number of bytes sent on a connection",
);
const IN_PACKETS: Family = counter(
    "connection_incoming_packets_total",
    "Total number of packets received on a connection",
);
const OUT_PACKETS: Family = counter(
    "connection_outgoing_packets_total",
    "Total number of packets sent on a connection",
);
const CONN_CHANNELS: Family = gauge("connection_channels", "Channels on a connection");

/// Per channel: the channel's name as the management API gives it, which
/// stands where RabbitMQ puts the channel's Erlang pid.
fn per_channel<'a>(
    w: &mut Writer,
    s: &'a Snapshot,
    names: &'a [String],
    f: &Family,
    read: impl Fn(&ChannelStats) -> u64,
) {
    w.family(
        f,
        s.channels().zip(names).map(|((_, ch), n)| {
            let l: Labels = vec![("channel", n.as_str())];
            (l, read(ch))
        }),
    );
}

type ReadCounters = fn(&Counters) -> u64;
type ReadChannel = fn(&ChannelStats) -> u64;

const QUEUE_SIDE: [(&Family, ReadCounters); 7] = [
    (&GET_ACK, |c| c.get),
    (&GET, |c| c.get_no_ack),
    (&DELIVERED_ACK, |c| c.deliver),
    (&DELIVERED, |c| c.deliver_no_ack),
    (&REDELIVERED, |c| c.redeliver),
    (&ACKED, |c| c.ack),
    (&GET_EMPTY, |c| c.get_empty),
];

pub(crate) fn write(w: &mut Writer, s: &Snapshot, scope: Scope) {
    let gauges: [(&Family, ReadChannel); 5] = [
        (&CH_CONSUMERS, |ch| ch.consumers.load(Relaxed) as u64),
        (&CH_UNACKED, |ch| ch.unacked.load(Relaxed) as u64),
        // Every publish in confirm mode is acked or nacked in the end.
        (&CH_UNCONFIRMED, |ch| {
            let p = ch.publish.totals();
            p.received_confirm.saturating_sub(p.confirmed + p.nacked)
        }),
        (&CONSUMER_PREFETCH, |ch| ch.prefetch.load(Relaxed) as u64),
        (&CH_PREFETCH, |ch| ch.global.limit() as u64),
    ];
    let names: Vec<String> = s
        .channels()
        .map(|(c, ch)| format!("{} ({})", c.name, ch.number))
        .collect();
    let per_object = scope == Scope::PerObject;
    for (f, read) in gauges {
        if per_object {
            per_channel(w, s, &names, f, read);
        } else {
            w.single(f, s.channels().map(|(_, ch)| read(ch)).sum::<u64>());
        }
    }
    type ReadPublish = fn(&crate::broker::connections::PublishTotals) -> u64;
    let publish: [(&Family, ReadPublish); 4] = [
        (&PUBLISHED, |p| p.published),
        (&CONFIRMED, |p| p.confirmed),
        (&RETURNED, |p| p.returned),
        (&DROPPED, |p| p.dropped),
    ];
    let totals = s.publish_totals();
    for (f, read) in publish {
        if per_object {
            per_channel(w, s, &names, f, |ch| read(&ch.publish.totals()));
        } else {
            w.single(f, read(&totals));
        }
    }
    let counters = s.queue_counters();
    for (f, read) in QUEUE_SIDE {
        if per_object {
            w.family(
                f,
                s.queues.iter().map(|q| {
                    let l: Labels = vec![("vhost", &q.vhost), ("queue", &q.name)];
                    (l, read(&q.sample.counters))
                }),
            );
        } else {
            w.single(f, read(&counters));
        }
    }
    write_connections(w, s, per_object);
}

fn write_connections(w: &mut Writer, s: &Snapshot, per_object: bool) {
    type ReadConn = fn(&crate::broker::connections::ConnectionInfo) -> u64;
    type ReadGone = fn(&SocketTotals) -> u64;
    let fs: [(&Family, ReadConn, ReadGone); 5] = [
        (&IN_BYTES, |c| c.stats.recv_oct.get(), |t| t.recv_oct),
        (&OUT_BYTES, |c| c.stats.send_oct.get(), |t| t.send_oct),
        (&IN_PACKETS, |c| c.stats.recv_cnt.get(), |t| t.recv_cnt),
        (&OUT_PACKETS, |c| c.stats.send_cnt.get(), |t| t.send_cnt),
        // A gauge: closed connections have no channels.
        (
            &CONN_CHANNELS,
            |c| c.stats.channels.load(Relaxed) as u64,
            |_| 0,
        ),
    ];
    for (f, read, gone) in fs {
        if per_object {
            w.family(
                f,
                s.connections.iter().map(|(c, _)| {
                    let l: Labels = vec![("connection", c.name.as_str())];
                    (l, read(c))
                }),
            );
        } else {
            let open: u64 = s.connections.iter().map(|(c, _)| read(c)).sum();
            w.single(f, open + gone(&s.retired.sockets));
        }
    }
}

const PROTOCOL: (&str, &str) = ("protocol", "amqp091");
/// ferretmq's queues all count as classic here: its quorum queues are
/// classic queues underneath (no replication).
const QUEUE_TYPE: (&str, &str) = ("queue_type", "rabbit_classic_queue");

/// `rabbitmq_global_*`: node-wide counters, the same in every endpoint.
pub(crate) fn write_global(w: &mut Writer, s: &Snapshot) {
    let c = s.queue_counters();
    let p = s.publish_totals();
    let consumers: u64 = s.queues.iter().map(|q| q.sample.consumers as u64).sum();
    w.family(
        &gauge("global_consumers", "Current number of consumers"),
        [(vec![PROTOCOL], consumers)],
    );
    let by_queue: [(Family, u64); 8] = [
        (
            counter(
                "global_messages_acknowledged_total",
                "Total number of messages acknowledged by consumers",
            ),
            c.ack,
        ),
        (
            counter(
                "global_messages_delivered_consume_auto_ack_total",
                "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
            ),
            c.deliver_no_ack,
        ),
        (
            counter(
                "global_messages_delivered_consume_manual_ack_total",
                "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
            ),
            c.deliver,
        ),
        (
            counter(
                "global_messages_delivered_get_auto_ack_total",
                "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
            ),
            c.get_no_ack,
        ),
        (
            counter(
                "global_messages_delivered_get_manual_ack_total",
                "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
            ),
            c.get,
        ),
        (
            counter(
                "global_messages_delivered_total",
                "Total number of messages delivered to consumers",
            ),
            c.deliver_get(),
        ),
        (
            counter(
                "global_messages_get_empty_total",
                "Total number of times basic.get operations fetched no message",
            ),
            c.get_empty,
        ),
        (
            counter(
                "global_messages_redelivered_total",
                "Total number of messages redelivered to consumers",
            ),
            c.redeliver,
        ),
    ];
    for (f, v) in &by_queue {
        w.family(f, [(vec![PROTOCOL, QUEUE_TYPE], *v)]);
    }
    let by_protocol: [(Family, u64); 6] = [
        (
            counter(
                "global_messages_confirmed_total",
                "Total number of messages confirmed to publishers",
            ),
            p.confirmed,
        ),
        (
            counter(
                "global_messages_received_confirm_total",
                "Total number of messages received from publishers expecting confirmations",
            ),
            p.received_confirm,
        ),
        (
            counter(
                "global_messages_received_total",
                "Total number of messages received from publishers",
            ),
            p.published,
        ),
        (
            counter(
                "global_messages_routed_total",
                "Total number of messages routed to queues or streams",
            ),
            p.routed,
        ),
        (
            counter(
                "global_messages_unroutable_dropped_total",
                "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
            ),
            p.dropped,
        ),
        (
            counter(
                "global_messages_unroutable_returned_total",
                "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
            ),
            p.returned,
        ),
    ];
    for (f, v) in &by_protocol {
        w.family(f, [(vec![PROTOCOL], *v)]);
    }
    // A publisher: an open channel that has published (RabbitMQ counts
    // channels that publish).
    let publishers = s
        .channels()
        .filter(|(_, ch)| ch.publish.published.get() > 0)
        .count();
    w.family(
        &gauge("global_publishers", "Current number of publishers"),
        [(vec![PROTOCOL], publishers)],
    );
    // RabbitMQ 4.1's; the dashboard's message size panels read it.
    w.histogram(
        &histogram(
            "message_size_bytes",
            "Size of messages received from publishers",
        ),
        PROTOCOL,
        &SIZE_BUCKETS,
        &p.sizes,
        p.size_sum,
    );
}
