//! The statistics sampler: every `collect_statistics_interval` (RabbitMQ's
//! name; 5 s by default) it samples each queue's, exchange's and connection's counters
//! into rates. The
//! management API reads those, never the queues' counters under load.

use super::Broker;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

impl Broker {
    pub(super) fn spawn_sampler(
        self: &Arc<Self>,
        tasks: &mut tokio::task::JoinSet<()>,
        mut stop: watch::Receiver<bool>,
    ) {
        let weak = Arc::downgrade(self);
        let every = Duration::from_millis(self.config.collect_statistics_interval.max(100));
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let Some(broker) = weak.upgrade() else { return };
                let now = crate::clock::system_now_ms();
                for c in broker.connections.list() {
                    c.stats.sample(now);
                }
                let published = broker.publish_totals_by_vhost();
                for v in broker.vhosts() {
                    for q in v.queue_list() {
                        q.update_rates();
                    }
                    for x in v.exchange_list() {
                        x.stats.update_rates(now);
                    }
                    v.publish_rates
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .sample(now, &published.get(&v.name).copied().unwrap_or_default());
                }
            }
        });
    }
}
