//! The memory alarm, RabbitMQ's publisher flow control: when the message
//! data held in memory passes the limit, connections that publish are
//! blocked (no longer read from) until it falls back below; clients that
//! announce the `connection.blocked` capability are told so.

use crate::message::Meter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often the alarm compares what is held with the limit.
const CHECK_EVERY: Duration = Duration::from_millis(20);

pub struct MemoryAlarm {
    limit: u64,
    meter: Meter,
    on: AtomicBool,
    tx: watch::Sender<bool>,
}

impl MemoryAlarm {
    pub fn new(limit: u64, meter: Meter) -> MemoryAlarm {
        MemoryAlarm {
            limit,
            meter,
            on: AtomicBool::new(false),
            tx: watch::Sender::new(false),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether publishing connections are to be blocked now.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Changes of the alarm, for blocked connections to wait on.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Compare what is held with the limit; set or clear the alarm.
    pub fn check(&self) {
        let held = self.meter.held() as u64;
        let on = held > self.limit;
        if on != self.is_on() {
            self.on.store(on, Ordering::Relaxed);
            if on {
                tracing::warn!(
                    "memory alarm set: messages hold {held} bytes, above the limit of {}; publishers are blocked",
                    self.limit
                );
            } else {
                tracing::warn!("memory alarm cleared: messages hold {held} bytes");
            }
            self.tx.send_replace(on);
        }
    }

    /// Check periodically until `stop` says so.
    pub fn spawn(
        self: &Arc<Self>,
        tasks: &mut tokio::task::JoinSet<()>,
        mut stop: watch::Receiver<bool>,
    ) {
        let weak = Arc::downgrade(self);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let Some(alarm) = weak.upgrade() else { return };
                alarm.check();
            }
        });
    }
}

/// RabbitMQ's default: 40% of the machine's memory (1 GiB if unknown).
pub fn default_limit() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(2_560 * 1024 * 1024);
    total / 5 * 2
}
