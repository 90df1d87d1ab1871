//! ferretmq: an AMQP 0-9-1 message broker that RabbitMQ clients can use
//! unmodified.
//!
//! Layout, following the data path (socket → codec → connection → channel →
//! exchange → queue → consumer delivery → writer → socket):
//!
//! - [`config`]: defaults ← config file ← env ← flags
//! - [`ctl`]: `ferretmq ctl`, rabbitmqctl's commands over the node's socket
//! - [`server`]: accept loop, `Broker::start` for embedding, graceful shutdown
//! - [`codec`]: frame splitting with frame_max enforced; amq-protocol parses
//! - [`connection`]: handshake, the connection task, the writer task
//! - [`channel`]: per-class method handlers, publish assembly, acks, confirms
//! - [`access`]: users, vhosts, permissions and limits, and the checks
//! - [`broker`]: vhosts and their registries, RabbitMQ's declare rules
//! - [`exchange`]: direct, fanout, topic, headers routing
//! - [`dedup`]: x-message-deduplication caches for exchanges and queues
//! - [`queue`]: ready list, consumers, round-robin dispatch with prefetch
//! - [`message`]: the `Arc`-shared message with its `Bytes` body
//! - [`store`]: durable definitions, per-queue message logs, group-commit fsync
//! - [`error`]: AMQP exceptions as values
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let running = ferretmq::Broker::start(ferretmq::Config::ephemeral("/tmp/ferretmq")).await?;
//! println!("AMQP at {}", running.url());
//! running.shutdown().await;
//! # Ok(()) }
//! ```

pub(crate) mod access;
pub mod broker;
mod cc;
pub(crate) mod channel;
pub(crate) mod clock;
pub(crate) mod cluster;
pub(crate) mod codec;
pub mod config;
pub(crate) mod connection;
pub mod ctl;
pub(crate) mod dedup;
pub(crate) mod error;
pub(crate) mod exchange;
pub(crate) mod field;
#[doc(hidden)]
pub mod fuzzing;
mod management;
pub(crate) mod message;
pub(crate) mod os;
mod prometheus;
pub(crate) mod queue;
pub mod server;
pub(crate) mod stats;
pub(crate) mod store;
pub(crate) mod tls;

pub use access::Refusal;
pub use broker::Broker;
pub use config::Config;
pub use server::Running;
