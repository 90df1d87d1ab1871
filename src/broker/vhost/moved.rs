//! A quorum queue's home follows its group's leader (`cluster::quorum`):
//! when the group elects a leader on another node, that node asks the log
//! to move the queue there (`Change::MoveQueue`), and every node replaces
//! the queue's object with one for the new home, bound where the old one
//! was. The new home's queue is what its member's log holds; the old
//! home's queue lets go of its messages (they stay in its log, which its
//! member keeps from then on) and its consumers are cancelled, as for any
//! queue whose node went away.

use super::*;
use crate::queue::Placement;

impl Vhost {
    /// Move the queue declared as `incarnation` to `to`: true if it moved.
    pub(crate) fn move_shared_queue(&self, name: &str, incarnation: u64, to: &str) -> bool {
        let Some(old) = self.queues.get(name).map(|q| q.clone()) else {
            return false;
        };
        let Some(mut decl) = self.queue_decl(&old) else {
            return false;
        };
        if old.incarnation() != incarnation || decl.home == to || old.replicas().is_empty() {
            return false;
        }
        let Some(s) = self.shared.get() else {
            return false;
        };
        // None while the node starts: its groups open once it is up.
        let cluster = self.cluster();
        let (from_here, to_here) = (old.elsewhere().is_none(), *s.me == *to);
        decl.home = to.to_string();
        let placement = Placement {
            elsewhere: (!to_here).then(|| to.into()),
            incarnation,
            owner: None,
            home: (!to_here).then(|| crate::cluster::home_link(s.broker.clone(), &self.name, to)),
            replicas: decl.replicas.clone().into(),
        };
        let new = if to_here {
            let make = || self.recovered_home(&decl, placement);
            let made = match &cluster {
                Some(c) => c.home_arrives(&self.name, name, incarnation, make),
                None => make(),
            };
            match made {
                Some(q) => q,
                None => return false,
            }
        } else {
            let mut q = Queue::new(
                name.into(),
                decl.durable,
                None,
                decl.auto_delete,
                decl.arguments.clone(),
            );
            Queue::place(&mut q, placement);
            q
        };
        self.queues.insert(name.into(), new.clone());
        for x in self.exchange_list() {
            for b in x.bindings() {
                if matches!(&b.dest, Destination::Queue(q) if Arc::ptr_eq(q, &old)) {
                    x.bind(Binding {
                        dest: Destination::Queue(new.clone()),
                        ..b
                    });
                }
            }
            x.unbind_queue(&old);
        }
        if let (true, Some(c)) = (from_here, &cluster) {
            c.home_leaves(&self.name, name, incarnation, &old, || {
                self.store.queue_dir(&self.name, name)
            });
        } else if from_here {
            old.detach();
        } else {
            old.delete();
        }
        self.queues_changed();
        if (from_here || to_here)
            && let Err(e) = self.persist_if(true)
        {
            tracing::error!("queue '{name}' moved, but {e}");
        }
        tracing::info!(
            "quorum queue '{name}' in vhost '{}' is homed on {to} now",
            self.name
        );
        true
    }

    /// A quorum queue this node was home to before it stopped: where it is
    /// homed now is for its group to say (another member may lead it now),
    /// so until then it is a stand-in for an unknown home, whose messages
    /// are the group's member's (`cluster::quorum`). Its leader moves it.
    pub(super) fn quorum_queue_after_restart(&self, d: crate::store::definitions::QueueDef) {
        let mut q = Queue::new(
            d.name.as_str().into(),
            true,
            None,
            d.auto_delete,
            d.arguments,
        );
        let placement = Placement {
            elsewhere: Some("".into()),
            incarnation: d.incarnation,
            owner: None,
            home: None,
            replicas: d.replicas.into(),
        };
        Queue::place(&mut q, placement);
        self.queues.insert(d.name.as_str().into(), q);
        self.queues_changed();
    }

    /// The queue as its log here holds it, homed here from now on.
    fn recovered_home(&self, d: &QueueDecl, placement: Placement) -> Option<Arc<Queue>> {
        let dir = self.store.queue_dir(&self.name, &d.name);
        let (log, recovered) = match QueueLog::open(&dir, self.store.sync.clone(), self.store.meter)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("quorum queue '{}': cannot open its log: {e}", d.name);
                return None;
            }
        };
        let effective = self.effective_arguments(&d.name, &d.arguments);
        let args = QueueArgs::parse(&effective, &d.name, &self.name).unwrap_or_default();
        let mut q = Queue::with_log(
            d.name.as_str().into(),
            d.durable,
            None,
            d.auto_delete,
            d.arguments.clone(),
            Some(log),
            Some(self.store.pager(&d.name)),
            recovered,
            args,
            Some(self.timer.clone()),
            self.clock.clone(),
        );
        Queue::place(&mut q, placement);
        q.start_timers();
        Some(q)
    }
}
