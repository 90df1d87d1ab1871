//! Routing a message from an exchange to queues: the default exchange,
//! exchange-to-exchange chains and alternate exchanges. A message routes
//! with every key it carries (its routing key, then its CC and BCC keys),
//! each queue reached once.

use super::*;
use crate::message::Message;

impl Vhost {
    /// Route to queues (left in `r.queues`, each once): the default exchange
    /// by queue name, others by bindings, through exchange-to-exchange
    /// bindings, and to the alternate exchange when nothing matched.
    /// An exchange with deduplication drops a duplicate here: it routes nowhere.
    pub fn route(&self, x: &Arc<Exchange>, msg: &Message, r: &mut Routed) {
        r.clear();
        if passes(x, &msg.properties, r) {
            self.route_admitted(x, msg.routing_keys(), &msg.properties, r);
        }
    }

    /// Route a message `x` already admitted and not to be held by it (a
    /// delayed message coming due was checked for duplicates when it was
    /// published).
    pub fn route_admitted<'k>(
        &self,
        x: &Arc<Exchange>,
        keys: impl Iterator<Item = &'k str> + Clone,
        props: &BasicProperties,
        r: &mut Routed,
    ) {
        r.clear();
        if x.name.as_str().is_empty() {
            for key in keys {
                if let Some(q) = self.queues.get(key)
                    && !r.queues.iter().any(|x| Arc::ptr_eq(x, &q))
                {
                    r.queues.push(q.clone());
                } else if let Some(q) = self.reply_queue_elsewhere(key) {
                    r.queues.push(q);
                }
            }
            return;
        }
        let mut seen: Vec<Arc<Exchange>> = Vec::new();
        let mut from = x.clone();
        loop {
            self.route_through(&from, keys.clone(), props, r, &mut seen);
            if !r.is_empty() {
                return;
            }
            // Nothing matched: RabbitMQ hands the message to the alternate exchange.
            match self
                .alternate_of(&from)
                .and_then(|name| self.exchanges.get(name.as_str()).map(|e| e.clone()))
            {
                Some(ae) if !seen.iter().any(|s| Arc::ptr_eq(s, &ae)) => {
                    if !passes(&ae, props, r) {
                        return;
                    }
                    from = ae;
                }
                _ => return,
            }
        }
    }

    /// An exchange's alternate exchange: its own argument, else a policy's.
    fn alternate_of(&self, x: &Exchange) -> Option<String> {
        if let Some(own) = x.alternate() {
            return Some(own.to_string());
        }
        let ps = self.policies.read().unwrap_or_else(|e| e.into_inner());
        policy::alternate_exchange(&ps, x.name.as_str())
    }

    fn route_through<'k>(
        &self,
        x: &Arc<Exchange>,
        keys: impl Iterator<Item = &'k str> + Clone,
        props: &BasicProperties,
        r: &mut Routed,
        seen: &mut Vec<Arc<Exchange>>,
    ) {
        for key in keys.clone() {
            x.route(key, props, r);
        }
        if r.exchanges.is_empty() {
            return;
        }
        // Exchange-to-exchange bindings: follow each exchange once (cycles are allowed).
        seen.push(x.clone());
        while let Some(next) = r.exchanges.pop() {
            if seen.iter().any(|s| Arc::ptr_eq(s, &next)) {
                continue;
            }
            seen.push(next.clone());
            if passes(&next, props, r) {
                for key in keys.clone() {
                    next.route(key, props, r);
                }
            }
        }
    }
}

/// At the door of exchange `x`: false if the message goes no further
/// through it, being a duplicate (x-message-deduplication) or held until
/// its x-delay is over (left in `r.delayed`).
fn passes(x: &Arc<Exchange>, props: &BasicProperties, r: &mut Routed) -> bool {
    if !x.admit(props) {
        return false;
    }
    if x.holds_until(props).is_some() {
        r.delayed.push(x.clone());
        return false;
    }
    true
}
