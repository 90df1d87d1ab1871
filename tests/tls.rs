//! amqps: lapin over TLS with a CA, server and client certificates made at
//! test time; client-certificate verification; SASL EXTERNAL logging in as
//! the certificate's CN.
mod common;
use common::*;
use ferretmq::config::TlsConfig;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{Connection, ConnectionProperties};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert: String,
    client_key: String,
}

/// A CA, a server certificate for localhost / 127.0.0.1 and a client
/// certificate with CN `cn`, all signed by the CA, written as PEM files.
fn pki(cn: &str) -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ferretmq test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");

    let client_key = KeyPair::generate().expect("key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("params");
    client.distinguished_name.push(DnType::CommonName, cn);
    let client_cert = client.signed_by(&client_key, &issuer).expect("client cert");

    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("ca.pem", &ca_cert.pem());
    write("server.pem", &server.pem());
    write("server.key", &server_key.serialize_pem());
    Pki {
        ca_pem: ca_cert.pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
        dir,
    }
}

async fn start_tls(p: &Pki, verify_peer: bool, fail_if_no_peer_cert: bool) -> TestBroker {
    let d = p.dir.path();
    start_with(|c| {
        c.tls = Some(TlsConfig {
            listen: vec!["127.0.0.1:0".parse().expect("addr")],
            certfile: d.join("server.pem"),
            keyfile: d.join("server.key"),
            cacertfile: Some(d.join("ca.pem")),
            verify_peer,
            fail_if_no_peer_cert,
        });
        c.auth_mechanisms.push("EXTERNAL".into());
    })
    .await
}

fn tls_addr(b: &TestBroker) -> std::net::SocketAddr {
    b.running.as_ref().expect("running").tls_addrs[0]
}

async fn connect_tls(url: &str, tls: OwnedTLSConfig) -> lapin::Result<Connection> {
    let runtime = lapin::runtime::default_runtime()?;
    within(Connection::connect_with_config(
        url,
        ConnectionProperties::default(),
        tls,
        runtime,
    ))
    .await
}

fn trust(p: &Pki) -> OwnedTLSConfig {
    OwnedTLSConfig {
        identity: None,
        cert_chain: Some(p.ca_pem.clone()),
    }
}

fn with_client_cert(p: &Pki) -> OwnedTLSConfig {
    OwnedTLSConfig {
        identity: Some(OwnedIdentity::PKCS8 {
            pem: p.client_cert.clone().into_bytes(),
            key: p.client_key.clone().into_bytes(),
        }),
        cert_chain: Some(p.ca_pem.clone()),
    }
}

#[tokio::test]
async fn lapin_publishes_and_consumes_over_tls() {
    let p = pki("alice");
    let b = start_tls(&p, false, false).await;
    let url = format!("amqps://guest:guest@localhost:{}/%2f", tls_addr(&b).port());
    let c = connect_tls(&url, trust(&p)).await.expect("TLS connection");
    let ch = within(c.create_channel()).await.expect("channel");
    declare(&ch, "over-tls").await;
    publish(&ch, "", "over-tls", b"secret").await;
    let got = get(&ch, "over-tls").await.expect("a message");
    assert_eq!(got.delivery.data, b"secret");
    // The plain listener keeps working beside it.
    let _plain = b.connect().await;
}

#[tokio::test]
async fn external_logs_in_as_the_certificates_common_name() {
    let p = pki("alice");
    let b = start_tls(&p, true, true).await;
    let broker = &b.running.as_ref().expect("running").broker;
    broker.add_user("alice", "unused", &[]).expect("user");
    broker
        .set_permissions("alice", "/", ".*", ".*", ".*")
        .expect("permissions");
    let url = format!(
        "amqps://localhost:{}/%2f?auth_mechanism=external",
        tls_addr(&b).port()
    );
    let c = connect_tls(&url, with_client_cert(&p))
        .await
        .expect("EXTERNAL login");
    let ch = within(c.create_channel()).await.expect("channel");
    declare(&ch, "alice-q").await;
    let conns = broker.connections.list();
    assert!(
        conns
            .iter()
            .any(|c| c.user == "alice" && c.auth_mechanism == "EXTERNAL" && c.tls)
    );
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_when_one_is_required() {
    let p = pki("alice");
    let b = start_tls(&p, true, true).await;
    let url = format!("amqps://guest:guest@localhost:{}/%2f", tls_addr(&b).port());
    assert!(
        connect_tls(&url, trust(&p)).await.is_err(),
        "no client certificate"
    );
    // With one, PLAIN still works.
    connect_tls(&url, with_client_cert(&p))
        .await
        .expect("with a certificate");
}

#[tokio::test]
async fn external_for_an_unknown_user_is_refused() {
    let p = pki("mallory");
    let b = start_tls(&p, true, false).await;
    let url = format!(
        "amqps://localhost:{}/%2f?auth_mechanism=external",
        tls_addr(&b).port()
    );
    let e = connect_tls(&url, with_client_cert(&p))
        .await
        .expect_err("no such user");
    assert_eq!(reply_code(&e), Some(403), "{e}");
}
