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
    /// Where amqps listens (empty without `[tls]`).
    pub tls_addrs: Vec<SocketAddr>,
    /// Where the management HTTP API listens (empty when it is off).
    pub management_addrs: Vec<SocketAddr>,
    /// Where Prometheus metrics are served (empty when off).
    pub prometheus_addrs: Vec<SocketAddr>,
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
        // Before any listener: a change asked for over HTTP must go
        // through the cluster from the first request on.
        if let Some(c) = broker.config.cluster.clone() {
            let cluster =
                crate::cluster::Cluster::start(&broker, &c, &mut tasks, rx.clone()).await?;
            let _ = broker.cluster.set(cluster.clone());
            cluster.open_groups();
        }
        let mut addrs = Vec::new();
        for addr in &broker.config.listen {
            let listener = bind(*addr)?;
            let bound = listener.local_addr()?;
            tracing::info!("listening on {bound}");
            addrs.push(bound);
            tasks.spawn(accept_loop(listener, None, broker.clone(), rx.clone()));
        }
        let mut tls_addrs = Vec::new();
        if let Some(tls) = &broker.config.tls {
            let acceptor = crate::tls::acceptor(tls)?;
            for addr in &tls.listen {
                let listener = bind(*addr)?;
                let bound = listener.local_addr()?;
                tracing::info!("listening on {bound} (amqps)");
                tls_addrs.push(bound);
                tasks.spawn(accept_loop(
                    listener,
                    Some(acceptor.clone()),
                    broker.clone(),
                    rx.clone(),
                ));
            }
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
        let mut prometheus_addrs = Vec::new();
        for addr in &broker.config.prometheus_listen {
            let listener = bind(*addr)?;
            let bound = listener.local_addr()?;
            tracing::info!("prometheus metrics (prometheus) listening on {bound}");
            prometheus_addrs.push(bound);
            tasks.spawn(crate::prometheus::serve(
                listener,
                broker.clone(),
                rx.clone(),
            ));
        }
        match bind_ctl_socket(&broker.config.data_dir) {
            Ok(l) => {
                tasks.spawn(crate::management::serve_ctl(l, broker.clone(), rx.clone()));
            }
            Err(e) => tracing::warn!("no ctl socket (ferretmq ctl will not reach this node): {e}"),
        }
        {
            let mut l = broker.listeners.lock().unwrap_or_else(|p| p.into_inner());
            l.extend(addrs.iter().map(|a| ("amqp", *a)));
            l.extend(tls_addrs.iter().map(|a| ("amqp/ssl", *a)));
            l.extend(management_addrs.iter().map(|a| ("http", *a)));
            l.extend(prometheus_addrs.iter().map(|a| ("http/prometheus", *a)));
        }
        Ok(Running {
            addrs,
            tls_addrs,
            management_addrs,
            prometheus_addrs,
            broker,
            shutdown: tx,
            tasks,
        })
    }
}

fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// One file descriptor held back, so that a listener out of descriptors can
/// still accept a client to close it at once.
struct Reserve {
    file: Option<std::fs::File>,
    /// Refusals since the last log line (logged once a second at most).
    refused: u64,
    logged: Option<std::time::Instant>,
}

impl Reserve {
    fn new() -> Reserve {
        Reserve {
            file: std::fs::File::open("/dev/null").ok(),
            refused: 0,
            logged: None,
        }
    }

    async fn refuse_one(&mut self, listener: &TcpListener, e: &std::io::Error) {
        self.refused += 1;
        if self
            .logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(
                "out of file descriptors ({e}): {} connection(s) refused; raise the limit (ulimit -n)",
                self.refused
            );
            self.refused = 0;
            self.logged = Some(std::time::Instant::now());
        }
        drop(self.file.take());
        if let Ok(Ok((sock, _))) =
            tokio::time::timeout(Duration::from_millis(10), listener.accept()).await
        {
            drop(sock);
        }
        self.file = std::fs::File::open("/dev/null").ok();
        if self.file.is_none() {
            // Still none to spare: give the connections a moment to close.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Raise the open-files limit to its hard limit (each connection is a
/// descriptor) and say what it is.
pub fn raise_open_files_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return;
        }
        if l.rlim_cur < l.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                l = raised;
            }
        }
    }
    tracing::info!("file descriptor limit: {}", l.rlim_cur);
}

/// Where `ferretmq ctl` reaches the node running on a data dir.
pub fn ctl_socket_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("ctl.sock")
}

/// The node's Unix socket, readable and writable by its OS user only.
fn bind_ctl_socket(data_dir: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = ctl_socket_path(data_dir);
    // A socket left by a broker that is gone; the data dir is this node's.
    let _ = std::fs::remove_file(&path);
    let l = tokio::net::UnixListener::bind(&path)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// The TLS handshake (within the AMQP handshake's deadline), then AMQP.
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) {
    let stream = match tokio::time::timeout(
        broker.config.handshake_timeout(),
        acceptor.accept(sock),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let cert_cn = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(crate::tls::common_name);
    let secured = connection::Secured { cert_cn };
    connection::serve(stream, peer, local, Some(secured), broker, shutdown).await;
}

/// A listening socket. `[::]` accepts IPv4 as well (dual-stack, as
/// RabbitMQ listens); where the host has no IPv6 it falls back to 0.0.0.0.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
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
    tls: Option<tokio_rustls::TlsAcceptor>,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let mut reserve = Reserve::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    let local = sock.local_addr().unwrap_or(peer);
                    let (broker, shutdown) = (broker.clone(), shutdown.clone());
                    match &tls {
                        None => conns.spawn(connection::serve(sock, peer, local, None, broker, shutdown)),
                        Some(acceptor) => conns.spawn(serve_tls(acceptor.clone(), sock, peer, local, broker, shutdown)),
                    };
                }
                Err(e) if is_out_of_descriptors(&e) => {
                    // Refuse the waiting client cleanly (accept and close it
                    // with the descriptor kept for this) instead of leaving it
                    // in the backlog and trying again in a loop.
                    reserve.refuse_one(&listener, &e).await;
                }
                Err(e) => {
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
