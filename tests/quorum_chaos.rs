//! A small Jepsen-style check of quorum queues: clients publish with
//! confirms and consume with acks through whichever nodes are up, while
//! nodes are SIGKILLed and restarted on a random schedule (now and then
//! two at once, so the group loses its majority). At the end every node is
//! up again and the queue is drained: every message the broker confirmed
//! must have been consumed at least once. Redeliveries are counted: a
//! message whose ack had not been committed when its home died comes again.
//!
//! `FERRETMQ_CHAOS_SECONDS` (default 15) sets how long the schedule runs;
//! `FERRETMQ_CHAOS_SEED` replays a schedule (the seed is printed).
#[path = "common/chaos.rs"]
mod chaos;
#[path = "common/cluster.rs"]
mod cluster;
mod common;
use chaos::*;
#[path = "common/http.rs"]
mod http;
use cluster::*;
use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const QUEUE: &str = "chaos";

/// The AMQP addresses of the nodes that are up.
type Live = Arc<Mutex<Vec<String>>>;

fn pick(live: &Live, rng: &mut Rng) -> Option<String> {
    let l = live.lock().expect("live");
    (!l.is_empty()).then(|| l[rng.below(l.len())].clone())
}

async fn connect(addr: &str) -> Option<(Connection, lapin::Channel)> {
    let url = format!("amqp://guest:guest@{addr}/%2f");
    let go = async {
        let c = Connection::connect(&url, ConnectionProperties::default())
            .await
            .ok()?;
        let ch = c.create_channel().await.ok()?;
        Some((c, ch))
    };
    tokio::time::timeout(Duration::from_secs(5), go)
        .await
        .ok()
        .flatten()
}

#[derive(Default)]
struct Published {
    confirmed: BTreeSet<String>,
    unknown: usize,
}

async fn publisher(w: u64, live: Live, seed: u64, until: Instant, out: Arc<Mutex<Published>>) {
    let mut rng = Rng(seed.rotate_left(13 * (w as u32 + 1)) | 1);
    let mut i = 0u64;
    while Instant::now() < until {
        let Some(addr) = pick(&live, &mut rng) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Some((_c, ch)) = connect(&addr).await else {
            continue;
        };
        if ch
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .is_err()
        {
            continue;
        }
        while Instant::now() < until {
            let body = format!("p{w}-{i}");
            i += 1;
            let sent = ch
                .basic_publish(
                    "".into(),
                    QUEUE.into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await;
            let confirm = match sent {
                Ok(c) => tokio::time::timeout(Duration::from_secs(20), c).await,
                Err(_) => {
                    out.lock().expect("out").unknown += 1;
                    break;
                }
            };
            let mut o = out.lock().expect("out");
            match confirm {
                Ok(Ok(c)) if c.is_ack() => {
                    o.confirmed.insert(body);
                }
                Ok(Ok(_)) => o.unknown += 1,
                _ => {
                    o.unknown += 1;
                    break;
                }
            }
        }
    }
}

/// Consume and ack until told to stop, through any node, again after a
/// cancel or a lost connection: every body seen, how often.
async fn consumer(
    w: u64,
    live: Live,
    seed: u64,
    stop: tokio::sync::watch::Receiver<bool>,
    seen: Arc<Mutex<BTreeMap<String, u32>>>,
) {
    let mut rng = Rng(seed.rotate_left(29 * (w as u32 + 1)) | 1);
    while !*stop.borrow() {
        let Some(addr) = pick(&live, &mut rng) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Some((_c, ch)) = connect(&addr).await else {
            continue;
        };
        if ch.basic_qos(20, BasicQosOptions::default()).await.is_err() {
            continue;
        }
        let tag = format!("c{w}");
        let consuming = ch
            .basic_consume(
                QUEUE.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await;
        let Ok(mut deliveries) = consuming else {
            // No home yet (it is moving): try again shortly.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        loop {
            if *stop.borrow() {
                return;
            }
            let next = tokio::time::timeout(Duration::from_millis(500), deliveries.next()).await;
            match next {
                Err(_) => continue,
                Ok(Some(Ok(d))) => {
                    let body = String::from_utf8_lossy(&d.data).into_owned();
                    *seen.lock().expect("seen").entry(body).or_default() += 1;
                    if d.ack(BasicAckOptions::default()).await.is_err() {
                        break;
                    }
                }
                // Cancelled (its home moved or went down), or the
                // connection is gone.
                Ok(_) => break,
            }
        }
    }
}

#[tokio::test]
async fn every_confirmed_message_is_consumed_through_kills_and_restarts() {
    let (seconds, seed) = schedule();
    let mut rng = Rng(seed);
    let root = tempfile::tempdir().expect("dir");
    let mut nodes = replicating(root.path(), "").await;
    {
        let (_c, ch) = channel_on(&nodes[0]).await;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        declare_with(&ch, QUEUE, true, args).await;
    }
    for n in &nodes {
        until_queue(n, QUEUE, true).await;
    }

    let live: Live = Arc::new(Mutex::new(nodes.iter().map(|n| n.amqp.clone()).collect()));
    let published: Arc<Mutex<Published>> = Default::default();
    let seen: Arc<Mutex<BTreeMap<String, u32>>> = Default::default();
    let end = Instant::now() + Duration::from_secs(seconds);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut publishers = Vec::new();
    for w in 0..2 {
        publishers.push(tokio::spawn(publisher(
            w,
            live.clone(),
            seed,
            end,
            published.clone(),
        )));
    }
    let mut consumers = Vec::new();
    for w in 0..2 {
        consumers.push(tokio::spawn(consumer(
            w,
            live.clone(),
            seed,
            stop.clone(),
            seen.clone(),
        )));
    }

    let mut kills = 0;
    while Instant::now() < end {
        let n = rng.below(3);
        let up = nodes.iter().filter(|n| n.child.is_some()).count();
        if nodes[n].child.is_some() {
            if up == 3 || rng.below(4) == 0 {
                live.lock().expect("live").retain(|a| *a != nodes[n].amqp);
                nodes[n].kill();
                kills += 1;
            }
        } else {
            nodes[n].start();
            live.lock().expect("live").push(nodes[n].amqp.clone());
        }
        tokio::time::sleep(Duration::from_millis(500 + rng.below(2500) as u64)).await;
    }
    for p in publishers {
        p.await.expect("publisher");
    }
    for n in &mut nodes {
        if n.child.is_none() {
            n.start();
            live.lock().expect("live").push(n.amqp.clone());
        }
    }
    for n in &nodes {
        formed(n, &["n1", "n2", "n3"]).await;
    }
    let confirmed = std::mem::take(&mut published.lock().expect("published").confirmed);
    let unknown = published.lock().expect("published").unknown;
    println!(
        "{} confirmed, {unknown} nacked or cut off, {kills} kills",
        confirmed.len()
    );
    assert!(
        confirmed.len() > 50,
        "too few messages went through to say anything"
    );
    // Drain: the consumers carry on until every confirmed message is seen.
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<String> = {
            let s = seen.lock().expect("seen");
            confirmed
                .iter()
                .filter(|m| !s.contains_key(*m))
                .cloned()
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        if Instant::now() > give_up {
            for n in &nodes {
                for l in n.log.lock().expect("log").iter() {
                    if l.contains("ERROR") || l.contains("quorum") {
                        println!("{}: {}", n.name, l.chars().take(400).collect::<String>());
                    }
                }
            }
            panic!(
                "{} confirmed messages never consumed, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(true);
    for c in consumers {
        c.await.expect("consumer");
    }
    let s = seen.lock().expect("seen");
    let again: u32 = s.values().map(|n| n - 1).sum();
    let phantom: Vec<&String> = s.keys().filter(|m| !m.starts_with('p')).collect();
    println!(
        "{} distinct consumed, {again} redeliveries (acks in flight when a home died)",
        s.len()
    );
    assert!(phantom.is_empty(), "never published: {phantom:?}");
    for n in &nodes {
        let log = n.log.lock().expect("log");
        if let Some(at) = log.iter().position(|l| l.contains("panicked")) {
            let context: Vec<&String> = log.iter().skip(at.saturating_sub(5)).take(12).collect();
            panic!("{} panicked: {context:#?}", n.name);
        }
    }
}
