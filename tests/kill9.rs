//! kill -9 under confirmed load: every confirmed message survives exactly
//! once, acked ones never come back. The broker runs as a child process so
//! it can be killed with SIGKILL.
mod common;
use common::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A broker in a child process, so it can be killed with SIGKILL.
struct Child9 {
    child: Child,
    url: String,
}

fn spawn_broker(dir: &std::path::Path) -> Child9 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferretmq"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-management",
            "--no-prometheus",
            "--log",
            "info",
            "--data-dir",
        ])
        .arg(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn ferretmq");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line[at + 13..].trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(DEADLINE)
        .expect("broker reports its address");
    Child9 {
        child,
        url: format!("amqp://guest:guest@{addr}/%2f"),
    }
}

#[tokio::test]
async fn every_confirmed_message_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    let mut confirmed: Vec<u32> = Vec::new();
    let mut acked: Vec<u32> = Vec::new();
    let mut next_id = 0u32;
    for round in 0..3 {
        let mut broker = spawn_broker(dir.path());
        let conn = within(Connection::connect(
            &broker.url,
            ConnectionProperties::default(),
        ))
        .await
        .expect("connect");
        let ch = within(conn.create_channel()).await.expect("ch");
        within(ch.confirm_select(Default::default()))
            .await
            .expect("confirms");
        within(ch.queue_declare(
            "k9".into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await
        .expect("q");
        // Ack a few from the previous rounds: they must not come back.
        if round > 0 {
            for _ in 0..10 {
                let m = get(&ch, "k9").await.expect("recovered message");
                acked.push(u32::from_be_bytes(
                    m.delivery.data[..4].try_into().expect("id"),
                ));
                within(ch.basic_ack(m.delivery.delivery_tag, Default::default()))
                    .await
                    .expect("ack");
            }
            // Round-trip so the acks have been processed before the kill.
            let _ = depth(&ch, "k9").await;
        }
        let props = BasicProperties::default().with_delivery_mode(2);
        let mut in_flight = std::collections::VecDeque::new();
        // Publish with up to 100 outstanding; kill while some are in flight.
        while confirmed.len() < 1500 * (round + 1) {
            let id = next_id;
            next_id += 1;
            let c = within(ch.basic_publish(
                "".into(),
                "k9".into(),
                Default::default(),
                &id.to_be_bytes(),
                props.clone(),
            ))
            .await
            .expect("publish");
            in_flight.push_back((id, c));
            if in_flight.len() >= 100 {
                let (id, c) = in_flight.pop_front().expect("one");
                assert!(within(c).await.expect("confirm").is_ack());
                confirmed.push(id);
            }
        }
        broker.child.kill().expect("kill -9");
        let _ = broker.child.wait();
        drop(in_flight);
        drop(conn);
    }
    let broker = spawn_broker(dir.path());
    let conn = within(Connection::connect(
        &broker.url,
        ConnectionProperties::default(),
    ))
    .await
    .expect("connect");
    let ch = within(conn.create_channel()).await.expect("ch");
    let mut ids = vec![];
    while let Some(m) = get(&ch, "k9").await {
        ids.push(u32::from_be_bytes(
            m.delivery.data[..4].try_into().expect("id"),
        ));
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "no message twice");
    for id in &confirmed {
        if !acked.contains(id) {
            assert!(
                sorted.binary_search(id).is_ok(),
                "confirmed message {id} lost"
            );
        }
    }
    for id in &acked {
        assert!(
            sorted.binary_search(id).is_err(),
            "acked message {id} came back"
        );
    }
    let mut b = broker;
    let _ = b.child.kill();
    let _ = b.child.wait();
}
