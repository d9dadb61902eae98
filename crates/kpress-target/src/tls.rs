//! TLS for `TargetOptions { tls: true }`: a certificate made at start, so that HTTPS and
//! HTTP/2 negotiated by ALPN can be tried and tested with no files to provide.

use std::sync::Arc;

use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::TargetError;

pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) certificate_der: Vec<u8>,
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, served with ALPN offering
/// `h2` before `http/1.1` so that clients able to speak HTTP/2 do.
pub(crate) fn self_signed() -> Result<Tls, TargetError> {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(TargetError::Certificate)?;
    let key = PrivatePkcs8KeyDer::from(key_pair.serialize_der());
    // An explicit provider leaves the process-wide default alone for the rest of kpress.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TargetError::Tls)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key.into())
        .map_err(TargetError::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        certificate_der: cert.der().to_vec(),
    })
}
