//! Node metrics: identity, version, alarms, process and host resources,
//! objects opened and closed, and how many there are now.

use super::Scope;
use super::snapshot::Snapshot;
use super::text::{Family, Labels, Writer, counter, gauge, untyped};
use crate::broker::Broker;
use crate::broker::totals::Totals;

/// RabbitMQ's `rabbitmq_cluster_permanent_id`, "rabbitmq-cluster-id-"
/// and a random suffix kept in its database; here the same for the same
/// cluster name (FNV-1a of it), so it survives restarts without storing.
fn permanent_id(cluster: &str) -> String {
    let h = cluster.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    format!("rabbitmq-cluster-id-{h:016x}")
}

fn version(b: &Broker) -> &str {
    b.config
        .product_version
        .as_deref()
        .unwrap_or(env!("CARGO_PKG_VERSION"))
}

/// `rabbitmq_build_info` and `rabbitmq_identity_info`, which every
/// endpoint ends with; the dashboard joins every query on the latter.
pub(crate) fn write_info(w: &mut Writer, b: &Broker, scope: Scope) {
    let v = version(b);
    let build: Labels = vec![
        ("rabbitmq_version", v),
        ("prometheus_plugin_version", v),
        ("prometheus_client_version", "ferretmq"),
        // There is no Erlang: the dashboard shows this label, so say so.
        ("erlang_version", "none"),
    ];
    w.family(
        &untyped("build_info", "RabbitMQ & Erlang/OTP version info"),
        [(build, 1)],
    );
    let node = b.node_name();
    let cluster = b.cluster_name();
    let id = permanent_id(node);
    let endpoint = match scope {
        Scope::Aggregated => "aggregated",
        Scope::PerObject => "per-object",
        Scope::Detailed => "detailed",
    };
    let identity: Labels = vec![
        ("rabbitmq_node", node),
        ("rabbitmq_cluster", &cluster),
        ("rabbitmq_cluster_permanent_id", &id),
        // RabbitMQ 4's label, which the current dashboard selects on.
        ("rabbitmq_endpoint", endpoint),
    ];
    w.family(
        &untyped("identity_info", "RabbitMQ node & cluster identity info"),
        [(identity, 1)],
    );
}

/// Alarms, totals of objects opened and closed, process and host.
pub(crate) fn write_node(w: &mut Writer, b: &Broker, s: &Snapshot) {
    let alarms: [(Family, bool); 3] = [
        (
            untyped(
                "alarms_file_descriptor_limit",
                "is 1 if file descriptor limit alarm is in effect",
            ),
            false,
        ),
        (
            untyped(
                "alarms_free_disk_space_watermark",
                "is 1 if free disk space watermark alarm is in effect",
            ),
            b.alarms.disk_alarm(),
        ),
        (
            untyped(
                "alarms_memory_used_watermark",
                "is 1 if VM memory watermark alarm is in effect",
            ),
            b.alarms.memory_alarm(),
        ),
    ];
    for (f, on) in &alarms {
        w.single(f, u8::from(*on));
    }
    let t = &b.totals;
    let totals = [
        (
            counter(
                "connections_opened_total",
                "Total number of connections opened",
            ),
            &t.connections_opened,
        ),
        (
            counter(
                "connections_closed_total",
                "Total number of connections closed or terminated",
            ),
            &t.connections_closed,
        ),
        (
            counter("channels_opened_total", "Total number of channels opened"),
            &t.channels_opened,
        ),
        (
            counter("channels_closed_total", "Total number of channels closed"),
            &t.channels_closed,
        ),
        (
            counter("queues_declared_total", "Total number of queues declared"),
            &t.queues_declared,
        ),
        (
            counter("queues_created_total", "Total number of queues created"),
            &t.queues_created,
        ),
        (
            counter("queues_deleted_total", "Total number of queues deleted"),
            &t.queues_deleted,
        ),
    ];
    for (f, c) in &totals {
        w.single(f, Totals::get(c));
    }
    let process = crate::os::rss_bytes;
    let max_fds = crate::os::max_fds();
    let resources: [(Family, Option<u64>); 8] = [
        (
            gauge("process_open_fds", "Open file descriptors"),
            crate::os::open_fds(),
        ),
        // RabbitMQ counts its clients' sockets (not listeners) here.
        (
            gauge("process_open_tcp_sockets", "Open TCP sockets"),
            Some(s.connections.len() as u64),
        ),
        (
            gauge("process_resident_memory_bytes", "Memory used in bytes"),
            process(),
        ),
        (
            gauge(
                "disk_space_available_bytes",
                "Disk space available in bytes",
            ),
            crate::os::disk_free(&b.config.data_dir),
        ),
        (
            gauge("process_max_fds", "Open file descriptors limit"),
            max_fds,
        ),
        // Each client is a descriptor, and nothing else limits them but
        // the listener's connection_max.
        (
            gauge("process_max_tcp_sockets", "Open TCP sockets limit"),
            b.config.connection_max.or(max_fds),
        ),
        (
            gauge(
                "resident_memory_limit_bytes",
                "Memory high watermark in bytes",
            ),
            Some(b.alarms.memory_limit()),
        ),
        (
            gauge(
                "disk_space_available_limit_bytes",
                "Free disk space low watermark in bytes",
            ),
            Some(b.alarms.disk_free_limit()),
        ),
    ];
    for (f, v) in &resources {
        // Unknown (not Linux): left out rather than reported as 0.
        if let Some(v) = v {
            w.single(f, v);
        }
    }
    let uptime_ms = crate::clock::system_now_ms().saturating_sub(b.started_at);
    w.single(
        &gauge("erlang_uptime_seconds", "Node uptime"),
        uptime_ms as f64 / 1000.0,
    );
}

/// How many connections, channels, consumers and queues there are.
pub(crate) fn write_counts(w: &mut Writer, s: &Snapshot) {
    let consumers: u64 = s.queues.iter().map(|q| q.sample.consumers as u64).sum();
    let counts: [(Family, u64); 4] = [
        (
            gauge("connections", "Connections currently open"),
            s.connections.len() as u64,
        ),
        (
            gauge("channels", "Channels currently open"),
            s.channels().count() as u64,
        ),
        (
            gauge("consumers", "Consumers currently connected"),
            consumers,
        ),
        (gauge("queues", "Queues available"), s.queues.len() as u64),
    ];
    for (f, v) in &counts {
        w.single(f, v);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_permanent_id_is_stable_and_shaped_as_rabbitmqs() {
        let a = super::permanent_id("ferretmq@host");
        assert_eq!(a, super::permanent_id("ferretmq@host"));
        assert!(a.starts_with("rabbitmq-cluster-id-"));
        assert_ne!(a, super::permanent_id("ferretmq@other"));
    }
}
