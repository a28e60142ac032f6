//! One HTTP/1.1 connection of the HTTP port.
//!
//! The plain requests a browser sends — a head, then no body or one of a
//! stated length (at most `MAX_BODY`) — are read and answered here, one after
//! another on a kept-alive connection: the request's head is parsed, the
//! axum router answers it (every layer applies: sessions, security headers,
//! compression, the access log), and the answer goes to the socket as it
//! comes, with a length when it is known and in chunks otherwise. Between
//! requests, and between the events of an event stream, the connection
//! holds no buffer: an idle browser's stream costs its feed's state and its
//! socket. (hyper would hold a read and a write buffer, 8 KiB each, for the
//! connection's life: docs/perf/dashboard.md, ADR 0017.)
//!
//! Anything else — HTTP/1.0, `Expect`, `Upgrade`, a chunked or larger body,
//! a malformed or oversized head — goes to hyper with the bytes already
//! read, and hyper serves the connection to its end (answering, say, 400).
//! A connection is closed if its first request's head has not come within
//! `--first-request-timeout`.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes, HttpBody},
    http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header},
};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Marks a request this module serves (a request extension).
#[derive(Debug, Clone, Copy)]
pub(super) struct Direct;

/// A longer head is hyper's to refuse.
const MAX_HEAD: usize = 16 * 1024;
/// Headers a request may carry here.
const MAX_HEADERS: usize = 64;
/// A larger body (an OTLP export, say) is hyper's to stream.
const MAX_BODY: usize = 256 * 1024;
/// What a connection reads ahead while it answers (pipelined requests).
const MAX_AHEAD: usize = MAX_HEAD + MAX_BODY;

/// Serves one accepted connection until it ends or `stop` is cancelled.
pub(super) async fn serve(
    stream: TcpStream,
    router: Router,
    first_request: Duration,
    stop: CancellationToken,
) {
    let mut conn = Conn {
        stream,
        ahead: Vec::new(),
    };
    let mut first = true;
    loop {
        let read = async {
            if first {
                tokio::time::timeout(first_request, conn.next_request())
                    .await
                    .unwrap_or(Next::Gone)
            } else {
                conn.next_request().await
            }
        };
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            next = read => next,
        };
        first = false;
        match next {
            Next::Request {
                request,
                keep_alive,
            } => {
                // Boxed, as hyper's connection below: the task's own state
                // stays small whichever way the connection goes.
                if !Box::pin(conn.answer(&router, *request, keep_alive, &stop)).await {
                    return;
                }
            }
            Next::Hyper => {
                let io = Prefixed {
                    prefix: Bytes::from(std::mem::take(&mut conn.ahead)),
                    io: conn.stream,
                };
                Box::pin(hyper_serves(io, router, stop)).await;
                return;
            }
            Next::Gone => return,
        }
    }
}

/// What comes next on a connection.
enum Next {
    /// A request to answer here; whether the connection stays open after.
    Request {
        request: Box<Request<Body>>,
        keep_alive: bool,
    },
    /// The rest of the connection is hyper's (the bytes read so far included).
    Hyper,
    /// The peer left, or sent no whole head in time.
    Gone,
}

struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet used (empty, without an allocation, when idle).
    ahead: Vec<u8>,
}

impl Conn {
    /// Reads the next request: its head, then its body.
    async fn next_request(&mut self) -> Next {
        loop {
            match parse(&self.ahead) {
                Parsed::Partial if self.ahead.len() >= MAX_HEAD => return Next::Hyper,
                Parsed::Partial => {}
                Parsed::Other => return Next::Hyper,
                Parsed::Request {
                    request,
                    head_len,
                    body_len,
                    keep_alive,
                } => {
                    while self.ahead.len() < head_len + body_len {
                        if !self.read_more().await {
                            return Next::Gone;
                        }
                    }
                    let body = Bytes::copy_from_slice(&self.ahead[head_len..head_len + body_len]);
                    self.consume(head_len + body_len);
                    return Next::Request {
                        request: Box::new(request.map(|()| Body::from(body))),
                        keep_alive,
                    };
                }
            }
            if !self.read_more().await {
                return Next::Gone;
            }
        }
    }

    /// Reads what the socket has; false when the peer has closed it.
    async fn read_more(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        if self.ahead.capacity() == 0 {
            self.ahead.reserve(1024);
        }
        matches!(self.stream.read_buf(&mut self.ahead).await, Ok(n) if n > 0)
    }

    fn consume(&mut self, n: usize) {
        self.ahead.drain(..n);
        if self.ahead.is_empty() {
            // An idle connection holds no buffer.
            self.ahead = Vec::new();
        }
    }

    /// Answers a request; false when the connection is to close.
    async fn answer(
        &mut self,
        router: &Router,
        request: Request<Body>,
        keep_alive: bool,
        stop: &CancellationToken,
    ) -> bool {
        let is_head = request.method() == Method::HEAD;
        let Ok(response) = router.clone().oneshot(request).await;
        let (parts, mut body) = response.into_parts();
        let bodiless = is_head
            || parts.status.is_informational()
            || parts.status == StatusCode::NO_CONTENT
            || parts.status == StatusCode::NOT_MODIFIED;
        let length = if bodiless {
            None
        } else {
            HttpBody::size_hint(&body).exact()
        };
        let framing = match (bodiless, length) {
            (true, _) => Framing::None,
            (false, Some(n)) => Framing::Length(n),
            (false, None) => Framing::Chunked,
        };
        let mut out = response_head(parts.status, &parts.headers, framing, keep_alive, is_head);
        if bodiless || length == Some(0) {
            return self.stream.write_all(&out).await.is_ok() && keep_alive;
        }
        loop {
            tokio::select! {
                // The server stops: the answer goes no further.
                _ = stop.cancelled() => return false,
                // A peer that leaves mid-answer (an event stream's browser
                // closing its tab) ends it at once.
                left = watch_peer(&self.stream, &mut self.ahead) => if left { return false },
                frame = body.frame() => match frame {
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else { continue };
                        if data.is_empty() {
                            continue;
                        }
                        match framing {
                            Framing::Chunked => chunk(&mut out, &data),
                            _ => out.extend_from_slice(&data),
                        }
                        // Sent as it comes; the buffer is let go between frames.
                        if self.stream.write_all(&std::mem::take(&mut out)).await.is_err() {
                            return false;
                        }
                    }
                    Some(Err(err)) => {
                        // Cut short: the client sees an unfinished answer.
                        tracing::debug!(error = %err, "http answer body failed");
                        return false;
                    }
                    None => {
                        if framing == Framing::Chunked {
                            out.extend_from_slice(b"0\r\n\r\n");
                        }
                        return (out.is_empty() || self.stream.write_all(&out).await.is_ok())
                            && keep_alive;
                    }
                },
            }
        }
    }
}

/// Waits for the peer while an answer is sent: bytes it sends (a pipelined
/// request) are kept in `ahead`, up to `MAX_AHEAD`; true once it has closed
/// the connection (or the socket failed). Never resolves otherwise.
async fn watch_peer(stream: &TcpStream, ahead: &mut Vec<u8>) -> bool {
    let mut scratch = [0u8; 1024];
    loop {
        if ahead.len() >= MAX_AHEAD {
            // Enough read ahead: the peer waits for its answers.
            return std::future::pending().await;
        }
        if stream.readable().await.is_err() {
            return true;
        }
        match stream.try_read(&mut scratch) {
            Ok(0) => return true,
            Ok(n) => ahead.extend_from_slice(&scratch[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return true,
        }
    }
}

/// A request's head as far as it has arrived.
#[derive(Debug)]
enum Parsed {
    /// Not whole yet.
    Partial,
    /// A whole head this module answers: the request without its body, the
    /// head's length, the body's, and whether the connection stays open.
    Request {
        request: Box<Request<()>>,
        head_len: usize,
        body_len: usize,
        keep_alive: bool,
    },
    /// For hyper's rules (an older HTTP, a body of unstated length or a
    /// large one, `Expect`, `Upgrade`, a malformed head).
    Other,
}

fn parse(bytes: &[u8]) -> Parsed {
    if bytes.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some(method), Some(path), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return Parsed::Other;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::Other;
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .version(Version::HTTP_11)
        .extension(Direct);
    let mut body_len = None;
    let mut keep_alive = true;
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::Other;
        };
        if name == header::CONTENT_LENGTH {
            let len = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            match (len, body_len) {
                (Some(len), None) if len <= MAX_BODY => body_len = Some(len),
                _ => return Parsed::Other,
            }
        } else if name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || name == header::UPGRADE
        {
            return Parsed::Other;
        } else if name == header::CONNECTION
            && value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
        {
            keep_alive = false;
        }
        request = request.header(name, value);
    }
    match request.body(()) {
        Ok(request) => Parsed::Request {
            request: Box::new(request),
            head_len,
            body_len: body_len.unwrap_or(0),
            keep_alive,
        },
        Err(_) => Parsed::Other,
    }
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// The answer's status line and headers: the router's, less the framing
/// ones, with this connection's framing, a date, and `connection: close`
/// when it closes after.
fn response_head(
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    keep_alive: bool,
    is_head: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let framing_header = name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || name.as_str() == "keep-alive"
            // A HEAD answer keeps the length the GET would have.
            || (name == header::CONTENT_LENGTH && !is_head);
        if framing_header {
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
    match framing {
        Framing::None => {}
        Framing::Length(n) => out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends one chunk of a chunked body.
fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
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
                // Release the allocation.
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

    fn parse_str(text: &str) -> Parsed {
        parse(text.as_bytes())
    }

    #[test]
    fn plain_requests_are_taken_and_the_rest_left_to_hyper() {
        let stream = "GET /api/v1/incidents/stream?after=3 HTTP/1.1\r\nhost: h\r\n\
                      cookie: pulsyon_session=x\r\nlast-event-id: 7\r\n\r\nGET / HTTP/1.1\r\n";
        let Parsed::Request {
            request,
            head_len,
            body_len,
            keep_alive,
        } = parse_str(stream)
        else {
            panic!("not taken: {stream}")
        };
        assert_eq!(request.uri().path(), "/api/v1/incidents/stream");
        assert_eq!(request.uri().query(), Some("after=3"));
        assert_eq!(request.headers()["last-event-id"], "7");
        assert_eq!(request.headers()["cookie"], "pulsyon_session=x");
        // The pipelined request after it is left for the next read.
        assert_eq!(&stream[head_len..], "GET / HTTP/1.1\r\n");
        assert_eq!((body_len, keep_alive), (0, true));

        let login = "POST /api/v1/session HTTP/1.1\r\ncontent-type: application/json\r\n\
                     content-length: 2\r\nconnection: close\r\n\r\n{}";
        let Parsed::Request {
            request,
            head_len,
            body_len,
            keep_alive,
        } = parse_str(login)
        else {
            panic!("not taken: {login}")
        };
        assert_eq!(request.method(), Method::POST);
        assert_eq!((&login[head_len..], body_len, keep_alive), ("{}", 2, false));

        for partial in [
            "",
            "GET /api/v1/inc",
            "GET /api/v1/incidents/stream HTTP/1.1\r\nhost",
        ] {
            assert!(matches!(parse_str(partial), Parsed::Partial), "{partial:?}");
        }
        for other in [
            "GET /api/v1/incidents/stream HTTP/1.0\r\nhost: h\r\n\r\n",
            "POST /v1/traces HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST /v1/traces HTTP/1.1\r\ncontent-length: 99999999\r\n\r\n",
            "POST /v1/traces HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n",
            "POST /v1/traces HTTP/1.1\r\ncontent-length: x\r\n\r\n",
            "POST /v1/traces HTTP/1.1\r\ncontent-length: 9000\r\nexpect: 100-continue\r\n\r\n",
            "GET /chat HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            "NOT HTTP AT ALL\r\n\r\n",
        ] {
            assert!(
                matches!(parse_str(other), Parsed::Other),
                "taken: {other:?}"
            );
        }
    }

    #[test]
    fn answers_are_framed_by_length_or_in_chunks() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        let text = |framing, keep_alive, is_head| {
            String::from_utf8(response_head(
                StatusCode::OK,
                &headers,
                framing,
                keep_alive,
                is_head,
            ))
            .unwrap()
        };
        let head = text(Framing::Chunked, true, false);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("content-type: text/event-stream\r\n"));
        assert!(head.contains("transfer-encoding: chunked\r\n"));
        assert!(head.contains("\r\ndate: "));
        assert!(head.ends_with("\r\n\r\n"));
        assert!(!head.contains("content-length") && !head.contains("connection"));
        let head = text(Framing::Length(5), false, false);
        assert!(head.contains("content-length: 5\r\n") && !head.contains("12"));
        assert!(head.ends_with("connection: close\r\n\r\n"));
        // HEAD: the length the GET would have, and no body framing.
        let head = text(Framing::None, true, true);
        assert!(head.contains("content-length: 12\r\n") && !head.contains("chunked"));

        let mut out = Vec::new();
        chunk(&mut out, b"retry: 1000\n\n");
        assert_eq!(out, b"d\r\nretry: 1000\n\n\r\n");
    }
}
