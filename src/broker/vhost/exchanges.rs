//! Exchange.Declare and Delete with RabbitMQ's rules: reserved names,
//! equivalence, the default exchange, auto-delete cascades.

use super::*;

impl Vhost {
    /// The kind a declare names, and whether it is a delayed-message exchange.
    fn declared_kind(s: &ExchangeSpec) -> AmqpResult<(ExchangeKind, bool)> {
        let delayed = s.kind == DELAYED_TYPE;
        let kind = if delayed {
            delayed_type(s.arguments)?
        } else {
            ExchangeKind::parse(s.kind).ok_or_else(|| {
                // RabbitMQ's words: "" names an Erlang atom that is no type.
                let what = if s.kind.is_empty() {
                    "invalid"
                } else {
                    "unknown"
                };
                AmqpError::command_invalid(format!("{what} exchange type '{}'", s.kind))
            })?
        };
        if s.name.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        Ok((kind, delayed))
    }

    /// What Exchange.Declare requires of an existing exchange: the same
    /// type, flags and arguments.
    fn check_equivalent_exchange(
        x: &Exchange,
        s: &ExchangeSpec,
        kind: ExchangeKind,
        delayed: bool,
        v: &str,
    ) -> AmqpResult<()> {
        let n = s.name;
        if x.kind != kind || x.delayed.is_some() != delayed {
            return Err(AmqpError::precondition_failed(format!(
                "inequivalent arg 'type' for exchange '{n}' in vhost '{v}': received '{}' but current is '{}'",
                s.kind,
                x.type_name()
            )));
        }
        equivalence::flag("durable", n, "exchange", v, s.durable, x.durable)?;
        equivalence::flag(
            "auto_delete",
            n,
            "exchange",
            v,
            s.auto_delete,
            x.auto_delete,
        )?;
        equivalence::flag("internal", n, "exchange", v, s.internal, x.internal)?;
        equivalence::exchange_args(n, v, s.arguments, &x.arguments)
    }

    /// What a declare of a new exchange requires: no reserved name, and the
    /// arguments its type needs.
    fn check_new_exchange(s: &ExchangeSpec, kind: ExchangeKind) -> AmqpResult<()> {
        if s.name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "exchange name '{}' contains reserved prefix 'amq.*'",
                s.name
            )));
        }
        if kind == ExchangeKind::ConsistentHash {
            consistent_hash::check_arguments(s.arguments)
                .map_err(AmqpError::precondition_failed)?;
        }
        check_dedup_arguments(kind, s.arguments)
    }

    /// Everything a (non-passive) declare of `s` would refuse, checked
    /// without declaring: what an import checks before it applies.
    pub(crate) fn check_exchange_declare(&self, s: &ExchangeSpec) -> AmqpResult<()> {
        names::check_length("exchange", s.name)?;
        names::check_length("type", s.kind)?;
        let (kind, delayed) = Self::declared_kind(s)?;
        match self.exchanges.get(s.name).map(|x| x.clone()) {
            Some(x) => Self::check_equivalent_exchange(&x, s, kind, delayed, &self.name),
            None => Self::check_new_exchange(s, kind),
        }
    }

    pub fn declare_exchange(&self, s: &ExchangeSpec) -> AmqpResult<()> {
        names::check_length("exchange", s.name)?;
        names::check_length("type", s.kind)?;
        if s.passive {
            // RabbitMQ refuses even a passive declare of the default exchange.
            if s.name.is_empty() {
                return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
            }
            return self.exchange(s.name).map(|_| ());
        }
        let (kind, delayed) = Self::declared_kind(s)?;
        match self.exchanges.entry(s.name.into()) {
            Entry::Occupied(e) => {
                Self::check_equivalent_exchange(e.get(), s, kind, delayed, &self.name)
            }
            Entry::Vacant(e) => {
                self.check_alive()?;
                Self::check_new_exchange(s, kind)?;
                let queue = if delayed {
                    Some(self.delay_queue(s.name, s.durable, Vec::new(), None)?)
                } else {
                    None
                };
                let x = Exchange::with_delay_queue(
                    s.name.into(),
                    kind,
                    s.durable,
                    s.auto_delete,
                    s.internal,
                    s.arguments.clone(),
                    queue,
                );
                e.insert(x);
                self.persist_if(s.durable)
            }
        }
    }

    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> AmqpResult<()> {
        if name.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system exchange '{name}' in vhost '{}' not allowed",
                self.name
            )));
        }
        // Deleting an exchange that does not exist succeeds, as in RabbitMQ.
        let Some(x) = self.exchanges.get(name).map(|x| x.clone()) else {
            return Ok(());
        };
        if if_unused && self.in_use(&x) {
            return Err(AmqpError::precondition_failed(format!(
                "exchange '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        self.exchanges.remove(name);
        let durable = self.exchange_gone(x);
        self.persist_if(durable)
    }

    /// Whether `x` has bindings for Exchange.Delete's if-unused. A
    /// cluster's exchanges count only their exchange bindings, which every
    /// node holds alike, so that every node decides the same; the node a
    /// client asks checks its own queue bindings before (`channel::exchange`).
    pub(crate) fn in_use(&self, x: &Exchange) -> bool {
        match self.exchanges_shared() {
            false => x.has_bindings(),
            true => x
                .bindings()
                .iter()
                .any(|b| matches!(b.dest, Destination::Exchange(_))),
        }
    }

    /// An auto-delete exchange that has lost its last binding goes, unless
    /// a binding came back meanwhile. True if something durable went. A
    /// cluster's exchanges stay: whether one has lost its last binding
    /// depends on every node's queue bindings, which no one node knows.
    pub(super) fn drop_if_emptied(&self, x: &Arc<Exchange>) -> bool {
        !self.exchanges_shared()
            && x.auto_delete
            && !x.has_bindings()
            && self
                .exchanges
                .remove_if(&x.name, |_, x| !x.has_bindings())
                .is_some()
            && self.exchange_gone(x.clone())
    }

    /// `x` was taken out of the registry: mark it (channels that cached it
    /// look again), drop its delayed messages and the bindings to it. True
    /// if something durable went.
    fn exchange_gone(&self, x: Arc<Exchange>) -> bool {
        x.mark_deleted();
        if let Some(q) = &x.delayed {
            q.delete();
        }
        let durable = x.durable;
        self.drop_bindings_to(&Destination::Exchange(x)) || durable
    }

    /// Remove every binding leading to `dest` (being deleted), and any
    /// auto-delete exchange that loses its last binding that way.
    /// True if a durable exchange went that way (the saved definitions
    /// then need writing).
    pub(super) fn drop_bindings_to(&self, dest: &Destination) -> bool {
        let mut durable = false;
        let mut emptied = vec![];
        for x in self.exchanges.iter() {
            let removed = match dest {
                Destination::Queue(q) => x.unbind_queue(q),
                Destination::Exchange(e) => x.unbind_exchange(e),
            };
            if removed && x.auto_delete && !x.has_bindings() {
                emptied.push(x.clone());
            }
        }
        for x in emptied {
            durable |= self.drop_if_emptied(&x);
        }
        durable
    }
}

/// x-message-deduplication arguments: LavinMQ's checks for any exchange,
/// and the plugin's for its exchange type (which needs a cache size).
fn check_dedup_arguments(kind: ExchangeKind, args: &FieldTable) -> AmqpResult<()> {
    let plugin = kind == ExchangeKind::MessageDeduplication;
    let parsed = crate::dedup::DedupArgs::parse(args, plugin);
    if plugin {
        let bad_ttl = match &parsed {
            Ok(Some(a)) => a.cache_ttl == Some(0),
            Ok(None) => false,
            Err(e) => e.starts_with("x-cache-ttl"),
        };
        let size_ok = matches!(&parsed, Ok(Some(a)) if a.cache_size.is_some_and(|n| n > 0));
        if !size_ok && !bad_ttl {
            return Err(AmqpError::precondition_failed(
                "Missing or invalid argument, 'x-cache-size' must be an integer greater than 0",
            ));
        }
        if bad_ttl {
            return Err(AmqpError::precondition_failed(
                "Invalid argument, 'x-cache-ttl' must be an integer greater than 0",
            ));
        }
    }
    parsed.map(|_| ()).map_err(AmqpError::precondition_failed)
}
