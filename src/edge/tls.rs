//! TLS material and server configurations for both ports (rustls): the
//! gRPC port offers HTTP/2 by ALPN, the HTTP port `h2` and `http/1.1`.
//! It never logs key material.

use std::sync::Arc;

use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
};

/// A port's certificate and key (PEM), and the CA of client certificates.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// Certificate chain.
    pub cert: Vec<u8>,
    /// Private key.
    pub key: Vec<u8>,
    /// CA bundle for client certificates; `Some` requires them (mutual TLS).
    pub client_ca: Option<Vec<u8>>,
}

/// Why the TLS material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file holds no usable certificate or key.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(String),
}

/// A server TLS configuration: its identity, the `alpn` protocols in order
/// of preference, and client certificates from `client_ca` required when it
/// is set (mutual TLS).
pub fn acceptor(tls: &TlsMaterial, alpn: &[&[u8]]) -> Result<TlsAcceptor, TlsError> {
    let certs = certificates("--tls-cert", &tls.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key)
        .map_err(|err| TlsError::Pem(format!("--tls-key: no private key ({err})")))?;
    let builder = ServerConfig::builder();
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certificates("--tls-client-ca", ca)?);
            if added == 0 {
                return Err(TlsError::Pem(
                    "--tls-client-ca: no usable CA certificate".into(),
                ));
            }
            let verifier = WebPkiClientVerifier::builder(roots.into())
                .build()
                .map_err(|err| TlsError::Config(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|err| TlsError::Config(err.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(flag: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Pem(format!("{flag}: {err}")))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(format!("{flag}: no certificate")));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_material_is_refused_with_the_flag_named() {
        let material = TlsMaterial {
            cert: b"not a certificate".to_vec(),
            key: Vec::new(),
            client_ca: None,
        };
        let Err(err) = acceptor(&material, &[b"h2"]) else {
            panic!("accepted material without a certificate");
        };
        let err = err.to_string();
        assert!(err.contains("--tls-cert"), "{err}");
    }
}
