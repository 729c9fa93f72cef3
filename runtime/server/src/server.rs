//! The daemon's HTTP server (axum on tokio): loopback only, a bearer token on every
//! route but `/health` and the dashboard's pages, a `Host` check against DNS rebinding, and a shutdown that lets
//! calls under way finish within a grace period and records the rest as interrupted.
//!
//! Why axum: the routes are many and typed (JSON bodies, path parameters, errors as
//! JSON), which is what axum adds over hyper; it runs on the same tokio and hyper, so
//! the cost per request is hyper's. Connections are accepted and bounded (a cap,
//! timeouts, the size of a head) in [`super::connections`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::DaemonFile;
use super::routes::{self, ApiError, Operations};
pub use crate::api::Info;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::model::now_ms;
use crate::service::Service;

/// What every request handler shares.
pub struct Daemon {
    pub svc: Service,
    auth: Auth,
    address: String,
    started: Instant,
    requests: AtomicU64,
    /// REST lifecycle operations that run after their request has been answered.
    pub ops: Operations,
    /// How many of those are running now; shutdown waits for them.
    pub busy: AtomicUsize,
    /// Set to `true` to stop: by SIGTERM, Ctrl-C or `POST /api/v1/daemon/stop`.
    pub stop: tokio::sync::watch::Sender<bool>,
    /// The dashboard's one-time links and sessions (a local daemon's).
    pub dash: super::dashboard::Sessions,
}

pub type Shared = Arc<Daemon>;

/// Who may call: a local daemon's one token (in `daemon.json`), or a team server's users.
enum Auth {
    Daemon(String),
    Team,
}

/// How a team server node is started (`strata server start`).
pub struct TeamOptions {
    /// `mysql://USER:PASS@HOST:PORT/DB`.
    pub database: String,
    /// Where to listen.
    pub bind: std::net::SocketAddr,
    /// This node's own files: compiled flavors, runs' working directories, the data
    /// directories of components.
    pub data_dir: std::path::PathBuf,
    /// The key secrets are sealed with: the same on every node.
    pub secret_key: [u8; 32],
    /// This node's name in the audit log (default: host name and port).
    pub node: String,
    pub grace: Duration,
    /// Serve HTTPS with this certificate chain and private key (PEM files).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// The TLS side of a team server: its certificate chain and key, read from PEM files.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &std::path::Path, e: String| {
        Error::invalid(
            format!("{} cannot be read as PEM: {e}", what.display()),
            "give --tls-cert a PEM certificate chain (server first) and --tls-key its PEM private key",
        )
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(cert, "it holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Internal(format!("TLS versions: {e}")))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| {
        Error::invalid(
            format!("the TLS certificate and key do not go together: {e}"),
            "give --tls-key the private key of the first certificate in --tls-cert",
        )
    })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Daemon {
    /// Whether this is a team server node (else a local daemon).
    pub fn is_team(&self) -> bool {
        matches!(self.auth, Auth::Team)
    }

    /// The address it listens on, `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn info(&self) -> Info {
        Info {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            home: self.svc.home().root().display().to_string(),
            address: self.address.clone(),
            uptime_s: self.started.elapsed().as_secs(),
            requests: self.requests.load(Ordering::Relaxed),
            rss_kib: rss_kib(),
            in_flight: self.svc.in_flight(),
        }
    }
}

/// This process's resident memory, from /proc.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A line for the daemon's log, at level info. It may quote a flavor or a client, so
/// control characters are made visible and it stays one line.
pub fn log(line: &str) {
    tracing::info!("{}", crate::model::text::visible(line));
}

/// Sends the daemon's events to its stderr (its terminal, or `daemon.log` for a daemon
/// started in the background), one line each: a UTC timestamp
/// (`2026-11-23T19:05:01.123456Z`), the level, the message. `RUST_LOG` filters them
/// (`RUST_LOG=debug`, `RUST_LOG=strata=warn`); info when unset or unreadable. Once per
/// process: a second call (a test serving twice) keeps the first.
fn init_log() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Opens the home and serves it until SIGTERM or Ctrl-C.
pub fn serve(home: Home, port: u16, grace: Duration) -> Result<()> {
    init_log();
    // Held until the process exits (which `std::process::exit` below does without
    // unwinding): taken before the store is opened, so a second daemon is refused at once.
    let Some(_lock) = super::DaemonLock::take(&home)? else {
        return Err(Error::exists(
            format!("a strata daemon for {}", home.root().display()),
            "one daemon serves a home; stop it first with `strata daemon stop`, or use it: every strata command goes through it",
        ));
    };
    let svc = Service::open_with(home.clone(), true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the daemon's runtime", e))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let code = rt.block_on(run(svc, home, addr, grace, Mode::Daemon))?;
    // Lifecycle calls still running past the grace period were recorded as interrupted;
    // leave without waiting for their threads.
    std::process::exit(code)
}

/// Starts a team server node: the catalog in a MySQL/MariaDB database (migrated, see
/// `strata server migrate`), users with tokens and roles, until SIGTERM or Ctrl-C.
pub fn serve_team(opts: TeamOptions) -> Result<()> {
    init_log();
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let node_home = Home::at(&opts.data_dir);
    let svc = Service::open_team(
        node_home.clone(),
        &opts.database,
        crate::service::Team {
            node: opts.node.clone(),
            secret_key: Some(opts.secret_key),
            admin_only: false,
            stores: std::path::PathBuf::new(),
        },
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the server's runtime", e))?;
    log(&format!(
        "strata server node `{}` on {}",
        opts.node,
        crate::store::mysql::redact(&opts.database)
    ));
    let code = rt.block_on(run(svc, node_home, opts.bind, opts.grace, Mode::Team(tls)))?;
    std::process::exit(code)
}

/// What is served: a local daemon, or a team server node (over TLS when given).
enum Mode {
    Daemon,
    Team(Option<tokio_rustls::TlsAcceptor>),
}

async fn run(
    svc: Service,
    home: Home,
    bind: std::net::SocketAddr,
    grace: Duration,
    mode: Mode,
) -> Result<i32> {
    let (team, tls) = match mode {
        Mode::Daemon => (false, None),
        Mode::Team(tls) => (true, tls),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
        Error::invalid(
            format!("cannot listen on {bind}: {e}"),
            if team {
                "pick another address with `--bind ADDR:PORT` (port 0: any free one)"
            } else {
                "pick another port with `--port N`, or `--port 0` for any free one"
            },
        )
    })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io("reading the daemon's address", e))?
        .to_string();
    let token = hex::encode(rand::random::<[u8; 32]>());
    let file = DaemonFile {
        pid: std::process::id(),
        address: address.clone(),
        token: token.clone(),
        started_at: now_ms(),
        version: env!("CARGO_PKG_VERSION").into(),
        proc_start: super::proc_start(std::process::id()).unwrap_or(0),
    };
    if team {
        // What a test or a script reads to find the node; no token in it.
        let serving = serde_json::json!({"pid": file.pid, "address": address, "url": format!("{scheme}://{address}"), "version": file.version});
        crate::model::fsutil::write_private(
            &home.root().join("server.json"),
            serving.to_string().as_bytes(),
        )?;
        log(&format!("serving the REST API at {scheme}://{address}"));
    } else {
        file.write(&home)?;
        log(&format!(
            "strata daemon {} (pid {}) serving {} at http://{address}",
            file.version,
            file.pid,
            home.root().display()
        ));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(Daemon {
        svc,
        auth: if team {
            Auth::Team
        } else {
            Auth::Daemon(token)
        },
        address,
        started: Instant::now(),
        requests: AtomicU64::new(0),
        ops: Operations::load(home.root().join("operations.json")),
        busy: AtomicUsize::new(0),
        stop: stop_tx,
        dash: Default::default(),
    });
    let app = router(state.clone());
    let signalled = state.clone();
    tokio::spawn(async move {
        let why = stop_signal().await;
        log(&format!("{why}: not accepting new requests"));
        let _ = signalled.stop.send(true);
    });
    let server = tokio::spawn(super::connections::serve(
        listener,
        app,
        stop_rx.clone(),
        tls,
    ));
    let mut stopped = stop_rx;
    let _ = stopped.wait_for(|s| *s).await;
    state.svc.begin_stop();
    state
        .svc
        .cancel_all_runs("cancelled: the daemon was stopped");
    let deadline = tokio::time::Instant::now() + grace;
    log(&format!(
        "letting calls under way finish (up to {} ms)",
        grace.as_millis()
    ));
    let _ = tokio::time::timeout_at(deadline, server).await;
    while state.busy.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let interrupted = state
        .svc
        .record_interrupted("the daemon was stopped")
        .unwrap_or_else(|e| {
            log(&format!("could not record interrupted calls: {e}"));
            Vec::new()
        });
    for c in &interrupted {
        log(&format!(
            "interrupted: {} `{}` during `{}` (its phase shows it; `up` or `down` repeats the call)",
            c.component_type, c.name, c.call
        ));
    }
    state.ops.interrupt_running();
    if let Err(e) = state.svc.store().flush() {
        log(&format!("flushing the store: {e}"));
    }
    if DaemonFile::read(&home).is_some_and(|d| d.pid == std::process::id()) {
        let _ = std::fs::remove_file(home.daemon_file());
    }
    log("stopped");
    Ok(0)
}

async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        unreachable!("invariant: pending never resolves");
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

fn router(state: Shared) -> Router {
    routes::routes()
        .merge(super::access::routes())
        .merge(super::dashboard::routes())
        .layer(axum::middleware::from_fn(routes::json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Every request: a loopback `Host`, then (but for `/health`) the bearer token. Every
/// response says which version of strata answered it.
async fn guard(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let cli_words = req
        .headers()
        .get(crate::api::WORDING_HEADER)
        .is_some_and(|v| v.as_bytes() == b"cli");
    let cwd = match req.headers().get(crate::api::CWD_HEADER) {
        None => Some(std::path::PathBuf::new()),
        Some(v) => crate::api::decode_path(v.as_bytes()).filter(|p| p.is_absolute()),
    };
    let mut response = match cwd {
        Some(cwd) => {
            let events = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/event-stream"));
            let caller = routes::Caller {
                cli_words,
                cwd,
                events,
                ..Default::default()
            };
            routes::CALLER.scope(caller, checked(st, req, next)).await
        }
        None => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the `{}` header is not an absolute path, percent-encoded", crate::api::CWD_HEADER),
            "send the caller's working directory as an absolute path, each byte outside letters, digits and `/-_.~` as %XX, or leave the header out",
        )
        .into_response(),
    };
    response.headers_mut().insert(
        crate::api::VERSION_HEADER,
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    super::dashboard::harden(response.headers_mut());
    response
}

async fn checked(st: Shared, req: Request, next: Next) -> Response {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let who = match &st.auth {
        Auth::Daemon(token) => {
            if let Err(refused) = daemon_caller(token, &st.dash, &req) {
                return refused;
            }
            None
        }
        Auth::Team => match team_caller(&st, RequestHead::of(&req)).await {
            Ok(who) => who,
            Err((Some(who), refused)) => {
                // A user's request refused for its role is audited too.
                let head = (
                    req.method().clone(),
                    req.uri().path().to_string(),
                    req.uri().query().unwrap_or("").to_string(),
                );
                audit(&st, Some(who), head, refused.status().as_u16()).await;
                return refused;
            }
            Err((None, refused)) => return refused,
        },
    };
    let team = who.is_some();
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut caller = routes::CALLER.with(routes::Caller::clone);
    if let Some(p) = &who {
        caller.need = Some(p.need.clone());
        // A team server's callers are not on its machine: their paths mean nothing here.
        caller.cwd = std::path::PathBuf::new();
    }
    caller.who = who.map(|p| p.who);
    caller.if_match = if_match;
    caller.path = req.uri().path().to_string();
    caller.get = req.method() == axum::http::Method::GET;
    routes::CALLER
        .scope(caller, served(st, req, next, team))
        .await
}

/// A local daemon's caller: a loopback `Host` (against DNS rebinding), and the token of
/// `daemon.json` or of a dashboard session (but for `/health` and the dashboard's pages).
fn daemon_caller(
    token: &str,
    dash: &super::dashboard::Sessions,
    req: &Request,
) -> std::result::Result<(), Response> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!("the daemon answers requests for a loopback host only (127.0.0.1, localhost, [::1]), not `{host}`"),
            "call it at the address in STRATA_HOME/daemon.json; this check keeps web pages from reaching it by DNS rebinding",
        )
        .into_response());
    }
    let open = req.uri().path() == "/health"
        || super::dashboard::open_path(req.method(), req.uri().path(), false);
    if !open {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let daemon_token = given.is_some_and(|t| same(t.as_bytes(), token.as_bytes()));
        let session = !daemon_token && given.is_some_and(|t| dash.valid(t));
        if session {
            let query = req.uri().query().unwrap_or("");
            if !super::dashboard::session_may(req.method(), req.uri().path(), query) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("a dashboard session may not {} {}", req.method(), req.uri().path()),
                    "the dashboard reads, and brings stacks and components up and down; do the rest with the `strata` command",
                )
                .into_response());
            }
        }
        if !daemon_token && !session {
            return Err(unauthorized(
                if given.is_some() {
                    "the bearer token is wrong".to_string()
                } else {
                    "the request has no bearer token".to_string()
                },
                "send `Authorization: Bearer TOKEN` with the token in STRATA_HOME/daemon.json (a new one is made each time the daemon starts)",
            ));
        }
    }
    Ok(())
}

fn unauthorized(message: String, hint: &str) -> Response {
    let mut r =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message, hint).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The path as the audit log keeps it: with its query (`force`, `recursive`, `reveal`).
fn audited(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// A team server's caller, and what the route needs (checked again under the catalog
/// lock by a change).
struct Checked {
    who: crate::service::Principal,
    need: crate::service::Need,
}

/// Writes `req`'s entry in the audit log, with its answer `status`, when it is one the
/// log keeps: a change, or a read of secret values.
async fn audit(
    st: &Shared,
    who: Option<crate::service::Principal>,
    (method, path, query): (axum::http::Method, String, String),
    status: u16,
) {
    if method == axum::http::Method::GET && !super::access::reveals(&query) {
        return;
    }
    let svc = st.svc.as_user(std::path::PathBuf::new(), who);
    let (m, p) = (method.to_string(), audited(&path, &query));
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = svc.audit(&m, &p, status) {
            log(&format!("could not write the audit log: {e}"));
        }
    })
    .await;
}

/// What [`team_caller`] reads of a request (the request itself, whose body is not
/// `Sync`, cannot be held across an `await`).
struct RequestHead {
    method: axum::http::Method,
    path: String,
    query: String,
    bearer: Option<String>,
}

impl RequestHead {
    fn of(req: &Request) -> RequestHead {
        RequestHead {
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            bearer: req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_string),
        }
    }
}

/// A team server's caller: the user of a valid token, allowed by the route's [`Need`]
/// (`/health` and the OpenAPI document are open to anyone).
async fn team_caller(
    st: &Shared,
    head: RequestHead,
) -> std::result::Result<Option<Checked>, (Option<crate::service::Principal>, Response)> {
    let RequestHead {
        method,
        path,
        query,
        bearer,
    } = head;
    if path == "/health"
        || path == "/api/v1/openapi.json"
        || super::dashboard::open_path(&method, &path, true)
    {
        return Ok(None);
    }
    let Some(token) = bearer else {
        return Err((
            None,
            unauthorized(
                "the request has no bearer token".into(),
                "log in with `strata login URL` (an admin makes your token with `strata server token create USER`), or send `Authorization: Bearer TOKEN`",
            ),
        ));
    };
    let need = super::access::need(&method, &path, &query);
    let need_for_caller = need.clone();
    let svc_state = st.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let who = match svc_state.svc.authenticate(&token) {
            Ok(Some(who)) => who,
            Ok(None) => return (None, Ok(false)),
            Err(e) => return (None, Err(e)),
        };
        let allowed = svc_state
            .svc
            .as_user(std::path::PathBuf::new(), Some(who.clone()))
            .require(&need)
            .map(|()| true);
        (Some(who), allowed)
    })
    .await
    .unwrap_or_else(|e| {
        (
            None,
            Err(Error::Internal(format!("checking a token failed: {e}"))),
        )
    });
    match checked {
        (Some(who), Ok(true)) => Ok(Some(Checked {
            who,
            need: need_for_caller,
        })),
        (_, Ok(_)) => Err((
            None,
            unauthorized(
                "the token is wrong, revoked, or its user was deleted".into(),
                "log in again with a valid token: `strata login URL` (an admin makes one with `strata server token create USER`)",
            ),
        )),
        (who, Err(e)) => Err((who, ApiError::from(e).into_response())),
    }
}

/// The request, its body read, handed to its route; on a team server, a change is
/// written to the audit log with its answer, and a stack or component read carries its
/// version (`ETag`).
async fn served(st: Shared, req: Request, next: Next, team: bool) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let started = Instant::now();
    // The whole body is read before any handler runs, also by routes that take none:
    // a connection whose request body was left unread is closed by hyper, and the
    // client's next request on it would fail.
    // `_large`: held until the handler is done with the body (see `buffered`).
    let (req, _large) = match buffered(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut response = next.run(req).await;
    // How long the route took, for a browser's developer tools and `make bench`.
    let took = format!("app;dur={:.3}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&took) {
        response.headers_mut().insert("server-timing", v);
    }
    // Changes, and reads of secret values, go to the audit log, with their answer.
    if team {
        let who = routes::CALLER.with(|c| c.who.clone());
        let head = (method.clone(), path.clone(), query.clone());
        audit(&st, who, head, response.status().as_u16()).await;
    }
    if method != axum::http::Method::GET || !response.status().is_success() {
        log(&format!(
            "{method} {path} {} ({} ms)",
            response.status().as_u16(),
            started.elapsed().as_millis()
        ));
    }
    response
}

/// The request with its body read into memory, up to the route's limit: a flavor's
/// `.wasm` may be as large as [`routes::MAX_UPLOAD`], a file put in an artifact store
/// [`crate::service::MAX_ARTIFACT_BYTES`], any other body 2 MiB.
async fn buffered(
    req: Request,
) -> std::result::Result<(Request, Option<tokio::sync::OwnedSemaphorePermit>), ApiError> {
    let path = req.uri().path();
    let limit = if path.starts_with("/api/v1/flavors/") {
        routes::MAX_UPLOAD
    } else if req.method() == axum::http::Method::PUT
        && path.starts_with("/api/v1/artifact-stores/")
        && path.ends_with("/files")
    {
        crate::service::MAX_ARTIFACT_BYTES as usize
    } else {
        routes::MAX_BODY
    };
    // A large body is held in memory until its handler is done: at most two at once,
    // whatever the number of connections; a third waits for one of them. The caller
    // keeps the permit until then.
    let permit = if limit > routes::MAX_BODY {
        let permit = LARGE_BODIES
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::from(Error::Internal("the daemon is stopping".into())))?;
        Some(permit)
    } else {
        None
    };
    let too_large = |why: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            why,
            "a flavor's .wasm may be at most 64 MiB, a file for an artifact store 1 GiB, any other body 2 MiB",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        // Refused before reading it (a client that sent `Expect: 100-continue` is told
        // before it sends the body).
        return Err(too_large(format!(
            "the body is {n} bytes, over this route's limit of {} MiB",
            limit / (1024 * 1024)
        )));
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        super::connections::BODY_TIMEOUT,
        axum::body::to_bytes(body, limit),
    );
    let Ok(bytes) = read.await else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the body did not arrive within {} s",
                super::connections::BODY_TIMEOUT.as_secs()
            ),
            "send the whole body at once, right after the headers",
        ));
    };
    let bytes = bytes.map_err(|e| {
        // Over the limit without saying so up front, or a body the client stopped sending.
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit");
        if over {
            too_large(format!(
                "the body is over this route's limit of {} MiB",
                limit / (1024 * 1024)
            ))
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body could not be read whole: {e}"),
                "send the whole body the Content-Length announces",
            )
        }
    })?;
    Ok((Request::from_parts(parts, Body::from(bytes)), permit))
}

/// The permits of [`buffered`]'s large bodies.
static LARGE_BODIES: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(2)));

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `127.0.0.1`, `localhost`, `[::1]` or any `127.x.y.z`, with or without a port.
pub fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A command line sent by the `strata` CLI, run here as it would run in-process.
#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_hosts_pass() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost:1",
            "LOCALHOST",
            "[::1]:9",
            "127.8.9.1:80",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.com",
            "evil.com:80",
            "localhost.evil.com",
            "10.0.0.1:80",
            "[::2]:80",
            "0.0.0.0",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }
}
