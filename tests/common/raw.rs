//! A raw AMQP peer over TCP for the bad-input tests: it completes the
//! handshake honestly, then sends whatever bytes a test wants.
#![allow(dead_code)]

use super::DEADLINE;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn frame(ftype: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ftype];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0xCE);
    v
}

pub fn method(channel: u16, class: u16, method: u16, args: &[u8]) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend_from_slice(&method.to_be_bytes());
    p.extend_from_slice(args);
    frame(1, channel, &p)
}

pub fn short_str(s: &str) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

pub fn publish(channel: u16, exchange: &str, key: &str) -> Vec<u8> {
    let mut a = vec![0, 0];
    a.extend(short_str(exchange));
    a.extend(short_str(key));
    a.push(0);
    method(channel, 60, 40, &a)
}

pub fn header(channel: u16, body_size: u64) -> Vec<u8> {
    let mut p = vec![0, 60, 0, 0];
    p.extend_from_slice(&body_size.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    frame(2, channel, &p)
}

/// A content header whose only property is `expiration`.
pub fn header_with_expiration(channel: u16, body_size: u64, expiration: &str) -> Vec<u8> {
    let mut p = vec![0, 60, 0, 0];
    p.extend_from_slice(&body_size.to_be_bytes());
    p.extend_from_slice(&0x0100u16.to_be_bytes());
    p.extend(short_str(expiration));
    frame(2, channel, &p)
}

/// The (code, text) of a Close method's arguments.
pub fn close_args(args: &[u8]) -> (u16, String) {
    let code = u16::from_be_bytes([args[0], args[1]]);
    let n = args[2] as usize;
    (code, String::from_utf8_lossy(&args[3..3 + n]).into_owned())
}

pub fn queue_declare(channel: u16, name: &str) -> Vec<u8> {
    let mut a = vec![0, 0];
    a.extend(short_str(name));
    a.push(0);
    a.extend_from_slice(&0u32.to_be_bytes());
    method(channel, 50, 10, &a)
}

pub struct Peer {
    pub sock: TcpStream,
    buf: Vec<u8>,
}

/// What the broker did in answer to bad input.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    ChannelClose(u16),
    ConnectionClose(u16),
    /// The socket closed without a Close method.
    Dropped,
}

impl Peer {
    pub async fn connect(addr: SocketAddr) -> Peer {
        Self::connect_tuned(addr, 0x07FF).await.0
    }

    /// Connect asking for `channel_max`; also the Start method's arguments.
    pub async fn connect_tuned(addr: SocketAddr, channel_max: u16) -> (Peer, Vec<u8>) {
        let sock = TcpStream::connect(addr).await.expect("tcp connect");
        let mut p = Peer { sock, buf: vec![] };
        p.send(b"AMQP\x00\x00\x09\x01").await;
        let start = p.expect(10, 10).await;
        let mut args = 0u32.to_be_bytes().to_vec();
        args.extend(short_str("PLAIN"));
        args.extend_from_slice(&12u32.to_be_bytes());
        args.extend_from_slice(b"\0guest\0guest");
        args.extend(short_str("en_US"));
        p.send(&method(0, 10, 11, &args)).await;
        p.expect(10, 30).await;
        let mut tune = channel_max.to_be_bytes().to_vec();
        tune.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
        p.send(&method(0, 10, 31, &tune)).await;
        let mut open = short_str("/");
        open.extend_from_slice(&[0, 0]);
        p.send(&method(0, 10, 40, &open)).await;
        p.expect(10, 41).await;
        (p, start)
    }

    pub async fn open_channel(&mut self, ch: u16) {
        self.send(&method(ch, 20, 10, &[0])).await;
        self.expect(20, 11).await;
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).await.expect("write");
    }

    /// The next method frame's (channel, class, method, args), or None at EOF.
    pub async fn next_method(&mut self) -> Option<(u16, u16, u16, Vec<u8>)> {
        loop {
            if self.buf.len() >= 7 {
                let size = u32::from_be_bytes([self.buf[3], self.buf[4], self.buf[5], self.buf[6]])
                    as usize;
                if self.buf.len() >= size + 8 {
                    let f: Vec<u8> = self.buf.drain(..size + 8).collect();
                    if f[0] == 1 {
                        let ch = u16::from_be_bytes([f[1], f[2]]);
                        let c = u16::from_be_bytes([f[7], f[8]]);
                        let m = u16::from_be_bytes([f[9], f[10]]);
                        return Some((ch, c, m, f[11..7 + size].to_vec()));
                    }
                    continue;
                }
            }
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout(DEADLINE, self.sock.read(&mut chunk))
                .await
                .expect("deadline waiting for the broker")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn expect(&mut self, class: u16, method: u16) -> Vec<u8> {
        let (_, c, m, args) = self.next_method().await.expect("a method");
        assert_eq!((c, m), (class, method), "unexpected method");
        args
    }

    /// Wait for the broker's reaction: a Close (acknowledged) or a dropped socket.
    pub async fn outcome(&mut self) -> Outcome {
        loop {
            match self.next_method().await {
                None => return Outcome::Dropped,
                Some((ch, 20, 40, args)) => {
                    self.send(&method(ch, 20, 41, &[])).await;
                    return Outcome::ChannelClose(u16::from_be_bytes([args[0], args[1]]));
                }
                Some((_, 10, 50, args)) => {
                    self.send(&method(0, 10, 51, &[])).await;
                    return Outcome::ConnectionClose(u16::from_be_bytes([args[0], args[1]]));
                }
                Some(_) => continue,
            }
        }
    }

    /// The next Close (channel or connection): its channel, code and text.
    pub async fn next_close(&mut self) -> Option<(u16, u16, String)> {
        loop {
            match self.next_method().await? {
                (ch, 20, 40, args) | (ch, 10, 50, args) => {
                    let (code, text) = close_args(&args);
                    return Some((ch, code, text));
                }
                _ => continue,
            }
        }
    }

    /// After a connection-level close the broker must end the socket.
    pub async fn expect_eof(&mut self) {
        while self.next_method().await.is_some() {}
    }
}
