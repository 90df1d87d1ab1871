//! A minimal HTTP/1.1 client for the management API tests.
#![allow(dead_code)]

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn start_http() -> TestBroker {
    start_with(|c| c.management_listen = vec!["127.0.0.1:0".parse().expect("addr")]).await
}

/// One HTTP/1.1 request: (status, body).
pub async fn http(
    b: &TestBroker,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_headers(b, method, path, auth, body).await;
    (status, body)
}

/// One HTTP/1.1 request: (status, response head, body).
pub async fn http_headers(
    b: &TestBroker,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let addr = b.running.as_ref().expect("running").management_addrs[0];
    http_at(addr, method, path, auth, body).await
}

/// One HTTP/1.1 request to `addr` (any of the broker's HTTP listeners):
/// (status, response head, body).
pub async fn http_at(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        use base64::Engine;
        let a = base64::engine::general_purpose::STANDARD.encode(a);
        req.push_str(&format!("Authorization: Basic {a}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    // A server may answer (413) and stop reading before the body is sent.
    let _ = s.write_all(req.as_bytes()).await;
    let mut resp = Vec::new();
    within(s.read_to_end(&mut resp)).await.expect("read");
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text[9..12].parse().expect("status");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}
