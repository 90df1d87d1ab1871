//! Entry points for the fuzz targets in `fuzz/` (not an API): each feeds
//! untrusted bytes to a parser the broker runs on client input. None may
//! panic, hang or allocate without bound, whatever the bytes.

use bytes::BytesMut;
use std::sync::{Arc, OnceLock};

/// The frame splitter, method and content-header parsing: frames are
/// taken off the buffer until it runs out or one is refused.
pub fn frames(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    for _ in 0..data.len() + 1 {
        match crate::codec::decode(&mut buf, 131_072) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

/// A field table (AMQPLAIN responses, arguments, headers), then what the
/// broker reads out of one: queue arguments, CC/BCC, and the body size a
/// header claims.
pub fn field_table(data: &[u8]) {
    let mut framed = (data.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(data);
    let Ok((_, table)) = amq_protocol::types::parsing::parse_field_table(&framed[..]) else {
        return;
    };
    let _ = crate::queue::args::QueueArgs::parse(&table, "q", "/");
    let props = amq_protocol::protocol::BasicProperties::default().with_headers(table);
    let _ = crate::cc::split(&props, 1);
    let _ = crate::message::check_expiration(&props);
}

fn broker() -> &'static (tokio::runtime::Runtime, Arc<crate::Broker>) {
    static B: OnceLock<(tokio::runtime::Runtime, Arc<crate::Broker>)> = OnceLock::new();
    B.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("ferretmq-fuzz-{}", std::process::id()));
        let mut config = crate::Config::ephemeral(dir);
        config.auth_mechanisms.push("RABBIT-CR-DEMO".into());
        let broker = crate::Broker::new(config).expect("broker");
        (rt, broker)
    })
}

/// The handshake, from the protocol header to Connection.Open, with the
/// client's bytes given whole and then end of input.
pub fn handshake(data: &[u8]) {
    let (rt, broker) = broker();
    rt.block_on(async {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let input = data.to_vec();
        let feed = async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = client.write_all(&input).await;
            let _ = client.shutdown().await;
            // Drain what the server says, so it never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink).await;
        };
        let serve = async move {
            // Its end drops `server`, which ends the client's read.
            crate::connection::handshake::negotiate(&mut server, peer, 5672, None, broker)
                .await
                .is_ok()
        };
        let _ = tokio::join!(feed, serve);
    });
}
