//! A link between two nodes: TCP (or TLS, both sides presenting a
//! certificate of the cluster's CA, with `[cluster.tls]`), length-prefixed
//! JSON frames, opened by a mutual challenge. Each side sends a random
//! nonce and proves it knows the cluster secret with HMAC-SHA256 over both
//! nonces, so the secret never crosses the wire and a recorded handshake
//! cannot be replayed.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Raft's messages are small; a snapshot chunk is the largest.
const MAX_FRAME: u32 = 64 << 20;
const PROTOCOL: &str = "ferretmq-cluster/1";
/// How long connecting and the handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) struct Link {
    r: BufReader<Box<dyn AsyncRead + Send + Sync + Unpin>>,
    w: BufWriter<Box<dyn AsyncWrite + Send + Sync + Unpin>>,
    /// The peer's node name, as it proved it.
    pub(crate) peer: String,
}

/// How this node opens links to others and takes theirs.
#[derive(Clone)]
pub(crate) struct Endpoint {
    me: String,
    secret: Arc<[u8]>,
    tls: Option<(TlsConnector, TlsAcceptor)>,
}

impl Endpoint {
    pub(crate) fn new(
        me: &str,
        secret: &[u8],
        tls: Option<(TlsConnector, TlsAcceptor)>,
    ) -> Endpoint {
        Endpoint {
            me: me.into(),
            secret: secret.into(),
            tls,
        }
    }

    /// Connect to `addr` (host:port) and prove the secret both ways.
    pub(crate) async fn connect(&self, addr: &str) -> io::Result<Link> {
        let go = async {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            let link = match &self.tls {
                None => Link::new(stream),
                Some((connector, _)) => {
                    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let name = ServerName::try_from(host.to_string()).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
                    })?;
                    Link::new(connector.connect(name, stream).await?)
                }
            };
            link.open(&self.me, &self.secret).await
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, go)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{addr}: no answer")))?
    }

    /// Take a connection made to this node's cluster listener.
    pub(crate) async fn accept(&self, stream: TcpStream) -> io::Result<Link> {
        let go = async {
            let _ = stream.set_nodelay(true);
            let link = match &self.tls {
                None => Link::new(stream),
                Some((_, acceptor)) => Link::new(acceptor.accept(stream).await?),
            };
            link.answer(&self.me, &self.secret).await
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, go)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))?
    }
}

#[derive(Serialize, Deserialize)]
struct Hello {
    protocol: String,
    name: String,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Challenge {
    name: String,
    nonce: String,
    proof: String,
}

#[derive(Serialize, Deserialize)]
struct Proof {
    proof: String,
}

fn nonce() -> io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(b))
}

fn mac(secret: &[u8], role: &str, first: &str, second: &str) -> Hmac<Sha256> {
    // new_from_slice takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(role.as_bytes());
    m.update(b"\0");
    m.update(first.as_bytes());
    m.update(b"\0");
    m.update(second.as_bytes());
    m
}

fn prove(secret: &[u8], role: &str, first: &str, second: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(mac(secret, role, first, second).finalize().into_bytes())
}

fn check(secret: &[u8], role: &str, first: &str, second: &str, proof: &str) -> io::Result<()> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(proof)
        .map_err(|_| refused())?;
    mac(secret, role, first, second)
        .verify_slice(&bytes)
        .map_err(|_| refused())
}

fn refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "the peer does not know the cluster secret",
    )
}

impl Link {
    fn new(stream: impl AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static) -> Link {
        let (r, w) = tokio::io::split(stream);
        let (r, w): (
            Box<dyn AsyncRead + Send + Sync + Unpin>,
            Box<dyn AsyncWrite + Send + Sync + Unpin>,
        ) = (Box::new(r), Box::new(w));
        Link {
            r: BufReader::new(r),
            w: BufWriter::new(w),
            peer: String::new(),
        }
    }

    /// The connecting side's handshake.
    async fn open(mut self, me: &str, secret: &[u8]) -> io::Result<Link> {
        let mine = nonce()?;
        self.send(&Hello {
            protocol: PROTOCOL.into(),
            name: me.into(),
            nonce: mine.clone(),
        })
        .await?;
        let c: Challenge = self.receive().await?;
        check(secret, "server", &mine, &c.nonce, &c.proof)?;
        self.send(&Proof {
            proof: prove(secret, "client", &c.nonce, &mine),
        })
        .await?;
        self.peer = c.name;
        Ok(self)
    }

    /// The accepting side's handshake.
    async fn answer(mut self, me: &str, secret: &[u8]) -> io::Result<Link> {
        let h: Hello = self.receive().await?;
        if h.protocol != PROTOCOL {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown protocol {:?}", h.protocol),
            ));
        }
        let mine = nonce()?;
        self.send(&Challenge {
            name: me.into(),
            nonce: mine.clone(),
            proof: prove(secret, "server", &h.nonce, &mine),
        })
        .await?;
        let p: Proof = self.receive().await?;
        check(secret, "client", &mine, &h.nonce, &p.proof)?;
        self.peer = h.name;
        Ok(self)
    }

    /// Its two directions, for a session both sides write to at will.
    pub(crate) fn split(self) -> (LinkReader, LinkWriter) {
        (LinkReader { r: self.r }, LinkWriter { w: self.w })
    }

    pub(crate) async fn send<T: Serialize>(&mut self, msg: &T) -> io::Result<()> {
        write_frame(&mut self.w, msg).await
    }

    /// The next frame; `None` when the peer closed between frames.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        read_frame(&mut self.r).await
    }

    pub(crate) async fn receive<T: DeserializeOwned>(&mut self) -> io::Result<T> {
        self.next()
            .await?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the link"))
    }

    /// One request, one reply.
    pub(crate) async fn call<Q: Serialize, A: DeserializeOwned>(
        &mut self,
        req: &Q,
    ) -> io::Result<A> {
        self.send(req).await?;
        self.receive().await
    }
}

pub(crate) struct LinkReader {
    r: BufReader<Box<dyn AsyncRead + Send + Sync + Unpin>>,
}

pub(crate) struct LinkWriter {
    w: BufWriter<Box<dyn AsyncWrite + Send + Sync + Unpin>>,
}

impl LinkReader {
    /// The next frame; `None` when the peer closed between frames.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        read_frame(&mut self.r).await
    }
}

impl LinkWriter {
    pub(crate) async fn send<T: Serialize>(&mut self, msg: &T) -> io::Result<()> {
        write_frame(&mut self.w, msg).await
    }
}

async fn write_frame<T: Serialize>(
    w: &mut BufWriter<Box<dyn AsyncWrite + Send + Sync + Unpin>>,
    msg: &T,
) -> io::Result<()> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await
}

async fn read_frame<T: DeserializeOwned>(
    r: &mut BufReader<Box<dyn AsyncRead + Send + Sync + Unpin>>,
) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).await?;
    Ok(Some(serde_json::from_slice(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(
        client_secret: &[u8],
        server_secret: &'static [u8],
    ) -> (io::Result<Link>, io::Result<Link>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            Endpoint::new("b", server_secret, None).accept(s).await
        });
        let client = Endpoint::new("a", client_secret, None).connect(&addr).await;
        (client, server.await.unwrap())
    }

    #[tokio::test]
    async fn nodes_sharing_the_secret_link_up_and_learn_each_others_names() {
        let (c, s) = pair(b"cookie", b"cookie").await;
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        assert_eq!((c.peer.as_str(), s.peer.as_str()), ("b", "a"));
        c.send(&42u32).await.unwrap();
        assert_eq!(s.receive::<u32>().await.unwrap(), 42);
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_on_both_sides() {
        let (c, s) = pair(b"guess", b"cookie").await;
        assert_eq!(
            c.err().map(|e| e.kind()),
            Some(io::ErrorKind::PermissionDenied)
        );
        assert!(s.is_err());
    }
}
