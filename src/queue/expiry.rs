//! When queues next have a message to expire. Each queue schedules only its
//! earliest deadline; the vhost's housekeeping task sleeps until the first
//! one is due and asks those queues to expire what is due.

use super::Queue;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

#[derive(Default)]
pub struct ExpiryTimer {
    due: Mutex<BTreeMap<u64, Vec<Weak<Queue>>>>,
    pub changed: Notify,
}

impl ExpiryTimer {
    pub fn schedule(&self, at: u64, q: &Arc<Queue>) {
        let mut d = self.due.lock().unwrap_or_else(|p| p.into_inner());
        let earliest = d.keys().next().copied();
        d.entry(at).or_default().push(Arc::downgrade(q));
        drop(d);
        if earliest.is_none_or(|e| at < e) {
            self.changed.notify_one();
        }
    }

    /// The earliest scheduled deadline.
    pub fn next(&self) -> Option<u64> {
        self.due
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .next()
            .copied()
    }

    /// Queues with a deadline at or before `now`.
    pub fn take_due(&self, now: u64) -> Vec<Arc<Queue>> {
        let mut d = self.due.lock().unwrap_or_else(|p| p.into_inner());
        let later = d.split_off(&(now + 1));
        let due = std::mem::replace(&mut *d, later);
        let mut out: Vec<Arc<Queue>> = Vec::new();
        for q in due.into_values().flatten().filter_map(|w| w.upgrade()) {
            if !out.iter().any(|x| Arc::ptr_eq(x, &q)) {
                out.push(q);
            }
        }
        out
    }
}
