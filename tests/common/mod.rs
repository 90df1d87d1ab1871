//! Shared test harness: a broker started in-process on 127.0.0.1:0 with a
//! temporary data dir, lapin connections to it, and deadline helpers.
#![allow(dead_code)]

use ferretmq::{Broker, Config, Running};
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};
use std::future::Future;
use std::time::Duration;

pub const DEADLINE: Duration = Duration::from_secs(10);

pub struct TestBroker {
    pub running: Option<Running>,
    pub url: String,
    pub addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

pub async fn start() -> TestBroker {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestBroker {
    start_in(tempfile::tempdir().expect("tempdir"), tweak).await
}

/// Start on an existing data dir (a restart keeps the same `TempDir`).
pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestBroker {
    let mut config = Config::ephemeral(dir.path());
    tweak(&mut config);
    let running = Broker::start(config).await.expect("broker starts");
    TestBroker {
        url: running.url(),
        addr: running.addr(),
        running: Some(running),
        _dir: dir,
    }
}

impl TestBroker {
    pub async fn connect(&self) -> Connection {
        within(Connection::connect(
            &self.url,
            ConnectionProperties::default(),
        ))
        .await
        .expect("connects")
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let c = self.connect().await;
        let ch = within(c.create_channel()).await.expect("channel");
        (c, ch)
    }

    pub async fn shutdown(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// Stop cleanly and start again on the same data dir.
    pub async fn restart(self) -> TestBroker {
        self.restart_with(|_| {}).await
    }

    /// Restart with a config tweak (the first start's tweaks are not kept).
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> TestBroker {
        self.shutdown().await;
        start_in(self._dir, tweak).await
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// Await with the test deadline; a hang is a failure, not a stuck test.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("deadline exceeded")
}

/// The AMQP reply code carried by a lapin error, if any.
pub fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(a) => Some(a.get_id()),
        _ => None,
    }
}

pub async fn declare(ch: &Channel, name: &str) -> String {
    within(ch.queue_declare(
        name.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .expect("queue.declare")
    .name()
    .to_string()
}

/// Declare queue `name`, durable or not, with these arguments.
pub async fn declare_with(ch: &Channel, name: &str, durable: bool, args: FieldTable) {
    within(ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        args,
    ))
    .await
    .expect("queue.declare");
}

pub async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    within(ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        lapin::BasicProperties::default(),
    ))
    .await
    .expect("publish");
}

/// A persistent message; with confirms on, returns once it is confirmed.
pub async fn publish_persistent(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    let props = lapin::BasicProperties::default().with_delivery_mode(2);
    within(async {
        ch.basic_publish(exchange.into(), key.into(), Default::default(), body, props)
            .await
            .expect("publish")
            .await
            .expect("confirm")
    })
    .await;
}

pub async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str) {
    within(ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await
    .expect("queue.bind");
}

pub async fn purge(ch: &Channel, queue: &str) {
    within(ch.queue_purge(queue.into(), Default::default()))
        .await
        .expect("queue.purge");
}

pub async fn consume(ch: &Channel, queue: &str, no_ack: bool) -> Consumer {
    within(ch.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions {
            no_ack,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("basic.consume")
}

pub async fn next(c: &mut Consumer) -> lapin::message::Delivery {
    within(c.next())
        .await
        .expect("consumer stream ended")
        .expect("delivery")
}

pub async fn get(ch: &Channel, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    within(ch.basic_get(queue.into(), BasicGetOptions { no_ack: false }))
        .await
        .expect("basic.get")
}

/// Message count of a queue, through a passive declare.
pub async fn depth(ch: &Channel, queue: &str) -> u32 {
    within(ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
    .expect("passive declare")
    .message_count()
}

/// The error of a call made right after one the broker answers with
/// Channel.Close: either the broker's reply code, or lapin refusing the call
/// because it had already processed the Close (a race inside lapin). The
/// raw-frame tests pin the exact codes; this accepts only those two outcomes.
pub fn closed_with(e: &lapin::Error, code: u16) -> bool {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(a) => a.get_id() == code,
        lapin::ErrorKind::InvalidChannelState(..) => true,
        _ => false,
    }
}
