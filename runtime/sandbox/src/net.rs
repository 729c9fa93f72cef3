//! The network gate: every `wasi:http` request a flavor makes passes through
//! [`Gate::send_request`], the one place that decides where it may go.
//!
//! The rules, in the order they are applied:
//! 1. **The origin must be granted.** The destination is the request's URL (scheme,
//!    host, port — the port defaulting by scheme), never a header. It must equal an
//!    origin of the call's [`NetGrants`]: a `url` field of the component's configuration,
//!    its service connector's endpoint, or an origin of `flavor-info.origins` the user
//!    accepted. A URL with userinfo (`user@host`) is refused outright.
//! 2. **Per call bounds.** At most [`MAX_REQUESTS`] requests and [`MAX_OPEN`] open at
//!    once; at most [`MAX_RESPONSE_BYTES`] of response bodies in all; and everything —
//!    name lookup, connect, TLS, the first byte, every later byte — within what is left of
//!    the call's deadline. The epoch deadline cannot interrupt a guest blocked in a host
//!    call, so the gate ends a request that would outlive the call itself.
//! 3. **Addresses.** The host name is resolved once; the addresses flavors may never
//!    reach (link-local, cloud metadata, multicast, unspecified) are dropped always, and
//!    loopback and private addresses unless the user's URL named that literal address
//!    (or `localhost`, for loopback); IPv4 inside IPv6 (mapped, NAT64) is judged as the
//!    IPv4 it carries. The connection goes only to the addresses that passed.
//! 4. **No redirects.** The response goes back to the flavor as it came; a next hop is a
//!    new request, and passes this gate again.
//! 5. **Credentials stay here.** For an origin bound to a service connector, the gate
//!    removes whatever `Authorization` (and `x-amz-*` signing headers) the flavor set
//!    and adds the connector's own, signing after the flavor built the request
//!    ([`Credential::apply`]). The flavor never holds the credential.
//!
//! Every request, allowed or refused, is one line in the call's log (method, origin,
//! path without query, status, bytes, milliseconds) and in the daemon's log.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::host::{Journal, LogLine};
pub use strata_model::origin::{Origin, Reach, Scheme, canonical};

pub mod sigv4;

/// Requests one call may make (refused ones count too).
pub const MAX_REQUESTS: usize = 64;
/// Requests of one call open at once.
pub const MAX_OPEN: usize = 8;
/// Bytes of response bodies one call may read, all requests together.
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Addresses no flavor may ever reach, whatever its configuration says.
pub fn never_reachable(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_unspecified()
                || v4.is_link_local() // 169.254.0.0/16: cloud metadata lives here
                || v4.is_multicast()
                || v4.is_broadcast()
                || o[0] == 0
                || o[0] >= 240
                // Alibaba Cloud's and Oracle Cloud's metadata services.
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                || v4 == Ipv4Addr::new(192, 0, 0, 192)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                // AWS's metadata service over IPv6.
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// Loopback and private-network addresses: reachable only when the user's URL named
/// them.
pub fn private(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        }
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Whether `ip` may be reached through an origin of this reach.
pub fn allowed(ip: IpAddr, reach: Reach) -> bool {
    let ip = canonical(ip);
    if never_reachable(ip) {
        return false;
    }
    match reach {
        Reach::Literal(named) => ip == named,
        Reach::Loopback => ip.is_loopback(),
        Reach::Public => !private(ip),
    }
}

/// A credential the gate adds to requests for one origin.
#[derive(Clone)]
pub enum Credential {
    /// `Authorization: Bearer TOKEN`.
    Bearer { token: String },
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
    /// AWS Signature Version 4.
    Aws(sigv4::Keys),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::Bearer { .. } => "Bearer(********)",
            Credential::Basic { .. } => "Basic(********)",
            Credential::Aws(_) => "Aws(********)",
        })
    }
}

impl Credential {
    /// Replaces whatever credential the flavor put on `parts` with this one.
    pub fn apply(&self, parts: &mut http::request::Parts, now: std::time::SystemTime) {
        use base64::Engine as _;
        parts.headers.remove(http::header::AUTHORIZATION);
        match self {
            Credential::Bearer { token } => {
                if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
                    parts
                        .headers
                        .insert(http::header::AUTHORIZATION, sensitive(v));
                }
            }
            Credential::Basic { user, password } => {
                let b =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                if let Ok(v) = http::HeaderValue::from_str(&format!("Basic {b}")) {
                    parts
                        .headers
                        .insert(http::header::AUTHORIZATION, sensitive(v));
                }
            }
            Credential::Aws(keys) => sigv4::sign(parts, keys, now),
        }
    }

    /// The values to mask wherever strata shows what a call returned or logged.
    pub fn secrets(&self) -> Vec<String> {
        use base64::Engine as _;
        match self {
            Credential::Bearer { token } => vec![token.clone()],
            Credential::Basic { user, password } => vec![
                password.clone(),
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")),
            ],
            Credential::Aws(k) => {
                let mut v = vec![k.secret_access_key.clone()];
                v.extend(k.session_token.clone());
                v
            }
        }
    }
}

fn sensitive(mut v: http::HeaderValue) -> http::HeaderValue {
    v.set_sensitive(true);
    v
}

/// One origin a call may reach, and the credential added to its requests, if any.
#[derive(Clone, Debug)]
pub struct Granted {
    pub origin: Origin,
    /// Where the grant comes from, for the log: `field webhook`, `connector s3-dev`.
    pub from: String,
    pub credential: Option<Arc<Credential>>,
    /// The service connector the grant comes from, if any.
    pub connector: Option<String>,
}

/// What a call may reach over the network.
#[derive(Clone, Debug, Default)]
pub struct NetGrants {
    pub origins: Vec<Granted>,
}

impl NetGrants {
    fn find(&self, origin: &Origin) -> Option<&Granted> {
        self.origins.iter().find(|g| &g.origin == origin)
    }
}

/// What all requests of one call share: counters and the call's log.
struct Shared {
    requests: AtomicUsize,
    open: AtomicUsize,
    bytes: AtomicU64,
    journal: Arc<Mutex<Journal>>,
    flavor: String,
    /// Masked out of every line (a URL may carry a secret).
    secrets: Vec<String>,
}

/// The [`WasiHttpHooks`] of one call.
pub struct Gate {
    grants: Arc<NetGrants>,
    deadline: Instant,
    shared: Arc<Shared>,
}

impl Gate {
    pub fn new(
        grants: NetGrants,
        deadline: Instant,
        journal: Arc<Mutex<Journal>>,
        flavor: &str,
        secrets: Vec<String>,
    ) -> Gate {
        Gate {
            grants: Arc::new(grants),
            deadline,
            shared: Shared::new(journal, flavor, secrets),
        }
    }
}

impl Shared {
    fn new(journal: Arc<Mutex<Journal>>, flavor: &str, secrets: Vec<String>) -> Arc<Shared> {
        Arc::new(Shared {
            requests: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            journal,
            flavor: flavor.to_string(),
            secrets,
        })
    }

    fn log(&self, level: &'static str, message: String) {
        let message = crate::host::mask(message, &self.secrets);
        if level == "warn" {
            tracing::warn!(flavor = %self.flavor, "{message}");
        } else {
            tracing::info!(flavor = %self.flavor, "{message}");
        }
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_net(LogLine { level, message });
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// The request's path without its query (which may carry signatures or tokens), cut
/// at 256 bytes: a call's log lines from the gate are bounded by their number
/// ([`MAX_REQUESTS`]) and this.
fn path_of(uri: &http::Uri) -> String {
    const MAX_PATH: usize = 256;
    let p = uri.path();
    if p.is_empty() {
        return "/".into();
    }
    if p.len() <= MAX_PATH {
        return p.to_string();
    }
    let mut cut = MAX_PATH;
    while !p.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &p[..cut])
}

impl WasiHttpHooks for Gate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let shared = self.shared.clone();
        let deadline = self.deadline;
        let (parts, body) = request.into_parts();
        let method = parts.method.clone();
        let uri = parts.uri.clone();
        // Every refusal below takes the body, to drain it: see [`refuse`].
        let refuse = |target: &str, why: &str, error: HttpError, body: WasiBody| {
            refuse(&shared, &method, target, why, error, body, deadline)
        };
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            _ => {
                return refuse(
                    &uri.to_string(),
                    "only http and https are reachable",
                    HttpError::HttpRequestDenied,
                    body,
                );
            }
        };
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        let origin = match Origin::of_authority(scheme, authority) {
            Ok(o) => o,
            Err(e) => {
                // Userinfo may be a password: never logged.
                let shown = match authority.rsplit_once('@') {
                    Some((_, host)) => format!("{}://…@{host}", scheme.as_str()),
                    None => format!("{}://{authority}", scheme.as_str()),
                };
                return refuse(&shown, &e, HttpError::HttpRequestDenied, body);
            }
        };
        let target = format!("{origin}{}", path_of(&uri));
        if shared.requests.fetch_add(1, Ordering::Relaxed) >= MAX_REQUESTS {
            return refuse(
                &target,
                &format!(
                    "this call already made {MAX_REQUESTS} requests, the most one call may make"
                ),
                HttpError::ConnectionLimitReached,
                body,
            );
        }
        let Some(granted) = self.grants.find(&origin).cloned() else {
            let granted: Vec<String> = self
                .grants
                .origins
                .iter()
                .map(|g| g.origin.to_string())
                .collect();
            let why = if granted.is_empty() {
                format!("{origin} is not granted: this component's configuration grants no origin")
            } else {
                format!("{origin} is not granted (granted: {})", granted.join(", "))
            };
            return refuse(&target, &why, HttpError::HttpRequestDenied, body);
        };
        let shared = self.shared.clone();
        Box::new(async move {
            let started = Instant::now();
            let mut body = Some(body);
            let result = send(parts, &mut body, &granted, deadline, &shared).await;
            match result {
                Ok((response, io)) => {
                    let status = response.status().as_u16();
                    let (head, incoming) = response.into_parts();
                    let body = Gated {
                        next: None,
                        inner: incoming,
                        sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
                        read: 0,
                        shared: shared.clone(),
                        line: Some(Line {
                            method,
                            target,
                            status,
                            started,
                        }),
                        done: false,
                    };
                    Ok((http::Response::from_parts(head, body.boxed_unsync()), io))
                }
                Err((e, why)) => {
                    shared.log(
                        "warn",
                        format!(
                            "http {method} {target} failed after {} ms: {why}",
                            started.elapsed().as_millis()
                        ),
                    );
                    if let Some(body) = body {
                        drain(body, deadline).await;
                    }
                    Err(e)
                }
            }
        })
    }
}

/// Logs a refusal and answers `error` once the request's body is drained.
fn refuse(
    shared: &Arc<Shared>,
    method: &http::Method,
    target: &str,
    why: &str,
    error: HttpError,
    body: WasiBody,
    deadline: Instant,
) -> SendFuture {
    shared.log("warn", format!("http {method} {target} refused: {why}"));
    Box::new(async move {
        drain(body, deadline).await;
        Err(error)
    })
}

/// Reads and drops what the flavor writes of a request's body that will not be sent,
/// for at most a second (and never past the call's deadline): a guest that writes its
/// body after handing the request over (StarlingMonkey's `fetch` does) sees its
/// request fail, not its write, which some runtimes turn into a trap.
async fn drain(body: WasiBody, deadline: Instant) {
    let until = deadline.min(Instant::now() + Duration::from_secs(1));
    let mut body = body;
    let _ = tokio::time::timeout_at(until.into(), async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
}

/// Holds one of the call's [`MAX_OPEN`] connection slots until dropped.
struct OpenSlot(Arc<Shared>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

type Connection = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// Resolves, filters, connects, adds the credential and sends; answers the response
/// head with its body, and the connection's own future (to be polled alongside).
async fn send(
    mut parts: http::request::Parts,
    body: &mut Option<WasiBody>,
    granted: &Granted,
    deadline: Instant,
    shared: &Arc<Shared>,
) -> Result<(http::Response<hyper::body::Incoming>, Connection), (HttpError, String)> {
    if shared.open.fetch_add(1, Ordering::Relaxed) >= MAX_OPEN {
        shared.open.fetch_sub(1, Ordering::Relaxed);
        return Err((
            HttpError::ConnectionLimitReached,
            format!("{MAX_OPEN} requests of this call are already open"),
        ));
    }
    let slot = OpenSlot(shared.clone());
    let stream = connect(&granted.origin, deadline).await?;
    if let Some(c) = &granted.credential {
        c.apply(&mut parts, std::time::SystemTime::now());
    }
    // The origin form: the connection already goes to the origin.
    parts.uri = http::Uri::builder()
        .path_and_query(
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        )
        .build()
        .map_err(|e| (HttpError::HttpRequestUriInvalid, e.to_string()))?;
    let timed_out = || {
        (
            HttpError::ConnectionTimeout,
            "the call's deadline passed".to_string(),
        )
    };
    let (mut sender, conn) = tokio::time::timeout_at(
        deadline.into(),
        hyper::client::conn::http1::Builder::new()
            .handshake(wasmtime_wasi_http::io::TokioIo::new(stream)),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(|e| (HttpError::from(e), "the HTTP handshake failed".to_string()))?;
    let conn: Connection = Box::new(async move {
        let _slot = slot;
        match tokio::time::timeout_at(deadline.into(), conn).await {
            Ok(r) => r.map_err(HttpError::from),
            Err(_) => Err(HttpError::ConnectionReadTimeout),
        }
    });
    let mut conn = Box::into_pin(conn);
    let body = body
        .take()
        .expect("invariant: the body is taken once, here");
    let request = http::Request::from_parts(parts, body);
    let mut sending = std::pin::pin!(tokio::time::timeout_at(
        deadline.into(),
        sender.send_request(request)
    ));
    // The connection's future drives the I/O: poll it alongside until the head arrives.
    let mut conn_done: Option<Result<(), HttpError>> = None;
    let response = std::future::poll_fn(|cx| {
        if conn_done.is_none()
            && let Poll::Ready(r) = conn.as_mut().poll(cx)
        {
            conn_done = Some(r);
        }
        sending.as_mut().poll(cx)
    })
    .await
    .map_err(|_| {
        (
            HttpError::ConnectionReadTimeout,
            "no answer before the call's deadline".to_string(),
        )
    })?
    .map_err(|e| match conn_done.take() {
        // The connection ended first (its I/O reached the deadline, or failed): its
        // error says why, where the sender's says only that the connection is gone.
        Some(Err(conn_error)) => {
            let why = format!("the connection failed: {conn_error:?}");
            (conn_error, why)
        }
        _ => {
            let why = format!("{e}");
            (HttpError::from(e), why)
        }
    })?;
    let io: Connection = match conn_done {
        Some(r) => Box::new(async move { r }),
        None => Box::new(conn),
    };
    Ok((response, io))
}

/// A stream to `origin`: resolved once, filtered by [`allowed`], connected within the
/// deadline, wrapped in TLS for `https`.
async fn connect(
    origin: &Origin,
    deadline: Instant,
) -> Result<Box<dyn Stream>, (HttpError, String)> {
    let reach = origin.reach();
    let resolved: Vec<SocketAddr> = match reach {
        Reach::Literal(ip) => vec![SocketAddr::new(ip, origin.port)],
        _ => match tokio::time::timeout_at(
            deadline.into(),
            tokio::net::lookup_host((origin.host.as_str(), origin.port)),
        )
        .await
        {
            Err(_) => {
                return Err((
                    HttpError::DnsTimeout,
                    format!("looking up {} outlived the call's deadline", origin.host),
                ));
            }
            Ok(Err(e)) => {
                return Err((
                    HttpError::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    },
                    format!("{} does not resolve: {e}", origin.host),
                ));
            }
            Ok(Ok(addrs)) => addrs.collect(),
        },
    };
    let passed: Vec<SocketAddr> = resolved
        .iter()
        .filter(|a| allowed(a.ip(), reach))
        .map(|a| SocketAddr::new(canonical(a.ip()), a.port()))
        .collect();
    if passed.is_empty() {
        let shown: Vec<String> = resolved.iter().map(|a| a.ip().to_string()).collect();
        let why = match reach {
            Reach::Literal(_) => format!(
                "{} is an address flavors may never reach (link-local, cloud metadata, multicast)",
                origin.host
            ),
            Reach::Loopback => format!(
                "{} resolves to {}, none of them loopback",
                origin.host,
                shown.join(", ")
            ),
            Reach::Public => format!(
                "{} resolves to {}: flavors reach loopback, private and cloud-metadata addresses only when the URL names the address itself (or `localhost`)",
                origin.host,
                shown.join(", ")
            ),
        };
        return Err((HttpError::DestinationIpProhibited, why));
    }
    let tcp =
        match tokio::time::timeout_at(deadline.into(), tokio::net::TcpStream::connect(&passed[..]))
            .await
        {
            Err(_) => {
                return Err((
                    HttpError::ConnectionTimeout,
                    format!("connecting to {origin} outlived the call's deadline"),
                ));
            }
            Ok(Err(e)) => {
                return Err((
                    HttpError::ConnectionRefused,
                    format!("connecting to {origin}: {e}"),
                ));
            }
            Ok(Ok(s)) => s,
        };
    let _ = tcp.set_nodelay(true);
    if origin.scheme == Scheme::Http {
        return Ok(Box::new(tcp));
    }
    let name = match reach {
        Reach::Literal(ip) => rustls::pki_types::ServerName::from(ip),
        _ => rustls::pki_types::ServerName::try_from(origin.host.clone()).map_err(|e| {
            (
                HttpError::TlsProtocolError,
                format!("{} is not a TLS server name: {e}", origin.host),
            )
        })?,
    };
    let tls = tokio::time::timeout_at(deadline.into(), tls_connector().connect(name, tcp))
        .await
        .map_err(|_| {
            (
                HttpError::ConnectionTimeout,
                format!("the TLS handshake with {origin} outlived the call's deadline"),
            )
        })?
        .map_err(|e| {
            (
                HttpError::TlsCertificateError,
                format!("the TLS handshake with {origin} failed: {e}"),
            )
        })?;
    Ok(Box::new(tls))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("invariant: ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// What the log line of a request needs, written when its body ends (or is dropped).
struct Line {
    method: http::Method,
    target: String,
    status: u16,
    started: Instant,
}

/// A response body bounded by the call's deadline and its budget of response bytes;
/// writes the request's log line when it ends.
struct Gated {
    inner: hyper::body::Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    read: u64,
    shared: Arc<Shared>,
    line: Option<Line>,
    done: bool,
    /// What the inner body said after the data handed on with it (its end, an error,
    /// trailers), for the next poll.
    next: Option<Option<Result<Frame<Bytes>, hyper::Error>>>,
}

/// The most bytes of data frames handed to the flavor as one: the guest reads a frame
/// per host call, and hyper's frames are the socket's reads (~16 KiB), so frames that
/// are already there are joined up to this.
const COALESCE: usize = 1024 * 1024;

impl Gated {
    fn finish(&mut self, outcome: &str) {
        if let Some(l) = self.line.take() {
            let level = if outcome.is_empty() { "info" } else { "warn" };
            self.shared.log(
                level,
                format!(
                    "http {} {} → {} ({} B in {} ms){outcome}",
                    l.method,
                    l.target,
                    l.status,
                    self.read,
                    l.started.elapsed().as_millis()
                ),
            );
        }
    }
}

impl Gated {
    /// Counts `n` bytes of response body against the call's bound; past it, the body is
    /// cut.
    fn count(&mut self, n: u64) -> Result<(), HttpError> {
        self.read += n;
        let total = self.shared.bytes.fetch_add(n, Ordering::Relaxed) + n;
        if total > MAX_RESPONSE_BYTES {
            self.done = true;
            self.finish(&format!(
                "; cut: this call's responses passed {} MiB, the most one call may read",
                MAX_RESPONSE_BYTES >> 20
            ));
            return Err(HttpError::HttpResponseBodySize(Some(MAX_RESPONSE_BYTES)));
        }
        Ok(())
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.finish(if self.done {
            ""
        } else {
            "; body not read to its end"
        });
    }
}

impl Body for Gated {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let polled = match this.next.take() {
            Some(said) => Poll::Ready(said),
            None => Pin::new(&mut this.inner).poll_frame(cx),
        };
        match polled {
            Poll::Ready(None) => {
                this.done = true;
                this.finish("");
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                this.finish(&format!("; the body failed: {e}"));
                Poll::Ready(Some(Err(HttpError::from(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let data = match frame.into_data() {
                    Ok(data) => data,
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                };
                // Join the data frames already there, up to COALESCE bytes.
                if let Err(cut) = this.count(data.len() as u64) {
                    return Poll::Ready(Some(Err(cut)));
                }
                let mut joined: Option<bytes::BytesMut> = None;
                loop {
                    let held = joined.as_ref().map_or(data.len(), |j| j.len());
                    if held >= COALESCE {
                        break;
                    }
                    match Pin::new(&mut this.inner).poll_frame(cx) {
                        Poll::Ready(Some(Ok(more))) if more.is_data() => {
                            let more = more.into_data().unwrap_or_default();
                            if let Err(cut) = this.count(more.len() as u64) {
                                return Poll::Ready(Some(Err(cut)));
                            }
                            joined
                                .get_or_insert_with(|| {
                                    let mut j = bytes::BytesMut::with_capacity(COALESCE);
                                    j.extend_from_slice(&data);
                                    j
                                })
                                .extend_from_slice(&more);
                        }
                        Poll::Pending => break,
                        Poll::Ready(said) => {
                            this.next = Some(said);
                            break;
                        }
                    }
                }
                let out = joined.map_or(data, bytes::BytesMut::freeze);
                Poll::Ready(Some(Ok(Frame::data(out))))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    this.finish(
                        "; cut: the call's deadline passed while the body was still arriving",
                    );
                    Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}

/// A request strata itself makes with a connector's credential (`service-connector
/// verify`), under the same rules as a flavor's: answers the status, or why there is
/// none.
pub fn probe(
    method: &str,
    url: &str,
    credential: Option<Arc<Credential>>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let origin = Origin::of_url(url)?;
    let granted = Granted {
        origin,
        from: "probe".into(),
        credential,
        connector: None,
    };
    let deadline = Instant::now() + timeout;
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL strata can request: {e}"))?;
    let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::HOST, host)
        .header("x-amz-content-sha256", sigv4::EMPTY_SHA256)
        .body(
            http_body_util::Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|e| format!("`{url}` is not a URL strata can request: {e}"))?;
    let shared = Shared::new(
        Arc::new(Mutex::new(Journal::default())),
        "strata",
        Vec::new(),
    );
    wasmtime_wasi::runtime::in_tokio(async move {
        let (parts, body) = request.into_parts();
        let (response, io) = send(parts, &mut Some(body), &granted, deadline, &shared)
            .await
            .map_err(|(_, why)| why)?;
        let status = response.status().as_u16();
        let io = tokio::spawn(Box::into_pin(io));
        let body = tokio::time::timeout_at(
            deadline.into(),
            http_body_util::Limited::new(response.into_body(), 64 * 1024).collect(),
        )
        .await
        .map_err(|_| "the answer's body outlived the deadline".to_string())?
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
        io.abort();
        Ok((status, body))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(url: &str) -> Origin {
        Origin::of_url(url).unwrap()
    }

    #[test]
    fn metadata_and_link_local_addresses_are_never_reachable_however_they_are_spelled() {
        for ip in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::169.254.169.254",
            "fd00:ec2::254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "100.100.100.200",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(never_reachable(ip), "{ip}");
            for reach in [
                Reach::Literal(canonical(ip)),
                Reach::Loopback,
                Reach::Public,
            ] {
                assert!(!allowed(ip, reach), "{ip} allowed with {reach:?}");
            }
        }
    }

    #[test]
    fn private_addresses_are_reached_only_when_the_url_names_them() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "::1",
            "fd12::1",
            "100.64.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(private(ip), "{ip}");
            assert!(!allowed(ip, Reach::Public), "{ip} reached through a name");
            assert!(allowed(ip, Reach::Literal(canonical(ip))), "{ip} named");
        }
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(allowed(lo, Reach::Loopback));
        assert!(!allowed("10.0.0.1".parse().unwrap(), Reach::Loopback));
        assert!(!allowed("127.0.0.2".parse().unwrap(), Reach::Literal(lo)));
        assert!(allowed("93.184.215.14".parse().unwrap(), Reach::Public));
        assert_eq!(o("http://localhost:1").reach(), Reach::Loopback);
        assert_eq!(o("http://[::ffff:127.0.0.1]:1").reach(), Reach::Literal(lo));
        assert_eq!(o("http://example.com").reach(), Reach::Public);
    }
}
