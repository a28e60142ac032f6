//! Write coalescing for accepted connections. The first write of each flush
//! cycle yields once to the scheduler before it reaches the socket, so that
//! every HTTP/2 stream of the connection that is ready in this round (a Watch
//! update fans out to thousands of streams at once) lands in one `writev`
//! instead of one system call per stream. The delay is one scheduler round,
//! never a timer: an idle server writes at once.
//!
//! It must never hold data back past the caller's flush: only the write that
//! starts a cycle yields, and a flush ends the cycle.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// A connection whose writes are coalesced (see the module documentation).
#[derive(Debug)]
pub struct Coalesced<S> {
    inner: S,
    /// Whether this flush cycle has yielded already.
    yielded: bool,
}

impl<S> Coalesced<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Coalesced<S> {
        Coalesced {
            inner,
            yielded: false,
        }
    }

    /// Yields once per cycle: wakes itself and reports not ready, so the
    /// task runs again after the tasks already scheduled.
    fn yield_first(&mut self, cx: &mut Context<'_>) -> bool {
        if self.yielded {
            return false;
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.yield_first(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.yield_first(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    /// Reported as not vectored, on purpose: h2 then copies every DATA frame
    /// under 1 KiB into its 16 KiB write buffer, so a round of small frames
    /// (Watch updates, acks) leaves in one write. With vectored writes h2
    /// keeps each frame of 256 bytes or more aside and writes it on its own:
    /// one system call per Watch delivery (docs/adr/0008).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.yielded = false;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for Coalesced<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<S: Connected> Connected for crate::edge::Guarded<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.get_ref().connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn every_byte_written_arrives_in_order_across_cycles() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut w = Coalesced::new(a);
        for chunk in [&b"one "[..], b"two ", b"three"] {
            w.write_all(chunk).await.unwrap();
            w.flush().await.unwrap();
        }
        w.write_all(b" four").await.unwrap();
        w.shutdown().await.unwrap();
        let mut got = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut b, &mut got)
            .await
            .unwrap();
        assert_eq!(got, "one two three four");
    }
}
