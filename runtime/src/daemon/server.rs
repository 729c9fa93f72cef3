//! The daemon's HTTP server (axum on tokio): loopback only, a bearer token on every
//! route but `/health`, a `Host` check against DNS rebinding, and a shutdown that lets
//! calls under way finish within a grace period and records the rest as interrupted.
//!
//! Why axum: the routes are many and typed (JSON bodies, path parameters, errors as
//! JSON), which is what axum adds over hyper; it runs on the same tokio and hyper, so
//! the cost per request is hyper's. Connections are accepted and bounded (a cap,
//! timeouts, the size of a head) in [`super::connections`].

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Parser;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::DaemonFile;
use super::api::{self, ApiError, Operations};
use crate::cli::run::{Sink, execute, render_error};
use crate::cli::{AllFlavorsCmd, Cli, Command, ComponentCmd, Format, StackCmd};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::model::now_ms;
use crate::service::{InFlight, Service};

/// What every request handler shares.
pub struct Daemon {
    pub svc: Service,
    token: String,
    address: String,
    started: Instant,
    requests: AtomicU64,
    /// REST lifecycle operations that run after their request has been answered.
    pub ops: Operations,
    /// How many of those are running now; shutdown waits for them.
    pub busy: AtomicUsize,
    /// Set to `true` to stop: by SIGTERM, Ctrl-C or `POST /api/v1/daemon/stop`.
    pub stop: tokio::sync::watch::Sender<bool>,
}

pub type Shared = Arc<Daemon>;

/// What `GET /api/v1/daemon` answers (and `strata daemon status` shows).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Info {
    pub pid: u32,
    pub version: String,
    pub home: String,
    pub address: String,
    pub uptime_s: u64,
    pub requests: u64,
    pub rss_kib: u64,
    pub in_flight: Vec<InFlight>,
}

impl Daemon {
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
    let code = rt.block_on(run(svc, home, port, grace))?;
    // Lifecycle calls still running past the grace period were recorded as interrupted;
    // leave without waiting for their threads.
    std::process::exit(code)
}

async fn run(svc: Service, home: Home, port: u16, grace: Duration) -> Result<i32> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            Error::invalid(
                format!("cannot listen on 127.0.0.1:{port}: {e}"),
                "pick another port with `--port N`, or `--port 0` for any free one",
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
    file.write(&home)?;
    log(&format!(
        "strata daemon {} (pid {}) serving {} at http://{address}",
        file.version,
        file.pid,
        home.root().display()
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(Daemon {
        svc,
        token,
        address,
        started: Instant::now(),
        requests: AtomicU64::new(0),
        ops: Operations::load(home.root().join("operations.json")),
        busy: AtomicUsize::new(0),
        stop: stop_tx,
    });
    let app = router(state.clone());
    let signalled = state.clone();
    tokio::spawn(async move {
        let why = stop_signal().await;
        log(&format!("{why}: not accepting new requests"));
        let _ = signalled.stop.send(true);
    });
    let server = tokio::spawn(super::connections::serve(listener, app, stop_rx.clone()));
    let mut stopped = stop_rx;
    let _ = stopped.wait_for(|s| *s).await;
    state.svc.begin_stop();
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
    api::routes()
        .route("/api/v1/cli", axum::routing::post(cli))
        .layer(axum::middleware::from_fn(api::json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Every request: a loopback `Host`, then (but for `/health`) the bearer token.
async fn guard(State(st): State<Shared>, req: Request, next: Next) -> Response {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!("the daemon answers requests for a loopback host only (127.0.0.1, localhost, [::1]), not `{host}`"),
            "call it at the address in STRATA_HOME/daemon.json; this check keeps web pages from reaching it by DNS rebinding",
        )
        .into_response();
    }
    if req.uri().path() != "/health" {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|t| same(t.as_bytes(), st.token.as_bytes())) {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                if given.is_some() {
                    "the bearer token is wrong".to_string()
                } else {
                    "the request has no bearer token".to_string()
                },
                "send `Authorization: Bearer TOKEN` with the token in STRATA_HOME/daemon.json (a new one is made each time the daemon starts)",
            )
            .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    // The whole body is read before any handler runs, also by routes that take none:
    // a connection whose request body was left unread is closed by hyper, and the
    // client's next request on it would fail.
    let req = match buffered(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let response = next.run(req).await;
    if (method != axum::http::Method::GET || !response.status().is_success())
        && path != "/api/v1/cli"
    {
        log(&format!(
            "{method} {path} {} ({} ms)",
            response.status().as_u16(),
            started.elapsed().as_millis()
        ));
    }
    response
}

/// The request with its body read into memory, up to the route's limit: a flavor's
/// `.wasm` may be as large as [`api::MAX_UPLOAD`], any other body 2 MiB.
async fn buffered(req: Request) -> std::result::Result<Request, ApiError> {
    let limit = if req.uri().path().starts_with("/api/v1/flavors/") {
        api::MAX_UPLOAD
    } else {
        api::MAX_BODY
    };
    let too_large = |why: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            why,
            "a flavor's .wasm may be at most 64 MiB, any other body 2 MiB",
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
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliRequest {
    /// The arguments after `strata`.
    pub argv: Vec<String>,
    /// The client's working directory (absolute): relative paths are taken from it.
    pub cwd: PathBuf,
    /// The client resolved `--output` and `STRATA_OUTPUT`.
    pub output: Output,
    /// Whether the client's stderr takes colour.
    #[serde(default)]
    pub color: bool,
}

/// How a command prints: `table`, `json` or `yaml`; anything else is a 400.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// One piece of a command's output, as a line of JSON: `{"out":…}`, `{"err":…}`, and
/// last `{"exit":CODE}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frame {
    Out(String),
    Err(String),
    Exit(u8),
}

struct Channel(mpsc::UnboundedSender<Frame>);

impl Sink for Channel {
    fn stdout(&self, text: &str) {
        let _ = self.0.send(Frame::Out(text.to_string()));
    }

    fn stderr(&self, text: &str) {
        let _ = self.0.send(Frame::Err(text.to_string()));
    }
}

/// `POST /api/v1/cli`: runs a command line and streams what it prints as it prints it
/// (so `stack up` shows each component's progress), then its exit code.
async fn cli(
    State(st): State<Shared>,
    body: std::result::Result<axum::Json<CliRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let req = match body {
        Ok(axum::Json(r)) => r,
        Err(e) => return ApiError::bad_body(e).into_response(),
    };
    if !req.cwd.is_absolute() {
        return ApiError::invalid_field(
            "cwd",
            format!("is `{}`, not an absolute path", req.cwd.display()),
            "give the working directory the command's relative paths are taken from, as an absolute path",
        )
        .into_response();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::task::spawn_blocking(move || {
        let sink = Channel(tx);
        let code = run_command_line(&st, req, &sink);
        let _ = sink.0.send(Frame::Exit(code));
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let frame = rx.recv().await?;
        let mut line = serde_json::to_vec(&frame).expect("invariant: a frame serializes");
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(frames))
        .expect("invariant: a valid response")
}

fn run_command_line(st: &Daemon, req: CliRequest, sink: &Channel) -> u8 {
    let mut argv = vec!["strata".to_string()];
    argv.extend(req.argv);
    let mut cli = match Cli::try_parse_from(crate::cli::normalize_args(argv.clone())) {
        Ok(c) => c,
        Err(e) => {
            let text = match crate::cli::run::escaped_usage_error(&e, &argv) {
                Some(text) => text,
                None if req.color => e.render().ansi().to_string(),
                None => e.render().to_string(),
            };
            if e.use_stderr() {
                sink.stderr(&text);
                return 1;
            }
            sink.stdout(&text);
            return 0;
        }
    };
    cli.output = match req.output {
        Output::Table => Format::Table,
        Output::Json => Format::Json,
        Output::Yaml => Format::Yaml,
    };
    if needs_no_home(&cli.command) {
        let e = Error::invalid(
            "this command runs in the CLI, not in the daemon",
            "run it with the strata command line",
        );
        sink.stderr(&render_error(&e, req.color));
        return 1;
    }
    let svc = st.svc.scoped(req.cwd);
    let started = Instant::now();
    let code = {
        let _catalog = changes_catalog(&cli.command).then(|| svc.catalog_lock());
        execute(&svc, &cli, sink, req.color)
    };
    if changes_catalog(&cli.command) || code != 0 {
        log(&format!(
            "cli: {} -> exit {code} ({} ms)",
            words(&cli.command),
            started.elapsed().as_millis()
        ));
    }
    code
}

/// The command's words, without its arguments (which may hold secrets), for the log.
fn words(c: &Command) -> String {
    let debug = format!("{c:?}");
    debug
        .split(|ch: char| !ch.is_alphanumeric())
        .take_while(|w| w.chars().next().is_some_and(char::is_uppercase))
        .collect::<Vec<_>>()
        .join(" ")
}

fn needs_no_home(c: &Command) -> bool {
    matches!(
        c,
        Command::Daemon(_)
            | Command::Completion { .. }
            | Command::Flavor(AllFlavorsCmd::Test { .. } | AllFlavorsCmd::New { .. })
    )
}

/// Whether a command changes the catalog (and so takes [`Service::catalog_lock`]).
/// Reads take no lock, and lifecycle commands lock the components they call into.
pub fn changes_catalog(c: &Command) -> bool {
    if let Some((_, cmd)) = c.component() {
        return !matches!(
            cmd,
            ComponentCmd::List
                | ComponentCmd::Describe { .. }
                | ComponentCmd::Up { .. }
                | ComponentCmd::Down { .. }
                | ComponentCmd::Flavor(crate::cli::FlavorCmd::List)
                | ComponentCmd::Flavor(crate::cli::FlavorCmd::Describe { .. })
        );
    }
    match c {
        Command::Stack(s) => !matches!(
            s,
            StackCmd::List
                | StackCmd::Describe { .. }
                | StackCmd::Get
                | StackCmd::Up { .. }
                | StackCmd::Down { .. }
                | StackCmd::Export { .. }
        ),
        Command::Secret(crate::cli::SecretCmd::List | crate::cli::SecretCmd::Get { .. })
        | Command::Flavor(_)
        | Command::Pipeline(_)
        | Command::Integration(crate::cli::IntegrationCmd::List) => false,
        // A backup takes the lock too: it reads records and flavor files as one moment.
        _ => true,
    }
}

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
