//! Protocol header → Start/StartOk → Tune/TuneOk → Open/OpenOk, as one
//! straight function. No connection object exists until it succeeds.

use super::Transport;
use crate::access::check;
use crate::broker::connections::{Admission, Arrival, OverLimit};
use crate::broker::{Broker, Vhost};
use crate::codec::{self, FRAME_MIN_SIZE, Frame, Outbox, PROTOCOL_HEADER};
use crate::error::AmqpError;
use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Negotiated {
    pub vhost: Arc<Vhost>,
    pub user: String,
    /// Its place under the vhost's and the user's connection limits.
    pub admission: Admission,
    pub mechanism: String,
    pub client_properties: FieldTable,
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
    pub consumer_cancel_notify: bool,
    /// The client understands Connection.Blocked / Unblocked.
    pub connection_blocked: bool,
    /// Bytes read past the handshake (a pipelining client's first frames).
    pub leftover: BytesMut,
}

/// How a handshake ended without a connection.
pub enum Refused {
    /// Nothing more to say: the socket just closes.
    Silently(String),
    /// Send Connection.Close with this error, then close.
    WithClose(AmqpError),
}

pub async fn negotiate(
    sock: &mut impl Transport,
    peer: SocketAddr,
    local_port: u16,
    secured: Option<&super::Secured>,
    broker: &Broker,
) -> Result<Negotiated, Refused> {
    let cfg = &broker.config;
    let mut header = [0u8; 8];
    sock.read_exact(&mut header)
        .await
        .map_err(|e| Refused::Silently(format!("no protocol header: {e}")))?;
    if &header != PROTOCOL_HEADER {
        let _ = sock.write_all(PROTOCOL_HEADER).await;
        return Err(Refused::Silently(format!("bad protocol header {header:?}")));
    }
    // EXTERNAL only where there is a client certificate to log in as (as
    // rabbitmq_auth_mechanism_ssl offers it).
    let cert_cn = secured.and_then(|s| s.cert_cn.clone());
    let mechanisms: Vec<&str> = cfg
        .auth_mechanisms
        .iter()
        .map(String::as_str)
        .filter(|m| *m != "EXTERNAL" || cert_cn.is_some())
        .collect();
    let mut out = Outbox::default();
    out.method(0, start_method(cfg, &broker.cluster_name(), &mechanisms));
    send(sock, &mut out).await?;

    let mut buf = BytesMut::with_capacity(4096);
    let start_ok = match next_method(sock, &mut buf).await? {
        AMQPClass::Connection(connection::AMQPMethod::StartOk(s)) => s,
        other => return Err(unexpected("connection.start_ok", &other)),
    };
    let caps = client_capabilities(&start_ok.client_properties);
    let auth_close = caps
        .get("authentication_failure_close")
        .copied()
        .unwrap_or(false);
    let offered = mechanisms.contains(&start_ok.mechanism.as_str());
    // RabbitMQ answers a mechanism it does not offer with no Close at all
    // (a handshake error before Tune): it closes the socket.
    let unsupported = || {
        Refused::Silently(format!(
            "unknown authentication mechanism '{}'",
            start_ok.mechanism
        ))
    };
    let (user, pass) = match start_ok.mechanism.as_str() {
        _ if !offered => return Err(unsupported()),
        "RABBIT-CR-DEMO" => cr_demo(sock, &mut buf, &start_ok).await?,
        // The certificate, verified by TLS, is the credential.
        "EXTERNAL" => (cert_cn.clone().unwrap_or_default(), None),
        _ => {
            let (u, p) = credentials(&start_ok).ok_or_else(unsupported)?;
            (u, Some(p))
        }
    };
    let known = match &pass {
        Some(p) => broker.authenticate(&user, p).is_some(),
        None => broker.access.snapshot().users.contains_key(&user),
    };
    if !known {
        // Logged without the password, as RabbitMQ.
        tracing::warn!(%peer, %user, mechanism = %start_ok.mechanism, "login refused: invalid credentials");
        let e = AmqpError::access_refused(format!(
            "Login was refused using authentication mechanism {}. For details see the broker logfile.",
            start_ok.mechanism
        ));
        return Err(if auth_close {
            Refused::WithClose(e)
        } else {
            Refused::Silently(format!("login refused for user '{user}'"))
        });
    }
    if !cfg.may_connect_from(&user, peer.ip()) {
        return Err(Refused::WithClose(AmqpError::access_refused(format!(
            "User '{user}' can only connect via localhost"
        ))));
    }

    out.method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
            channel_max: cfg.channel_max,
            frame_max: cfg.frame_max,
            heartbeat: cfg.heartbeat,
        })),
    );
    send(sock, &mut out).await?;
    let tune_ok = match next_method(sock, &mut buf).await? {
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(t)) => t,
        other => return Err(unexpected("connection.tune_ok", &other)),
    };
    let frame_max = if tune_ok.frame_max == 0 {
        cfg.frame_max
    } else {
        tune_ok.frame_max
    };
    if frame_max < FRAME_MIN_SIZE || frame_max > cfg.frame_max {
        return Err(Refused::WithClose(AmqpError::not_allowed(format!(
            "negotiated frame_max = {frame_max} is outside {FRAME_MIN_SIZE}..={}",
            cfg.frame_max
        ))));
    }
    let channel_max = match tune_ok.channel_max {
        0 => cfg.channel_max,
        n => n.min(cfg.channel_max),
    };

    let open = match next_method(sock, &mut buf).await? {
        AMQPClass::Connection(connection::AMQPMethod::Open(o)) => o,
        other => return Err(unexpected("connection.open", &other)),
    };
    let vhost_name = open.virtual_host.as_str();
    let admission = admit(broker, &user, vhost_name, local_port).map_err(Refused::WithClose)?;
    check::check_vhost_access(&broker.access.snapshot(), &user, vhost_name)
        .map_err(Refused::WithClose)?;
    let vhost = broker.vhost(vhost_name).ok_or_else(|| {
        Refused::WithClose(AmqpError::not_allowed(format!(
            "vhost {vhost_name} not found"
        )))
    })?;
    out.method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})),
    );
    send(sock, &mut out).await?;
    Ok(Negotiated {
        vhost,
        user,
        admission,
        mechanism: start_ok.mechanism.to_string(),
        client_properties: start_ok.client_properties.clone(),
        channel_max,
        frame_max,
        heartbeat: tune_ok.heartbeat,
        consumer_cancel_notify: caps.get("consumer_cancel_notify").copied().unwrap_or(false),
        connection_blocked: caps.get("connection.blocked").copied().unwrap_or(false),
        leftover: buf,
    })
}

/// The vhost's and the user's `max-connections`, checked before access to
/// the vhost, in RabbitMQ's order and words (530 NOT_ALLOWED).
fn admit(broker: &Broker, user: &str, vhost: &str, port: u16) -> Result<Admission, AmqpError> {
    let s = broker.access.snapshot();
    let Some(v) = s.vhosts.get(vhost) else {
        return Err(AmqpError::not_allowed(format!("vhost {vhost} not found")));
    };
    let arrival = Arrival {
        vhost,
        user,
        port,
        listener_limit: broker.config.connection_max,
        vhost_limit: v.limits.max_connections,
        user_limit: s.users.get(user).and_then(|u| u.limits.max_connections),
    };
    broker.connections.admit(&arrival).map_err(|over| match over {
        OverLimit::Listener(limit) => AmqpError::not_allowed(format!(
            "connection refused: node connection limit ({limit}) is reached"
        )),
        OverLimit::Vhost(limit) => AmqpError::not_allowed(format!(
            "access to vhost '{vhost}' refused for user '{user}': connection limit ({limit}) is reached"
        )),
        OverLimit::User(limit) => AmqpError::not_allowed(format!(
            "connection refused for user '{user}': user connection limit ({limit}) is reached"
        )),
    })
}

fn unexpected(expected: &str, got: &AMQPClass) -> Refused {
    if let AMQPClass::Connection(connection::AMQPMethod::Close(_)) = got {
        return Refused::Silently("client closed during handshake".into());
    }
    Refused::WithClose(
        AmqpError::command_invalid(format!("expected '{expected}'"))
            .on_method(got.get_amqp_class_id(), got.get_amqp_method_id()),
    )
}

async fn send(sock: &mut impl Transport, out: &mut Outbox) -> Result<(), Refused> {
    for chunk in out.take() {
        sock.write_all(&chunk)
            .await
            .map_err(|e| Refused::Silently(format!("write failed: {e}")))?;
    }
    Ok(())
}

async fn next_method(sock: &mut impl Transport, buf: &mut BytesMut) -> Result<AMQPClass, Refused> {
    loop {
        match codec::decode(buf, 131_072) {
            Ok(Some(Frame::Method(0, m))) => return Ok(m),
            Ok(Some(Frame::Heartbeat(_))) => continue,
            Ok(Some(_)) => {
                return Err(Refused::WithClose(AmqpError::unexpected_frame(
                    "expected a method frame on channel 0 during the handshake",
                )));
            }
            Ok(None) => {}
            Err(e) => return Err(Refused::WithClose(e)),
        }
        let n = sock
            .read_buf(buf)
            .await
            .map_err(|e| Refused::Silently(format!("read failed: {e}")))?;
        if n == 0 {
            return Err(Refused::Silently("client closed during handshake".into()));
        }
    }
}

/// RABBIT-CR-DEMO: the StartOk response is the user name; Secure asks for
/// the password, which SecureOk sends as "My password is ...".
async fn cr_demo(
    sock: &mut impl Transport,
    buf: &mut BytesMut,
    start_ok: &connection::StartOk,
) -> Result<(String, Option<String>), Refused> {
    let user = String::from_utf8_lossy(start_ok.response.as_bytes()).into_owned();
    let mut out = Outbox::default();
    out.method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Secure(connection::Secure {
            challenge: LongString::from("Please tell me your password".as_bytes()),
        })),
    );
    send(sock, &mut out).await?;
    let secure_ok = match next_method(sock, buf).await? {
        AMQPClass::Connection(connection::AMQPMethod::SecureOk(s)) => s,
        other => return Err(unexpected("connection.secure_ok", &other)),
    };
    let response = secure_ok.response.as_bytes();
    match response.strip_prefix(b"My password is ") {
        Some(p) => Ok((user, Some(String::from_utf8_lossy(p).into_owned()))),
        None => Err(Refused::WithClose(AmqpError::syntax_error(format!(
            "Invalid response '{}'",
            String::from_utf8_lossy(response)
        )))),
    }
}

fn credentials(s: &connection::StartOk) -> Option<(String, String)> {
    let resp = s.response.as_bytes();
    match s.mechanism.as_str() {
        "PLAIN" => {
            // [authzid] NUL authcid NUL passwd
            let mut parts = resp.split(|b| *b == 0);
            let _authzid = parts.next()?;
            let user = parts.next()?;
            let pass = parts.next()?;
            Some((
                String::from_utf8_lossy(user).into_owned(),
                String::from_utf8_lossy(pass).into_owned(),
            ))
        }
        "AMQPLAIN" => {
            // A field table's contents without its length prefix.
            let mut framed = (resp.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(resp);
            let (_, t) = amq_protocol::types::parsing::parse_field_table(&framed[..]).ok()?;
            let get = |k: &str| match t.inner().get(k) {
                Some(AMQPValue::LongString(s)) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
                _ => None,
            };
            Some((get("LOGIN")?, get("PASSWORD")?))
        }
        _ => None,
    }
}

fn client_capabilities(props: &FieldTable) -> std::collections::HashMap<String, bool> {
    let mut caps = std::collections::HashMap::new();
    if let Some(AMQPValue::FieldTable(t)) = props.inner().get("capabilities") {
        for (k, v) in t.inner() {
            if let AMQPValue::Boolean(b) = v {
                caps.insert(k.to_string(), *b);
            }
        }
    }
    caps
}

fn start_method(cfg: &crate::config::Config, cluster: &str, mechanisms: &[&str]) -> AMQPClass {
    let mut caps = FieldTable::default();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    let s = |v: &str| AMQPValue::LongString(LongString::from(v.as_bytes()));
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    let version = cfg
        .product_version
        .as_deref()
        .unwrap_or(env!("CARGO_PKG_VERSION"));
    props.insert("product".into(), s(&cfg.product));
    props.insert("version".into(), s(version));
    props.insert(
        "platform".into(),
        s(concat!("Rust ferretmq/", env!("CARGO_PKG_VERSION"))),
    );
    props.insert("cluster_name".into(), s(cluster));
    props.insert("copyright".into(), s("Copyright (c) the ferretmq authors"));
    props.insert(
        "information".into(),
        s("Licensed under MIT or Apache-2.0. An AMQP 0-9-1 broker for RabbitMQ's clients"),
    );
    AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: LongString::from(mechanisms.join(" ").as_bytes()),
        locales: LongString::from("en_US".as_bytes()),
    }))
}

/// Connection.Close for an error, as sent by every part of the connection.
pub fn close_method(e: &AmqpError) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: e.code as u16,
        reply_text: ShortString::from(e.reply_text()),
        class_id: e.class_id,
        method_id: e.method_id,
    }))
}

/// The `client_id` client property, which topic permissions may name.
pub(super) fn client_id(props: &amq_protocol::types::FieldTable) -> String {
    use amq_protocol::types::AMQPValue;
    match props.inner().get("client_id") {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        _ => String::new(),
    }
}
