//! Quorum queues side by side: confirmed publishing into one queue of a
//! cluster, through one or more of its nodes, with an acking consumer, and
//! end-to-end latency at a fixed rate. The same run against ferretmq and
//! RabbitMQ (amqp-bench has no queue-type option, hence this).
//!
//! cargo run --release --example quorum-bench -- \
//!     --uri amqp://guest:guest@127.0.0.1:5681/%2f --uri amqp://…:5682/%2f \
//!     [--seconds 10] [--publishers 4] [--window 500] [--size 16] \
//!     [--queue-type quorum] [--rate 1000]
//!
//! Publishers spread over the URIs; the consumer uses the first. Prints one
//! JSON line: confirmed/s, consumed/s, nacks, and latency p50/p99/max in µs
//! (publish to delivery) at `--rate` messages a second.

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    uris: Vec<String>,
    seconds: u64,
    publishers: usize,
    window: usize,
    size: usize,
    queue_type: String,
    rate: u64,
}

fn args() -> Args {
    let mut a = Args {
        uris: Vec::new(),
        seconds: 10,
        publishers: 4,
        window: 500,
        size: 16,
        queue_type: "quorum".into(),
        rate: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        let n = || v.parse::<u64>().unwrap_or(0);
        match k.as_str() {
            "--uri" => a.uris.push(v.clone()),
            "--seconds" => a.seconds = n(),
            "--publishers" => a.publishers = n() as usize,
            "--window" => a.window = n() as usize,
            "--size" => a.size = n() as usize,
            "--queue-type" => a.queue_type = v.clone(),
            "--rate" => a.rate = n(),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.uris.is_empty(), "--uri is needed");
    a
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

async fn channel(uri: &str) -> (Connection, lapin::Channel) {
    let c = Connection::connect(uri, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = c.create_channel().await.expect("channel");
    (c, ch)
}

/// Consume and ack (multiple, every 100) until `stop`; record latencies of
/// messages stamped after `stamped_from`.
async fn consume(
    uri: String,
    queue: String,
    consumed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    latencies: Arc<std::sync::Mutex<Vec<u64>>>,
) {
    let (_c, ch) = channel(&uri).await;
    ch.basic_qos(1000, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut d = ch
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(200), d.next()).await
        else {
            continue;
        };
        if m.data.len() >= 9 && m.data[8] == 1 {
            let sent = u64::from_be_bytes(m.data[..8].try_into().unwrap_or_default());
            latencies
                .lock()
                .expect("latencies")
                .push(now_ns().saturating_sub(sent) / 1000);
        }
        consumed.fetch_add(1, Ordering::Relaxed);
        n += 1;
        if n.is_multiple_of(100) {
            let _ = m.acker.ack(BasicAckOptions { multiple: true }).await;
        }
    }
}

/// Publish in windows of `window`, each waited for, until `stop`.
async fn publish(
    uri: String,
    queue: String,
    window: usize,
    size: usize,
    confirmed: Arc<AtomicU64>,
    nacked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let (_c, ch) = channel(&uri).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let body = vec![0u8; size.max(9)];
    let props = BasicProperties::default().with_delivery_mode(2);
    while !stop.load(Ordering::Relaxed) {
        let mut pending = Vec::with_capacity(window);
        for _ in 0..window {
            let c = ch
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    props.clone(),
                )
                .await
                .expect("publish");
            pending.push(c);
        }
        for c in pending {
            match c.await {
                Ok(c) if c.is_ack() => confirmed.fetch_add(1, Ordering::Relaxed),
                _ => nacked.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

/// Publish stamped messages at `rate` a second for `seconds`.
async fn paced(uri: String, queue: String, rate: u64, seconds: u64) {
    let (_c, ch) = channel(&uri).await;
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        tick.tick().await;
        let mut body = now_ns().to_be_bytes().to_vec();
        body.push(1);
        let _ = ch
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                props.clone(),
            )
            .await;
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::main]
async fn main() {
    let a = args();
    let queue = format!("quorum-bench-{}", std::process::id());
    let (_c, control) = channel(&a.uris[0]).await;
    let mut qargs = FieldTable::default();
    qargs.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(a.queue_type.as_str().into()),
    );
    control
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            qargs,
        )
        .await
        .expect("declare");
    let (confirmed, nacked, consumed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let stop_consumer = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let consumer = tokio::spawn(consume(
        a.uris[0].clone(),
        queue.clone(),
        consumed.clone(),
        stop_consumer.clone(),
        latencies.clone(),
    ));
    let mut publishers = Vec::new();
    for i in 0..a.publishers {
        publishers.push(tokio::spawn(publish(
            a.uris[i % a.uris.len()].clone(),
            queue.clone(),
            a.window,
            a.size,
            confirmed.clone(),
            nacked.clone(),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (c0, m0, t0) = (
        confirmed.load(Ordering::Relaxed),
        consumed.load(Ordering::Relaxed),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let secs = t0.elapsed().as_secs_f64();
    let rate = (confirmed.load(Ordering::Relaxed) - c0) as f64 / secs;
    let consumed_rate = (consumed.load(Ordering::Relaxed) - m0) as f64 / secs;
    stop.store(true, Ordering::Relaxed);
    for p in publishers {
        let _ = p.await;
    }
    // Latency, alone: the backlog drained first.
    let drained = Instant::now() + Duration::from_secs(30);
    let total = confirmed.load(Ordering::Relaxed);
    while consumed.load(Ordering::Relaxed) < total && Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    paced(a.uris[a.uris.len() - 1].clone(), queue.clone(), a.rate, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_consumer.store(true, Ordering::Relaxed);
    let _ = consumer.await;
    let mut l = latencies.lock().expect("latencies").clone();
    l.sort_unstable();
    let _ = control
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    println!(
        "{{\"queue_type\":\"{}\",\"publishers\":{},\"window\":{},\"size\":{},\"confirmed_per_s\":{:.0},\"consumed_per_s\":{:.0},\"nacks\":{},\"latency_rate\":{},\"latency_us\":{{\"p50\":{},\"p99\":{},\"max\":{},\"n\":{}}}}}",
        a.queue_type,
        a.publishers,
        a.window,
        a.size,
        rate,
        consumed_rate,
        nacked.load(Ordering::Relaxed),
        a.rate,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(0),
        l.len()
    );
}
