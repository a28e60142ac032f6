//! One connection of the HTTP port.
//!
//! Most connections are hyper's. A connection whose first request is the
//! event stream (`GET /api/v1/incidents/stream`, as a browser's
//! `EventSource` or a raw client opens it) is served here instead: its
//! answer lasts as long as the subscriber stays, and hyper would hold its
//! read and write buffers (8 KiB each) for all that time, the better part of
//! an idle subscriber's memory (docs/perf/dashboard.md). Here the request's
//! head is read and parsed, the same router answers it (every layer
//! applies: the session check, the security headers, the access log), the
//! answer's head is written, then each event as one chunk straight to the
//! socket; between events the connection holds no buffer. The connection
//! closes when the stream ends (`connection: close`; the browser reconnects
//! and resumes). Any other first request (or one this module does not take:
//! a body, pipelined bytes, HTTP/1.0) goes to hyper with the bytes already
//! read, and hyper serves that connection to its end.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderName, HeaderValue, Method, Request, StatusCode, Version, header},
};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The route served without hyper.
pub(super) const STREAM_PATH: &str = "/api/v1/incidents/stream";
/// A first request's head must arrive within this time.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// A longer first head is hyper's to answer (or refuse).
const MAX_HEAD: usize = 16 * 1024;
/// Headers a first request may carry here.
const MAX_HEADERS: usize = 64;

/// Serves one accepted connection until it ends or `stop` is cancelled.
pub(super) async fn serve(mut stream: TcpStream, router: Router, stop: CancellationToken) {
    let mut head = Vec::with_capacity(1024);
    let first = tokio::select! {
        _ = stop.cancelled() => return,
        first = tokio::time::timeout(HEAD_TIMEOUT, read_first(&mut stream, &mut head)) => first,
    };
    match first {
        Ok(Ok(Some(request))) => {
            drop(head);
            // Boxed, as hyper's connection below: the task holds only the
            // state of the path it takes.
            Box::pin(stream_one(stream, router, *request, stop)).await;
        }
        Ok(Ok(None)) => {
            let io = Prefixed {
                prefix: Bytes::from(head),
                io: stream,
            };
            Box::pin(hyper_serves(io, router, stop)).await;
        }
        // Nothing (or no whole head) in time, or the peer left.
        Ok(Err(_)) | Err(_) => {}
    }
}

/// Reads until the first request's head is whole (or cannot be one served
/// here): the event-stream request, or `None` for hyper.
async fn read_first(
    stream: &mut TcpStream,
    head: &mut Vec<u8>,
) -> io::Result<Option<Box<Request<Body>>>> {
    use tokio::io::AsyncReadExt;
    loop {
        if head.len() >= MAX_HEAD {
            return Ok(None);
        }
        let read = stream.read_buf(head).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match parse_first(head) {
            Parsed::Partial => continue,
            Parsed::Stream(request) => return Ok(Some(request)),
            Parsed::Other => return Ok(None),
        }
    }
}

/// A first request's head as far as it has arrived.
#[derive(Debug)]
enum Parsed {
    /// Not whole yet.
    Partial,
    /// A whole request for the event stream, nothing after it.
    Stream(Box<Request<Body>>),
    /// Another request, or one for hyper's rules (a body, pipelining, an
    /// older HTTP, a malformed head: hyper answers those).
    Other,
}

fn parse_first(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            // Enough of the request line to tell it is another route.
            return match parsed.path {
                Some(path) if !is_stream_target(parsed.method, path) => Parsed::Other,
                _ => Parsed::Partial,
            };
        }
        Err(_) => return Parsed::Other,
    };
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return Parsed::Other;
    };
    if !is_stream_target(Some(method), path) || parsed.version != Some(1) || len != bytes.len() {
        return Parsed::Other;
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(Version::HTTP_11);
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::Other;
        };
        let has_body = (name == header::CONTENT_LENGTH && h.value != b"0")
            || name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || name == header::UPGRADE;
        if has_body {
            return Parsed::Other;
        }
        request = request.header(name, value);
    }
    match request.body(Body::empty()) {
        Ok(request) => Parsed::Stream(Box::new(request)),
        Err(_) => Parsed::Other,
    }
}

fn is_stream_target(method: Option<&str>, path: &str) -> bool {
    let route = path.split_once('?').map_or(path, |(route, _)| route);
    method.is_none_or(|m| m == "GET") && route == STREAM_PATH
}

/// Answers the event-stream request and streams the answer.
async fn stream_one(
    mut stream: TcpStream,
    router: Router,
    request: Request<Body>,
    stop: CancellationToken,
) {
    // Boxed: the router's future is done with before the stream starts.
    let Ok(response) = Box::pin(router.oneshot(request)).await;
    let (parts, mut body) = response.into_parts();
    let bodiless = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if stream
        .write_all(&response_head(parts.status, &parts.headers, bodiless))
        .await
        .is_err()
        || bodiless
    {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = peer_left(&stream) => return,
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    // An empty chunk would end the body.
                    if !data.is_empty() && stream.write_all(&chunk(&data)).await.is_err() {
                        return;
                    }
                }
                Some(Err(err)) => {
                    // Cut without the last chunk: the client sees a broken body.
                    tracing::debug!(error = %err, "event stream body failed");
                    return;
                }
                None => {
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                    let _ = stream.shutdown().await;
                    return;
                }
            },
        }
    }
}

/// Resolves once the peer has closed its side (or the socket failed).
/// Bytes it sends meanwhile are read and dropped: the connection takes no
/// further request.
async fn peer_left(stream: &TcpStream) {
    let mut scratch = [0u8; 64];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
    }
}

/// The answer's status line and headers: the router's, with the framing
/// this connection uses (chunked, then closed) and a date.
fn response_head(status: StatusCode, headers: &axum::http::HeaderMap, bodiless: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let framing = [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::CONTENT_LENGTH,
            HeaderName::from_static("keep-alive"),
        ];
        if framing.contains(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !bodiless {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

/// One chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    let size = format!("{:x}\r\n", data.len());
    let mut out = Vec::with_capacity(size.len() + data.len() + 2);
    out.extend_from_slice(size.as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Hyper serves the connection, the bytes already read first.
async fn hyper_serves(io: Prefixed, router: Router, stop: CancellationToken) {
    let service = hyper_util::service::TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "http connection ended with an error");
    }
}

/// A socket whose first bytes were already read: they are read again first.
struct Prefixed {
    prefix: Bytes,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            if this.prefix.is_empty() {
                // Release the head's allocation.
                this.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Parsed {
        parse_first(text.as_bytes())
    }

    #[test]
    fn only_a_whole_bodiless_stream_request_is_taken() {
        let stream = "GET /api/v1/incidents/stream?after=3 HTTP/1.1\r\nhost: h\r\n\
                      cookie: pulsyon_session=x\r\nlast-event-id: 7\r\n\r\n";
        let Parsed::Stream(request) = parse(stream) else {
            panic!("not taken: {stream}")
        };
        assert_eq!(request.uri().path(), STREAM_PATH);
        assert_eq!(request.uri().query(), Some("after=3"));
        assert_eq!(request.headers()["last-event-id"], "7");
        assert_eq!(request.headers()["cookie"], "pulsyon_session=x");

        // Not whole yet: wait for more.
        assert!(matches!(
            parse("GET /api/v1/incidents/stream HTTP/1.1\r\nhost"),
            Parsed::Partial
        ));
        assert!(matches!(parse("GET /api/v1/inc"), Parsed::Partial));
        // Known to be another route from the request line alone.
        assert!(matches!(parse("GET / HTTP/1.1\r\nho"), Parsed::Other));
        for other in [
            "GET /api/v1/incidents HTTP/1.1\r\nhost: h\r\n\r\n",
            "POST /api/v1/incidents/stream HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n{}",
            "GET /api/v1/incidents/stream HTTP/1.0\r\nhost: h\r\n\r\n",
            "GET /api/v1/incidents/stream HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
            "GET /api/v1/incidents/stream HTTP/1.1\r\nhost: h\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "GET /api/v1/incidents/streams HTTP/1.1\r\nhost: h\r\n\r\n",
            "NOT HTTP AT ALL\r\n\r\n",
        ] {
            assert!(matches!(parse(other), Parsed::Other), "taken: {other:?}");
        }
    }

    #[test]
    fn the_answer_is_framed_as_chunks_on_a_closing_connection() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        let head = String::from_utf8(response_head(StatusCode::OK, &headers, false)).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("content-type: text/event-stream\r\n"));
        assert!(head.contains("transfer-encoding: chunked\r\n"));
        assert!(head.contains("\r\ndate: "));
        assert!(head.ends_with("connection: close\r\n\r\n"));
        assert!(!head.contains("content-length") && !head.contains("keep-alive"));
        let head =
            String::from_utf8(response_head(StatusCode::NO_CONTENT, &headers, true)).unwrap();
        assert!(!head.contains("transfer-encoding"));

        assert_eq!(chunk(b"retry: 1000\n\n"), b"d\r\nretry: 1000\n\n\r\n");
    }
}
