//! TLS on the gRPC port, terminated in our own accept loop rather than by
//! tonic, so that the write-coalescing wrapper (`coalesce.rs`) sits above the
//! TLS stream: h2 then sees unvectored writes and batches small frames into
//! few TLS records and writes, as it does in plaintext (docs/adr/0008).
//!
//! Handshakes run concurrently, each bounded by [`HANDSHAKE_TIMEOUT`], so a
//! slow or silent client never holds up the others. It must never hand the
//! server a connection whose handshake failed, nor keep accepting after the
//! server has stopped taking connections.

use std::{io, sync::Arc, time::Duration};

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
    server::TlsStream,
};
use tokio_stream::{Stream, wrappers::ReceiverStream};

use super::{TlsMaterial, coalesce::Coalesced, conn::Guarded};

/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handshaken but not yet taken by the server.
const READY: usize = 64;

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

/// The server's TLS configuration: its identity, HTTP/2 by ALPN, and client
/// certificates from `client_ca` required when it is set (mutual TLS).
pub fn acceptor(tls: &TlsMaterial) -> Result<TlsAcceptor, TlsError> {
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
    config.alpn_protocols = vec![b"h2".to_vec()];
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

/// The connections of `listener`, each after its TLS handshake, wrapped for
/// write coalescing. Accepting stops when the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limits: super::conn::ConnLimits,
) -> impl Stream<Item = io::Result<Guarded<Coalesced<TlsStream<TcpStream>>>>> {
    let (ready, rx) = tokio::sync::mpsc::channel(READY);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                // The server dropped the stream: it takes no more connections.
                _ = ready.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Refused: dropping the socket closes it.
            let Some(slot) = limits.admit(peer) else {
                continue;
            };
            // Without it a small answer waits for the client's delayed ACK.
            let _ = tcp.set_nodelay(true);
            let (acceptor, ready) = (acceptor.clone(), ready.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        // Fails only when the server has stopped: the connection closes.
                        let _ = ready
                            .send(Ok(Guarded::new(Coalesced::new(tls), slot)))
                            .await;
                    }
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "tls handshake failed");
                    }
                    Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
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
        let Err(err) = acceptor(&material) else {
            panic!("accepted material without a certificate");
        };
        let err = err.to_string();
        assert!(err.contains("--tls-cert"), "{err}");
    }
}
