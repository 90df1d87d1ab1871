//! `ferretmq ctl`: rabbitmqctl's commands for a running node, with its
//! names, arguments, `-p`/`--vhost`, and output (tab-separated, or
//! `--formatter json`). It talks to the node's management API over the Unix
//! socket in the node's data dir (`ctl.sock`, mode 0600): being able to open
//! that socket — being the broker's OS user, or root — is the credential,
//! as reading the Erlang cookie is for rabbitmqctl.

mod client;
mod cluster;
mod commands;
mod definitions;
mod lists;
mod output;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "ferretmq ctl",
    about = "Manage a running ferretmq node (rabbitmqctl's commands)"
)]
struct Ctl {
    /// The node's data directory; its ctl socket is there.
    #[arg(long, env = "FERRETMQ_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The node's config file (its data_dir is used unless --data-dir is given).
    #[arg(long, env = "FERRETMQ_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[arg(short = 'p', long = "vhost", default_value = "/", global = true)]
    vhost: String,
    #[arg(long, value_enum, default_value = "table", global = true)]
    formatter: output::Formatter,
    /// No informational messages.
    #[arg(short = 'q', long, global = true)]
    quiet: bool,
    /// No informational messages and no table headers.
    #[arg(short = 's', long, global = true)]
    silent: bool,
    #[arg(long = "no-table-headers", global = true)]
    no_table_headers: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[command(rename_all = "snake_case")]
pub(crate) enum Command {
    AddVhost {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        tags: Option<String>,
        #[arg(long = "default-queue-type")]
        default_queue_type: Option<String>,
    },
    DeleteVhost {
        name: String,
    },
    ListVhosts {
        columns: Vec<String>,
    },
    AddUser {
        name: String,
        password: String,
    },
    DeleteUser {
        name: String,
    },
    ChangePassword {
        name: String,
        password: String,
    },
    ClearPassword {
        name: String,
    },
    SetUserTags {
        name: String,
        tags: Vec<String>,
    },
    ListUsers,
    SetPermissions {
        user: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        user: String,
    },
    ListPermissions,
    ListUserPermissions {
        user: String,
    },
    SetTopicPermissions {
        user: String,
        exchange: String,
        write: String,
        read: String,
    },
    ClearTopicPermissions {
        user: String,
        exchange: Option<String>,
    },
    ListTopicPermissions,
    /// JSON, e.g. '{"max-connections": 10, "max-queues": 5}'.
    SetVhostLimits {
        definition: String,
    },
    ClearVhostLimits,
    ListVhostLimits,
    /// JSON, e.g. '{"max-connections": 3, "max-channels": 7}'.
    SetUserLimits {
        user: String,
        definition: String,
    },
    /// A limit name, or "all".
    ClearUserLimits {
        user: String,
        limit: String,
    },
    ListUserLimits {
        #[arg(long)]
        user: Option<String>,
    },
    ListQueues {
        columns: Vec<String>,
    },
    ListExchanges {
        columns: Vec<String>,
    },
    ListBindings {
        columns: Vec<String>,
    },
    ListConnections {
        columns: Vec<String>,
    },
    ListChannels {
        columns: Vec<String>,
    },
    ListConsumers {
        columns: Vec<String>,
    },
    SetPolicy {
        name: String,
        pattern: String,
        definition: String,
        #[arg(long)]
        priority: Option<i64>,
        #[arg(long = "apply-to")]
        apply_to: Option<String>,
    },
    ClearPolicy {
        name: String,
    },
    ListPolicies,
    PurgeQueue {
        queue: String,
    },
    DeleteQueue {
        queue: String,
        #[arg(short = 'e', long = "if-empty")]
        if_empty: bool,
        #[arg(short = 'u', long = "if-unused")]
        if_unused: bool,
    },
    CloseConnection {
        name: String,
        explanation: String,
    },
    /// A file, or "-" for standard output.
    ExportDefinitions {
        path: String,
    },
    /// A file, or "-" for standard input.
    ImportDefinitions {
        path: String,
    },
    Status,
    ClusterStatus,
    /// Remove a node from the cluster (run on any other member).
    ForgetClusterNode {
        node: String,
    },
    /// Reset this node and make it a member of the cluster NODE is in
    /// (NODE: a member's cluster address, host:port).
    JoinCluster {
        node: String,
    },
    /// Wait until at least COUNT members of the cluster are running.
    AwaitOnlineNodes {
        count: usize,
        /// Seconds to wait at most.
        #[arg(short = 't', long, default_value_t = 300)]
        timeout: u64,
    },
}

/// Run `ferretmq ctl ARGS...` (the arguments after "ctl").
pub fn main(args: Vec<String>) -> ExitCode {
    let ctl = match Ctl::try_parse_from(std::iter::once("ferretmq ctl".to_string()).chain(args)) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 64 } else { 0 });
        }
    };
    let data_dir = match (&ctl.data_dir, &ctl.config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => match crate::Config::from_file(c) {
            Ok(c) => c.data_dir,
            Err(e) => {
                eprintln!("Error:\n{e}");
                return ExitCode::from(64);
            }
        },
        (None, None) => crate::Config::default().data_dir,
    };
    let style = output::Style {
        formatter: ctl.formatter,
        quiet: ctl.quiet || ctl.silent,
        no_headers: ctl.silent || ctl.no_table_headers,
    };
    let client = client::Client {
        socket: crate::server::ctl_socket_path(&data_dir),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error:\ncannot start a runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(commands::run(&client, &style, &ctl.vhost, ctl.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error:\n{}", e.text);
            ExitCode::from(e.code)
        }
    }
}
