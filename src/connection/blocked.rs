//! Publisher flow control (RabbitMQ's memory and disk alarms): a connection
//! that publishes while an alarm is on is no longer read from, and a client
//! that understands it is told with Connection.Blocked / Unblocked.

use super::*;
use crate::broker::connections::ConnState;

impl Connection {
    /// An alarm is on and this connection publishes: stop reading
    /// from it, and tell a client that understands it why.
    pub(super) fn block(&mut self) {
        if self.blocked {
            return;
        }
        self.blocked = true;
        self.info.stats.set_state(ConnState::Blocked);
        tracing::debug!(conn = self.id, "blocked by a resource alarm");
        if self.blocked_notify {
            self.out.method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Blocked(connection::Blocked {
                    reason: self.broker.alarms.reason().into(),
                })),
            );
        }
    }

    pub(super) fn unblock(&mut self) {
        self.blocked = false;
        self.info.stats.set_state(ConnState::Running);
        tracing::debug!(conn = self.id, "unblocked");
        if self.blocked_notify {
            self.out.method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Unblocked(connection::Unblocked {})),
            );
        }
    }
}
