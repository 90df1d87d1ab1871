//! Everything a scrape reports, read from the broker once: each queue's
//! sample, each connection and its channels, and the totals of those gone.
//! Reading takes each queue's lock briefly, as /api/queues does; nothing
//! here is on the message path.

use crate::broker::Broker;
use crate::broker::connections::{ChannelStats, ConnectionInfo, PublishTotals};
use crate::broker::totals::Retired;
use crate::queue::stats::{Counters, Sample};
use std::sync::Arc;

pub(crate) struct QueueRow {
    pub vhost: String,
    pub name: String,
    pub sample: Sample,
}

pub(crate) struct Snapshot {
    pub queues: Vec<QueueRow>,
    pub connections: Vec<(Arc<ConnectionInfo>, Vec<Arc<ChannelStats>>)>,
    pub retired: Retired,
}

impl Snapshot {
    /// Only the queues of `vhosts` (all when `None`), and connections only
    /// when asked for: /metrics/detailed's queue families need none.
    pub(crate) fn take(b: &Broker, vhosts: Option<&[String]>, connections: bool) -> Snapshot {
        let mut queues = Vec::new();
        for v in b.vhosts() {
            if vhosts.is_some_and(|vs| !vs.contains(&v.name)) {
                continue;
            }
            for q in v.queue_list() {
                queues.push(QueueRow {
                    vhost: v.name.clone(),
                    name: q.name.to_string(),
                    sample: q.sample(),
                });
            }
        }
        let connections = if connections {
            b.connections
                .list()
                .into_iter()
                .map(|c| {
                    let chs = c.channel_list();
                    (c, chs)
                })
                .collect()
        } else {
            Vec::new()
        };
        Snapshot {
            queues,
            connections,
            retired: b.totals.retired(),
        }
    }

    pub(crate) fn channels(&self) -> impl Iterator<Item = (&ConnectionInfo, &ChannelStats)> {
        self.connections
            .iter()
            .flat_map(|(c, chs)| chs.iter().map(move |ch| (&**c, &**ch)))
    }

    /// Queue counters of live and deleted queues: cumulative.
    pub(crate) fn queue_counters(&self) -> Counters {
        let mut t = self.retired.queues;
        for q in &self.queues {
            t.add(&q.sample.counters);
        }
        t
    }

    /// Publish counters of open and closed channels: cumulative.
    pub(crate) fn publish_totals(&self) -> PublishTotals {
        let mut t = self.retired.publish;
        for (_, ch) in self.channels() {
            t.add(&ch.publish.totals());
        }
        t
    }
}
