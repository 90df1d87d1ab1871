//! The `ferretmq` binary: flags → config → tracing → server; or, as
//! `ferretmq ctl ...`, the operator's command line for a running node.

use clap::Parser;
use ferretmq::{Broker, Config};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "ferretmq", version, about = "An AMQP 0-9-1 message broker")]
struct Args {
    /// TOML config file (see config/ferretmq.toml); flags override it.
    #[arg(long, env = "FERRETMQ_CONFIG")]
    config: Option<PathBuf>,
    /// Address to accept AMQP connections on; repeat for several (port 0: ephemeral).
    #[arg(long, env = "FERRETMQ_LISTEN", value_delimiter = ',')]
    listen: Vec<SocketAddr>,
    /// Address for the management HTTP API; repeat for several (port 0: ephemeral).
    #[arg(long, env = "FERRETMQ_MANAGEMENT_LISTEN", value_delimiter = ',')]
    management_listen: Vec<SocketAddr>,
    /// Do not serve the management HTTP API.
    #[arg(long, env = "FERRETMQ_NO_MANAGEMENT")]
    no_management: bool,
    /// Address for Prometheus metrics; repeat for several (port 0: ephemeral).
    #[arg(long, env = "FERRETMQ_PROMETHEUS_LISTEN", value_delimiter = ',')]
    prometheus_listen: Vec<SocketAddr>,
    /// Do not serve Prometheus metrics.
    #[arg(long, env = "FERRETMQ_NO_PROMETHEUS")]
    no_prometheus: bool,
    /// Directory for persistent data.
    #[arg(long, env = "FERRETMQ_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Do not fsync before confirming persistent messages (dev use only: a
    /// machine crash may then lose confirmed messages).
    #[arg(long, env = "FERRETMQ_NO_FSYNC")]
    no_fsync: bool,
    /// A RabbitMQ definitions.json to import at boot (see config/definitions.example.json).
    #[arg(long, env = "FERRETMQ_DEFINITIONS")]
    definitions: Option<PathBuf>,
    /// Consumer acknowledgement timeout in ms (RabbitMQ's consumer_timeout):
    /// a channel holding a delivery unacknowledged longer is closed. Off by default.
    #[arg(long, env = "FERRETMQ_CONSUMER_TIMEOUT")]
    consumer_timeout: Option<u64>,
    /// Memory high watermark in bytes: above it publishers are blocked
    /// (default: 40% of physical memory).
    #[arg(long, env = "FERRETMQ_MEMORY_LIMIT")]
    memory_limit: Option<u64>,
    /// Free disk space the data dir must keep, bytes (default 50 MB).
    #[arg(long, env = "FERRETMQ_DISK_FREE_LIMIT")]
    disk_free_limit: Option<u64>,
    /// This node's name in a cluster (cluster.node_name); any --cluster-*
    /// flag turns clustering on.
    #[arg(long, env = "FERRETMQ_CLUSTER_NODE_NAME")]
    cluster_node_name: Option<String>,
    /// Where the inter-node listener binds (default [::]:25672).
    #[arg(long, env = "FERRETMQ_CLUSTER_LISTEN")]
    cluster_listen: Option<SocketAddr>,
    /// The address other nodes reach this one on (default: the bound one).
    #[arg(long, env = "FERRETMQ_CLUSTER_ADVERTISE")]
    cluster_advertise: Option<String>,
    /// Other nodes' cluster addresses (host:port), comma-separated.
    #[arg(long, env = "FERRETMQ_CLUSTER_SEED_NODES", value_delimiter = ',')]
    cluster_seed_nodes: Vec<String>,
    /// The secret every node of the cluster shares (prefer the file or the
    /// environment: flags show in the process list).
    #[arg(long, env = "FERRETMQ_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
    /// A file holding the cluster secret.
    #[arg(long, env = "FERRETMQ_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, env = "FERRETMQ_LOG")]
    log: Option<String>,
}

fn main() -> std::process::ExitCode {
    // `ferretmq ctl ...` manages a running node instead of being one.
    let mut argv = std::env::args();
    if argv.nth(1).as_deref() == Some("ctl") {
        return ferretmq::ctl::main(argv.collect());
    }
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("ferretmq: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    if !args.management_listen.is_empty() {
        config.management_listen = args.management_listen;
    }
    if args.no_management {
        config.management_listen.clear();
    }
    if !args.prometheus_listen.is_empty() {
        config.prometheus_listen = args.prometheus_listen;
    }
    if args.no_prometheus {
        config.prometheus_listen.clear();
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(d) = args.definitions {
        config.definitions = Some(d);
    }
    if args.no_fsync {
        config.fsync = false;
    }
    if let Some(t) = args.consumer_timeout {
        config.consumer_timeout = Some(t);
    }
    if let Some(m) = args.memory_limit {
        config.memory_limit = Some(m);
    }
    if let Some(d) = args.disk_free_limit {
        config.disk_free_limit = d;
    }
    if let Some(l) = args.log {
        config.log = l;
    }
    let clustered = args.cluster_node_name.is_some()
        || args.cluster_listen.is_some()
        || args.cluster_advertise.is_some()
        || !args.cluster_seed_nodes.is_empty()
        || args.cluster_secret.is_some()
        || args.cluster_secret_file.is_some();
    if clustered {
        let c = config.cluster.get_or_insert_with(Default::default);
        if let Some(n) = args.cluster_node_name {
            c.node_name = n;
        }
        if let Some(l) = args.cluster_listen {
            c.listen = l;
        }
        if let Some(a) = args.cluster_advertise {
            c.advertise = Some(a);
        }
        if !args.cluster_seed_nodes.is_empty() {
            // `--cluster-seed-nodes ""` means none.
            c.seed_nodes = args
                .cluster_seed_nodes
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(s) = args.cluster_secret {
            c.secret = Some(s);
        }
        if let Some(f) = args.cluster_secret_file {
            c.secret_file = Some(f);
        }
    }
    // openraft reports each election and membership step at info; keep
    // those for `--log openraft=info` and say only what goes wrong.
    let filter = if config.log.contains("openraft") {
        config.log.clone()
    } else {
        format!("{},openraft=warn", config.log)
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferretmq: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: Config) -> std::process::ExitCode {
    ferretmq::server::raise_open_files_limit();
    let running = match Broker::start(config).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
