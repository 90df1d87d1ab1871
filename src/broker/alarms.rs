//! Resource alarms, RabbitMQ's publisher flow control. Above the memory
//! high watermark, or with less free disk than `disk_free_limit` on the data
//! dir's file system, connections that publish are blocked (no longer read
//! from) until it clears; clients that announce the `connection.blocked`
//! capability are told why. Before memory gets there, at the paging ratio of
//! the watermark, every queue starts keeping new messages on disk, so that
//! the alarm itself rarely has to fire.

use crate::message::Meter;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often memory and disk are compared with their limits.
const CHECK_EVERY: Duration = Duration::from_millis(20);
/// How often memory freed after a burst (a drained backlog, connections
/// gone) is given back to the system: glibc keeps what its per-thread
/// arenas freed otherwise, and RSS would stay at its peak. A trim walks only
/// the free lists, so its cost is in microseconds for a quiet heap.
const TRIM_EVERY: u32 = 250;
/// Once set, the memory alarm stays on at least this long: memory checked
/// every 20 ms right at the watermark would otherwise block and unblock
/// publishers 50 times a second (RabbitMQ checks about once a second).
const ALARM_MIN_ON: Duration = Duration::from_secs(1);

/// What the memory watermark is compared with (RabbitMQ's
/// `vm_memory_calculation_strategy`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MemoryStrategy {
    /// The process's resident memory, as the kernel counts it.
    #[default]
    Rss,
    /// Only the message data this broker holds: for several brokers in one
    /// process (tests, embedding), where RSS is shared.
    Messages,
}

/// The limits the alarms watch.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Memory high watermark, bytes.
    pub memory: u64,
    /// Fraction of it at which queues page every new message.
    pub paging_ratio: f64,
    pub strategy: MemoryStrategy,
    /// Free bytes the data dir's file system must keep.
    pub disk_free: u64,
    pub data_dir: PathBuf,
}

impl Limits {
    /// Memory in use past which queues page every new message.
    fn paging_at(&self) -> u64 {
        (self.memory as f64 * self.paging_ratio) as u64
    }
}

pub struct Alarms {
    limits: Limits,
    meter: Meter,
    memory: AtomicBool,
    disk: AtomicBool,
    /// Last reading, bytes (for the management API and metrics).
    memory_used: AtomicU64,
    disk_free: AtomicU64,
    /// When the memory alarm was last set (read by the alarms task only).
    memory_set_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// Bumped whenever an alarm changes, for blocked connections to wait on.
    tx: watch::Sender<u64>,
}

impl Alarms {
    pub fn new(limits: Limits, meter: Meter) -> Alarms {
        meter.page_above(limits.paging_at() as usize);
        Alarms {
            limits,
            meter,
            memory: AtomicBool::new(false),
            disk: AtomicBool::new(false),
            memory_used: AtomicU64::new(0),
            disk_free: AtomicU64::new(u64::MAX),
            memory_set_at: std::sync::Mutex::new(None),
            tx: watch::Sender::new(0),
        }
    }

    pub fn memory_limit(&self) -> u64 {
        self.limits.memory
    }

    pub fn disk_free_limit(&self) -> u64 {
        self.limits.disk_free
    }

    pub fn strategy(&self) -> MemoryStrategy {
        self.limits.strategy
    }

    pub fn memory_alarm(&self) -> bool {
        self.memory.load(Ordering::Relaxed)
    }

    pub fn disk_alarm(&self) -> bool {
        self.disk.load(Ordering::Relaxed)
    }

    /// Whether publishing connections are to be blocked now.
    pub fn is_on(&self) -> bool {
        self.memory_alarm() || self.disk_alarm()
    }

    /// Connection.Blocked's reason, in RabbitMQ's words.
    pub fn reason(&self) -> &'static str {
        match (self.memory_alarm(), self.disk_alarm()) {
            (true, true) => "low on memory & disk",
            (false, true) => "low on disk",
            _ => "low on memory",
        }
    }

    /// The resources in alarm, as RabbitMQ names them.
    pub fn resources(&self) -> Vec<&'static str> {
        let mut r = Vec::new();
        if self.memory_alarm() {
            r.push("memory");
        }
        if self.disk_alarm() {
            r.push("disk");
        }
        r
    }

    /// Free bytes on the data dir's file system at the last reading.
    pub fn disk_free(&self) -> Option<u64> {
        match self.disk_free.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n),
        }
    }

    /// Changes of the alarms, for blocked connections to wait on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Memory in use as the strategy counts it.
    fn memory_in_use(&self) -> u64 {
        match self.limits.strategy {
            MemoryStrategy::Rss => crate::os::rss_bytes().unwrap_or(self.meter.held() as u64),
            MemoryStrategy::Messages => self.meter.held() as u64,
        }
    }

    /// Compare memory with its watermark: page, set or clear the alarm.
    pub fn check_memory(&self) {
        let used = self.memory_in_use();
        self.memory_used.store(used, Ordering::Relaxed);
        let paging_at = self.limits.paging_at();
        // Stop paging a little below where it started, so it does not flap.
        let was = self.meter.paging();
        let paging = used > paging_at || (was && used > paging_at / 10 * 9);
        if paging != was {
            tracing::info!(
                "memory in use {used} bytes: queues {} new messages",
                if paging { "page" } else { "stop paging" }
            );
            self.meter.set_paging(paging);
        }
        let too_soon = self
            .memory_set_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < ALARM_MIN_ON);
        let on = used > self.limits.memory || (self.memory_alarm() && too_soon);
        if on && self.memory_alarm() && self.limits.strategy == MemoryStrategy::Rss {
            // What was freed since may still count in RSS (glibc keeps it):
            // give it back, or the alarm could outlast the memory it saw.
            crate::os::release_free_memory();
        }
        if on != self.memory_alarm() {
            self.memory.store(on, Ordering::Relaxed);
            if on {
                *self.memory_set_at.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(std::time::Instant::now());
                tracing::warn!(
                    "memory alarm set: {used} bytes in use, above the watermark of {}; publishers are blocked",
                    self.limits.memory
                );
                crate::os::release_free_memory();
            } else {
                tracing::warn!("memory alarm cleared: {used} bytes in use");
            }
            self.tx.send_modify(|n| *n += 1);
        }
    }

    /// Compare the data dir's free space with `disk_free_limit`.
    pub fn check_disk(&self) {
        let Some(free) = crate::os::disk_free(&self.limits.data_dir) else {
            return;
        };
        self.disk_free.store(free, Ordering::Relaxed);
        let on = free < self.limits.disk_free;
        if on != self.disk_alarm() {
            self.disk.store(on, Ordering::Relaxed);
            if on {
                tracing::warn!(
                    "disk alarm set: {free} bytes free on {}, below the limit of {}; publishers are blocked",
                    self.limits.data_dir.display(),
                    self.limits.disk_free
                );
            } else {
                tracing::warn!("disk alarm cleared: {free} bytes free");
            }
            self.tx.send_modify(|n| *n += 1);
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
            let mut ticks = 0u32;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let Some(alarms) = weak.upgrade() else { return };
                alarms.check_memory();
                // statvfs is one cheap system call: a filling disk is
                // caught as quickly as growing memory.
                alarms.check_disk();
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(TRIM_EVERY) {
                    crate::os::release_free_memory();
                }
            }
        });
    }
}

/// Physical memory, bytes (2.5 GiB if unknown).
pub fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(2_560 * 1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    #[test]
    fn the_memory_alarm_holds_a_second_instead_of_flapping_at_the_watermark() {
        let meter = Meter::new();
        let alarms = Alarms::new(
            Limits {
                memory: 1000,
                paging_ratio: 0.5,
                strategy: MemoryStrategy::Messages,
                disk_free: 0,
                data_dir: PathBuf::from("."),
            },
            meter,
        );
        let big = Message::new(
            "".into(),
            "q".into(),
            Default::default(),
            bytes::Bytes::new(),
            bytes::Bytes::from(vec![0u8; 2000]),
            meter,
        );
        alarms.check_memory();
        assert!(alarms.memory_alarm());
        let set = std::time::Instant::now();
        drop(big);
        alarms.check_memory();
        assert!(alarms.memory_alarm(), "still on right after memory fell");
        let deadline = set + Duration::from_secs(10);
        while alarms.memory_alarm() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            alarms.check_memory();
        }
        assert!(!alarms.memory_alarm(), "cleared once held long enough");
        assert!(set.elapsed() >= ALARM_MIN_ON - Duration::from_millis(50));
    }
}
