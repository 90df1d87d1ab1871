//! Closing, both ways, as RabbitMQ does it: a channel closed for an error
//! ignores frames until its Close-Ok; a connection we close waits for the
//! client's Close-Ok; one the client closes answers Close-Ok and keeps
//! reading until the client hangs up. Whatever closes gives back what it
//! held: unacked messages requeued, exclusive queues deleted.

use super::*;
use crate::broker::connections::ConnState;
use inbox::give_back;

/// How long we wait for Close-Ok after sending Connection.Close.
const CLOSE_OK_WAIT: Duration = Duration::from_secs(3);
/// After Close-Ok, how long at most we wait for the client to close its
/// socket (RabbitMQ's ?CLOSING_TIMEOUT; the heartbeat timeout if shorter).
const CLOSED_WAIT: Duration = Duration::from_secs(30);

#[derive(PartialEq, Eq)]
pub(super) enum State {
    Open,
    /// We sent Connection.Close and wait for Close-Ok until then.
    Closing(Instant),
    /// We sent Close-Ok: frames are read and dropped until the client
    /// closes its socket or the deadline passes. Closing at once would
    /// reset the connection under frames the client had still buffered,
    /// and it would never see its Close-Ok.
    Closed(Instant),
    Done,
}

impl State {
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            State::Closing(d) | State::Closed(d) => Some(*d),
            _ => None,
        }
    }
}

impl Connection {
    /// Send Connection.Close for a connection-scoped error.
    pub(super) fn fail(&mut self, e: AmqpError) {
        if self.state != State::Open {
            return;
        }
        tracing::info!(conn = self.id, "closing connection: {e}");
        // Read again, for the client's Close-Ok.
        self.blocked = false;
        self.release_channels();
        self.out.method(0, handshake::close_method(&e));
        self.state = State::Closing(Instant::now() + CLOSE_OK_WAIT);
        self.info.stats.set_state(ConnState::Closing);
    }

    /// Connection.Close from the client: Close-Ok, then wait for it to hang up.
    pub(super) fn connection_close(&mut self) {
        self.release_channels();
        self.out.method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
        );
        let wait = match self.info.heartbeat {
            0 => CLOSED_WAIT,
            hb => CLOSED_WAIT.min(Duration::from_secs(hb as u64)),
        };
        self.blocked = false;
        self.state = State::Closed(Instant::now() + wait);
        self.info.stats.set_state(ConnState::Closing);
    }

    /// Close a channel for a channel-scoped error: give back what it holds,
    /// send Channel.Close, and ignore its frames until Close-Ok.
    pub(super) fn close_channel(&mut self, id: u16, e: AmqpError) {
        tracing::debug!(conn = self.id, channel = id, "channel error: {e}");
        if let Some(mut ch) = self.channels.remove(&id) {
            self.channel_gone(id);
            let mut ctx = ctx!(self);
            ch.flush_confirms(&mut ctx);
            ch.release(&mut ctx);
        }
        self.out.method(
            id,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: e.code as u16,
                reply_text: e.reply_text().into(),
                class_id: e.class_id,
                method_id: e.method_id,
            })),
        );
        if !self.closing.contains(&id) {
            self.closing.push(id);
        }
    }

    /// Consumer acknowledgement timeout: close (406) every channel holding a
    /// delivery unacknowledged past its time; its messages are requeued.
    pub(super) fn close_timed_out_channels(&mut self) {
        let now = crate::clock::system_now_ms();
        let late: Vec<(u16, AmqpError)> = self
            .channels
            .iter()
            .filter_map(|(id, ch)| ch.ack_timed_out(now).map(|e| (id, e)))
            .collect();
        for (id, e) in late {
            tracing::warn!(conn = self.id, channel = id, "{}", e.text);
            self.close_channel(id, e);
        }
    }

    pub(super) fn release_channels(&mut self) {
        let mut ctx = ctx!(self);
        for mut ch in self.channels.drain() {
            ch.release(&mut ctx);
        }
    }

    /// The connection is gone: give back everything it held and delete its
    /// exclusive queues. No message in flight to it is lost.
    pub(super) fn cleanup(&mut self, inbox: &mut InboxRx) {
        self.release_channels();
        for ev in inbox.close() {
            if let InboxEvent::Deliver(d) = ev {
                give_back(d);
            }
        }
        for q in self.exclusive_queues.drain(..) {
            self.vhost.queue_lost(&q);
        }
    }
}
