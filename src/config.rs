//! Configuration: embedded defaults, overridden by a TOML file, then by
//! environment variables and command-line flags (clap handles the last two).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Addresses to accept AMQP connections on (port 0 binds an ephemeral port).
    pub listen: Vec<SocketAddr>,
    /// Addresses for the management HTTP API (RabbitMQ's 15672); empty: off.
    pub management_listen: Vec<SocketAddr>,
    /// Addresses for Prometheus metrics (rabbitmq_prometheus's 15692); empty: off.
    pub prometheus_listen: Vec<SocketAddr>,
    pub data_dir: PathBuf,
    /// tracing filter, e.g. "info" or "ferretmq=debug".
    pub log: String,
    /// Largest frame offered in Connection.Tune, header and end octet included.
    pub frame_max: u32,
    pub channel_max: u16,
    /// Heartbeat interval offered in Connection.Tune, in seconds (0 disables).
    pub heartbeat: u16,
    /// Connections each listener serves at most (RabbitMQ's
    /// `connection_max`); one more is refused at Connection.Open with 530.
    pub connection_max: Option<u64>,
    /// Largest message body accepted, in bytes.
    pub max_message_size: u64,
    /// A connection that has not finished its handshake by then is dropped.
    pub handshake_timeout_ms: u64,
    /// On the first boot (an empty data dir) RabbitMQ's `default_vhost`,
    /// `default_user` and `default_pass` are created, the user with
    /// `default_user_tags` and full permissions in that vhost. Later boots
    /// keep what the data dir holds.
    pub default_vhost: String,
    pub default_user: String,
    pub default_pass: String,
    pub default_user_tags: Vec<String>,
    /// Users who may connect from loopback addresses only (RabbitMQ's
    /// `loopback_users`; `[]` lifts it).
    pub loopback_users: Vec<String>,
    /// SASL mechanisms offered, as RabbitMQ's `auth_mechanisms`: PLAIN,
    /// AMQPLAIN, and RABBIT-CR-DEMO (RabbitMQ's challenge-response demo,
    /// off by default there too).
    pub auth_mechanisms: Vec<String>,
    /// fsync persistent messages before confirming them. Turning this off
    /// trades safety for speed: a machine crash (not a broker crash) can then
    /// lose confirmed messages.
    pub fsync: bool,
    /// A RabbitMQ definitions.json to import at boot (users, vhosts,
    /// permissions, limits, policies, exchanges, queues, bindings); a
    /// relative path is relative to the config file.
    pub definitions: Option<PathBuf>,
    /// Consumer acknowledgement timeout, ms: a channel holding a delivery
    /// unacknowledged for longer is closed (406) and its messages requeued,
    /// as RabbitMQ's `consumer_timeout`. Off unless set; a queue's
    /// `x-consumer-timeout` argument or `consumer-timeout` policy overrides it.
    pub consumer_timeout: Option<u64>,
    /// The memory high watermark in bytes (RabbitMQ's
    /// `vm_memory_high_watermark.absolute`): above it publishing connections
    /// are blocked. Unset: `vm_memory_high_watermark` of physical memory.
    pub memory_limit: Option<u64>,
    /// The watermark as a fraction of physical memory (default 0.4).
    pub vm_memory_high_watermark: f64,
    /// At this fraction of the watermark every queue pages new messages to
    /// disk (default 0.5), so that the alarm rarely fires.
    pub vm_memory_high_watermark_paging_ratio: f64,
    /// What the watermark is compared with: `rss` (the process's resident
    /// memory, default) or `messages` (only message data this broker holds).
    pub vm_memory_calculation_strategy: crate::broker::alarms::MemoryStrategy,
    /// Free bytes the data dir's file system must keep; below, publishing
    /// connections are blocked (RabbitMQ's `disk_free_limit.absolute`,
    /// default 50 MB).
    pub disk_free_limit: u64,
    /// `product` in the server properties. Some tools and client test
    /// suites expect "RabbitMQ" there.
    pub product: String,
    /// `version` in the server properties (default: ferretmq's version).
    /// Tools that gate features on RabbitMQ's version read it.
    pub product_version: Option<String>,
    /// `cluster_name` in the server properties (default: ferretmq@HOSTNAME,
    /// as RabbitMQ's rabbit@HOSTNAME).
    pub cluster_name: String,
    /// How often queue statistics are sampled into rates, ms (RabbitMQ's
    /// `collect_statistics_interval`).
    pub collect_statistics_interval: u64,
    /// The amqps listener (`[tls]` in the file): off unless set.
    pub tls: Option<TlsConfig>,
    /// Clustering (`[cluster]` in the file): off unless set.
    pub cluster: Option<ClusterConfig>,
}

/// A node of a cluster: its name, where other nodes reach it, whom it
/// forms the cluster with, and the secret all of them share (RabbitMQ's
/// Erlang cookie).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Unique in the cluster (default ferretmq@HOSTNAME).
    pub node_name: String,
    /// Where the inter-node listener binds (default [::]:25672, RabbitMQ's
    /// distribution port).
    pub listen: SocketAddr,
    /// The address other nodes are told to use (default: the bound one).
    pub advertise: Option<String>,
    /// Other nodes' cluster addresses, host:port.
    pub seed_nodes: Vec<String>,
    /// The shared secret, or a file holding it (`secret_file`, relative to
    /// the config file); one of the two must be set.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Metadata log entries between snapshots; the log before a snapshot is
    /// then dropped (default 1000).
    pub snapshot_after: u64,
    /// TLS between nodes (`[cluster.tls]`): off unless set.
    pub tls: Option<ClusterTls>,
    /// Exchanges and exchange-to-exchange bindings are changed through the
    /// cluster's log, so every node has the same (experimental, off by
    /// default until queues follow: see the README's cluster section).
    pub replicate_topology: bool,
    /// A quorum queue's group takes a snapshot (and cuts its log) after
    /// this many entries, once the queue holds few messages (default 8192).
    pub quorum_snapshot_after: u64,
}

/// Inter-node TLS: every node presents its certificate and accepts only
/// peers whose certificate the cluster's CA signed (and whose address the
/// certificate names). Paths are relative to the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub cacertfile: PathBuf,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_name: default_cluster_name(),
            listen: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 25672)),
            advertise: None,
            seed_nodes: Vec::new(),
            secret: None,
            secret_file: None,
            snapshot_after: 1000,
            tls: None,
            replicate_topology: false,
            quorum_snapshot_after: 8192,
        }
    }
}

impl ClusterConfig {
    /// The shared secret (a file's content is trimmed of surrounding space).
    pub fn secret(&self) -> std::io::Result<String> {
        let s = match (&self.secret, &self.secret_file) {
            (Some(s), _) => s.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cluster secret_file {}: {e}", f.display()),
                    )
                })?
                .trim()
                .to_string(),
            (None, None) => String::new(),
        };
        if s.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a cluster needs a shared secret: set cluster.secret or cluster.secret_file",
            ));
        }
        Ok(s)
    }
}

/// TLS for AMQP, as RabbitMQ's `ssl_options`: PEM files, and whether client
/// certificates are asked for (`verify_peer`) and required
/// (`fail_if_no_peer_cert`). Relative paths are relative to the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Where amqps is served (RabbitMQ's `listeners.ssl`; default [::]:5671).
    #[serde(default = "default_tls_listen")]
    pub listen: Vec<SocketAddr>,
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    /// The CA that client certificates must chain to (needed for verify_peer).
    #[serde(default)]
    pub cacertfile: Option<PathBuf>,
    #[serde(default)]
    pub verify_peer: bool,
    #[serde(default)]
    pub fail_if_no_peer_cert: bool,
}

fn default_tls_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 5671))]
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // Dual-stack: IPv6 and IPv4 alike, as RabbitMQ listens.
            listen: vec![SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 5672))],
            management_listen: vec![SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 15672))],
            prometheus_listen: vec![SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 15692))],
            data_dir: PathBuf::from("./data"),
            log: "info".to_string(),
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat: 60,
            max_message_size: 128 * 1024 * 1024,
            connection_max: None,
            handshake_timeout_ms: 10_000,
            default_vhost: "/".into(),
            default_user: "guest".into(),
            default_pass: "guest".into(),
            default_user_tags: vec!["administrator".into()],
            loopback_users: vec!["guest".into()],
            auth_mechanisms: vec!["AMQPLAIN".into(), "PLAIN".into()],
            fsync: true,
            definitions: None,
            consumer_timeout: None,
            memory_limit: None,
            vm_memory_high_watermark: 0.4,
            vm_memory_high_watermark_paging_ratio: 0.5,
            vm_memory_calculation_strategy: Default::default(),
            disk_free_limit: 50_000_000,
            product: "ferretmq".into(),
            product_version: None,
            cluster_name: default_cluster_name(),
            collect_statistics_interval: 5_000,
            tls: None,
            cluster: None,
        }
    }
}

fn default_cluster_name() -> String {
    format!("ferretmq@{}", crate::os::hostname())
}

impl Config {
    /// A config for tests and embedding: loopback, ephemeral port.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            management_listen: Vec::new(),
            prometheus_listen: Vec::new(),
            data_dir: data_dir.into(),
            ..Config::default()
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let mut c: Config =
            toml::from_str(&text).map_err(|e| format!("bad config {}: {e}", path.display()))?;
        // Files named relative to the config are beside it.
        if let Some(dir) = path.parent() {
            let beside = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            };
            if let Some(d) = c.definitions.as_mut() {
                beside(d);
            }
            if let Some(cl) = c.cluster.as_mut() {
                if let Some(f) = cl.secret_file.as_mut() {
                    beside(f);
                }
                if let Some(t) = cl.tls.as_mut() {
                    beside(&mut t.certfile);
                    beside(&mut t.keyfile);
                    beside(&mut t.cacertfile);
                }
            }
            if let Some(t) = c.tls.as_mut() {
                beside(&mut t.certfile);
                beside(&mut t.keyfile);
                if let Some(ca) = t.cacertfile.as_mut() {
                    beside(ca);
                }
            }
        }
        Ok(c)
    }

    /// May `user` connect from `peer`? (RabbitMQ's `loopback_users`; an
    /// IPv4 peer of a dual-stack listener shows as ::ffff:a.b.c.d.)
    pub fn may_connect_from(&self, user: &str, peer: std::net::IpAddr) -> bool {
        peer.to_canonical().is_loopback() || !self.loopback_users.iter().any(|u| u == user)
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_config_parses_and_matches_the_embedded_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ferretmq.toml");
        let c = Config::from_file(&path).expect("config/ferretmq.toml parses");
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.management_listen, d.management_listen);
        assert_eq!(c.prometheus_listen, d.prometheus_listen);
        assert_eq!(c.frame_max, d.frame_max);
        assert_eq!(c.heartbeat, d.heartbeat);
        assert_eq!(c.max_message_size, d.max_message_size);
    }

    #[test]
    fn a_cluster_section_parses_with_defaults_for_what_it_leaves_out() {
        let c: Config =
            toml::from_str("[cluster]\nnode_name = \"n1\"\nsecret = \"s\"").expect("parses");
        let cl = c.cluster.expect("cluster");
        assert_eq!(cl.node_name, "n1");
        assert_eq!(cl.listen.port(), 25672);
        assert_eq!(cl.secret().expect("secret"), "s");
        let none: Config = toml::from_str("[cluster]").expect("parses");
        assert!(none.cluster.expect("cluster").secret().is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("lisen = []").is_err());
    }
}
