//! The hidden queue behind an x-delayed-message exchange, and routing its
//! messages when they come due.

use super::*;
use crate::queue::Published;

impl Vhost {
    /// The hidden queue of a delayed-message exchange: not in the registry,
    /// logged (every message, whatever its delivery mode) when the exchange
    /// is durable, its messages expiring into the exchange when due.
    pub(super) fn delay_queue(
        &self,
        exchange: &str,
        durable: bool,
        recovered: Vec<crate::store::queue_log::Recovered>,
        log: Option<QueueLog>,
    ) -> AmqpResult<Arc<Queue>> {
        let name = delay_queue_name(exchange);
        let log = match log {
            Some(l) => Some(l),
            None if durable => {
                let dir = self.store.queue_dir(&self.name, &name);
                let _ = std::fs::remove_dir_all(&dir);
                let (l, _) = QueueLog::open(&dir, self.store.sync.clone(), self.store.meter)
                    .map_err(|e| {
                        AmqpError::internal_error(format!(
                            "cannot create delayed-message storage: {e}"
                        ))
                    })?;
                Some(l)
            }
            None => None,
        };
        let args = QueueArgs {
            delay_for: Some(exchange.to_string()),
            ..QueueArgs::default()
        };
        let q = Queue::with_log(
            name.as_str().into(),
            durable,
            None,
            false,
            FieldTable::default(),
            log,
            Some(self.store.pager(&name)),
            recovered,
            args,
            Some(self.timer.clone()),
            self.clock.clone(),
        );
        q.start_timers();
        Ok(q)
    }

    /// Hold a message in a delayed-message exchange `x` until its x-delay
    /// is over (reached by routing rather than published to directly).
    pub fn hold_delayed(&self, x: &Exchange, msg: &Arc<crate::message::Message>) -> Published {
        match (&x.delayed, x.holds_until(&msg.properties)) {
            (Some(q), Some(due)) => q.delay(msg.clone(), due),
            _ => Published::Dropped,
        }
    }

    /// Route delayed messages that are due, as the exchange's x-delayed-type would.
    pub fn release_delayed(&self, exchange: &str, due: Vec<crate::queue::DeadLetter>) {
        let Ok(x) = self.exchange(exchange) else {
            return;
        };
        let mut routed = Routed::default();
        for d in due {
            self.route_admitted(&x, d.msg.routing_keys(), &d.msg.properties, &mut routed);
            let mut remote = Vec::new();
            for q in routed.queues.drain(..) {
                if q.through_cluster() {
                    remote.push(q);
                    continue;
                }
                let (_, overflow) = q.publish(d.msg.clone());
                self.dead_letter(&q, overflow);
            }
            if !remote.is_empty() {
                self.forward_later(&d.msg, remote);
            }
            for dx in routed.delayed.drain(..) {
                let _ = self.hold_delayed(&dx, &d.msg);
            }
        }
    }
}

pub(super) fn delay_queue_name(exchange: &str) -> String {
    format!("amq.delayed.{exchange}")
}

/// The routing type of an x-delayed-message exchange (its x-delayed-type).
pub(super) fn delayed_type(args: &FieldTable) -> AmqpResult<ExchangeKind> {
    use amq_protocol::types::AMQPValue;
    let t = match args.inner().get("x-delayed-type") {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        _ => String::new(),
    };
    ExchangeKind::parse(&t).ok_or_else(|| {
        AmqpError::precondition_failed(
            "Invalid argument, 'x-delayed-type' must be an existing exchange type",
        )
    })
}
