//! The daemon's connections, below axum: its own accept loop on hyper's HTTP/1 server,
//! so that a client cannot hold the daemon's memory or its sockets by being slow.
//!
//! - At most [`MAX_CONNECTIONS`] are served at once. One past the cap is answered `503`
//!   (JSON, `Retry-After: 1`) and closed, so the daemon keeps serving the others.
//! - A request's head (request line and headers) must arrive whole within
//!   [`HEADER_TIMEOUT`] of the moment the daemon starts waiting for it; the same clock
//!   closes a keep-alive connection left idle. A body must arrive within
//!   [`BODY_TIMEOUT`] (`server::buffered` answers `408`).
//! - A head may be at most [`MAX_HEAD`] bytes (`431`), which also bounds what a
//!   connection buffers while it reads one.
//! - What hyper answers by itself (a malformed request line, a header that is not
//!   `Name: value`, a head over the limit) is rewritten into the API's JSON error shape
//!   on its way out: hyper writes those heads with no body and no hook, so [`Conn`]
//!   replaces them. It looks for one only where no answer of the API can be: at the
//!   start of a write made when every answer so far has been handed to the socket and
//!   flushed, and no request is being answered ([`Exchange`]). An answer's body (an
//!   artifact's bytes, a log) is never searched, so it cannot forge a second answer.
//! - When the connections of a burst have closed, the allocator gives their memory back
//!   to the system (`malloc_trim`), so the daemon's RSS comes back down.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower_service::Service as _;

use super::server::log;

/// Connections served at once; more are answered `503` and closed.
pub const MAX_CONNECTIONS: usize = 512;

/// How long a request's head may take to arrive, counted from when the daemon starts
/// waiting for it (so also how long a keep-alive connection may stay idle).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request's body may take to arrive, once its head has.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request head (request line and headers) read, in bytes.
pub const MAX_HEAD: usize = 64 * 1024;

/// How long a connection answered with an error it did not finish sending is read and
/// discarded before it is closed, so that the client reads the answer rather than a
/// reset (a socket closed with unread data sends RST, which may discard the answer).
const LINGER: Duration = Duration::from_secs(2);

/// Trim the allocator once this many connections have come and gone since the last
/// trim and no more than [`TRIM_BELOW`] are open (checked each [`TRIM_EVERY`]).
const TRIM_AFTER: usize = 64;
const TRIM_BELOW: usize = 8;
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `stop` turns true; then stops accepting, lets every
/// connection finish the request it is in (idle ones close at once), and returns when
/// all have closed.
/// With `tls`, every connection is a TLS one (a team server's `--tls-cert`), its
/// handshake bounded by [`HEADER_TIMEOUT`] as a head is.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let memory = Arc::new(Trim::default());
    let trimming = tokio::spawn(memory.clone().run());
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin, and say so now and then.
                    if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        log(&format!("cannot accept a connection: {e}"));
                        last_accept_error = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let open = memory.opened();
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let _open = open;
                refuse(stream).await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let exchange = Arc::new(Exchange::default());
        let service = Counted {
            app: app.clone(),
            exchange: exchange.clone(),
        };
        let stop = stop.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _open = open;
            match tls {
                None => http1(Conn::new(stream, exchange), service, stop).await,
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await
                    {
                        http1(Conn::new(stream, exchange), service, stop).await;
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = slots.acquire_many(MAX_CONNECTIONS as u32).await;
    trimming.abort();
}

/// Serves one connection with hyper's HTTP/1 until it closes, or `stop` (then the request
/// under way finishes first).
async fn http1<S>(io: Conn<S>, service: Counted, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD);
    let conn = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// What one connection's [`Conn`] must know of the requests above it: how many are
/// being answered (the router called, the answer's body not yet dropped by hyper).
#[derive(Default)]
struct Exchange {
    answering: AtomicUsize,
}

/// One request being answered, counted in [`Exchange::answering`] until dropped: it
/// lives in the router's future, then in the answer's body, which hyper drops once it
/// has put the body's last bytes in its write buffer.
struct Answering(Arc<Exchange>);

impl Answering {
    fn new(exchange: &Arc<Exchange>) -> Answering {
        exchange.answering.fetch_add(1, Ordering::SeqCst);
        Answering(exchange.clone())
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The router, as hyper calls it, with each request counted while it is answered.
#[derive(Clone)]
struct Counted {
    app: Router,
    exchange: Arc<Exchange>,
}

impl hyper::service::Service<http::Request<Incoming>> for Counted {
    type Response = http::Response<CountedBody>;
    type Error = std::convert::Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let answering = Answering::new(&self.exchange);
        // A router is always ready (its `poll_ready` is `Ready(Ok)`), so it is called
        // straight away, as hyper-util's own adapter does.
        let answer = self.app.clone().call(request.map(axum::body::Body::new));
        Box::pin(async move {
            let answer = answer.await?;
            Ok(answer.map(|body| CountedBody {
                body,
                _answering: answering,
            }))
        })
    }
}

/// An answer's body, holding its request's [`Answering`] until hyper drops it.
struct CountedBody {
    body: axum::body::Body,
    _answering: Answering,
}

impl Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Returns once `stop` is true (without holding its lock across an await).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Counts the connections open (served or being refused), and those closed since the
/// allocator was last trimmed.
#[derive(Default)]
struct Trim {
    open: AtomicUsize,
    closed: AtomicUsize,
}

/// One open connection, counted until dropped.
struct Open(Arc<Trim>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.closed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Trim {
    fn opened(self: &Arc<Self>) -> Open {
        self.open.fetch_add(1, Ordering::Relaxed);
        Open(self.clone())
    }

    /// Trims once a burst is over: many connections closed, few still open.
    async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        loop {
            tick.tick().await;
            if self.open.load(Ordering::Relaxed) <= TRIM_BELOW
                && self.closed.load(Ordering::Relaxed) >= TRIM_AFTER
            {
                self.closed.store(0, Ordering::Relaxed);
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    }
}

/// Hands memory the allocator keeps but does not use back to the system. glibc keeps
/// freed memory in its arenas (one per thread that allocated), so a burst of
/// connections would otherwise leave the daemon's RSS at its peak.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's free memory; it is
    // safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Answers a connection past the cap with `503` and closes it.
async fn refuse(mut stream: TcpStream) {
    let answer = response(
        503,
        "Service Unavailable",
        "busy",
        &format!("the daemon is serving {MAX_CONNECTIONS} connections, its most"),
        "try again in a moment; a program that keeps connections open should close those it does not use",
        "retry-after: 1\r\n",
    );
    let _ = tokio::time::timeout(LINGER, async {
        stream.write_all(&answer).await?;
        linger(&mut stream).await
    })
    .await;
}

/// Sends FIN, then reads and discards what the client still sends until it closes (or
/// [`LINGER`] passes), so that it reads the answer.
async fn linger(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.shutdown().await?;
    let mut sink = [0u8; 512];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

/// A whole HTTP/1.1 response with the API's JSON error body, which closes the connection.
fn response(
    status: u16,
    reason: &str,
    code: &str,
    message: &str,
    hint: &str,
    extra: &str,
) -> Vec<u8> {
    let body = serde_json::json!({ "error": { "code": code, "message": message, "hint": hint } })
        .to_string();
    let hardening: String = crate::dashboard::HARDENING
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{hardening}{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The answers hyper writes by itself when it cannot parse a request: a head with no
/// body (`content-length: 0`), and the JSON error that replaces each.
fn replacement(status: &[u8]) -> Option<Vec<u8>> {
    let (status, reason, code, message, hint) = match status {
        b"400" => (
            400,
            "Bad Request",
            "bad_request",
            "the request is not valid HTTP/1.1: its request line is malformed, or a header line is not `Name: value`",
            "send `METHOD /path HTTP/1.1`, then one `Name: value` header per line, each line ending in CRLF, then an empty line",
        ),
        b"431" => (
            431,
            "Request Header Fields Too Large",
            "too_large",
            "the request's head (request line and headers) is over 64 KiB",
            "send smaller headers; the daemon reads at most 64 KiB of them",
        ),
        b"414" => (
            414,
            "URI Too Long",
            "too_large",
            "the request's URI is too long",
            "send a shorter path and query",
        ),
        _ => return None,
    };
    Some(response(status, reason, code, message, hint, ""))
}

/// If `out` (bytes on their way to the client, written when no answer is under way:
/// see [`Conn`]) is a head hyper wrote by itself, the JSON error that replaces it. Such a
/// head is `HTTP/1.1 4xx …` with `content-length: 0` and no `content-type`, at the start
/// of the write.
fn rewrite(out: &[u8]) -> Option<Vec<u8>> {
    if !out.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let end = find(out, b"\r\n\r\n")? + 4;
    let head = out[..end].to_ascii_lowercase();
    if find(&head, b"\r\ncontent-length: 0\r\n").is_none()
        || find(&head, b"\r\ncontent-type:").is_some()
    {
        return None;
    }
    let json = replacement(&out[9..12])?;
    let mut fixed = Vec::with_capacity(out.len() + json.len());
    fixed.extend_from_slice(&json);
    fixed.extend_from_slice(&out[end..]);
    Some(fixed)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A connection as hyper sees it: the socket, with hyper's own error answers rewritten
/// on their way out (see [`rewrite`]) and, after one, a lingering close.
///
/// hyper writes an answer of its own only for a request it could not parse, so never
/// while the router answers one. A write is looked at only when `idle`: the last flush
/// began with no request being answered ([`Exchange`]), so every byte of every answer
/// had been handed over already (hyper empties its buffer into the socket before it
/// flushes the socket), and nothing has been written since. Any other write, a body's
/// bytes above all, goes out as it is.
struct Conn<S> {
    tcp: S,
    exchange: Arc<Exchange>,
    idle: bool,
    /// A rewritten answer not yet sent, and how much of it has been.
    pending: Vec<u8>,
    sent: usize,
    /// Whether an answer was rewritten: the connection then ends with a lingering close.
    rewrote: bool,
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(tcp: S, exchange: Arc<Exchange>) -> Conn<S> {
        Conn {
            tcp,
            exchange,
            idle: true,
            pending: Vec::new(),
            sent: 0,
            rewrote: false,
            linger: None,
        }
    }

    /// Sends what is pending.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Reads and discards until the client closes or [`LINGER`] passes.
    fn discard(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self
            .linger
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let mut sink = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut sink);
            match Pin::new(&mut self.tcp).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        let quiet = this.idle && this.exchange.answering.load(Ordering::SeqCst) == 0;
        this.idle = false;
        if let Some(fixed) = quiet.then(|| rewrite(buf)).flatten() {
            // Taken whole, so that a head is never split between two writes.
            this.pending = fixed;
            this.rewrote = true;
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let quiet = this.exchange.answering.load(Ordering::SeqCst) == 0;
        ready!(this.drain(cx))?;
        ready!(Pin::new(&mut this.tcp).poll_flush(cx))?;
        if quiet {
            this.idle = true;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        if this.linger.is_none() {
            ready!(Pin::new(&mut this.tcp).poll_shutdown(cx))?;
        }
        if this.rewrote {
            ready!(this.discard(cx));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";

    #[test]
    fn hypers_own_error_heads_become_json_and_nothing_else_changes() {
        let fixed = String::from_utf8(rewrite(HYPER_400).expect("rewritten")).unwrap();
        assert!(fixed.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{fixed}");
        assert!(
            fixed.contains("content-security-policy: default-src 'none'"),
            "{fixed}"
        );
        let body = fixed.split_once("\r\n\r\n").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "bad_request");
        let too_large =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        let fixed = String::from_utf8(rewrite(too_large).unwrap()).unwrap();
        assert!(fixed.contains("\"too_large\""), "{fixed}");
        // Only at the start of a write: after other bytes, nothing is searched.
        let mut both = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        both.extend_from_slice(HYPER_400);
        assert!(rewrite(&both).is_none());
        // The API's own errors, and anything else, pass untouched.
        for other in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"a\":\"b\"}",
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"{\"out\":\"HTTP/1.1 400 Bad Request\\r\\ncontent-length: 0\\r\\n\\r\\n\"}",
        ] {
            assert!(rewrite(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }

    /// What `conn` sends for `writes`, each `(bytes, answering)`: written while that many
    /// requests are being answered, then flushed.
    async fn sent(writes: &[(&[u8], usize)]) -> Vec<u8> {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let exchange = Arc::new(Exchange::default());
        let mut conn = Conn::new(near, exchange.clone());
        for (bytes, answering) in writes {
            let held: Vec<Answering> = (0..*answering).map(|_| Answering::new(&exchange)).collect();
            conn.write_all(bytes).await.unwrap();
            conn.flush().await.unwrap();
            drop(held);
        }
        drop(conn);
        let mut out = Vec::new();
        far.read_to_end(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn an_answers_body_is_never_rewritten_whatever_it_holds() {
        // An artifact whose bytes are hyper's 400 head, then a forged answer: sent as
        // they are, in the write that begins the body and in one on its own.
        let forged = [HYPER_400, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"].concat();
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n";
        let out = sent(&[(head, 1), (&forged, 1)]).await;
        assert_eq!(out, [&head[..], &forged].concat());
        // The body's last write, flushed after its answer ended, is not looked at either:
        // the flush that ends an answer is what makes the next write a candidate.
        let out = sent(&[(head, 1), (&forged, 0)]).await;
        assert_eq!(out, [&head[..], &forged].concat());
    }

    #[tokio::test]
    async fn hypers_answer_to_a_request_it_could_not_parse_becomes_json() {
        // First on a connection, or after an answer was flushed whole.
        let out = sent(&[(HYPER_400, 0)]).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 400 Bad Request"), "{text}");
        assert!(text.contains("\"bad_request\""), "{text}");
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let out = sent(&[(answer, 1), (b"", 0), (HYPER_400, 0)]).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains("\"bad_request\""), "{text}");
    }
}
