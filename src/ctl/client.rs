//! HTTP/1.1 to the node's management API over its Unix socket
//! (`DATA_DIR/ctl.sock`), with hyper's client.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;

pub(crate) struct Client {
    pub socket: PathBuf,
}

/// A reply: status and JSON body (Null when empty).
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// RabbitMQ's `reason` (or the body) of an error reply.
    pub(crate) fn reason(&self) -> String {
        match self.body.get("reason") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => format!("HTTP {}", self.status),
        }
    }
}

/// A path segment, percent-encoded (a vhost named "/" is "%2F").
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| {
                format!(
                    "cannot reach the node at {} ({e}); is ferretmq running on that data dir?",
                    self.socket.display()
                )
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(conn);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| format!("bad request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status().as_u16();
        let data = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the reply: {e}"))?
            .to_bytes();
        let body = if data.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&data)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&data).into_owned()))
        };
        Ok(Reply { status, body })
    }
}
