//! TLS on the gRPC port, terminated in our own accept loop rather than by
//! tonic, so that the write-coalescing wrapper (`coalesce.rs`) sits above the
//! TLS stream: h2 then sees unvectored writes and batches small frames into
//! few TLS records and writes, as it does in plaintext (docs/adr/0008).
//!
//! Handshakes run concurrently, each bounded by [`HANDSHAKE_TIMEOUT`], so a
//! slow or silent client never holds up the others. It must never hand the
//! server a connection whose handshake failed, nor keep accepting after the
//! server has stopped taking connections.

use std::{io, time::Duration};

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::{Stream, wrappers::ReceiverStream};

use super::coalesce::Coalesced;
use crate::edge::{
    Guarded,
    tls::{TlsError, TlsMaterial},
};

/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handshaken but not yet taken by the server.
const READY: usize = 64;

/// The gRPC port's TLS configuration: HTTP/2 by ALPN.
pub fn acceptor(tls: &TlsMaterial) -> Result<TlsAcceptor, TlsError> {
    crate::edge::tls::acceptor(tls, &[b"h2"])
}

/// The connections of `listener`, each after its TLS handshake, wrapped for
/// write coalescing. Accepting stops when the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limits: crate::edge::ConnLimits,
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
