//! A link between two nodes: TCP, length-prefixed JSON frames, opened by a
//! mutual challenge. Each side sends a random nonce and proves it knows the
//! cluster secret with HMAC-SHA256 over both nonces, so the secret never
//! crosses the wire and a recorded handshake cannot be replayed.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Raft's messages are small; a snapshot chunk is the largest.
const MAX_FRAME: u32 = 64 << 20;
const PROTOCOL: &str = "ferretmq-cluster/1";
/// How long connecting and the handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) struct Link {
    r: BufReader<OwnedReadHalf>,
    w: BufWriter<OwnedWriteHalf>,
    /// The peer's node name, as it proved it.
    pub(crate) peer: String,
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
    fn new(stream: TcpStream, peer: String) -> Link {
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        Link {
            r: BufReader::new(r),
            w: BufWriter::new(w),
            peer,
        }
    }

    /// Connect to `addr` as `me` and prove the secret both ways.
    pub(crate) async fn connect(addr: &str, me: &str, secret: &[u8]) -> io::Result<Link> {
        let go = async {
            let stream = TcpStream::connect(addr).await?;
            let mut link = Link::new(stream, String::new());
            let mine = nonce()?;
            link.send(&Hello {
                protocol: PROTOCOL.into(),
                name: me.into(),
                nonce: mine.clone(),
            })
            .await?;
            let c: Challenge = link.receive().await?;
            check(secret, "server", &mine, &c.nonce, &c.proof)?;
            link.send(&Proof {
                proof: prove(secret, "client", &c.nonce, &mine),
            })
            .await?;
            link.peer = c.name;
            Ok(link)
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, go)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{addr}: no answer")))?
    }

    /// Take a connection made to this node's cluster listener.
    pub(crate) async fn accept(stream: TcpStream, me: &str, secret: &[u8]) -> io::Result<Link> {
        let go = async {
            let mut link = Link::new(stream, String::new());
            let h: Hello = link.receive().await?;
            if h.protocol != PROTOCOL {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown protocol {:?}", h.protocol),
                ));
            }
            let mine = nonce()?;
            link.send(&Challenge {
                name: me.into(),
                nonce: mine.clone(),
                proof: prove(secret, "server", &h.nonce, &mine),
            })
            .await?;
            let p: Proof = link.receive().await?;
            check(secret, "client", &mine, &h.nonce, &p.proof)?;
            link.peer = h.name;
            Ok(link)
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, go)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))?
    }

    pub(crate) async fn send<T: Serialize>(&mut self, msg: &T) -> io::Result<()> {
        let body = serde_json::to_vec(msg)?;
        let len = u32::try_from(body.len())
            .ok()
            .filter(|l| *l <= MAX_FRAME)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        self.w.write_all(&len.to_be_bytes()).await?;
        self.w.write_all(&body).await?;
        self.w.flush().await
    }

    /// The next frame; `None` when the peer closed between frames.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        let mut len = [0u8; 4];
        match self.r.read_exact(&mut len).await {
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
        self.r.read_exact(&mut body).await?;
        Ok(Some(serde_json::from_slice(&body)?))
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
            Link::accept(s, "b", server_secret).await
        });
        let client = Link::connect(&addr, "a", client_secret).await;
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
