//! One client connection: the handshake, then a task that reads frames,
//! hands them to channels, takes deliveries from queues, and passes
//! everything outgoing to the writer task in batches.

mod channels;
pub(crate) mod handshake;
mod read_size;
mod writer;

use crate::broker::connections::ConnectionInfo;
use crate::broker::totals::Totals;
use crate::broker::{Broker, Vhost};
use crate::channel::{After, Ctx};
use crate::codec::{self, Frame, Outbox};
use crate::error::{AmqpError, AmqpResult, Scope};
use crate::queue::Queue;
use crate::queue::consumer::DELIVERY_OVERHEAD;
use crate::queue::inbox::{InboxEvent, InboxRx, Sink};
use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use bytes::BytesMut;
use channels::ChannelTable;
use read_size::{MIN_READ, next_read_size};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadHalf};
use tokio::sync::{mpsc, watch};

/// A channel's view of its connection, built from disjoint fields so the
/// channel table can be borrowed at the same time.
macro_rules! ctx {
    ($c:expr) => {
        Ctx {
            out: &mut $c.out,
            vhost: &$c.vhost,
            conn_id: $c.id,
            sink: &$c.sink,
            frame_max: $c.frame_max,
            max_message_size: $c.broker.config.max_message_size,
            cancel_notify: $c.cancel_notify,
            durable: $c.broker.store.sync.synced(),
            consumer_timeout: $c.broker.config.consumer_timeout,
            exclusive_queues: &mut $c.exclusive_queues,
            grant: &$c.grant,
            broker: &$c.broker,
            pending: &mut $c.pending,
        }
    };
}

// After the macro, which they use.
mod blocked;
mod channel_frame;
mod close;
mod inbox;
mod pending;
use channel_frame::ChannelFrame;

use close::State;

/// What a connection runs over: a TCP socket, or TLS around one.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// What TLS established about a connection.
pub(crate) struct Secured {
    /// The subject CN of the client's verified certificate, if it sent one.
    pub cert_cn: Option<String>,
}

/// Serve one client over `sock`, from the protocol header to the close.
/// `peer` and `local` are the socket's addresses (the transport may hide
/// them); `secured` is set for a TLS connection.
pub(crate) async fn serve(
    mut sock: impl Transport,
    peer: SocketAddr,
    local: SocketAddr,
    secured: Option<Secured>,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let negotiated = tokio::select! {
        r = tokio::time::timeout(
            broker.config.handshake_timeout(),
            handshake::negotiate(&mut sock, peer, local.port(), secured.as_ref(), &broker),
        ) => r,
        _ = shutdown.changed() => return,
    };
    let n = match negotiated {
        Err(_) => {
            tracing::info!(%peer, "handshake timed out");
            return;
        }
        Ok(Err(handshake::Refused::Silently(why))) => {
            tracing::info!(%peer, "connection refused: {why}");
            return;
        }
        Ok(Err(handshake::Refused::WithClose(e))) => {
            tracing::info!(%peer, "connection refused: {e}");
            let mut out = Outbox::default();
            out.method(0, handshake::close_method(&e));
            for chunk in out.take() {
                let _ = tokio::io::AsyncWriteExt::write_all(&mut sock, &chunk).await;
            }
            // Give the client a moment to read the Close before the socket goes.
            let mut scratch = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_secs(1), sock.read(&mut scratch)).await;
            return;
        }
        Ok(Ok(n)) => n,
    };
    tracing::debug!(%peer, user = %n.user, vhost = %n.vhost.name, "connection open");
    let (rd, wr) = tokio::io::split(sock);
    let (sink, inbox) = Sink::new();
    let id = broker.next_conn_id();
    let info = Arc::new(ConnectionInfo {
        id,
        name: ConnectionInfo::name_of(peer, local),
        peer,
        local,
        user: n.user.clone(),
        vhost: n.vhost.name.clone(),
        auth_mechanism: n.mechanism.clone(),
        tls: secured.is_some(),
        client_properties: n.client_properties.clone(),
        channel_max: n.channel_max,
        frame_max: n.frame_max,
        heartbeat: n.heartbeat,
        connected_at: crate::clock::system_now_ms(),
        inbox: sink.clone(),
        stats: Default::default(),
        channels: Default::default(),
    });
    broker.connections.add(info.clone());
    Totals::bump(&broker.totals.connections_opened);
    let (wtx, wrx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(writer::run(wr, wrx, sink.clone(), info.clone()));
    let grant = crate::access::check::Grant {
        access: broker.access.clone(),
        user: n.user.clone(),
        vhost: n.vhost.name.clone(),
        client_id: handshake::client_id(&n.client_properties),
    };
    let mut conn = Connection {
        id,
        grant,
        info,
        broker: broker.clone(),
        vhost: n.vhost.clone(),
        channel_max: n.channel_max,
        frame_max: n.frame_max,
        cancel_notify: n.consumer_cancel_notify,
        blocked_notify: n.connection_blocked,
        blocked: false,
        channels: ChannelTable::default(),
        closing: Vec::new(),
        out: Outbox::default(),
        delivered_bytes: 0,
        sink,
        wtx,
        exclusive_queues: Vec::new(),
        state: State::Open,
        synced_wait: 0,
        pending: None,
    };
    let admission = n.admission;
    let info_for_totals = conn.info.clone();
    conn.run(rd, n.leftover, n.heartbeat, inbox, shutdown).await;
    drop(conn);
    drop(admission);
    broker.connections.remove(id);
    broker.totals.connection_closed(&info_for_totals);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    tracing::debug!(%peer, "connection closed");
}

struct Connection {
    id: u64,
    /// Its user in its vhost, through which every operation is checked.
    grant: crate::access::check::Grant,
    /// Who and where it is, as the broker's registry shows it.
    info: Arc<ConnectionInfo>,
    broker: Arc<Broker>,
    vhost: Arc<Vhost>,
    channel_max: u16,
    frame_max: u32,
    cancel_notify: bool,
    channels: ChannelTable,
    /// Channels we closed with an error, waiting for the client's Close-Ok;
    /// frames on them are dropped until then. Few, and usually none.
    closing: Vec<u16>,
    out: Outbox,
    delivered_bytes: usize,
    sink: Sink,
    wtx: mpsc::UnboundedSender<writer::Batch>,
    exclusive_queues: Vec<Arc<Queue>>,
    state: State,
    /// The store ticket this connection asked to be told about
    /// (`InboxEvent::Synced`), for confirms that wait for the disk.
    synced_wait: u64,
    /// A method waits on the cluster: nothing more is read or processed
    /// until it is finished (`pending.rs`).
    pending: Option<crate::channel::pending::Pending>,
    /// The client understands Connection.Blocked.
    blocked_notify: bool,
    /// Publisher flow control: it published while the memory alarm was
    /// on, so no more frames are read or processed until the alarm clears.
    blocked: bool,
}

impl Connection {
    async fn run(
        &mut self,
        mut rd: ReadHalf<impl Transport>,
        mut rbuf: BytesMut,
        heartbeat: u16,
        mut inbox: InboxRx,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let hb = (heartbeat > 0).then(|| Duration::from_secs(heartbeat as u64));
        // The first heartbeat goes out one period after Open-Ok, as
        // RabbitMQ's: a client that closes at once sees no frame before
        // its Close-Ok.
        let period = hb.map(|d| d / 2).unwrap_or(Duration::from_secs(3600));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_read = Instant::now();
        // Both grow with traffic only: an idle connection stays small.
        let mut events = Vec::new();
        let mut read_size = MIN_READ;
        let mut shutdown_seen = false;
        let mut alarm = self.broker.alarms.subscribe();
        // A pipelining client may have sent frames along with its handshake.
        self.process_input(&mut rbuf);
        self.flush();
        let mut waiting = None;
        while self.state != State::Done {
            if waiting.is_none() {
                waiting = self.take_wait();
            }
            let ack_deadline = self
                .channels
                .values()
                .filter_map(|c| c.ack_deadline())
                .min();
            let close_deadline = self.state.deadline();
            if rbuf.capacity() - rbuf.len() < read_size / 4 {
                rbuf.reserve(read_size);
            }
            tokio::select! {
                r = rd.read_buf(&mut rbuf), if !self.blocked && (self.pending.is_none() || self.state != State::Open) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        self.info.stats.recv_oct.bump(n as u64);
                        self.info.stats.recv_cnt.bump(1);
                        last_read = Instant::now();
                        self.process_input(&mut rbuf);
                        read_size = next_read_size(read_size, n, &mut rbuf);
                    }
                },
                out = pending::outcome(&mut waiting), if waiting.is_some() => {
                    waiting = None;
                    self.resume(out);
                    self.process_input(&mut rbuf);
                }
                // Not while a method waits: what its change does here (a
                // deleted queue's Basic.Cancel) follows its -Ok, as on a
                // node alone and in RabbitMQ.
                () = inbox.recv_many(&mut events), if self.pending.is_none() => {
                    for ev in events.drain(..) {
                        self.queue_event(ev);
                    }
                }
                _ = alarm.changed(), if self.blocked => {
                    if !self.broker.alarms.is_on() {
                        self.unblock();
                        last_read = Instant::now();
                        self.process_input(&mut rbuf);
                    }
                }
                _ = sleep_until_ms(ack_deadline.unwrap_or(0)), if ack_deadline.is_some() => {
                    self.close_timed_out_channels();
                }
                _ = tokio::time::sleep_until(close_deadline.unwrap_or_else(Instant::now).into()), if close_deadline.is_some() => {
                    break;
                }
                _ = ticker.tick() => {
                    if let Some(hb) = hb && self.state == State::Open {
                        // A blocked connection is not read from: its silence is ours.
                        if self.blocked || self.pending.is_some() {
                            last_read = Instant::now();
                        }
                        if last_read.elapsed() > hb * 2 {
                            tracing::info!(conn = self.id, "missed heartbeats from client, timeout: {}s", hb.as_secs());
                            break;
                        }
                        self.out.heartbeat();
                    }
                }
                r = shutdown.changed(), if !shutdown_seen => {
                    shutdown_seen = true;
                    if r.is_ok() || *shutdown.borrow() {
                        if matches!(self.state, State::Closed(_)) {
                            break;
                        }
                        self.fail(AmqpError::connection_forced(
                            "broker forced connection closure with reason 'shutdown'",
                        ));
                    }
                }
            }
            self.flush();
        }
        self.flush();
        self.cleanup(&mut inbox);
    }

    fn process_input(&mut self, rbuf: &mut BytesMut) {
        if matches!(self.state, State::Closed(_)) {
            rbuf.clear();
            return;
        }
        while !matches!(self.state, State::Done | State::Closed(_))
            && !self.blocked
            && (self.pending.is_none() || self.state != State::Open)
        {
            match codec::decode(rbuf, self.frame_max) {
                Ok(Some(frame)) => self.frame(frame),
                Ok(None) => break,
                Err(e) => {
                    self.fail(e);
                    rbuf.clear();
                    break;
                }
            }
        }
        self.flush_exchange_counts();
        self.flush_all_confirms();
    }

    /// Add what each channel published in this read batch to its
    /// exchange's counters.
    fn flush_exchange_counts(&mut self) {
        for ch in self.channels.values_mut() {
            ch.flush_exchange_counts();
        }
    }

    /// Send the confirms that are due, and ask the store to say when the
    /// rest are.
    fn flush_all_confirms(&mut self) {
        let mut waits_for = 0;
        for ch in self.channels.values_mut() {
            let mut ctx = ctx!(self);
            ch.flush_confirms(&mut ctx);
            waits_for = waits_for.max(ch.awaited_ticket());
        }
        if waits_for > self.synced_wait {
            if self
                .broker
                .store
                .sync
                .notify_when_synced(waits_for, &self.sink)
            {
                self.synced_wait = waits_for;
            } else {
                // Synced meanwhile.
                self.flush_all_confirms();
            }
        }
    }

    fn frame(&mut self, frame: Frame) {
        if let State::Closing(_) = self.state {
            // After Connection.Close only Close and Close-Ok mean anything.
            match frame {
                Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {
                    self.state = State::Done;
                }
                Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
                    self.connection_close();
                }
                _ => {}
            }
            return;
        }
        let result = match frame {
            Frame::Heartbeat(0) => Ok(()),
            Frame::Heartbeat(_) => Err(AmqpError::unexpected_frame("type 8, all octets = <<>>")),
            Frame::Method(0, m) => self.connection_method(m),
            Frame::Method(ch, m) => {
                let publish = matches!(m, AMQPClass::Basic(basic::AMQPMethod::Publish(_)));
                let r = self.channel_frame(ch, ChannelFrame::Method(m));
                if publish && self.broker.alarms.is_on() {
                    self.block();
                }
                r
            }
            Frame::Header(ch, h) => self.channel_frame(ch, ChannelFrame::Header(h)),
            Frame::Body(ch, b) => self.channel_frame(ch, ChannelFrame::Body(b)),
        };
        if let Err(e) = result {
            self.fail(e);
        }
    }

    /// Channel 0 after the handshake: each method to the function named after it.
    fn connection_method(&mut self, m: AMQPClass) -> Result<(), AmqpError> {
        use connection::AMQPMethod as C;
        match m {
            AMQPClass::Connection(C::Close(_)) => {
                self.connection_close();
                Ok(())
            }
            AMQPClass::Connection(C::CloseOk(_)) => Ok(()),
            AMQPClass::Connection(C::UpdateSecret(_)) => {
                self.connection_update_secret();
                Ok(())
            }
            AMQPClass::Connection(C::Blocked(_) | C::Unblocked(_)) => Ok(()),
            other => Err(
                AmqpError::channel_error("unexpected method in connection state running")
                    .on_method(other.get_amqp_class_id(), other.get_amqp_method_id()),
            ),
        }
    }

    /// Connection.UpdateSecret: accepted (no credentials expire yet).
    fn connection_update_secret(&mut self) {
        self.out.method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(
                connection::UpdateSecretOk {},
            )),
        );
    }

    fn flush(&mut self) {
        let open = self.channels.len() as u32;
        self.info
            .stats
            .channels
            .store(open, std::sync::atomic::Ordering::Relaxed);
        if self.out.is_empty() {
            return;
        }
        let batch = writer::Batch {
            chunks: self.out.take(),
            delivered: std::mem::take(&mut self.delivered_bytes),
        };
        let _ = self.wtx.send(batch);
    }
}

/// Sleep until a wall-clock time in ms (deadlines are kept as such).
async fn sleep_until_ms(at: u64) {
    let wait = at.saturating_sub(crate::clock::system_now_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
}
