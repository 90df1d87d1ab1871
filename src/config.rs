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
    pub data_dir: PathBuf,
    /// tracing filter, e.g. "info" or "ferretmq=debug".
    pub log: String,
    /// Largest frame offered in Connection.Tune, header and end octet included.
    pub frame_max: u32,
    pub channel_max: u16,
    /// Heartbeat interval offered in Connection.Tune, in seconds (0 disables).
    pub heartbeat: u16,
    /// Largest message body accepted, in bytes.
    pub max_message_size: u64,
    /// A connection that has not finished its handshake by then is dropped.
    pub handshake_timeout_ms: u64,
    pub users: Vec<UserConfig>,
    /// SASL mechanisms offered, as RabbitMQ's `auth_mechanisms`: PLAIN,
    /// AMQPLAIN, and RABBIT-CR-DEMO (RabbitMQ's challenge-response demo,
    /// off by default there too).
    pub auth_mechanisms: Vec<String>,
    pub vhosts: Vec<String>,
    /// fsync persistent messages before confirming them. Turning this off
    /// trades safety for speed: a machine crash (not a broker crash) can then
    /// lose confirmed messages.
    pub fsync: bool,
    /// A RabbitMQ definitions.json to import at boot (exchanges, queues,
    /// bindings, policies, vhosts).
    pub definitions: Option<PathBuf>,
    /// Let the default user `guest` connect from non-loopback addresses
    /// (RabbitMQ's `loopback_users = none`).
    pub guest_remote: bool,
    /// Consumer acknowledgement timeout, ms: a channel holding a delivery
    /// unacknowledged for longer is closed (406) and its messages requeued,
    /// as RabbitMQ's `consumer_timeout`. Off unless set; a queue's
    /// `x-consumer-timeout` argument or `consumer-timeout` policy overrides it.
    pub consumer_timeout: Option<u64>,
    /// Message bytes held in memory above which publishing connections are
    /// blocked (RabbitMQ's memory alarm). Default: 40% of physical memory.
    pub memory_limit: Option<u64>,
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
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // Dual-stack: IPv6 and IPv4 alike, as RabbitMQ listens.
            listen: vec![SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 5672))],
            management_listen: vec![SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 15672))],
            data_dir: PathBuf::from("./data"),
            log: "info".to_string(),
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat: 60,
            max_message_size: 128 * 1024 * 1024,
            handshake_timeout_ms: 10_000,
            users: vec![UserConfig {
                name: "guest".into(),
                password: "guest".into(),
            }],
            vhosts: vec!["/".to_string()],
            auth_mechanisms: vec!["AMQPLAIN".into(), "PLAIN".into()],
            guest_remote: false,
            fsync: true,
            definitions: None,
            consumer_timeout: None,
            memory_limit: None,
            product: "ferretmq".into(),
            product_version: None,
            cluster_name: default_cluster_name(),
            collect_statistics_interval: 5_000,
        }
    }
}

fn default_cluster_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!(
        "ferretmq@{}",
        if host.is_empty() { "localhost" } else { &host }
    )
}

impl Config {
    /// A config for tests and embedding: loopback, ephemeral port.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            management_listen: Vec::new(),
            data_dir: data_dir.into(),
            ..Config::default()
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("bad config {}: {e}", path.display()))
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
        assert_eq!(c.frame_max, d.frame_max);
        assert_eq!(c.heartbeat, d.heartbeat);
        assert_eq!(c.max_message_size, d.max_message_size);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("lisen = []").is_err());
    }
}
