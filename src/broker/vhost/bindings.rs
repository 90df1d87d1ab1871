//! Queue and exchange bindings: bind, and unbind (which succeeds when
//! what it names is already gone, as in RabbitMQ).

use super::*;

impl Vhost {
    /// The queue and exchange of a queue binding; the default exchange
    /// takes no explicit bindings.
    fn binding_ends(
        &self,
        queue: &str,
        exchange: &str,
        conn_id: u64,
    ) -> AmqpResult<(Arc<Queue>, Arc<Exchange>)> {
        if exchange.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        Ok((self.queue_for(queue, conn_id)?, self.exchange(exchange)?))
    }

    /// What Queue.Bind would refuse, checked without binding: its queue,
    /// exchange and parsed x-match if nothing.
    pub(crate) fn check_bind(
        &self,
        queue: &str,
        exchange: &str,
        key: &str,
        args: &FieldTable,
        conn_id: u64,
    ) -> AmqpResult<(Arc<Queue>, Arc<Exchange>, headers::XMatch)> {
        names::check_length("routing_key", key)?;
        let (q, x) = self.binding_ends(queue, exchange, conn_id)?;
        let x_match = binding_checks(&x, key, args)?;
        Ok((q, x, x_match))
    }

    pub fn bind(
        &self,
        queue: &str,
        exchange: &str,
        key: &str,
        args: &FieldTable,
        conn_id: u64,
    ) -> AmqpResult<()> {
        let (q, x, x_match) = self.check_bind(queue, exchange, key, args, conn_id)?;
        let durable = x.durable && q.durable && q.exclusive_owner.is_none();
        x.bind(Binding {
            dest: Destination::Queue(q),
            key: key.into(),
            args: args.clone(),
            x_match,
        });
        self.persist_change(durable, || {
            Change::Bind(BindingDef {
                source: exchange.to_string(),
                destination: queue.to_string(),
                destination_type: "queue".to_string(),
                routing_key: key.to_string(),
                arguments: args.clone(),
            })
        })
    }

    pub fn unbind(
        &self,
        queue: &str,
        exchange: &str,
        key: &str,
        args: &FieldTable,
        conn_id: u64,
    ) -> AmqpResult<()> {
        if exchange.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        // Unbinding what is already gone succeeds, as in RabbitMQ: cleanup
        // code unbinds after auto-delete has removed things.
        let (Some(q), Some(x)) = (
            self.queues.get(queue).map(|q| q.clone()),
            self.exchanges.get(exchange).map(|x| x.clone()),
        ) else {
            return Ok(());
        };
        self.check_exclusive(&q, conn_id)?;
        let durable = x.durable && q.durable;
        self.unbind_dest(&x, &Destination::Queue(q), key, args, durable)
    }

    /// Remove one binding if it is there, with any auto-delete exchange it
    /// leaves empty, and save the definitions if something durable went.
    fn unbind_dest(
        &self,
        x: &Arc<Exchange>,
        dest: &Destination,
        key: &str,
        args: &FieldTable,
        durable: bool,
    ) -> AmqpResult<()> {
        if !x.unbind(dest, key, args) {
            return Ok(());
        }
        let cascaded = self.drop_if_emptied(x);
        self.persist_if(durable || cascaded)
    }

    /// Exchange.Bind: messages routed by `source` also go through `destination`.
    pub fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        key: &str,
        args: &FieldTable,
    ) -> AmqpResult<()> {
        names::check_length("routing_key", key)?;
        let (dst, src) = self.exchange_pair(destination, source)?;
        let x_match = binding_checks(&src, key, args)?;
        let durable = src.durable && dst.durable;
        src.bind(Binding {
            dest: Destination::Exchange(dst),
            key: key.into(),
            args: args.clone(),
            x_match,
        });
        self.persist_if(durable)
    }

    pub fn unbind_exchange(
        &self,
        destination: &str,
        source: &str,
        key: &str,
        args: &FieldTable,
    ) -> AmqpResult<()> {
        if destination.is_empty() || source.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        let (Some(dst), Some(src)) = (
            self.exchanges.get(destination).map(|x| x.clone()),
            self.exchanges.get(source).map(|x| x.clone()),
        ) else {
            return Ok(());
        };
        let durable = src.durable && dst.durable;
        self.unbind_dest(&src, &Destination::Exchange(dst), key, args, durable)
    }

    fn exchange_pair(
        &self,
        destination: &str,
        source: &str,
    ) -> AmqpResult<(Arc<Exchange>, Arc<Exchange>)> {
        if destination.is_empty() || source.is_empty() {
            return Err(AmqpError::access_refused(DEFAULT_EXCHANGE_DENIED));
        }
        Ok((self.exchange(destination)?, self.exchange(source)?))
    }
}

/// What a binding must satisfy for its exchange's type: headers bindings a
/// valid x-match (parsed once here), consistent-hash bindings an integer weight.
fn binding_checks(x: &Exchange, key: &str, args: &FieldTable) -> AmqpResult<headers::XMatch> {
    match x.kind {
        ExchangeKind::Headers => headers::x_match(args).map_err(AmqpError::precondition_failed),
        ExchangeKind::ConsistentHash => consistent_hash::weight(key)
            .map(|_| headers::XMatch::All)
            .map_err(AmqpError::precondition_failed),
        _ => Ok(headers::XMatch::All),
    }
}
