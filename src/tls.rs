//! TLS for the amqps listener: a rustls server config from the PEM files
//! the config names (TLS 1.2 and 1.3 only, which is all rustls speaks),
//! optional client-certificate verification, and the subject CN of a
//! verified client certificate, which SASL EXTERNAL logs in as.

use crate::config::TlsConfig;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

fn read_error(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("tls {what} {}: {e}", path.display()))
}

/// The certificate chain in a PEM file (at least one).
pub(crate) fn read_certs(path: &std::path::Path) -> std::io::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect())
        .map_err(|e| read_error("certfile", path, e))?;
    if certs.is_empty() {
        return Err(read_error("certfile", path, "no certificate in it"));
    }
    Ok(certs)
}

pub(crate) fn read_key(path: &std::path::Path) -> std::io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| read_error("keyfile", path, e))
}

/// The CA certificates in a PEM file, as trust roots.
pub(crate) fn read_roots(ca: &std::path::Path) -> std::io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| read_error("cacertfile", ca, e))? {
        let c = c.map_err(|e| read_error("cacertfile", ca, e))?;
        roots.add(c).map_err(|e| read_error("cacertfile", ca, e))?;
    }
    Ok(roots)
}

/// The acceptor for `cfg`, or an error naming the file at fault.
pub(crate) fn acceptor(cfg: &TlsConfig) -> std::io::Result<TlsAcceptor> {
    let certs = read_certs(&cfg.certfile)?;
    let key = read_key(&cfg.keyfile)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(std::io::Error::other)?;
    let builder = if cfg.verify_peer {
        let Some(ca) = &cfg.cacertfile else {
            return Err(std::io::Error::other(
                "tls: verify_peer needs cacertfile (the CA that signs client certificates)",
            ));
        };
        let roots = read_roots(ca)?;
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let v = if cfg.fail_if_no_peer_cert {
            v
        } else {
            v.allow_unauthenticated()
        };
        builder.with_client_cert_verifier(v.build().map_err(std::io::Error::other)?)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| read_error("keyfile", &cfg.keyfile, e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The subject common name of a (verified) client certificate.
pub(crate) fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = c.subject().iter_common_name().next()?;
    cn.as_str().ok().map(String::from)
}

/// Both ends of a mutually authenticated link (the cluster's): an acceptor
/// that requires a certificate signed by `ca`, and a connector that trusts
/// only `ca` and presents the same certificate.
pub(crate) fn mutual(
    certfile: &std::path::Path,
    keyfile: &std::path::Path,
    ca: &std::path::Path,
) -> std::io::Result<(tokio_rustls::TlsConnector, TlsAcceptor)> {
    let acceptor = acceptor(&TlsConfig {
        listen: Vec::new(),
        certfile: certfile.to_path_buf(),
        keyfile: keyfile.to_path_buf(),
        cacertfile: Some(ca.to_path_buf()),
        verify_peer: true,
        fail_if_no_peer_cert: true,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(std::io::Error::other)?
        .with_root_certificates(read_roots(ca)?)
        .with_client_auth_cert(read_certs(certfile)?, read_key(keyfile)?)
        .map_err(|e| read_error("keyfile", keyfile, e))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(client)), acceptor))
}
