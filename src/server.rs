//! The accept loop, and a handle to start and stop a broker in-process.

use crate::broker::Broker;
use crate::config::Config;
use crate::connection;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A running broker: where it listens and how to stop it.
pub struct Running {
    pub addrs: Vec<SocketAddr>,
    /// Where the management HTTP API listens (empty when it is off).
    pub management_addrs: Vec<SocketAddr>,
    pub broker: Arc<Broker>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// The first bound address (the usual single listener).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// `amqp://guest:guest@ADDR/` for the first listener (loopback for a
    /// wildcard one).
    pub fn url(&self) -> String {
        let mut a = self.addr();
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("amqp://guest:guest@{a}/%2f")
    }

    /// Close every connection with 320 CONNECTION_FORCED and stop listening.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
        self.broker.stop_background().await;
    }

    /// Wait until a shutdown is requested through `shutdown()` elsewhere or
    /// every listener fails.
    pub async fn wait(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Broker {
    /// Bind every configured listener and start accepting connections.
    pub async fn start(config: Config) -> std::io::Result<Running> {
        let started = std::time::Instant::now();
        let broker = Broker::new(config)?;
        tracing::info!("recovered durable state in {:?}", started.elapsed());
        broker.spawn_housekeeping();
        let (tx, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        for addr in &broker.config.listen {
            let listener = bind(*addr)?;
            let bound = listener.local_addr()?;
            tracing::info!("listening on {bound}");
            addrs.push(bound);
            tasks.spawn(accept_loop(listener, broker.clone(), rx.clone()));
        }
        let mut management_addrs = Vec::new();
        for addr in &broker.config.management_listen {
            let listener = bind(*addr)?;
            let bound = listener.local_addr()?;
            tracing::info!("management API (http) listening on {bound}");
            management_addrs.push(bound);
            tasks.spawn(crate::management::serve(
                listener,
                broker.clone(),
                rx.clone(),
            ));
        }
        Ok(Running {
            addrs,
            management_addrs,
            broker,
            shutdown: tx,
            tasks,
        })
    }
}

/// A listening socket. `[::]` accepts IPv4 as well (dual-stack, as
/// RabbitMQ listens); where the host has no IPv6 it falls back to 0.0.0.0.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let open = |addr: SocketAddr| -> std::io::Result<TcpListener> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        if addr.is_ipv6() && addr.ip().is_unspecified() {
            sock.set_only_v6(false)?;
        }
        sock.set_nonblocking(true)?;
        sock.bind(&addr.into())?;
        sock.listen(1024)?;
        TcpListener::from_std(sock.into())
    };
    match open(addr) {
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => {
            tracing::warn!("cannot listen on {addr} ({e}); IPv4 only");
            open(SocketAddr::from(([0, 0, 0, 0], addr.port())))
        }
        r => r,
    }
}

async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    let local = sock.local_addr().unwrap_or(peer);
                    conns.spawn(connection::serve(sock, peer, local, broker.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}
