//! Taking a message in: deduplication, the overflow rule, persistence and
//! paging, TTL, then dispatch to consumers, all under the queue's lock.

use super::*;

impl Queue {
    /// Enqueue a routed message (persisting it first if it is persistent
    /// and the queue durable) and hand what can go to consumers. Messages the
    /// queue lets go of meanwhile (max-length) are added to `dead`.
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>, dead: &mut Vec<DeadLetter>) -> Published {
        self.publish_until(msg, None, dead)
    }

    /// Hold a message for a delayed-message exchange until `due` (ms).
    pub fn delay(self: &Arc<Self>, msg: Arc<Message>, due: u64) -> Published {
        self.publish_until(msg, Some(due.max(1)), &mut Vec::new())
    }

    /// Enqueue until `due` (a delayed message), or by the TTLs that apply.
    fn publish_until(
        self: &Arc<Self>,
        msg: Arc<Message>,
        due: Option<u64>,
        dead: &mut Vec<DeadLetter>,
    ) -> Published {
        let mut st = self.lock();
        let expires = due.unwrap_or_else(|| deadline(&st.args, &msg));
        if st.deleted {
            return Published::Dropped;
        }
        let args = st.args.clone();
        let dedup_key = match (&args.dedup, &st.dedup) {
            (Some(a), Some(d)) => match a.key_of(&msg.properties) {
                Some(k) if d.is_duplicate(&k, now_ms()) => return Published::Duplicate,
                k => k,
            },
            _ => None,
        };
        if args.overflow != Overflow::DropHead && st.is_full(msg.body_size()) {
            if args.overflow == Overflow::RejectPublishDlx {
                dead.push(DeadLetter {
                    msg,
                    reason: DeathReason::Maxlen,
                });
            }
            return Published::Rejected;
        }
        let seq = st.next_seq;
        let mut persisted = None;
        // A delayed-message exchange keeps every message it holds.
        if (msg.is_persistent() || args.delay_for.is_some())
            && let Some(log) = st.log.as_mut()
        {
            match log.append(seq, expires, &msg) {
                Ok(p) => persisted = Some(p),
                Err(e) => {
                    tracing::error!("queue '{}': cannot persist a message: {e}", self.name);
                    return Published::Failed;
                }
            }
        }
        st.next_seq += 1;
        if let (Some(k), Some(d)) = (dedup_key, st.dedup.as_mut()) {
            d.record(k, seq, &msg.properties, now_ms());
        }
        match persisted {
            // A long backlog keeps its bodies on disk only; so does a
            // delayed-message exchange, whose messages wait long anyway.
            Some((_, loc))
                if args.delay_for.is_some()
                    || st.ready.bytes() + st.ready.len() * MESSAGE_OVERHEAD >= PAGE_AFTER_BYTES =>
            {
                let level = st.ready.level_of(*msg.properties.priority());
                st.ready.push_paged(
                    Paged {
                        seq,
                        loc,
                        redelivered: false,
                        expires,
                        returns: 0,
                    },
                    level,
                )
            }
            _ => st.ready.push(Entry {
                seq,
                msg,
                redelivered: false,
                expires,
                returns: 0,
            }),
        }
        if expires != 0 {
            st.expiry.insert((expires, seq));
        }
        st.dispatch(self);
        if args.overflow == Overflow::DropHead {
            st.drop_head(dead);
        }
        if expires != 0 {
            // TTL 0 (or already past): expired now unless a consumer took it.
            if expires <= now_ms() {
                st.expire_due(now_ms(), dead);
            }
            self.schedule(&mut st);
        }
        Published::Accepted {
            ticket: persisted.map_or(0, |(t, _)| t),
        }
    }
}
